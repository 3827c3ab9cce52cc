# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of ohlcv_data_quality: option validation, SQL composition (hostile identifiers are
quoted, never executed), exchange-calendar resolution and its fallback, severity.

main() runs on a scripted database for the duplicate fix (the whole statements sent, check mode
and real); the checks against a real TimescaleDB run in the Molecule scenario ``runbooks``
(molecule/runbooks/tests/test_data_quality.py).  The calendar tests use the real
``exchange_calendars`` library and are skipped when it is not installed in the test venv.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import pytest


from ansible_collections.quantops.platform.plugins.module_utils import data_quality as dq
from ansible_collections.quantops.platform.plugins.modules import ohlcv_data_quality as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import (
    HOSTILE, FakeDB, normalize_sql, ok_runner, run_module
)

run_ok = ok_runner(mod)


def params(**over):
    """Module parameters with the argument spec's defaults."""
    spec = mod.argument_spec()
    p = dict((k, v.get('default')) for k, v in spec.items())
    p.update(over)
    return p


# --- option validation ------------------------------------------------------------------------

def test_defaults_are_seed_002_ohlcv_data():
    opts = dq.validate_options(params())
    assert (opts['schema'], opts['table']) == ('public', 'ohlcv_data')
    assert opts['key_columns'] == ['ticker', 'region']
    assert opts['time_column'] == 'date'
    assert opts['zscore_threshold'] == 3.0
    assert opts['gap_days'] == 3
    assert opts['calendars']['KR'] == 'XKRX' and opts['calendars']['US'] == 'XNYS'
    assert opts['fix'] is False


@pytest.mark.parametrize('over, fragment', [
    ({'since': '2024-13-01'}, 'since is not a valid date'),
    ({'since': 'yesterday'}, 'since must be an ISO date'),
    ({'since': '2024-02-01', 'until': '2024-01-01'}, 'must be before until'),
    ({'zscore_threshold': 0.0}, 'zscore_threshold must be > 0'),
    ({'gap_days': 0}, 'gap_days must be an integer >= 1'),
    ({'key_columns': []}, 'key_columns must name at least one column'),
    ({'region_column': 'market'}, "region_column 'market' must be one of key_columns"),
    ({'price_columns': {'open': 'o', 'high': 'h', 'low': 'l'}}, 'price_columns.close is required'),
    ({'fix': True, 'created_at_column': None}, 'fix=true needs created_at_column'),
    ({'calendars': {'KR': 'XKRX; DROP'}}, 'calendars.KR must be an exchange_calendars code'),
    ({'gap_days_by_region': {'CRYPTO': 'month'}}, 'gap_days_by_region.CRYPTO must be an integer'),
    ({'table': 'x' * 64}, 'PostgreSQL identifiers are limited to 63 bytes'),
    ({'time_column': 'a\x00b'}, 'must not contain a NUL'),
    ({'key_columns': ['ticker', 'date'], 'region_column': None}, 'key_columns and time_column must be distinct'),
])
def test_bad_options_are_rejected(over, fragment):
    with pytest.raises(dq.OptionError) as e:
        dq.validate_options(params(**over))
    assert fragment in str(e.value)


def test_bad_options_fail_before_connecting(no_connect):
    result = run_module(mod.main, {'since': '2024-02-30'}).result
    assert result.get('failed') is not False and 'since is not a valid date' in result['msg']


def test_calendars_option_replaces_the_default_map():
    opts = dq.validate_options(params(calendars={'US': 'XNAS', 'CRYPTO': None}))
    assert opts['calendars'] == {'US': 'XNAS', 'CRYPTO': None}


# --- SQL composition ------------------------------------------------------------------------

def _sql(query):
    return query.as_string(None)


HOSTILE_SERIES = [{'key': ["'; DROP TABLE y; --", 'US'], 'off': 0, 'base': datetime.date(2024, 1, 2), 'days': 1,
                   'gap': 3, 'gap_all': False, 'f1lo': None, 'f1hi': None, 'f2lo': None, 'f2hi': None}]


