# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filter quantops.platform.patroni_dcs_patch (documented in patroni_dcs_patch.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _same(current, wanted):
    """Patroni keeps values as they were sent: 100, '100' and True/'on' compare by their text."""
    if isinstance(wanted, bool) or isinstance(current, bool):
        words = {'true': 'on', 'on': 'on', '1': 'on', 'yes': 'on',
                 'false': 'off', 'off': 'off', '0': 'off', 'no': 'off'}
        return words.get(str(current).lower(), str(current)) == words.get(str(wanted).lower(), str(wanted))
    return str(current) == str(wanted)


def _patch(current, wanted):
    out = {}
    for key, value in wanted.items():
        have = current.get(key) if isinstance(current, dict) else None
        if isinstance(value, dict):
            sub = _patch(have if isinstance(have, dict) else {}, value)
            if sub:
                out[key] = sub
        elif have is None or not _same(have, value):
            out[key] = value
    return out


def patroni_dcs_patch(current, wanted):
    """Return the part of wanted whose values differ from current (the body of PATCH /config)."""
    if not isinstance(current, dict) or not isinstance(wanted, dict):
        raise AnsibleFilterError('patroni_dcs_patch: both arguments must be dictionaries')
    return _patch(current, wanted)


class FilterModule(object):
    def filters(self):
        return {'patroni_dcs_patch': patroni_dcs_patch}
