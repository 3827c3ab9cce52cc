# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The quantops.platform.pg_tune and quantops.platform.pg_memory_bytes filters.

The formulas themselves are checked value by value in
tests/unit/plugins/module_utils/test_pgtune.py; here: the filter's input
handling, its errors, and one real ansible-playbook run that resolves the
filters by FQCN.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter.pg_tune import (
    FilterModule,
    pg_memory_bytes,
    pg_tune,
)
from ansible_collections.quantops.platform.plugins.module_utils.pgtune import compute_tuning
from ansible_collections.quantops.platform.tests.unit.playbook import run_playbook

GIB = 1024 ** 3
MIB = 1024 ** 2

LAB = {'memory_bytes': 2 * GIB, 'cpus': 2, 'disk_type': 'ssd', 'profile': 'mixed',
       'method': 'timescaledb', 'pg_version': 17, 'timescaledb': True}


def test_filters_are_registered():
    filters = FilterModule().filters()
    assert filters['pg_tune'] is pg_tune
    assert filters['pg_memory_bytes'] is pg_memory_bytes


def test_pg_tune_lab_values():
    conf = pg_tune(LAB)
    # Worked out in test_pgtune.py test_timescaledb_lab_2gib_2cpus.
    assert conf['shared_buffers'] == '512MB'
    assert conf['effective_cache_size'] == '1536MB'
    assert conf['maintenance_work_mem'] == '256MB'
    assert conf['work_mem'] == '32MB'                # 2 * 400 MB / 25 / round(1)
    assert conf['max_worker_processes'] == '21'      # 3 + 16 + 2
    assert conf['timescaledb.max_background_workers'] == '16'
    assert conf['max_connections'] == '25'


def test_pg_tune_passes_every_key_through():
    params = dict(LAB, max_connections=100, wal_disk_bytes=10 * GIB,
                  timescaledb_max_background_workers=24)
    conf = pg_tune(params)
    assert conf == compute_tuning(**params)
    assert conf['work_mem'] == '8MB'                 # 2 * (400 MB / 100) / 1
    assert conf['max_wal_size'] == '6GB'             # 60 % of 10 GiB = 6144 MB
    assert conf['max_worker_processes'] == '29'      # 3 + 24 + 2


def test_pg_tune_defaults_and_none_values():
    # Only memory and CPUs are required; None means "use the default".
    conf = pg_tune({'memory_bytes': 8 * GIB, 'cpus': 8, 'max_connections': None,
                    'wal_disk_bytes': None})
    assert conf == compute_tuning(8 * GIB, 8)
    assert conf['max_connections'] == '100'


def test_pg_tune_pgtune_method():
    conf = pg_tune({'memory_bytes': 16 * GIB, 'cpus': 4, 'method': 'pgtune', 'profile': 'mixed',
                    'timescaledb': False})
    assert conf['maintenance_work_mem'] == '1GB'     # 16 GiB / 16
    assert 'timescaledb.max_background_workers' not in conf


@pytest.mark.parametrize('spelling, expected', [('yes', True), ('true', True), ('False', False),
                                                ('no', False), (1, True), (0, False)])
def test_pg_tune_accepts_ansible_booleans(spelling, expected):
    conf = pg_tune(dict(LAB, timescaledb=spelling))
    assert ('timescaledb.max_background_workers' in conf) is expected


@pytest.mark.parametrize('changes, fragments', [
    ({'cpus': 0}, ['pg_tune: cpus=0', 'at least 1']),
    ({'profile': 'analytics'}, ['pg_tune: profile=', 'web, oltp, dw, desktop, mixed']),
    ({'disk_type': 'floppy'}, ['disk_type', 'ssd, hdd, san, nvme']),
    ({'method': 'magic'}, ['method', 'timescaledb, pgtune']),
    ({'memory_bytes': 100 * MIB}, ['memory_bytes', '256 MiB']),
    ({'memory_bytes': '2147483648'}, ['memory_bytes', 'int']),
    ({'max_connections': 0}, ['max_connections']),
    ({'pg_version': 11}, ['pg_version', '12 to 18']),
    ({'timescaledb': 'maybe'}, ['timescaledb', 'boolean']),
    ({'timescaledb_max_background_workers': 4}, ['timescaledb_max_background_workers', '16']),
    ({'shared_buffers': '1GB'}, ['unknown key', 'shared_buffers']),
    ({'memory_bytes': None}, ['memory_bytes is required']),
])
def test_pg_tune_errors_name_the_key(changes, fragments):
    with pytest.raises(AnsibleFilterError) as err:
        pg_tune(dict(LAB, **changes))
    for fragment in fragments:
        assert fragment in str(err.value)


def test_pg_tune_needs_a_dict():
    with pytest.raises(AnsibleFilterError, match='expects a dict'):
        pg_tune([2 * GIB, 2])


@pytest.mark.parametrize('value, args, expected', [
    ('4GB', (), 4 * GIB),
    ('64MB', (), 64 * MIB),
    ('8kB', (), 8192),
    ('128', (), 128),
    ('131072', ('8kB',), GIB),                       # shared_buffers in 8 kB blocks
    ('1536MB', (), 1536 * MIB),
])
def test_pg_memory_bytes(value, args, expected):
    assert pg_memory_bytes(value, *args) == expected


def test_pg_memory_bytes_compares_units():
    # The point of the filter: SHOW may answer in another unit than the tuning chose.
    assert pg_memory_bytes('1536MB') == pg_memory_bytes('1572864kB') == 3 * GIB // 2


@pytest.mark.parametrize('value, args, fragment', [
    ('4gb', (), "not in PostgreSQL's format"),
    ('1.5GB', (), "not in PostgreSQL's format"),
    (None, (), 'NoneType'),
    ('1', ('KB',), 'default_unit'),
])
def test_pg_memory_bytes_errors(value, args, fragment):
    with pytest.raises(AnsibleFilterError) as err:
        pg_memory_bytes(value, *args)
    assert str(err.value).startswith('pg_memory_bytes: ')
    assert fragment in str(err.value)


# ---------------------------------------------------------------------------
# Through Ansible itself: FQCN resolution, templating of the input dict.
# ---------------------------------------------------------------------------

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Compute
      ansible.builtin.set_fact:
        tuning: >-
          {{ {'memory_bytes': mem_mb | int * 1048576, 'cpus': 2, 'disk_type': 'ssd',
              'max_connections': none, 'profile': 'mixed', 'method': 'timescaledb',
              'pg_version': 17, 'timescaledb': true} | quantops.platform.pg_tune }}
    - name: Write
      ansible.builtin.copy:
        dest: "{{ out }}"
        content: >-
          {{ {'tuning': tuning,
              'shared_buffers_bytes': tuning.shared_buffers | quantops.platform.pg_memory_bytes}
             | to_json }}
        mode: "0600"
"""


def _run_playbook(tmp_path, extra_vars):
    return run_playbook(tmp_path, PLAYBOOK, extra_vars)


def test_filters_work_in_a_playbook(tmp_path):
    out = tmp_path / 'out.json'
    result = _run_playbook(tmp_path, {'mem_mb': 2048, 'out': str(out)})
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    assert data['tuning'] == compute_tuning(2 * GIB, 2)
    assert data['tuning']['work_mem'] == '32MB'
    assert data['shared_buffers_bytes'] == 512 * MIB


def test_filter_error_reaches_the_playbook(tmp_path):
    result = _run_playbook(tmp_path, {'mem_mb': 100, 'out': str(tmp_path / 'out.json')})
    assert result.returncode != 0
    assert 'pg_tune: memory_bytes=104857600 is below 256 MiB' in result.stdout + result.stderr
