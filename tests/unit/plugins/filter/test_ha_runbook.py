"""quantops.platform.ha_* filters: the decisions of the HA runbooks."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter.ha_runbook import (
    ha_failover_plan, ha_haproxy_backend_up, ha_member_check, ha_switchover_plan)


def member(name, role='replica', state='streaming', lag=0):
    return {'name': name, 'role': role, 'state': state, 'lag': lag}


def healthy(sync=True):
    return {'members': [member('db1', 'leader', 'running'),
                        member('db2', 'sync_standby' if sync else 'replica', lag=100),
                        member('db3', lag=5)]}


def test_switchover_prefers_the_synchronous_standby():
    assert ha_switchover_plan(healthy()) == {'leader': 'db1', 'candidate': 'db2'}


def test_switchover_async_takes_the_least_lag():
    assert ha_switchover_plan(healthy(sync=False)) == {'leader': 'db1', 'candidate': 'db3'}


def test_switchover_named_candidate():
    assert ha_switchover_plan(healthy(sync=False), 'db2') == {'leader': 'db1', 'candidate': 'db2'}


@pytest.mark.parametrize('candidate, message', [
    ('db1', 'already the leader'),
    ('db9', 'not a replica'),
    ('db3', 'only the synchronous standby'),
])
def test_switchover_refuses_a_wrong_candidate(candidate, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ha_switchover_plan(healthy(), candidate)


def test_switchover_refuses_a_replica_that_does_not_stream():
    cluster = {'members': [member('db1', 'leader', 'running'), member('db2', state='stopped')]}
    with pytest.raises(AnsibleFilterError, match='is stopped, not streaming'):
        ha_switchover_plan(cluster, 'db2')
    with pytest.raises(AnsibleFilterError, match='no streaming replica'):
        ha_switchover_plan(cluster)


def test_switchover_without_a_running_leader_points_to_failover():
    cluster = {'members': [member('db1', 'leader', 'stopped'), member('db2')]}
    with pytest.raises(AnsibleFilterError, match='failover'):
        ha_switchover_plan(cluster)
    with pytest.raises(AnsibleFilterError, match='no leader'):
        ha_switchover_plan({'members': [member('db2')]})


def test_switchover_refuses_a_paused_cluster():
    with pytest.raises(AnsibleFilterError, match='paused'):
        ha_switchover_plan(dict(healthy(), pause=True))


def test_failover_needs_the_boolean_confirm():
    cluster = {'members': [member('db1', 'leader', 'stopped'), member('db2', 'sync_standby'), member('db3')]}
    for confirm in (False, 'true', 'yes', 1):
        with pytest.raises(AnsibleFilterError, match='ha_runbook_failover_confirm'):
            ha_failover_plan(cluster, '', confirm)
    assert ha_failover_plan(cluster, '', True) == {'candidate': 'db2'}


def test_failover_refuses_while_a_leader_runs():
    with pytest.raises(AnsibleFilterError, match='healthy leader'):
        ha_failover_plan(healthy(), '', True)


def test_failover_without_any_leader_takes_the_least_lag():
    cluster = {'members': [member('db2', lag=9), member('db3', lag=2), member('db1', state='stopped')]}
    assert ha_failover_plan(cluster, '', True) == {'candidate': 'db3'}
    with pytest.raises(AnsibleFilterError, match='stopped, not streaming'):
        ha_failover_plan(cluster, 'db1', True)


def test_member_check_returns_the_replica():
    assert ha_member_check(healthy(), 'db3', 'reinit')['name'] == 'db3'
    assert ha_member_check(healthy(), 'db3', 'remove', True)['name'] == 'db3'


@pytest.mark.parametrize('name, action, sync, message', [
    ('db1', 'reinit', False, 'is the leader'),
    ('db7', 'remove', False, 'not a member'),
    ('db2', 'drop', False, 'reinit or remove'),
])
def test_member_check_refusals(name, action, sync, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ha_member_check(healthy(), name, action, sync)


def test_remove_keeps_a_streaming_replica_in_synchronous_mode():
    cluster = {'members': [member('db1', 'leader', 'running'), member('db2', 'sync_standby')]}
    with pytest.raises(AnsibleFilterError, match='synchronous mode needs one'):
        ha_member_check(cluster, 'db2', 'remove', True)
    assert ha_member_check(cluster, 'db2', 'remove', False)['name'] == 'db2'


def test_member_check_needs_another_running_leader():
    cluster = {'members': [member('db1', 'leader', 'stopped'), member('db2')]}
    with pytest.raises(AnsibleFilterError, match='without one'):
        ha_member_check(cluster, 'db2', 'reinit')


def test_not_a_cluster_is_an_error():
    for function in (ha_switchover_plan, ha_failover_plan):
        with pytest.raises(AnsibleFilterError, match='GET /cluster'):
            function({'nodes': []})


def test_haproxy_backend_up():
    stats = ('# pxname,svname,qcur,status,weight\n'
             'stats,FRONTEND,,OPEN,\n'
             'primary,FRONTEND,,OPEN,\n'
             'primary,db1,0,DOWN,1\n'
             'primary,db2,0,UP,1\n'
             'primary,db3,0,DOWN 1/2,1\n'
             'primary,BACKEND,0,UP,1\n'
             'replicas,db1,0,UP,1\n'
             'replicas,db3,0,UP 1/2,1\n')
    assert ha_haproxy_backend_up(stats, 'primary') == ['db2']
    assert ha_haproxy_backend_up(stats, 'replicas') == ['db1', 'db3']
    with pytest.raises(AnsibleFilterError):
        ha_haproxy_backend_up(None, 'primary')
