#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: postgresql_sessions
short_description: List, cancel or terminate PostgreSQL sessions chosen by rule
version_added: 0.1.0
description:
  - Reads C(pg_stat_activity) once and selects the client sessions that break one of the rules switched on
    (O(idle_longer_than), O(idle_in_transaction_longer_than), O(active_longer_than), O(blocking_longer_than)),
    then lists them (O(mode=list)), cancels their running statement (O(mode=cancel), C(pg_cancel_backend)) or
    terminates them (O(mode=terminate), C(pg_terminate_backend)).
  - Lock waits are read with C(pg_blocking_pids) (the blocked/blocking pairs of C(pg_locks)).
  - Never a candidate, whatever the rules say, in this order - the module's own backend
    (C(pg_backend_pid)); every backend whose C(backend_type) is not C(client backend) (walsenders of
    replication, autovacuum, logical replication and parallel workers, the TimescaleDB scheduler and other
    background workers); sessions of other databases than O(databases); sessions of O(exclude_users) and
    O(exclude_applications).
  - At most O(max_terminations) sessions are cancelled or terminated per run, the longest-standing first
    (oldest transaction, then longest in its state); the others are returned with C(action=over_cap).
  - A session is only signalled if it is still the one that was judged - same pid, same C(backend_start)
    and same C(state_change) - checked in the statement that signals it, so a pid reused by a new
    connection, or a session that moved on to another statement meanwhile, is left alone (C(action=gone)).
  - Also returns the counts of client sessions by database, user, application and state, the connection limits,
    and the lock-wait tree.
options:
  mode:
    description:
      - C(list) selects and returns the sessions and changes nothing.
      - C(cancel) runs C(pg_cancel_backend) with its pid on each selected session, which stops the running statement
        but keeps the connection; it has no effect on an idle session, so it cannot be combined with
        O(idle_longer_than) or O(idle_in_transaction_longer_than).
      - C(terminate) runs C(pg_terminate_backend) with its pid and O(terminate_timeout) on each selected session, ending the connection
        and rolling back its open transaction.
      - C(cancel) and C(terminate) need at least one of O(idle_longer_than), O(idle_in_transaction_longer_than),
        O(active_longer_than) and O(blocking_longer_than).
    type: str
    choices: [ list, cancel, terminate ]
    default: list
  idle_longer_than:
    description:
      - Select sessions with C(state = 'idle') for more than this many seconds (since C(state_change)).
      - Not set means the rule is off.
    type: int
  idle_in_transaction_longer_than:
    description:
      - Select sessions in state C(idle in transaction) or C(idle in transaction [aborted]) for more than this many
        seconds (since C(state_change)). Such a session holds its locks and its snapshot, which keeps
        VACUUM from removing dead tuples.
      - Not set means the rule is off.
    type: int
  active_longer_than:
    description:
      - Select sessions with C(state = 'active') whose statement started more than this many seconds ago
        (C(query_start)). Not set means the rule is off.
    type: int
  blocking_longer_than:
    description:
      - Select sessions that block others (their pid is in C(pg_blocking_pids) of another session) and are not
        waiting themselves (root blockers, since ending the root releases the chain), when a session they block has
        waited for more than this many seconds (measured from the waiting session's C(state_change)).
      - C(0) selects every root blocker. Not set means the rule is off.
    type: int
  databases:
    description:
      - Only sessions connected to these databases are selected (and counted in RV(summary)).
      - Default is the database connected to, O(login_db).
    type: list
    elements: str
  all_databases:
    description:
      - Select and count sessions of every database of the server. Mutually exclusive with O(databases).
    type: bool
    default: false
  exclude_users:
    description:
      - Sessions of these roles (C(usename)) are never selected. Compared as exact strings, never part of SQL.
    type: list
    elements: str
    default: []
  exclude_applications:
    description:
      - Sessions with these C(application_name) values are never selected. Compared as exact strings.
    type: list
    elements: str
    default: []
  max_terminations:
    description:
      - Largest number of sessions cancelled or terminated in one run (the longest-standing first). Safety cap
        against a rule that matches far more than expected; O(mode=list) returns all matches regardless.
      - Must be at least 1.
    type: int
    default: 10
  terminate_timeout:
    description:
      - Seconds C(pg_terminate_backend) waits for a terminated backend to exit (PostgreSQL 14+; ignored before).
        A backend still there after it is returned with C(action=failed). C(0) does not wait.
    type: int
    default: 5
  query_length:
    description:
      - Characters of each session's query text returned; longer texts are cut and end with an ellipsis.
        C(0) returns an empty text (query texts can hold literals such as passwords).
    type: int
    default: 200
attributes:
  check_mode:
    details: The sessions are selected as in a real run and returned with C(action=would_cancel) or
      C(action=would_terminate) and the SQL that would run in RV(queries); nothing is signalled.
extends_documentation_fragment:
  - quantops.platform.postgres
  - quantops.platform.attributes
notes:
  - "Privileges: to see other roles' query texts and states connect as a superuser or a member of C(pg_monitor)
    (C(pg_read_all_stats)); to signal other roles' backends a superuser or a member of C(pg_signal_backend) (which
    cannot signal superuser backends)."
  - C(changed) is true when at least one session was cancelled or terminated (or would be, in check mode).
  - Durations are computed by the server against one C(statement_timestamp), so they are consistent with each other.
  - Without O(statement_timeout) each statement of the module may run 30 seconds (C(30s)).
  - "Source: seed 002 I(Troubleshooting, Issue 3: Connection Pool Exhaustion) counts the sessions per database,
    user, application and state and closes those idle for more than 10 minutes (O(idle_longer_than=600)); seed 003
    I(Runbook 3: Database Performance Issues) kills queries active for more than 5 minutes
    (O(active_longer_than=300)) and lists the blocked/blocking pairs."
