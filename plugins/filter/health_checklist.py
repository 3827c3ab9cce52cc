# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filter quantops.platform.health_checklist: render health checks as checklist lines.

Documentation: health_checklist.yml beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

from ansible_collections.quantops.platform.plugins.module_utils.health import render_checklist


def health_checklist(checks, include_ok=True, summary=False):
    """Render the ``checks`` of quantops.platform.postgresql_health_info (or its whole result) as lines."""
    if isinstance(checks, dict):
        if 'checks' not in checks:
            raise AnsibleFilterError('health_checklist expects a list of checks or a result with a "checks" key, '
                                     'got a dict with keys: %s' % ', '.join(sorted(str(k) for k in checks)))
        checks = checks['checks']
    if checks is None:
        checks = []
    if not is_sequence(checks):
        raise AnsibleFilterError('health_checklist expects a list of checks, got %s' % type(checks).__name__)
    for index, check in enumerate(checks):
        if not isinstance(check, dict):
            raise AnsibleFilterError('health_checklist: item %d is a %s, not a check dict' % (index, type(check).__name__))
        if 'status' not in check:
            raise AnsibleFilterError('health_checklist: item %d (%s) has no "status" key'
                                     % (index, check.get('name') or check.get('check') or '?'))
    return render_checklist(list(checks), include_ok=bool(include_ok), summary=bool(summary))


class FilterModule(object):
    """quantops.platform health filters."""

    def filters(self):
        return {
            'health_checklist': health_checklist,
        }
