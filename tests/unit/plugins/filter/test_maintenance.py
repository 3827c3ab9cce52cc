# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance runbooks' filters (plugins/filter/maintenance.py): their verdicts and thresholds."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter import maintenance as mf
from ansible_collections.quantops.platform.plugins.module_utils.health import render_checklist

NOW = 1800000000.0
METRICS = (
    '# HELP quantops_backup_last_success_timestamp_seconds ...\n'
    'quantops_backup_last_success_timestamp_seconds{tool="pg_dump",type="dump"} %s\n'
    'quantops_backup_last_success_timestamp_seconds{tool="pgbackrest",type="drill"} %s\n'
    'quantops_backup_last_success_timestamp_seconds{tool="config",type="tarball"} %s\n'
)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def statuses(items):
    return [i['status'] for i in items]


def test_every_filter_is_registered():
    assert sorted(mf.FilterModule().filters()) == sorted([
        'maintenance_backup_age', 'maintenance_server_log', 'maintenance_prometheus', 'maintenance_evening',
        'maintenance_steps', 'maintenance_weekly', 'maintenance_monthly', 'maintenance_security_audit',
        'maintenance_size_samples', 'maintenance_growth', 'maintenance_cluster', 'maintenance_cluster_state'])


# --- morning check ------------------------------------------------------------

def test_backup_age_counts_database_backups_only():
    # The drill and the configuration tarball are newer, but they are not database backups.
    text = METRICS % (NOW - 30 * 3600, NOW - 3600, NOW - 60)
    check = mf.backup_age([{'host': 'db1', 'text': text}], now=NOW, metrics_dir='/d')
    assert check['status'] == 'warning'
    assert render_checklist([check]) == [u'\u26a0 Backup age: 30.0 h since the newest successful backup (pg_dump on db1)'
                                         u' (warning > 24 h)']


def test_backup_age_takes_the_newest_over_hosts_of_a_slurp_loop():
    slurped = [
        {'content': b64(METRICS % (NOW - 30 * 3600, 0, 0)), 'item': [{'item': 'db1'}, {'path': '/d/a.prom'}]},
        {'content': b64('quantops_backup_last_success_timestamp_seconds{stanza="main",tool="pgbackrest",type="full"} %s\n'
                        % (NOW - 2 * 3600)), 'item': {'host': 'repo1', 'path': '/d/b.prom'}},
    ]
    check = mf.backup_age(slurped, now=NOW)
    assert check['status'] == 'ok'
    assert check['display'] == '2.0 h since the newest successful backup (pg_dump on db1, pgbackrest on repo1)'


@pytest.mark.parametrize('age,limit,status', [(23.9, 24, 'ok'), (24.1, 24, 'warning'), (5, 4, 'warning'), (5, 6, 'ok')])
def test_backup_age_threshold(age, limit, status):
    text = METRICS % (NOW - age * 3600, 0, 0)
    assert mf.backup_age([{'host': 'h', 'text': text}], now=NOW, max_age_hours=limit)['status'] == status


def test_backup_age_without_a_backup_is_unknown_not_guessed():
    check = mf.backup_age([], now=NOW, metrics_dir='/var/lib/prometheus/node-exporter')
    assert check['status'] == 'unknown'
    assert render_checklist([check]) == [
        '? Backup age: no successful database backup recorded in /var/lib/prometheus/node-exporter'
        ' - run playbooks/backup/backup_now.yml']


def test_backup_age_refuses_a_non_list():
    with pytest.raises(AnsibleFilterError, match='must be a list'):
        mf.backup_age('quantops_backup_last_success_timestamp_seconds 1')


def test_server_log_panic_is_critical():
    assert mf.server_log('12', '0', '/l')['status'] == 'ok'
    check = mf.server_log('12', '1', '/l')
    assert check['status'] == 'critical'
    assert render_checklist([check]) == [u'\u2717 Server log: 12 ERROR/FATAL/PANIC lines (1 PANIC) in /l (critical > 0 PANIC lines)']


