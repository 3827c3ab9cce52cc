# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tests quantops.platform.pg_hba_address, pg_hba_loopback and pg_hba_field.

Documented in the .yml files next to this file.  Python's ipaddress does the
parsing (netaddr, which ansible.utils.ipaddr needs, is not a requirement of
this collection).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible.module_utils.six import string_types

# A pg_hba.conf field is a run of characters without whitespace; quotes would
# change how PostgreSQL splits or reads it, so they are refused too.
_FIELD = re.compile(r'\A[^\s"\'\\#]+\Z')


def _network(value):
    """Return the ip_network of a CIDR address or a single IP address, or None."""
    if not isinstance(value, string_types) or not _FIELD.match(value):
        return None
    try:
        # strict: 10.1.2.3/8 (host bits set) is a typo more often than intent.
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        return None


def pg_hba_address(value):
    """True for an IPv4/IPv6 network in CIDR form (10.0.0.0/8) or a single address."""
    return _network(value) is not None


def pg_hba_loopback(value):
    """True when the whole network lies in loopback space (127.0.0.0/8, ::1/128)."""
    net = _network(value)
    if net is None:
        return False
    return net.network_address.is_loopback and net.broadcast_address.is_loopback


def pg_hba_field(value):
    """True for a value that is one pg_hba.conf field: no whitespace, newline, quote, backslash or #."""
    return isinstance(value, string_types) and _FIELD.match(value) is not None


class TestModule(object):
    def tests(self):
        return {
            'pg_hba_address': pg_hba_address,
            'pg_hba_loopback': pg_hba_loopback,
            'pg_hba_field': pg_hba_field,
        }
