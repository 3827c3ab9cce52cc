# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a small playbook on localhost with this collection, for unit tests of plugins in real Jinja."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import ansible_collections.quantops.platform as collection


def run_playbook(tmp_path, playbook_text, extra_vars):
    """Write playbook_text to tmp_path/play.yml and run it with extra_vars; return the CompletedProcess."""
    playbook = tmp_path / 'play.yml'
    playbook.write_text(playbook_text)
    collections_dir = os.path.dirname(os.path.dirname(os.path.dirname(list(collection.__path__)[0])))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_dir, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    env.pop('ANSIBLE_CONFIG', None)
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), str(playbook),
               '-e', json.dumps(extra_vars)]
    return subprocess.run(command, cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300, check=False)
