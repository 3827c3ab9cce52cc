# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the Patroni incident runbooks: replication lag and split brain suspected.

playbooks/incidents/replication_lag.yml and split_brain.yml (roles quantops.platform.replication_lag and
quantops.platform.split_brain) measure every member of a cluster and act; what the measurements mean - the
cause of a lag, who leads, whom to fence, the severity and the checklist of the report - is decided here.
The picture of the cluster (leaders, primaries, lag per member) comes from
quantops.platform.maintenance_cluster_state, the morning check's.  Documentation: one .yml per filter.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter.incident import (
    CRIT, FAILED_LINE, OK, UNKNOWN, WARN, _number, _ran, _result,
)
from ansible_collections.quantops.platform.plugins.filter.maintenance import cluster_state
from ansible_collections.quantops.platform.plugins.module_utils.health import format_bytes


def _loop_results(value, what):
    """{member: result} of a task looped over the members (``results`` of a registered loop, or that list)."""
    value = _result(value)
    results = value.get('results') if isinstance(value, dict) else value
    if results is None:
        return {}
    if not isinstance(results, list):
        raise AnsibleFilterError('%s must be a registered loop result, got %s' % (what, type(results).__name__))
    out = {}
    for index, entry in enumerate(results):
        if not isinstance(entry, dict) or not isinstance(entry.get('item'), str):
            raise AnsibleFilterError('%s.results[%d] has no member name in item' % (what, index))
        out[entry['item']] = entry
    return out


def _queries(entry):
    """The rows of each query of a postgresql_query result with a list of queries; [] when it failed."""
    if not _ran(entry) or entry.get('failed') or 'query_all_results' not in entry:
        return None
    return [[] if rows == {} else list(rows or []) for rows in entry['query_all_results']]


def _member_rows(sql):
    """The morning check's member answers ({host, in_recovery, lsn, replay_age_seconds}) from the looped SQL."""
    rows = []
    for name, entry in sorted(_loop_results(sql, 'sql').items()):
        queries = _queries(entry)
        if queries and queries[0]:
            row = dict(queries[0][0])
            row['host'] = name
            rows.append(row)
        else:
            rows.append({'host': name, 'failed': True, 'msg': entry.get('msg', '')})
    return rows


def _disk_pct(entry):
    if not _ran(entry) or entry.get('failed') or entry.get('rc', 0) != 0:
        return None
    for line in str(entry.get('stdout', '')).splitlines():
        text = line.strip().rstrip('%')
        if text.isdigit():
            return int(text)
    return None


# --- replication lag ------------------------------------------------------------------------

