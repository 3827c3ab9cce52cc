# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup runbooks refuse bad input before anything runs (playbooks/backup, roles restore, drill, backup).

Each run imports the collection's playbook by FQCN on localhost; every refusal here happens in the
controller (assert, argument specs), before a task touches a host.  What the runbooks do on real
servers is the Molecule scenario backup_restore's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.quantops.platform.tests.unit.playbook import run_playbook

RESTORE = "- name: Restore\n  ansible.builtin.import_playbook: quantops.platform.backup.restore\n"
BACKUP = "- name: Backup now\n  ansible.builtin.import_playbook: quantops.platform.backup.backup_now\n"


def refused(tmp_path, playbook, extra_vars):
    run = run_playbook(tmp_path, playbook, dict({'restore_hosts': 'localhost', 'backup_repo_group': 'localhost'},
                                                **extra_vars))
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert 'changed=0' in output and 'changed=1' not in output, output
    return ' '.join(output.split())


@pytest.mark.parametrize('cleanup', [False, True])
@pytest.mark.parametrize('root', ['/', '/var/lib/postgresql/quantops-restore/../..', '/var/lib/postgresql'])
def test_a_scratch_root_outside_the_allowed_roots_is_refused(tmp_path, root, cleanup):
    out = refused(tmp_path, RESTORE, {'restore_scratch_root': root, 'restore_cleanup_only': cleanup})
    assert 'restore_scratch_root must be an absolute, normalised path' in out and 'Nothing was changed' in out


def test_a_source_database_that_is_not_an_identifier_is_refused_before_the_dump_cleanup(tmp_path):
    out = refused(tmp_path, RESTORE, {'restore_source': 'dump', 'restore_database_source': 'quant_platform|',
                                      'restore_cleanup_only': True})
    assert 'restore_database_source must be a plain lower-case database name' in out


def test_an_unknown_source_is_refused_by_the_argument_spec(tmp_path):
    out = refused(tmp_path, RESTORE, {'restore_source': 'tape'})
    assert 'restore_source must be one of: pgbackrest, dump' in out


def test_in_place_without_confirmation_is_refused(tmp_path):
    out = refused(tmp_path, RESTORE, {'restore_into': 'in_place'})
    assert 'add -e restore_confirm=true' in out and 'Nothing was changed' in out


@pytest.mark.parametrize('extra, message', [
    ({'restore_repo': 's3'}, 'restore_repo must be a pgBackRest repository number'),
    ({'restore_target_time': '2026-11-23 12:30:00+00', 'restore_target_name': 'p1'}, 'cannot be combined'),
    ({'restore_scratch_port': 5432}, 'must differ from production'),
])
def test_bad_pgbackrest_options_are_refused_before_the_catalogue_is_read(tmp_path, extra, message):
    out = refused(tmp_path, RESTORE, extra)
    assert message in out


def test_bad_dump_options_are_refused(tmp_path):
    out = refused(tmp_path, RESTORE, {'restore_source': 'dump', 'restore_tables': ['public.x; drop']})
    assert 'restore_tables must be a list of [schema.]table names' in out


def test_an_unknown_backup_type_is_refused(tmp_path):
    out = refused(tmp_path, BACKUP, {'backup_type': 'weekly'})
    assert 'backup_type must be one of: full, diff, incr' in out


def test_an_inventory_sets_the_runbook_settings(tmp_path, monkeypatch):
    """Settings are role defaults, not play vars: the inventory's group_vars outrank them."""
    (tmp_path / 'group_vars').mkdir()
    (tmp_path / 'group_vars' / 'all.yml').write_text('restore_scratch_allowed_roots: [/srv/restore]\n')
    (tmp_path / 'hosts.ini').write_text('localhost ansible_connection=local\n')
    extra = {'restore_scratch_root': '/srv/restore/x', 'restore_repo': 's3'}
    # Without the inventory's allowed root the scratch root is refused first ...
    assert 'restore_scratch_root must be' in refused(tmp_path, RESTORE, extra)
    # ... with it the request gets past that check and stops at the next refusal.
    monkeypatch.setenv('ANSIBLE_INVENTORY', str(tmp_path / 'hosts.ini'))
    out = refused(tmp_path, RESTORE, extra)
    assert 'restore_scratch_root must be' not in out and 'restore_repo must be a pgBackRest repository number' in out
