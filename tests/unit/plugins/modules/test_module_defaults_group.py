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
