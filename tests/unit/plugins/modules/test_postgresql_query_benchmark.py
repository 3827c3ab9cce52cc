# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of postgresql_query_benchmark and module_utils/query_benchmark.py: the statements sent
(compared whole), the windows, the choice of ticker and universe, the timing and its percentiles, the
read-only session, option validation and failures.

The database is scripted (utils.FakeDB) and the clock is scripted (time.perf_counter), because these
tests check which statements the module sends and what it computes from the times; the real server is
exercised by the runbooks scenario (molecule/runbooks/tests/test_benchmark.py) and by make bench-queries.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import psycopg
import pytest

from ansible_collections.quantops.platform.plugins.module_utils import query_benchmark as qb
from ansible_collections.quantops.platform.plugins.modules import postgresql_query_benchmark as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import (
    HOSTILE, FakeDB, assert_options_documented, fail_runner, normalize_sql, ok_runner)

run_ok = ok_runner(mod)
run_fail = fail_runner(mod)

SERVER = [{'server_version': '17.11', 'timescaledb_version': '2.19.3', 'shared_buffers': '512MB',
           'effective_cache_size': '1536MB', 'work_mem': '5242kB', 'random_page_cost': '1.1',
           'effective_io_concurrency': '256', 'max_parallel_workers_per_gather': '1', 'jit': 'off'}]
# UNIVERSE_SQL's answer: most bars first.
UNIVERSE = [
    {'region': 'US', 'ticker': 'SPX', 'bars': 2516},
    {'region': 'US', 'ticker': 'IXIC', 'bars': 2516},
    {'region': 'KR', 'ticker': 'KS11', 'bars': 2470},
    {'region': 'US', 'ticker': 'DJI', 'bars': 2000},
]


def rows(count):
    return [{'x': i} for i in range(count)]


def database(end=datetime.date(2018, 12, 31), universe=None, portfolio=None):
    return FakeDB([
        ('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', None),
        ("current_setting('server_version')", SERVER),
        ('max(date) AS end_date', [{'end_date': end}]),
        ('count(*) AS bars', UNIVERSE if universe is None else universe),
        ('covar_samp', portfolio if portfolio is not None else rows(6)),
        ('technical_analysis', rows(3750)),
        ('LIMIT 250', rows(250)),
        ("date > '2017-12-31'::date", rows(251)),
        ("date > '2008-12-31'::date", rows(2516)),
    ])


@pytest.fixture
def clock(monkeypatch):
    """time.perf_counter of the module: each run takes the next duration (seconds) of ``clock.durations``."""
    class Clock(object):
        durations = []
        now = 0.0
        calls = 0

        def __call__(self):
            # Two calls per run: the start (no time passes) and the end (the run's duration).
            self.calls += 1
            if self.calls % 2 == 0:
                self.now += self.durations.pop(0) if self.durations else 0.001
            return self.now
    scripted = Clock()
    monkeypatch.setattr(mod.time, 'perf_counter', scripted)
    return scripted


def expected_statements(end='2018-12-31', ticker='SPX', region='US', tickers='{SPX,IXIC,DJI}', with_end_query=True):
    ohlcv = '"public"."ohlcv_data"'
    statements = [
        "SET statement_timeout = '120s'",
        'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY',
        mod.SERVER_SQL,
    ]
    if with_end_query:
        statements.append('SELECT max(date) AS end_date FROM %s' % ohlcv)
    statements.append("SELECT region, ticker, count(*) AS bars FROM %s WHERE date > '2008-12-31'::date AND "
                      "date <= '%s'::date GROUP BY region, ticker ORDER BY bars DESC, region, ticker" % (ohlcv, end))
    single = ("SELECT date, open, high, low, close, volume FROM %s WHERE ticker = '%s' AND region = '%s' AND "
              % (ohlcv, ticker, region))
    per_query = [
        single + "date <= '%s'::date ORDER BY date DESC LIMIT 250" % end,
        single + "date > '2017-12-31'::date AND date <= '%s'::date ORDER BY date" % end,
        single + "date > '2008-12-31'::date AND date <= '%s'::date ORDER BY date" % end,
        ("SELECT o.ticker, o.date, o.close, o.volume, o.close / NULLIF(lag(o.close) OVER w, 0) - 1 AS daily_return, "
         "t.sma_20, t.sma_50, t.sma_200, t.rsi_14 FROM %s o LEFT JOIN \"public\".\"technical_analysis\" t "
         "ON t.ticker = o.ticker AND t.region = o.region AND t.date = o.date "
         "AND t.region = '%s' AND t.ticker = ANY('%s'::text[]) AND t.date > '2013-12-31'::date AND t.date <= '%s'::date "
         "WHERE o.region = '%s' AND o.ticker = ANY('%s'::text[]) AND o.date > '2013-12-31'::date "
         "AND o.date <= '%s'::date WINDOW w AS (PARTITION BY o.ticker ORDER BY o.date) ORDER BY o.ticker, o.date"
         % (ohlcv, region, tickers, end, region, tickers, end)),
        ("WITH r AS (SELECT ticker, date, close / NULLIF(lag(close) OVER (PARTITION BY ticker ORDER BY date), 0) - 1 "
         "AS ret FROM {o} WHERE region = '{r}' AND ticker = ANY('{t}'::text[]) AND date > '2017-12-31'::date AND "
         "date <= '{e}'::date), m AS (SELECT ticker, avg(ret) AS mean_return FROM r GROUP BY ticker), "
         "c AS (SELECT a.ticker AS ticker_a, b.ticker AS ticker_b, covar_samp(a.ret, b.ret) AS covariance "
         "FROM r a JOIN r b ON b.date = a.date AND b.ticker >= a.ticker GROUP BY a.ticker, b.ticker), "
         "f AS (SELECT ticker, jsonb_object_agg(factor_name, score) AS factors FROM (SELECT DISTINCT ON "
         "(ticker, factor_name) ticker, factor_name, score FROM \"public\".\"factor_scores\" WHERE region = '{r}' "
         "AND ticker = ANY('{t}'::text[]) AND date > '2017-12-31'::date AND date <= '{e}'::date "
         "ORDER BY ticker, factor_name, date DESC) latest GROUP BY ticker) "
         "SELECT c.ticker_a, c.ticker_b, c.covariance, ma.mean_return AS mean_return_a, "
         "mb.mean_return AS mean_return_b, f.factors AS factors_a FROM c JOIN m ma ON ma.ticker = c.ticker_a "
         "JOIN m mb ON mb.ticker = c.ticker_b LEFT JOIN f ON f.ticker = c.ticker_a ORDER BY c.ticker_a, c.ticker_b"
         .format(o=ohlcv, r=region, t=tickers, e=end)),
    ]
    return statements, per_query


