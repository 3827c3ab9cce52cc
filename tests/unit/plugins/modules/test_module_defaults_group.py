# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""meta/runtime.yml's action group ``postgresql``: one ``module_defaults`` block for both collections.

A real ansible-playbook run on localhost sets only ``module_defaults: group/quantops.platform.postgresql``
(login_host 127.0.0.1, a closed login_port, login_user, login_db, connect_params) and then calls
quantops.platform.postgresql_health_info and community.postgresql.postgresql_ping without any
connection option.  Nothing listens on that port, so both fail to connect, and their error messages
name the host and port they tried: that they are the group's (not the defaults 5432 and the unix
socket) proves that the group reaches a module of this collection and, through
``metadata: extend_group: [community.postgresql.all]``, a module of community.postgresql.  The
quantops message also names the user and the database, so those came from the group too.
No PostgreSQL server is needed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import socket

import pytest
import yaml

from ansible_collections.quantops.platform.tests.unit.playbook import run_playbook

PLAY = '''
- name: One module_defaults group for both collections
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/quantops.platform.postgresql:
      login_host: 127.0.0.1
      login_port: "{{ closed_port }}"
      login_user: qp_group_user
      login_db: qp_group_db
      connect_params:
        connect_timeout: 3
  tasks:
    - name: A quantops.platform module with no connection option of its own
      quantops.platform.postgresql_health_info:
        checks: [database_size]
      register: quantops_result
      ignore_errors: true

    - name: A community.postgresql module with no connection option of its own
      community.postgresql.postgresql_ping:
      register: community_result

    - name: Keep both results
      ansible.builtin.copy:
        content: "{{ {'quantops': quantops_result, 'community': community_result} | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
'''


def closed_port():
    """A TCP port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_runtime_group_lists_every_postgresql_module_and_extends_community():
    import ansible_collections.quantops.platform as collection
    root = list(collection.__path__)[0]
    with open(os.path.join(root, 'meta', 'runtime.yml')) as handle:
        runtime = yaml.safe_load(handle)
    group = runtime['action_groups']['postgresql']
    assert group[0] == {'metadata': {'extend_group': ['community.postgresql.all']}}
    modules = []
    for name in os.listdir(os.path.join(root, 'plugins', 'modules')):
        if name.endswith('.py'):
            with open(os.path.join(root, 'plugins', 'modules', name)) as handle:
                if '  - quantops.platform.postgres\n' in handle.read():
                    modules.append(name[:-3])
    assert sorted(group[1:]) == sorted(modules) and len(modules) == 8     # every module with the connection options, and only those


def test_group_defaults_reach_both_collections(tmp_path):
    pytest.importorskip('ansible_collections.community.postgresql')
    port = closed_port()
    out = tmp_path / 'results.json'
    proc = run_playbook(tmp_path, PLAY, {'closed_port': port, 'out': str(out)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    quantops, community = results['quantops'], results['community']
    assert quantops['failed'] is True
    assert ('Unable to connect to PostgreSQL (host=127.0.0.1 port=%d dbname=qp_group_db user=qp_group_user)'
            % port) in quantops['msg']
    assert community['is_available'] is False
    assert 'connection to server at "127.0.0.1", port %d failed' % port in community['conn_err_msg']


ROLE_PLAY = '''
- name: A role entry point whose block sets the connection with module_defaults
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_become: false          # the role's tasks become postgres; not needed to see where they connect
  tasks:
    - name: The role's entry point, without any connection option from the caller
      ansible.builtin.include_role:
        name: quantops.platform.slow_queries
        tasks_from: "{{ entry_point }}"
'''


@pytest.mark.parametrize('entry_point, task, expected', [
    # analyze.yml: its first module is quantops.platform.postgresql_maintenance
    ('analyze', 'Solution 2. Update query statistics (ANALYZE)',
     'Unable to connect to PostgreSQL (host=/var/run/postgresql port={port} dbname=qp_role_db user=postgres)'),
    # diagnose.yml: its first module is community.postgresql.postgresql_query
    ('diagnose', 'Diagnosis: check for missing indexes',
     'connection to server on socket "/var/run/postgresql/.s.PGSQL.{port}" failed'),
])
def test_a_roles_block_defaults_reach_its_modules(tmp_path, entry_point, task, expected):
    """The roles set login_db/login_unix_socket/login_port once per task file (a block's module_defaults,
    templated from the role's variables); a real run of slow_queries' entry points shows that both a
    quantops.platform module and a community.postgresql module connect where the block says."""
    pytest.importorskip('ansible_collections.community.postgresql')
    port = closed_port()      # no server listens on the socket of this port number
    proc = run_playbook(tmp_path, ROLE_PLAY, {
        'entry_point': entry_point, 'slow_queries_port': port, 'slow_queries_database': 'qp_role_db',
        'slow_queries_analyze_tables': ['public.ohlcv_data']})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    failed = out.split('TASK [quantops.platform.slow_queries : %s' % task, 1)
    assert len(failed) == 2, out[-3000:]
    assert expected.format(port=port) in failed[1].split('TASK [', 1)[0], out[-3000:]
