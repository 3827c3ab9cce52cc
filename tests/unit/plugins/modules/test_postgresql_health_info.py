# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the postgresql_health_info module: option validation and the whole run on a scripted database.

Modules are driven the standard way: module args patched in, exit_json / fail_json
raising AnsibleExitJson / AnsibleFailJson.  ansible-core 2.19 replaced the old
``set_module_args`` helper (which wrote ``basic._ANSIBLE_ARGS``) by
``ansible.module_utils.testing.patch_module_args``; the fallback keeps the tests
working on older cores.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json

import psycopg
import pytest


from ansible_collections.quantops.platform.plugins.module_utils import health
from ansible_collections.quantops.platform.plugins.modules import postgresql_health_info as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import FakeDB, fail_runner, ok_runner

run_ok = ok_runner(mod)
run_module_fail = fail_runner(mod)


HOSTILE = 'x"; DROP TABLE y; --'
UTC = datetime.timezone.utc


# --- a scripted database ----------------------------------------------------------------

def healthy_rules(**over):
    """Rules (substring -> rows) for a healthy quant_platform with TimescaleDB (apache build)."""
    rules = [
        ('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', None),
        ('current_database() AS database', [{'database': 'quant_platform', 'version': '17.2',
                                             'version_num': 170002}]),
        ("extname = 'timescaledb'", [{'version': '2.17.2'}]),
        ('pg_available_extensions', [{'default_version': '2.17.2'}]),
        ('timescaledb.license', [{'license': 'apache'}]),
        ('FROM timescaledb_information.hypertables', [
            {'schema': 'public', 'name': 'ohlcv_data', 'compression_enabled': False,
             'total_chunks': 2, 'compressed_chunks': 0, 'uncompressed_chunks': 2}]),
        ('FROM timescaledb_information.chunks', [
            {'chunk_schema': '_timescaledb_internal', 'chunk_name': '_hyper_1_1_chunk',
             'hypertable_schema': 'public', 'hypertable_name': 'ohlcv_data'},
            {'chunk_schema': '_timescaledb_internal', 'chunk_name': '_hyper_1_2_chunk',
             'hypertable_schema': 'public', 'hypertable_name': 'ohlcv_data'}]),
        ('pg_database_size', [{'size': 12 * 1024 ** 2}]),
        ('FROM pg_catalog.pg_stat_activity', [{'database_total': 3, 'database_active': 1,
                                               'database_idle_in_transaction': 0, 'server_total': 5}]),
        ("current_setting('max_connections')", [
            {'max_connections': 100, 'superuser_reserved_connections': 3, 'reserved_connections': 0}]),
        ("extname = 'pg_stat_statements'", [{'schema': 'public'}]),
        ('AS count_current_database', [{'count': 2, 'count_current_database': 1, 'statements': 40}]),
        ('AS mean_exec_time_ms', [{'queryid': 42, 'database': 'quant_platform', 'role': 'quant', 'calls': 3,
                                   'mean_exec_time_ms': 1500.5, 'total_exec_time_ms': 4501.5}]),
        ('JOIN pg_catalog.pg_statio_user_tables io', [
            {'schema': '_timescaledb_catalog', 'name': 'hypertable', 'live_tuples': 1, 'dead_tuples': 0,
             'last_vacuum': None, 'last_autovacuum': None, 'heap_blks_hit': 5, 'heap_blks_read': 0,
             'idx_blks_hit': 1, 'idx_blks_read': 0},
            {'schema': '_timescaledb_internal', 'name': '_hyper_1_1_chunk', 'live_tuples': 3000, 'dead_tuples': 10,
             'last_vacuum': None, 'last_autovacuum': datetime.datetime(2024, 6, 1, tzinfo=UTC),
             'heap_blks_hit': 900, 'heap_blks_read': 10, 'idx_blks_hit': 4000, 'idx_blks_read': 10},
            {'schema': '_timescaledb_internal', 'name': '_hyper_1_2_chunk', 'live_tuples': 2000, 'dead_tuples': 5,
             'last_vacuum': None, 'last_autovacuum': datetime.datetime(2024, 6, 20, tzinfo=UTC),
             'heap_blks_hit': 600, 'heap_blks_read': 0, 'idx_blks_hit': 3000, 'idx_blks_read': 0},
            {'schema': 'public', 'name': 'ohlcv_data', 'live_tuples': 0, 'dead_tuples': 0,
             'last_vacuum': None, 'last_autovacuum': None, 'heap_blks_hit': 0, 'heap_blks_read': 0,
             'idx_blks_hit': 0, 'idx_blks_read': 0},
            {'schema': 'public', 'name': 'tickers', 'live_tuples': 30, 'dead_tuples': 2,
             'last_vacuum': None, 'last_autovacuum': None, 'heap_blks_hit': 50, 'heap_blks_read': 1,
             'idx_blks_hit': None, 'idx_blks_read': None}]),
        ('FROM pg_catalog.pg_statio_user_tables', [{'hit': 9990, 'read': 10}]),
        ('pg_catalog.pg_attribute', [{'column': 'ticker', 'type': 'text'}, {'column': 'region', 'type': 'text'},
                                     {'column': 'date', 'type': 'date'}, {'column': 'close', 'type': 'numeric'}]),
        ('max(', [{'grp': 'CRYPTO', 'latest': datetime.date(2024, 6, 28)},
                  {'grp': 'FX', 'latest': datetime.date(2023, 12, 31)},
                  {'grp': 'US', 'latest': datetime.date(2024, 6, 27)}]),
    ]
    result = []
    for key, value in rules:
        result.append((key, over.pop(key) if key in over else value))
    assert not over, 'unknown rule keys: %s' % list(over)
    return result


