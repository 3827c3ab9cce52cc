#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: postgresql_incident_snapshot
short_description: Collect the diagnostics of a PostgreSQL incident into one tar.gz archive on the target
version_added: 0.1.0
description:
  - Collects the diagnostics of an investigation - C(pg_stat_activity), the top statements of C(pg_stat_statements)
    by total time and by mean time, the lock-wait tree (C(pg_blocking_pids)), the settings not
    at their default, the size of every database and the last lines of the server log - and writes each as a
    JSON file into one C(.tar.gz) archive at O(path) on the target. Fetch it to the controller with
    M(ansible.builtin.fetch).
  - "Read-only on the database: the session is C(SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY) and only
    reads statistics views and catalogs. A section that cannot be read (extension missing, privilege missing,
    log file unreadable) is recorded in RV(errors) and in C(meta.json) with what to do; the module then still
    writes the archive."
  - "Archive layout (member names): C(<name>/meta.json) (time, server, database, errors, options),
    C(<name>/activity.json), C(<name>/blocking_tree.json), C(<name>/statements_by_total_time.json),
    C(<name>/statements_by_mean_time.json), C(<name>/settings.json), C(<name>/database_sizes.json),
    C(<name>/server_log.json) - where C(<name>) is the archive's file name without C(.tar.gz)."
