# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the pgbackrest_info module and module_utils/pgbackrest.py.

The JSON fixtures are real output of pgBackRest 2.55.1 (Debian 13 package), captured
from a test container (PostgreSQL 17, encrypted repository, stanza ``main``) with
``pgbackrest --output=json info`` after a full, a diff and an incr backup
(fixtures/pgbackrest_info_2.55.1.json), and ``pgbackrest --stanza=nope --output=json info``
(fixtures/pgbackrest_info_2.55.1_missing_stanza.json).  What is replaced here is only
``AnsibleModule.run_command`` (it returns the captured output instead of running the
binary, which the controller does not have); the real command runs in the Molecule
scenario backup_restore.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import pathlib

import pytest

from ansible.module_utils import basic

from ansible_collections.quantops.platform.plugins.module_utils import pgbackrest as pgb
from ansible_collections.quantops.platform.plugins.modules import pgbackrest_info as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import (
    AnsibleExitJson, AnsibleFailJson, run_module)


FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
INFO = (FIXTURES / 'pgbackrest_info_2.55.1.json').read_text()
MISSING = (FIXTURES / 'pgbackrest_info_2.55.1_missing_stanza.json').read_text()


def run(monkeypatch, args, rc=0, out=INFO, err='', now=1795436359 + 100):
    calls = []

    def fake_run_command(self, argv, **kwargs):
        calls.append(argv)
        return rc, out, err

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', fake_run_command)
    monkeypatch.setattr(mod.time, 'time', lambda: now)
    return run_module(mod.main, args), calls


def test_parses_the_captured_catalogue(monkeypatch):
    res, calls = run(monkeypatch, {'stanza': 'main'})
    assert isinstance(res, AnsibleExitJson)
    r = res.result
    assert r['changed'] is False
    assert calls == [['pgbackrest', '--stanza=main', '--output=json', 'info']]
    (s,) = r['stanzas']
    assert s['name'] == 'main'
    assert s['status'] == {'code': 0, 'message': 'ok', 'ok': True, 'backup_lock_held': False}
    assert s['cipher'] == 'aes-256-cbc'
    assert s['archive']['min'] == '000000010000000000000001'
    assert s['archive']['max'] == '000000010000000000000007'
    assert s['labels'] == ['20261123-121908F', '20261123-121908F_20261123-121915D',
                           '20261123-121908F_20261123-121917I']
    assert [b['type'] for b in s['backups']] == ['full', 'diff', 'incr']
    full = s['backups'][0]
    assert full['start_time'] == 1795436348 and full['stop_time'] == 1795436354
    assert full['duration_seconds'] == 6
    assert full['start_time_iso'] == '2026-11-23T12:19:08+00:00'
    assert full['size'] == 27052446 and full['repo_size'] == 3093568 and full['repo_delta'] == 3093568
    assert full['wal_start'] == full['wal_stop'] == '000000010000000000000003'
    assert full['lsn_start'] == '0/3000028' and full['lsn_stop'] == '0/3000120'
    assert full['pgbackrest_version'] == '2.55.1'
    incr = s['backups'][2]
    assert incr['reference'] == ['20261123-121908F', '20261123-121908F_20261123-121915D']
    assert incr['prior'] == '20261123-121908F_20261123-121915D'
    assert incr['repo_delta'] == 416
    assert s['last_backup']['label'] == incr['label']
    assert s['last_full_backup']['label'] == full['label']
    assert s['oldest_backup']['label'] == full['label']
    assert s['last_backup_age_seconds'] == 100
    assert s['repos'] == [{'key': 1, 'cipher': 'aes-256-cbc', 'status_code': 0, 'status_message': 'ok'}]


def test_missing_stanza_is_reported_not_failed(monkeypatch):
    res, calls = run(monkeypatch, {'stanza': 'nope'}, out=MISSING)
    assert isinstance(res, AnsibleExitJson)
    (s,) = res.result['stanzas']
    assert s['status']['code'] == 1 and s['status']['message'] == 'missing stanza path'
    assert s['status']['ok'] is False
    assert s['backups'] == [] and s['last_backup'] is None and s['last_backup_age_seconds'] is None
    assert s['archive'] == {'min': None, 'max': None, 'ids': []}


def test_fail_on_status(monkeypatch):
    res, calls = run(monkeypatch, {'stanza': 'nope', 'fail_on_status': True}, out=MISSING)
    assert isinstance(res, AnsibleFailJson)
    assert 'nope (1: missing stanza path)' in res.result['msg']


def test_command_failure_is_reported_with_stderr(monkeypatch):
    res, calls = run(monkeypatch, {}, rc=41, out='',
                     err='ERROR: [041]: unable to open missing file \'/etc/pgbackrest.conf\' for read')
    assert isinstance(res, AnsibleFailJson)
    assert 'exit status 41' in res.result['msg'] and 'unable to open' in res.result['msg']


def test_non_json_output_fails_clearly(monkeypatch):
    res, calls = run(monkeypatch, {}, out='stanza: main\n    status: ok\n')
    assert isinstance(res, AnsibleFailJson)
    assert 'expected JSON' in res.result['msg']


def test_all_options_reach_the_command(monkeypatch):
    res, calls = run(monkeypatch, {'stanza': 'main', 'config': '/etc/pgbackrest.conf', 'repo': 2,
                                   'set': '20261123-121908F', 'binary': '/usr/bin/pgbackrest'})
    assert calls == [['/usr/bin/pgbackrest', '--config=/etc/pgbackrest.conf', '--stanza=main', '--repo=2',
                      '--set=20261123-121908F', '--output=json', 'info']]


def test_set_needs_stanza_and_repo_range(monkeypatch):
    res, calls = run(monkeypatch, {'set': 'x'})
    assert isinstance(res, AnsibleFailJson) and 'stanza' in res.result['msg']
    res, calls = run(monkeypatch, {'repo': 0})
    assert isinstance(res, AnsibleFailJson) and 'between 1 and 256' in res.result['msg']
    assert calls == []


def test_check_mode_runs_the_same_read_only_command(monkeypatch):
    res, calls = run(monkeypatch, {'stanza': 'main', '_ansible_check_mode': True})
    assert isinstance(res, AnsibleExitJson) and res.result['changed'] is False
    assert calls == [['pgbackrest', '--stanza=main', '--output=json', 'info']]


def test_errored_backup_is_not_last_good_backup():
    data = json.loads(INFO)
    data[0]['backup'][2]['error'] = True
    (s,) = pgb.parse_info(data, 1795436359)
    assert s['last_backup']['type'] == 'diff'
    assert s['backups'][2]['error'] is True


def test_parse_info_refuses_non_list():
    with pytest.raises(ValueError):
        pgb.parse_info({'name': 'main'}, 0)