def test_prometheus_targets_down_and_alerts_by_severity():
    targets = {'data': {'activeTargets': [{'health': 'up', 'scrapeUrl': 'a'}, {'health': 'down', 'scrapeUrl': 'https://b/metrics'}]}}
    alerts = {'data': {'alerts': [
        {'state': 'firing', 'labels': {'alertname': 'Z', 'severity': 'warning'}},
        {'state': 'pending', 'labels': {'alertname': 'P', 'severity': 'critical'}},
        {'state': 'firing', 'labels': {'alertname': 'A'}},
    ]}}
    down, firing = mf.prometheus(targets, alerts)
    assert (down['status'], down['display']) == ('warning', '1/2 up - down: https://b/metrics')
    assert (firing['status'], firing['display']) == ('warning', '2 firing - A, Z')   # pending is not firing
    alerts['data']['alerts'][1]['state'] = 'firing'
    assert mf.prometheus(targets, alerts)[1]['status'] == 'critical'
    assert statuses(mf.prometheus({'data': {'activeTargets': []}}, {'data': {'alerts': []}})) == ['ok', 'ok']


# --- evening check ------------------------------------------------------------

def evening_results(rows=(), perf=None, quality=None):
    return {'ingest': {'query_result': list(rows)},
            'quality': quality if quality is not None else {'status': 'ok', 'scanned_rows': 10, 'severity': 'ok',
                                                            'checklist': ['0 duplicates']},
            'perf': perf if perf is not None else {'query_result': []}}


def test_evening_weekday_without_rows_warns_weekend_does_not():
    assert mf.evening(evening_results(), '2018-12-31')[0]['status'] == 'warning'   # a Monday
    saturday = mf.evening(evening_results(), '2018-12-29')[0]
    assert (saturday['status'], saturday['display']) == ('ok', 'no rows (weekend)')
    rows = [{'region': 'US', 'tickers_updated': 3, 'total_rows': 3}, {'region': 'FX', 'tickers_updated': 2, 'total_rows': 2}]
    assert mf.evening(evening_results(rows), '2018-12-31')[0]['display'] == 'US 3 tickers / 3 rows, FX 2 tickers / 2 rows'


@pytest.mark.parametrize('avg,top,status', [(199.99, 999.99, 'ok'), (200, 10, 'warning'), (10, 1000, 'warning')])
def test_evening_ohlcv_timing_verdict(avg, top, status):
    perf = {'query_result': [{'query_type': 'Other', 'avg_duration_ms': 5000, 'max_duration_ms': 9000, 'executions': 1},
                             {'query_type': 'OHLCV Query', 'avg_duration_ms': avg, 'max_duration_ms': top, 'executions': 4}]}
    assert mf.evening(evening_results(perf=perf), '2018-12-31', 200, 1000)[2]['status'] == status


def test_evening_unreadable_statistics_and_failed_quality_are_unknown():
    items = mf.evening(evening_results(perf={'failed': True, 'msg': 'no pg_stat_statements'}, quality={'msg': 'boom'}),
                       '2018-12-31')
    assert statuses(items)[1:] == ['unknown', 'unknown']
    assert items[2]['message'] == 'pg_stat_statements not readable: no pg_stat_statements'


def test_evening_refuses_a_bad_day():
    with pytest.raises(AnsibleFilterError, match='YYYY-MM-DD'):
        mf.evening(evening_results(), '31.12.2018')


def test_evening_no_row_as_community_postgresql_returns_it():
    # postgresql_query returns a query that found no row as query_result: {} (seen on the runbooks scenario
    # right after pg_stat_statements_reset(): the timings query found no statement with more than 10 calls)
    items = mf.evening({'ingest': {'query_result': {}, 'rowcount': 0}, 'quality': {'status': 'ok'},
                        'perf': {'query_result': {}, 'rowcount': 0}}, '2018-12-31')
    assert statuses(items) == ['warning', 'ok', 'ok']
    assert items[2]['display'] == 'no OHLCV statement with more than 10 calls yet'


# --- weekly -------------------------------------------------------------------

