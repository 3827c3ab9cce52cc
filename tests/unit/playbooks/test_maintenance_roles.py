# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance and services runbooks' roles, run for real on localhost where no server is needed.

- morning_check's ``report`` entry point (the plug-in point for more morning-check lines):
  prints the title and the checklist, fails on a critical item, refuses a missing title;
- every maintenance entry point validates every setting: a bad value is refused by the first
  step, naming the setting, before any task of the role runs;
- platform_services' ``confirm`` entry point: an unconfirmed stop/restart prints the plan and
  ends the host, an unknown service name is refused.
The end-to-end runs against PostgreSQL are in molecule/runbooks (tests/test_maintenance.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pathlib
import re

import pytest
import yaml

from ansible_collections.quantops.platform.tests.unit.playbook import run_playbook

ROLES = pathlib.Path(__file__).resolve().parents[3] / 'roles'
MAINTENANCE = ('morning_check', 'evening_check', 'weekly', 'monthly', 'quarterly')

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Entry point
      ansible.builtin.include_role:
        name: quantops.platform.{role}
        tasks_from: {entry}
    - name: After the entry point
      ansible.builtin.debug:
        msg: AFTER-THE-ENTRY-POINT
"""


def test_report_prints_the_lines_of_another_play_and_passes(tmp_path):
    result = run_playbook(tmp_path, PLAY.format(role='morning_check', entry='report'), {
        'morning_check_title': 'Redis (cache1)',
        'morning_check_items': [{'name': 'Redis ping', 'status': 'ok', 'display': 'PONG'},
                                {'name': 'Redis memory', 'status': 'warning', 'display': '91 %'}]})
    assert result.returncode == 0, result.stdout
    out = result.stdout
    assert out.index('Redis (cache1)') < out.index(u'\u2713 Redis ping: PONG') < out.index(u'\u26a0 Redis memory: 91 %')
    assert 'Overall: warning (0 critical, 1 warning, 0 unknown, 1 ok)' in out
    assert 'AFTER-THE-ENTRY-POINT' in out


def test_report_fails_on_a_critical_item(tmp_path):
    result = run_playbook(tmp_path, PLAY.format(role='morning_check', entry='report'), {
        'morning_check_title': 'Redis (cache1)',
        'morning_check_items': [{'name': 'Redis ping', 'status': 'critical', 'display': 'no answer'}]})
    assert result.returncode != 0
    assert '1 critical item(s) on localhost' in result.stdout
    assert 'AFTER-THE-ENTRY-POINT' not in result.stdout


def test_report_refuses_a_missing_title(tmp_path):
    result = run_playbook(tmp_path, PLAY.format(role='morning_check', entry='report'),
                          {'morning_check_items': []})
    assert result.returncode != 0
    assert 'morning_check_title' in result.stdout and 'Validation of arguments failed' in result.stdout


def entry_points(role):
    return list(yaml.safe_load((ROLES / role / 'meta' / 'argument_specs.yml').read_text())['argument_specs'])


@pytest.mark.parametrize('role', MAINTENANCE)
def test_every_entry_point_validates_every_setting(role):
    specs = yaml.safe_load((ROLES / role / 'meta' / 'argument_specs.yml').read_text())['argument_specs']
    defaults = set(yaml.safe_load((ROLES / role / 'defaults' / 'main.yml').read_text()))
    for entry, spec in specs.items():
        assert defaults <= set(spec['options']), '%s:%s does not validate %s' % (role, entry, defaults - set(spec['options']))
    # one declared entry point per step file, and main (the whole runbook) imports every step
    assert sorted(p.stem for p in (ROLES / role / 'tasks').glob('*.yml')) == sorted(specs)
    main = (ROLES / role / 'tasks' / 'main.yml').read_text()
    # monitoring and cluster run on other hosts (monitoring, patroni) than the database host of main
    steps = [entry for entry in specs if entry not in ('main', 'monitoring', 'cluster')]
    assert [s for s in steps if 'import_tasks: %s.yml' % s not in main] == []


@pytest.mark.parametrize('role, entry, extra, setting', [
    ('morning_check', 'system_health', {'morning_check_port': 'five'}, 'morning_check_port'),
    ('evening_check', 'data_collection', {'evening_check_ohlcv_avg_ms': 'fast'}, 'evening_check_ohlcv_avg_ms'),
    ('weekly', 'cleanup', {'weekly_reset_pg_stat_statements': 'perhaps'}, 'weekly_reset_pg_stat_statements'),
    ('monthly', 'compression', {'monthly_size_tables': {'ohlcv_data': 1}}, 'monthly_size_tables'),
    ('quarterly', 'performance_audit', {'quarterly_growth_window_days': 'a quarter'}, 'quarterly_growth_window_days'),
])
def test_bad_input_is_refused_before_the_first_task(tmp_path, role, entry, extra, setting):
    result = run_playbook(tmp_path, PLAY.format(role=role, entry=entry), extra)
    assert result.returncode != 0
    assert 'Validation of arguments failed' in result.stdout and setting in result.stdout, result.stdout
    assert 'AFTER-THE-ENTRY-POINT' not in result.stdout
    # nothing of the role ran: its first task is the validation, and it is the last task reported
    tasks = re.findall(r'^TASK \[([^\]]*)\]', result.stdout, re.M)
    assert tasks[-1].startswith("quantops.platform.%s : Validating arguments against arg spec '%s'" % (role, entry)), tasks
    assert [t for t in tasks if t.startswith('quantops.platform.')] == tasks[-1:], tasks


UNITS = [{'name': 'market-data', 'unit': 'trading-market-data.service', 'health': {'url': 'http://127.0.0.1:1/m'}},
         {'name': 'risk-manager', 'unit': 'trading-risk-manager.service', 'health': {'url': 'http://127.0.0.1:1/m'}}]
SERVICES_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Check the service list
      ansible.builtin.include_role:
        name: quantops.platform.platform_services
        tasks_from: validate
    - name: Confirm
      ansible.builtin.include_role:
        name: quantops.platform.platform_services
        tasks_from: confirm
      vars:
        platform_services_action: {action}
    - name: After the guard
      ansible.builtin.debug:
        msg: AFTER-THE-GUARD
"""


@pytest.mark.parametrize('action, extra, plan', [
    ('stop', {}, 'Would stop, in this order: trading-risk-manager.service, trading-market-data.service'),
    ('restart', {'platform_services_restart_only': ['risk-manager']}, 'Would restart trading-risk-manager.service'),
    ('restart', {}, 'Would stop trading-risk-manager.service, trading-market-data.service then start '
                    'trading-market-data.service, trading-risk-manager.service with health gates'),
])
def test_unconfirmed_stop_or_restart_prints_the_plan_and_ends(tmp_path, action, extra, plan):
    result = run_playbook(tmp_path, SERVICES_PLAY.format(action=action), dict({'platform_services_units': UNITS}, **extra))
    assert result.returncode == 0, result.stdout
    assert 'platform_services_confirm is not true: nothing was' in result.stdout
    assert plan in result.stdout
    assert 'AFTER-THE-GUARD' not in result.stdout


def test_confirmed_passes_the_guard(tmp_path):
    result = run_playbook(tmp_path, SERVICES_PLAY.format(action='stop'),
                          {'platform_services_units': UNITS, 'platform_services_confirm': True})
    assert result.returncode == 0 and 'AFTER-THE-GUARD' in result.stdout


def test_unknown_service_to_restart_is_refused(tmp_path):
    result = run_playbook(tmp_path, SERVICES_PLAY.format(action='restart'),
                          {'platform_services_units': UNITS, 'platform_services_restart_only': ['risk-manger'],
                           'platform_services_confirm': True})
    assert result.returncode != 0
    assert 'platform_services_restart_only must list names from platform_services_units' in result.stdout
    assert 'unknown: risk-manger' in result.stdout
    assert 'AFTER-THE-GUARD' not in result.stdout


HOST_STEPS_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Start an empty checklist
      ansible.builtin.set_fact:
        morning_check_title: Morning checklist for localhost
        morning_check_items: []
    - name: "3. Check backup status"
      ansible.builtin.include_role:
        name: quantops.platform.morning_check
        tasks_from: backup_status
    - name: "4. Review alert log"
      ansible.builtin.include_role:
        name: quantops.platform.morning_check
        tasks_from: server_log
    - name: Report
      ansible.builtin.include_role:
        name: quantops.platform.morning_check
        tasks_from: report
"""


def test_backup_status_and_server_log_read_the_host_files(tmp_path):
    """Steps 3 and 4 on real files: the backup jobs' metric files and a server log with a PANIC line."""
    metrics = tmp_path / 'metrics'
    metrics.mkdir()
    (metrics / 'quantops_backup_pg_dump.prom').write_text(
        'quantops_backup_last_success_timestamp_seconds{tool="pg_dump",type="dump"} 1000000000\n'
        'quantops_backup_last_success_timestamp_seconds{tool="pgbackrest",type="drill"} 4000000000\n')
    (metrics / 'other.prom').write_text('quantops_backup_last_success_timestamp_seconds{tool="pgbackrest",type="full"} 4000000000\n')
    log = tmp_path / 'postgresql.log'
    log.write_text('2026-12-07 10:00:00 UTC [1] ERROR:  relation "x" does not exist\n'
                   '2026-12-07 10:00:01 UTC [2] FATAL:  password authentication failed\n'
                   '2026-12-07 10:00:02 UTC [3] PANIC:  could not write to file\n'
                   '2026-12-07 10:00:03 UTC [4] LOG:  checkpoint complete\n')
    result = run_playbook(tmp_path, HOST_STEPS_PLAY, {'morning_check_backup_metrics_dir': str(metrics),
                                                      'morning_check_server_log': str(log)})
    out = result.stdout
    # quantops_backup_*.prom only (not other.prom), database backups only (not the drill): the 2001 dump is old
    assert re.search(u'\u26a0 Backup age: [0-9.]+ h since the newest successful backup \\(pg_dump on localhost\\) '
                     u'\\(warning > 24 h\\)', out), out
    assert u'\u2717 Server log: 3 ERROR/FATAL/PANIC lines (1 PANIC) in %s (critical > 0 PANIC lines)' % log in out
    assert result.returncode != 0 and '1 critical item(s) on localhost' in out
