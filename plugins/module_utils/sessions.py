# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Session selection and the blocking tree, shared by postgresql_sessions and postgresql_incident_snapshot.

Everything here is pure Python working on rows of ``ACTIVITY_QUERY`` (no
database needed), so the rules that decide which backend gets cancelled or
terminated are unit-tested without a server.

The rules encode seed 002 "Troubleshooting, Issue 3: Connection Pool
Exhaustion" (idle connections older than 10 minutes) and seed 003 "Runbook 3:
Database Performance Issues" (active queries older than 5 minutes, the
blocked/blocking pairs of pg_locks, here read with ``pg_blocking_pids()``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Rows of pg_stat_activity with every duration in seconds, computed by the server
# against one statement_timestamp() so that all durations share one "now".
ACTIVITY_QUERY = (
    "SELECT a.pid, a.datname AS database, a.usename AS user, a.application_name AS application, "
    "host(a.client_addr) AS client_addr, a.backend_type, a.state, a.wait_event_type, a.wait_event, "
    "a.backend_start, a.state_change, "
    "extract(epoch FROM statement_timestamp() - a.backend_start)::float8 AS connection_seconds, "
    "extract(epoch FROM statement_timestamp() - a.xact_start)::float8 AS transaction_seconds, "
    "extract(epoch FROM statement_timestamp() - a.query_start)::float8 AS query_seconds, "
    "extract(epoch FROM statement_timestamp() - a.state_change)::float8 AS state_seconds, "
    "pg_catalog.pg_blocking_pids(a.pid) AS blocked_by, a.query, "
    "a.pid = pg_catalog.pg_backend_pid() AS is_self "
    "FROM pg_catalog.pg_stat_activity a ORDER BY a.pid"
)

RULES = ('idle', 'idle_in_transaction', 'active', 'blocking')

IDLE_IN_TRANSACTION_STATES = ('idle in transaction', 'idle in transaction (aborted)')

# Only ordinary client sessions are ever candidates: walsenders (replication),
# autovacuum, parallel and background workers (TimescaleDB's scheduler among
# them) have other backend_type values.
CLIENT_BACKEND = 'client backend'


class RuleError(ValueError):
    """Raised for a rule set the module cannot apply."""


def validate_rules(rules):
    """Check the thresholds of the rules; return the dict of the rules switched on.

    ``rules``: dict with keys idle_longer_than, idle_in_transaction_longer_than,
    active_longer_than, blocking_longer_than (seconds, None = rule off).
    """
    enabled = {}
    names = {'idle': 'idle_longer_than', 'idle_in_transaction': 'idle_in_transaction_longer_than',
             'active': 'active_longer_than', 'blocking': 'blocking_longer_than'}
    for rule in RULES:
        option = names[rule]
        value = rules.get(option)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RuleError('%s must be a number of seconds, got %r' % (option, value))
        if value < 0:
            raise RuleError('%s must be 0 or more seconds, got %s' % (option, value))
        enabled[rule] = float(value)
    return enabled


def truncate(text, length):
    """Cut ``text`` to ``length`` characters, marking the cut with an ellipsis; 0 hides the text."""
    if text is None:
        return None
    if length == 0:
        return ''
    if len(text) <= length:
        return text
    return text[:max(length - 1, 0)] + '\u2026'


def _seconds(value):
    return round(float(value), 3) if value is not None else None


def blocked_waits(rows):
    """Map each blocking pid to the longest time (seconds) one of the sessions it blocks has waited.

    A waiting session's ``state_seconds`` is the time since its state became
    ``active``, i.e. since its statement started: it has been waiting at most that long.
    """
    waits = {}
    for row in rows:
        for blocker in row.get('blocked_by') or []:
            wait = row.get('state_seconds') or 0.0
            if wait >= waits.get(blocker, -1.0):
                waits[blocker] = wait
    return waits


def exclusion_reason(row, databases, exclude_users, exclude_applications):
    """Why ``row`` is never a candidate (a str), or None when it may be one."""
    if row.get('is_self'):
        return 'own session of this module'
    if row.get('backend_type') != CLIENT_BACKEND:
        return 'backend type %s (only client backends are candidates)' % row.get('backend_type')
    if databases is not None and row.get('database') not in databases:
        return 'database %s not selected' % row.get('database')
    if row.get('user') in exclude_users:
        return 'user %s excluded' % row.get('user')
    if row.get('application') in exclude_applications:
        return 'application %s excluded' % row.get('application')
    return None


def match_reasons(row, enabled, waits):
    """The rules ``row`` breaks, as a list of human-readable reasons (empty list: none)."""
    reasons = []
    state = row.get('state')
    state_seconds = row.get('state_seconds')
    if 'idle' in enabled and state == 'idle' and state_seconds is not None and state_seconds > enabled['idle']:
        reasons.append('idle for %.0f s (> %.0f s)' % (state_seconds, enabled['idle']))
    if ('idle_in_transaction' in enabled and state in IDLE_IN_TRANSACTION_STATES and state_seconds is not None
            and state_seconds > enabled['idle_in_transaction']):
        reasons.append('%s for %.0f s (> %.0f s)' % (state, state_seconds, enabled['idle_in_transaction']))
    query_seconds = row.get('query_seconds')
    if ('active' in enabled and state == 'active' and query_seconds is not None
            and query_seconds > enabled['active']):
        reasons.append('active query running for %.0f s (> %.0f s)' % (query_seconds, enabled['active']))
    pid = row.get('pid')
    if 'blocking' in enabled and pid in waits and not row.get('blocked_by') and waits[pid] > enabled['blocking']:
        reasons.append('blocks other sessions, longest wait %.0f s (> %.0f s)' % (waits[pid], enabled['blocking']))
    return reasons