def test_steps_ok_not_run_failed_and_empty():
    result = {'steps': [
        {'sql': 'VACUUM (ANALYZE) "public"."t"', 'status': 'ok', 'seconds': 0.5, 'reason': 'named'},
        {'sql': 'VACUUM (ANALYZE) "public"."u"', 'status': 'not_run', 'seconds': None, 'reason': 'dead tuples 50 %'},
        {'sql': 'REINDEX INDEX CONCURRENTLY "public"."i"', 'status': 'failed', 'error': 'lock timeout'},
    ]}
    items = mf.steps(result, '1. VACUUM', 'none')
    assert statuses(items) == ['ok', 'unknown', 'critical']
    assert items[0]['display'] == 'VACUUM (ANALYZE) "public"."t" in 0.5 s (named)'
    assert items[1]['message'] == 'would run (check mode): VACUUM (ANALYZE) "public"."u" (dead tuples 50 %)'
    assert mf.steps({'steps': []}, '2. REINDEX', 'no bloated index') == [
        {'name': '2. REINDEX', 'status': 'ok', 'display': 'no bloated index', 'message': ''}]


def test_weekly_drop_needs_confirmation_and_no_check_mode():
    base = {'pgss': {'rowcount': 1}, 'reset': {'changed': True}, 'chunks': {'hypertables': [{'name': 'ohlcv_data', 'total_chunks': 9}]},
            'drop': {'would_drop': [{'chunk': 'c1'}, {'chunk': 'c2'}], 'dropped': []}, 'slow': {'query_result': [{'queryid': 1}]}}
    items = mf.weekly(base, '5 years', False, 1000, False)
    assert [i['name'] for i in items] == ['1. pg_stat_statements_reset()', '3. Hypertable ohlcv_data', '3. Drop chunks',
                                          '4. Slow statements']
    assert statuses(items) == ['ok', 'ok', 'warning', 'warning']
    assert 'would drop 2 chunk(s) older than 5 years' in items[2]['display']
    confirmed = dict(base, drop={'dropped': ['c1', 'c2']})
    assert mf.weekly(confirmed, '5 years', True, 1000, False)[2]['display'] == 'dropped 2 chunk(s) older than 5 years'
    # confirmed but in check mode: the module ran in check mode, nothing was dropped
    assert mf.weekly(base, '5 years', True, 1000, True)[2]['status'] == 'warning'
    assert mf.weekly(dict(base, drop={'would_drop': []}), '5 years')[2]['display'] == 'no chunk older than 5 years'
    # timescaledb_chunks' own `skipped` list is not a skipped task
    listed = dict(base, drop={'would_drop': [{'chunk': 'c1'}], 'skipped': ['compression: Apache build']})
    assert mf.weekly(listed, '5 years')[2]['status'] == 'warning'


def test_weekly_without_pg_stat_statements():
    items = mf.weekly({'pgss': {'rowcount': 0}, 'reset': {'skipped': True}, 'chunks': {'hypertables': []},
                       'drop': {'skipped': True}, 'slow': {'skipped': True}})
    assert statuses(items) == ['unknown', 'unknown']
    assert 'not installed' in items[0]['message'] and 'not installed' in items[1]['message']


def test_weekly_no_slow_statement_as_community_postgresql_returns_it():
    # query_result: {} - the weekly check-mode run after the scenario's real run had reset pg_stat_statements
    items = mf.weekly({'pgss': {'rowcount': 1}, 'reset': {'skipped': True}, 'chunks': {'hypertables': []},
                       'drop': {'skipped': True}, 'slow': {'query_result': {}, 'rowcount': 0}}, '5 years', False, 1000, True)
    assert items[-1] == {'name': '4. Slow statements', 'status': 'ok', 'message': '',
                         'display': '0 with mean > 1000 ms (read before the reset)'}
    with pytest.raises(AnsibleFilterError, match='slow.query_result must be a list'):
        mf.weekly({'pgss': {'rowcount': 1}, 'slow': {'query_result': {'queryid': 1}}})