@pytest.fixture
def fake_db(install):
    return lambda rules=None: install(FakeDB(healthy_rules() if rules is None else rules))


def run_fail(args):
    return run_module_fail(args)['msg']


# --- argument validation --------------------------------------------------------------------

def test_unknown_threshold_key_fails_listing_valid_keys(no_connect):
    msg = run_fail({'thresholds': {'cache_hit_pct': 97}})
    assert 'Unknown threshold key(s): cache_hit_pct' in msg
    assert 'cache_hit_warning_pct' in msg and 'freshness_warning_hours' in msg


def test_wrong_threshold_type_fails(no_connect):
    msg = run_fail({'thresholds': {'connections_warning': 'many'}})
    assert msg == "thresholds.connections_warning must be a number, got str 'many'"


def test_threshold_order_violation_fails(no_connect):
    msg = run_fail({'thresholds': {'database_size_warning_bytes': 2 * 10 ** 12}})
    assert 'must not be above thresholds.database_size_critical_bytes' in msg


@pytest.mark.parametrize('as_of', ['28/06/2024', 'now', '2024-06-31'])
def test_bad_as_of_fails_with_expected_format(no_connect, as_of):
    msg = run_fail({'as_of': as_of})
    assert 'as_of' in msg
    assert 'YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+HH:MM] (ISO 8601)' in msg


def test_bad_checks_choice_fails(no_connect):
    msg = run_fail({'checks': ['database_size', 'replication_lag']})
    assert 'checks' in msg
    assert 'replication_lag' in msg
    assert 'database_size' in msg and 'hypertable_chunks' in msg   # the valid choices are listed


def test_empty_checks_fails(no_connect):
    msg = run_fail({'checks': []})
    assert msg.startswith('checks must name at least one of')


@pytest.mark.parametrize('option, value, fragment', [
    ('freshness_table', '', 'freshness_table must not be empty'),
    ('freshness_time_column', 'c' * 64, 'limited to 63 bytes'),
    ('freshness_schema', 'a\x00', 'NUL'),
])
def test_invalid_freshness_identifiers_fail(no_connect, option, value, fragment):
    assert fragment in run_fail({option: value})


@pytest.mark.parametrize('value', ['-5', '5 seconds', "1s'; SELECT 1; --"])
def test_bad_statement_timeout_fails(no_connect, value):
    assert 'statement_timeout must be milliseconds or a PostgreSQL duration' in run_fail({'statement_timeout': value})


def test_unknown_option_fails(no_connect):
    assert 'Unsupported parameters' in run_fail({'treshold': {}})


def test_documentation_matches_thresholds_and_checks():
    for key, spec in health.DEFAULT_THRESHOLDS.items():
        assert 'C(%s)' % key in mod.DOCUMENTATION, key
        if spec['default'] is not None:
            assert 'default C(%s)' % spec['default'] in mod.DOCUMENTATION, key
    for name in health.CHECK_NAMES:
        assert name in mod.DOCUMENTATION


