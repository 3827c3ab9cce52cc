# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The quantops.platform.health_checklist filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter.health_checklist import FilterModule, health_checklist
from ansible_collections.quantops.platform.plugins.module_utils import health

GIB = 1024 ** 3


@pytest.fixture
def checks():
    th = health.merge_thresholds()
    return [
        health.check_database_size(1536, th),
        health.check_cache_hit(9000, 1000, th),
        health.check_slow_statements({'installed': False, 'error': 'pg_stat_statements is not installed'}, th),
    ]


def test_filter_is_registered():
    assert FilterModule().filters()['health_checklist'] is health_checklist


def test_renders_a_list_of_checks(checks):
    assert health_checklist(checks) == [
        u'\u2713 Database size: 1.5 kB',
        u'\u26a0 Cache hit ratio: 90 % (warning < 95 %)',
        u'? Slow statements: pg_stat_statements is not installed',
    ]


def test_accepts_the_whole_module_result_and_options(checks):
    lines = health_checklist({'checks': checks, 'status': 'warning'}, include_ok=False, summary=True)
    assert lines == [
        u'\u26a0 Cache hit ratio: 90 % (warning < 95 %)',
        u'? Slow statements: pg_stat_statements is not installed',
        u'Overall: warning (0 critical, 1 warning, 1 unknown, 1 ok)',
    ]


def test_hand_written_checks_need_only_a_status():
    assert health_checklist([{'status': 'critical', 'name': 'Backup age', 'value': 30, 'unit': 'hours',
                              'critical': 26, 'operator': '>'}]) == [u'\u2717 Backup age: 30 h (critical > 26 h)']
    assert health_checklist(None) == []


@pytest.mark.parametrize('bad, fragment', [
    ('text', 'expects a list of checks'),
    ({'status': 'ok'}, 'with a "checks" key'),
    ([1], 'item 0 is a int'),
    ([{'name': 'x'}], 'item 0 (x) has no "status" key'),
])
def test_bad_input_raises_filter_errors(bad, fragment):
    with pytest.raises(AnsibleFilterError) as e:
        health_checklist(bad)
    assert fragment in str(e.value)
