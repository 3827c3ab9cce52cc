# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg_hba tests and filter, and the postgresql role's pg_hba preflight.

The plugins are checked value by value; then real ansible-playbook runs of the
role's preflight.yml (bad entries refused with a message naming the entry) and
of its pg_hba.conf template (what a good entry renders to).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible.errors import AnsibleFilterError

import ansible_collections.quantops.platform as collection
from ansible_collections.quantops.platform.tests.unit.playbook import run_playbook
from ansible_collections.quantops.platform.plugins.filter.pg_hba import FilterModule, pg_hba_cidr
from ansible_collections.quantops.platform.plugins.test.pg_hba import (
    TestModule as PgHbaTests,
    pg_hba_address,
    pg_hba_field,
    pg_hba_loopback,
)

ROLE = os.path.join(list(collection.__path__)[0], 'roles', 'postgresql')


@pytest.mark.parametrize('value', ['10.0.0.0/8', '192.168.1.0/24', '192.0.2.10', '192.0.2.10/32',
                                   '0.0.0.0/0', '::1/128', 'fd00::/64', '2001:db8::1', '127.0.0.1/32'])
def test_valid_addresses(value):
    assert pg_hba_address(value)


@pytest.mark.parametrize('value', ['10.0.0.0/8\nhost all all 0.0.0.0/0 trust', '10.0.0.0/8 trust',
                                   ' 10.0.0.0/8', '10.0.0.0/33', '10.1.2.3/8', 'db.example.com', 'all',
                                   'samenet', '', '"10.0.0.0/8"', "10.0.0.0/8'", '300.1.1.1', None, 8,
                                   ['10.0.0.0/8'], '10.0.0.0/8#x'])
def test_invalid_addresses(value):
    assert not pg_hba_address(value)


@pytest.mark.parametrize('value,expected', [
    ('127.0.0.1/32', True), ('127.0.0.0/8', True), ('127.0.0.1', True), ('::1/128', True), ('::1', True),
    ('10.0.0.0/8', False), ('0.0.0.0/0', False), ('::/0', False), ('126.0.0.0/7', False),
    ('127.0.0.1\n', False), ('localhost', False)])
def test_loopback(value, expected):
    assert pg_hba_loopback(value) is expected


@pytest.mark.parametrize('value,expected', [
    ('quant_platform', True), ('quant_platform,reporting', True), ('+readers', True), ('all', True),
    ('scram-sha-256', True), ('report"ing', False), ("report'ing", False), ('rep orting', False),
    ('reporting\n', False), ('a\tb', False), ('', False), ('x#y', False), ('a\\b', False), (None, False),
    (1, False)])
def test_field(value, expected):
    assert pg_hba_field(value) is expected


def test_cidr_filter_normalises_and_refuses():
    assert pg_hba_cidr('192.0.2.10') == '192.0.2.10/32'
    assert pg_hba_cidr('2001:db8::1') == '2001:db8::1/128'
    assert pg_hba_cidr('10.0.0.0/8') == '10.0.0.0/8'
    with pytest.raises(AnsibleFilterError, match='not an IPv4/IPv6 network'):
        pg_hba_cidr('10.0.0.0/8\nhost all all 0.0.0.0/0 trust')
    with pytest.raises(AnsibleFilterError):
        pg_hba_cidr('10.1.2.3/8')


def test_plugins_are_registered():
    assert set(PgHbaTests().tests()) == {'pg_hba_address', 'pg_hba_loopback', 'pg_hba_field'}
    assert set(FilterModule().filters()) == {'pg_hba_cidr'}


PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Preflight of the postgresql role
      ansible.builtin.include_role:
        name: quantops.platform.postgresql
        tasks_from: preflight
      vars:
        postgresql_tuning_enabled: false
    - name: Render pg_hba.conf
      ansible.builtin.template:
        src: "{{ role_dir }}/templates/pg_hba.conf.j2"
        dest: "{{ out }}"
        mode: "0600"
