# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rendering of the incident report: role quantops.platform.incident, entry point finish (seed 002 template).

Real ansible-playbook runs against the controller (connection local, no
mocks): a throw-away playbook includes the role's entry points exactly as the
incident playbooks do, the rendered markdown is read back and checked field by field.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name('ansible-playbook')


def _run(tmp_path, include_vars, hosts=('localhost',), extra_args=(), pre_tasks=()):
    inventory = tmp_path / 'hosts.ini'
    inventory.write_text(''.join(
        '%s ansible_connection=local ansible_python_interpreter=%s\n' % (h, sys.executable) for h in hosts))
    play = [{
        'name': 'report test',
        'hosts': 'all',
        'gather_facts': False,
        'tasks': list(pre_tasks) + [{
            'name': 'Write the incident report',
            'ansible.builtin.include_role': {'name': 'quantops.platform.incident', 'tasks_from': 'finish'},
            'vars': include_vars,
        }, {
            'name': 'Expose the facts',
            'ansible.builtin.copy': {
                'content': '{{ {"path": incident_report_path, "id": incident_report_id,'
                           ' "severity": incident_report_severity} | to_json }}',
                'dest': str(tmp_path) + '/facts-{{ inventory_hostname }}.json',
                'mode': '0600',
            },
            'delegate_to': 'localhost',
            'check_mode': False,
        }],
    }]
    playbook = tmp_path / 'play.yml'
    playbook.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0')
    return subprocess.run([str(ANSIBLE_PLAYBOOK), '-i', str(inventory), str(playbook)] + list(extra_args),
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=180, check=False)


def _facts(tmp_path, host='localhost'):
    return json.loads((tmp_path / ('facts-%s.json' % host)).read_text())


BASE = {
    'incident_runbook': 'Seed 002 - Emergency Procedures - Database Crash Recovery',
    'incident_key': 'crash_recovery',
    'incident_severity': 'P0',
    'incident_title': 'PostgreSQL was down and recovered',
    'incident_timeline': [
        {'time': '2026-11-23 12:30:05', 'event': 'Checked PostgreSQL status: inactive'},
        {'time': '2026-11-23 12:31:40', 'event': 'Started postgresql@17-main'},
    ],
    'incident_findings': ['✗ PostgreSQL was not running', '✓ crash recovery finished'],
    'incident_root_cause': 'postmaster killed with SIGKILL',
    'incident_resolution': '',
    'incident_attachments': ['/tmp/snapshot-1.tar.gz'],
    'incident_impact': {'services_impacted': 'quant_platform database', 'data_integrity': 'OK'},
}


def test_report_renders_seed_template(tmp_path):
    result = _run(tmp_path, dict(BASE, incident_reports_dir=str(tmp_path / 'reports')))
    assert result.returncode == 0, result.stdout + result.stderr
    facts = _facts(tmp_path)
    assert facts['id'] == 'INC-20261123-123005-crash-recovery'
    assert facts['severity'] == 'P0'
    path = Path(facts['path'])
    assert path == tmp_path / 'reports' / 'INC-20261123-123005-crash-recovery.md'
    text = path.read_text()
    assert text.startswith('# Incident Report\n')
    assert '**Incident ID**: INC-20261123-123005-crash-recovery' in text
    assert '**Severity**: P0 - Critical (response: immediate)' in text
    assert '**Start Time**: 2026-11-23 12:30:05 UTC' in text
    assert '**Runbook**: Seed 002 - Emergency Procedures - Database Crash Recovery' in text
    # Seed template sections, in the seed's order, then findings/attachments.
    headings = re.findall(r'^## (.+)$', text, re.M)
    assert headings == ['Summary', 'Impact', 'Timeline', 'Findings', 'Root Cause', 'Resolution',
                        'Preventive Measures', 'Lessons Learned', 'Attachments']
    timeline = text.split('## Timeline\n')[1].split('\n\n')[0].splitlines()
    assert timeline[0] == '- 2026-11-23 12:30:05 - Checked PostgreSQL status: inactive'
    assert timeline[1] == '- 2026-11-23 12:31:40 - Started postgresql@17-main'
    assert re.match(r'^- \d{4}-\d\d-\d\d \d\d:\d\d:\d\d - report written \(P0\)$', timeline[2])
    assert '- ✗ PostgreSQL was not running' in text
    assert '## Root Cause\npostmaster killed with SIGKILL\n' in text
    assert '## Resolution\n_to be filled in_\n' in text
    assert '- Services impacted: quant_platform database' in text
    assert '- Users affected: _to be filled in_' in text
    assert '- /tmp/snapshot-1.tar.gz' in text
    assert '(check mode' not in text


@pytest.mark.parametrize('severity', ['P4', 'p1', 'critical', ''])
def test_bad_severity_is_refused_before_writing(tmp_path, severity):
    result = _run(tmp_path, dict(BASE, incident_severity=severity, incident_reports_dir=str(tmp_path / 'reports')))
    assert result.returncode != 0
    assert 'incident_severity' in result.stdout
    assert not (tmp_path / 'reports').exists()


