# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Decisions of the HA runbooks (role quantops.platform.ha_runbook); documented in ha_*.yml.

Every filter takes the JSON of Patroni's GET /cluster and either returns what the runbook does
or raises AnsibleFilterError with a message that says why nothing is done.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv

from ansible.errors import AnsibleFilterError

HEALTHY = ('running', 'streaming')


def _members(cluster, name):
    if not isinstance(cluster, dict) or not isinstance(cluster.get('members'), list):
        raise AnsibleFilterError('%s: the input must be the JSON of Patroni GET /cluster (a dict with members)' % name)
    return cluster['members']


def _lag(member):
    lag = member.get('lag', 0)
    return lag if isinstance(lag, int) else 2 ** 62


def _leaders(members):
    return [m for m in members if m.get('role') in ('leader', 'standby_leader')]


def _pick(members, candidate, what, leader_name):
    """The replica to promote: the named one, else the synchronous standby, else the least lag."""
    replicas = [m for m in members if m.get('name') != leader_name and m.get('role') not in ('leader', 'standby_leader')]
    sync = [m for m in replicas if m.get('role') == 'sync_standby']
    if candidate:
        found = [m for m in replicas if m.get('name') == candidate]
        if not found:
            raise AnsibleFilterError('%s: candidate %s is not a replica of this cluster (replicas: %s)'
                                     % (what, candidate, ', '.join(sorted(m.get('name', '?') for m in replicas)) or 'none'))
        chosen = found[0]
        if chosen.get('state') not in HEALTHY:
            raise AnsibleFilterError('%s: candidate %s is %s, not streaming' % (what, candidate, chosen.get('state')))
        if sync and chosen.get('role') != 'sync_standby':
            raise AnsibleFilterError('%s: synchronous mode - only the synchronous standby (%s) may be promoted without '
                                     'losing commits, not %s' % (what, ', '.join(m['name'] for m in sync), candidate))
        return chosen['name']
    healthy = [m for m in (sync or replicas) if m.get('state') in HEALTHY]
    if not healthy:
        raise AnsibleFilterError('%s: no streaming replica to promote (members: %s)'
                                 % (what, ', '.join('%s=%s/%s' % (m.get('name'), m.get('role'), m.get('state')) for m in members)))
    return sorted(healthy, key=lambda m: (_lag(m), m.get('name', '')))[0]['name']


def ha_switchover_plan(cluster, candidate=''):
    """A planned switchover: the healthy leader hands over to a streaming replica."""
    members = _members(cluster, 'ha_switchover_plan')
    leaders = _leaders(members)
    if len(leaders) != 1 or leaders[0].get('state') != 'running':
        raise AnsibleFilterError('ha_switchover_plan: a switchover needs one running leader; found %s - use the failover '
                                 'runbook (quantops.platform.ha.failover)'
                                 % (', '.join('%s (%s)' % (m['name'], m.get('state')) for m in leaders) or 'no leader'))
    if cluster.get('pause'):
        raise AnsibleFilterError('ha_switchover_plan: the cluster is paused (maintenance mode); resume it first')
    leader = leaders[0]['name']
    if candidate == leader:
        raise AnsibleFilterError('ha_switchover_plan: candidate %s is already the leader' % candidate)
    return {'leader': leader, 'candidate': _pick(members, candidate, 'ha_switchover_plan', leader)}


def ha_failover_plan(cluster, candidate='', confirm=False):
    """A manual failover: only when no healthy leader exists, and only when confirmed."""
    members = _members(cluster, 'ha_failover_plan')
    if confirm is not True:
        raise AnsibleFilterError('ha_failover_plan: a manual failover promotes a replica without the leader\'s consent; '
                                 'set ha_runbook_failover_confirm=true to run it')
    leaders = [m for m in _leaders(members) if m.get('state') == 'running']
    if leaders:
        raise AnsibleFilterError('ha_failover_plan: %s is a healthy leader - use the switchover runbook '
                                 '(quantops.platform.ha.switchover) instead' % leaders[0]['name'])
    return {'candidate': _pick(members, candidate, 'ha_failover_plan', None)}


def ha_member_check(cluster, member, action, synchronous_mode=False):
    """May 'reinit' or 'remove' be done to member? Returns member's entry or raises why not."""
    members = _members(cluster, 'ha_member_check')
    if action not in ('reinit', 'remove'):
        raise AnsibleFilterError('ha_member_check: action must be reinit or remove, not %r' % (action,))
    found = [m for m in members if m.get('name') == member]
    if not found:
        raise AnsibleFilterError('ha_member_check: %s is not a member of this cluster (members: %s)'
                                 % (member, ', '.join(sorted(m.get('name', '?') for m in members))))
    if found[0].get('role') in ('leader', 'standby_leader'):
        raise AnsibleFilterError('ha_member_check: %s is the leader; switch over first (quantops.platform.ha.switchover)'
                                 % member)
    others = [m for m in members if m.get('name') != member]
    if not [m for m in _leaders(others) if m.get('state') == 'running']:
        raise AnsibleFilterError('ha_member_check: no running leader besides %s; %s would leave the cluster without one'
                                 % (member, action))
    if action == 'remove':
        healthy_replicas = [m for m in others if m.get('role') not in ('leader', 'standby_leader') and m.get('state') in HEALTHY]
        if synchronous_mode and not healthy_replicas:
            raise AnsibleFilterError('ha_member_check: removing %s leaves no streaming replica, and synchronous mode '
                                     'needs one' % member)
    return found[0]


def ha_haproxy_backend_up(stats_csv, proxy):
    """The servers HAProxy reports UP in a proxy (listen section), from its stats CSV."""
    if not isinstance(stats_csv, str):
        raise AnsibleFilterError('ha_haproxy_backend_up: the input must be HAProxy\'s stats CSV text')
    rows = csv.DictReader(stats_csv.lstrip('# ').splitlines())
    return sorted(row['svname'] for row in rows
                  if row.get('pxname') == proxy and row.get('svname') not in ('FRONTEND', 'BACKEND')
                  and (row.get('status') or '').startswith('UP'))


class FilterModule(object):
    def filters(self):
        return {
            'ha_switchover_plan': ha_switchover_plan,
            'ha_failover_plan': ha_failover_plan,
            'ha_member_check': ha_member_check,
            'ha_haproxy_backend_up': ha_haproxy_backend_up,
        }
