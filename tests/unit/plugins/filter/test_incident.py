# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident filters (plugins/filter/incident.py): the runbooks' decisions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
from jinja2.filters import do_filesizeformat

from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter import incident
from ansible_collections.quantops.platform.plugins.filter.incident import FilterModule

SKIPPED = {'skipped': True, 'changed': False}


def test_every_filter_is_registered_and_documented():
    names = FilterModule().filters()
    here = os.path.dirname(incident.__file__)
    for name, func in names.items():
        assert func is getattr(incident, name)
        assert os.path.isfile(os.path.join(here, name + '.yml')), name


# --- generic -------------------------------------------------------------------

def test_timeline_merges_in_time_order_and_keeps_equal_times_in_order():
    events = [{'time': '2026-01-01 10:00:00', 'event': 'a'}, {'time': '2026-01-01 10:00:02', 'event': 'c'}]
    services = [{'time': '2026-01-01 10:00:01', 'event': 'b'}, {'time': '2026-01-01 10:00:02', 'event': 'd'}]
    merged = incident.incident_timeline(events, services)
    assert [e['event'] for e in merged] == ['a', 'b', 'c', 'd']
    assert incident.incident_timeline(events, None) == events


def test_timeline_refuses_items_without_event():
    with pytest.raises(AnsibleFilterError, match='event'):
        incident.incident_timeline([{'time': 'x'}])
    with pytest.raises(AnsibleFilterError):
        incident.incident_timeline('not a list')


def test_critical_names_and_ignore():
    checks = [{'name': '0. PostgreSQL status', 'status': 'critical'}, {'name': '1. log', 'status': 'warning'},
              {'name': '+ Data check', 'status': 'critical'}]
    assert incident.incident_critical(checks) == ['0. PostgreSQL status', '+ Data check']
    assert incident.incident_critical(checks, ignore=r'0[.] ') == ['+ Data check']


@pytest.mark.parametrize('pct,warning,critical,expected', [
    ('85%', 85, 98, 'ok'),           # seed 003: > 85 is the warning
    ('86%', 85, 98, 'warning'),
    ('98%', 85, 98, 'critical'),
    (97.9, 85, None, 'warning'),     # no critical level
    (99, 85, None, 'warning'),
    ('missing', 85, 98, 'unknown'),
    (None, 85, 98, 'unknown'),
])
def test_disk_status(pct, warning, critical, expected):
    assert incident.incident_disk_status(pct, warning, critical) == expected


def test_disk_status_refuses_text():
    with pytest.raises(AnsibleFilterError, match='percent'):
        incident.incident_disk_status('full', 85)


def test_backup_age():
    assert incident.incident_backup_age(None, 24) == {'status': 'critical', 'hours': None}
    assert incident.incident_backup_age(3600 * 23.9, 24) == {'status': 'ok', 'hours': 23.9}
    assert incident.incident_backup_age(3600 * 24, 24) == {'status': 'critical', 'hours': 24.0}


def test_crash_signals_counts_each_line_once():
    before = ['LOG:  checkpoint', 'LOG:  server process (PID 7) was terminated by signal 9: Killed']
    after = before + ['LOG:  database system was interrupted; last known up at x', 'LOG:  redo done at 0/1']
    signals = incident.incident_crash_signals(before, after, 'terminated by signal|was interrupted')
    assert signals == [before[1], after[2]]
    assert incident.incident_crash_signals([], None, 'PANIC:') == []
    with pytest.raises(AnsibleFilterError):
        incident.incident_crash_signals(before, after, '')


def test_services_down_unhealthy_first_then_inactive():
    items = [{'name': n} for n in ('a', 'b', 'c')]
    health = [{'item': items[0], 'status': 200}, {'item': items[1], 'status': -1}, {'item': items[2], 'status': 200}]
    active = [{'stdout': 'failed'}, {'stdout': 'inactive'}, {'stdout': 'active'}]
    assert incident.incident_services_down(health, active) == [items[1], items[0]]