def sort_key(session):
    """Longest-standing problem first: the oldest transaction, then the oldest state, then the pid."""
    return (-(session.get('transaction_seconds') or 0.0), -(session.get('state_seconds') or 0.0), session['pid'])


# The fields of pg_stat_activity returned as they are, and the durations returned in seconds.
PUBLIC_FIELDS = ('database', 'user', 'application', 'client_addr', 'backend_type', 'state',
                 'wait_event_type', 'wait_event')
PUBLIC_DURATIONS = ('connection_seconds', 'transaction_seconds', 'query_seconds', 'state_seconds')


def public_session(row, query_length):
    """The fields of a session returned to the user (durations in seconds, query truncated)."""
    session = {'pid': row['pid']}
    session.update((name, row.get(name)) for name in PUBLIC_FIELDS)
    session.update((name, _seconds(row.get(name))) for name in PUBLIC_DURATIONS)
    session['blocked_by'] = list(row.get('blocked_by') or [])
    session['query'] = truncate(row.get('query'), query_length)
    return session


def select_sessions(rows, enabled, databases=None, exclude_users=(), exclude_applications=(),
                    max_sessions=None, query_length=200):
    """Apply the rules to rows of ACTIVITY_QUERY.

    Returns ``(matched, over_cap)``: lists of public sessions, each with a
    ``reasons`` list.  ``matched`` holds at most ``max_sessions`` sessions, the
    longest-standing first (see sort_key); the rest are in ``over_cap``.
    ``databases`` None means every database.  Root blockers only: a blocker that
    is itself waiting on another session is left alone, since ending the root
    releases the whole chain.
    """
    waits = blocked_waits(rows)
    candidates = []
    for row in rows:
        if exclusion_reason(row, databases, exclude_users, exclude_applications):
            continue
        reasons = match_reasons(row, enabled, waits)
        if not reasons:
            continue
        session = public_session(row, query_length)
        session['reasons'] = reasons
        session['_identity'] = (row.get('backend_start'), row.get('state_change'))
        candidates.append(session)
    candidates.sort(key=sort_key)
    if max_sessions is None:
        return candidates, []
    return candidates[:max_sessions], candidates[max_sessions:]


def summarize(rows, databases=None):
    """Counts of client sessions by database, user, application and state (seed 002 Issue 3 diagnosis)."""
    groups = {}
    states = {}
    for row in rows:
        if row.get('backend_type') != CLIENT_BACKEND:
            continue
        if databases is not None and row.get('database') not in databases:
            continue
        state = row.get('state') or 'unknown'
        states[state] = states.get(state, 0) + 1
        key = (row.get('database'), row.get('user'), row.get('application'), state)
        groups[key] = groups.get(key, 0) + 1
    by_group = [{'database': k[0], 'user': k[1], 'application': k[2], 'state': k[3], 'count': v}
                for k, v in groups.items()]
    by_group.sort(key=lambda g: (-g['count'], str(g['database']), str(g['user']), str(g['application']), g['state']))
    return {'total': sum(states.values()), 'by_state': states, 'by_group': by_group}


def blocking_tree(rows, query_length=200):
    """The lock waits of rows of ACTIVITY_QUERY as a forest: roots are sessions that block without waiting.

    Each node: pid, user, application, state, state_seconds, query (truncated),
    ``blocks`` (list of child nodes).  A session blocked by several others appears
    under each of them.  Cycles (a deadlock not yet broken by the server's
    deadlock_timeout) are cut where a pid repeats on the path.
    """
    by_pid = dict((row['pid'], row) for row in rows)
    children = {}
    for row in rows:
        for blocker in row.get('blocked_by') or []:
            children.setdefault(blocker, []).append(row['pid'])
    waiting = set(row['pid'] for row in rows if row.get('blocked_by'))
    roots = sorted(pid for pid in children if pid not in waiting)
    if not roots and children:  # every blocker waits too: a cycle
        roots = [min(children)]

    def node(pid, path):
        row = by_pid.get(pid, {'pid': pid})
        entry = {
            'pid': pid,
            'user': row.get('user'),
            'application': row.get('application'),
            'state': row.get('state'),
            'wait_event_type': row.get('wait_event_type'),
            'state_seconds': _seconds(row.get('state_seconds')),
            'query': truncate(row.get('query'), query_length),
            'blocks': [],
        }
        for child in sorted(children.get(pid, [])):
            if child in path:
                continue
            entry['blocks'].append(node(child, path | {child}))
        return entry

    return [node(pid, {pid}) for pid in roots]