def test_hostile_identifiers_are_quoted_in_every_query():
    opts = dq.validate_options(params(table=HOSTILE, key_columns=[HOSTILE, 'region'], time_column='d"ate',
                                      price_columns={'open': 'o;', 'high': 'h', 'low': 'l', 'close': "c'"},
                                      fix=True, regions=["K'R"], since='2024-01-01'))
    quoted = '"""; DROP TABLE x; --"'
    for query in (dq.duplicate_rows_query(opts), dq.duplicate_rows_query(opts, True), dq.series_query(opts),
                  dq.scan_query(opts, HOSTILE_SERIES, [0, 1, 1])):
        text = _sql(query)
        assert quoted in text
        # The hostile text never appears unquoted: every occurrence is inside the doubled quotes.
        assert text.count('; DROP TABLE x; --') == text.count(quoted)
        assert '"d""ate"' in text
    text = _sql(dq.scan_query(opts, HOSTILE_SERIES, [0, 1, 1]))
    # a value is an element of a typed array literal, its quote doubled
    assert """'{"''; DROP TABLE y; --"}'::text[]""" in text


RANGE = ('WHERE "date" >= \'2024-06-01\'::date AND "date" < \'2024-07-01\'::date '
         'AND "region" = ANY(\'{KR,US}\'::text[])')
SERIES_SQL = ('SELECT "ticker", "region", min("date") AS first_time, max("date") AS last_time, count(*) AS n '
              'FROM "public"."ohlcv_data" ' + RANGE + ' GROUP BY "ticker", "region" ORDER BY "ticker", "region"')
DELETE_SQL = ('WITH ranked AS (SELECT tableoid AS toid, ctid AS row_ctid, row_number() OVER (PARTITION BY "ticker", '
              '"region", "date" ORDER BY "created_at", ctid) AS rn FROM "public"."ohlcv_data" ' + RANGE + ') '
              'DELETE FROM "public"."ohlcv_data" AS o USING ranked r WHERE o.tableoid = r.toid AND o.ctid = r.row_ctid '
              'AND r.rn > 1 RETURNING o."ticker", o."region", o."date" AS time, o."created_at" AS created_at, '
              'o."open", o."high", o."low", o."close", o."volume"')
TYPES = dict((c, 'date' if c == 'date' else 'timestamp with time zone' if c == 'created_at' else
              'numeric(20,6)' if c in ('open', 'high', 'low', 'close', 'volume') else 'text')
             for c in ('ticker', 'region', 'date', 'open', 'high', 'low', 'close', 'volume', 'created_at'))


def test_whole_statements_of_the_fix():
    opts = dq.validate_options(params(fix=True, regions=['KR', 'US'], since='2024-06-01', until='2024-07-01'))
    assert _sql(dq.series_query(opts)) == SERIES_SQL
    assert _sql(dq.duplicate_rows_query(opts, delete=True)) == DELETE_SQL


class QualityDB(FakeDB):
    """public.ohlcv_data with one duplicated bar (SPX, US, 2024-06-03); the DELETE removes its later copy."""

    def __init__(self):
        day = datetime.date(2024, 6, 3)
        first, second = (datetime.datetime(2024, 6, 3, 22, m, tzinfo=datetime.timezone.utc) for m in (0, 5))
        self.copies = 2
        extra = {'ticker': 'SPX', 'region': 'US', 'time': day, 'created_at': second, 'open': 1.0, 'high': 2.0,
                 'low': 0.5, 'close': 1.5, 'volume': 10}
        finding = {'ticker': 'SPX', 'region': 'US', 'time': day, 'duplicate': True, 'copies': 2,
                   'earliest_created_at': first, 'latest_created_at': second, 'null_price': False,
                   'ohlc_invalid': False, 'outlier': False, 'missing_sessions': None, 'gap': False}
        super(QualityDB, self).__init__([
            ('FROM pg_catalog.pg_attribute a', [{'name': c, 'type': t} for c, t in TYPES.items()]),
            ('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', None),
            ('count(*) AS n FROM', [{'ticker': 'SPX', 'region': 'US', 'first_time': day, 'last_time': day, 'n': 40}]),
            ('WITH r1 AS', lambda p: [dict(finding, copies=self.copies)] if self.copies > 1 else []),
            ('JOIN ranked r', lambda p: [dict(extra)] if self.copies > 1 else []),
            ('DELETE FROM', lambda p: self.delete(extra)),
        ])

    def delete(self, extra):
        removed = [dict(extra)] * (self.copies - 1)
        self.copies = 1
        return removed


