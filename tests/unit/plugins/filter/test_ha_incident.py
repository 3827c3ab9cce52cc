# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Patroni incident runbooks' filters (plugins/filter/ha_incident.py): causes of a lag, whom to fence, verdicts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter import ha_incident as hf

MIB = 1024 * 1024


def cluster(pause=False, db3_state='streaming'):
    data = {'scope': 'quant', 'members': [
        {'name': 'db1', 'role': 'leader', 'state': 'running', 'timeline': 2},
        {'name': 'db2', 'role': 'sync_standby', 'state': 'streaming', 'timeline': 2, 'lag': 0},
        {'name': 'db3', 'role': 'replica', 'state': db3_state, 'timeline': 2, 'lag': 0},
    ]}
    if pause:
        data['pause'] = True
    return data


def replica_row(lsn, receive_pending=0, age=None, pause='not paused', receiver='streaming', long_queries=None):
    return {'in_recovery': True, 'lsn': lsn, 'replay_age_seconds': age, 'receive_pending_bytes': receive_pending,
            'replay_pause_state': pause, 'wal_receiver_status': receiver, 'sender_host': 'db1',
            'hot_standby_feedback': 'off', 'max_standby_streaming_delay': '30s', 'long_queries': long_queries or []}


def sender(name, unsent=0, in_flight=0, state='streaming'):
    return {'application_name': name, 'state': state, 'sync_state': 'async', 'unsent_bytes': unsent,
            'in_flight_bytes': in_flight, 'unreplayed_bytes': 0, 'replay_lag_seconds': None}


def sql(db3=None, senders=None, db3_failed=False):
    """The runbook's query looped over the members, as registered."""
    leader = {'in_recovery': False, 'lsn': '0/6000000', 'replay_age_seconds': None}
    if senders is None:
        senders = [sender('db2'), sender('db3')]
    results = [
        {'item': 'db1', 'changed': False, 'query_all_results': [[leader], senders]},
        {'item': 'db2', 'changed': False, 'query_all_results': [[replica_row('0/6000000')], {}]},
    ]
    if db3_failed:
        results.append({'item': 'db3', 'changed': False, 'failed': False, 'msg': 'connection refused'})
    else:
        results.append({'item': 'db3', 'changed': False, 'query_all_results': [[db3 or replica_row('0/6000000')], {}]})
    return {'results': results}


def df(pct):
    return {'results': [{'item': name, 'rc': 0, 'stdout': 'Use%%\n %d%%' % pct} for name in ('db1', 'db2', 'db3')]}


def test_healthy_cluster_has_no_cause_and_p3():
    diag = hf.replication_lag_diagnose(cluster(), sql(), df(40))
    assert diag['leader'] == 'db1' and diag['lagging'] == [] and diag['resume'] == [] and diag['cancel'] == []
    verdict = hf.replication_lag_verdict(diag)
    assert verdict['severity'] == 'P3' and verdict['unresolved'] is False
    assert verdict['findings'][2] == (u'✓ Replica db3 (replica, streaming): lag 0 bytes / 0.0 s '
                                      u'(limits 16 MB / 30.0 s)')


def test_paused_replay_is_the_cause_and_resume_is_offered():
    # db3 received everything (32 MiB) but replayed nothing of it: apply lag, replay paused
    db3 = replica_row('0/4000000', receive_pending=32 * MIB, age=95.0, pause='paused')
    diag = hf.replication_lag_diagnose(cluster(pause=True), sql(db3=db3), df(40))
    replica = diag['replicas'][1]
    assert replica['lag_bytes'] == 32 * MIB and replica['lag_seconds'] == 95.0
    assert replica['causes'] == ['replay paused (pg_wal_replay_pause: paused)', 'apply: 32 MB received but not replayed']
    assert diag['resume'] == ['db3'] and diag['lagging'] == ['db3']
    verdict = hf.replication_lag_verdict(diag)
    assert verdict['severity'] == 'P2' and verdict['unresolved'] is True
    assert any('replication_lag_confirm=true to resume' in line for line in verdict['findings'])
    assert any('Patroni is paused' in line for line in verdict['findings'])
    # confirmed: resumed, measured again within the limits -> resolved
    after = hf.replication_lag_diagnose(cluster(), sql(), df(40))
    done = hf.replication_lag_verdict(diag, after=after, resume={'changed': True, 'results': [{'item': 'db3', 'changed': True}]})
    assert done['unresolved'] is False
    assert u'✓ Replay resumed (pg_wal_replay_resume) on db3' in done['findings']
    assert done['findings'][-1] == u'✓ After the remedies: every replica streaming within the limits'