options:
  path:
    description:
      - Absolute path of the archive to write on the target, ending in C(.tar.gz). Its directory must exist.
      - The archive is written to a temporary file in the same directory and renamed into place, mode C(0600)
        (query texts and settings can hold sensitive values).
    type: path
    required: true
  force:
    description:
      - Replace an existing file at O(path). By default an existing file is never overwritten and the module fails.
    type: bool
    default: false
  top_statements:
    description:
      - Number of statements kept in each of the two C(pg_stat_statements) rankings.
    type: int
    default: 50
  query_length:
    description:
      - Characters of each query text kept (sessions and statements); longer texts are cut with an ellipsis.
        C(0) keeps no text.
    type: int
    default: 2000
  log_file:
    description:
      - Server log file to read the last lines of.
      - Default - the file C(pg_current_logfile) names (when C(logging_collector) is on; relative names are taken
        from C(data_directory)), else Debian's C(/var/log/postgresql/postgresql-<major>-main.log).
      - Read by the module on the target with a plain file read, as the user the task runs as (C(postgres) can read
        Debian's log files).
    type: path
  log_lines:
    description:
      - Number of last lines of the log kept. At most the last 4 MiB of the file are read. C(0) skips the log.
    type: int
    default: 500
attributes:
  check_mode:
    details: Everything is collected and summarized in RV(summary) and RV(errors), but no archive is written;
      C(changed) is true since a real run would write one.
extends_documentation_fragment:
  - quantops.platform.postgres
  - quantops.platform.attributes
notes:
  - "Source: seed 002 I(Incident Response Workflow, 3. Investigation), which gathers C(pg_stat_activity) and the
    top 50 statements by total time by hand (C(ORDER BY total_exec_time DESC LIMIT 50))."
  - "Privileges: a superuser or a member of C(pg_monitor) sees every session's query and state, every statement of
    C(pg_stat_statements) and C(pg_current_logfile); others see their own only."
  - "C(pg_stat_statements) must be in C(shared_preload_libraries) and created in O(login_db); when it is not, both
    rankings are empty and RV(errors) says so. The statement texts are kept: treat the archive as confidential."
  - The database is only read; the archive is the only thing written, so C(changed) is true whenever it is.
  - Without O(statement_timeout) each query may run 30 seconds (C(30s)).
seealso:
  - module: quantops.platform.postgresql_sessions
  - module: ansible.builtin.fetch
  - name: pg_stat_statements
    description: The extension whose statements are ranked.
    link: https://www.postgresql.org/docs/current/pgstatstatements.html
author:
  - quantops.platform maintainers (@quantops)
'''

EXAMPLES = r'''
- name: Snapshot the database state during an incident
  quantops.platform.postgresql_incident_snapshot:
    path: "/var/tmp/incident-{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}.tar.gz"
  become: true
  become_user: postgres
  register: snapshot

- name: Bring it to the controller
  ansible.builtin.fetch:
    src: "{{ snapshot.path }}"
    dest: "{{ incident_reports_dir }}/"
    flat: true
  become: true

- name: Only the top 10 statements, no log
  quantops.platform.postgresql_incident_snapshot:
    path: /var/tmp/slow-queries.tar.gz
    force: true
    top_statements: 10
    log_lines: 0
  become: true
  become_user: postgres
'''

RETURN = r'''
path:
  description: Path of the archive on the target (also in check mode, where it is not written).
  returned: always
  type: str
  sample: /var/tmp/incident-20261123T123000Z.tar.gz
written:
  description: Whether the archive was written.
  returned: always
  type: bool
  sample: true
size_bytes:
  description: Size of the archive in bytes; null when not written.
  returned: always
  type: int
  sample: 48213
files:
  description: Member names of the archive.
  returned: always
  type: list
  elements: str
  sample: ["incident-20261123T123000Z/meta.json", "incident-20261123T123000Z/activity.json"]
errors:
  description: Section name to what could not be collected and what to do; empty when everything was.
  returned: always
  type: dict
  sample: {"statements": "pg_stat_statements is not installed in quant_platform: CREATE EXTENSION pg_stat_statements"}
summary:
  description: A short digest of the snapshot for the play's output.
  returned: always
  type: dict
  contains:
    collected_at:
      description: Time of the snapshot, ISO 8601 UTC (server clock).
      type: str
      sample: "2026-11-23T12:30:00.123456+00:00"
    server_version:
      description: Server version string.
      type: str
      sample: "17.11 (Debian 17.11-1)"
    sessions:
      description: Rows of pg_stat_activity (all backends).
      type: int
      sample: 12
    client_sessions_by_state:
      description: Client backends by state.
      type: dict
      sample: {"active": 1, "idle": 3, "idle in transaction": 1}
    blocked_sessions:
      description: Sessions waiting for a lock another session holds.
      type: int
      sample: 1
    statements_available:
      description: Whether pg_stat_statements could be read.
      type: bool
      sample: true
    top_statements:
      description: The first 5 statements by total time - queryid, calls, total_exec_time_ms, mean_exec_time_ms, query (80 characters).
      type: list
      elements: dict
    non_default_settings:
      description: Settings whose source is not C(default) or C(override).
      type: int
      sample: 31
    databases:
      description: Database name to size in bytes.
      type: dict
      sample: {"quant_platform": 71303168}
    log_file:
      description: Log file read; null when none was.
      type: str
      sample: /var/log/postgresql/postgresql-17-main.log
    log_lines:
      description: Lines of the log kept.
      type: int
      sample: 500
'''

import io
import json
import os
import tarfile
import tempfile
import time

from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.quantops.platform.plugins.module_utils.postgres import (
    Query, convert_value, fetch_all_dicts, fetch_one_dict, pg_session, postgres_common_argument_spec, psycopg,
    start_module
)
from ansible_collections.quantops.platform.plugins.module_utils import sessions as sess

LOG_READ_LIMIT = 4 * 1024 * 1024
STATEMENT_TIMEOUT = '30s'

SETTINGS_SQL = ("SELECT name, setting, unit, source, sourcefile, sourceline, pending_restart "
                "FROM pg_catalog.pg_settings WHERE source NOT IN ('default', 'override') ORDER BY name")
SIZES_SQL = ("SELECT datname AS database, pg_catalog.pg_database_size(oid) AS size_bytes "
             "FROM pg_catalog.pg_database WHERE datallowconn ORDER BY 2 DESC")
EXTENSION_SQL = ("SELECT n.nspname AS schema FROM pg_catalog.pg_extension e "
                 "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'")
STATEMENTS_TEMPLATE = (
    'SELECT s.queryid, d.datname AS database, r.rolname AS role, s.calls, '
    'round(s.total_exec_time::numeric, 3) AS total_exec_time_ms, round(s.mean_exec_time::numeric, 3) AS mean_exec_time_ms, '
    'round(s.stddev_exec_time::numeric, 3) AS stddev_exec_time_ms, round(s.max_exec_time::numeric, 3) AS max_exec_time_ms, '
    's.rows, s.shared_blks_hit, s.shared_blks_read, '
    'round((100.0 * s.shared_blks_hit / nullif(s.shared_blks_hit + s.shared_blks_read, 0))::numeric, 2) AS hit_percent, '
    's.query FROM {view} AS s '
    'LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid '
    'ORDER BY s.{order} DESC LIMIT {top}'
)


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        path=dict(type='path', required=True),
        force=dict(type='bool', default=False),
        top_statements=dict(type='int', default=50),
        query_length=dict(type='int', default=2000),
        log_file=dict(type='path'),
        log_lines=dict(type='int', default=500),
    )
    return spec


def validate_options(params):
    path = params.get('path') or ''
    if not os.path.isabs(path) or not path.endswith('.tar.gz') or os.path.basename(path) == '.tar.gz':
        raise ValueError('path must be an absolute file name ending in .tar.gz, got %r' % path)
    if not os.path.isdir(os.path.dirname(path)):
        raise ValueError('the directory of path %s does not exist on the target: create it first' % path)
    if os.path.exists(path) and not params.get('force'):
        raise ValueError('%s exists; the module never overwrites an archive unless force=true: choose another path '
                         '(for example with a timestamp) or set force' % path)
    for option in ('top_statements', 'query_length', 'log_lines'):
        if params.get(option) is None or params[option] < 0:
            raise ValueError('%s must be 0 or more, got %s' % (option, params.get(option)))
    return os.path.basename(path)[:-len('.tar.gz')]


def tail_lines(path, count, limit=LOG_READ_LIMIT):
    """The last ``count`` lines of a text file, reading at most ``limit`` bytes from its end."""
    if count <= 0:
        return []
    with open(path, 'rb') as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        start = max(size - limit, 0)
        handle.seek(start)
        data = handle.read()
    lines = data.decode('utf-8', errors='replace').splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line is probably cut
    return lines[-count:]


def default_log_file(current_logfile, data_directory, version_num):
    """Which log file to read: pg_current_logfile() (relative to data_directory) or Debian's default."""
    if current_logfile:
        if os.path.isabs(current_logfile) or not data_directory:
            return current_logfile
        return os.path.join(data_directory, current_logfile)
    major = int(version_num) // 10000 if version_num else 17
    return '/var/log/postgresql/postgresql-%d-main.log' % major


def build_archive(path, name, sections, mode=0o600):
    """Write ``sections`` (file stem -> JSON-serialisable data) as ``name/<stem>.json`` into a tar.gz at ``path``.

    Written to a temporary file in the same directory, then renamed into place.
    Returns the member names.
    """
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % name, suffix='.tmp', dir=directory)
    members = []
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as raw:
            with tarfile.open(fileobj=raw, mode='w:gz') as tar:
                now = time.time()
                for stem, data in sections:
                    payload = to_bytes(json.dumps(data, indent=2, sort_keys=True, default=convert_value))
                    info = tarfile.TarInfo('%s/%s.json' % (name, stem))
                    info.size = len(payload)
                    info.mtime = now
                    info.mode = 0o600
                    tar.addfile(info, io.BytesIO(payload))
                    members.append(info.name)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return members


class Snapshot(object):
    def __init__(self, conn, db_error, params):
        self.conn = conn
        self.cur = conn.cursor()
        self.db_error = db_error
        self.params = params
        self.errors = {}

    def guarded(self, section, func, default):
        try:
            return func()
        except self.db_error as e:
            self.errors[section] = 'Query failed: %s' % to_native(e).strip().splitlines()[0]
            return default

    def statements(self, database):
        ext = fetch_one_dict(self.cur, EXTENSION_SQL)
        if ext is None:
            self.errors['statements'] = ('pg_stat_statements is not installed in %s: add it to '
                                         'shared_preload_libraries (restart) and CREATE EXTENSION pg_stat_statements'
                                         % database)
            return [], []
        view = (ext['schema'], 'pg_stat_statements')
        ranked = []
        for order in ('total_exec_time', 'mean_exec_time'):
            rows = fetch_all_dicts(self.cur, Query(STATEMENTS_TEMPLATE, {'view': view, 'order': order},
                                                   {'top': self.params['top_statements']}))
            for row in rows:
                row['query'] = sess.truncate(row.get('query'), self.params['query_length'])
            ranked.append(rows)
        return ranked[0], ranked[1]


def run_module():
    module, name = start_module(argument_spec(), validate_options)
    params = module.params

    with pg_session(module, STATEMENT_TIMEOUT) as conn:
        snap = Snapshot(conn, psycopg.Error, params)
        cur = snap.cur
        try:
            cur.execute('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY')
            server = fetch_one_dict(cur, "SELECT now() AS collected_at, current_database() AS database, "
                                         "current_setting('server_version') AS server_version, "
                                         "current_setting('server_version_num')::int AS version_num")
        except psycopg.Error as e:
            module.fail_json(msg='Could not read server information from %s: %s' % (params['login_db'], to_native(e)))
        raw_activity = snap.guarded('activity', lambda: fetch_all_dicts(cur, sess.ACTIVITY_QUERY, convert=False), [])
        for row in raw_activity:
            for key in ('connection_seconds', 'transaction_seconds', 'query_seconds', 'state_seconds'):
                if row.get(key) is not None:
                    row[key] = round(float(row[key]), 3)
        activity = []
        for row in raw_activity:
            entry = dict((k, convert_value(v)) for k, v in row.items())
            entry['query'] = sess.truncate(entry.get('query'), params['query_length'])
            activity.append(entry)
        tree = sess.blocking_tree(raw_activity, params['query_length'])
        by_total, by_mean = snap.guarded('statements', lambda: snap.statements(server['database']), ([], []))
        settings = snap.guarded('settings', lambda: fetch_all_dicts(cur, SETTINGS_SQL), [])
        sizes = snap.guarded('database_sizes', lambda: fetch_all_dicts(cur, SIZES_SQL), [])

        log_file, log = params['log_file'], []
        if params['log_lines'] > 0:
            if not log_file:
                current = snap.guarded('server_log', lambda: fetch_one_dict(
                    cur, "SELECT pg_catalog.pg_current_logfile() AS file, "
                         "current_setting('data_directory', true) AS data_directory"), None)
                snap.errors.pop('server_log', None)  # no privilege for pg_current_logfile: use Debian's default
                log_file = default_log_file((current or {}).get('file'), (current or {}).get('data_directory'),
                                            server['version_num'])
            try:
                log = tail_lines(log_file, params['log_lines'])
            except (IOError, OSError) as e:
                snap.errors['server_log'] = ('Could not read %s: %s (run the task as a user who can read it, e.g. '
                                             'become_user postgres, or set log_file)' % (log_file, to_native(e)))
                log_file = None

    summary = {
        'collected_at': convert_value(server['collected_at']),
        'server_version': server['server_version'],
        'sessions': len(activity),
        'client_sessions_by_state': sess.summarize(raw_activity)['by_state'],
        'blocked_sessions': len([r for r in raw_activity if r.get('blocked_by')]),
        'statements_available': 'statements' not in snap.errors,
        'top_statements': [dict(queryid=s.get('queryid'), calls=s.get('calls'),
                                total_exec_time_ms=s.get('total_exec_time_ms'),
                                mean_exec_time_ms=s.get('mean_exec_time_ms'),
                                query=sess.truncate(s.get('query'), min(80, params['query_length'])))
                           for s in by_total[:5]],
        'non_default_settings': len(settings),
        'databases': dict((s['database'], s['size_bytes']) for s in sizes),
        'log_file': log_file,
        'log_lines': len(log),
    }
    meta = {
        'collected_at': summary['collected_at'],
        'database': server['database'],
        'server_version': server['server_version'],
        'errors': snap.errors,
        'options': dict((k, params[k]) for k in ('top_statements', 'query_length', 'log_lines', 'log_file')),
        'generator': 'quantops.platform.postgresql_incident_snapshot',
    }
    sections = [
        ('meta', meta),
        ('activity', activity),
        ('blocking_tree', tree),
        ('statements_by_total_time', by_total),
        ('statements_by_mean_time', by_mean),
        ('settings', settings),
        ('database_sizes', sizes),
        ('server_log', {'file': log_file, 'lines': log}),
    ]
    result = dict(changed=True, path=params['path'], written=False, size_bytes=None, errors=snap.errors,
                  summary=summary, files=['%s/%s.json' % (name, stem) for stem, dummy in sections])
    if module.check_mode:
        module.exit_json(**result)
    try:
        result['files'] = build_archive(params['path'], name, sections)
    except (IOError, OSError) as e:
        module.fail_json(msg='Could not write %s: %s' % (params['path'], to_native(e)), **result)
    result['written'] = True
    result['size_bytes'] = os.path.getsize(params['path'])
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
