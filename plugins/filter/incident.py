# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the incident runbooks (playbooks/incidents/*): severity, checks and findings.

Each runbook's decisions (which status a measurement gets, which severity the run has, which
checklist lines the report shows) live here, so that unit tests reach them; the playbooks and
roles only measure and act.  Documentation: one .yml per filter beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

SEVERITIES = ('P0', 'P1', 'P2', 'P3')
FAILED_LINE = u'\u2717 The runbook failed: see the timeline'
OK = u'\u2713'
WARN = u'\u26a0'
CRIT = u'\u2717'
UNKNOWN = u'?'


def _result(value):
    """A registered result, or {} when the task was skipped or never ran."""
    if not isinstance(value, Mapping) or value.get('skipped'):
        return {}
    return value


def _ran(value):
    return isinstance(value, Mapping) and bool(value) and not value.get('skipped')


def _number(value, name):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError('%s must be a number, got %r' % (name, value))


def _pids(sessions):
    return ', '.join(str(s.get('pid')) for s in sessions)


def _count_pids(sessions):
    return '%d%s' % (len(sessions), (' (pids %s)' % _pids(sessions)) if sessions else '')


def filesize_binary(value):
    """Jinja's filesizeformat(binary=True)."""
    size = float(value or 0)
    if size == 1:
        return '1 Byte'
    if size < 1024:
        return '%d Bytes' % size
    for index, prefix in enumerate(('KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB')):
        unit = 1024 ** (index + 2)
        if size < unit:
            return '%.1f %s' % (1024 * size / unit, prefix)
    return '%.1f %s' % (1024 * size / unit, prefix)


def _action_line(result, key, done, pending, confirm, verb):
    """The checklist line of a confirmed action: what it did, that it waits for confirmation, or nothing to do."""
    if _ran(result):
        return u'%s %s: %s' % (OK, done, ', '.join(str(p) for p in result.get(key) or []) or 'none')
    if pending:
        return u'%s Not %s: run again with -e %s=true' % (WARN, key, confirm)
    return u'%s Nothing to %s' % (OK, verb)


# --- generic decisions ---------------------------------------------------------

def incident_timeline(events, *more):
    """One timeline: the events of every list given, in time order (stable: equal times keep their order)."""
    merged = []
    for part in (events,) + more:
        if part is None:
            continue
        if isinstance(part, (str, Mapping)) or not hasattr(part, '__iter__'):
            raise AnsibleFilterError('incident_timeline expects lists of {time, event}, got %s' % type(part).__name__)
        for item in part:
            if not isinstance(item, Mapping) or 'event' not in item:
                raise AnsibleFilterError('incident_timeline: every item needs an "event": %r' % (item,))
            merged.append(item)
    return sorted(merged, key=lambda item: str(item.get('time', '')))


def incident_critical(checks, ignore=None):
    """Names of the critical checks; names matching the regular expression ``ignore`` do not count."""
    pattern = re.compile(ignore) if ignore else None
    return [c.get('name') for c in checks or [] if c.get('status') == 'critical'
            and not (pattern and pattern.match(str(c.get('name', ''))))]


def incident_disk_status(percent, warning, critical=None):
    """Seed 003 LowDiskSpace: warning above ``warning`` %, critical from ``critical`` % on; None -> unknown."""
    if percent is None or str(percent).strip() in ('', '-', 'missing'):
        return 'unknown'
    pct = _number(str(percent).strip().rstrip('%'), 'percent')
    if critical is not None and pct >= _number(critical, 'critical'):
        return 'critical'
    if pct > _number(warning, 'warning'):
        return 'warning'
    return 'ok'


def incident_backup_age(age_seconds, max_hours):
    """Seed 002 morning check (backup age < 24 h): {status, hours}; no backup (None) is critical."""
    if age_seconds is None:
        return {'status': 'critical', 'hours': None}
    hours = round(_number(age_seconds, 'age_seconds') / 3600.0, 1)
    return {'status': 'critical' if hours >= _number(max_hours, 'max_hours') else 'ok', 'hours': hours}


def incident_crash_signals(before, after=None, pattern=None):
    """Crash signal lines of the server log: the lines before the start and those the start added."""
    if not pattern:
        raise AnsibleFilterError('incident_crash_signals needs the signal pattern')
    regex = re.compile(pattern)
    before = list(before or [])
    seen = set(before)
    lines = before + [line for line in after or [] if line not in seen]
    return [line for line in lines if regex.search(line)]