def test_network_lag_is_told_from_apply_lag():
    db3 = replica_row('0/4000000', receive_pending=0, age=40.0)
    diag = hf.replication_lag_diagnose(cluster(), sql(db3=db3, senders=[sender('db2'), sender('db3', unsent=24 * MIB, in_flight=8 * MIB)]))
    assert diag['replicas'][1]['causes'] == [
        'network/receive: 32 MB not yet flushed on the replica (24 MB not sent, 8 MB in flight)']


def test_long_queries_on_a_lagging_replica_are_cancelled_only_there():
    queries = [{'pid': 4711, 'user': 'reporting', 'seconds': 300.5, 'query': 'SELECT ...'},
               {'pid': 4712, 'user': 'reporting', 'seconds': 5, 'query': 'SELECT 1'}]
    db3 = replica_row('0/4000000', receive_pending=32 * MIB, age=300.0, long_queries=queries)
    diag = hf.replication_lag_diagnose(cluster(), sql(db3=db3), long_query_seconds=30)
    assert diag['cancel'] == [{'member': 'db3', 'pid': 4711}]
    assert diag['replicas'][1]['causes'][-1] == (
        '1 query on the replica running > 30 s (pids 4711) can hold replay: hot_standby_feedback=off, '
        'max_standby_streaming_delay=30s')
    # the same query on a replica within the limits is listed as a cause of nothing and cancelled nowhere
    calm = hf.replication_lag_diagnose(cluster(), sql(db3=replica_row('0/6000000', long_queries=queries)))
    assert calm['cancel'] == [] and calm['lagging'] == []


def test_not_streaming_offers_reinit_and_no_replica_streaming_is_p1():
    db3 = replica_row('0/4000000', receiver=None)
    diag = hf.replication_lag_diagnose(cluster(db3_state='running'), sql(db3=db3, senders=[sender('db2')]))
    replica = diag['replicas'][1]
    assert replica['streaming'] is False
    assert replica['causes'][:2] == ['not streaming: Patroni state running, WAL receiver none',
                                     'no WAL sender for it on the leader db1']
    verdict = hf.replication_lag_verdict(diag)
    assert verdict['severity'] == 'P2'
    assert any('replication_lag_reinit_member=NAME' in line for line in verdict['findings'])
    assert verdict['findings'][2].startswith(u'✗ Replica db3')
    # no replica streaming at all: P1
    both = hf.replication_lag_diagnose(cluster(db3_state='stopped'), sql(db3=db3, senders=[]))
    both['replicas'][0]['streaming'] = False
    assert hf.replication_lag_verdict(both)['severity'] == 'P1'


def test_full_disk_and_member_without_answer():
    db3 = replica_row('0/4000000', receive_pending=32 * MIB, age=60.0)
    diag = hf.replication_lag_diagnose(cluster(), sql(db3=db3), df(95), disk_percent=90)
    assert 'disk of the data directory 95 % full' in diag['replicas'][1]['causes']
    # db3 did not answer over SQL: Patroni's state and lag are used, and the checklist says so
    silent = hf.replication_lag_diagnose(cluster(db3_state='stopped'), sql(db3_failed=True))
    assert silent['replicas'][1]['sql_failed'] is True and silent['replicas'][1]['lag_bytes'] == 0
    assert silent['replicas'][1]['causes'][0] == 'not streaming: Patroni state stopped, WAL receiver unknown - no SQL answer'
    assert hf.replication_lag_verdict(silent)['findings'][2].startswith(
        u"✗ Replica db3 (replica, stopped): lag 0 bytes / 0.0 s (no SQL answer: Patroni's lag)")


def test_replication_lag_verdict_without_measurement_and_on_failure():
    assert hf.replication_lag_verdict({}, failed=True)['severity'] == 'P0'
    diag = hf.replication_lag_diagnose(cluster(), sql())
    failed = hf.replication_lag_verdict(diag, failed=True)
    assert failed['unresolved'] is True and failed['findings'][-1] == hf.FAILED_LINE


def test_replication_lag_refuses_bad_input():
    with pytest.raises(AnsibleFilterError, match='no member name'):
        hf.replication_lag_diagnose(cluster(), {'results': [{'query_all_results': []}]})
    with pytest.raises(AnsibleFilterError, match='lag_bytes must be a number'):
        hf.replication_lag_diagnose(cluster(), sql(), lag_bytes='many')


# --- split brain ------------------------------------------------------------------------------

def member(name, in_recovery, timeline):
    return {'item': name, 'query_all_results': [[{'in_recovery': in_recovery, 'lsn': '0/5000000', 'replay_age_seconds': None,
                                                  'timeline': timeline}]]}


