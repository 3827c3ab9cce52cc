# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Classify PostgreSQL health figures as ok / warning / critical / unknown.

Pure functions, no database access: quantops.platform.postgresql_health_info
measures, this file judges, and the quantops.platform.health_checklist filter
renders.  Every default threshold carries the source it was taken from (the
operations guides in the project's seeds and the alert rules of
postgres_exporter's postgres-mixin and awesome-prometheus-alerts).

A check is a plain dict (so it survives the module's JSON result)::

    {'check': 'freshness', 'name': 'Data freshness (FX)', 'subject': 'FX',
     'value': 7848.0, 'unit': 'hours', 'display': '327 days old',
     'status': 'warning', 'warning': 24, 'critical': None, 'operator': '>=',
     'message': '...', 'source': '...'}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import math
import re

STATUS_OK = 'ok'
STATUS_WARNING = 'warning'
STATUS_CRITICAL = 'critical'
STATUS_UNKNOWN = 'unknown'
STATUSES = (STATUS_OK, STATUS_WARNING, STATUS_CRITICAL, STATUS_UNKNOWN)

# Worst first wins in overall_status(): a check that could not be measured is
# worse than ok but better than a measured warning.
STATUS_RANK = {STATUS_OK: 0, STATUS_UNKNOWN: 1, STATUS_WARNING: 2, STATUS_CRITICAL: 3}

SYMBOLS = {
    STATUS_OK: u'\u2713',        # check mark, as in the seeds' health_check.sh
    STATUS_WARNING: u'\u26a0',   # warning sign
    STATUS_CRITICAL: u'\u2717',  # ballot x
    STATUS_UNKNOWN: u'?',
}

CHECK_NAMES = (
    'database_size',
    'connections',
    'slow_statements',
    'cache_hit_ratio',
    'index_hit_ratio',
    'dead_tuples',
    'freshness',
    'hypertable_chunks',
)

GIB = 1024 ** 3

OPERATORS = ('>', '>=', '<', '<=')

# key -> default, unit, operator (value OPERATOR threshold means breached),
# check, nullable (None disables that level) and source.
DEFAULT_THRESHOLDS = {
    'database_size_warning_bytes': {
        'default': 80 * GIB, 'unit': 'bytes', 'operator': '>', 'check': 'database_size', 'nullable': False,
        'source': ('80 % of the critical size: the headroom seed 003 gives storage (Scaling Triggers: '
                   'storage auto_expand at usage > 80 %); at the ~1 GB/month growth seed 002 expects '
                   '(Morning Checklist) that leaves about 20 months to act'),
    },
    'database_size_critical_bytes': {
        'default': 100 * GIB, 'unit': 'bytes', 'operator': '>', 'check': 'database_size', 'nullable': False,
        'source': ('seed 002 Alert Rules, critical DatabaseSizeCritical: database > 100GB '
                   '(pg_size_pretty units, 1 GB = 1024^3 bytes)'),
    },
    'connections_warning': {
        'default': 20, 'unit': 'connections', 'operator': '>=', 'check': 'connections', 'nullable': False,
        'source': ('seed 002 Morning Checklist: Active Connections expected < 20 (client connections to the '
                   'database, the seed\'s COUNT(*) FROM pg_stat_activity WHERE datname = ...)'),
    },
    'connections_critical_pct': {
        'default': 80, 'unit': 'percent', 'operator': '>=', 'check': 'connections', 'nullable': True,
        'source': ('80 % of the slots ordinary roles can use (max_connections - superuser_reserved_connections'
                   ' - reserved_connections): postgres_exporter postgres-mixin PostgreSQLHighConnections '
                   '(> 80 % of max - superuser reserved) and awesome-prometheus-alerts '
                   'PostgresqlTooManyConnections (> 80 % of max_connections) alert there as a warning, seed 003 '
                   'Resource Utilization Limits set "Database Connections: < 80%"; the warning level here is '
                   'already the seed 002 figure of 20, so crossing the seed 003 limit is critical'),
    },
    'slow_statement_ms': {
        'default': 1000, 'unit': 'ms', 'operator': '>', 'check': 'slow_statements', 'nullable': False,
        'source': ('seed 002 Morning Checklist and Weekly Maintenance: pg_stat_statements '
                   'WHERE mean_exec_time > 1000'),
    },
    'slow_statements_warning': {
        'default': 10, 'unit': 'statements', 'operator': '>=', 'check': 'slow_statements', 'nullable': False,
        'source': 'seed 002 Morning Checklist: Slow Queries expected < 10',
    },
    'slow_statements_critical': {
        'default': None, 'unit': 'statements', 'operator': '>=', 'check': 'slow_statements', 'nullable': True,
        'source': 'none: the seeds have no critical level for slow statements (seed 002 SlowQueriesHigh is a warning)',
    },
    'cache_hit_warning_pct': {
        'default': 95, 'unit': 'percent', 'operator': '<', 'check': 'cache_hit_ratio', 'nullable': False,
        'source': ('seed 003 Database Performance SLO: Cache Hit Ratio > 95 %, computed as seed 002 Appendix '
                   '"Database Health Summary" (pg_statio_user_tables heap_blks_hit / (hit + read))'),
    },
    'cache_hit_critical_pct': {
        'default': 90, 'unit': 'percent', 'operator': '<', 'check': 'cache_hit_ratio', 'nullable': True,
        'source': ('90 %: twice the miss rate the seed 003 SLO allows (1 heap block in 10 read from outside '
                   'shared_buffers instead of 1 in 20), the same 90 % line seed 002 draws for IndexHitRateLow; '
                   'postgres-mixin PostgreSQLCacheHitRatio warns below 98 % and has no critical level'),
    },
    'hit_ratio_min_blocks': {
        'default': 1000, 'unit': 'blocks', 'operator': '<', 'check': 'cache_hit_ratio', 'nullable': False,
        'source': ('cache and index hit ratios over fewer block requests are not judged (ok, not evaluated): '
                   'below 1000 requests (8 MB) a few cold reads after a restart decide the ratio, 50 of them are '
                   'already the whole 5 % miss budget of seed 003; the anchors judge a rate over minutes of '
                   'traffic (postgres-mixin PostgreSQLCacheHitRatio, rate(...[5m])) for the same reason'),
    },
    'index_hit_warning_pct': {
        'default': 90, 'unit': 'percent', 'operator': '<', 'check': 'index_hit_ratio', 'nullable': False,
        'source': 'seed 002 Alert Rules, warning IndexHitRateLow: index hit rate < 90 %',
    },
    'index_hit_critical_pct': {
        'default': None, 'unit': 'percent', 'operator': '<', 'check': 'index_hit_ratio', 'nullable': True,
        'source': 'none: the seeds have no critical level for the index hit rate',
    },
    'dead_tuple_warning_pct': {
        'default': 10, 'unit': 'percent', 'operator': '>=', 'check': 'dead_tuples', 'nullable': False,
        'source': ('awesome-prometheus-alerts PostgresqlTooManyDeadTuples and postgres-mixin '
                   'PostgresHasTooManyDeadTuples: n_dead_tup / (n_live_tup + n_dead_tup) >= 0.1, warning '
                   '(REFERENCES.md: dead tuples > 10 %)'),
    },
    'dead_tuple_critical_pct': {
        'default': None, 'unit': 'percent', 'operator': '>=', 'check': 'dead_tuples', 'nullable': True,
        'source': 'none: the seeds and the anchors have no critical level for dead tuples',
    },
    'dead_tuple_min_live_tuples': {
        'default': 1000, 'unit': 'tuples', 'operator': '<', 'check': 'dead_tuples', 'nullable': False,
        'source': ('tables with fewer live tuples are not judged: 1000 OHLCV rows (~80 bytes each, seed 002 '
                   'Database Size Estimates) fill about ten 8 kB pages, so their dead tuples cost nothing '
                   'measurable, while autovacuum\'s fixed autovacuum_vacuum_threshold of 50 alone is 5 % of '
                   'such a table and a handful of updates swings the ratio past 10 %; the anchors suppress '
                   'the same noise with n_dead_tup > 10000'),
    },
    'freshness_warning_hours': {
        'default': 24, 'unit': 'hours', 'operator': '>=', 'check': 'freshness', 'nullable': False,
        'source': 'seed 002 Morning Checklist step 2: latest OHLCV data should be < 24 hours old',
    },
    'freshness_stale_days': {
        'default': 7, 'unit': 'days', 'operator': '>', 'check': 'freshness', 'nullable': False,
        'source': ('seed 002 Alert Rules, warning DataStale: OHLCV data > 7 days old; named in the message '
                   'only, because the seed makes it a warning too: freshness is never critical'),
    },
    'uncompressed_chunks_warning': {
        'default': 100, 'unit': 'chunks', 'operator': '>', 'check': 'hypertable_chunks', 'nullable': False,
        'source': ('seed 002 Alert Rules, info CompressionNotEnabled: hypertable with > 100 uncompressed chunks '
                   '(a warning here); judged only when compression is available (timescaledb.license = '
                   'timescale), since the Apache-only build cannot compress'),
    },
}

# Pairs that must stay ordered after overrides: (warning key, critical key, 'le'|'ge').
# 'le': warning <= critical (higher is worse); 'ge': warning >= critical (lower is worse).
THRESHOLD_ORDER = (
    ('database_size_warning_bytes', 'database_size_critical_bytes', 'le'),
    ('slow_statements_warning', 'slow_statements_critical', 'le'),
    ('cache_hit_warning_pct', 'cache_hit_critical_pct', 'ge'),
    ('index_hit_warning_pct', 'index_hit_critical_pct', 'ge'),
    ('dead_tuple_warning_pct', 'dead_tuple_critical_pct', 'le'),
)


class ThresholdError(ValueError):
    """An override in the thresholds dict is unknown or invalid."""


def default_thresholds():
    """Return {key: default value} for every known threshold."""
    return dict((key, spec['default']) for key, spec in DEFAULT_THRESHOLDS.items())


def _to_number(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ThresholdError('thresholds.%s must be a number, got %s %r' % (key, type(value).__name__, value))
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ThresholdError('thresholds.%s must be a number, got str %r' % (key, value))
        value = number
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise ThresholdError('thresholds.%s must be a finite number, got %r' % (key, value))
    return value


def merge_thresholds(overrides=None):
    """Return the defaults updated with ``overrides``, validated.

    Raises ThresholdError naming the valid keys for an unknown key, and for a
    value that is not a number (numeric strings are accepted), is negative, is
    a percentage above 100, is null where a level cannot be disabled, or puts
    a warning level past its critical level.
    """
    merged = default_thresholds()
    if overrides is None:
        return merged
    if not isinstance(overrides, dict):
        raise ThresholdError('thresholds must be a dict, got %s' % type(overrides).__name__)
    unknown = sorted(str(k) for k in overrides if k not in DEFAULT_THRESHOLDS)
    if unknown:
        raise ThresholdError('Unknown threshold key(s): %s. Valid keys: %s'
                             % (', '.join(unknown), ', '.join(sorted(DEFAULT_THRESHOLDS))))
    for key, value in overrides.items():
        spec = DEFAULT_THRESHOLDS[key]
        if value is None:
            if not spec['nullable']:
                raise ThresholdError('thresholds.%s cannot be null (only %s can be disabled with null)'
                                     % (key, ', '.join(sorted(k for k, s in DEFAULT_THRESHOLDS.items()
                                                              if s['nullable']))))
            merged[key] = None
            continue
        number = _to_number(key, value)
        if number < 0:
            raise ThresholdError('thresholds.%s must not be negative, got %r' % (key, number))
        if spec['unit'] == 'percent' and number > 100:
            raise ThresholdError('thresholds.%s is a percentage (0-100), got %r' % (key, number))
        merged[key] = number
    for warning_key, critical_key, order in THRESHOLD_ORDER:
        warning, critical = merged[warning_key], merged[critical_key]
        if warning is None or critical is None:
            continue
        if order == 'le' and warning > critical:
            raise ThresholdError('thresholds.%s (%r) must not be above thresholds.%s (%r)'
                                 % (warning_key, warning, critical_key, critical))
        if order == 'ge' and warning < critical:
            raise ThresholdError('thresholds.%s (%r) must not be below thresholds.%s (%r): lower is worse'
                                 % (warning_key, warning, critical_key, critical))
    return merged


def breached(value, threshold, operator):
    """True when ``value OPERATOR threshold`` holds; False when either is None."""
    if value is None or threshold is None:
        return False
    if operator == '>':
        return value > threshold
    if operator == '>=':
        return value >= threshold
    if operator == '<':
        return value < threshold
    if operator == '<=':
        return value <= threshold
    raise ValueError('unknown operator %r' % (operator,))


def classify(value, warning=None, critical=None, operator='>'):
    """Return 'critical', 'warning' or 'ok' for ``value``; 'unknown' when value is None."""
    if value is None:
        return STATUS_UNKNOWN
    if breached(value, critical, operator):
        return STATUS_CRITICAL
    if breached(value, warning, operator):
        return STATUS_WARNING
    return STATUS_OK


def _fmt_number(number, decimals=2):
    if number is None:
        return 'n/a'
    if isinstance(number, int):
        return str(number)
    text = ('%.' + str(decimals) + 'f') % number
    if '.' in text:
        text = text.rstrip('0').rstrip('.')
    return text


def format_bytes(size):
    """pg_size_pretty-like rendering with one decimal: 12.3 MB, 100 GB."""
    if size is None:
        return 'n/a'
    value = float(size)
    for unit in ('bytes', 'kB', 'MB', 'GB', 'TB'):
        if abs(value) < 1024 or unit == 'TB':
            if unit == 'bytes':
                return '%d bytes' % int(value)
            return '%s %s' % (_fmt_number(value, 1), unit)
        value /= 1024.0
    return '%s PB' % _fmt_number(value, 1)  # pragma: no cover - loop always returns


def format_hours(hours):
    """Ages: '5.2 h' under two days, whole days ('327 days') beyond."""
    if hours is None:
        return 'n/a'
    if hours < 48:
        return '%s h' % _fmt_number(hours, 1)
    return '%d days' % int(hours // 24)


def format_value(value, unit):
    """Render a value with its unit for messages and checklists."""
    if value is None:
        return 'n/a'
    if unit == 'bytes':
        return format_bytes(value)
    if unit == 'hours':
        return format_hours(value)
    if unit == 'percent':
        return '%s %%' % _fmt_number(value)
    if unit == 'days':
        return '%s days' % _fmt_number(value)
    return '%s %s' % (_fmt_number(value), unit)


def make_check(check, name, value, unit, status, warning=None, critical=None, operator=None,
               message='', source='', subject=None, display=None):
    """Build one check dict (see the module docstring for the keys)."""
    if status not in STATUSES:
        raise ValueError('unknown status %r' % (status,))
    return {
        'check': check,
        'name': name,
        'subject': subject,
        'value': value,
        'unit': unit,
        'display': display if display is not None else format_value(value, unit),
        'status': status,
        'warning': warning,
        'critical': critical,
        'operator': operator,
        'message': message,
        'source': source,
    }


def unknown_check(check, name, message, source='', subject=None, unit=None):
    """A check that could not be measured (missing extension, table, privilege...)."""
    return make_check(check, name, None, unit, STATUS_UNKNOWN, message=message, source=source,
                      subject=subject, display='unknown')


def _sources(*keys):
    return '; '.join('%s: %s' % (key, DEFAULT_THRESHOLDS[key]['source']) for key in keys)


def _limits_text(warning, critical, operator, unit):
    parts = []
    if warning is not None:
        parts.append('warning %s %s' % (operator, format_value(warning, unit)))
    if critical is not None:
        parts.append('critical %s %s' % (operator, format_value(critical, unit)))
    return ', '.join(parts) if parts else 'no thresholds'


# --- individual checks -----------------------------------------------------

def check_database_size(size_bytes, thresholds, database=None):
    warning = thresholds['database_size_warning_bytes']
    critical = thresholds['database_size_critical_bytes']
    status = classify(size_bytes, warning, critical, '>')
    label = database or 'the database'
    message = 'Database %s is %s (%s).' % (
        label, format_bytes(size_bytes), _limits_text(warning, critical, '>', 'bytes'))
    if status == STATUS_CRITICAL:
        message += (' Seed 002 DatabaseSizeCritical: compress old chunks, drop chunks past the retention '
                    'period or add disk.')
    return make_check('database_size', 'Database size', size_bytes, 'bytes', status, warning, critical, '>',
                      message, _sources('database_size_warning_bytes', 'database_size_critical_bytes'))


def usable_connections(max_connections, superuser_reserved=0, reserved=0):
    """Slots ordinary roles can use; None when max_connections is unknown."""
    if max_connections is None:
        return None
    return int(max_connections) - int(superuser_reserved or 0) - int(reserved or 0)


def check_connections(figures, thresholds, database=None):
    """Judge connections.

    ``figures``: database_total (client connections to the database, this
    module's own session excluded), database_active, server_total (client
    connections to the whole server), max_connections,
    superuser_reserved_connections, reserved_connections.

    Warning compares database_total with connections_warning (seed 002's
    per-database count); critical compares server_total with
    connections_critical_pct of the usable slots, because max_connections is
    a server-wide limit.
    """
    db_total = figures.get('database_total')
    db_active = figures.get('database_active')
    server_total = figures.get('server_total')
    usable = usable_connections(figures.get('max_connections'), figures.get('superuser_reserved_connections'),
                                figures.get('reserved_connections'))
    warning = thresholds['connections_warning']
    pct = thresholds['connections_critical_pct']
    critical = None
    if pct is not None and usable is not None and usable > 0:
        critical = int(math.ceil(round(pct * usable / 100.0, 6)))
    if db_total is None:
        return unknown_check('connections', 'Active connections', 'pg_stat_activity could not be read.',
                             _sources('connections_warning', 'connections_critical_pct'), unit='connections')
    status = STATUS_OK
    if breached(db_total, warning, '>='):
        status = STATUS_WARNING
    if breached(server_total, critical, '>='):
        status = STATUS_CRITICAL
    utilization = None
    if usable and server_total is not None:
        utilization = round(100.0 * server_total / usable, 1)
    display = '%d (%s active)' % (db_total, 'n/a' if db_active is None else db_active)
    if server_total is not None and usable is not None:
        display += '; server-wide %d of %d usable slots' % (server_total, usable)
    message = ('%d client connections to %s (%s active, not counting this check), expected < %s '
               '(seed 002). Server-wide %s of %s slots usable by ordinary roles are taken (%s %%); critical at '
               '%s %% = %s connections.') % (
        db_total, database or 'the database', 'n/a' if db_active is None else db_active, _fmt_number(warning),
        'n/a' if server_total is None else server_total, 'n/a' if usable is None else usable,
        'n/a' if utilization is None else _fmt_number(utilization), _fmt_number(pct),
        'n/a' if critical is None else critical)
    return make_check('connections', 'Active connections', db_total, 'connections', status, warning, critical,
                      '>=', message, _sources('connections_warning', 'connections_critical_pct'), display=display)


def check_slow_statements(figures, thresholds):
    """``figures``: installed (bool), count (statements over slow_statement_ms), error (str) when unreadable."""
    name = 'Slow statements'
    src = _sources('slow_statement_ms', 'slow_statements_warning', 'slow_statements_critical')
    limit_ms = thresholds['slow_statement_ms']
    if not figures.get('installed'):
        return unknown_check('slow_statements', name, figures.get('error') or (
            'pg_stat_statements is not installed in this database: add pg_stat_statements to '
            'shared_preload_libraries (restart) and run CREATE EXTENSION pg_stat_statements.'), src,
            unit='statements')
    if figures.get('count') is None:
        return unknown_check('slow_statements', name, figures.get('error') or 'pg_stat_statements could not be read.',
                             src, unit='statements')
    count = figures['count']
    warning = thresholds['slow_statements_warning']
    critical = thresholds['slow_statements_critical']
    status = classify(count, warning, critical, '>=')
    message = ('%d statement%s in pg_stat_statements %s mean_exec_time > %s ms, expected < %s (seed 002 '
               'Morning Checklist).' % (count, '' if count == 1 else 's', 'has' if count == 1 else 'have',
                                        _fmt_number(limit_ms), _fmt_number(warning)))
    return make_check('slow_statements', name, count, 'statements', status, warning, critical, '>=', message, src,
                      display='%d with mean > %s ms' % (count, _fmt_number(limit_ms)))


def ratio_pct(hit, read):
    """100 * hit / (hit + read), or None when nothing was read."""
    if hit is None and read is None:
        return None
    total = (hit or 0) + (read or 0)
    if total <= 0:
        return None
    return 100.0 * (hit or 0) / total


def check_cache_hit(heap_blks_hit, heap_blks_read, thresholds):
    name = 'Cache hit ratio'
    src = _sources('cache_hit_warning_pct', 'cache_hit_critical_pct', 'hit_ratio_min_blocks')
    warning = thresholds['cache_hit_warning_pct']
    critical = thresholds['cache_hit_critical_pct']
    min_blocks = thresholds['hit_ratio_min_blocks']
    requests = (heap_blks_hit or 0) + (heap_blks_read or 0)
    pct = ratio_pct(heap_blks_hit, heap_blks_read)
    if pct is None:
        return make_check('cache_hit_ratio', name, None, 'percent', STATUS_OK, warning, critical, '<',
                          'No heap block of a user table has been read since the statistics were reset: '
                          'not evaluated.', src, display='not evaluated (no heap reads yet)')
    if requests < min_blocks:
        return make_check('cache_hit_ratio', name, None, 'percent', STATUS_OK, warning, critical, '<',
                          'Only %d heap block requests since the statistics were reset (%s %% hit), fewer than '
                          'hit_ratio_min_blocks = %s: not evaluated.' % (requests, _fmt_number(pct),
                                                                         _fmt_number(min_blocks)),
                          src, display='not evaluated (%d block requests)' % requests)
    status = classify(pct, warning, critical, '<')
    message = ('%s of %s heap block requests on user tables were served from shared_buffers (%s %%; %s).'
               % (heap_blks_hit or 0, (heap_blks_hit or 0) + (heap_blks_read or 0), _fmt_number(pct),
                  _limits_text(warning, critical, '<', 'percent')))
    return make_check('cache_hit_ratio', name, round(pct, 2), 'percent', status, warning, critical, '<', message, src)


def _table_label(table):
    return '%s.%s' % (table.get('schema'), table.get('name'))


def check_index_hit(tables, thresholds):
    """One check per table with index block reads; one ok check naming the tables not evaluated."""
    src = _sources('index_hit_warning_pct', 'index_hit_critical_pct', 'hit_ratio_min_blocks')
    warning = thresholds['index_hit_warning_pct']
    critical = thresholds['index_hit_critical_pct']
    min_blocks = thresholds['hit_ratio_min_blocks']
    checks = []
    skipped = []
    for table in tables:
        label = _table_label(table)
        pct = ratio_pct(table.get('idx_blks_hit'), table.get('idx_blks_read'))
        requests = (table.get('idx_blks_hit') or 0) + (table.get('idx_blks_read') or 0)
        if pct is None or requests < min_blocks:
            skipped.append(label)
            continue
        status = classify(pct, warning, critical, '<')
        message = ('Index blocks of %s: %s hit, %s read (%s %%; %s).'
                   % (label, table.get('idx_blks_hit') or 0, table.get('idx_blks_read') or 0, _fmt_number(pct),
                      _limits_text(warning, critical, '<', 'percent')))
        checks.append(make_check('index_hit_ratio', 'Index hit ratio (%s)' % label, round(pct, 2), 'percent', status,
                                 warning, critical, '<', message, src, subject=label))
    if skipped or not checks:
        if skipped:
            message = ('Not evaluated, fewer than %s index block requests (or no index): %s.'
                       % (_fmt_number(min_blocks), ', '.join(skipped)))
            display = 'not evaluated for %d table%s with few index reads' % (len(skipped), '' if len(skipped) == 1 else 's')
        else:
            message = 'No user table in this database.'
            display = 'no user tables'
        checks.append(make_check('index_hit_ratio', 'Index hit ratio', None, 'percent', STATUS_OK, warning, critical,
                                 '<', message, src, display=display))
    return checks


def check_dead_tuples(tables, thresholds):
    """One check per table with at least dead_tuple_min_live_tuples live tuples; one ok check for the rest."""
    src = _sources('dead_tuple_warning_pct', 'dead_tuple_critical_pct', 'dead_tuple_min_live_tuples')
    warning = thresholds['dead_tuple_warning_pct']
    critical = thresholds['dead_tuple_critical_pct']
    min_live = thresholds['dead_tuple_min_live_tuples']
    checks = []
    skipped = []
    for table in tables:
        label = _table_label(table)
        live = table.get('live_tuples') or 0
        dead = table.get('dead_tuples') or 0
        if live < min_live:
            skipped.append(label)
            continue
        pct = 100.0 * dead / (live + dead)
        status = classify(pct, warning, critical, '>=')
        message = ('%s has %d dead and %d live tuples: %s %% dead (%s).'
                   % (label, dead, live, _fmt_number(pct), _limits_text(warning, critical, '>=', 'percent')))
        if status != STATUS_OK:
            message += ' Check autovacuum on it (last_autovacuum: %s) or run VACUUM (ANALYZE).' % (
                table.get('last_autovacuum') or 'never')
        checks.append(make_check('dead_tuples', 'Dead tuples (%s)' % label, round(pct, 2), 'percent', status,
                                 warning, critical, '>=', message, src, subject=label))
    if skipped or not checks:
        if skipped:
            message = ('Not evaluated, fewer than %s live tuples: %s.' % (_fmt_number(min_live), ', '.join(skipped)))
            display = 'not evaluated for %d small table%s' % (len(skipped), '' if len(skipped) == 1 else 's')
        else:
            message = 'No user table in this database.'
            display = 'no user tables'
        checks.append(make_check('dead_tuples', 'Dead tuples', None, 'percent', STATUS_OK, warning, critical, '>=',
                                 message, src, display=display))
    return checks


def check_freshness(groups, thresholds, table_label='ohlcv_data', group_label='region', error=None):
    """One check per group (region): age in hours against freshness_warning_hours; never critical.

    ``groups``: list of {'group': str, 'latest': str|None, 'age_seconds': float|None}.
    ``error``: the table could not be read -> one unknown check.
    """
    src = _sources('freshness_warning_hours', 'freshness_stale_days')
    warning = thresholds['freshness_warning_hours']
    stale_days = thresholds['freshness_stale_days']
    if error:
        return [unknown_check('freshness', 'Data freshness', error, src, unit='hours')]
    if not groups:
        return [make_check('freshness', 'Data freshness', None, 'hours', STATUS_WARNING, warning, None, '>=',
                           '%s holds no rows: no market data has been loaded (seed 002 expects data '
                           '< %s h old).' % (table_label, _fmt_number(warning)), src, display='no data')]
    checks = []
    for item in groups:
        group = item.get('group')
        name = 'Data freshness (%s)' % group
        age_seconds = item.get('age_seconds')
        if age_seconds is None:
            checks.append(make_check('freshness', name, None, 'hours', STATUS_WARNING, warning, None, '>=',
                                     'No timestamp for %s %s in %s.' % (group_label, group, table_label), src,
                                     subject=group, display='no data'))
            continue
        hours = age_seconds / 3600.0
        status = classify(hours, warning, None, '>=')
        message = ('Latest row of %s for %s %s is %s, %s old (warning >= %s, seed 002).'
                   % (table_label, group_label, group, item.get('latest'), format_hours(hours),
                      format_hours(warning)))
        if hours > stale_days * 24:
            message += (' Older than %s days: the seed 002 DataStale alert, a warning as well.'
                        % _fmt_number(stale_days))
        checks.append(make_check('freshness', name, round(hours, 2), 'hours', status, warning, None, '>=', message,
                                 src, subject=group, display='%s old' % format_hours(hours)))
    return checks


def compression_available(timescaledb):
    """TimescaleDB compression needs the TSL build: timescaledb.license = 'timescale'."""
    return bool(timescaledb and timescaledb.get('installed') and timescaledb.get('license') == 'timescale')


def check_hypertable_chunks(hypertables, timescaledb, thresholds, database=None):
    """One check per hypertable on its uncompressed chunk count (seed 002 CompressionNotEnabled)."""
    src = _sources('uncompressed_chunks_warning')
    warning = thresholds['uncompressed_chunks_warning']
    if not timescaledb or not timescaledb.get('installed'):
        return [unknown_check('hypertable_chunks', 'Hypertable chunks',
                              'TimescaleDB is not installed in %s (CREATE EXTENSION timescaledb): no hypertable '
                              'to check.' % (database or 'this database'), src, unit='chunks')]
    if not hypertables:
        return [make_check('hypertable_chunks', 'Hypertable chunks', None, 'chunks', STATUS_OK, warning, None, '>',
                           'TimescaleDB %s is installed but %s has no hypertable.'
                           % (timescaledb.get('version'), database or 'this database'), src,
                           display='no hypertables')]
    licensed = compression_available(timescaledb)
    checks = []
    for ht in hypertables:
        label = '%s.%s' % (ht.get('schema'), ht.get('name'))
        uncompressed = ht.get('uncompressed_chunks') or 0
        compressed = ht.get('compressed_chunks') or 0
        total = ht.get('total_chunks')
        if total is None:
            total = uncompressed + compressed
        display = '%d chunks, %d uncompressed' % (total, uncompressed)
        if licensed:
            status = classify(uncompressed, warning, None, '>')
            message = ('%s has %d chunks: %d compressed, %d uncompressed (warning > %s uncompressed, seed 002 '
                       'CompressionNotEnabled).' % (label, total, compressed, uncompressed, _fmt_number(warning)))
            if status != STATUS_OK:
                if ht.get('compression_enabled'):
                    message += ' Compression is enabled: check the compression policy job or run compress_chunk().'
                else:
                    message += (' Enable it: ALTER TABLE %s SET (timescaledb.compress) and '
                                'add_compression_policy().' % label)
        else:
            status = STATUS_OK
            message = ('%s has %d chunks: %d compressed, %d uncompressed. Not judged: compression needs the '
                       'TimescaleDB TSL build (timescaledb.license = timescale), this server runs license %s.'
                       % (label, total, compressed, uncompressed, timescaledb.get('license') or 'unknown'))
            display += ' (compression needs the TSL build)'
        checks.append(make_check('hypertable_chunks', 'Hypertable chunks (%s)' % label, uncompressed, 'chunks', status,
                                 warning, None, '>', message, src, subject=label, display=display))
    return checks


# --- summary and rendering ---------------------------------------------------

def overall_status(checks):
    """Worst status of the checks: critical > warning > unknown > ok ('ok' for no checks)."""
    worst = STATUS_OK
    for check in checks or []:
        status = check.get('status', STATUS_UNKNOWN)
        if STATUS_RANK.get(status, STATUS_RANK[STATUS_UNKNOWN]) > STATUS_RANK[worst]:
            worst = status if status in STATUS_RANK else STATUS_UNKNOWN
    return worst


def count_statuses(checks):
    """Return {'ok': n, 'warning': n, 'critical': n, 'unknown': n}."""
    counts = dict((status, 0) for status in STATUSES)
    for check in checks or []:
        status = check.get('status')
        counts[status if status in counts else STATUS_UNKNOWN] += 1
    return counts


def render_line(check):
    """One checklist line in the style of the seeds' health_check.sh."""
    status = check.get('status', STATUS_UNKNOWN)
    if status not in SYMBOLS:
        status = STATUS_UNKNOWN
    symbol = SYMBOLS[status]
    name = check.get('name') or check.get('check') or 'check'
    if status == STATUS_UNKNOWN:
        return u'%s %s: %s' % (symbol, name, check.get('message') or 'unknown')
    display = check.get('display')
    if display is None:
        display = format_value(check.get('value'), check.get('unit'))
    line = u'%s %s: %s' % (symbol, name, display)
    if status in (STATUS_WARNING, STATUS_CRITICAL):
        threshold = check.get(status)
        operator = check.get('operator')
        if threshold is not None and operator:
            line += u' (%s %s %s)' % (status, operator, format_value(threshold, check.get('unit')))
        else:
            line += u' (%s)' % status
    return line


def render_checklist(checks, include_ok=True, summary=False):
    """Render checks as text lines, e.g. ``✓ Database size: 12.3 MB``.

    ``include_ok=False`` keeps only the checks that need attention;
    ``summary=True`` appends an ``Overall: ...`` line.
    """
    lines = []
    for check in checks or []:
        if not include_ok and check.get('status') == STATUS_OK:
            continue
        lines.append(render_line(check))
    if summary:
        counts = count_statuses(checks)
        lines.append(u'Overall: %s (%d critical, %d warning, %d unknown, %d ok)' % (
            overall_status(checks), counts[STATUS_CRITICAL], counts[STATUS_WARNING], counts[STATUS_UNKNOWN],
            counts[STATUS_OK]))
    return lines


# --- time handling for freshness ---------------------------------------------

AS_OF_FORMAT = 'YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+HH:MM] (ISO 8601)'

_AS_OF_RE = re.compile(
    r'^(?P<date>\d{4}-\d{2}-\d{2})'
    r'(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)'
    r'(?P<tz>Z|z|[+-]\d{2}:?\d{2})?)?$'
)


def parse_as_of(text):
    """Parse an ISO 8601 date or timestamp into an aware UTC datetime.

    A bare date means 00:00 UTC that day; a timestamp without offset is UTC.
    Raises ValueError naming the expected format.
    """
    if isinstance(text, datetime.datetime):
        value = text
    elif isinstance(text, datetime.date):
        value = datetime.datetime(text.year, text.month, text.day)
    else:
        if not isinstance(text, str):
            raise ValueError('as_of must be a string in the format %s, got %s' % (AS_OF_FORMAT, type(text).__name__))
        match = _AS_OF_RE.match(text.strip())
        if not match:
            raise ValueError('as_of %r is not a valid date or timestamp; expected %s' % (text, AS_OF_FORMAT))
        try:
            day = datetime.datetime.strptime(match.group('date'), '%Y-%m-%d')
            value = day
            if match.group('time'):
                clock = match.group('time')
                fmt = {5: '%H:%M', 8: '%H:%M:%S'}.get(len(clock), '%H:%M:%S.%f')
                t = datetime.datetime.strptime(clock, fmt)
                value = day.replace(hour=t.hour, minute=t.minute, second=t.second, microsecond=t.microsecond)
            tz = match.group('tz')
            if tz and tz not in ('Z', 'z'):
                sign = -1 if tz[0] == '-' else 1
                digits = tz[1:].replace(':', '')
                hours, minutes = int(digits[:2]), int(digits[2:])
                if hours > 23 or minutes > 59:
                    raise ValueError('offset out of range')
                offset = datetime.timedelta(hours=hours, minutes=minutes) * sign
                value = value.replace(tzinfo=datetime.timezone(offset))
        except ValueError as e:
            raise ValueError('as_of %r is not a valid date or timestamp (%s); expected %s' % (text, e, AS_OF_FORMAT))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def latest_as_datetime(latest):
    """The moment a latest value stands for, as an aware UTC datetime.

    A date D is a daily bar that is complete when day D ends, so it stands for
    D+1 00:00 UTC; a timestamp without time zone is taken as UTC.
    """
    if latest is None:
        return None
    if isinstance(latest, datetime.datetime):
        if latest.tzinfo is None:
            latest = latest.replace(tzinfo=datetime.timezone.utc)
        return latest.astimezone(datetime.timezone.utc)
    if isinstance(latest, datetime.date):
        return datetime.datetime(latest.year, latest.month, latest.day,
                                 tzinfo=datetime.timezone.utc) + datetime.timedelta(days=1)
    raise TypeError('latest must be a date or datetime, got %s' % type(latest).__name__)


def age_seconds(latest, as_of):
    """Seconds from ``latest`` to ``as_of`` (>= 0; data dated after as_of counts as fresh)."""
    moment = latest_as_datetime(latest)
    if moment is None:
        return None
    return max(0.0, (as_of - moment).total_seconds())
