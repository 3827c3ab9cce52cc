# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight entry points: declared for every role that has one, and they apply the argument spec.

site.yml's first play runs ``include_role: {tasks_from: preflight}`` for every role. Ansible validates
an entry point's argument spec only when ``meta/argument_specs.yml`` declares that entry point, so a
role without one would silently skip its type checks there. The run tests below use the real
``ansible-playbook`` on localhost (nothing is mocked): a misspelled key in a list of dicts is refused
by the suboptions, with a message that names the key, before any task of the role runs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pathlib

import pytest
import yaml

from ansible_collections.quantops.platform.tests.unit.playbook import run_playbook

ROLES = pathlib.Path(__file__).resolve().parents[3] / 'roles'
WITH_PREFLIGHT = sorted(p.parent.parent.name for p in ROLES.glob('*/tasks/preflight.yml'))


def specs(role):
    return yaml.safe_load((ROLES / role / 'meta' / 'argument_specs.yml').read_text())['argument_specs']


@pytest.mark.parametrize('role', WITH_PREFLIGHT)
def test_preflight_is_a_declared_entry_point_with_the_options_of_main(role):
    entry_points = specs(role)
    assert 'preflight' in entry_points, f'{role}: tasks/preflight.yml has no preflight entry point'
    assert entry_points['preflight']['options'] == entry_points['main']['options']


@pytest.mark.parametrize('role', WITH_PREFLIGHT)
def test_preflight_runs_no_dependency(role):
    """include_role with tasks_from runs the role's meta dependencies first: a dependency of a role
    with a preflight entry point would change the host in site.yml's first play, before every input
    is checked (backup_metrics did, through pg_dump_backup, redis_backup and pgbackrest)."""
    meta = yaml.safe_load((ROLES / role / 'meta' / 'main.yml').read_text())
    assert not meta.get('dependencies'), f'{role}: include the role from tasks/main.yml after its checks'


SELF_LOOKUP = "lookup('ansible.builtin.file', role_path ~ '/meta/argument_specs.yml')"


def test_no_preflight_looks_up_its_own_argument_specs():
    for path in ROLES.glob('*/tasks/*.yml'):
        assert SELF_LOOKUP not in path.read_text(), f'{path}: let Ansible apply the entry point spec'


PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Preflight
      ansible.builtin.include_role:
        name: quantops.platform.{role}
        tasks_from: preflight
"""


@pytest.mark.parametrize('role, extra, words', [
    ('postgresql', {'postgresql_users': [{'name': 'quant_app', 'pasword': 'x' * 16}]}, ['pasword', 'postgresql_users']),
    ('postgresql', {'postgresql_databases': [{'name': 'quant_platform', 'extension': ['pgcrypto']}]},
     ['extension', 'postgresql_databases']),
    ('alertmanager', {'alertmanager_web_auth_required': False,
                      'alertmanager_receivers': [{'name': 'pager', 'pagerduty_key': 'k' * 32}]},
     ['pagerduty_key', 'alertmanager_receivers']),
    ('alertmanager', {'alertmanager_web_auth_required': False,
                      'alertmanager_routes': [{'receiver': 'default', 'matcher': ['severity="critical"']}]},
     ['matcher', 'alertmanager_routes']),
])
def test_a_misspelled_key_is_refused_by_the_preflight(tmp_path, role, extra, words):
    result = run_playbook(tmp_path, PLAY.format(role=role), dict(extra, postgresql_tuning_enabled=False))
    assert result.returncode != 0, result.stdout
    assert 'Validating arguments against arg spec' in result.stdout
    for word in words:
        assert word in result.stdout, (word, result.stdout[-3000:])
    assert 'k' * 32 not in result.stdout


def test_the_receiver_secret_is_not_printed_when_another_field_is_wrong(tmp_path):
    extra = {'alertmanager_web_auth_required': False,
             'alertmanager_receivers': [{'name': 'pager', 'pagerduty_routing_key': 's3cr3t-routing-key-0123456789',
                                         'send_resolved': 'sometimes'}]}
    result = run_playbook(tmp_path, PLAY.format(role='alertmanager'), extra)
    assert result.returncode != 0
    assert 'send_resolved' in result.stdout
    assert 's3cr3t-routing-key-0123456789' not in result.stdout