def incident_services_down(health_results, active_results):
    """The services (items) whose health URL does not answer 200, then those answering but not active."""
    pairs = list(zip(health_results or [], active_results or []))
    unhealthy = [h['item'] for h, _a in pairs if h.get('status') != 200]
    inactive = [h['item'] for h, a in pairs if h.get('status') == 200 and a.get('stdout') != 'active']
    return unhealthy + inactive


def incident_http_status(result, ok_status, check_mode=False):
    """Status of one API call (a registered uri result): ok for an expected HTTP status, critical for
    another; unknown when the call did not run (skipped, e.g. in check mode) or in check mode."""
    if not _ran(result):
        return 'unknown'
    if result.get('status', -1) in [int(s) for s in ok_status]:
        return 'ok'
    return 'unknown' if check_mode else 'critical'


# --- connection exhaustion (seed 002 Issue 3) ------------------------------------

def connection_exhaustion_verdict(before, after=None, terminate=None, failed=False, utilization_pct=80,
                                  idle_seconds=600, idle_in_transaction_seconds=300):
    """{severity, unresolved, findings} of a connection exhaustion run (postgresql_sessions results)."""
    before = _result(before)
    after = _result(after) or before
    limit = _number(utilization_pct, 'utilization_pct')
    conns = before.get('connections') or {}
    util = float(conns.get('utilization_pct') or 0)
    util_after = float((after.get('connections') or {}).get('utilization_pct') or 0)
    found = before.get('sessions') or []
    left = after.get('sessions') or []
    iit = [s for s in found if str(s.get('state', '')).startswith('idle in transaction')]
    idle = [s for s in found if s.get('state') == 'idle']
    over = util >= limit
    if failed and not before:
        severity = 'P0'
    elif over:
        severity = 'P1'
    else:
        severity = 'P2' if found else 'P3'
    terminated = _action_line(terminate, 'terminated', 'Terminated', bool(found), 'connection_exhaustion_confirm', 'terminate')
    findings = [
        u'%s Connection utilization: %s %% of usable slots (%s of %s max_connections, limit %s %%, seed 003)' % (
            CRIT if over else OK, util, conns.get('server_total', '?'), conns.get('max_connections', '?'), utilization_pct),
        u'%s Connections by state: %s' % (OK, json.dumps((before.get('summary') or {}).get('by_state') or {})),
        u'%s Idle in transaction > %s s: %s' % (WARN if iit else OK, idle_in_transaction_seconds, _count_pids(iit)),
        u'%s Idle > %s s (seed 002): %s' % (WARN if idle else OK, idle_seconds, _count_pids(idle)),
        terminated,
        u'%s Sessions over the limits left: %d' % (CRIT if left else OK, len(left)),
        (u'%s max_connections is the limit reached: raise postgresql_max_connections (postgresql role) after closing '
         u'idle sessions' % WARN) if over else u'%s max_connections not reached (seed Solution 1 not needed)' % OK,
        u'? Connection pooling (PgBouncer, seed Solution 3): not covered by this collection',
    ] + ([FAILED_LINE] if failed else [])
    return {'severity': severity, 'findings': findings,
            'unresolved': bool(left) or util_after >= limit or bool(failed)}


# --- slow queries (seed 002 Issue 1, seed 003 Runbook 3) ---------------------------

