# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filter quantops.platform.pg_hba_cidr (documented in pg_hba_cidr.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.quantops.platform.plugins.test.pg_hba import pg_hba_address


def pg_hba_cidr(value):
    """Return the address in CIDR form (a single IP gets /32 or /128); raise on anything else."""
    if not pg_hba_address(value):
        raise AnsibleFilterError('pg_hba_cidr: %r is not an IPv4/IPv6 network in CIDR form '
                                 'or a single address' % (to_native(value),))
    return ipaddress.ip_network(value, strict=True).with_prefixlen


class FilterModule(object):
    def filters(self):
        return {'pg_hba_cidr': pg_hba_cidr}