def test_http_status():
    assert incident.incident_http_status({'status': 204}, [200, 204]) == 'ok'
    assert incident.incident_http_status({'status': 500, 'msg': 'x'}, [200]) == 'critical'
    assert incident.incident_http_status({'status': 500}, [200], check_mode=True) == 'unknown'
    assert incident.incident_http_status(SKIPPED, [200]) == 'unknown'
    assert incident.incident_http_status(None, ['200']) == 'unknown'


# --- connection exhaustion -----------------------------------------------------------

def sessions_result(util, sessions, by_state=None):
    return {'connections': {'utilization_pct': util, 'server_total': 12, 'max_connections': 100},
            'summary': {'by_state': by_state or {'active': 1}}, 'sessions': sessions}


IIT = {'pid': 11, 'state': 'idle in transaction'}
IDLE = {'pid': 12, 'state': 'idle'}


def test_connection_exhaustion_p2_when_idle_sessions_not_confirmed():
    verdict = incident.connection_exhaustion_verdict(sessions_result(12.5, [IIT, IDLE]), None, SKIPPED)
    assert verdict['severity'] == 'P2'
    assert verdict['unresolved'] is True
    assert verdict['findings'][:6] == [
        u'✓ Connection utilization: 12.5 % of usable slots (12 of 100 max_connections, limit 80 %, seed 003)',
        u'✓ Connections by state: {"active": 1}',
        u'⚠ Idle in transaction > 300 s: 1 (pids 11)',
        u'⚠ Idle > 600 s (seed 002): 1 (pids 12)',
        u'⚠ Not terminated: run again with -e connection_exhaustion_confirm=true',
        u'✗ Sessions over the limits left: 2',
    ]


def test_connection_exhaustion_confirmed_terminations_resolve():
    verdict = incident.connection_exhaustion_verdict(
        sessions_result(12.5, [IIT, IDLE]), sessions_result(10.0, []), {'terminated': [11, 12]})
    assert verdict['severity'] == 'P2' and verdict['unresolved'] is False
    assert u'✓ Terminated: 11, 12' in verdict['findings']
    assert u'✓ Sessions over the limits left: 0' in verdict['findings']


def test_connection_exhaustion_utilization_limit_is_p1_and_unresolved():
    verdict = incident.connection_exhaustion_verdict(sessions_result(80, []), utilization_pct=80)
    assert verdict['severity'] == 'P1' and verdict['unresolved'] is True
    assert verdict['findings'][0].startswith(u'✗ Connection utilization: 80.0 %')
    assert verdict['findings'][6].startswith(u'⚠ max_connections is the limit reached')
    clean = incident.connection_exhaustion_verdict(sessions_result(79.9, []), utilization_pct=80)
    assert clean['severity'] == 'P3' and clean['unresolved'] is False
    assert clean['findings'][4] == u'✓ Nothing to terminate'


def test_connection_exhaustion_failed_run():
    verdict = incident.connection_exhaustion_verdict({}, failed=True)
    assert verdict['severity'] == 'P0' and verdict['unresolved'] is True
    assert verdict['findings'][-1] == incident.FAILED_LINE


# --- slow queries ----------------------------------------------------------------------