# --- monthly ------------------------------------------------------------------

SIZES = {'query_result': [{'database_bytes': 3 * 1024 ** 3, 'measured_at': '2026-12-11 10:00:00+00',
                           'tables': [{'table': 'ohlcv_data', 'total_bytes': 2048, 'index_bytes': 1024}]}]}
CHUNKS_APACHE = {'license': 'apache', 'hypertables': [{'name': 'ohlcv_data', 'compressed_chunks': 0,
                                                       'uncompressed_chunks': 7, 'compression_pct': 0}]}


def test_monthly_growth_per_day_since_the_host_s_last_line():
    history = ('2026-11-01 10:00:00+00,db1,quant_platform,1073741824\n'
               '2026-12-01 10:00:00+00,db1,quant_platform,2147483648\n'
               '2026-12-10 10:00:00+00,db2,quant_platform,1\n')
    items = mf.monthly({'chunks': CHUNKS_APACHE, 'compressed': {'skipped': True}, 'analyze': {'steps': []},
                        'sizes': SIZES, 'history': history}, 'db1', 'quant_platform', '1 year')
    size = [i for i in items if i['name'] == '3. Database size quant_platform'][0]
    assert size['display'] == '3 GB, +1 GB since 2026-12-01 10:00:00+00 = 102.4 MB/day'
    compress = [i for i in items if i['name'] == '1. Compress old chunks'][0]
    assert compress['status'] == 'warning' and 'timescaledb.license=apache' in compress['display']
    assert '3. Size of ohlcv_data' in [i['name'] for i in items]


def test_monthly_first_measurement_and_less_than_a_day():
    results = {'chunks': CHUNKS_APACHE, 'analyze': {'steps': []}, 'sizes': SIZES}
    assert 'first measurement' in mf.monthly(dict(results, history=''), 'db1', 'quant_platform')[3]['display']
    same_day = '2026-12-11 09:00:00+00,db1,quant_platform,%d\n' % (4 * 1024 ** 3)
    display = mf.monthly(dict(results, history=same_day), 'db1', 'quant_platform')[3]['display']
    assert display == '3 GB, -1 GB since 2026-12-11 09:00:00+00 (less than a day: no daily rate)'


def test_monthly_failed_step_is_critical():
    items = mf.monthly({'chunks': CHUNKS_APACHE}, 'db1', 'quant_platform', failed='2. ANALYZE: lock timeout')
    assert [i['name'] for i in items if i['status'] == 'critical'] == ['2. ANALYZE', '3. Database size', 'Step failed']


# --- quarterly ----------------------------------------------------------------

GRANTS = [
    {'grantee': 'reporting', 'privilege_type': 'SELECT', 'table_name': 'ohlcv_data', 'table_schema': 'public'},
    {'grantee': 'PUBLIC', 'privilege_type': 'SELECT', 'table_name': 'pg_class', 'table_schema': 'pg_catalog'},
    {'grantee': 'PUBLIC', 'privilege_type': 'SELECT', 'table_name': 'chunk', 'table_schema': '_timescaledb_catalog'},
]
HBA_OK = [{'line_number': 1, 'type': 'local', 'auth_method': 'peer', 'address': None, 'error': None},
          {'line_number': 2, 'type': 'hostssl', 'auth_method': 'scram-sha-256', 'address': '10.0.0.0', 'error': None}]


def test_security_audit_clean():
    items = mf.security_audit([GRANTS, [], [{'rolname': 'postgres'}], HBA_OK], ['reporting'], ['postgres'], 30)
    assert statuses(items) == ['ok', 'ok', 'ok', 'ok']
    assert items[0]['display'] == "1 grants on the platform's tables to reporting"   # catalog grants are not findings


def test_security_audit_empty_result_sets_as_community_postgresql_returns_them():
    # query_all_results holds {} for a set without a row (no expiring password here)
    items = mf.security_audit([GRANTS, {}, [{'rolname': 'postgres'}], HBA_OK], ['reporting'], ['postgres'], 30)
    assert statuses(items) == ['ok', 'ok', 'ok', 'ok']