"""


def _run(tmp_path, hba, **extra):
    extra_vars = dict(extra, postgresql_hba_entries=hba, out=str(tmp_path / 'pg_hba.conf'), role_dir=ROLE)
    result = run_playbook(tmp_path, PLAYBOOK, extra_vars)
    return result, result.stdout + result.stderr


def test_good_entries_render_hostssl_and_cidr(tmp_path):
    result, out = _run(tmp_path, [
        {'database': 'quant_platform', 'user': 'reporting', 'address': '10.0.0.0/8'},
        {'database': 'quant_platform', 'user': 'quant_app', 'address': '192.0.2.10'},
        {'type': 'host', 'database': 'all', 'user': 'all', 'address': '127.0.0.0/8'},
        {'type': 'hostnossl', 'database': 'all', 'user': 'all', 'address': '0.0.0.0/0', 'method': 'reject'},
        {'type': 'host', 'database': 'legacy', 'user': 'legacy_app', 'address': '10.9.0.0/16',
         'allow_plaintext': True}])
    assert result.returncode == 0, out[-3000:]
    lines = [line.split() for line in (tmp_path / 'pg_hba.conf').read_text().splitlines()
             if line and not line.startswith('#')]
    assert ['hostssl', 'quant_platform', 'reporting', '10.0.0.0/8', 'scram-sha-256'] in lines
    assert ['hostssl', 'quant_platform', 'quant_app', '192.0.2.10/32', 'scram-sha-256'] in lines
    assert ['host', 'all', 'all', '127.0.0.0/8', 'scram-sha-256'] in lines
    assert ['hostnossl', 'all', 'all', '0.0.0.0/0', 'reject'] in lines
    assert ['host', 'legacy', 'legacy_app', '10.9.0.0/16', 'scram-sha-256'] in lines
    # Only loopback and the explicitly allowed entry are plain 'host' lines.
    assert [line for line in lines if line[0] == 'host'] == [
        ['host', 'all', 'all', '127.0.0.1/32', 'scram-sha-256'], ['host', 'all', 'all', '::1/128', 'scram-sha-256'],
        ['host', 'all', 'all', '127.0.0.0/8', 'scram-sha-256'], ['host', 'legacy', 'legacy_app', '10.9.0.0/16', 'scram-sha-256']]


def test_role_switch_allows_plaintext(tmp_path):
    result, out = _run(tmp_path, [{'type': 'host', 'database': 'all', 'user': 'app', 'address': '10.0.0.0/8'}],
                       postgresql_hba_allow_plaintext=True)
    assert result.returncode == 0, out[-3000:]


@pytest.mark.parametrize('entry,expected', [
    ({'database': 'all', 'user': 'all', 'address': '10.0.0.0/8\nhost all all 0.0.0.0/0 trust'},
     'postgresql_hba_entries[0] (user "all"): address must each be one word'),
    ({'database': 'all', 'user': 'rep"orting', 'address': '10.0.0.0/8'},
     'postgresql_hba_entries[0] (user "rep\\"orting"): user must each be one word'),
    ({'database': 'all', 'user': 'all', 'address': 'db.example.com'},
     'needs an address that is an IP network in CIDR form'),
    ({'database': 'all', 'user': 'all'}, 'needs an address that is an IP network in CIDR form'),
    ({'database': 'all', 'user': 'all', 'address': '10.0.0.0/8', 'method': 'md5'},
     'trust, password and md5 are refused'),
    ({'database': 'all', 'user': 'all', 'address': '10.0.0.0/8', 'method': 'peer'},
     'and peer for type local'),
    ({'type': 'host', 'database': 'all', 'user': 'all', 'address': '10.0.0.0/8'},
     'lets a client log in over plaintext TCP from 10.0.0.0/8, which is not loopback'),
    ({'type': 'hostnossl', 'database': 'all', 'user': 'all', 'address': '0.0.0.0/0'},
     'lets a client log in over plaintext TCP from 0.0.0.0/0'),
    ({'database': 'all', 'user': 'all', 'adress': '10.0.0.0/8'}, 'adress'),
    ({'type': 'hostgssenc', 'database': 'all', 'user': 'all', 'address': '10.0.0.0/8'}, 'hostgssenc'),
])
def test_bad_entries_are_refused(tmp_path, entry, expected):
    result, out = _run(tmp_path, [entry])
    assert result.returncode != 0, out[-3000:]
    assert expected in out, out[-3000:]
    assert not (tmp_path / 'pg_hba.conf').exists()