def replication_lag_diagnose(cluster, sql, disk=None, inventory=None, lag_bytes=16777216, lag_seconds=30,
                             long_query_seconds=30, disk_percent=90):
    """Lag per replica in bytes and seconds, and its causes among the usual ones.

    ``cluster``: Patroni's ``GET /cluster``.  ``sql``: the runbook's query looped over the members, each result's
    ``query_all_results`` = [[member row], [pg_stat_replication rows]] (the second only on the leader).  ``disk``: a
    ``df --output=pcent`` of each member's data directory, looped over the members.
    """
    lag_bytes = int(_number(lag_bytes, 'lag_bytes'))
    lag_seconds = _number(lag_seconds, 'lag_seconds')
    disk_percent = _number(disk_percent, 'disk_percent')
    state = cluster_state(cluster, _member_rows(sql), inventory)
    raw = _loop_results(sql, 'sql')
    disks = _loop_results(disk, 'disk')
    senders = {}
    leader_queries = _queries(raw.get(state['leader'])) if state['leader'] else None
    for row in (leader_queries[1] if leader_queries and len(leader_queries) > 1 else []):
        senders[row.get('application_name')] = row
    replicas, resume, cancel, not_streaming, lagging = [], [], [], [], []
    for member in state['members']:
        name = member['name']
        if name == state['leader'] or member['role'] in ('leader', 'standby_leader'):
            continue
        queries = _queries(raw.get(name)) or []
        row = dict(queries[0][0]) if queries and queries[0] else {}
        sender = senders.get(name)
        pct = _disk_pct(disks.get(name))
        long_queries = [q for q in (row.get('long_queries') or []) if _number(q.get('seconds', 0), 'seconds') > float(long_query_seconds)]
        paused = row.get('replay_pause_state') not in (None, 'not paused')
        streaming = member['state'] == 'streaming' and row.get('wal_receiver_status', 'streaming') == 'streaming'
        over = ((member['lag_bytes'] or 0) > lag_bytes or (member['lag_seconds'] or 0) > lag_seconds)
        causes = []
        if not streaming:
            causes.append('not streaming: Patroni state %s, WAL receiver %s' % (
                member['state'], row.get('wal_receiver_status') or ('none' if row else 'unknown - no SQL answer')))
        if leader_queries is not None and sender is None:
            causes.append('no WAL sender for it on the leader %s' % state['leader'])
        elif sender is not None and sender.get('state') != 'streaming':
            causes.append('WAL sender on the leader in state %s' % sender.get('state'))
        if paused:
            causes.append('replay paused (pg_wal_replay_pause: %s)' % row.get('replay_pause_state'))
        network = None
        if sender is not None:
            network = int(sender.get('unsent_bytes') or 0) + int(sender.get('in_flight_bytes') or 0)
        received = row.get('receive_pending_bytes')
        received = int(received) if received is not None else None
        if over and network is not None and network > lag_bytes and (received is None or network >= received):
            causes.append('network/receive: %s not yet flushed on the replica (%s not sent, %s in flight)' % (
                format_bytes(network), format_bytes(int(sender.get('unsent_bytes') or 0)),
                format_bytes(int(sender.get('in_flight_bytes') or 0))))
        if over and received is not None and received > 0 and (network is None or received > network):
            causes.append('apply: %s received but not replayed' % format_bytes(received))
        if long_queries:
            causes.append('%d quer%s on the replica running > %s s (pids %s) can hold replay: hot_standby_feedback=%s, '
                          'max_standby_streaming_delay=%s' % (
                              len(long_queries), 'y' if len(long_queries) == 1 else 'ies', long_query_seconds,
                              ', '.join(str(q.get('pid')) for q in long_queries), row.get('hot_standby_feedback', '?'),
                              row.get('max_standby_streaming_delay', '?')))
        if pct is not None and pct >= disk_percent:
            causes.append('disk of the data directory %d %% full' % pct)
        entry = dict(member)
        entry.update({'paused': paused, 'streaming': streaming, 'over': over, 'long_queries': long_queries,
                      'disk_pct': pct, 'causes': causes, 'sender': sender, 'receive_pending_bytes': received,
                      'network_bytes': network})
        replicas.append(entry)
        if not streaming:
            not_streaming.append(name)
        if over or not streaming:
            lagging.append(name)
        if paused:
            resume.append(name)
        if over and long_queries:
            cancel.extend({'member': name, 'pid': int(q['pid'])} for q in long_queries)
    return {'scope': state['scope'], 'leader': state['leader'], 'leaders': state['leaders'], 'paused': state['paused'],
            'primaries': state['primaries'], 'timeline': state['timeline'], 'replicas': replicas,
            'lagging': lagging, 'not_streaming': not_streaming, 'resume': resume, 'cancel': cancel,
            'lag_bytes': lag_bytes, 'lag_seconds': lag_seconds}


def _replica_line(replica, limits):
    head = u'Replica %s (%s, %s): lag %s / %s s%s' % (
        replica['name'], replica['role'], replica['state'],
        format_bytes(replica['lag_bytes']) if replica['lag_bytes'] is not None else 'unknown',
        replica['lag_seconds'] if replica['lag_seconds'] is not None else '?',
        " (no SQL answer: Patroni's lag)" if replica.get('sql_failed') else '')
    if not replica['streaming']:
        mark = CRIT
    elif replica['over']:
        mark = WARN
    else:
        mark = OK
    tail = ('; cause: ' + '; '.join(replica['causes'])) if replica['causes'] else (
        '' if mark == OK else '; cause: not found among the usual ones (see the timeline)')
    return u'%s %s (limits %s / %s s)%s' % (mark, head, format_bytes(limits[0]), limits[1], tail)


