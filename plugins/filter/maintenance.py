# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the maintenance runbooks (playbooks/maintenance): their verdicts as checklist items.

Every filter turns what a runbook measured (registered results, metric files,
catalog rows) into checks in the format of quantops.platform.health_checklist:
``{name, status ok|warning|critical|unknown, display, message[, warning, critical, operator, unit]}``.
The thresholds come in as arguments (the roles' defaults), never from here.
Documentation: one maintenance_*.yml beside this file per filter.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import re
import time

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

from ansible_collections.quantops.platform.plugins.module_utils.health import format_bytes

# Seed 002 "Check Backup Status": database backups only - pgBackRest's and pg_dump's series,
# not the restore drill's (type="drill") and not the configuration tarballs.
BACKUP_SUCCESS_RE = re.compile(
    r'(?m)^quantops_backup_last_success_timestamp_seconds\{(?![^}]*type="drill")[^}]*'
    r'tool="(pgbackrest|pg_dump)"[^}]*\} (\S+)$')

CATALOG_SCHEMA_RE = re.compile(r'^(pg_catalog|information_schema|_timescaledb.*|timescaledb_.*)$')
WRITE_PRIVILEGES = ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')
SAMPLE_RE = re.compile(r'^\d{4}-\d{2}-\d{2},\d+$')


def _check(name, status, display='', message='', **limits):
    item = {'name': name, 'status': status, 'display': display, 'message': message}
    item.update(limits)
    return item


def _list(value, what):
    if value is None:
        return []
    if isinstance(value, string_types) or isinstance(value, dict) or not is_sequence(value):
        raise AnsibleFilterError('%s must be a list, got %s' % (what, type(value).__name__))
    return list(value)


def _rows(value, what):
    # community.postgresql.postgresql_query returns a query that found no row as an empty dict
    # (query_result: {}, query_all_results: [{}]), not as an empty list.
    if isinstance(value, dict) and not value:
        return []
    return _list(value, what)


def _dict(value, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AnsibleFilterError('%s must be a dict, got %s' % (what, type(value).__name__))
    return value


def _skipped(result):
    # Ansible's flag of a task skipped by its condition: True.  timescaledb_chunks returns a list
    # `skipped` (actions it left out and why) - that result is not a skipped task.
    return _dict(result, 'result').get('skipped') is True


def _day(text, what):
    try:
        return datetime.datetime.strptime(str(text)[:10], '%Y-%m-%d').date()
    except ValueError:
        raise AnsibleFilterError('%s must be a date YYYY-MM-DD, got %r' % (what, text))


# --- morning check (seed 002 Morning Checklist) -------------------------------

def backup_age(metric_files, now=None, metrics_dir='', max_age_hours=24):
    """Step 3: age of the newest successful database backup from the backup jobs' metric files.

    ``metric_files``: dicts with ``host`` and ``text``, or the results of ansible.builtin.slurp (base64
    ``content``) looped over ``{host, path}`` items or over ``find_results | subelements('files')`` of an
    ansible.builtin.find looped over the hosts.
    """
    now = time.time() if now is None else float(now)
    found = []
    for index, entry in enumerate(_list(metric_files, 'metric_files')):
        entry = _dict(entry, 'metric_files[%d]' % index)
        item = entry.get('item')
        if isinstance(item, dict):
            host = item.get('host')
        elif is_sequence(item) and item and isinstance(item[0], dict):
            host = item[0].get('item')   # a slurp looped over find_results | subelements('files')
        else:
            host = entry.get('host')
        host = host or '?'
        text = entry.get('text')
        if text is None:
            text = base64.b64decode(entry.get('content') or '').decode('utf-8', 'replace')
        for tool, at in BACKUP_SUCCESS_RE.findall(text):
            found.append((float(at), '%s on %s' % (tool, host)))
    newest = max([at for at, by in found] or [0])
    if newest == 0:
        missing = 'no successful database backup recorded in %s' % metrics_dir
        return _check('Backup age', 'unknown', missing, missing + ' - run playbooks/backup/backup_now.yml',
                      warning=max_age_hours, operator='>', unit='hours')
    age = round((now - newest) / 3600, 1)
    by = ', '.join(sorted(set(by for at, by in found)))
    return _check('Backup age', 'warning' if age > float(max_age_hours) else 'ok',
                  '%.1f h since the newest successful backup (%s)' % (age, by),
                  '%.1f h since the newest successful backup; the seed wants < %s h: '
                  'run playbooks/incidents/backup_failure.yml' % (age, max_age_hours),
                  warning=max_age_hours, operator='>', unit='hours')


def server_log(errors, panics, path):
    """Step 4: the ERROR/FATAL/PANIC count of the PostgreSQL log; a PANIC is critical (crash recovery)."""
    errors, panics = int(errors or 0), int(panics or 0)
    return _check('Server log', 'critical' if panics > 0 else 'ok',
                  '%d ERROR/FATAL/PANIC lines (%d PANIC) in %s' % (errors, panics, path),
                  '%d PANIC lines: run the crash-recovery runbook' % panics, critical=0, operator='>',
                  unit='PANIC lines')


def prometheus(targets, alerts):
    """Step 4 on the monitoring hosts: Prometheus' /api/v1/targets and /api/v1/alerts answers as two checks."""
    active = _list(_dict(_dict(targets, 'targets').get('data'), 'targets.data').get('activeTargets'), 'activeTargets')
    down = [t for t in active if t.get('health') != 'up']
    firing = [a for a in _list(_dict(_dict(alerts, 'alerts').get('data'), 'alerts.data').get('alerts'), 'alerts')
              if a.get('state') == 'firing']
    critical = [a for a in firing if (a.get('labels') or {}).get('severity') == 'critical']
    names = sorted(set((a.get('labels') or {}).get('alertname', '?') for a in firing))
    return [
        _check('Prometheus targets', 'warning' if down else 'ok',
               '%d/%d up%s' % (len(active) - len(down), len(active),
                               (' - down: ' + ', '.join(t.get('scrapeUrl', '?') for t in down)) if down else ''),
               'a target is down: see its lastError in Prometheus (Status > Targets)'),
        _check('Alerts firing', 'critical' if critical else ('warning' if firing else 'ok'),
               '%d firing%s' % (len(firing), (' - ' + ', '.join(names)) if firing else ''),
               "%d critical: each alert's runbook_url names its playbook" % len(critical)),
    ]


# --- evening check (seed 002 End-of-Day Checklist) ----------------------------

def evening(results, day, ohlcv_avg_ms=200, ohlcv_max_ms=1000):
    """The three end-of-day checks from the registered ``results`` {ingest, quality, perf} of ``day``."""
    results = _dict(results, 'results')
    weekend = _day(day, 'day').isoweekday() > 5
    rows = _rows(_dict(results.get('ingest'), 'ingest').get('query_result'), 'ingest.query_result')
    if rows:
        collected = ', '.join('%s %s tickers / %s rows' % (r['region'], r['tickers_updated'], r['total_rows']) for r in rows)
    elif weekend:
        collected = 'no rows (weekend)'
    else:
        collected = 'no rows on a weekday: market holiday, or ingestion missing'
    quality = _dict(results.get('quality'), 'quality')
    perf = _dict(results.get('perf'), 'perf')
    ohlcv = [r for r in _rows(perf.get('query_result'), 'perf.query_result') if r.get('query_type') == 'OHLCV Query']
    if 'query_result' not in perf:
        perf_status, perf_display = 'unknown', ''
    elif not ohlcv:
        perf_status, perf_display = 'ok', 'no OHLCV statement with more than 10 calls yet'
    else:
        row = ohlcv[0]
        # Seed 002: "Expected: OHLCV Query avg <200ms, max <1000ms" (max: the largest mean time of a statement).
        slow = float(row['avg_duration_ms']) >= float(ohlcv_avg_ms) or float(row['max_duration_ms']) >= float(ohlcv_max_ms)
        perf_status = 'warning' if slow else 'ok'
        perf_display = 'avg %s ms (< %s), max mean %s ms (< %s) over %s statements' % (
            row['avg_duration_ms'], ohlcv_avg_ms, row['max_duration_ms'], ohlcv_max_ms, row['executions'])
    return [
        _check('1. Data collection %s' % day, 'ok' if rows or weekend else 'warning', collected),
        _check('2. Data quality of %s (ohlcv_data_quality)' % day, quality.get('status', 'unknown'),
               '%s rows scanned, severity %s: %s' % (
                   quality.get('scanned_rows', 0), quality.get('severity', '?'), '; '.join(quality.get('checklist') or [])),
               'ohlcv_data_quality failed: %s' % quality.get('msg', '')),
        _check('3. OHLCV query performance', perf_status, perf_display,
               'pg_stat_statements not readable: %s' % perf.get('msg', '')),
    ]


# --- weekly / monthly steps (postgresql_maintenance) --------------------------

def steps(result, name, empty):
    """One check per step of a quantops.platform.postgresql_maintenance result; ``empty`` when none."""
    items = []
    for stmt in _list(_dict(result, 'result').get('steps'), 'steps'):
        reason = (' (%s)' % stmt['reason']) if stmt.get('reason') else ''
        if stmt.get('status') == 'ok':
            items.append(_check(name, 'ok', '%s in %s s%s' % (stmt['sql'], stmt.get('seconds'), reason)))
        elif stmt.get('status') == 'not_run':
            items.append(_check(name, 'unknown', message='would run (check mode): %s%s' % (stmt['sql'], reason)))
        else:
            items.append(_check(name, 'critical', '%s failed: %s' % (stmt['sql'], stmt.get('error', '?'))))
    return items or [_check(name, 'ok', empty)]


def weekly(results, drop_chunks_older_than='', drop_chunks_confirm=False, slow_statement_ms=1000, check_mode=False):
    """Weekly steps 1 (reset), 3 (chunks, drop) and 4 (slow statements) from the registered ``results``
    {pgss, reset, chunks, drop, slow}."""
    results = _dict(results, 'results')
    installed = bool(_dict(results.get('pgss'), 'pgss').get('rowcount'))
    if not installed:
        reset = _check('1. pg_stat_statements_reset()', 'unknown', message='pg_stat_statements not installed: nothing to reset')
    elif _skipped(results.get('reset')) or results.get('reset') is None:
        reset = _check('1. pg_stat_statements_reset()', 'unknown',
                       message='skipped (check mode or weekly_reset_pg_stat_statements=false)')
    else:
        reset = _check('1. pg_stat_statements_reset()', 'ok', 'done')
    items = [reset]
    for table in _list(_dict(results.get('chunks'), 'chunks').get('hypertables'), 'chunks.hypertables'):
        items.append(_check('3. Hypertable %s' % table['name'], 'ok', 'chunks %s' % table['total_chunks']))
    drop = results.get('drop')
    if drop is not None and not _skipped(drop):
        drop = _dict(drop, 'drop')
        if drop_chunks_confirm and not check_mode:
            items.append(_check('3. Drop chunks', 'ok', 'dropped %d chunk(s) older than %s'
                                % (len(drop.get('dropped') or []), drop_chunks_older_than)))
        elif drop.get('would_drop'):
            items.append(_check('3. Drop chunks', 'warning', 'would drop %d chunk(s) older than %s '
                                '(confirm with -e weekly_drop_chunks_confirm=true)'
                                % (len(drop['would_drop']), drop_chunks_older_than)))
        else:
            items.append(_check('3. Drop chunks', 'ok', 'no chunk older than %s' % drop_chunks_older_than))
    slow = results.get('slow')
    if slow is None or _skipped(slow):
        items.append(_check('4. Slow statements', 'unknown', message='pg_stat_statements not installed'))
    else:
        rows = _rows(_dict(slow, 'slow').get('query_result'), 'slow.query_result')
        items.append(_check('4. Slow statements', 'warning' if rows else 'ok',
                            '%d with mean > %s ms (read before the reset)' % (len(rows), slow_statement_ms)))
    return items


# --- monthly (seed 002 Monthly Maintenance) -----------------------------------

def _previous_size(history, host, database):
    mark = ',%s,%s,' % (host, database)
    lines = [line for line in str(history or '').splitlines() if mark in line]
    if not lines:
        return None
    fields = lines[-1].split(',')
    if len(fields) != 4:
        return None
    return fields[0], int(fields[3])


def _timestamp(text):
    return datetime.datetime.strptime(str(text)[:19], '%Y-%m-%d %H:%M:%S')


def monthly(results, host, database, compress_older_than='', failed=None):
    """Monthly steps 1 (compression), 2 (ANALYZE) and 3 (size trend) from the registered ``results``
    {chunks, compressed, analyze, sizes, history}; ``history`` is the size-history CSV's text
    (measured_at,host,database,bytes lines), read before this run's line was appended."""
    results = _dict(results, 'results')
    chunks = _dict(results.get('chunks'), 'chunks')
    items = []
    for table in _list(chunks.get('hypertables'), 'chunks.hypertables'):
        items.append(_check('1. Compression review %s' % table['name'], 'ok',
                            '%s compressed, %s uncompressed chunks (%s %% compressed)'
                            % (table.get('compressed_chunks'), table.get('uncompressed_chunks'), table.get('compression_pct'))))
    compressed = results.get('compressed')
    if compressed is not None and not _skipped(compressed):
        items.append(_check('1. Compress old chunks', 'ok', 'compressed %d chunk(s) older than %s'
                            % (len(_dict(compressed, 'compressed').get('compressed') or []), compress_older_than)))
    elif chunks and chunks.get('license') != 'timescale':
        items.append(_check('1. Compress old chunks', 'warning',
                            'skipped: timescaledb.license=%s (needs the TSL build)' % chunks.get('license', '?')))
    elif chunks:
        items.append(_check('1. Compress old chunks', 'warning',
                            'skipped: no hypertable has compression enabled (timescaledb_hypertable compression)'))
    analyze = results.get('analyze')
    if analyze is None or 'steps' not in _dict(analyze, 'analyze'):
        items.append(_check('2. ANALYZE', 'critical', 'not run'))
    else:
        items.extend(steps(analyze, '2. ANALYZE', 'nothing to analyze'))
    row = (_rows(_dict(results.get('sizes'), 'sizes').get('query_result'), 'sizes.query_result') or [{}])[0]
    size = int(row.get('database_bytes') or 0)
    if size <= 0:
        items.append(_check('3. Database size', 'critical', 'not measured'))
    else:
        previous = _previous_size(results.get('history'), host, database)
        trend = ', first measurement (no trend yet)'
        if previous:
            delta = size - previous[1]
            days = (_timestamp(row['measured_at']) - _timestamp(previous[0])).total_seconds() / 86400
            trend = ', %s%s since %s' % ('+' if delta >= 0 else '-', format_bytes(abs(delta)), previous[0])
            trend += (' = %s/day' % format_bytes(int(delta / days))) if days >= 1 else ' (less than a day: no daily rate)'
        items.append(_check('3. Database size %s' % database, 'ok', format_bytes(size) + trend))
        for table in row.get('tables') or []:
            items.append(_check('3. Size of %s' % table['table'], 'ok', '%s, indexes %s'
                                % (format_bytes(table['total_bytes']), format_bytes(table['index_bytes']))))
    if failed:
        items.append(_check('Step failed', 'critical', str(failed)))
    return items


# --- quarterly (seed 002 Quarterly Maintenance) -------------------------------

def security_audit(query_results, read_only_roles=(), allowed_superusers=('postgres',), password_warning_days=30):
    """Quarterly step 2 from the four result sets of the audit query (grants, expiring passwords,
    superusers, pg_hba_file_rules) as the checks 2a-2d."""
    sets = _list(query_results, 'query_results')
    if len(sets) != 4:
        raise AnsibleFilterError('security_audit expects 4 result sets (grants, expiring, superusers, hba), got %d' % len(sets))
    grants, expiring, supers, hba = [_rows(rows, 'result set') for rows in sets]
    read_only_roles, allowed = list(read_only_roles or []), list(allowed_superusers or [])
    ro_writes = [g for g in grants if g['grantee'] in read_only_roles and g['privilege_type'] in WRITE_PRIVILEGES]
    # The catalogs' own grants (PostgreSQL's, TimescaleDB's) are defaults, not findings.
    user_grants = [g for g in grants if not CATALOG_SCHEMA_RE.match(g['table_schema'])]
    public = [g for g in user_grants if g['grantee'] == 'PUBLIC']
    grantees = sorted(set(g['grantee'] for g in user_grants), key=[g['grantee'] for g in user_grants].index)
    display = '%d grants on the platform\'s tables to %s' % (len(user_grants), ', '.join(grantees) or 'nobody')
    if ro_writes:
        display += '; read-only role(s) can write: ' + ', '.join(
            '%s %s on %s' % (g['grantee'], g['privilege_type'], g['table_name']) for g in ro_writes[:5])
    if public:
        display += '; %d grants to PUBLIC' % len(public)
    names = [r['rolname'] for r in supers]
    extra = [n for n in names if n not in allowed]
    errors = [r for r in hba if r.get('error')]
    trust_net = [r for r in hba if r.get('auth_method') == 'trust' and r.get('type') != 'local']
    trust_local = [r for r in hba if r.get('auth_method') == 'trust' and r.get('type') == 'local']
    weak = [r for r in hba if r.get('auth_method') in ('md5', 'password')]
    open_any = [r for r in hba if r.get('address') in ('0.0.0.0', '::', 'all')]

    def lines(rules):
        return (' (lines %s)' % ', '.join(str(r['line_number']) for r in rules)) if rules else ''

    return [
        _check('2a. Table grants', 'critical' if ro_writes else ('warning' if public else 'ok'), display),
        _check('2b. Password expiry', 'warning' if expiring else 'ok',
               'force rotation (seed 002): ' + ', '.join('%s valid until %s' % (r['rolname'], r.get('valid_until') or 'never expires')
                                                         for r in expiring) if expiring else
               'every login role with a password expires in more than %s days' % password_warning_days),
        _check('2c. Superusers', 'critical' if extra else 'ok',
               ', '.join(names) + (('; not allowed: ' + ', '.join(extra)) if extra else '')),
        _check('2d. pg_hba.conf rules', 'critical' if errors or trust_net else ('warning' if trust_local or weak or open_any else 'ok'),
               '%d rules; %d with errors%s, %d trust over the network%s, %d trust on the socket, %d md5/password, '
               '%d open to any address' % (len(hba), len(errors), lines(errors), len(trust_net), lines(trust_net),
                                           len(trust_local), len(weak), len(open_any))),
    ]


def size_samples(text, today, size_bytes):
    """The size-sample file's lines (date,bytes) with today's sample added unless the day has one already."""
    _day(today, 'today')
    old = [line for line in str(text or '').splitlines() if SAMPLE_RE.match(line)]
    if str(today)[:10] not in [line.split(',')[0] for line in old]:
        old.append('%s,%d' % (str(today)[:10], int(size_bytes)))
    return old


def growth(samples, today, current_bytes, df_stdout, window_days=90, projection_days=180, warning_percent=80, critical_percent=95,
           samples_file=''):
    """Quarterly step 3: least-squares daily growth over the samples (date,bytes) of the last ``window_days``,
    projected ``projection_days`` ahead from ``current_bytes`` onto the filesystem ``df -P -B1`` reported."""
    today_date = _day(today, 'today')
    points = []
    for line in _list(samples, 'samples'):
        day, size = str(line).split(',')
        offset = (_day(day, 'sample date') - today_date).days
        if offset >= -int(window_days):
            points.append((float(offset), float(size)))
    current = int(current_bytes)
    if not points:
        raise AnsibleFilterError('growth: no size sample within %s days of %s' % (window_days, today))
    fields = str(df_stdout).strip().splitlines()[-1].split()
    if len(fields) < 6 or not fields[1].isdigit() or not fields[2].isdigit():
        raise AnsibleFilterError('growth: not a line of df -P -B1: %r' % str(df_stdout)[-200:])
    fs_size, fs_used, mount = int(fields[1]), int(fields[2]), fields[5]
    n = len(points)
    mean_x = sum(x for x, y in points) / n
    mean_y = sum(y for x, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, y in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    daily = sxy / sxx if sxx > 0 else 0.0
    span = max(x for x, y in points) - min(x for x, y in points)
    projected = int(current + daily * int(projection_days))
    pct = round(100.0 * (fs_used + projected - current) / max(fs_size, 1), 1)
    limits = dict(warning=warning_percent, critical=critical_percent, operator='>=', unit='percent')
    if n < 2 or span < 1:
        return _check('3. Disk growth projection', 'unknown', message=(
            '%d size sample(s) in %s spanning %.1f days: need two a day apart to measure growth (today\'s is recorded; '
            'database %s, filesystem %s %.1f%% used)' % (n, samples_file, span, format_bytes(current), mount,
                                                         100.0 * fs_used / max(fs_size, 1))), **limits)
    status = 'critical' if pct >= float(critical_percent) else ('warning' if pct >= float(warning_percent) else 'ok')
    display = ('database %s, growth %s/day (least squares over %d samples, %d days), in %s days %s; '
               'filesystem %s would be %s%% used (%s)') % (
        format_bytes(current), format_bytes(int(daily)), n, int(round(span)), projection_days, format_bytes(projected),
        mount, pct, format_bytes(fs_size))
    return _check('3. Disk growth projection', status, display, **limits)


# --- morning check, cluster lines (issue 18: a Patroni cluster) ----------------

LSN_RE = re.compile(r'^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$')
RUNNING_STATES = ('running', 'streaming')


def lsn_bytes(lsn):
    """A PostgreSQL LSN 'X/Y' as a byte position; None for None or ''."""
    if lsn is None or lsn == '':
        return None
    match = LSN_RE.match(str(lsn).strip())
    if not match:
        raise AnsibleFilterError('not a PostgreSQL LSN: %r' % (lsn,))
    return (int(match.group(1), 16) << 32) + int(match.group(2), 16)


def _member_sql(members):
    by_host = {}
    for index, entry in enumerate(_list(members, 'members')):
        entry = _dict(entry, 'members[%d]' % index)
        host = entry.get('host') or (entry.get('item') if isinstance(entry.get('item'), string_types) else None)
        if not host:
            raise AnsibleFilterError('members[%d] has no host' % index)
        if 'query_result' in entry:
            rows = _rows(entry.get('query_result'), 'members[%d].query_result' % index)
        else:
            rows = [entry] if 'in_recovery' in entry else []
        by_host[host] = dict(rows[0]) if rows and not entry.get('failed') else {'failed': True, 'msg': entry.get('msg', '')}
    return by_host


def cluster_state(cluster, members=None, inventory=None):
    """One picture of a Patroni cluster from GET /cluster and each member's own answer.

    ``cluster``: the JSON of Patroni's ``GET /cluster``.  ``members``: per member {host, in_recovery, lsn,
    replay_age_seconds} - each member's SQL answer (or postgresql_query results with ``host``/``item``).
    ``inventory``: the member names the inventory expects.  Returns {scope, paused, leaders, primaries,
    leader, timeline, members: [{name, role, state, timeline, in_recovery, lag_bytes, lag_seconds, ...}]}.
    Lag in bytes: the leader's current WAL position minus the member's replay position (measured on the
    members; Patroni's own ``lag`` when the SQL answer is missing); in seconds: the age of the last
    transaction the member replayed while it is behind, 0 when it has replayed everything - the same
    definitions as the HA alerts' recording rules.
    """
    cluster = _dict(cluster, 'cluster')
    listed = _list(cluster.get('members'), 'cluster.members')
    sql = _member_sql(members)
    names = [m.get('name') for m in listed]
    expected = [str(n) for n in _list(inventory, 'inventory')]
    leaders = [m.get('name') for m in listed if m.get('role') in ('leader', 'standby_leader')]
    primaries = sorted(h for h, row in sql.items() if not row.get('failed') and row.get('in_recovery') is False)
    leader = leaders[0] if len(leaders) == 1 else None
    leader_lsn = lsn_bytes((sql.get(leader) or {}).get('lsn')) if leader else None
    leader_tl = None
    for m in listed:
        if m.get('name') == leader:
            leader_tl = m.get('timeline')
    out = []
    for m in listed:
        name = m.get('name')
        row = sql.get(name) or {}
        entry = {'name': name, 'role': m.get('role', '?'), 'state': m.get('state', '?'),
                 'timeline': m.get('timeline'), 'host': m.get('host'),
                 'in_recovery': row.get('in_recovery'), 'sql_failed': bool(row.get('failed')),
                 'lag_bytes': None, 'lag_seconds': None}
        if name != leader and m.get('role') not in ('leader', 'standby_leader'):
            replay = lsn_bytes(row.get('lsn')) if not row.get('failed') else None
            if leader_lsn is not None and replay is not None:
                entry['lag_bytes'] = max(0, leader_lsn - replay)
            elif isinstance(m.get('lag'), int):
                entry['lag_bytes'] = m.get('lag')
            if entry['lag_bytes'] is not None:
                age = row.get('replay_age_seconds')
                if entry['lag_bytes'] == 0:
                    entry['lag_seconds'] = 0.0
                elif age is not None:
                    entry['lag_seconds'] = round(float(age), 1)
                # behind, but no transaction replayed since it started (a fresh clone): seconds unknown
        out.append(entry)
    for name in expected:
        if name not in names:
            out.append({'name': name, 'role': 'absent', 'state': 'not in the DCS', 'timeline': None, 'host': None,
                        'in_recovery': (sql.get(name) or {}).get('in_recovery'),
                        'sql_failed': bool((sql.get(name) or {}).get('failed')), 'lag_bytes': None, 'lag_seconds': None})
    return {'scope': cluster.get('scope', '?'), 'paused': bool(cluster.get('pause')), 'leaders': leaders,
            'primaries': primaries, 'leader': leader, 'timeline': leader_tl, 'members': out}


def _lag_text(entry):
    if entry.get('lag_bytes') is None:
        return 'lag unknown'
    seconds = entry.get('lag_seconds')
    return 'lag %s / %s s' % (format_bytes(entry['lag_bytes']), '?' if seconds is None else '%.1f' % seconds)


def cluster(cluster_json, members=None, inventory=None, lag_bytes_warning=16777216, lag_seconds_warning=30):
    """Morning check cluster lines: leader and timeline, each member (role, state, lag), the cluster-wide verdicts.

    Thresholds as the HA alerts': PatroniReplicationLagBytes (16 MiB) and PatroniReplicationLagSeconds (30 s)
    warn; no leader, more than one leader or primary, and a member not running are critical.
    """
    state = cluster_state(cluster_json, members, inventory)
    scope = state['scope']
    checks = []
    if len(state['leaders']) > 1 or len(state['primaries']) > 1:
        checks.append(_check('Cluster %s leader' % scope, 'critical',
                             'more than one leader: DCS %s, primaries (pg_is_in_recovery false) %s' % (
                                 ', '.join(state['leaders']) or 'none', ', '.join(state['primaries']) or 'none'),
                             'split brain suspected: run playbooks/incidents/split_brain.yml', critical=1,
                             operator='>', unit='leaders'))
    elif not state['leaders']:
        checks.append(_check('Cluster %s leader' % scope, 'critical', 'no leader in the DCS',
                             'no member leads: run playbooks/ha/failover.yml', critical=0, operator='==',
                             unit='leaders'))
    else:
        checks.append(_check('Cluster %s leader' % scope, 'ok', '%s, timeline %s' % (state['leader'], state['timeline'])))
    for entry in state['members']:
        name = 'Member %s' % entry['name']
        head = '%s, %s' % (entry['role'], entry['state'])
        if entry['name'] == state['leader'] or entry['role'] in ('leader', 'standby_leader'):
            ok = entry['state'] == 'running'
            checks.append(_check(name, 'ok' if ok else 'critical', '%s, timeline %s' % (head, entry['timeline']),
                                 '' if ok else 'the leader is not running: see PatroniPostgresNotRunning'))
            continue
        display = '%s, timeline %s, %s' % (head, entry['timeline'], _lag_text(entry))
        if entry['state'] not in RUNNING_STATES:
            checks.append(_check(name, 'critical', display,
                                 'member not running: playbooks/ha/reinit.yml rebuilds it from the leader'))
        elif entry['state'] != 'streaming':
            checks.append(_check(name, 'warning', display,
                                 'replica not streaming: run playbooks/incidents/replication_lag.yml'))
        elif (entry['lag_bytes'] or 0) > int(lag_bytes_warning) or (entry['lag_seconds'] or 0) > float(lag_seconds_warning):
            checks.append(_check(name, 'warning', display,
                                 'lag over %s / %s s: run playbooks/incidents/replication_lag.yml' % (
                                     format_bytes(int(lag_bytes_warning)), lag_seconds_warning),
                                 warning=lag_bytes_warning, operator='>', unit='bytes'))
        elif state['timeline'] is not None and entry['timeline'] is not None and entry['timeline'] != state['timeline']:
            checks.append(_check(name, 'warning', display,
                                 'on another timeline than the leader: it has not followed the last failover'))
        else:
            checks.append(_check(name, 'ok', display))
    if state['paused']:
        checks.append(_check('Cluster %s maintenance mode' % scope, 'warning', 'paused: Patroni does not fail over',
                             'patronictl resume %s when the maintenance is over' % scope))
    return checks


class FilterModule(object):
    """quantops.platform maintenance runbook filters."""

    def filters(self):
        return {
            'maintenance_backup_age': backup_age,
            'maintenance_server_log': server_log,
            'maintenance_prometheus': prometheus,
            'maintenance_evening': evening,
            'maintenance_steps': steps,
            'maintenance_weekly': weekly,
            'maintenance_monthly': monthly,
            'maintenance_security_audit': security_audit,
            'maintenance_size_samples': size_samples,
            'maintenance_growth': growth,
            'maintenance_cluster': cluster,
            'maintenance_cluster_state': cluster_state,
        }
