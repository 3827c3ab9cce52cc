# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filters query_benchmark_checks (seed 002's Target / Acceptable / Critical judged on the p95,
rendered by health_checklist) and query_benchmark_metrics (the textfile collector's exposition)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter.health_checklist import health_checklist
from ansible_collections.quantops.platform.plugins.filter.query_benchmark import (
    FilterModule, query_benchmark_checks, query_benchmark_metrics)

# Seed 002, Performance Benchmarks > Query Performance Targets (ms).
SEED = {
    'single_ticker_250d': {'target': 100, 'acceptable': 200, 'critical': 500},
    'single_ticker_1y': {'target': 200, 'acceptable': 500, 'critical': 1000},
    'single_ticker_10y': {'target': 1000, 'acceptable': 2000, 'critical': 5000},
    'backtest': {'target': 5000, 'acceptable': 10000, 'critical': 30000},
    'portfolio_optimization': {'target': 10000, 'acceptable': 30000, 'critical': 60000},
}


def query(name, title, p50, p95, rows=250, runs=5):
    return {'name': name, 'title': title, 'p50_ms': p50, 'p95_ms': p95, 'rows': rows, 'times_ms': [p50] * runs}


RESULT = {'queries': [
    query('single_ticker_250d', 'Single ticker, 250 days', 3.0, 3.26),          # well under target
    query('single_ticker_1y', 'Single ticker, 1 year', 150.0, 700.0, 251),       # between acceptable and critical
    query('single_ticker_10y', 'Single ticker, 10 years', 900.0, 1500.0, 2516),  # acceptable
    query('backtest', 'Backtest (5 years, 50 tickers)', 20000.0, 30500.0, 62500),  # beyond critical
    query('portfolio_optimization', 'Portfolio optimization', 9000.0, 9999.99, 5050),  # just under target
]}


def by_subject(checks):
    return dict((c['subject'], c) for c in checks)


def test_each_query_lands_in_its_band_of_the_seed_table():
    checks = by_subject(query_benchmark_checks(RESULT, SEED))
    assert [(n, c['status'], c['band']) for n, c in sorted(checks.items())] == [
        ('backtest', 'critical', 'critical'),
        ('portfolio_optimization', 'ok', 'target'),
        ('single_ticker_10y', 'warning', 'acceptable'),
        ('single_ticker_1y', 'warning', 'above acceptable'),
        ('single_ticker_250d', 'ok', 'target'),
    ]
    assert checks['single_ticker_1y']['value'] == 700.0
    assert checks['backtest']['critical'] == 30000.0 and checks['backtest']['warning'] == 5000.0


@pytest.mark.parametrize('p95, status, band', [
    (99.99, 'ok', 'target'),
    (100.0, 'warning', 'acceptable'),       # "< 100" is the target: 100 misses it
    (199.99, 'warning', 'acceptable'),
    (200.0, 'warning', 'above acceptable'),
    (500.0, 'warning', 'above acceptable'),  # Critical is "> 500"
    (500.01, 'critical', 'critical'),
])
def test_the_edges_of_the_bands(p95, status, band):
    check = query_benchmark_checks({'queries': [query('single_ticker_250d', 'S', 1.0, p95)]}, SEED)[0]
    assert (check['status'], check['band']) == (status, band)


def test_p50_can_be_judged_instead():
    check = query_benchmark_checks({'queries': [query('single_ticker_1y', 'S', 150.0, 350.0)]}, SEED, 'p50')[0]
    assert (check['status'], check['value'], check['statistic']) == ('ok', 150.0, 'p50')


def test_a_prefix_names_the_runbook_step():
    checks = query_benchmark_checks(RESULT, SEED, prefix='1. Performance audit - ')
    assert [c['name'] for c in checks] == [
        '1. Performance audit - Single ticker, 250 days', '1. Performance audit - Single ticker, 1 year',
        '1. Performance audit - Single ticker, 10 years', '1. Performance audit - Backtest (5 years, 50 tickers)',
        '1. Performance audit - Portfolio optimization']
    assert [c['subject'] for c in checks] == [q['name'] for q in RESULT['queries']]


def test_the_checklist_lines_in_health_checklist_format():
    lines = health_checklist(query_benchmark_checks(RESULT, SEED), summary=True)
    assert lines == [
        u'\u2713 Single ticker, 250 days: p95 3.3 ms, p50 3 ms, 250 rows: target met (< 100 ms)',
        u'\u26a0 Single ticker, 1 year: p95 700 ms, p50 150 ms, 251 rows: above acceptable (< 500 ms), '
        u'not yet critical (> 1000 ms) (warning)',
        u'\u26a0 Single ticker, 10 years: p95 1500 ms, p50 900 ms, 2516 rows: acceptable, target < 1000 ms missed '
        u'(acceptable < 2000 ms) (warning)',
        u'\u2717 Backtest (5 years, 50 tickers): p95 30500 ms, p50 20000 ms, 62500 rows: critical (> 30000 ms) '
        u'(critical)',
        u'\u2713 Portfolio optimization: p95 10000 ms, p50 9000 ms, 5050 rows: target met (< 10000 ms)',
        u'Overall: critical (1 critical, 2 warning, 0 unknown, 2 ok)',
    ]


def test_a_query_without_a_target_or_a_time_is_unknown():
    result = {'queries': [query('single_ticker_250d', 'S', None, None), query('backtest', 'B', 1.0, 2.0)]}
    checks = by_subject(query_benchmark_checks(result, {'backtest': SEED['backtest']}))
    assert checks['single_ticker_250d']['status'] == 'unknown'
    assert checks['single_ticker_250d']['message'] == 'no p95 time measured'
    result = {'queries': [query('single_ticker_250d', 'S', 1.0, 2.0)]}
    check = query_benchmark_checks(result, {'backtest': SEED['backtest']})[0]
    assert (check['status'], check['message']) == ('unknown', 'no target for single_ticker_250d in the targets')


@pytest.mark.parametrize('targets, message', [
    ([], 'targets must be a dict'),
    ({'backtest': {'target': 1, 'acceptable': 2}}, 'exactly the keys target, acceptable and critical'),
    ({'backtest': {'target': 'fast', 'acceptable': 2, 'critical': 3}}, 'must be numbers of milliseconds'),
    ({'backtest': {'target': 3, 'acceptable': 2, 'critical': 1}}, '0 < target <= acceptable <= critical'),
    ({'backtest': {'target': 0, 'acceptable': 2, 'critical': 3}}, '0 < target <= acceptable <= critical'),
])
def test_bad_targets_are_refused_naming_the_query(targets, message):
    with pytest.raises(AnsibleFilterError, match=message):
        query_benchmark_checks({'queries': []}, targets)


def test_bad_input_is_refused():
    with pytest.raises(AnsibleFilterError, match='postgresql_query_benchmark'):
        query_benchmark_checks(['not', 'a', 'result'], SEED)
    with pytest.raises(AnsibleFilterError, match='query 0 of the result has no "name"'):
        query_benchmark_checks({'queries': [{'p95_ms': 1}]}, SEED)
    with pytest.raises(AnsibleFilterError, match='statistic must be one of p50, p95'):
        query_benchmark_checks(RESULT, SEED, 'p99')
    assert query_benchmark_checks({'queries': []}, SEED) == []


def test_metrics_exposition():
    result = {'queries': [query('single_ticker_250d', 'S', 3.0, 3.26), query('backtest', 'B', 20000.0, 30500.0, 62500)]}
    checks = query_benchmark_checks(result, SEED)
    text = query_benchmark_metrics(result, checks, 1765152000.7)
    assert text.endswith('\n')
    lines = text.splitlines()
    assert lines == [
        "# HELP quantops_query_benchmark_seconds Wall time of seed 002's query types (execute and fetch every row), "
        "quantiles of the measured runs.",
        '# TYPE quantops_query_benchmark_seconds gauge',
        'quantops_query_benchmark_seconds{query="single_ticker_250d",quantile="0.5"} 0.003',
        'quantops_query_benchmark_seconds{query="single_ticker_250d",quantile="0.95"} 0.00326',
        'quantops_query_benchmark_seconds{query="backtest",quantile="0.5"} 20.0',
        'quantops_query_benchmark_seconds{query="backtest",quantile="0.95"} 30.5',
        '# HELP quantops_query_benchmark_rows Rows the query returned.',
        '# TYPE quantops_query_benchmark_rows gauge',
        'quantops_query_benchmark_rows{query="single_ticker_250d"} 250',
        'quantops_query_benchmark_rows{query="backtest"} 62500',
        '# HELP quantops_query_benchmark_runs Measured runs of the query (warm-up runs excluded).',
        '# TYPE quantops_query_benchmark_runs gauge',
        'quantops_query_benchmark_runs{query="single_ticker_250d"} 5',
        'quantops_query_benchmark_runs{query="backtest"} 5',
        "# HELP quantops_query_benchmark_target_seconds The seed's Target, Acceptable and Critical times.",
        '# TYPE quantops_query_benchmark_target_seconds gauge',
        'quantops_query_benchmark_target_seconds{query="single_ticker_250d",level="target"} 0.1',
        'quantops_query_benchmark_target_seconds{query="single_ticker_250d",level="acceptable"} 0.2',
        'quantops_query_benchmark_target_seconds{query="single_ticker_250d",level="critical"} 0.5',
        'quantops_query_benchmark_target_seconds{query="backtest",level="target"} 5.0',
        'quantops_query_benchmark_target_seconds{query="backtest",level="acceptable"} 10.0',
        'quantops_query_benchmark_target_seconds{query="backtest",level="critical"} 30.0',
        '# HELP quantops_query_benchmark_status 0 target met, 1 missed but not critical, 2 critical, 3 unknown.',
        '# TYPE quantops_query_benchmark_status gauge',
        'quantops_query_benchmark_status{query="single_ticker_250d"} 0',
        'quantops_query_benchmark_status{query="backtest"} 2',
        '# HELP quantops_query_benchmark_last_run_timestamp_seconds When the benchmark last ran.',
        '# TYPE quantops_query_benchmark_last_run_timestamp_seconds gauge',
        'quantops_query_benchmark_last_run_timestamp_seconds 1765152000',
    ]


def test_metrics_without_checks_have_no_targets_and_labels_are_escaped():
    text = query_benchmark_metrics({'queries': [query('a"b\\c', 'X', 1.0, 2.0)]})
    assert 'quantops_query_benchmark_target_seconds' not in text
    assert 'quantops_query_benchmark_status' not in text
    assert 'last_run_timestamp' not in text
    assert 'quantops_query_benchmark_rows{query="a\\"b\\\\c"} 250' in text


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {'query_benchmark_checks', 'query_benchmark_metrics'}