def test_security_audit_findings():
    grants = GRANTS + [{'grantee': 'reporting', 'privilege_type': 'DELETE', 'table_name': 'ohlcv_data', 'table_schema': 'public'}]
    hba = HBA_OK + [{'line_number': 3, 'type': 'host', 'auth_method': 'trust', 'address': '0.0.0.0', 'error': None}]
    items = mf.security_audit([grants, [{'rolname': 'quant_app', 'valid_until': None}],
                               [{'rolname': 'postgres'}, {'rolname': 'mallory'}], hba], ['reporting'], ['postgres'])
    assert statuses(items) == ['critical', 'warning', 'critical', 'critical']
    assert 'read-only role(s) can write: reporting DELETE on ohlcv_data' in items[0]['display']
    assert items[1]['display'] == 'force rotation (seed 002): quant_app valid until never expires'
    assert items[2]['display'] == 'postgres, mallory; not allowed: mallory'
    assert '1 trust over the network (lines 3)' in items[3]['display'] and '1 open to any address' in items[3]['display']


@pytest.mark.parametrize('rule,status', [
    ({'type': 'local', 'auth_method': 'trust', 'address': None}, 'warning'),
    ({'type': 'host', 'auth_method': 'md5', 'address': '10.0.0.0'}, 'warning'),
    ({'type': 'host', 'auth_method': 'scram-sha-256', 'address': '::'}, 'warning'),
    ({'type': 'host', 'auth_method': 'scram-sha-256', 'address': '10.0.0.0', 'error': 'invalid'}, 'critical'),
])
def test_security_audit_hba_rules(rule, status):
    rule = dict({'line_number': 9, 'error': None}, **rule)
    assert mf.security_audit([[], [], [{'rolname': 'postgres'}], HBA_OK + [rule]])[3]['status'] == status


def test_security_audit_needs_four_result_sets():
    with pytest.raises(AnsibleFilterError, match='4 result sets'):
        mf.security_audit([[], []])


def test_size_samples_keep_the_first_of_the_day_and_drop_garbage():
    old = '2026-12-01,100\nnot a sample\n2026-12-07,200\n'
    assert mf.size_samples(old, '2026-12-07', 999) == ['2026-12-01,100', '2026-12-07,200']
    assert mf.size_samples(old, '2026-12-08', 300) == ['2026-12-01,100', '2026-12-07,200', '2026-12-08,300']
    assert mf.size_samples('', '2026-12-08', 300) == ['2026-12-08,300']


DF = ('Filesystem 1-blocks Used Available Capacity Mounted on\n'
      '/dev/sda1 %d %d 0 50%% /var/lib/postgresql\n')
GIB = 1024 ** 3


def test_growth_least_squares_projection():
    # 1 GiB/day over the last 10 days; 100 GiB filesystem with 50 GiB used; 180 days -> +180 GiB: critical
    samples = ['2026-11-28,%d' % (10 * GIB), '2026-12-03,%d' % (15 * GIB), '2026-12-08,%d' % (20 * GIB)]
    check = mf.growth(samples, '2026-12-08', 20 * GIB, DF % (100 * GIB, 50 * GIB), 90, 180, 80, 95, '/f')
    assert check['status'] == 'critical'
    assert check['display'] == ('database 20 GB, growth 1 GB/day (least squares over 3 samples, 10 days), in 180 days 200 GB; '
                                'filesystem /var/lib/postgresql would be 230.0% used (100 GB)')
    # 30 days ahead: 50 + 30 = 80 GiB used of 100: warning at 80 %
    assert mf.growth(samples, '2026-12-08', 20 * GIB, DF % (100 * GIB, 50 * GIB), 90, 30)['status'] == 'warning'
    assert mf.growth(samples, '2026-12-08', 20 * GIB, DF % (100 * GIB, 50 * GIB), 90, 29)['status'] == 'ok'