def test_slow_queries_unconfirmed_long_running_statement():
    active = {'sessions': [{'pid': 42}], 'blocking_tree': [{'pid': 40}]}
    verdict = incident.slow_queries_verdict(
        active, SKIPPED, statements={'slow_statements': {'installed': True, 'count': 0}},
        seq_scans={'query_result': [{'tablename': 'ohlcv_data', 'seq_scan_pct': 97.5},
                                    {'tablename': 'small', 'seq_scan_pct': 10}, {'tablename': 'new', 'seq_scan_pct': None}]},
        analyze={'steps': [{'sql': 'ANALYZE ohlcv_data'}], 'total_seconds': 0.4}, cancel=SKIPPED)
    assert verdict['severity'] == 'P2' and verdict['unresolved'] is True
    seq_scans, rest = verdict['findings'][0], verdict['findings'][1:7]
    assert seq_scans.endswith(': ohlcv_data') and seq_scans.startswith(u'⚠')
    assert rest == [
        u'✓ Slow statements (mean > 1000 ms): 0',
        u'⚠ Statements running > 300 s: 1 (pids 42)',
        u'⚠ Blocking chains: 40',
        u'✓ ANALYZE: ANALYZE ohlcv_data in 0.4 s',
        u'⚠ Not cancelled: run again with -e slow_queries_confirm=true',
        u'✗ Long-running statements left: 1',
    ]


def test_slow_queries_clean_and_unreadable_statements():
    verdict = incident.slow_queries_verdict({'sessions': [], 'blocking_tree': []},
                                            statements={'slow_statements': {'installed': False}})
    assert verdict['severity'] == 'P3' and verdict['unresolved'] is False
    assert verdict['findings'][1] == u'? Slow statements (mean > 1000 ms): pg_stat_statements not readable'
    assert verdict['findings'][4] == u'⚠ ANALYZE not run'
    slow = incident.slow_queries_verdict({'sessions': []}, statements={'slow_statements': {'installed': True, 'count': 3}})
    assert slow['severity'] == 'P2' and slow['unresolved'] is False


# --- high database size -------------------------------------------------------------------

def size_result(status):
    return {'status': status, 'checklist': [u'✓ Database size: 1.2 GB'], 'checks': []}


def test_high_db_size_levels():
    assert incident.high_db_size_verdict(size_result('critical'))['severity'] == 'P1'
    assert incident.high_db_size_verdict(size_result('critical'))['unresolved'] is True
    assert incident.high_db_size_verdict(size_result('warning'))['severity'] == 'P2'
    ok = incident.high_db_size_verdict(size_result('critical'), after=size_result('ok'))
    assert ok['severity'] == 'P3' and ok['unresolved'] is False   # the measurement after the solutions counts


def test_high_db_size_findings_on_the_apache_build():
    verdict = incident.high_db_size_verdict(
        size_result('ok'), tables={'query_result': [{'tablename': 't%d' % i, 'total_size': '%d MB' % i} for i in range(7)]},
        chunks={'hypertables': [{'name': 'ohlcv_data', 'total_bytes': 3 * 1024 ** 2}]},
        compression={'skipped': ['compression'], 'license': 'apache'}, drop={'would_drop': ['_hyper_1_1_chunk']})
    findings = verdict['findings']
    assert findings[1] == '? Largest public tables: t0 0 MB, t1 1 MB, t2 2 MB, t3 3 MB, t4 4 MB'
    assert findings[2] == '? Hypertables over their chunks: ohlcv_data 3.0 MiB'
    assert findings[3].startswith(u'⚠ Solution 1 - compression skipped: the server runs timescaledb.license=apache')
    assert findings[4] == (u'⚠ Solution 2 - 1 chunk(s) older than 5 years not dropped '
                           u'(confirm with -e high_db_size_drop_confirm=true)')
    assert findings[5].startswith('? Solution 3 - VACUUM FULL not run')


def test_high_db_size_solutions_done():
    verdict = incident.high_db_size_verdict(
        size_result('ok'), compression={'skipped': [], 'queries': []}, compressed={'compressed': ['c1', 'c2']},
        drop={'dropped': ['c0']}, vacuum={'results': []}, vacuum_full_confirm=True, vacuum_full_tables=['ohlcv_data'])
    assert verdict['findings'][3] == u'✓ Solution 1 - compression enabled, 2 chunk(s) compressed'
    assert verdict['findings'][4] == u'✓ Solution 2 - dropped 1 chunk(s)'
    assert verdict['findings'][5] == u'✓ Solution 3 - VACUUM FULL ohlcv_data'
    assert incident.high_db_size_verdict(size_result('ok'), compression=SKIPPED)['findings'][3] == \
        '? Solution 1 - compression not attempted'