seealso:
  - name: Server signaling functions
    description: pg_cancel_backend, pg_terminate_backend.
    link: https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL
  - name: pg_stat_activity
    description: Columns state, state_change, query_start, backend_type.
    link: https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW
  - module: quantops.platform.postgresql_incident_snapshot
author:
  - quantops.platform maintainers (@quantops)
'''

EXAMPLES = r'''
- name: Seed 002 Issue 3 diagnosis - who holds the connections (changes nothing)
  quantops.platform.postgresql_sessions:
    idle_in_transaction_longer_than: 300
    idle_longer_than: 600
  become: true
  become_user: postgres
  register: pg_sessions

- name: Show the counts by state
  ansible.builtin.debug:
    var: pg_sessions.summary.by_state

- name: Terminate sessions idle in a transaction for more than 5 minutes, never the exporter
  quantops.platform.postgresql_sessions:
    mode: terminate
    idle_in_transaction_longer_than: 300
    exclude_users: [postgres_exporter]
    max_terminations: 20
  become: true
  become_user: postgres

- name: Seed 003 Runbook 3 - cancel statements running for more than 5 minutes
  quantops.platform.postgresql_sessions:
    mode: cancel
    active_longer_than: 300
    exclude_applications: [pg_dump, pgbackrest]
  become: true
  become_user: postgres

- name: End the root blockers a session has waited on for more than a minute
  quantops.platform.postgresql_sessions:
    mode: terminate
    blocking_longer_than: 60
    max_terminations: 1
  become: true
  become_user: postgres
'''

RETURN = r'''
mode:
  description: The O(mode) applied.
  returned: always
  type: str
  sample: terminate
rules:
  description: The rules switched on, rule name to threshold in seconds.
  returned: always
  type: dict
  sample: {"idle_in_transaction": 300.0}
