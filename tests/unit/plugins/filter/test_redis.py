# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Redis filters (plugins/filter/redis.py): restore and incident decisions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter import redis
from ansible_collections.quantops.platform.plugins.filter.redis import FilterModule

DIR = '/var/backups/quantops/redis'
NOW = 1765000000.0
INFO = (
    "# Server\r\nredis_version:8.0.2\r\n# Memory\r\nused_memory:52428800\r\nmaxmemory:268435456\r\n"
    "maxmemory_policy:allkeys-lru\r\n# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:4\r\n"
    "rdb_last_save_time:%d\r\nrdb_last_bgsave_status:ok\r\naof_enabled:1\r\naof_last_bgrewrite_status:ok\r\n"
    "aof_last_write_status:ok\r\n# Stats\r\nrejected_connections:0\r\nevicted_keys:0\r\n"
    "# Keyspace\r\ndb0:keys=7,expires=0,avg_ttl=0,subexpiry=0\r\ndb3:keys=200,expires=0,avg_ttl=0,subexpiry=0\r\n"
) % (NOW - 600)


def info(**changes):
    text = INFO
    for key, value in changes.items():
        lines = [line for line in text.split('\r\n') if not line.startswith(key + ':')]
        text = '\r\n'.join(lines + ['%s:%s' % (key, value)])
    return text


def state(ping='PONG', text=INFO, df=(' Use%', ' 41%'), **thresholds):
    return redis.redis_incident_state(ping, text, list(df), NOW, **thresholds)


def status(result, name):
    return dict((c['name'], c['status']) for c in result['checks'])[name]


def test_every_filter_is_registered_and_documented():
    names = FilterModule().filters()
    here = os.path.dirname(redis.__file__)
    assert set(names) == {'redis_keyspace', 'redis_restore_backup', 'redis_restore_settle',
                          'redis_incident_state', 'redis_incident_severity'}
    for name, func in names.items():
        assert func is getattr(redis, name)
        assert os.path.isfile(os.path.join(here, name + '.yml')), name


# --- keyspace --------------------------------------------------------------------

def test_keyspace_counts_every_database_with_keys():
    assert redis.redis_keyspace(INFO) == {'db0': 7, 'db3': 200}
    assert redis.redis_keyspace('# Keyspace\n') == {}
    assert redis.redis_keyspace(None) == {}


# --- restore: which backup ---------------------------------------------------------

VERIFIED = [DIR + '/redis_20261206T023000Z.rdb', DIR + '/redis_20261207T023000Z.rdb.age',
            DIR + '/redis_20261205T023000Z.rdb']


def test_the_newest_verified_backup_is_chosen_by_its_utc_stamp():
    assert redis.redis_restore_backup(VERIFIED, DIR) == DIR + '/redis_20261207T023000Z.rdb.age'
    assert redis.redis_restore_backup(VERIFIED, DIR + '/') == DIR + '/redis_20261207T023000Z.rdb.age'


def test_a_requested_backup_is_taken_only_when_it_is_verified_and_in_the_directory():
    assert redis.redis_restore_backup(VERIFIED, DIR, 'redis_20261205T023000Z.rdb') == DIR + '/redis_20261205T023000Z.rdb'
    assert redis.redis_restore_backup(VERIFIED, DIR, 'redis_20261204T023000Z.rdb') == ''
    assert redis.redis_restore_backup(VERIFIED, DIR, '../redis/redis_20261205T023000Z.rdb') == ''


def test_files_that_are_not_backups_or_lie_elsewhere_do_not_count():
    others = [DIR + '/redis_latest.rdb', '/tmp/redis_20261209T023000Z.rdb', DIR + '/redis_20261209T023000Z.rdb.tmp',
              DIR + '/sub/redis_20261209T023000Z.rdb']
    assert redis.redis_restore_backup(others, DIR) == ''
    assert redis.redis_restore_backup(others + VERIFIED[:1], DIR) == VERIFIED[0]
    assert redis.redis_restore_backup([], DIR) == ''


def test_bad_backup_inputs_are_refused():
    with pytest.raises(AnsibleFilterError, match='absolute'):
        redis.redis_restore_backup(VERIFIED, 'backups')
    with pytest.raises(AnsibleFilterError, match='list of paths'):
        redis.redis_restore_backup(VERIFIED[0], DIR)


# --- restore: confirmation and what is kept --------------------------------------------

def test_a_restore_runs_only_when_confirmed_and_check_mode_only_plans():
    path = DIR + '/redis_20261207T023000Z.rdb'
    assert redis.redis_restore_settle(path, False, False, '/var/lib/redis', '20261207T230000Z')['allowed'] is False
    assert redis.redis_restore_settle(path, 'false', False, '/var/lib/redis', '20261207T230000Z')['allowed'] is False
    planned = redis.redis_restore_settle(path, False, True, '/var/lib/redis', '20261207T230000Z')
    assert planned['allowed'] is True and planned['confirmed'] is False
    for confirm in (True, 'true', 'yes', 1):
        assert redis.redis_restore_settle(path, confirm, False, '/var/lib/redis', '20261207T230000Z')['confirmed'] is True


