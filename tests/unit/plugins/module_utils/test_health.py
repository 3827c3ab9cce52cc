# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Threshold classification, overrides and checklist rendering of module_utils/health.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import pytest

from ansible_collections.quantops.platform.plugins.module_utils import health

GIB = 1024 ** 3
UTC = datetime.timezone.utc


@pytest.fixture
def th():
    return health.merge_thresholds()


# --- defaults and their sources ------------------------------------------------

def test_every_default_threshold_cites_a_source():
    for key, spec in health.DEFAULT_THRESHOLDS.items():
        assert spec['source'].strip(), key
        assert spec['unit'], key
        assert spec['check'] in health.CHECK_NAMES, key
        assert spec['operator'] in health.OPERATORS, key


@pytest.mark.parametrize('key, value', [
    ('database_size_critical_bytes', 100 * GIB),
    ('database_size_warning_bytes', 80 * GIB),
    ('connections_warning', 20),
    ('connections_critical_pct', 80),
    ('slow_statement_ms', 1000),
    ('slow_statements_warning', 10),
    ('slow_statements_critical', None),
    ('cache_hit_warning_pct', 95),
    ('cache_hit_critical_pct', 90),
    ('index_hit_warning_pct', 90),
    ('dead_tuple_warning_pct', 10),
    ('dead_tuple_min_live_tuples', 1000),
    ('hit_ratio_min_blocks', 1000),
    ('freshness_warning_hours', 24),
    ('freshness_stale_days', 7),
    ('uncompressed_chunks_warning', 100),
])
def test_default_values_match_the_seeds(key, value):
    assert health.default_thresholds()[key] == value


def test_seed_citations_name_the_seed_alerts():
    src = dict((k, v['source']) for k, v in health.DEFAULT_THRESHOLDS.items())
    assert 'DatabaseSizeCritical' in src['database_size_critical_bytes']
    assert 'IndexHitRateLow' in src['index_hit_warning_pct']
    assert 'DataStale' in src['freshness_stale_days']
    assert 'CompressionNotEnabled' in src['uncompressed_chunks_warning']
    assert 'seed 003' in src['cache_hit_warning_pct']
    assert 'Morning Checklist' in src['connections_warning']


# --- merge_thresholds ---------------------------------------------------------------

def test_merge_overrides_one_key_and_keeps_the_rest():
    merged = health.merge_thresholds({'connections_warning': 40})
    assert merged['connections_warning'] == 40
    assert merged['slow_statements_warning'] == 10


def test_merge_accepts_numeric_strings():
    merged = health.merge_thresholds({'connections_warning': '40', 'cache_hit_warning_pct': '97.5'})
    assert merged['connections_warning'] == 40
    assert merged['cache_hit_warning_pct'] == 97.5


def test_unknown_key_lists_valid_keys():
    with pytest.raises(health.ThresholdError) as e:
        health.merge_thresholds({'conections_warning': 5})
    msg = str(e.value)
    assert 'Unknown threshold key(s): conections_warning' in msg
    assert 'Valid keys:' in msg
    for key in health.DEFAULT_THRESHOLDS:
        assert key in msg


@pytest.mark.parametrize('value, fragment', [
    ('abc', "must be a number, got str 'abc'"),
    ([20], 'must be a number, got list'),
    (True, 'must be a number, got bool'),
    ({'a': 1}, 'must be a number, got dict'),
    (float('nan'), 'must be a finite number'),
])
def test_wrong_type_is_rejected(value, fragment):
    with pytest.raises(health.ThresholdError) as e:
        health.merge_thresholds({'connections_warning': value})
    assert fragment in str(e.value)
    assert 'thresholds.connections_warning' in str(e.value)


def test_negative_and_out_of_range_percentages_are_rejected():
    with pytest.raises(health.ThresholdError, match='must not be negative'):
        health.merge_thresholds({'slow_statement_ms': -1})
    with pytest.raises(health.ThresholdError, match=r'percentage \(0-100\)'):
        health.merge_thresholds({'cache_hit_warning_pct': 101})


def test_null_only_where_a_level_can_be_disabled():
    assert health.merge_thresholds({'cache_hit_critical_pct': None})['cache_hit_critical_pct'] is None
    with pytest.raises(health.ThresholdError, match='cannot be null'):
        health.merge_thresholds({'connections_warning': None})