def test_growth_window_leaves_old_samples_out():
    samples = ['2026-01-01,%d' % (100 * GIB), '2026-12-07,%d' % GIB, '2026-12-08,%d' % GIB]
    check = mf.growth(samples, '2026-12-08', GIB, DF % (100 * GIB, 10 * GIB), 90, 180)
    assert check['status'] == 'ok' and 'growth 0 bytes/day' in check['display'] and 'over 2 samples' in check['display']


def test_growth_needs_two_samples_a_day_apart():
    check = mf.growth(['2026-12-08,%d' % GIB], '2026-12-08', GIB, DF % (100 * GIB, 10 * GIB), samples_file='/f')
    assert check['status'] == 'unknown'
    assert check['message'].startswith('1 size sample(s) in /f spanning 0.0 days: need two a day apart')


def test_growth_refuses_what_is_not_df_output():
    with pytest.raises(AnsibleFilterError, match='df -P -B1'):
        mf.growth(['2026-12-08,1'], '2026-12-08', 1, 'df: /nope: No such file or directory')


# --- morning check, cluster lines ---------------------------------------------

def patroni_cluster(db3_state='streaming', db3_tl=2, pause=False, leaders=('db1',), db3_lag=0):
    members = []
    for name in ('db1', 'db2', 'db3'):
        if name in leaders:
            members.append({'name': name, 'role': 'leader', 'state': 'running', 'timeline': 2, 'host': name})
        elif name == 'db2':
            members.append({'name': name, 'role': 'sync_standby', 'state': 'streaming', 'timeline': 2, 'lag': 0})
        else:
            members.append({'name': name, 'role': 'replica', 'state': db3_state, 'timeline': db3_tl, 'lag': db3_lag})
    cluster = {'scope': 'quant', 'members': members}
    if pause:
        cluster['pause'] = True
    return cluster


def sql(host, in_recovery, lsn, age=None):
    # as the morning check registers it: a postgresql_query result plus the host
    return {'host': host, 'changed': False, 'query_result': [
        {'in_recovery': in_recovery, 'lsn': lsn, 'replay_age_seconds': age}]}


def test_lsn_bytes():
    assert mf.lsn_bytes('0/0') == 0
    assert mf.lsn_bytes('1/10') == (1 << 32) + 16
    assert mf.lsn_bytes('16/B374D848') == 0x16B374D848
    assert mf.lsn_bytes(None) is None
    with pytest.raises(AnsibleFilterError, match='not a PostgreSQL LSN'):
        mf.lsn_bytes('12345')


def test_cluster_healthy_prints_leader_members_lag_timeline():
    members = [sql('db1', False, '0/5000000'), sql('db2', True, '0/5000000', 3600.0), sql('db3', True, '0/5000000', 3600.0)]
    checks = mf.cluster(patroni_cluster(), members, ['db1', 'db2', 'db3'])
    assert [c['status'] for c in checks] == ['ok'] * 4
    lines = render_checklist(checks)
    assert lines[0] == u'✓ Cluster quant leader: db1, timeline 2'
    assert lines[1] == u'✓ Member db1: leader, running, timeline 2'
    # caught up: 0 bytes, and 0 s however old the last replayed transaction is (an idle cluster does not lag)
    assert lines[2] == u'✓ Member db2: sync_standby, streaming, timeline 2, lag 0 bytes / 0.0 s'


def test_cluster_lag_over_the_alert_thresholds_warns_in_bytes_and_seconds():
    # db3 replayed up to 0/1000000, the leader writes at 0/3000000: 32 MiB behind, last replay 45 s ago
    members = [sql('db1', False, '0/3000000'), sql('db2', True, '0/3000000'), sql('db3', True, '0/1000000', 45.04)]
    checks = mf.cluster(patroni_cluster(), members)
    db3 = checks[3]
    assert db3['status'] == 'warning'
    assert db3['display'].endswith('lag 32 MB / 45.0 s')
    assert 'replication_lag.yml' in db3['message']
    # under both thresholds: ok; over the seconds threshold alone: warning
    assert mf.cluster(patroni_cluster(), members, lag_bytes_warning=64 << 20, lag_seconds_warning=60)[3]['status'] == 'ok'
    assert mf.cluster(patroni_cluster(), members, lag_bytes_warning=64 << 20, lag_seconds_warning=30)[3]['status'] == 'warning'