# --- whole runs on the scripted database ----------------------------------------------------------

def test_healthy_run_returns_figures_and_checks(fake_db):
    db = fake_db()
    result = run_ok({'as_of': '2024-06-29T09:00:00Z'})
    assert result['changed'] is False
    assert result['database'] == 'quant_platform'
    assert result['server_version'] == '17.2' and result['server_version_num'] == 170002
    assert result['as_of'] == '2024-06-29T09:00:00+00:00'
    assert result['timescaledb'] == {'installed': True, 'version': '2.17.2', 'available_version': '2.17.2',
                                     'license': 'apache', 'compression_available': False}
    assert result['database_size_bytes'] == 12 * 1024 ** 2
    assert result['connections']['usable'] == 97
    assert result['connections']['database_total'] == 3
    assert result['slow_statements']['count'] == 2
    assert result['slow_statements']['top'][0]['queryid'] == 42
    assert 'query' not in result['slow_statements']['top'][0]
    assert result['cache_hit_ratio'] == 0.999

    # chunks add up under their hypertable; TimescaleDB catalog tables are left out
    tables = dict((t['name'], t) for t in result['tables'])
    assert sorted(tables) == ['ohlcv_data', 'tickers']
    ohlcv = tables['ohlcv_data']
    assert ohlcv['is_hypertable'] is True and ohlcv['chunks'] == 2
    assert (ohlcv['live_tuples'], ohlcv['dead_tuples']) == (5000, 15)
    assert ohlcv['idx_blks_hit'] == 7000 and ohlcv['idx_blks_read'] == 10
    assert ohlcv['index_hit_ratio'] == 0.9986
    assert ohlcv['last_autovacuum'] == '2024-06-20T00:00:00+00:00'
    assert tables['tickers']['index_hit_ratio'] is None

    fresh = dict((f['group'], f) for f in result['freshness'])
    assert fresh['CRYPTO']['age_hours'] == 9.0        # bar of 06-28 complete at 06-29 00:00
    assert fresh['US']['age_hours'] == 33.0
    assert fresh['FX']['latest'] == '2023-12-31'

    statuses = dict((c['name'], c['status']) for c in result['checks'])
    assert statuses['Database size'] == 'ok'
    assert statuses['Active connections'] == 'ok'
    assert statuses['Slow statements'] == 'ok'
    assert statuses['Cache hit ratio'] == 'ok'
    assert statuses['Index hit ratio (public.ohlcv_data)'] == 'ok'
    assert statuses['Dead tuples (public.ohlcv_data)'] == 'ok'
    assert statuses['Data freshness (CRYPTO)'] == 'ok'
    assert statuses['Data freshness (US)'] == 'warning'
    assert statuses['Data freshness (FX)'] == 'warning'
    assert statuses['Hypertable chunks (public.ohlcv_data)'] == 'ok'
    assert result['status'] == 'warning'
    assert (result['warning_count'], result['critical_count'], result['unknown_count']) == (2, 0, 0)
    assert result['ok_count'] == len(result['checks']) - 2
    assert result['checklist'] == health.render_checklist(result['checks'])
    assert u'\u26a0 Data freshness (FX): 180 days old (warning >= 24 h)' in result['checklist']
    assert result['thresholds'] == health.default_thresholds()

    # a statement timeout (the module's 60 s), a read-only session, connection closed
    assert db.statements()[:2] == ["SET statement_timeout = '60s'", 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY']
    # the slow-statement queries, whole, with the threshold and the top count as literals
    assert [q for q in db.statements() if 'pg_stat_statements' in q and q.startswith('SELECT count')] == [
        'SELECT count(*) FILTER (WHERE s."mean_exec_time" > 1000) AS count, count(*) FILTER (WHERE '
        's."mean_exec_time" > 1000 AND s.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = '
        'current_database())) AS count_current_database, count(*) AS statements FROM "public"."pg_stat_statements" AS s']
    assert [q for q in db.statements() if q.startswith('SELECT s.queryid')] == [
        'SELECT s.queryid, d.datname AS database, r.rolname AS role, s.calls, round(s."mean_exec_time"::numeric, 2) '
        'AS mean_exec_time_ms, round(s."total_exec_time"::numeric, 2) AS total_exec_time_ms FROM '
        '"public"."pg_stat_statements" AS s LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid LEFT JOIN '
        'pg_catalog.pg_roles r ON r.oid = s.userid WHERE s."mean_exec_time" > 1000 ORDER BY s."mean_exec_time" DESC '
        'LIMIT 5']
    assert db.conn.closed is True
    json.dumps(result)   # the whole result is JSON-serialisable


def test_check_mode_gives_the_same_read_only_result(fake_db):
    fake_db()
    result = run_ok({'as_of': '2024-06-29', '_ansible_check_mode': True})
    assert result['changed'] is False
    assert result['status'] == 'warning'


def test_selected_checks_only(fake_db):
    db = fake_db()
    result = run_ok({'checks': ['database_size'], 'statement_timeout': 0})
    assert [c['check'] for c in result['checks']] == ['database_size']
    assert result['connections'] is None and result['freshness'] == [] and result['tables'] == []
    assert not any('pg_stat_activity' in query for query, params in db.executed)
    assert db.statements()[0] == "SET statement_timeout = '0'"


def test_threshold_overrides_are_applied(fake_db):
    fake_db()
    result = run_ok({'as_of': '2024-06-29T09:00:00Z', 'checks': ['freshness', 'connections'],
                     'thresholds': {'freshness_warning_hours': 48, 'connections_warning': 3}})
    statuses = dict((c['name'], c['status']) for c in result['checks'])
    assert statuses['Data freshness (US)'] == 'ok'          # 33 h < 48 h
    assert statuses['Active connections'] == 'warning'      # 3 >= 3
    assert result['thresholds']['freshness_warning_hours'] == 48


def test_pg_stat_statements_missing_is_unknown_not_a_failure(fake_db):
    fake_db(healthy_rules(**{"extname = 'pg_stat_statements'": []}))
    result = run_ok({'checks': ['slow_statements']})
    check = result['checks'][0]
    assert check['status'] == 'unknown'
    assert 'CREATE EXTENSION pg_stat_statements' in check['message']
    assert result['slow_statements']['installed'] is False
    assert result['status'] == 'unknown' and result['unknown_count'] == 1


def test_pg_stat_statements_not_preloaded_is_unknown(fake_db):
    error = psycopg.errors.ObjectNotInPrerequisiteState(
        'pg_stat_statements must be loaded via "shared_preload_libraries"')
    fake_db(healthy_rules(**{'AS count_current_database': error}))
    result = run_ok({'checks': ['slow_statements']})
    check = result['checks'][0]
    assert check['status'] == 'unknown'
    assert 'add it to shared_preload_libraries and restart' in check['message']
    assert result['slow_statements']['count'] is None


def test_missing_freshness_table_is_unknown(fake_db):
    fake_db(healthy_rules(**{'pg_catalog.pg_attribute': []}))
    result = run_ok({'checks': ['freshness'], 'freshness_table': 'bars'})
    check = result['checks'][0]
    assert check['status'] == 'unknown'
    assert 'Table public.bars does not exist in quant_platform' in check['message']
    assert result['freshness'] == []


def test_freshness_column_of_wrong_type_is_unknown(fake_db):
    fake_db()
    result = run_ok({'checks': ['freshness'], 'freshness_time_column': 'close'})
    assert result['checks'][0]['status'] == 'unknown'
    assert 'must be a date, timestamp or timestamptz' in result['checks'][0]['message']


def test_freshness_permission_denied_is_unknown_with_grant_hint(fake_db):
    fake_db(healthy_rules(**{'max(': psycopg.errors.InsufficientPrivilege('permission denied for table ohlcv_data')}))
    result = run_ok({'checks': ['freshness']})
    assert result['checks'][0]['status'] == 'unknown'
    assert 'GRANT SELECT ON public.ohlcv_data' in result['checks'][0]['message']


def test_hostile_freshness_table_is_quoted_never_interpolated(fake_db):
    columns = [{'column': 'a%b"c', 'type': 'text'}, {'column': 'date', 'type': 'date'}]
    db = fake_db(healthy_rules(**{'pg_catalog.pg_attribute': columns}))
    result = run_ok({'checks': ['freshness'], 'freshness_table': HOSTILE, 'freshness_group_column': 'a%b"c'})
    assert [f['group'] for f in result['freshness']] == ['CRYPTO', 'FX', 'US']
    assert 'public.x"; DROP TABLE y; --' in result['checks'][0]['message']
    catalog = [(q, p) for q, p in db.executed if 'pg_catalog.pg_attribute' in q]
    assert catalog and catalog[0][1] == ('public', HOSTILE)       # looked up as a bound value
    assert HOSTILE not in catalog[0][0]
    data = [q for q, p in db.executed if 'max(' in q]
    assert data == ['SELECT "a%b""c"::text AS grp, max("date") AS latest '
                    'FROM "public"."x""; DROP TABLE y; --" GROUP BY 1 ORDER BY 1']
    data_params = [p for q, p in db.executed if 'max(' in q]
    assert data_params == [None]     # no parameters, so "%" in a name is not a placeholder
    for text, params in db.executed:
        assert 'DROP TABLE y' not in text.replace('"x""; DROP TABLE y; --"', '')


def test_freshness_query_builder_quotes_all_names():
    query = mod.freshness_query('market data', HOSTILE, 'ts"', 'Region')
    assert query.as_string(None) == ('SELECT "Region"::text AS grp, max("ts""") AS latest '
                                     'FROM "market data"."x""; DROP TABLE y; --" GROUP BY 1 ORDER BY 1')


def test_licensed_timescaledb_warns_on_uncompressed_chunks(fake_db):
    fake_db(healthy_rules(**{
        'timescaledb.license': [{'license': 'timescale'}],
        'FROM timescaledb_information.hypertables': [
            {'schema': 'public', 'name': 'ohlcv_data', 'compression_enabled': False,
             'total_chunks': 150, 'compressed_chunks': 10, 'uncompressed_chunks': 140}]}))
    result = run_ok({'checks': ['hypertable_chunks']})
    assert result['timescaledb']['compression_available'] is True
    check = result['checks'][0]
    assert check['status'] == 'warning'
    assert check['value'] == 140
    assert result['hypertables'][0]['total_chunks'] == 150


def test_without_timescaledb(fake_db):
    fake_db(healthy_rules(**{"extname = 'timescaledb'": [], 'pg_available_extensions': [],
                             'timescaledb.license': [{'license': None}]}))
    result = run_ok({'checks': ['hypertable_chunks', 'index_hit_ratio']})
    assert result['timescaledb'] == {'installed': False, 'version': None, 'available_version': None,
                                     'license': None, 'compression_available': False}
    chunks = [c for c in result['checks'] if c['check'] == 'hypertable_chunks']
    assert chunks[0]['status'] == 'unknown'
    assert 'TimescaleDB is not installed in quant_platform' in chunks[0]['message']
    # without the chunk map the chunk tables are internal-schema rows and are left out
    assert [t['name'] for t in result['tables']] == ['ohlcv_data', 'tickers']


def test_a_failing_check_query_turns_unknown(fake_db):
    fake_db(healthy_rules(**{'pg_database_size': psycopg.errors.QueryCanceled(
        'canceling statement due to statement timeout')}))
    result = run_ok({'checks': ['database_size', 'cache_hit_ratio']})
    statuses = [(c['check'], c['status']) for c in result['checks']]
    assert statuses == [('database_size', 'unknown'), ('cache_hit_ratio', 'ok')]
    assert 'statement timeout' in result['checks'][0]['message']


def test_server_information_failure_fails_the_module(fake_db):
    fake_db(healthy_rules(**{'current_database() AS database': psycopg.errors.InsufficientPrivilege('nope')}))
    msg = run_fail({})
    assert msg == 'Could not read server information from quant_platform: nope'


def test_aggregate_tables_keeps_plain_partitions_and_skips_internal_tables():
    rows = [
        {'schema': 'public', 'name': 'p_2024', 'live_tuples': 10, 'dead_tuples': 0, 'idx_blks_hit': None,
         'idx_blks_read': None, 'heap_blks_hit': 1, 'heap_blks_read': 1},
        {'schema': '_timescaledb_internal', 'name': 'compress_hyper_2_9_chunk', 'live_tuples': 5,
         'dead_tuples': 0, 'idx_blks_hit': 1, 'idx_blks_read': 1, 'heap_blks_hit': 1, 'heap_blks_read': 1},
    ]
    tables = mod.aggregate_tables(rows, {})
    assert [(t['schema'], t['name'], t['chunks'], t['is_hypertable']) for t in tables] == [
        ('public', 'p_2024', 0, False)]
    assert tables[0]['dead_tuple_ratio'] == 0.0