def test_warning_must_not_pass_critical():
    with pytest.raises(health.ThresholdError, match='must not be above'):
        health.merge_thresholds({'database_size_warning_bytes': 200 * GIB})
    with pytest.raises(health.ThresholdError, match='lower is worse'):
        health.merge_thresholds({'cache_hit_critical_pct': 96})
    # consistent when both move
    merged = health.merge_thresholds({'cache_hit_warning_pct': 99, 'cache_hit_critical_pct': 96})
    assert (merged['cache_hit_warning_pct'], merged['cache_hit_critical_pct']) == (99, 96)


def test_thresholds_must_be_a_dict():
    with pytest.raises(health.ThresholdError, match='must be a dict'):
        health.merge_thresholds(['connections_warning'])


# --- classify -----------------------------------------------------------------------------

@pytest.mark.parametrize('value, operator, expected', [
    (10, '>', 'ok'), (10.0001, '>', 'warning'), (20, '>', 'warning'), (20.5, '>', 'critical'),
    (9, '>=', 'ok'), (10, '>=', 'warning'), (20, '>=', 'critical'),
])
def test_classify_above(value, operator, expected):
    assert health.classify(value, warning=10, critical=20, operator=operator) == expected


@pytest.mark.parametrize('value, expected', [(95, 'ok'), (94.99, 'warning'), (90, 'warning'), (89.99, 'critical')])
def test_classify_below(value, expected):
    assert health.classify(value, warning=95, critical=90, operator='<') == expected


def test_classify_none_is_unknown_and_missing_levels_never_fire():
    assert health.classify(None, 1, 2) == 'unknown'
    assert health.classify(10 ** 9, warning=None, critical=None) == 'ok'
    with pytest.raises(ValueError):
        health.breached(1, 1, '=')


# --- database size ----------------------------------------------------------------------------

@pytest.mark.parametrize('size, expected', [
    (12 * 1024 ** 2, 'ok'),
    (80 * GIB, 'ok'),            # seed: warning when > 80 GB
    (80 * GIB + 1, 'warning'),
    (100 * GIB, 'warning'),      # seed: DatabaseSizeCritical when > 100GB
    (100 * GIB + 1, 'critical'),
])
def test_database_size_boundaries(th, size, expected):
    check = health.check_database_size(size, th, 'quant_platform')
    assert check['status'] == expected
    assert check['unit'] == 'bytes'
    assert check['warning'] == 80 * GIB and check['critical'] == 100 * GIB
    assert 'DatabaseSizeCritical' in check['source']


# --- connections --------------------------------------------------------------------------------

def _conn(db_total, server_total, max_connections=100, reserved=3, reserved16=0, active=1):
    return {'database_total': db_total, 'database_active': active, 'server_total': server_total,
            'max_connections': max_connections, 'superuser_reserved_connections': reserved,
            'reserved_connections': reserved16}


@pytest.mark.parametrize('db_total, server_total, expected', [
    (19, 19, 'ok'),
    (20, 20, 'warning'),        # seed 002: expected < 20
    (5, 77, 'ok'),              # 77 < ceil(0.8 * 97) = 78
    (5, 78, 'critical'),        # server-wide >= 80 % of usable slots
    (30, 90, 'critical'),
])
def test_connections_boundaries(th, db_total, server_total, expected):
    check = health.check_connections(_conn(db_total, server_total), th, 'quant_platform')
    assert check['status'] == expected
    assert check['critical'] == 78
    assert check['warning'] == 20


def test_connections_usable_slots_subtract_both_reservations(th):
    assert health.usable_connections(100, 3, 2) == 95
    check = health.check_connections(_conn(1, 76, reserved16=2), th)
    assert check['critical'] == 76   # ceil(0.8 * 95)
    assert check['status'] == 'critical'
    assert 'server-wide 76 of 95 usable slots' in check['display']


def test_connections_critical_can_be_disabled(th):
    th['connections_critical_pct'] = None
    check = health.check_connections(_conn(1, 99), th)
    assert check['status'] == 'ok'
    assert check['critical'] is None


# --- slow statements ---------------------------------------------------------------------------------

@pytest.mark.parametrize('count, expected', [(0, 'ok'), (9, 'ok'), (10, 'warning'), (500, 'warning')])
def test_slow_statements_have_no_critical_by_default(th, count, expected):
    check = health.check_slow_statements({'installed': True, 'count': count}, th)
    assert check['status'] == expected
    assert check['critical'] is None