def slow_queries_verdict(active, after=None, statements=None, seq_scans=None, analyze=None, cancel=None, failed=False,
                         active_seconds=300, mean_ms=1000, seq_scan_min=1000):
    """{severity, unresolved, findings} of a slow query run."""
    active = _result(active)
    after = _result(after) or active
    running = active.get('sessions') or []
    left = after.get('sessions') or []
    stats = (_result(statements).get('slow_statements')) or {}
    slow = stats.get('count', 0) or 0
    seq = _result(seq_scans).get('query_result') or []
    heavy = [r.get('tablename') for r in seq if r.get('seq_scan_pct') is not None and float(r['seq_scan_pct']) > 50]
    tree = active.get('blocking_tree') or []
    installed = bool(stats.get('installed'))
    if _ran(analyze) and not analyze.get('failed'):
        sql = '; '.join(s.get('sql', '') for s in analyze.get('steps') or [])
        analyzed = u'%s ANALYZE: %s in %s s' % (OK, sql, analyze.get('total_seconds'))
    else:
        analyzed = u'%s ANALYZE not run' % WARN
    cancelled = _action_line(cancel, 'cancelled', 'Cancelled', bool(running), 'slow_queries_confirm', 'cancel')
    findings = [
        u'%s Tables with seq_scan > %s and mostly sequential scans (candidates for an index, seed Solution 1): %s' % (
            WARN if heavy else OK, seq_scan_min, ', '.join(str(t) for t in heavy) or 'none'),
        u'%s Slow statements (mean > %s ms): %s' % (
            (WARN if int(slow) > 0 else OK) if installed else UNKNOWN, mean_ms,
            slow if installed else 'pg_stat_statements not readable'),
        u'%s Statements running > %s s: %s' % (WARN if running else OK, active_seconds, _count_pids(running)),
        u'%s Blocking chains: %s' % (WARN if tree else OK, _pids(tree) or 'none'),
        analyzed,
        cancelled,
        u'%s Long-running statements left: %d' % (CRIT if left else OK, len(left)),
        u'? work_mem (seed Solution 3): raise it per session (SET work_mem) for the complex query found, not server-wide',
    ] + ([FAILED_LINE] if failed else [])
    return {'severity': 'P2' if running or int(slow) > 0 or failed else 'P3', 'findings': findings,
            'unresolved': bool(left) or bool(failed)}


# --- high database size (seed 002 Issue 2) ------------------------------------------

def _sized(names, sizes):
    return ['%s %s' % pair for pair in zip(names, sizes)]


def high_db_size_verdict(before, after=None, tables=None, chunks=None, compression=None, compressed=None, drop=None,
                         vacuum=None, failed=False, drop_older_than='5 years', vacuum_full_confirm=False,
                         vacuum_full_tables=None):
    """{severity, unresolved, findings} of a high database size run (postgresql_health_info results)."""
    after = after if isinstance(after, Mapping) and 'status' in after else _result(before)
    status = after.get('status', 'unknown')
    rows = _result(tables).get('query_result') or []
    hypertables = _result(chunks).get('hypertables') or []
    compression_result = compression if isinstance(compression, Mapping) else {}
    if compression_result.get('skipped') and isinstance(compression_result.get('skipped'), list):
        compress_line = (u'%s Solution 1 - compression skipped: the server runs timescaledb.license=%s (install the TSL '
                         u'build to compress)' % (WARN, compression_result.get('license', '?')))
    elif _ran(compression_result):
        compress_line = u'%s Solution 1 - compression enabled, %d chunk(s) compressed' % (
            OK, len(_result(compressed).get('compressed') or []))
    else:
        compress_line = u'? Solution 1 - compression not attempted'
    drop = drop if isinstance(drop, Mapping) else {}
    if drop.get('dropped'):
        drop_line = u'%s Solution 2 - dropped %d chunk(s)' % (OK, len(drop['dropped']))
    else:
        would = drop.get('would_drop') or []
        drop_line = u'%s Solution 2 - %d chunk(s) older than %s not dropped (confirm with -e high_db_size_drop_confirm=true)' % (
            WARN if would else OK, len(would), drop_older_than)
    if vacuum_full_confirm and not (isinstance(vacuum, Mapping) and vacuum.get('failed')):
        vacuum_line = u'%s Solution 3 - VACUUM FULL %s' % (OK, ', '.join(vacuum_full_tables or []))
    else:
        vacuum_line = u'? Solution 3 - VACUUM FULL not run (locks the table; -e high_db_size_vacuum_full_confirm=true)'
    largest = _sized([r.get('tablename') for r in rows], [r.get('total_size') for r in rows])[:5]
    hyper = _sized([h.get('name') for h in hypertables], [filesize_binary(h.get('total_bytes')) for h in hypertables])
    findings = list(after.get('checklist') or []) + [
        u'? Largest public tables: ' + ', '.join(largest),
        u'? Hypertables over their chunks: ' + ', '.join(hyper),
        compress_line, drop_line, vacuum_line,
    ] + ([FAILED_LINE] if failed else [])
    if status == 'critical' or failed:
        severity = 'P1'
    else:
        severity = 'P2' if status == 'warning' else 'P3'
    return {'severity': severity, 'findings': findings, 'unresolved': status == 'critical' or bool(failed)}


# --- data quality (seed 002 Issue 4) -------------------------------------------------

def _duplicates(result):
    for check in (result or {}).get('checks') or []:
        if check.get('name') == 'duplicates':
            return int(check.get('count') or 0)
    return 0