def replication_lag_verdict(diagnosis, after=None, resume=None, cancel=None, reinit=None, failed=False,
                            reinit_member=''):
    """{severity, findings, unresolved} of a replication lag run.

    P1: no replica streaming (no copy of new commits; a synchronous cluster blocks or runs alone); P2: a replica
    not streaming or over a limit; P3: none.  Unresolved while the re-measure (``after``, else ``diagnosis``)
    still finds a replica lagging or not streaming.
    """
    before = _result(diagnosis)
    if not before:
        return {'severity': 'P0' if failed else 'P3', 'unresolved': bool(failed),
                'findings': [u'%s No measurement of the cluster' % UNKNOWN] + ([FAILED_LINE] if failed else [])}
    final = _result(after) or before
    limits = (before.get('lag_bytes', 0), before.get('lag_seconds', 0))
    replicas = before.get('replicas') or []
    streaming = [r for r in replicas if r['streaming']]
    if replicas and not streaming:
        severity = 'P1'
    elif before.get('lagging'):
        severity = 'P2'
    else:
        severity = 'P3'
    findings = [u'%s Leader: %s, timeline %s' % (
        OK if before.get('leader') else CRIT, before.get('leader') or 'none in the DCS', before.get('timeline'))]
    findings += [_replica_line(r, limits) for r in replicas]
    if not replicas:
        findings.append(u'%s No replica in the cluster' % WARN)
    if before.get('paused'):
        findings.append(u'%s Patroni is paused (maintenance mode): it neither resumes a paused replay nor fails over; '
                        u'patronictl resume %s when the maintenance is over' % (WARN, before.get('scope')))
    if _ran(resume):
        findings.append(u'%s Replay resumed (pg_wal_replay_resume) on %s' % (
            OK, ', '.join(r['item'] for r in resume.get('results') or [] if _ran(r)) or 'none'))
    elif before.get('resume'):
        findings.append(u'%s Replay paused on %s: re-run with -e replication_lag_confirm=true to resume it' % (
            WARN, ', '.join(before['resume'])))
    if _ran(cancel):
        findings.append(u'%s Cancelled the queries holding replay: %s' % (
            OK, ', '.join('%s pid %s' % (r['item']['member'], r['item']['pid'])
                          for r in cancel.get('results') or [] if _ran(r)) or 'none'))
    elif before.get('cancel'):
        findings.append(u'%s Queries holding replay: %s - re-run with -e replication_lag_confirm=true to cancel them '
                        u'(or let max_standby_streaming_delay do it)' % (
                            WARN, ', '.join('%s pid %s' % (c['member'], c['pid']) for c in before['cancel'])))
    if _ran(reinit):
        findings.append(u'%s Reinitialised %s from the leader (ha_runbook reinit; the old data directory kept beside it)' % (
            OK, reinit_member))
    elif before.get('not_streaming'):
        findings.append(u'%s Not streaming: %s - when it does not stream again by itself, rebuild it with '
                        u'-e replication_lag_reinit_member=NAME -e replication_lag_reinit_confirm=true' % (
                            WARN, ', '.join(before['not_streaming'])))
    left = final.get('lagging') or []
    if final is not before:
        findings.append(u'%s After the remedies: %s' % (
            CRIT if left else OK, ('still lagging or not streaming: ' + ', '.join(left)) if left else
            'every replica streaming within the limits'))
    if failed:
        findings.append(FAILED_LINE)
    return {'severity': 'P0' if failed and not replicas else severity, 'findings': findings,
            'unresolved': bool(left) or bool(failed)}


# --- split brain ------------------------------------------------------------------------------

def _dcs_leader(value):
    """The leader key's value from ``etcdctl get <key> --print-value-only`` (a registered command), or None."""
    value = _result(value)
    if not value or value.get('rc', 0) != 0:
        return None
    text = str(value.get('stdout', '')).strip()
    return text or None


def split_brain_plan(cluster, sql, apis=None, dcs=None, inventory=None):
    """Who leads according to the DCS, to every member's Patroni and to PostgreSQL itself; whom to fence.

    ``cluster``: ``GET /cluster``; ``sql``: [[{in_recovery, lsn, timeline, ...}]] looped over the members; ``apis``:
    ``GET /patroni`` of each member (its own role) looped over the members; ``dcs``: the leader key read from etcd.
    Fence: the primaries (pg_is_in_recovery false) that are not the DCS leader - only when the DCS names exactly one
    leader and it is itself a primary; otherwise nobody (which copy to keep is then a human decision).
    """
    state = cluster_state(cluster, _member_rows(sql), inventory)
    raw = _loop_results(sql, 'sql')
    timelines = {}
    for name, entry in raw.items():
        queries = _queries(entry)
        if queries and queries[0]:
            timelines[name] = queries[0][0].get('timeline')
    claims = {}
    for name, entry in _loop_results(apis, 'apis').items():
        body = entry.get('json') if _ran(entry) and not entry.get('failed') else None
        claims[name] = (body or {}).get('role', 'unreachable')
    dcs_leader = _dcs_leader(dcs)
    primaries = state['primaries']
    leader_claims = sorted(n for n, role in claims.items() if role in ('primary', 'master', 'leader', 'standby_leader'))
    refuse = ''
    fence = []
    if len(primaries) > 1:
        if dcs_leader is None:
            refuse = 'the DCS names no leader: which primary to keep is a decision for a human'
        elif dcs_leader not in primaries:
            refuse = 'the DCS leader %s is not one of the primaries (%s)' % (dcs_leader, ', '.join(primaries))
        elif state['leaders'] and state['leaders'] != [dcs_leader]:
            refuse = 'GET /cluster (%s) and the DCS key (%s) disagree' % (', '.join(state['leaders']), dcs_leader)
        else:
            fence = [p for p in primaries if p != dcs_leader]
    return {'scope': state['scope'], 'dcs_leader': dcs_leader, 'cluster_leaders': state['leaders'],
            'primaries': primaries, 'leader_claims': leader_claims, 'claims': claims, 'timelines': timelines,
            'paused': state['paused'], 'split': len(primaries) > 1 or len(state['leaders']) > 1 or len(leader_claims) > 1,
            'fence': fence, 'refuse': refuse,
            'answered': sorted(n for n, e in raw.items() if _queries(e)),
            'unanswered': sorted(n for n, e in raw.items() if not _queries(e))}