def test_slow_statements_critical_override(th):
    th['slow_statements_critical'] = 50
    assert health.check_slow_statements({'installed': True, 'count': 49}, th)['status'] == 'warning'
    assert health.check_slow_statements({'installed': True, 'count': 50}, th)['status'] == 'critical'


def test_slow_statements_without_extension_is_unknown_with_advice(th):
    check = health.check_slow_statements({'installed': False}, th)
    assert check['status'] == 'unknown'
    assert 'CREATE EXTENSION pg_stat_statements' in check['message']
    assert 'shared_preload_libraries' in check['message']


# --- cache hit ratio --------------------------------------------------------------------------------

@pytest.mark.parametrize('hit, read, expected', [
    (9500, 500, 'ok'),         # exactly 95 %: the SLO is "> 95 %", the alert "< 95 %"
    (9499, 501, 'warning'),
    (9000, 1000, 'warning'),   # exactly 90 %
    (8999, 1001, 'critical'),
])
def test_cache_hit_boundaries(th, hit, read, expected):
    check = health.check_cache_hit(hit, read, th)
    assert check['status'] == expected
    assert check['operator'] == '<'


def test_hit_ratios_need_a_minimum_of_block_requests(th):
    assert health.default_thresholds()['hit_ratio_min_blocks'] == 1000
    few = health.check_cache_hit(1, 998, th)            # 999 requests, 0.1 % hit
    assert few['status'] == 'ok' and few['value'] is None
    assert 'fewer than hit_ratio_min_blocks = 1000' in few['message']
    assert health.check_cache_hit(1, 999, th)['status'] == 'critical'     # 1000 requests are judged
    index = health.check_index_hit([_table('ohlcv_data', idx_hit=1, idx_read=998)], th)
    assert [(c['name'], c['status']) for c in index] == [('Index hit ratio', 'ok')]
    th['hit_ratio_min_blocks'] = 0
    assert health.check_index_hit([_table('ohlcv_data', idx_hit=1, idx_read=998)], th)[0]['status'] == 'warning'


def test_cache_hit_without_reads_is_not_evaluated(th):
    check = health.check_cache_hit(0, 0, th)
    assert check['status'] == 'ok'
    assert check['value'] is None
    assert 'not evaluated' in check['display']


# --- per-table checks ---------------------------------------------------------------------------------

def _table(name, live=0, dead=0, idx_hit=None, idx_read=None):
    return {'schema': 'public', 'name': name, 'live_tuples': live, 'dead_tuples': dead,
            'idx_blks_hit': idx_hit, 'idx_blks_read': idx_read}


def test_index_hit_per_table_and_not_evaluated_tables(th):
    tables = [_table('ohlcv_data', idx_hit=900, idx_read=100),     # 90 % -> ok
              _table('factor_scores', idx_hit=899, idx_read=101),  # 89.9 % -> warning
              _table('tickers', idx_hit=0, idx_read=0),            # no index reads
              _table('notes')]                                     # no index at all
    checks = health.check_index_hit(tables, th)
    by_name = dict((c['name'], c) for c in checks)
    assert by_name['Index hit ratio (public.ohlcv_data)']['status'] == 'ok'
    assert by_name['Index hit ratio (public.factor_scores)']['status'] == 'warning'
    summary = by_name['Index hit ratio']
    assert summary['status'] == 'ok'
    assert 'public.tickers' in summary['message'] and 'public.notes' in summary['message']
    assert len(checks) == 3


def test_index_hit_without_tables(th):
    checks = health.check_index_hit([], th)
    assert [c['status'] for c in checks] == ['ok']
    assert checks[0]['display'] == 'no user tables'


@pytest.mark.parametrize('live, dead, expected', [
    (9000, 999, 'ok'),        # 9.999 %
    (9000, 1000, 'warning'),  # exactly 10 %: anchors alert at >= 0.1
    (1000, 5000, 'warning'),
])
def test_dead_tuple_boundaries(th, live, dead, expected):
    checks = health.check_dead_tuples([_table('ohlcv_data', live, dead)], th)
    assert len(checks) == 1
    assert checks[0]['status'] == expected