def test_filesize_matches_jinja_binary_filesizeformat():
    for value in (0, 1, 1023, 1024, 5 * 1024 ** 3 + 7, 3 * 1024 ** 5):
        assert incident.filesize_binary(value) == do_filesizeformat(value, True)


# --- data quality -------------------------------------------------------------------------

def dq_result(dups, severity='P1', status='critical'):
    return {'severity': severity, 'status': status, 'checklist': [u'✗ Duplicates: %d' % dups],
            'checks': [{'name': 'duplicates', 'count': dups}],
            'missing_days': [{'ticker': 'IXIC'}, {'ticker': 'IXIC'}, {'ticker': 'KS11'}],
            'outliers': [{'ticker': 'SPX', 'region': 'US', 'time': '2016-06-15', 'z_score': 9.1}],
            'missing_days_methods': [{'ticker': 'IXIC', 'method': 'calendar'}], 'exchange_calendars_version': '4.13.2'}


def test_data_quality_unconfirmed_duplicates_stay_unresolved():
    verdict = incident.data_quality_verdict(dq_result(3), SKIPPED)
    assert verdict['severity'] == 'P1' and verdict['unresolved'] is True
    findings = verdict['findings']
    assert findings[1] == u'✗ Solution 1 - duplicates NOT removed: run again with -e data_quality_fix_confirm=true'
    assert findings[2] == u'⚠ Solution 2 - backfill missing dates from the source for: IXIC, KS11'
    assert findings[3] == u'⚠ Solution 3 - investigate price anomalies (splits, dividends, source): SPX 2016-06-15 9.1'
    assert findings[4] == '? Missing-day methods: IXIC=calendar (exchange_calendars 4.13.2)'


def test_data_quality_fix_resolves_but_not_in_check_mode():
    fix = dict(dq_result(0, 'P2', 'warning'), removed_rows=[{'ticker': 'SPX'}] * 3)
    verdict = incident.data_quality_verdict(dq_result(3), fix)
    assert verdict['severity'] == 'P2' and verdict['unresolved'] is False and verdict['status'] == 'warning'
    assert verdict['findings'][1] == u'✓ Solution 1 - duplicates removed: 3 rows (earliest created_at kept)'
    assert incident.data_quality_verdict(dq_result(3), fix, check_mode=True)['unresolved'] is True


def test_data_quality_failed_run_is_p1():
    verdict = incident.data_quality_verdict({}, None, failed=True)
    assert verdict['severity'] == 'P1' and verdict['unresolved'] is True
    assert verdict['findings'][-2] == '? Missing-day methods: not run (exchange_calendars not installed)'


# --- triage -----------------------------------------------------------------------------------

def test_triage_disks():
    lines = ['Mounted on Use%', '/            24%', '/            24%', '/var/lib/postgresql  91%']
    assert incident.triage_disks(lines) == [{'mount': '/', 'pct': 24.0}, {'mount': '/var/lib/postgresql', 'pct': 91.0}]


def test_triage_levels():
    assert incident.triage_verdict(False)['severity'] == 'P0'
    assert incident.triage_verdict(True)['severity'] == 'P3'
    assert incident.triage_verdict(True, disks=[{'mount': '/', 'pct': 95.0}])['severity'] == 'P1'
    assert incident.triage_verdict(True, disks=[{'mount': '/', 'pct': 86.0}])['severity'] == 'P2'
    assert incident.triage_verdict(True, snapshot={'summary': {'blocked_sessions': 1}})['severity'] == 'P1'
    down = {'results': [{'item': {'name': 'node_exporter', 'url': 'u'}, 'status': -1, 'msg': 'refused'}]}
    assert incident.triage_verdict(True, metrics=down)['severity'] == 'P2'
    iit = {'sessions': [{'state': 'idle in transaction', 'state_seconds': 301}], 'blocking_tree': []}
    assert incident.triage_verdict(True, sessions=iit)['severity'] == 'P2'
    young = {'sessions': [{'state': 'idle in transaction', 'state_seconds': 10}], 'blocking_tree': []}
    assert incident.triage_verdict(True, sessions=young)['severity'] == 'P3'


