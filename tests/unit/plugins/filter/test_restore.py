# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The quantops.platform restore filters (plugins/filter/restore.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter import restore as flt
from ansible_collections.quantops.platform.tests.unit.playbook import run_playbook

ROOT = '/var/lib/postgresql/quantops-restore'

STANZA = {
    'name': 'main',
    'status': {'code': 0, 'message': 'ok'},
    'archive': {'min': '000000010000000000000001', 'max': '000000020000000000000009'},
    'labels': ['20261123-120000F', '20261124-120000F_20261124-180000I'],
    'backups': [
        {'label': '20261123-120000F', 'stop_time': 1795435260, 'stop_time_iso': '2026-11-23T12:01:00+00:00'},
        {'label': '20261124-120000F_20261124-180000I', 'stop_time': 1795543260,
         'stop_time_iso': '2026-11-24T18:01:00+00:00'},
    ],
}
STANZA['oldest_backup'] = STANZA['backups'][0]
NOW = 1795600000


def test_every_filter_is_registered():
    names = flt.FilterModule().filters()
    assert sorted(names) == sorted(n for n in dir(flt) if n.startswith('restore_'))
    for name, func in names.items():
        assert func is getattr(flt, name)


# --- scratch root ---------------------------------------------------------------------------------

@pytest.mark.parametrize('root', [ROOT, ROOT + '/drill', ROOT + '/a.b/c-d@e+f'])
def test_scratch_roots_under_an_allowed_root_are_accepted(root):
    assert flt.restore_scratch_root_ok(root, [ROOT]) is True


@pytest.mark.parametrize('root', ['/', ROOT + '/../..', ROOT + '/.', 'var/lib/postgresql/quantops-restore',
                                  '/var/lib/postgresql', ROOT + '/', ROOT + '//x', ROOT + 'x', '', None, 5,
                                  ROOT + '/.hidden', ROOT + ' x'])
def test_scratch_roots_that_could_reach_other_data_are_refused(root):
    assert flt.restore_scratch_root_ok(root, [ROOT]) is False


@pytest.mark.parametrize('allowed', [[], '/srv', ['/'], ['/srv/../etc'], ['srv'], None, [ROOT, '/srv/']])
def test_allowed_roots_must_be_a_list_of_normalised_absolute_paths(allowed):
    assert flt.restore_scratch_root_ok(ROOT, allowed) is False


def test_a_second_allowed_root_is_honoured():
    assert flt.restore_scratch_root_ok('/srv/restore/x', [ROOT, '/srv/restore'])


# --- target time ----------------------------------------------------------------------------------

@pytest.mark.parametrize('text, epoch', [
    ('2026-11-23 12:30:00+00', 1795437000),
    ('2026-11-23T12:30:00Z', 1795437000),
    ('2026-11-23 12:30', 1795437000),
    ('2026-11-23 12:30:00 UTC', 1795437000),
    ('2026-11-23 14:30:00+02', 1795437000),
    ('2026-11-23 07:00:00.123456-05:30', 1795437000),
    ('2026-11-23 12:30:00+0000', 1795437000),
])
def test_target_times_convert_to_utc_epoch_seconds(text, epoch):
    assert flt.restore_target_epoch(text) == epoch


@pytest.mark.parametrize('text', ['yesterday', '2026-11-31 12:00:00', '2026-11-23 25:00:00', '2026-11-23', '', None,
                                  '2026-11-23 12:30:00 CET'])
def test_target_times_that_are_not_one_are_refused(text):
    with pytest.raises(AnsibleFilterError):
        flt.restore_target_epoch(text)


# --- which backup, which target -----------------------------------------------------------------

def test_no_target_restores_the_end_of_the_archive_from_the_newest_backup():
    choice = flt.restore_pgbackrest_choice(STANZA, now=NOW)
    assert choice['ok'] and choice['recovery_type'] == 'default'
    assert choice['label'] == '20261124-120000F_20261124-180000I'
    assert choice['target'] == '(end of the WAL archive 000000020000000000000009)'
    assert choice['source'] == 'newest backup before the target'


def test_a_label_alone_stops_at_that_backups_consistent_end():
    choice = flt.restore_pgbackrest_choice(STANZA, backup_set='20261123-120000F', now=NOW)
    assert choice['ok'] and choice['recovery_type'] == 'immediate' and choice['label'] == '20261123-120000F'
    assert choice['source'] == 'backup 20261123-120000F'


def test_a_time_after_the_oldest_backup_is_reachable():
    choice = flt.restore_pgbackrest_choice(STANZA, target_time='2026-11-23 12:30:00+00', now=NOW)
    assert choice['ok'] and choice['recovery_type'] == 'time' and choice['target'] == '2026-11-23 12:30:00+00'
    assert choice['earliest_epoch'] == 1795435260


def test_a_time_before_the_oldest_backup_cannot_be_reached():
    choice = flt.restore_pgbackrest_choice(STANZA, target_time='2001-01-01 00:00:00+00', now=NOW)
    assert not choice['ok']
    assert "cannot be reached" in choice['message'] and 'oldest backup' in choice['message']
    assert '2026-11-23T12:01:00+00:00' in choice['message'] and '000000020000000000000009' in choice['message']