def test_the_replaced_files_are_kept_under_a_stamped_directory_and_the_meta_files_are_the_backups():
    run = redis.redis_restore_settle(DIR + '/redis_20261207T023000Z.rdb.age', True, False, '/var/lib/redis/',
                                     '20261207T230000Z')
    assert run['kept'] == '/var/lib/redis/quantops-replaced-20261207T230000Z'
    assert run['staged'] == '/var/lib/redis/.quantops-restore.rdb'
    assert run['encrypted'] is True
    assert run['manifest'] == DIR + '/redis_20261207T023000Z.json'
    assert run['sha256_file'] == DIR + '/redis_20261207T023000Z.rdb.age.sha256'
    plain = redis.redis_restore_settle(DIR + '/redis_20261207T023000Z.rdb', True, False, '/var/lib/redis', '20261207T230000Z')
    assert plain['encrypted'] is False and plain['manifest'] == DIR + '/redis_20261207T023000Z.json'


@pytest.mark.parametrize('data_dir, stamp', [('/', '20261207T230000Z'), ('var/lib/redis', '20261207T230000Z'),
                                             ('/var/lib/../redis', '20261207T230000Z'), ('/var/lib/redis', 'now'),
                                             ('/var/lib/redis', '')])
def test_a_bad_data_directory_or_stamp_is_refused(data_dir, stamp):
    with pytest.raises(AnsibleFilterError):
        redis.redis_restore_settle(DIR + '/redis_20261207T023000Z.rdb', True, False, data_dir, stamp)


# --- incident ------------------------------------------------------------------------

def test_a_healthy_redis_has_every_check_ok_and_severity_p3():
    result = state()
    assert result['up'] is True and result['keys'] == 207
    assert [c['status'] for c in result['checks']] == ['ok'] * 5
    assert redis.redis_incident_severity(result['checks']) == 'P3'
    shown = dict((c['name'], c['display']) for c in result['checks'])
    assert shown['Redis memory'] == '50.0 MiB of maxmemory 256.0 MiB, policy allkeys-lru, 0 keys evicted since start'
    assert shown['Redis persistence'] == 'last RDB save 0.17 h ago (ok), 4 changes since; AOF on (write ok, rewrite ok)'
    assert shown['Disk of /var/lib/redis'] == '41 % used'


def test_redis_down_is_critical_and_p1_with_persistence_unknown():
    result = state(ping='', text='')
    assert result['up'] is False and result['keys'] == 0
    assert status(result, 'Redis ping') == 'critical' and status(result, 'Redis persistence') == 'unknown'
    assert result['checks'][0]['display'] == 'no answer'
    assert redis.redis_incident_severity(result['checks']) == 'P1'


def test_memory_warns_above_the_threshold_and_is_unknown_without_maxmemory():
    assert status(state(text=info(used_memory=250000000)), 'Redis memory') == 'warning'
    assert status(state(text=info(used_memory=250000000), memory_warning_pct=95), 'Redis memory') == 'ok'
    assert status(state(text=info(maxmemory=0)), 'Redis memory') == 'unknown'
    assert redis.redis_incident_severity(state(text=info(used_memory=250000000))['checks']) == 'P2'


def test_evictions_or_rejected_connections_warn():
    assert status(state(text=info(evicted_keys=3)), 'Redis evictions and rejected connections') == 'warning'
    assert status(state(text=info(rejected_connections=1)), 'Redis evictions and rejected connections') == 'warning'


def test_a_failed_save_is_critical_and_old_unsaved_changes_warn():
    assert status(state(text=info(rdb_last_bgsave_status='err')), 'Redis persistence') == 'critical'
    assert status(state(text=info(aof_last_write_status='err')), 'Redis persistence') == 'critical'
    assert status(state(text=info(aof_last_bgrewrite_status='err')), 'Redis persistence') == 'critical'
    old = info(rdb_last_save_time=int(NOW - 3 * 3600))
    assert status(state(text=old), 'Redis persistence') == 'warning'
    assert status(state(text=old, save_warning_hours=4), 'Redis persistence') == 'ok'
    assert status(state(text=info(rdb_last_save_time=int(NOW - 3 * 3600), rdb_changes_since_last_save=0)),
                  'Redis persistence') == 'ok'


def test_the_disk_warns_above_and_is_critical_from_the_thresholds_and_unknown_when_unread():
    assert status(state(df=[' Use%', ' 85%']), 'Disk of /var/lib/redis') == 'ok'
    assert status(state(df=[' Use%', ' 86%']), 'Disk of /var/lib/redis') == 'warning'
    assert status(state(df=[' Use%', ' 95%']), 'Disk of /var/lib/redis') == 'critical'
    assert status(state(df=[' Use%', ' 90%'], disk_critical_pct=90), 'Disk of /var/lib/redis') == 'critical'
    assert status(state(df=[]), 'Disk of /var/lib/redis') == 'unknown'


def test_severity_of_no_checks_is_p3():
    assert redis.redis_incident_severity([]) == 'P3'
    assert redis.redis_incident_severity([{'status': 'unknown'}]) == 'P3'
