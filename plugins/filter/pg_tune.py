# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters quantops.platform.pg_tune and quantops.platform.pg_memory_bytes.

Documented in pg_tune.yml and pg_memory_bytes.yml next to this file; the
formulas live in plugins/module_utils/pgtune.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.quantops.platform.plugins.module_utils.pgtune import (
    TuningError,
    compute_tuning,
    parse_memory,
)

# Keys of the pg_tune input, mapped to compute_tuning()'s arguments.
PG_TUNE_KEYS = (
    'memory_bytes',
    'cpus',
    'disk_type',
    'max_connections',
    'profile',
    'method',
    'pg_version',
    'timescaledb',
    'wal_disk_bytes',
    'timescaledb_max_background_workers',
)
PG_TUNE_REQUIRED = ('memory_bytes', 'cpus')


def pg_tune(params):
    """Tuning for a host: a dict of GUC name -> value string."""
    if not isinstance(params, Mapping):
        raise AnsibleFilterError(
            'pg_tune expects a dict such as {"memory_bytes": 2147483648, "cpus": 2}, got %s'
            % type(params).__name__)
    unknown = sorted(str(key) for key in params if key not in PG_TUNE_KEYS)
    if unknown:
        raise AnsibleFilterError(
            'pg_tune: unknown key(s) %s; the keys are %s'
            % (', '.join(unknown), ', '.join(PG_TUNE_KEYS)))
    missing = [key for key in PG_TUNE_REQUIRED if params.get(key) is None]
    if missing:
        raise AnsibleFilterError('pg_tune: %s is required' % ' and '.join(missing))

    kwargs = dict((key, params[key]) for key in PG_TUNE_KEYS if params.get(key) is not None)
    if 'timescaledb' in kwargs and not isinstance(kwargs['timescaledb'], bool):
        # Accept the usual YAML/extra-vars spellings ("true", "yes", 1).
        try:
            kwargs['timescaledb'] = boolean(kwargs['timescaledb'], strict=True)
        except TypeError as exc:
            raise AnsibleFilterError('pg_tune: timescaledb=%r must be a boolean: %s'
                                     % (kwargs['timescaledb'], to_native(exc)))
    try:
        return compute_tuning(**kwargs)
    except TuningError as exc:
        raise AnsibleFilterError('pg_tune: %s' % to_native(exc))


def pg_memory_bytes(value, default_unit='B'):
    """Bytes in a PostgreSQL memory value such as '4GB' or SHOW's '16MB'."""
    try:
        return parse_memory(value, default_unit=default_unit)
    except TuningError as exc:
        raise AnsibleFilterError('pg_memory_bytes: %s' % to_native(exc))


class FilterModule(object):
    """PostgreSQL tuning filters."""

    def filters(self):
        return {
            'pg_tune': pg_tune,
            'pg_memory_bytes': pg_memory_bytes,
        }