def test_timeline_must_have_events(tmp_path):
    result = _run(tmp_path, dict(BASE, incident_timeline=[{'time': 'x'}], incident_reports_dir=str(tmp_path / 'r')))
    assert result.returncode != 0
    assert not (tmp_path / 'r').exists()


def test_timeline_helper_check_mode_and_one_report_per_host(tmp_path):
    """Two hosts: one report each (ID suffixed with the host); --check marks the report."""
    include_vars = dict(BASE, incident_timeline='{{ incident_events }}', incident_reports_dir=str(tmp_path / 'reports'))
    include_vars.pop('incident_key')
    pre = [{'name': 'record', 'ansible.builtin.include_role': {'name': 'quantops.platform.incident', 'tasks_from': 'event'},
            'vars': {'incident_event': 'Checked {{ inventory_hostname }}'}}]
    result = _run(tmp_path, include_vars, hosts=('db-a', 'db-b'), extra_args=['--check'], pre_tasks=pre)
    assert result.returncode == 0, result.stdout + result.stderr
    for host in ('db-a', 'db-b'):
        facts = _facts(tmp_path, host)
        assert re.match(r'^INC-\d{8}-\d{6}-seed-002-emergency-procedures-database-crash-recovery-%s$' % host,
                        facts['id']), facts['id']
        text = Path(facts['path']).read_text()
        assert text.startswith('# Incident Report (check mode: dry run, nothing was changed)')
        assert re.search(r'^- \d{4}-\d\d-\d\d \d\d:\d\d:\d\d - Checked %s$' % host, text, re.M), text
        assert '**Host**: %s' % host in text
    assert len(list((tmp_path / 'reports').glob('*.md'))) == 2


def test_platform_services_events_join_the_timeline_in_time_order(tmp_path):
    """finish merges incident_events and platform_services_events (role platform_services) by time."""
    include_vars = dict(BASE, incident_reports_dir=str(tmp_path / 'reports'))
    include_vars.pop('incident_timeline')
    pre = [{'name': 'events', 'ansible.builtin.set_fact': {
        'incident_events': [{'time': '2026-11-23 12:30:00', 'event': 'Emergency stop requested'},
                            {'time': '2026-11-23 12:30:09', 'event': '4. Alert notification'}],
        'platform_services_events': [{'time': '2026-11-23 12:30:04', 'event': 'stop trading-signal-bridge.service: stopped'}],
    }}]
    result = _run(tmp_path, include_vars, pre_tasks=pre)
    assert result.returncode == 0, result.stdout + result.stderr
    text = Path(_facts(tmp_path)['path']).read_text()
    timeline = text.split('## Timeline\n')[1].split('\n\n')[0].splitlines()
    assert timeline[:3] == ['- 2026-11-23 12:30:00 - Emergency stop requested',
                            '- 2026-11-23 12:30:04 - stop trading-signal-bridge.service: stopped',
                            '- 2026-11-23 12:30:09 - 4. Alert notification']
    assert _facts(tmp_path)['id'] == 'INC-20261123-123000-crash-recovery'


def test_finish_fails_after_the_report_when_a_check_is_critical(tmp_path):
    """Checks recorded with the check entry point become the findings; a critical one fails the play
    in a task named by incident_fail_task - after the report is written."""
    include_vars = dict(BASE, incident_reports_dir=str(tmp_path / 'reports'),
                        incident_fail_task='Fail when the emergency stop is not complete')
    for key in ('incident_findings', 'incident_timeline'):
        include_vars.pop(key)
    pre = [{'name': 'start', 'ansible.builtin.include_role': {'name': 'quantops.platform.incident', 'tasks_from': 'start'},
            'vars': {'incident_reports_dir': str(tmp_path / 'reports')}}] + [
        {'name': 'check %s' % status, 'ansible.builtin.include_role': {'name': 'quantops.platform.incident', 'tasks_from': 'check'},
         'vars': {'incident_check': {'name': '1. Circuit breaker', 'status': status, 'display': 'HTTP %s' % code}}}
        for status, code in (('ok', 200), ('critical', 500))]
    result = _run(tmp_path, include_vars, pre_tasks=pre)
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'TASK [quantops.platform.incident : Fail when the emergency stop is not complete]' in result.stdout
    reports = list((tmp_path / 'reports').glob('INC-*-crash-recovery.md'))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert '- ✓ 1. Circuit breaker: HTTP 200' in text
    assert '- ✗ 1. Circuit breaker: HTTP 500 (critical)' in text
    assert '- Overall: critical (1 critical, 0 warning, 0 unknown, 1 ok)' in text
    assert re.search(r'^- \d{4}-\d\d-\d\d \d\d:\d\d:\d\d - 1\. Circuit breaker: HTTP 500$', text, re.M)


def test_check_refuses_an_unknown_status(tmp_path):
    pre = [{'name': 'bad check', 'ansible.builtin.include_role': {'name': 'quantops.platform.incident', 'tasks_from': 'check'},
            'vars': {'incident_check': {'name': 'x', 'status': 'fine'}}}]
    result = _run(tmp_path, dict(BASE, incident_reports_dir=str(tmp_path / 'reports')), pre_tasks=pre)
    assert result.returncode != 0
    assert 'status' in result.stdout and 'fine' in result.stdout
    assert not (tmp_path / 'reports').exists()