def test_triage_findings():
    verdict = incident.triage_verdict(
        True, disks=[{'mount': '/', 'pct': 24.0}],
        metrics={'results': [{'item': {'name': 'postgres_exporter', 'url': 'u'}, 'status': 401}]},
        sessions={'sessions': [], 'blocking_tree': [{'pid': 7}]}, snapshot={'errors': {'log': 'not readable'}},
        fetched={'dest': '/r/incident.tar.gz'}, memory={'used': 100, 'total': 2000}, load='0.1 0.2 0.3')
    assert verdict['findings'] == [
        u'✓ Database responsive (SELECT 1)',
        u'✓ Metrics: postgres_exporter answering (HTTP 401)',
        u'? Grafana: not checked (set triage_grafana_url)',
        u'✓ Memory: 100 of 2000 MB used; load 0.1 0.2 0.3',
        u'✓ Disk usage % (warning 85, critical 95): /: 24.0',
        u'✓ Idle in transaction > 300 s: 0',
        u'✗ Blocking chains: 1 (root pids 7) - run connection_exhaustion.yml or slow_queries.yml',
        u'✓ Snapshot: /r/incident.tar.gz',
        u'⚠ Snapshot section: not readable',
        u'? Containment: stopping services is playbooks/services/stop.yml or emergency_stop.yml (not run by triage)',
    ]


# --- crash recovery, service down ----------------------------------------------------------------

def test_crash_recovery_levels():
    down = [{'name': '0. PostgreSQL status', 'status': 'critical'}, {'name': '2. Safe start', 'status': 'ok'},
            {'name': '+ Data check', 'status': 'ok'}]
    verdict = incident.crash_recovery_verdict(down, was_down=True, signals=['x'])
    assert verdict == {'severity': 'P0', 'unresolved': False,
                       'data_integrity': 'OK (full read, bt_index_check, no checksum failures)'}
    broken = down[:2] + [{'name': '+ Data check', 'status': 'critical'}]
    assert incident.crash_recovery_verdict(broken, was_down=False)['unresolved'] is True
    assert incident.crash_recovery_verdict(broken)['data_integrity'] == 'COMPROMISED - see Findings'
    up = [{'name': '0. PostgreSQL status', 'status': 'ok'}]
    assert incident.crash_recovery_verdict(up, signals=['PANIC:'])['severity'] == 'P1'
    assert incident.crash_recovery_verdict(up)['severity'] == 'P3'
    assert incident.crash_recovery_verdict(up)['data_integrity'] == 'not checked'


def test_service_down_outcomes():
    down = [{'name': 'risk-manager'}]
    status = [{'name': '1. risk-manager (trading-risk-manager.service)', 'status': 'critical'},
              {'name': '5. Port of risk-manager', 'status': 'critical'}]
    unconfirmed = status + [{'name': 'Resolution', 'status': 'critical'}]
    assert incident.service_down_verdict(unconfirmed, down) == {'severity': 'P1', 'recovered': False, 'unresolved': True}
    restarted = status + [{'name': 'Post-resolution: service health', 'status': 'ok'}]
    assert incident.service_down_verdict(restarted, down) == {'severity': 'P1', 'recovered': True, 'unresolved': False}
    assert incident.service_down_verdict([{'name': '1. a', 'status': 'ok'}], []) == \
        {'severity': 'P3', 'recovered': False, 'unresolved': False}
