# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Candidate selection and statement composition for postgresql_maintenance (no database needed).

Dead-tuple ratio: ``n_dead_tup / (n_live_tup + n_dead_tup)`` from
pg_stat_user_tables, the ratio postgres-mixin ``PostgresHasTooManyDeadTuples``
and awesome-prometheus-alerts ``PostgresqlTooManyDeadTuples`` alert on at 0.1
(the same 10 % postgresql_health_info warns at); seed 002's autovacuum query
shows the same figure as ``dead_tuple_pct`` without a threshold.

B-tree bloat: the estimate of ioguix's pgsql-bloat-estimation (btree_bloat.sql,
https://github.com/ioguix/pgsql-bloat-estimation): the number of leaf pages an
index would need, packed to its fillfactor, from ``pg_class.reltuples`` and
the average width of the indexed columns in ``pg_stats``, compared with
``pg_class.relpages``.  Here the arithmetic is done in Python
(``btree_estimate``) on inputs read by ``INDEX_INPUTS_QUERY``, using the real
index tuple layout (8-byte IndexTupleData, plus a 4-byte null bitmap when a
column can be NULL, then MAXALIGN).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible_collections.quantops.platform.plugins.module_utils.postgres import Query, validate_identifier

OPERATIONS = ('vacuum_analyze', 'vacuum', 'analyze', 'reindex')

# Schemas never selected automatically.
SYSTEM_SCHEMAS = ('pg_catalog', 'information_schema')

TABLES_QUERY = (
    "SELECT s.schemaname AS schema, s.relname AS name, s.n_live_tup AS live_tuples, s.n_dead_tup AS dead_tuples, "
    "s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze, "
    "pg_catalog.pg_table_size(s.relid) AS table_bytes "
    "FROM pg_catalog.pg_stat_user_tables s ORDER BY 1, 2"
)

# Inputs of the B-tree estimate, one row per valid B-tree index of an ordinary table
# with at least one page.  Column statistics come from the table (plain columns) or
# from the index itself (expression columns), as in ioguix's query.
INDEX_INPUTS_QUERY = (
    "SELECT n.nspname AS schema, t.relname AS table_name, c.relname AS name, c.relpages AS pages, "
    "c.reltuples::float8 AS tuples, current_setting('block_size')::int AS block_size, "
    "coalesce((SELECT max(substring(o FROM '^fillfactor=([0-9]+)$')::int) FROM unnest(c.reloptions) AS o), 90) "
    "AS fillfactor, "
    "st.columns, st.columns_with_stats, st.data_width::float8 AS data_width, st.nullable, st.has_name_type "
    "FROM pg_catalog.pg_index x "
    "JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid "
    "JOIN pg_catalog.pg_class t ON t.oid = x.indrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_am am ON am.oid = c.relam "
    "CROSS JOIN LATERAL ("
    "  SELECT count(*) AS columns, count(s.attname) AS columns_with_stats, "
    "         sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 1024)) AS data_width, "
    "         coalesce(max(s.null_frac), 0) > 0 AS nullable, "
    "         bool_or(a.atttypid = 'pg_catalog.name'::pg_catalog.regtype) AS has_name_type "
    "  FROM pg_catalog.pg_attribute a "
    "  LEFT JOIN pg_catalog.pg_stats s ON s.schemaname = n.nspname AND ("
    "       (s.tablename = t.relname AND s.attname = pg_catalog.pg_get_indexdef(a.attrelid, a.attnum, true)) "
    "    OR (s.tablename = c.relname AND s.attname = a.attname)) "
    "  WHERE a.attrelid = c.oid AND a.attnum > 0"
    ") st "
    "WHERE am.amname = 'btree' AND x.indisvalid AND t.relkind = 'r' AND c.relpages > 0 "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' "
    "ORDER BY 1, 2, 3"
)

RELATION_LOOKUP = (
    "SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s"
)