# --- the statements -------------------------------------------------------------------------

def test_options_are_documented():
    assert_options_documented(mod)


def test_every_query_type_is_sent_whole_after_its_warmup_in_a_read_only_session(install, clock):
    db = install(database())
    result = run_ok({'runs': 3, 'warmup_runs': 1})
    setup, per_query = expected_statements()
    sent = db.statements()
    assert sent[:len(setup)] == [normalize_sql(s) for s in setup]
    # 1 warm-up + 3 measured runs of each query, in the order of the option, nothing else.
    assert sent[len(setup):] == sum(([normalize_sql(q)] * 4 for q in per_query), [])
    assert [q['sql'] for q in result['queries']] == per_query
    assert result['changed'] is False
    assert db.closed
    assert result['parameters'] == {'region': 'US', 'ticker': 'SPX', 'end_date': '2018-12-31',
                                    'backtest_tickers': ['SPX', 'IXIC', 'DJI'],
                                    'portfolio_tickers': ['SPX', 'IXIC', 'DJI'], 'runs': 3, 'warmup_runs': 1}
    assert result['server']['timescaledb_version'] == '2.19.3'


def test_the_read_only_setting_comes_before_any_query_of_the_data(install, clock):
    db = install(database())
    run_ok({'runs': 1, 'warmup_runs': 0, 'queries': ['single_ticker_250d']})
    sent = db.statements()
    read_only = sent.index('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY')
    assert all(read_only < i for i, s in enumerate(sent) if 'ohlcv_data' in s)


def test_given_ticker_region_and_end_date_are_used_and_the_newest_date_is_not_read(install, clock):
    db = install(database())
    result = run_ok({'runs': 1, 'warmup_runs': 0, 'ticker': 'IXIC', 'region': 'US', 'end_date': '2018-12-31',
                     'backtest_tickers': 2, 'portfolio_tickers': 1})
    setup, per_query = expected_statements(ticker='IXIC', with_end_query=False)
    sent = db.statements()
    assert not any('max(date)' in s for s in sent)
    assert sent[len(setup)] == normalize_sql(per_query[0])
    backtest = [q for q in result['queries'] if q['name'] == 'backtest'][0]
    portfolio = [q for q in result['queries'] if q['name'] == 'portfolio_optimization'][0]
    # The universe is the region's tickers with the most bars, not only the one chosen.
    assert "ANY('{SPX,IXIC}'::text[])" in backtest['sql']
    assert "ANY('{SPX}'::text[])" in portfolio['sql']


def test_a_hostile_ticker_stays_a_literal(install, clock):
    universe = [{'region': 'US', 'ticker': HOSTILE, 'bars': 10}]
    install(database(universe=universe))
    result = run_ok({'runs': 1, 'warmup_runs': 0, 'queries': ['single_ticker_1y'], 'ticker': HOSTILE})
    assert "ticker = '\"; DROP TABLE x; --'" in result['queries'][0]['sql']


def test_windows_end_on_the_newest_date_and_29_february_becomes_the_28th(install, clock):
    db = install(FakeDB([
        ('SET SESSION CHARACTERISTICS', None), ("current_setting('server_version')", SERVER),
        ('max(date) AS end_date', [{'end_date': datetime.date(2024, 2, 29)}]),
        ('count(*) AS bars', UNIVERSE), ('ohlcv_data', rows(1))]))
    run_ok({'runs': 1, 'warmup_runs': 0, 'queries': ['single_ticker_1y']})
    assert any("date > '2014-02-28'::date AND date <= '2024-02-29'::date GROUP BY" in s for s in db.statements())
    assert db.statements()[-1].endswith("date > '2023-02-28'::date AND date <= '2024-02-29'::date ORDER BY date")