def test_a_time_before_the_end_of_the_chosen_label_cannot_be_reached():
    choice = flt.restore_pgbackrest_choice(STANZA, backup_set='20261124-120000F_20261124-180000I',
                                           target_time='2026-11-24 12:00:00+00', now=NOW)
    assert not choice['ok'] and 'the backup 20261124-120000F_20261124-180000I' in choice['message']


def test_a_time_in_the_future_cannot_be_reached():
    assert not flt.restore_pgbackrest_choice(STANZA, target_time='2030-01-01 00:00:00+00', now=NOW)['ok']


def test_a_malformed_time_is_refused_with_its_form():
    choice = flt.restore_pgbackrest_choice(STANZA, target_time='noon', now=NOW)
    assert not choice['ok'] and "must look like '2026-11-23 12:30:00+00'" in choice['message']


def test_an_unknown_label_is_refused_with_the_existing_ones():
    choice = flt.restore_pgbackrest_choice(STANZA, backup_set='20000101-000000F', now=NOW)
    assert not choice['ok']
    assert "is not a backup of stanza 'main'" in choice['message'] and '20261123-120000F' in choice['message']


def test_a_stanza_without_backups_is_refused_with_its_status():
    empty = {'name': 'main', 'status': {'code': 2, 'message': 'no valid backups'}, 'labels': [], 'backups': [],
             'oldest_backup': None}
    choice = flt.restore_pgbackrest_choice(empty, now=NOW)
    assert not choice['ok'] and 'no usable backup' in choice['message'] and 'status 2' in choice['message']


def test_a_target_name_recovers_to_the_restore_point():
    choice = flt.restore_pgbackrest_choice(STANZA, target_name='qp_drill_1', now=NOW)
    assert choice['ok'] and choice['recovery_type'] == 'name' and choice['target'] == 'qp_drill_1'


# --- the command ----------------------------------------------------------------------------------

def test_scratch_restore_writes_beside_production_and_never_archives():
    assert flt.restore_pgbackrest_argv('main', 'scratch', ROOT + '/main-5433', target_time='2026-11-23 12:30:00+00') == [
        'pgbackrest', '--stanza=main', '--pg1-path=' + ROOT + '/main-5433', '--archive-mode=off',
        '--type=time', '--target=2026-11-23 12:30:00+00', '--target-action=promote', 'restore']


def test_in_place_restore_of_a_label_from_repo2():
    assert flt.restore_pgbackrest_argv('main', 'in_place', backup_set='20261123-120000F', repo=2) == [
        'pgbackrest', '--stanza=main', '--repo=2', '--set=20261123-120000F', '--type=immediate',
        '--target-action=promote', 'restore']


def test_a_restore_point_and_the_latest_state():
    assert flt.restore_pgbackrest_argv('main', 'in_place', target_name='qp_drill_1')[2:] == [
        '--type=name', '--target=qp_drill_1', '--target-action=promote', 'restore']
    assert flt.restore_pgbackrest_argv('main', 'in_place') == ['pgbackrest', '--stanza=main', 'restore']


@pytest.mark.parametrize('kwargs', [
    {'stanza': 'ma in'}, {'into': 'elsewhere'}, {'scratch_dir': 'relative'}, {'repo': 's3'},
    {'target_time': '2026-11-23 12:30:00', 'target_name': 'x'},
])
def test_commands_that_must_not_run_are_refused(kwargs):
    args = dict({'stanza': 'main', 'into': 'scratch', 'scratch_dir': ROOT + '/main-5433'}, **kwargs)
    with pytest.raises(AnsibleFilterError):
        flt.restore_pgbackrest_argv(**args)


# --- services -------------------------------------------------------------------------------------

SERVICES = [{'name': n, 'unit': 'trading-%s.service' % n} for n in
            ('market-data', 'risk-manager', 'execution-engine', 'signal-bridge')]


def test_services_stop_in_seed_001_order_and_only_where_they_exist():
    present = ['trading-market-data.service', 'trading-signal-bridge.service', 'trading-execution-engine.service',
               'trading-risk-manager.service', 'ssh.service']
    assert flt.restore_services_to_stop(SERVICES, present) == [
        'trading-signal-bridge', 'trading-execution-engine', 'trading-risk-manager', 'trading-market-data']
    assert flt.restore_services_to_stop(SERVICES, {'trading-risk-manager.service': {}}) == ['trading-risk-manager']
    assert flt.restore_services_to_stop(SERVICES, []) == []
    assert flt.restore_services_to_stop(None, present) == []


@pytest.mark.parametrize('bad', ['trading', [{'name': 'x'}], [1]])
def test_a_service_list_without_units_is_refused(bad):
    with pytest.raises(AnsibleFilterError):
        flt.restore_services_to_stop(bad, [])


# --- drill space ----------------------------------------------------------------------------------