PAGE_HEADER = 24      # PageHeaderData
BTREE_OPAQUE = 16     # BTPageOpaqueData, at the end of every B-tree page
ITEM_ID = 4           # ItemIdData, the line pointer of each tuple
INDEX_TUPLE_HEADER = 8  # IndexTupleData: 6-byte heap TID + 2-byte t_info
NULL_BITMAP = 4       # IndexAttributeBitMapData (INDEX_MAX_KEYS = 32 bits)
MAXALIGN = 8          # 64-bit platforms


class MaintenanceError(ValueError):
    """Raised for an option value the module cannot use."""


def parse_relation(text, what='table'):
    """Split ``schema.name`` (or ``name``, schema public) at the first dot; validate both parts.

    The parts are identifiers quoted later by the Query builder, so quotes and
    semicolons in them stay part of the name.
    """
    if not isinstance(text, str) or text.strip() == '':
        raise MaintenanceError('%s names must be non-empty strings, got %r' % (what, text))
    if '.' in text:
        schema, name = text.split('.', 1)
    else:
        schema, name = 'public', text
    try:
        validate_identifier(schema, '%s schema' % what)
        validate_identifier(name, what)
    except ValueError as e:
        raise MaintenanceError('%s %r: %s' % (what, text, e))
    return schema, name


def _align(size, alignment=MAXALIGN):
    return int(math.ceil(size / float(alignment)) * alignment)


def btree_estimate(row):
    """Estimate the bloat of one B-tree index from a row of INDEX_INPUTS_QUERY.

    Returns a dict: pages, expected_pages, bloat_pages, bloat_bytes, bloat_ratio
    (0..1), size_bytes, reliable (False when a column has no statistics - the
    table was never analyzed - or is of type ``name``, whose width pg_stats
    misreports; the estimate is then not used to select the index).
    """
    pages = int(row['pages'] or 0)
    tuples = max(float(row['tuples'] or 0.0), 0.0)
    block = int(row['block_size'] or 8192)
    fillfactor = int(row['fillfactor'] or 90)
    width = float(row['data_width'] or 0.0)
    header = INDEX_TUPLE_HEADER + (NULL_BITMAP if row.get('nullable') else 0)
    tuple_size = _align(_align(header) + width)
    per_page = math.floor((block - PAGE_HEADER - BTREE_OPAQUE) * fillfactor / (100.0 * (ITEM_ID + tuple_size)))
    per_page = max(per_page, 1)
    expected = 1 + int(math.ceil(tuples / per_page))  # + the metapage
    bloat_pages = max(pages - expected, 0)
    reliable = (not row.get('has_name_type')) and int(row.get('columns_with_stats') or 0) >= int(row.get('columns') or 0)
    return {
        'pages': pages,
        'expected_pages': expected,
        'bloat_pages': bloat_pages,
        'bloat_bytes': bloat_pages * block,
        'bloat_ratio': round(bloat_pages / float(pages), 4) if pages else 0.0,
        'size_bytes': pages * block,
        'reliable': bool(reliable),
    }


def dead_ratio(live, dead):
    live, dead = int(live or 0), int(dead or 0)
    return round(dead / float(live + dead), 4) if live + dead > 0 else 0.0


def select_tables(rows, ratio, min_dead, schemas=None):
    """Tables whose dead-tuple ratio is >= ``ratio`` with at least ``min_dead`` dead tuples.

    Returns (selected, considered): both lists of dicts (schema, name,
    live_tuples, dead_tuples, dead_tuple_ratio, reason for the selected ones).
    """
    considered, selected = [], []
    for row in rows:
        if row['schema'] in SYSTEM_SCHEMAS or (schemas is not None and row['schema'] not in schemas):
            continue
        entry = {'schema': row['schema'], 'name': row['name'], 'live_tuples': int(row.get('live_tuples') or 0),
                 'dead_tuples': int(row.get('dead_tuples') or 0)}
        entry['dead_tuple_ratio'] = dead_ratio(entry['live_tuples'], entry['dead_tuples'])
        considered.append(entry)
        if entry['dead_tuples'] >= min_dead and entry['dead_tuple_ratio'] >= ratio:
            entry = dict(entry)
            entry['reason'] = ('dead tuples %d = %.1f %% of %d (>= %.1f %% and >= %d)' % (
                entry['dead_tuples'], 100 * entry['dead_tuple_ratio'], entry['live_tuples'] + entry['dead_tuples'],
                100 * ratio, min_dead))
            selected.append(entry)
    selected.sort(key=lambda e: (-e['dead_tuples'], e['schema'], e['name']))
    return selected, considered