# --- timing ---------------------------------------------------------------------------------

def test_warmup_runs_are_kept_apart_and_percentiles_come_from_the_measured_runs(install, clock):
    install(database())
    clock.durations = [0.500, 0.010, 0.020, 0.030, 0.040, 0.100]   # 1 warm-up, then 5 runs
    result = run_ok({'runs': 5, 'warmup_runs': 1, 'queries': ['single_ticker_250d']})
    query = result['queries'][0]
    assert query['warmup_ms'] == [500.0]
    assert query['times_ms'] == [10.0, 20.0, 30.0, 40.0, 100.0]
    assert query['p50_ms'] == 30.0
    assert query['p95_ms'] == 88.0      # 40 + (100 - 40) * 0.8
    assert (query['min_ms'], query['max_ms'], query['mean_ms']) == (10.0, 100.0, 40.0)
    assert query['rows'] == 250
    assert query['title'] == 'Single ticker, 250 days'


def test_check_mode_runs_the_same_read_only_queries(install, clock):
    db = install(database())
    result = run_ok({'runs': 1, 'warmup_runs': 0, '_ansible_check_mode': True})
    assert result['changed'] is False
    assert len(result['queries']) == 5
    assert 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY' in db.statements()


def test_percentile_interpolates_between_closest_ranks():
    assert qb.percentile([10, 20, 30, 40], 0.5) == 25.0
    assert qb.percentile([7.5], 0.95) == 7.5
    assert qb.percentile([3, 1, 2], 0.0) == 1.0
    assert qb.percentile([3, 1, 2], 1.0) == 3.0
    with pytest.raises(ValueError):
        qb.percentile([], 0.5)
    with pytest.raises(ValueError):
        qb.percentile([1], 95)


def test_choose_universe():
    assert qb.choose_universe(UNIVERSE) == ('US', 'SPX', ['SPX', 'IXIC', 'DJI'])
    assert qb.choose_universe(UNIVERSE, region='KR') == ('KR', 'KS11', ['KS11'])
    assert qb.choose_universe(UNIVERSE, ticker='DJI', count=2) == ('US', 'DJI', ['SPX', 'IXIC'])
    with pytest.raises(ValueError, match="ticker 'NOPE' in region 'US' has no rows"):
        qb.choose_universe(UNIVERSE, ticker='NOPE', region='US')
    with pytest.raises(ValueError, match='no OHLCV rows'):
        qb.choose_universe([])


# --- failures -------------------------------------------------------------------------------

@pytest.mark.parametrize('args, message', [
    ({'runs': 0}, 'runs must be 1 or more'),
    ({'warmup_runs': -1}, 'warmup_runs must be 0 or more'),
    ({'backtest_tickers': 0}, 'backtest_tickers must be 1 or more'),
    ({'portfolio_years': 0}, 'portfolio_years must be 1 or more'),
    ({'queries': []}, 'queries must name at least one query type'),
    ({'end_date': '31/12/2018'}, 'end_date must be a date as YYYY-MM-DD'),
    ({'ticker': ' '}, 'ticker must not be empty'),
    ({'schema': 'x' * 64}, 'limited to 63 bytes'),
    ({'statement_timeout': 'soon'}, 'statement_timeout must be'),
])
def test_bad_options_fail_before_connecting(no_connect, args, message):
    assert message in run_fail(args)['msg']


def test_unknown_query_type_is_refused(no_connect):
    assert 'value of queries must be one or more of' in run_fail({'queries': ['everything']})['msg']


def test_an_empty_table_fails_with_a_clear_message(install, clock):
    install(FakeDB([('SET SESSION CHARACTERISTICS', None), ("current_setting('server_version')", SERVER),
                    ('max(date) AS end_date', [{'end_date': None}])]))
    assert run_fail({})['msg'] == 'public.ohlcv_data has no rows: nothing to benchmark'


def test_an_unknown_ticker_fails_naming_it_and_the_end_date(install, clock):
    db = install(database())
    msg = run_fail({'ticker': 'NOPE'})['msg']
    assert msg == "ticker 'NOPE' has no rows in the benchmark window (end date 2018-12-31)"
    assert not any('LIMIT 250' in s for s in db.statements())


def test_a_failing_query_fails_the_module_naming_it(install, clock):
    install(database(portfolio=psycopg.errors.QueryCanceled('canceling statement due to statement timeout')))
    result = run_fail({'runs': 1, 'warmup_runs': 0})
    assert result['msg'] == ('Query portfolio_optimization (Portfolio optimization) failed: '
                             'canceling statement due to statement timeout')
    # The queries measured before are returned with the failure.
    assert [q['name'] for q in result['queries']] == ['single_ticker_250d', 'single_ticker_1y', 'single_ticker_10y',
                                                      'backtest']