def test_dead_tuples_ignore_small_tables(th):
    checks = health.check_dead_tuples([_table('tickers', live=999, dead=5000)], th)
    assert len(checks) == 1
    assert checks[0]['status'] == 'ok'
    assert 'fewer than 1000 live tuples' in checks[0]['message']
    assert 'public.tickers' in checks[0]['message']


# --- freshness ------------------------------------------------------------------------------------------

def _group(name, hours):
    return {'group': name, 'latest': '2024-01-01', 'age_seconds': hours * 3600.0}


@pytest.mark.parametrize('hours, expected', [(0, 'ok'), (23.99, 'ok'), (24, 'warning'), (24 * 1000, 'warning')])
def test_freshness_is_never_critical(th, hours, expected):
    checks = health.check_freshness([_group('FX', hours)], th, 'public.ohlcv_data')
    assert checks[0]['status'] == expected
    assert checks[0]['critical'] is None
    assert checks[0]['name'] == 'Data freshness (FX)'


def test_freshness_names_data_stale_after_seven_days(th):
    fresh_week = health.check_freshness([_group('US', 7 * 24)], th)[0]
    stale = health.check_freshness([_group('US', 7 * 24 + 1)], th)[0]
    assert 'DataStale' not in fresh_week['message']
    assert 'DataStale' in stale['message']
    assert stale['status'] == 'warning'


def test_freshness_empty_table_and_unreadable_table(th):
    empty = health.check_freshness([], th, 'public.ohlcv_data')
    assert [c['status'] for c in empty] == ['warning']
    assert 'holds no rows' in empty[0]['message']
    missing = health.check_freshness([], th, error='Table public.ohlcv_data does not exist')
    assert [c['status'] for c in missing] == ['unknown']
    assert 'does not exist' in missing[0]['message']


# --- hypertable chunks -----------------------------------------------------------------------------------

TSL = {'installed': True, 'version': '2.17.2', 'license': 'timescale'}
APACHE = {'installed': True, 'version': '2.17.2', 'license': 'apache'}


def _ht(uncompressed, compressed=0, enabled=False):
    return {'schema': 'public', 'name': 'ohlcv_data', 'total_chunks': uncompressed + compressed,
            'compressed_chunks': compressed, 'uncompressed_chunks': uncompressed, 'compression_enabled': enabled}


@pytest.mark.parametrize('uncompressed, expected', [(100, 'ok'), (101, 'warning')])
def test_chunks_with_compression_available(th, uncompressed, expected):
    check = health.check_hypertable_chunks([_ht(uncompressed)], TSL, th)[0]
    assert check['status'] == expected
    if expected == 'warning':
        assert 'timescaledb.compress' in check['message']


def test_chunks_without_tsl_are_ok_and_say_why(th):
    check = health.check_hypertable_chunks([_ht(500)], APACHE, th)[0]
    assert check['status'] == 'ok'
    assert 'TSL' in check['message']
    assert 'license apache' in check['message']


def test_chunks_without_timescaledb_or_hypertables(th):
    absent = health.check_hypertable_chunks([], {'installed': False}, th, 'quant_platform')
    assert [c['status'] for c in absent] == ['unknown']
    assert 'not installed in quant_platform' in absent[0]['message']
    none = health.check_hypertable_chunks([], TSL, th)
    assert [c['status'] for c in none] == ['ok']


# --- overall status and rendering --------------------------------------------------------------------------

def _status(*statuses):
    return [{'status': s, 'name': s} for s in statuses]


@pytest.mark.parametrize('statuses, expected', [
    ((), 'ok'),
    (('ok', 'ok'), 'ok'),
    (('ok', 'unknown'), 'unknown'),
    (('unknown', 'warning', 'ok'), 'warning'),
    (('warning', 'critical', 'unknown'), 'critical'),
])
def test_overall_status_precedence(statuses, expected):
    assert health.overall_status(_status(*statuses)) == expected


def test_count_statuses():
    assert health.count_statuses(_status('ok', 'ok', 'warning', 'unknown')) == {
        'ok': 2, 'warning': 1, 'critical': 0, 'unknown': 1}


