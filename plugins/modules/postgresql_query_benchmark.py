#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: postgresql_query_benchmark
short_description: Time seed 002's query types on the platform schema (p50, p95)
version_added: 0.1.0
description:
  - Runs the query types of seed 002's I(Performance Benchmarks, Query Performance Targets) table against the
    platform schema (C(ohlcv_data), C(technical_analysis), C(factor_scores)) and returns, for each, the wall time
    of every run in milliseconds and their p50 and p95.
  - The seed names the query types but not their SQL; the statements are this collection's definition, written
    from the seed's text, and returned exactly as sent in RV(queries[].sql).
    C(single_ticker_250d) reads the last 250 daily bars of one ticker (C(ORDER BY date DESC LIMIT 250));
    C(single_ticker_1y) and C(single_ticker_10y) read one ticker's OHLCV bars of the 1 or 10 calendar years
    ending on the end date, oldest first (the seed's own C(EXPLAIN ANALYZE) example);
    C(backtest) reads, for O(backtest_tickers) tickers of one region over O(backtest_years) years, close, volume,
    the daily return (window function) and the same day's technical indicators (SMA 20/50/200, RSI 14);
    C(portfolio_optimization) computes the inputs of a mean-variance optimisation of O(portfolio_tickers)
    tickers over O(portfolio_years) years - each ticker's mean daily return and the covariance of daily
    returns of every pair (C(covar_samp) over a self-join on date) - with each ticker's latest factor scores.
  - A run is the statement executed and all its rows fetched by the client (the module runs on the database
    host); the time is measured around both with a monotonic clock. O(warmup_runs) runs of each query come
    first and are not counted (they fill the caches); then O(runs) measured runs.
  - The session is read-only (C(SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY)), so nothing can be changed.
  - The single ticker, the region and the universes are chosen by the module unless given - the ticker with the
    most bars in the 10 years before the end date, and the tickers of its region with the most bars - and
    returned in RV(parameters).
options:
  queries:
    description:
      - The query types to run, in this order.
    type: list
    elements: str
    choices: [ single_ticker_250d, single_ticker_1y, single_ticker_10y, backtest, portfolio_optimization ]
    default: [ single_ticker_250d, single_ticker_1y, single_ticker_10y, backtest, portfolio_optimization ]
  runs:
    description:
      - Measured runs of each query (at least 1). p50 and p95 are computed over these.
    type: int
    default: 5
  warmup_runs:
    description:
      - Runs of each query before the measured ones, not counted (0 or more).
    type: int
    default: 1
  schema:
    description:
      - Schema of the platform tables C(ohlcv_data), C(technical_analysis) and C(factor_scores).
    type: str
    default: public
  ticker:
    description:
      - Ticker of the single-ticker queries. Default the ticker with the most bars in the 10 years before the
        end date (of O(region) when given).
    type: str
  region:
    description:
      - Region of every query. Default the region of the chosen ticker.
    type: str
  end_date:
    description:
      - Last day of every window, as C(YYYY-MM-DD). Default the newest C(date) of C(ohlcv_data), so that
        historical data is benchmarked over its own last years.
    type: str
  backtest_tickers:
    description:
      - Tickers of the backtest (the seed's 50); fewer when the region has fewer.
    type: int
    default: 50
  backtest_years:
    description:
      - Years of the backtest window (the seed's 5).
    type: int
    default: 5
  portfolio_tickers:
    description:
      - Tickers of the portfolio optimization universe; fewer when the region has fewer.
    type: int
    default: 100
  portfolio_years:
    description:
      - Years of daily returns of the portfolio optimization's covariance (1 year, about 250 trading days, is the
        usual estimation window).
    type: int
    default: 1
extends_documentation_fragment:
  - quantops.platform.postgres
  - quantops.platform.attributes
  - quantops.platform.attributes.info_module
notes:
  - C(changed) is always false; in check mode the queries run as in a normal run (they change nothing).
  - Without O(statement_timeout) each statement may run 120 seconds (C(120s)); a query cancelled by it fails
    the module naming the query.
  - "Privileges: SELECT on the three tables (C(quant_app), the C(reporting) role or C(postgres))."
  - Judge the result with the filter P(quantops.platform.query_benchmark_checks#filter) (the seed's Target, Acceptable
    and Critical columns) and export it with P(quantops.platform.query_benchmark_metrics#filter).
  - "Source: seed 002 I(Reference, Performance Benchmarks) (the table) and I(Quarterly Maintenance, Performance
    Audit) (run the benchmarks, compare against the baseline)."
seealso:
  - module: quantops.platform.postgresql_health_info
  - name: Using EXPLAIN
    description: How to read the plan of a query that misses its target.
    link: https://www.postgresql.org/docs/current/using-explain.html
author:
  - quantops.platform maintainers (@quantops)
'''

EXAMPLES = r'''
- name: Seed 002 performance benchmark, 5 runs of each query type after one warm-up
  quantops.platform.postgresql_query_benchmark:
    login_db: quant_platform
  become: true
  become_user: postgres
  register: bench

- name: Print p50 and p95 of each query
  ansible.builtin.debug:
    msg: "{{ bench.queries | map(attribute='name') | zip(bench.queries | map(attribute='p95_ms')) }}"

- name: Only the single-ticker queries of one ticker, 10 runs, historical data up to 2018
  quantops.platform.postgresql_query_benchmark:
    queries: [single_ticker_250d, single_ticker_1y, single_ticker_10y]
    ticker: SPX
    region: US
    end_date: "2018-12-31"
    runs: 10
  become: true
  become_user: postgres
'''

RETURN = r'''
parameters:
  description: What the queries ran on.
  returned: always
  type: dict
  contains:
    region:
      description: Region of every query.
      type: str
      sample: US
    ticker:
      description: Ticker of the single-ticker queries.
      type: str
      sample: SPX
    end_date:
      description: Last day of every window.
      type: str
      sample: "2018-12-31"
    backtest_tickers:
      description: Tickers of the backtest.
      type: list
      elements: str
      sample: [IXIC, SPX]
    portfolio_tickers:
      description: Tickers of the portfolio optimization.
      type: list
      elements: str
      sample: [IXIC, SPX]
    runs:
      description: Measured runs of each query.
      type: int
      sample: 5
    warmup_runs:
      description: Warm-up runs of each query (not counted).
      type: int
      sample: 1
queries:
  description: One entry per query type run, in the order of O(queries).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Query type (a value of O(queries)).
      type: str
      sample: single_ticker_250d
    title:
      description: The row of the seed's table.
      type: str
      sample: Single ticker, 250 days
    sql:
      description: The statement exactly as sent.
      type: str
      sample: "SELECT date, open, high, low, close, volume FROM \"public\".\"ohlcv_data\" WHERE ticker = 'SPX' AND
               region = 'US' AND date <= '2018-12-31'::date ORDER BY date DESC LIMIT 250"
    rows:
      description: Rows the query returned (the last measured run).
      type: int
      sample: 250
    warmup_ms:
      description: Wall time of each warm-up run, milliseconds.
      type: list
      elements: float
      sample: [14.2]
    times_ms:
      description: Wall time of each measured run (execute and fetch every row), milliseconds.
      type: list
      elements: float
      sample: [3.1, 2.9, 3.0, 3.3, 2.8]
    p50_ms:
      description: Median of times_ms (linear interpolation), milliseconds.
      type: float
      sample: 3.0
    p95_ms:
      description: 95th percentile of times_ms (linear interpolation between closest ranks), milliseconds.
      type: float
      sample: 3.26
    min_ms:
      description: Fastest measured run, milliseconds.
      type: float
      sample: 2.8
    max_ms:
      description: Slowest measured run, milliseconds.
      type: float
      sample: 3.3
    mean_ms:
      description: Mean of times_ms, milliseconds.
      type: float
      sample: 3.02
server:
  description: The server the queries ran on and the settings that shape them.
  returned: always
  type: dict
  sample: {"server_version": "17.11", "timescaledb_version": "2.19.3", "shared_buffers": "512MB",
           "effective_cache_size": "1536MB", "work_mem": "5242kB", "random_page_cost": "1.1",
           "max_parallel_workers_per_gather": "1", "jit": "off"}
'''

import time

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.quantops.platform.plugins.module_utils.postgres import (
    IdentifierError, Query, TypedArray, fetch_all_dicts, fetch_one_dict, pg_session,
    postgres_common_argument_spec, psycopg, start_module, validate_identifier
)
from ansible_collections.quantops.platform.plugins.module_utils import query_benchmark as qb

STATEMENT_TIMEOUT = '120s'
READ_ONLY_SQL = 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY'
UNIVERSE_YEARS = 10
SETTINGS = ('shared_buffers', 'effective_cache_size', 'work_mem', 'random_page_cost', 'effective_io_concurrency',
            'max_parallel_workers_per_gather', 'jit')
SERVER_SQL = ("SELECT current_setting('server_version') AS server_version, "
              "(SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') AS timescaledb_version, "
              + ', '.join("current_setting('%s') AS %s" % (s, s) for s in SETTINGS))


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        queries=dict(type='list', elements='str', choices=list(qb.QUERY_NAMES), default=list(qb.QUERY_NAMES)),
        runs=dict(type='int', default=5),
        warmup_runs=dict(type='int', default=1),
        schema=dict(type='str', default='public'),
        ticker=dict(type='str'),
        region=dict(type='str'),
        end_date=dict(type='str'),
        backtest_tickers=dict(type='int', default=50),
        backtest_years=dict(type='int', default=5),
        portfolio_tickers=dict(type='int', default=100),
        portfolio_years=dict(type='int', default=1),
    )
    return spec


def validate_options(params):
    """Check what the argument spec cannot; raise ValueError for the user. Returns the end date or None."""
    if not params['queries']:
        raise ValueError('queries must name at least one query type: %s' % ', '.join(qb.QUERY_NAMES))
    if params['runs'] < 1:
        raise ValueError('runs must be 1 or more, got %s' % params['runs'])
    if params['warmup_runs'] < 0:
        raise ValueError('warmup_runs must be 0 or more, got %s' % params['warmup_runs'])
    for option in ('backtest_tickers', 'backtest_years', 'portfolio_tickers', 'portfolio_years'):
        if params[option] < 1:
            raise ValueError('%s must be 1 or more, got %s' % (option, params[option]))
    try:
        validate_identifier(params['schema'], 'schema')
    except IdentifierError as e:
        raise ValueError(to_native(e))
    for option in ('ticker', 'region'):
        if params.get(option) is not None and not params[option].strip():
            raise ValueError('%s must not be empty (leave it out to let the module choose)' % option)
    if params.get('end_date'):
        return qb.parse_date(params['end_date'])
    return None


def build_queries(params, schema, region, ticker, end, backtest_universe, portfolio_universe):
    """The Query of each requested type, in order: [(name, Query)]."""
    tables = {'ohlcv': (schema, 'ohlcv_data'), 'technical': (schema, 'technical_analysis'),
              'factors': (schema, 'factor_scores')}
    single = {'ticker': ticker, 'region': region, 'end': end}
    built = {
        'single_ticker_250d': Query(qb.SINGLE_LAST_DAYS_SQL, tables, dict(single, days=250)),
        'single_ticker_1y': Query(qb.SINGLE_RANGE_SQL, tables, dict(single, start=qb.years_before(end, 1))),
        'single_ticker_10y': Query(qb.SINGLE_RANGE_SQL, tables, dict(single, start=qb.years_before(end, 10))),
        'backtest': Query(qb.BACKTEST_SQL, tables, {
            'region': region, 'tickers': TypedArray(backtest_universe, 'text'),
            'start': qb.years_before(end, params['backtest_years']), 'end': end}),
        'portfolio_optimization': Query(qb.PORTFOLIO_SQL, tables, {
            'region': region, 'tickers': TypedArray(portfolio_universe, 'text'),
            'start': qb.years_before(end, params['portfolio_years']), 'end': end}),
    }
    return [(name, built[name]) for name in params['queries']]


def time_query(cur, statement):
    """Execute a composed statement and fetch every row; return (milliseconds, rows)."""
    started = time.perf_counter()
    cur.execute(statement)
    rows = len(cur.fetchall()) if cur.description is not None else 0
    return (time.perf_counter() - started) * 1000.0, rows


def run_module():
    module, end = start_module(argument_spec(), validate_options)
    params = module.params

    schema = params['schema']
    ohlcv = {'ohlcv': (schema, 'ohlcv_data')}
    result = dict(changed=False, parameters={}, queries=[], server={})
    with pg_session(module, STATEMENT_TIMEOUT) as conn:
        cur = conn.cursor()
        try:
            cur.execute(READ_ONLY_SQL)
            result['server'] = fetch_one_dict(cur, SERVER_SQL)
            if end is None:
                row = fetch_one_dict(cur, Query(qb.END_DATE_SQL, ohlcv))
                if not row or not row['end_date']:
                    module.fail_json(msg='%s.ohlcv_data has no rows: nothing to benchmark' % schema)
                end = qb.parse_date(row['end_date'])
            rows = fetch_all_dicts(cur, Query(qb.UNIVERSE_SQL, ohlcv, {
                'start': qb.years_before(end, UNIVERSE_YEARS), 'end': end}))
        except psycopg.Error as e:
            module.fail_json(msg='Could not read %s.ohlcv_data: %s' % (schema, to_native(e).strip()))
        try:
            region, ticker, universe = qb.choose_universe(
                rows, params.get('ticker'), params.get('region'),
                max(params['backtest_tickers'], params['portfolio_tickers']))
        except ValueError as e:
            module.fail_json(msg='%s (end date %s)' % (to_native(e), end.isoformat()))
        backtest_universe = universe[:params['backtest_tickers']]
        portfolio_universe = universe[:params['portfolio_tickers']]
        result['parameters'] = dict(region=region, ticker=ticker, end_date=end.isoformat(),
                                    backtest_tickers=backtest_universe, portfolio_tickers=portfolio_universe,
                                    runs=params['runs'], warmup_runs=params['warmup_runs'])
        for name, query in build_queries(params, schema, region, ticker, end, backtest_universe, portfolio_universe):
            statement = query.compose(conn)
            entry = dict(name=name, title=qb.TITLES[name], sql=statement.as_string(conn), rows=0,
                         warmup_ms=[], times_ms=[])
            try:
                for index in range(params['warmup_runs'] + params['runs']):
                    elapsed, count = time_query(cur, statement)
                    if index < params['warmup_runs']:
                        entry['warmup_ms'].append(round(elapsed, 2))
                    else:
                        entry['times_ms'].append(round(elapsed, 2))
                        entry['rows'] = count
            except psycopg.Error as e:
                module.fail_json(msg='Query %s (%s) failed: %s' % (name, qb.TITLES[name], to_native(e).strip()),
                                 **result)
            entry.update(qb.summarize(entry['times_ms']))
            result['queries'].append(entry)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