def apis(**roles):
    return {'results': [{'item': name, 'status': 200, 'json': {'role': role}} for name, role in sorted(roles.items())]}


def dcs(leader, rc=0):
    return {'rc': rc, 'stdout': leader + '\n'}


SECOND_PRIMARY = {'results': [member('db1', False, 1), member('db2', False, 2), member('db3', True, 1)]}


def test_split_brain_fences_the_primary_that_is_not_the_dcs_leader():
    plan = hf.split_brain_plan(cluster(pause=True), SECOND_PRIMARY, apis(db1='primary', db2='primary', db3='replica'), dcs('db1'))
    assert plan['primaries'] == ['db1', 'db2'] and plan['fence'] == ['db2'] and plan['refuse'] == ''
    assert plan['timelines'] == {'db1': 1, 'db2': 2, 'db3': 1}
    assert plan['leader_claims'] == ['db1', 'db2']
    verdict = hf.split_brain_verdict(plan)
    assert verdict['severity'] == 'P1' and verdict['unresolved'] is True
    assert verdict['findings'][3] == u'✗ Primaries (pg_is_in_recovery() false): db1, db2'
    assert verdict['findings'][4] == u'⚠ Timelines: db1 1, db2 2, db3 1'
    assert any('split_brain_confirm=true' in line for line in verdict['findings'])
    # fenced, asked again: one primary left
    after = hf.split_brain_plan(cluster(), {'results': [member('db1', False, 1), member('db3', True, 1)]},
                                apis(db1='primary', db3='replica'), dcs('db1'))
    done = hf.split_brain_verdict(plan, after=after, fenced={'changed': True, 'results': [{'item': 'db2', 'changed': True}]})
    assert done['unresolved'] is False
    assert u'✓ Fenced (Patroni and PostgreSQL stopped, data directory kept): db2' in done['findings']
    assert done['findings'][-1] == u'✓ After fencing: primaries db1'


def test_split_brain_refuses_to_choose_without_one_dcs_leader_among_the_primaries():
    no_key = hf.split_brain_plan(cluster(), SECOND_PRIMARY, dcs=dcs('', rc=0))
    assert no_key['fence'] == [] and 'human' in no_key['refuse']
    other = hf.split_brain_plan(cluster(), SECOND_PRIMARY, dcs=dcs('db3'))
    assert other['fence'] == [] and 'not one of the primaries' in other['refuse']
    unreachable = hf.split_brain_plan(cluster(), SECOND_PRIMARY, dcs={'rc': 1, 'stdout': '', 'stderr': 'context deadline exceeded'})
    assert unreachable['dcs_leader'] is None and unreachable['fence'] == []
    verdict = hf.split_brain_verdict(no_key)
    assert any(line.startswith(u'✗ Nothing fenced: the DCS names no leader') for line in verdict['findings'])


def test_one_primary_is_p3_and_disagreement_p2():
    healthy = {'results': [member('db1', False, 2), member('db2', True, 2), member('db3', True, 2)]}
    plan = hf.split_brain_plan(cluster(), healthy, apis(db1='primary', db2='replica', db3='replica'), dcs('db1'))
    assert plan['split'] is False and plan['fence'] == []
    verdict = hf.split_brain_verdict(plan)
    assert verdict['severity'] == 'P3' and verdict['unresolved'] is False
    # a member's Patroni claims the lead although PostgreSQL is in recovery there: P2, nothing to fence
    odd = hf.split_brain_plan(cluster(), healthy, apis(db1='primary', db2='primary', db3='replica'), dcs('db1'))
    assert odd['split'] is True and hf.split_brain_verdict(odd)['severity'] == 'P2'


def test_split_brain_unanswered_member_and_bad_input():
    partial = {'results': [member('db1', False, 2), member('db2', True, 2), {'item': 'db3', 'failed': False, 'msg': 'refused'}]}
    plan = hf.split_brain_plan(cluster(), partial, dcs=dcs('db1'))
    assert plan['unanswered'] == ['db3']
    assert hf.split_brain_verdict(plan)['severity'] == 'P2'
    assert hf.split_brain_verdict({}, failed=True)['severity'] == 'P0'
    with pytest.raises(AnsibleFilterError, match='cluster must be a dict'):
        hf.split_brain_plan([], SECOND_PRIMARY)


def test_every_filter_is_registered():
    assert sorted(hf.FilterModule().filters()) == [
        'replication_lag_diagnose', 'replication_lag_verdict', 'split_brain_plan', 'split_brain_verdict']