sessions:
  description: The selected sessions, longest-standing first (oldest transaction, then longest in its state).
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Backend process id.
      type: int
      sample: 4211
    database:
      description: Database of the session.
      type: str
      sample: quant_platform
    user:
      description: Role of the session (C(usename)).
      type: str
      sample: quant_app
    application:
      description: C(application_name) of the session.
      type: str
      sample: psql
    client_addr:
      description: Client address; null for unix-socket connections.
      type: str
      sample: 10.89.0.4
    backend_type:
      description: Always C(client backend).
      type: str
      sample: client backend
    state:
      description: C(active), C(idle), C(idle in transaction), ...
      type: str
      sample: idle in transaction
    wait_event_type:
      description: What the backend waits for (C(Lock), C(Client), ...); null when not waiting.
      type: str
      sample: Client
    wait_event:
      description: Wait event name.
      type: str
      sample: ClientRead
    connection_seconds:
      description: Seconds since the connection was opened (C(backend_start)).
      type: float
      sample: 912.4
    transaction_seconds:
      description: Seconds since the current transaction started (C(xact_start)); null outside a transaction.
      type: float
      sample: 905.1
    query_seconds:
      description: Seconds since the current or last statement started (C(query_start)).
      type: float
      sample: 905.0
    state_seconds:
      description: Seconds in the current state (since C(state_change)).
      type: float
      sample: 904.9
    blocked_by:
      description: Pids this session waits for (C(pg_blocking_pids)).
      type: list
      elements: int
      sample: []
    query:
      description: Current or last statement, cut to O(query_length) characters.
      type: str
      sample: "SELECT 1;"
    reasons:
      description: The rules the session breaks, in words.
      type: list
      elements: str
      sample: ["idle in transaction for 905 s (> 300 s)"]
    action:
      description: >-
        C(listed) (O(mode=list)), C(would_cancel) / C(would_terminate) (check mode), C(cancelled) /
        C(terminated), C(gone) (ended or changed before it was signalled), C(failed) (the server refused or the
        backend was still there after O(terminate_timeout)), C(over_cap) (beyond O(max_terminations)).
      type: str
      sample: terminated
terminated:
  description: Pids terminated in this run.
  returned: always
  type: list
  elements: int
  sample: [4211]
cancelled:
  description: Pids whose statement was cancelled in this run.
  returned: always
  type: list
  elements: int
  sample: []
over_cap:
  description: Number of selected sessions left alone because of O(max_terminations).
  returned: always
  type: int
  sample: 0