def data_quality_verdict(before, fix=None, failed=False, check_mode=False):
    """{severity, unresolved, status, findings} of a data quality run (ohlcv_data_quality results)."""
    before = _result(before)
    fix = _result(fix)
    final = fix if 'checks' in fix else before
    removed = 'removed_rows' in fix
    dups_left = 0 if removed and not check_mode else _duplicates(before)
    missing = final.get('missing_days') or []
    outliers = final.get('outliers') or []
    methods = final.get('missing_days_methods') or []
    if removed:
        solution1 = u'%s Solution 1 - duplicates removed: %d rows (earliest created_at kept)' % (OK, len(fix['removed_rows']))
    elif dups_left > 0:
        solution1 = u'%s Solution 1 - duplicates NOT removed: run again with -e data_quality_fix_confirm=true' % CRIT
    else:
        solution1 = u'%s Solution 1 - no duplicates to remove' % OK
    tickers = []
    for item in missing:
        ticker = str(item.get('ticker', '?'))
        if ticker not in tickers:
            tickers.append(ticker)
    anomalies = '; '.join(' '.join(str(v) for k, v in o.items() if k in ('ticker', 'time', 'z_score')) for o in outliers[:10])
    findings = list(final.get('checklist') or []) + [
        solution1,
        (u'%s Solution 2 - backfill missing dates from the source for: %s' % (WARN, ', '.join(tickers))) if missing
        else u'%s Solution 2 - no missing trading days to backfill' % OK,
        (u'%s Solution 3 - investigate price anomalies (splits, dividends, source): %s' % (WARN, anomalies)) if outliers
        else u'%s Solution 3 - no price anomalies' % OK,
        u'? Missing-day methods: %s (exchange_calendars %s)' % (
            ', '.join('%s=%s' % (m.get('ticker', '?'), m.get('method')) for m in methods) or 'not run',
            final.get('exchange_calendars_version') or 'not installed'),
    ] + ([FAILED_LINE] if failed else [])
    return {'severity': 'P1' if failed else final.get('severity', 'P1'), 'findings': findings,
            'status': final.get('status', 'critical'), 'unresolved': bool(failed) or dups_left > 0}


# --- triage (seed 002 Incident Response Workflow) --------------------------------------

def triage_disks(df_lines):
    """`df --output=target,pcent` lines -> [{mount, pct}] (header dropped, each mount once)."""
    disks, seen = [], set()
    for line in df_lines or []:
        if line.startswith('Mounted on') or line in seen:
            continue
        seen.add(line)
        fields = line.split()
        disks.append({'mount': fields[0], 'pct': float(fields[1].replace('%', ''))})
    return disks