def test_drill_fits_when_free_space_covers_factor_and_reserve():
    verdict = flt.restore_drill_space(1073741824, 2000000000, 1.2, 536870912)
    assert verdict['fits'] and verdict['needed_bytes'] == int(1073741824 * 1.2) + 536870912
    assert verdict['needed_mib'] == 1740.8 and verdict['source_mib'] == 1024.0


def test_drill_is_refused_when_one_byte_is_missing():
    needed = int(1000 * 1.5) + 10
    assert flt.restore_drill_space(1000, needed, 1.5, 10)['fits']
    assert not flt.restore_drill_space(1000, needed - 1, 1.5, 10)['fits']
    assert not flt.restore_drill_space('1000', '1', '1.2', '1000000000000000')['fits']


@pytest.mark.parametrize('args', [('x', 1, 1.2, 0), (1, 1, 0.5, 0), (-1, 1, 1.2, 0), (1, 1, 1.2, -5)])
def test_drill_space_refuses_nonsense(args):
    with pytest.raises(AnsibleFilterError):
        flt.restore_drill_space(*args)


# --- table stats ----------------------------------------------------------------------------------

def _stats(*tables):
    return {'quant_platform': [dict(zip(('tbl', 'rows', 'md5'), t)) for t in tables]}


def test_equal_stats_match():
    a = _stats(('public.ohlcv_data', 10, 'aa'), ('public.x', 0, 'bb'))
    assert flt.restore_table_stats_diff(a, _stats(('public.ohlcv_data', '10', 'aa'), ('public.x', 0, 'bb'))) == {
        'match': True, 'source_only': [], 'restored_only': []}


def test_a_changed_checksum_a_missing_and_an_extra_table_are_named():
    diff = flt.restore_table_stats_diff(_stats(('public.a', 10, 'aa'), ('public.b', 5, 'bb')),
                                        _stats(('public.a', 10, 'ax'), ('public.c', 1, 'cc')))
    assert not diff['match']
    assert [(r['tbl'], r['md5']) for r in diff['source_only']] == [('public.a', 'aa'), ('public.b', 'bb')]
    assert [(r['tbl'], r['md5']) for r in diff['restored_only']] == [('public.a', 'ax'), ('public.c', 'cc')]


@pytest.mark.parametrize('bad', [[['public.a', 1]], {'db': 'public.a'}, {'db': [1]}])
def test_stats_of_another_shape_are_refused(bad):
    with pytest.raises(AnsibleFilterError):
        flt.restore_table_stats_diff(bad, {})


# --- dumps and clean-up ---------------------------------------------------------------------------

def test_the_newest_dump_with_a_checksum_is_chosen():
    d = '/var/backups/quantops/pg_dump/'
    files = [{'path': d + 'quant_platform_20261120T020000Z.dump', 'mtime': 10},
             {'path': d + 'quant_platform_20261120T020000Z.dump.sha256', 'mtime': 10},
             {'path': d + 'quant_platform_20261121T020000Z.dump.age', 'mtime': 20},
             {'path': d + 'quant_platform_20261121T020000Z.dump.age.sha256', 'mtime': 20},
             {'path': d + 'quant_platform_20261122T020000Z.dump', 'mtime': 30},
             {'path': d + 'other_20261123T020000Z.dump', 'mtime': 40},
             {'path': d + 'other_20261123T020000Z.dump.sha256', 'mtime': 40}]
    assert flt.restore_newest_verified_dump(files, 'quant_platform') == d + 'quant_platform_20261121T020000Z.dump.age'
    assert flt.restore_newest_verified_dump(files[4:5], 'quant_platform') == ''
    assert flt.restore_newest_verified_dump([], 'quant_platform') == ''


def test_the_cleanup_keeps_the_copy_an_unfinished_restore_names():
    scratch, rollback = [ROOT + '/main-5433'], ['/d.rollback-1', '/d.rollback-2']
    assert flt.restore_cleanup_paths(scratch, rollback) == scratch + rollback
    assert flt.restore_cleanup_paths(scratch, rollback, True, '/d.rollback-2\n') == scratch + ['/d.rollback-1']
    assert flt.restore_cleanup_paths(scratch, rollback, True, '') == scratch


# --- in real Jinja ------------------------------------------------------------------------------

def test_the_filters_in_a_playbook(tmp_path):
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.assert:
        that:
          - root | quantops.platform.restore_scratch_root_ok([root])
          - not ('/' | quantops.platform.restore_scratch_root_ok([root]))
          - (stanza | quantops.platform.restore_pgbackrest_choice(target_time=t, now=now)).ok
          - ('main' | quantops.platform.restore_pgbackrest_argv('in_place', repo='2'))[2] == '--repo=2'
          - (1000 | quantops.platform.restore_drill_space(5000, 1.2, 10)).fits
          - t | quantops.platform.restore_target_epoch == 1795437000
"""
    run = run_playbook(tmp_path, play, {'root': ROOT, 'stanza': STANZA, 't': '2026-11-23 12:30:00+00', 'now': NOW})
    assert run.returncode == 0, run.stdout + run.stderr