def test_render_checklist_lines(th):
    checks = [
        health.check_database_size(int(12.3 * 1024 ** 2), th),
        health.check_freshness([_group('FX', 327 * 24 + 5)], th, 'public.ohlcv_data')[0],
        health.check_database_size(120 * GIB, th),
        health.check_slow_statements({'installed': False, 'error': 'pg_stat_statements is not installed'}, th),
    ]
    assert health.render_checklist(checks) == [
        u'\u2713 Database size: 12.3 MB',
        u'\u26a0 Data freshness (FX): 327 days old (warning >= 24 h)',
        u'\u2717 Database size: 120 GB (critical > 100 GB)',
        u'? Slow statements: pg_stat_statements is not installed',
    ]


def test_render_checklist_filters_and_summarises(th):
    checks = [health.check_database_size(1024, th), health.check_database_size(120 * GIB, th)]
    lines = health.render_checklist(checks, include_ok=False, summary=True)
    assert lines == [u'\u2717 Database size: 120 GB (critical > 100 GB)',
                     u'Overall: critical (1 critical, 0 warning, 0 unknown, 1 ok)']


def test_render_line_without_display_formats_value():
    line = health.render_line({'status': 'warning', 'name': 'Cache hit ratio', 'value': 93.456, 'unit': 'percent',
                               'warning': 95, 'operator': '<'})
    assert line == u'\u26a0 Cache hit ratio: 93.46 % (warning < 95 %)'


@pytest.mark.parametrize('value, unit, text', [
    (512, 'bytes', '512 bytes'),
    (1536, 'bytes', '1.5 kB'),
    (100 * GIB, 'bytes', '100 GB'),
    (5.25, 'hours', '5.2 h'),
    (47.9, 'hours', '47.9 h'),
    (48, 'hours', '2 days'),
    (97.5, 'percent', '97.5 %'),
    (12, 'connections', '12 connections'),
    (None, 'bytes', 'n/a'),
])
def test_format_value(value, unit, text):
    assert health.format_value(value, unit) == text


def test_make_check_rejects_unknown_status():
    with pytest.raises(ValueError):
        health.make_check('x', 'X', 1, 'bytes', 'fine')


# --- as_of and ages ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ('2024-06-28', datetime.datetime(2024, 6, 28, tzinfo=UTC)),
    ('2024-06-28T18:30', datetime.datetime(2024, 6, 28, 18, 30, tzinfo=UTC)),
    ('2024-06-28T18:30:15Z', datetime.datetime(2024, 6, 28, 18, 30, 15, tzinfo=UTC)),
    ('2024-06-28 18:30:15.250000', datetime.datetime(2024, 6, 28, 18, 30, 15, 250000, tzinfo=UTC)),
    ('2024-06-28T09:00:00+09:00', datetime.datetime(2024, 6, 28, 0, 0, tzinfo=UTC)),
    ('2024-06-28T09:00:00-0130', datetime.datetime(2024, 6, 28, 10, 30, tzinfo=UTC)),
])
def test_parse_as_of(text, expected):
    assert health.parse_as_of(text) == expected


@pytest.mark.parametrize('text', ['yesterday', '2024/06/28', '28-06-2024', '2024-13-01', '2024-02-30',
                                  '2024-06-28T25:00', '2024-06-28T10:00+25:00', '2024-06-28T', ''])
def test_parse_as_of_rejects_bad_input_naming_the_format(text):
    with pytest.raises(ValueError) as e:
        health.parse_as_of(text)
    assert 'YYYY-MM-DD' in str(e.value)


def test_age_of_a_date_counts_from_the_end_of_its_day():
    as_of = datetime.datetime(2024, 6, 29, 9, 0, tzinfo=UTC)
    # yesterday's daily bar, checked at 09:00: 9 h old, not 33 h
    assert health.age_seconds(datetime.date(2024, 6, 28), as_of) == 9 * 3600
    assert health.age_seconds(datetime.date(2024, 6, 27), as_of) == 33 * 3600


def test_age_of_timestamps_and_future_rows():
    as_of = datetime.datetime(2024, 6, 29, 12, 0, tzinfo=UTC)
    aware = datetime.datetime(2024, 6, 29, 10, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-1)))
    assert health.age_seconds(aware, as_of) == 3600          # 11:00 UTC
    assert health.age_seconds(datetime.datetime(2024, 6, 29, 6, 0), as_of) == 6 * 3600   # naive = UTC
    assert health.age_seconds(datetime.date(2024, 7, 1), as_of) == 0.0
    assert health.age_seconds(None, as_of) is None
    with pytest.raises(TypeError):
        health.latest_as_datetime('2024-06-28')