def select_indexes(rows, ratio, min_bytes, schemas=None):
    """B-tree indexes whose estimated bloat ratio is >= ``ratio`` and bloat >= ``min_bytes`` (reliable estimates only)."""
    considered, selected = [], []
    for row in rows:
        if schemas is not None and row['schema'] not in schemas:
            continue
        entry = {'schema': row['schema'], 'table': row['table_name'], 'name': row['name']}
        entry.update(btree_estimate(row))
        considered.append(entry)
        if entry['reliable'] and entry['bloat_ratio'] >= ratio and entry['bloat_bytes'] >= min_bytes:
            entry = dict(entry)
            entry['reason'] = ('estimated bloat %.1f %% (%d of %d pages, >= %.1f %% and >= %d bytes)' % (
                100 * entry['bloat_ratio'], entry['bloat_pages'], entry['pages'], 100 * ratio, min_bytes))
            selected.append(entry)
    selected.sort(key=lambda e: (-e['bloat_bytes'], e['schema'], e['name']))
    return selected, considered


def statement(operation, schema, name, concurrently=True):
    """The Query of one operation on one relation (its name an identifier, never interpolated)."""
    rel = (schema, name)
    conc = ' CONCURRENTLY' if concurrently else ''
    if operation == 'vacuum_analyze':
        return Query('VACUUM (ANALYZE) {rel}', {'rel': rel})
    if operation == 'vacuum':
        return Query('VACUUM {rel}', {'rel': rel})
    if operation == 'analyze':
        return Query('ANALYZE {rel}', {'rel': rel})
    if operation == 'reindex_index':
        return Query('REINDEX INDEX' + conc + ' {rel}', {'rel': rel})
    if operation == 'reindex_table':
        return Query('REINDEX TABLE' + conc + ' {rel}', {'rel': rel})
    raise MaintenanceError('unknown operation %s' % operation)


def plan(operations, tables, indexes, reindex_tables, concurrently=True):
    """Order the work: VACUUM/ANALYZE first (fresh statistics for the bloat estimate of the next run), then REINDEX.

    ``tables``/``indexes``/``reindex_tables``: lists of dicts with schema, name, reason.
    Returns a list of dicts: operation, relation (schema.name), reason, query (a Query).
    """
    steps = []
    table_ops = [op for op in ('vacuum_analyze', 'vacuum', 'analyze') if op in operations]
    # vacuum_analyze covers both vacuum and analyze
    if 'vacuum_analyze' in table_ops:
        table_ops = ['vacuum_analyze']
    elif 'vacuum' in table_ops and 'analyze' in table_ops:
        table_ops = ['vacuum_analyze']
    for op in table_ops:
        for t in tables:
            steps.append({'operation': op, 'relation': '%s.%s' % (t['schema'], t['name']), 'reason': t['reason'],
                          'query': statement(op, t['schema'], t['name'])})
    if 'reindex' in operations:
        for t in reindex_tables:
            steps.append({'operation': 'reindex_table', 'relation': '%s.%s' % (t['schema'], t['name']),
                          'reason': t['reason'], 'query': statement('reindex_table', t['schema'], t['name'], concurrently)})
        for i in indexes:
            steps.append({'operation': 'reindex_index', 'relation': '%s.%s' % (i['schema'], i['name']),
                          'reason': i['reason'], 'query': statement('reindex_index', i['schema'], i['name'], concurrently)})
    return steps