FIX = {'checks': ['duplicates'], 'fix': True, 'regions': ['KR', 'US'], 'since': '2024-06-01', 'until': '2024-07-01'}
FIX_OPTS = dq.validate_options(params(**FIX))
SCAN_SQL = _sql(dq.scan_query(FIX_OPTS))
# RV(queries) cuts each statement at the module's limit
SCAN_SQL_SHOWN = SCAN_SQL if len(SCAN_SQL) <= mod.QUERY_TEXT_LIMIT else SCAN_SQL[:mod.QUERY_TEXT_LIMIT] + ' ...'


def test_fix_in_check_mode_returns_the_delete_and_sends_it_not(install):
    db = install(QualityDB())
    result = run_ok(dict(FIX, _ansible_check_mode=True))
    assert result['changed'] is True and len(result['removed_rows']) == 1
    assert result['duplicates'] == [{'ticker': 'SPX', 'region': 'US', 'time': '2024-06-03', 'copies': 2,
                                     'earliest_created_at': '2024-06-03T22:00:00+00:00',
                                     'latest_created_at': '2024-06-03T22:05:00+00:00'}]
    assert result['scanned_rows'] == 40
    assert result['queries'][-1] == DELETE_SQL + '  -- check mode: not run'
    assert result['queries'][:2] == [SERIES_SQL, SCAN_SQL_SHOWN]
    assert not any('DELETE' in t for t in db.statements())
    assert db.statements()[:2] == ["SET statement_timeout = '10min'",
                                   'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY']
    assert SERIES_SQL in db.statements() and normalize_sql(SCAN_SQL) in db.statements()


def test_fix_sends_the_delete_once_then_is_unchanged(install):
    db = install(QualityDB())
    result = run_ok(FIX)
    assert result['changed'] is True and result['checks'][0]['status'] == 'ok'
    assert [t for t in db.statements() if 'DELETE' in t] == [DELETE_SQL]
    assert result['queries'] == [SERIES_SQL, SCAN_SQL_SHOWN, DELETE_SQL]
    assert sorted(result['timings']) == ['scan', 'series']
    assert 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY' not in db.statements()
    again = run_ok(FIX)
    assert again['changed'] is False and again['removed_rows'] == []
    assert [t for t in db.statements() if 'DELETE' in t] == [DELETE_SQL]


def _scan_text(**over):
    opts = dq.validate_options(params(**over))
    return _sql(dq.scan_query(opts))


def test_one_scan_reads_the_range_once_in_one_order():
    text = _scan_text(checks=['duplicates'], regions=['KR', 'US'], since='2024-06-01', until='2024-07-01')
    assert text.count('FROM "public"."ohlcv_data"') == 1
    assert RANGE in text
    assert text.endswith('ORDER BY "ticker", "region", time')
    # every window orders by a prefix of (key, time DESC, created_at), the seed's index order
    for window in ('WINDOW w AS (PARTITION BY k0, k1 ORDER BY t DESC, ca), p AS (PARTITION BY k0, k1 ORDER BY t DESC '
                   'RANGE BETWEEN CURRENT ROW AND CURRENT ROW)',
                   'FROM r2 WINDOW w AS (PARTITION BY k0, k1 ORDER BY t DESC, ca)', 'WINDOW s AS (PARTITION BY k0, k1)'):
        assert window in text
    # without the missing-days plan there is no series join
    assert 'unnest(' not in text and 'NULL::int AS missing_sessions' in text