def test_cluster_lag_seconds_unknown_when_nothing_was_replayed_yet():
    # a fresh clone behind the leader has replayed no transaction yet: its lag in seconds is unknown, not 0
    members = [sql('db1', False, '0/3000000'), sql('db2', True, '0/3000000'), sql('db3', True, '0/1000000', None)]
    db3 = mf.cluster(patroni_cluster(), members)[3]
    assert db3['status'] == 'warning'
    assert db3['display'] == 'replica, streaming, timeline 2, lag 32 MB / ? s'


def test_cluster_lag_falls_back_to_patroni_when_the_member_did_not_answer():
    failed = {'host': 'db3', 'failed': False, 'msg': 'connection refused'}   # failed_when: false, no query_result
    members = [sql('db1', False, '0/3000000'), sql('db2', True, '0/3000000'), failed]
    state = mf.cluster_state(patroni_cluster(db3_lag=4096), members)
    db3 = state['members'][2]
    assert db3['sql_failed'] is True
    assert db3['lag_bytes'] == 4096 and db3['lag_seconds'] is None   # no answer: seconds unknown


def test_cluster_no_leader_is_critical():
    checks = mf.cluster(patroni_cluster(leaders=()), [])
    assert checks[0]['status'] == 'critical'
    assert checks[0]['display'] == 'no leader in the DCS'
    assert 'failover.yml' in checks[0]['message']


def test_cluster_two_primaries_is_split_brain():
    # the DCS names db1, but db3 was promoted outside Patroni: pg_is_in_recovery() is false on both
    members = [sql('db1', False, '0/3000000'), sql('db2', True, '0/3000000'), sql('db3', False, '0/2000000')]
    checks = mf.cluster(patroni_cluster(db3_state='running', db3_tl=3), members)
    assert checks[0]['status'] == 'critical'
    assert checks[0]['display'] == 'more than one leader: DCS db1, primaries (pg_is_in_recovery false) db1, db3'
    assert 'split_brain.yml' in checks[0]['message']
    # two leaders in the DCS itself
    assert mf.cluster(patroni_cluster(leaders=('db1', 'db3')), [])[0]['status'] == 'critical'


def test_cluster_member_stopped_critical_not_streaming_and_other_timeline_warn():
    members = [sql('db1', False, '0/3000000'), sql('db2', True, '0/3000000')]
    assert mf.cluster(patroni_cluster(db3_state='stopped'), members)[3]['status'] == 'critical'
    assert mf.cluster(patroni_cluster(db3_state='stopped'), members)[3]['display'] == \
        'replica, stopped, timeline 2, lag 0 bytes / 0.0 s'
    running = mf.cluster(patroni_cluster(db3_state='running'), members)[3]
    assert running['status'] == 'warning' and 'not streaming' in running['message']
    other_tl = mf.cluster(patroni_cluster(db3_tl=1), members)[3]
    assert other_tl['status'] == 'warning' and 'timeline' in other_tl['message']


def test_cluster_member_missing_from_the_dcs_and_paused_cluster():
    checks = mf.cluster(patroni_cluster(pause=True), [], ['db1', 'db2', 'db3', 'db4'])
    assert checks[4]['name'] == 'Member db4'
    assert checks[4]['status'] == 'critical'
    assert checks[4]['display'].startswith('absent, not in the DCS')
    assert checks[5] == {'name': 'Cluster quant maintenance mode', 'status': 'warning',
                         'display': 'paused: Patroni does not fail over',
                         'message': 'patronictl resume quant when the maintenance is over'}


def test_cluster_refuses_bad_input():
    with pytest.raises(AnsibleFilterError, match='cluster must be a dict'):
        mf.cluster(['db1'])
    with pytest.raises(AnsibleFilterError, match='has no host'):
        mf.cluster(patroni_cluster(), [{'query_result': []}])