def triage_verdict(db_ok, disks=None, metrics=None, sessions=None, snapshot=None, fetched=None, grafana=None, failed=False,
                   grafana_url='', memory=None, load='', disk_warning_pct=85, disk_critical_pct=95,
                   idle_in_transaction_seconds=300):
    """{severity, findings} of a triage run."""
    disks = disks or []
    disk_max = max([d['pct'] for d in disks] + [0])
    disk = incident_disk_status(disk_max, disk_warning_pct, disk_critical_pct)
    results = _result(metrics).get('results') or []
    down = [r for r in results if r.get('status') not in (200, 401)]
    sessions = _result(sessions)
    iit = [s for s in sessions.get('sessions') or [] if str(s.get('state', '')).startswith('idle in transaction')
           and float(s.get('state_seconds') or 0) > float(idle_in_transaction_seconds)]
    tree = sessions.get('blocking_tree') or []
    snapshot = _result(snapshot)
    blocked = int((snapshot.get('summary') or {}).get('blocked_sessions') or 0)
    if not db_ok:
        severity = 'P0'
    elif blocked > 0 or disk == 'critical':
        severity = 'P1'
    elif disk == 'warning' or down or iit or failed:
        severity = 'P2'
    else:
        severity = 'P3'
    findings = [u'%s Database responsive (SELECT 1)' % OK if db_ok
                else u'%s Database NOT responsive: run crash_recovery.yml / service_down.yml' % CRIT]
    for result in results:
        item = result.get('item') or {}
        if result.get('status') in (200, 401):
            findings.append(u'%s Metrics: %s answering (HTTP %s)' % (OK, item.get('name'), result.get('status')))
        else:
            findings.append(u'%s Metrics: %s not answering at %s (%s)' % (
                WARN, item.get('name'), item.get('url'), result.get('msg', 'HTTP %s' % result.get('status'))))
    if grafana_url:
        status = _result(grafana).get('status', '?')
        findings.append(u'%s Grafana %s (HTTP %s)' % (OK if status == 200 else WARN, grafana_url, status))
    else:
        findings.append(u'? Grafana: not checked (set triage_grafana_url)')
    memory = memory or {}
    findings.append(u'%s Memory: %s of %s MB used; load %s' % (OK, memory.get('used', '?'), memory.get('total', '?'), load))
    findings.append(u'%s Disk usage %% (warning %s, critical %s): %s' % (
        {'critical': CRIT, 'warning': WARN}.get(disk, OK), disk_warning_pct, disk_critical_pct,
        ', '.join('%s: %s' % (d['mount'], d['pct']) for d in disks) or 'no mount seen'))
    if db_ok:
        findings.append(u'%s Idle in transaction > %s s: %d%s' % (
            WARN if iit else OK, idle_in_transaction_seconds, len(iit), ' - run connection_exhaustion.yml' if iit else ''))
        findings.append(u'%s Blocking chains: %d%s' % (
            CRIT if tree else OK, len(tree),
            (' (root pids %s) - run connection_exhaustion.yml or slow_queries.yml' % _pids(tree)) if tree else ''))
        findings.append(u'%s Snapshot: %s' % (OK, fetched['dest']) if _ran(fetched) and fetched.get('dest')
                        else u'%s Snapshot: not taken (check mode)' % WARN)
        findings.extend(u'%s Snapshot section: %s' % (WARN, message) for message in (snapshot.get('errors') or {}).values())
    findings.append(u'? Containment: stopping services is playbooks/services/stop.yml or emergency_stop.yml '
                    u'(not run by triage)')
    if failed:
        findings.append(u'%s Triage step failed: see the timeline' % CRIT)
    return {'severity': severity, 'findings': findings}


# --- checklist runbooks: crash recovery, service down, backup failure ----------------

def _check_status(checks, name, default=None):
    for check in checks or []:
        if check.get('name') == name:
            return check.get('status')
    return default


def crash_recovery_verdict(checks, was_down=False, signals=None):
    """{severity, unresolved, data_integrity} of a crash recovery run (seed 002 levels).

    P0 when the database was down or a check after the status is critical, P1 when it was up but the
    log shows a crash it recovered from, P3 otherwise.  The status check ("0. ...") records that it
    was down; it does not keep the run unresolved once the start worked.
    """
    critical = incident_critical(checks, ignore=r'0[.] ')
    if was_down or critical:
        severity = 'P0'
    else:
        severity = 'P1' if signals else 'P3'
    data = _check_status(checks, '+ Data check', 'not checked')
    integrity = {'ok': 'OK (full read, bt_index_check, no checksum failures)',
                 'critical': 'COMPROMISED - see Findings'}.get(data, data)
    return {'severity': severity, 'unresolved': bool(critical), 'data_integrity': integrity}


def service_down_verdict(checks, down=None):
    """{severity, unresolved, recovered} of a service down run (seed 003 Runbook 1 is P1).

    Recovered: the post-resolution health check is the only one of its name and ok.  Unresolved: a
    critical check other than the status (1.) and port (5.) findings, or a down service not recovered.
    """
    recovered = [c.get('status') for c in checks or [] if c.get('name') == 'Post-resolution: service health'] == ['ok']
    failed = bool(incident_critical(checks, ignore=r'[15][.] '))
    return {'severity': 'P1' if down or failed else 'P3', 'recovered': recovered,
            'unresolved': failed or (bool(down) and not recovered)}


class FilterModule(object):
    """quantops.platform incident filters."""

    def filters(self):
        return {
            'incident_timeline': incident_timeline,
            'incident_critical': incident_critical,
            'incident_disk_status': incident_disk_status,
            'incident_backup_age': incident_backup_age,
            'incident_crash_signals': incident_crash_signals,
            'incident_services_down': incident_services_down,
            'incident_http_status': incident_http_status,
            'connection_exhaustion_verdict': connection_exhaustion_verdict,
            'slow_queries_verdict': slow_queries_verdict,
            'high_db_size_verdict': high_db_size_verdict,
            'data_quality_verdict': data_quality_verdict,
            'triage_disks': triage_disks,
            'triage_verdict': triage_verdict,
            'crash_recovery_verdict': crash_recovery_verdict,
            'service_down_verdict': service_down_verdict,
        }