def test_range_constants_allow_chunk_exclusion():
    text = _scan_text(checks=['duplicates'], since='2024-06-01', until='2024-07-01')
    assert """"date" >= '2024-06-01'::date""" in text
    assert """"date" < '2024-07-01'::date""" in text
    assert "r.t >= '2024-06-01'::date" in text


def test_outlier_statistics_read_the_lookback_but_report_the_range():
    text = _scan_text(since='2024-06-01', zscore_lookback_days=30)
    assert """"date" >= '2024-05-02'::date""" in text       # statistics from since - 30 days
    assert "WHERE r.t >= '2024-06-01'::date" in text
    assert 'stddev(daily_return) OVER s' in text and '> 3.0' in text and 'r.returns >= 20' in text
    # without the outlier check nothing before since is read
    without = _scan_text(since='2024-06-01', zscore_lookback_days=30, checks=['duplicates', 'null_prices'])
    assert "'2024-05-02'::date" not in without


def test_returns_use_the_earliest_copy_of_each_bar():
    text = _scan_text()
    assert '(lag(t) OVER w) IS DISTINCT FROM t AS first_copy' in text
    # statistics in double precision; the reported return is the column's type again (numeric), findings only
    assert ('CASE WHEN first_copy THEN (closef - lead(closef, copies::int) OVER w) '
            '/ NULLIF(lead(closef, copies::int) OVER w, 0) END AS daily_return') in text
    assert ('CASE WHEN r.first_copy THEN (r.close - r.prev_close) / NULLIF(r.prev_close, 0) END AS daily_return'
            in text)


def test_missing_sessions_are_two_array_lookups_per_bar():
    sessions = [datetime.date(2024, 1, 2), datetime.date(2024, 1, 3), datetime.date(2024, 1, 5)]
    cum, layout = dq.calendar_index({'XNYS': sessions})
    assert layout == {'XNYS': (0, datetime.date(2024, 1, 2), 4)}
    # sessions before Jan 2, 3, 4, 5, 6 (clamped beyond)
    assert cum == [0, 1, 2, 2, 3]
    opts = dq.validate_options(params())
    text = _sql(dq.scan_query(opts, [dict(HOSTILE_SERIES[0], key=['A', 'US'])], cum))
    assert "LEFT JOIN unnest('{0}'::int2[], '{A}'::text[], '{US}'::text[]" in text
    assert "('{0,1,2,2,3}'::int2[]::int4[])[s.off + least(greatest(r.t::date - s.base, 0), s.days) + 1]" in text
    assert 'r.k0 = s.k0 AND r.k1 = s.k1' in text


def test_calendar_index_lays_calendars_end_to_end():
    cum, layout = dq.calendar_index({'XNYS': [datetime.date(2024, 1, 2)],
                                     'XKRX': [datetime.date(2024, 1, 2), datetime.date(2024, 1, 3)]})
    assert layout['XKRX'] == (0, datetime.date(2024, 1, 2), 2) and layout['XNYS'] == (3, datetime.date(2024, 1, 2), 1)
    assert cum == [0, 1, 2, 0, 1]


def test_fix_keeps_the_earliest_created_at():
    opts = dq.validate_options(params(fix=True))
    text = _sql(dq.duplicate_rows_query(opts, delete=True))
    assert 'ORDER BY "created_at", ctid' in text
    assert 'DELETE FROM "public"."ohlcv_data" AS o USING ranked r' in text
    assert 'r.rn > 1' in text and 'RETURNING' in text


def test_invariants_cover_the_seed_rules():
    text = _scan_text()
    for rule in ('low > open', 'low > close', 'open > high', 'close > high', 'volume < 0'):
        assert "THEN '%s' END" % rule in text


def test_regions_filter_is_a_text_array_literal():
    opts = dq.validate_options(params(regions=['KR', 'US']))
    text = _sql(dq.series_query(opts))
    assert '"region" = ANY(' in text and 'text[]' in text


