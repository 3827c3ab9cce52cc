# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared TimescaleDB helpers of the timescaledb_hypertable and timescaledb_chunks modules.

License awareness follows the timescaledb role (facts timescaledb_tsl_available and
timescaledb_effective_license): the server's ``timescaledb.license`` setting is
read, and features of the Timescale License (compression, continuous aggregates,
policies) are refused on ``apache`` with a message naming the license, or skipped
when the caller says ``tsl_required: false``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.quantops.platform.plugins.module_utils.postgres import (
    IdentifierError,
    QuotedName,
    validate_identifier,
)

LICENSE_TSL = 'timescale'
LICENSE_APACHE = 'apache'

_DATE_RE = re.compile(r'^\d{4}-\d{2}-\d{2}$')
_TIMESTAMP_RE = re.compile(r'^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$')
# PostgreSQL interval input: '1 year', '3 months 2 days', '90 days', 'P1Y2M' (ISO 8601), '02:00:00'.
_INTERVAL_RE = re.compile(
    r'^\s*(@\s*)?((\d+(\.\d+)?\s*(microseconds?|milliseconds?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|'
    r'weeks?|months?|mons?|years?|yrs?|decades?|centuries|century|millenniums?|millennia)\s*)+|'
    r'P[0-9YMWDTHS.]+|\d+:\d{2}(:\d{2})?)\s*$', re.IGNORECASE)


SERVER_QUERY = ("SELECT e.extversion AS version, current_setting('timescaledb.license', true) AS license "
                "FROM pg_catalog.pg_extension e WHERE e.extname = 'timescaledb'")


class TimescaleError(ValueError):
    """Bad option or unsupported feature, with a message saying what to do."""


def split_name(name, default_schema='public'):
    """'schema.table' or 'table' -> (schema, table), both validated; a dot inside quotes is not supported."""
    if not isinstance(name, str) or not name:
        raise TimescaleError('hypertable names must be non-empty strings, got %r' % (name,))
    if name.count('.') > 1:
        raise TimescaleError('%r: give a hypertable as "table" or "schema.table" (one dot at most)' % name)
    schema, dummy, table = name.rpartition('.')
    schema = schema or default_schema
    try:
        return validate_identifier(schema, 'schema'), validate_identifier(table, 'table')
    except IdentifierError as e:
        raise TimescaleError(str(e))


def regclass_text(schema, table):
    """The Query literal of "schema"."table" to cast to regclass (quoted by psycopg, never interpolated)."""
    return QuotedName((schema, table))


def classify_cutoff(value, what):
    """Return ('interval'|'date'|'timestamp', value) for an older_than-style option, or raise TimescaleError."""
    if value is None or value == '':
        return None
    text = str(value).strip()
    if _DATE_RE.match(text):
        return ('date', text)
    if _TIMESTAMP_RE.match(text):
        return ('timestamp', text)
    if _INTERVAL_RE.match(text):
        return ('interval', text)
    raise TimescaleError('%s must be a PostgreSQL interval such as "1 year" or "90 days", or an ISO date '
                         '(YYYY-MM-DD) / timestamp; got %r' % (what, value))


def validate_interval(value, what):
    kind = classify_cutoff(value, what)
    if kind is not None and kind[0] != 'interval':
        raise TimescaleError('%s must be an interval such as "3 months", got %r' % (what, value))
    return kind[1] if kind else None


def cutoff_cast(kind, time_type):
    """SQL type the cutoff literal is cast to for a time dimension of ``time_type``."""
    if kind == 'interval':
        return 'interval'
    if time_type == 'date':
        return 'date'
    if time_type in ('timestamp without time zone', 'timestamp'):
        return 'timestamp'
    return 'timestamptz'


def server(runner):
    """The timescaledb extension's version and the server's license; fails the module when not installed."""
    rows = runner.rows(SERVER_QUERY)
    if not rows:
        runner.module.fail_json(msg='The timescaledb extension is not installed in database %s (CREATE EXTENSION '
                                    'timescaledb, see the quantops.platform.timescaledb role).'
                                % runner.module.params['login_db'])
    return dict(rows[0], license=rows[0]['license'] or LICENSE_TSL)


def license_message(feature, license_name):
    return ('%s needs the Timescale License (TSL) build of TimescaleDB, but this server runs timescaledb.license=%s '
            '(the Apache-2 build, as Debian\'s postgresql-NN-timescaledb package). Install the TSL build '
            '(quantops.platform.timescaledb with timescaledb_repository=timescale), or set tsl_required=false '
            'to skip it with a warning.' % (feature, license_name))


def tsl_available(license_name):
    return license_name == LICENSE_TSL


def compression_ratio(before, after):
    """before/after bytes of compressed chunks (hypertable_compression_stats); None when unknown."""
    if not before or not after:
        return None
    return round(float(before) / float(after), 2)
