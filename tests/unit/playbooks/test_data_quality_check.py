# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data quality runbook's first step (role quantops.platform.data_quality, entry point check).

Real ansible-playbook runs on the controller (connection local).  "exchange_calendars is not
installed" is made real for the Python that runs ansible-playbook by a module of that name first
on PYTHONPATH that raises ImportError, as a missing package does.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name('ansible-playbook')


def _run(tmp_path, role_vars, missing_calendars=False):
    inventory = tmp_path / 'hosts.ini'
    inventory.write_text('[database]\ndb1 ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    play = [{'name': 'check', 'hosts': 'database', 'gather_facts': False, 'tasks': [
        {'name': 'Check the inputs and the controller\'s Python',
         'ansible.builtin.include_role': {'name': 'quantops.platform.data_quality', 'tasks_from': 'check'},
         'vars': role_vars},
        {'name': 'Reached', 'ansible.builtin.copy': {'content': 'reached', 'dest': str(tmp_path / 'reached'), 'mode': '0600'}}]}]
    (tmp_path / 'play.yml').write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')
    if missing_calendars:
        shadow = tmp_path / 'shadow'
        shadow.mkdir()
        (shadow / 'exchange_calendars.py').write_text("raise ImportError(\"No module named 'exchange_calendars'\")\n")
        env['PYTHONPATH'] = str(shadow)
    return subprocess.run([str(ANSIBLE_PLAYBOOK), '-i', str(inventory), str(tmp_path / 'play.yml')], cwd=str(ROOT),
                          env=env, capture_output=True, text=True, timeout=180, check=False)


def test_missing_exchange_calendars_stops_the_run_naming_the_package(tmp_path):
    result = _run(tmp_path, {'data_quality_login_password': 'x', 'data_quality_login_host': '127.0.0.1'},
                  missing_calendars=True)
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'TASK [quantops.platform.data_quality : Refuse to run without exchange_calendars]' in result.stdout
    assert 'The Python package exchange_calendars is missing' in result.stdout
    assert "runtime requirements" in result.stdout and 'execution environment' in result.stdout
    assert not (tmp_path / 'reached').exists()


def test_with_exchange_calendars_and_good_input_the_check_passes(tmp_path):
    result = _run(tmp_path, {'data_quality_login_password': 'x', 'data_quality_login_host': '127.0.0.1'})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / 'reached').exists()


def test_bad_input_is_refused_before_anything_runs(tmp_path):
    result = _run(tmp_path, {'data_quality_login_password': 'x', 'data_quality_lookback_days': 'ten'})
    assert result.returncode == 2
    assert 'data_quality_lookback_days' in result.stdout
    assert 'Check that the controller' not in result.stdout     # refused by the argument spec, first
    missing = _run(tmp_path, {'data_quality_login_host': '127.0.0.1'})
    assert missing.returncode == 2
    assert 'Set data_quality_login_password' in missing.stdout