# --- calendars and fallback -----------------------------------------------------------------

def test_uncovered_ranges():
    d = datetime.date
    assert dq.uncovered_ranges(d(2000, 1, 1), d(2000, 12, 31), None) == [(d(2000, 1, 1), d(2000, 12, 31))]
    assert dq.uncovered_ranges(d(2000, 1, 1), d(2000, 12, 31), (d(2000, 3, 1), d(2000, 10, 31))) == [
        (d(2000, 1, 1), d(2000, 2, 29)), (d(2000, 11, 1), d(2000, 12, 31))]
    assert dq.uncovered_ranges(d(2000, 1, 1), d(2000, 12, 31), (d(2000, 1, 1), d(2000, 12, 31))) == []


xcals = pytest.importorskip  # alias for readability below


def test_xnys_sessions_exclude_holidays_and_weekends():
    exchange_calendars = xcals('exchange_calendars')
    cal = dq.calendar_sessions(exchange_calendars, 'XNYS', datetime.date(2018, 12, 20), datetime.date(2019, 1, 3))
    days = [s.isoformat() for s in cal['sessions']]
    assert '2018-12-25' not in days          # Christmas
    assert '2018-12-05' not in days          # outside the range
    assert '2018-12-22' not in days          # Saturday
    assert '2018-12-24' in days              # half day, still a session
    assert '2019-01-01' not in days
    assert cal['covered'] == (datetime.date(2018, 12, 20), datetime.date(2019, 1, 3))


def test_dates_before_a_calendars_bound_go_to_the_fallback():
    exchange_calendars = xcals('exchange_calendars')
    cal = dq.calendar_sessions(exchange_calendars, 'XKRX', datetime.date(1950, 1, 1), datetime.date(1956, 3, 1))
    assert cal['covered'][0] == datetime.date(1956, 1, 1) or cal['covered'][0] > datetime.date(1956, 1, 1)
    assert 'XKRX holidays are recorded from 1956-01-01' in cal['note']
    assert dq.uncovered_ranges(datetime.date(1950, 1, 1), datetime.date(1956, 3, 1), cal['covered'])[0][0] == \
        datetime.date(1950, 1, 1)


def test_unknown_calendar_code_raises():
    exchange_calendars = xcals('exchange_calendars')
    with pytest.raises(Exception):
        dq.calendar_sessions(exchange_calendars, 'NOPE', datetime.date(2020, 1, 1), datetime.date(2020, 2, 1))


def test_missing_library_is_reported(monkeypatch):
    import builtins
    real = builtins.__import__

    def fake(name, *a, **kw):
        if name == 'exchange_calendars':
            raise ImportError('No module named exchange_calendars')
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, '__import__', fake)
    module, version, error = dq.import_calendars()
    assert module is None and version is None and 'No module named exchange_calendars' in error


# --- judgement ------------------------------------------------------------------------------

def _c(name, count):
    return {'name': name, 'count': count}


def test_severity_levels():
    assert dq.severity([_c('duplicates', 0), _c('outliers', 0)], 1000, 0, False) == 'P3'
    assert dq.severity([_c('duplicates', 2), _c('outliers', 0)], 1000, 2, False) == 'P1'
    assert dq.severity([_c('duplicates', 2), _c('outliers', 0)], 1000, 2, True) == 'P3'
    assert dq.severity([_c('duplicates', 2), _c('outliers', 3)], 1000, 5, True) == 'P2'
    assert dq.severity([_c('outliers', 200)], 1000, 200, False) == 'P1'   # > 10 % of the data


def test_checklist_symbols():
    assert dq.checklist_line('ok', 'NULL prices', 'none') == '\u2713 NULL prices: none'
    assert dq.checklist_line('warning', 'X', 'y').startswith('\u26a0')
    assert dq.checklist_line('critical', 'X', 'y').startswith('\u2717')
    assert dq.worst(['ok', 'critical', 'warning']) == 'critical'