queries:
  description:
    - The signalling SQL run (or, in check mode, that would run), one per session, exactly as sent.
    - A session is signalled only if it is still the one judged (same pid, start and last state change).
  returned: always
  type: list
  elements: str
  sample: ["SELECT pg_catalog.pg_terminate_backend(a.pid, 5000) AS done FROM pg_catalog.pg_stat_activity a WHERE
           a.pid = 4211 AND a.backend_start = '2026-12-07 09:00:01.5+00:00'::timestamptz AND a.state_change IS NOT
           DISTINCT FROM '2026-12-07 09:10:00+00:00'::timestamptz"]
summary:
  description: Client sessions of the selected databases counted as seed 002 Issue 3 does, before any action.
  returned: always
  type: dict
  contains:
    total:
      description: Client sessions of the selected databases, this module's included.
      type: int
      sample: 7
    by_state:
      description: State to count.
      type: dict
      sample: {"active": 1, "idle": 4, "idle in transaction": 2}
    by_group:
      description: Counts by database, user, application and state, largest first.
      type: list
      elements: dict
      sample: [{"database": "quant_platform", "user": "quant_app", "application": "psql", "state": "idle", "count": 4}]
connections:
  description: Server-wide connection counts and limits.
  returned: always
  type: dict
  contains:
    server_total:
      description: Client backends of the whole server.
      type: int
      sample: 9
    max_connections:
      description: Setting C(max_connections).
      type: int
      sample: 100
    reserved:
      description: C(superuser_reserved_connections) plus C(reserved_connections) (PostgreSQL 16+).
      type: int
      sample: 3
    utilization_pct:
      description: server_total as a percentage of max_connections minus reserved.
      type: float
      sample: 9.3
blocking_tree:
  description: >-
    Lock waits as a forest - each root blocks without waiting; nodes have pid, user, application, state,
    wait_event_type, state_seconds, query and C(blocks) (child nodes).
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 4211, "user": "quant_app", "state": "idle in transaction", "blocks": [{"pid": 4230, "blocks": []}]}]
'''

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.quantops.platform.plugins.module_utils.postgres import (
    Query, fetch_all_dicts, fetch_one_dict, pg_session, postgres_common_argument_spec, psycopg, start_module
)
from ansible_collections.quantops.platform.plugins.module_utils import sessions as sess

RULE_OPTIONS = ('idle_longer_than', 'idle_in_transaction_longer_than', 'active_longer_than', 'blocking_longer_than')

# The session is signalled only if it is still the one judged (same pid, start and last state change).
_SAME_SESSION = ('FROM pg_catalog.pg_stat_activity a '
                 'WHERE a.pid = {pid} AND a.backend_start = {start} AND a.state_change IS NOT DISTINCT FROM {change}')
CANCEL_SQL = 'SELECT pg_catalog.pg_cancel_backend(a.pid) AS done ' + _SAME_SESSION
TERMINATE_SQL = 'SELECT pg_catalog.pg_terminate_backend(a.pid, {timeout}) AS done ' + _SAME_SESSION
TERMINATE_SQL_PRE14 = 'SELECT pg_catalog.pg_terminate_backend(a.pid) AS done ' + _SAME_SESSION

STATEMENT_TIMEOUT = '30s'

LIMITS_SQL = ("SELECT current_setting('max_connections')::int AS max_connections, "
              "current_setting('superuser_reserved_connections')::int AS superuser_reserved, "
              "coalesce(current_setting('reserved_connections', true), '0')::int AS reserved, "
              "current_setting('server_version_num')::int AS version_num, current_database() AS database")


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        mode=dict(type='str', default='list', choices=['list', 'cancel', 'terminate']),
        idle_longer_than=dict(type='int'),
        idle_in_transaction_longer_than=dict(type='int'),
        active_longer_than=dict(type='int'),
        blocking_longer_than=dict(type='int'),
        databases=dict(type='list', elements='str'),
        all_databases=dict(type='bool', default=False),
        exclude_users=dict(type='list', elements='str', default=[]),
        exclude_applications=dict(type='list', elements='str', default=[]),
        max_terminations=dict(type='int', default=10),
        terminate_timeout=dict(type='int', default=5),
        query_length=dict(type='int', default=200),
    )
    return spec


def validate_options(params):
    """Check what the argument spec cannot; return the enabled rules. Raises ValueError for the user."""
    try:
        enabled = sess.validate_rules(dict((k, params.get(k)) for k in RULE_OPTIONS))
    except sess.RuleError as e:
        raise ValueError(to_native(e))
    mode = params.get('mode') or 'list'
    if mode == 'cancel':
        idle_rules = [r for r in ('idle', 'idle_in_transaction') if r in enabled]
        if idle_rules:
            raise ValueError('mode=cancel only stops a running statement and does nothing to an idle session; use '
                             'mode=terminate with %s' % ', '.join('%s_longer_than' % r for r in idle_rules))
    if params.get('databases') is not None:
        bad = [d for d in params['databases'] if not isinstance(d, str) or d == '']
        if bad or not params['databases']:
            raise ValueError('databases must list database names; use all_databases=true for every database')
    if (params.get('max_terminations') or 0) < 1:
        raise ValueError('max_terminations must be 1 or more, got %s' % params.get('max_terminations'))
    for option in ('terminate_timeout', 'query_length'):
        if params.get(option) is not None and params[option] < 0:
            raise ValueError('%s must be 0 or more, got %s' % (option, params[option]))
    return enabled


def signal_query(mode, session, timeout_ms, version_num):
    """The Query signalling one session if it is still the one judged (pid, backend_start, state_change)."""
    backend_start, state_change = session['_identity']
    literals = {'pid': int(session['pid']), 'start': backend_start, 'change': state_change}
    if mode == 'cancel':
        return Query(CANCEL_SQL, literals=literals)
    if version_num and version_num < 140000:
        return Query(TERMINATE_SQL_PRE14, literals=literals)
    literals['timeout'] = int(timeout_ms)
    return Query(TERMINATE_SQL, literals=literals)


def signal(cur, mode, query):
    """Run a signal_query. Returns the action name."""
    rows = fetch_all_dicts(cur, query.compose(cur.connection))
    if not rows:
        return 'gone'
    if not rows[0]['done']:
        return 'failed'
    return 'cancelled' if mode == 'cancel' else 'terminated'


def run_module():
    module, enabled = start_module(argument_spec(), validate_options,
                                   mutually_exclusive=[('databases', 'all_databases')],
                                   required_if=[('mode', 'cancel', RULE_OPTIONS, True),
                                                ('mode', 'terminate', RULE_OPTIONS, True)])
    params = module.params

    mode = params['mode']
    timeout_ms = params['terminate_timeout'] * 1000
    result = dict(changed=False, mode=mode, rules=enabled, sessions=[], terminated=[], cancelled=[], over_cap=0,
                  queries=[], summary={}, connections={}, blocking_tree=[])
    with pg_session(module, STATEMENT_TIMEOUT) as conn:
        cur = conn.cursor()
        try:
            limits = fetch_one_dict(cur, LIMITS_SQL)
            rows = fetch_all_dicts(cur, sess.ACTIVITY_QUERY, convert=False)
        except psycopg.Error as e:
            module.fail_json(msg='Could not read pg_stat_activity in %s: %s' % (params['login_db'], to_native(e).strip()))
        for row in rows:
            for key in ('connection_seconds', 'transaction_seconds', 'query_seconds', 'state_seconds'):
                if row.get(key) is not None:
                    row[key] = float(row[key])
        if params['all_databases']:
            databases = None
        else:
            databases = params['databases'] or [limits['database']]
        matched, over = sess.select_sessions(
            rows, enabled, databases=databases, exclude_users=params['exclude_users'],
            exclude_applications=params['exclude_applications'],
            max_sessions=None if mode == 'list' else params['max_terminations'],
            query_length=params['query_length'])
        server_total = len([r for r in rows if r.get('backend_type') == sess.CLIENT_BACKEND])
        reserved = int(limits['superuser_reserved']) + int(limits['reserved'])
        usable = max(int(limits['max_connections']) - reserved, 1)
        result['connections'] = dict(server_total=server_total, max_connections=int(limits['max_connections']),
                                     reserved=reserved, utilization_pct=round(100.0 * server_total / usable, 1))
        result['summary'] = sess.summarize(rows, databases)
        result['blocking_tree'] = sess.blocking_tree(rows, params['query_length'])

        for session in matched:
            if mode == 'list':
                session['action'] = 'listed'
                continue
            query = signal_query(mode, session, timeout_ms, limits['version_num'])
            result['queries'].append(query.as_string(conn))
            if module.check_mode:
                session['action'] = 'would_%s' % mode
                result['changed'] = True
                continue
            try:
                session['action'] = signal(cur, mode, query)
            except psycopg.Error as e:
                session['action'] = 'failed'
                session['error'] = to_native(e).strip().splitlines()[0]
            if session['action'] == 'terminated':
                result['terminated'].append(session['pid'])
            elif session['action'] == 'cancelled':
                result['cancelled'].append(session['pid'])
        for session in over:
            session['action'] = 'over_cap'
        result['over_cap'] = len(over)
        result['changed'] = result['changed'] or bool(result['terminated'] or result['cancelled'])
        for session in matched + over:
            session.pop('_identity', None)
        result['sessions'] = matched + over
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