def split_brain_verdict(plan, after=None, fenced=None, failed=False):
    """{severity, findings, unresolved} of a split brain run.

    P1 while more than one primary is found (two copies take writes); P2 when the members disagree about the leader
    or a member did not answer, one primary only; P3 otherwise.  Unresolved while the re-measure (``after``, else
    ``plan``) still finds more than one primary.
    """
    before = _result(plan)
    if not before:
        return {'severity': 'P0' if failed else 'P3', 'unresolved': bool(failed),
                'findings': [u'%s No measurement of the cluster' % UNKNOWN] + ([FAILED_LINE] if failed else [])}
    final = _result(after) or before
    primaries = before['primaries']
    two = len(primaries) > 1
    disagree = before['split'] and not two
    severity = 'P1' if two else ('P2' if disagree or before['unanswered'] else 'P3')
    timelines = ', '.join('%s %s' % (n, t) for n, t in sorted(before['timelines'].items())) or 'none'
    findings = [
        u'%s DCS leader key: %s' % (OK if before['dcs_leader'] else CRIT, before['dcs_leader'] or 'none'),
        u'%s Leaders in GET /cluster: %s' % (OK if len(before['cluster_leaders']) == 1 else CRIT,
                                             ', '.join(before['cluster_leaders']) or 'none'),
        u'%s Members that call themselves leader (GET /patroni): %s' % (
            OK if len(before['leader_claims']) <= 1 else CRIT,
            ', '.join('%s %s' % (n, r) for n, r in sorted(before['claims'].items())) or 'none'),
        u'%s Primaries (pg_is_in_recovery() false): %s' % (
            CRIT if two else (OK if primaries else WARN), ', '.join(primaries) or 'none'),
        u'%s Timelines: %s' % (WARN if len(set(before['timelines'].values())) > 1 else OK, timelines),
    ]
    if before['unanswered']:
        findings.append(u'%s No SQL answer from %s' % (WARN, ', '.join(before['unanswered'])))
    if before['paused']:
        findings.append(u'%s Patroni is paused (maintenance mode): it neither fails over nor demotes a second primary; '
                        u'patronictl resume %s after the incident' % (WARN, before['scope']))
    if two and before['refuse']:
        findings.append(u'%s Nothing fenced: %s' % (CRIT, before['refuse']))
    elif _ran(fenced):
        findings.append(u'%s Fenced (Patroni and PostgreSQL stopped, data directory kept): %s' % (
            OK, ', '.join(r['item'] for r in fenced.get('results') or [] if _ran(r)) or 'none'))
    elif before['fence']:
        findings.append(u'%s To fence (not the DCS leader %s): %s - re-run with -e split_brain_confirm=true to stop its '
                        u'Patroni and PostgreSQL (its data directory is kept)' % (
                            CRIT, before['dcs_leader'], ', '.join(before['fence'])))
    if before['fence']:
        findings.append(u'? Writes the fenced copy took after the fork are only in its data directory: compare them '
                        u'before playbooks/ha/reinit.yml rebuilds it from the leader (the old directory is kept)')
    left = final['primaries']
    if final is not before:
        findings.append(u'%s After fencing: primaries %s' % (CRIT if len(left) > 1 else OK, ', '.join(left) or 'none'))
    if failed:
        findings.append(FAILED_LINE)
    return {'severity': severity, 'findings': findings, 'unresolved': len(left) > 1 or bool(failed)}


class FilterModule(object):
    """quantops.platform Patroni incident filters."""

    def filters(self):
        return {
            'replication_lag_diagnose': replication_lag_diagnose,
            'replication_lag_verdict': replication_lag_verdict,
            'split_brain_plan': split_brain_plan,
            'split_brain_verdict': split_brain_verdict,
        }
