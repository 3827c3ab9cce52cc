#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: postgresql_maintenance
short_description: VACUUM (ANALYZE), ANALYZE and REINDEX CONCURRENTLY for tables and indexes that need it
version_added: 0.1.0
description:
  - Runs C(VACUUM) with C(ANALYZE), C(ANALYZE) and C(REINDEX INDEX CONCURRENTLY) on the relations named in
    O(tables), O(indexes) and O(reindex_tables), or on those chosen automatically (O(auto_select)) - tables with many
    dead tuples, bloated indexes.
  - "Tables are chosen by their dead-tuple ratio C(n_dead_tup) divided by the sum of C(n_live_tup) and C(n_dead_tup) from
    C(pg_stat_user_tables): selected when the ratio is >= O(dead_tuple_ratio) and there are at least
    O(min_dead_tuples) dead tuples. TimescaleDB chunks are tables of their own in C(pg_stat_user_tables) and
    are chosen one by one."
  - "B-tree indexes are chosen by an estimate of their bloat: the method of ioguix's pgsql-bloat-estimation
    (C(btree/btree_bloat.sql), U(https://github.com/ioguix/pgsql-bloat-estimation)) - the leaf pages the index would
    need when packed to its fillfactor, from C(pg_class.reltuples) and the average width of its columns in
    C(pg_stats), against C(pg_class.relpages). The arithmetic runs in the module with the real tuple layout
    (8-byte index tuple header, 4 more bytes of null bitmap when a column holds NULLs, 8-byte alignment, 4-byte
    line pointer, 24-byte page header, 16-byte B-tree special space, 1 metapage). An index is selected when the
    estimated bloat ratio is >= O(index_bloat_ratio) and the bloat is >= O(min_index_bloat_bytes). Estimates
    whose inputs are missing (table never analyzed) or unreliable (columns of type C(name)) are returned but never
    select an index. Deduplication of B-tree indexes (PostgreSQL 13+) makes indexes with many equal keys
    smaller than the estimate, so their bloat is under-estimated - such an index is rebuilt less often, never
    more."
  - Statements run one by one on an autocommit connection (C(VACUUM) and C(REINDEX CONCURRENTLY) cannot run
    inside a transaction block), VACUUM/ANALYZE first, then REINDEX. Each one's wall-clock time is returned
    in seconds. A failing statement does not stop the others; the module fails at the end, listing it.
  - Every relation name is quoted as an identifier by the collection's helper, never pasted into SQL; named
    relations are looked up in the catalog with bound values, and the module fails before running anything
    when one does not exist.
options:
  operations:
    description:
      - What to run. C(vacuum_analyze) is C(VACUUM) with the C(ANALYZE) option; C(vacuum) and C(analyze) alone are the plain
        statements (both together are run as one C(VACUUM) with C(ANALYZE)). They apply to the tables.
      - C(reindex) rebuilds the indexes (O(indexes) and the selected ones) with C(REINDEX INDEX) and the tables of
        O(reindex_tables) with C(REINDEX TABLE).
      - C(analyze) with neither O(tables) nor O(auto_select) runs a database-wide C(ANALYZE).
    type: list
    elements: str
    choices: [ vacuum_analyze, vacuum, analyze, reindex ]
    default: [ vacuum_analyze ]
  tables:
    description:
      - Tables to vacuum/analyze whatever their statistics, as C(schema.table) or C(table) (schema C(public)). The
        name is split at the first dot. For a TimescaleDB hypertable the statement covers all of its chunks.
    type: list
    elements: str
    default: []
  indexes:
    description:
      - Indexes to rebuild (with O(operations) containing C(reindex)), as C(schema.index) or C(index).
    type: list
    elements: str
    default: []
  reindex_tables:
    description:
      - Tables whose indexes are all rebuilt with C(REINDEX TABLE) (with O(operations) containing C(reindex)).
    type: list
    elements: str
    default: []
  auto_select:
    description:
      - Also choose tables by O(dead_tuple_ratio)/O(min_dead_tuples) and indexes by O(index_bloat_ratio)/O(min_index_bloat_bytes).
      - Default is true when none of O(tables), O(indexes), O(reindex_tables) is given, false otherwise.
    type: bool
  schemas:
    description:
      - Limit the automatic choice to these schemas. Default is every schema but C(pg_catalog),
        C(information_schema) and the toast schemas (TimescaleDB's C(_timescaledb_internal), which holds the chunks,
        is included).
    type: list
    elements: str
  dead_tuple_ratio:
    description:
      - "Dead-tuple ratio (0 to 1) from which a table is vacuumed. Default C(0.1): the level of postgres-mixin
        C(PostgresHasTooManyDeadTuples) and awesome-prometheus-alerts C(PostgresqlTooManyDeadTuples) (>= 0.1), the
        same 10 % C(quantops.platform.postgresql_health_info) warns at."
    type: float
    default: 0.1
  min_dead_tuples:
    description:
      - "Tables with fewer dead tuples are never chosen, whatever their ratio. Default C(1000), the minimum table
        size under which C(quantops.platform.postgresql_health_info) does not judge dead tuples: a thousand
        dead tuples of a narrow table fill a few 8 kB pages, and autovacuum (C(autovacuum_vacuum_threshold) 50
        plus 20 % of the table) reaches small tables on its own."
    type: int
    default: 1000
  index_bloat_ratio:
    description:
      - "Estimated bloat ratio (0 to 1) from which an index is rebuilt. Default C(0.3). The
        estimate already excludes the free space the fillfactor keeps (10 % for B-tree), so 0.3 means that a rebuild
        would make the index at least 30 % smaller, which is where the cost of rebuilding - reading the whole table
        and writing the index again - starts to buy a noticeably smaller, faster index."
    type: float
    default: 0.3
  min_index_bloat_bytes:
    description:
      - "Indexes with less estimated bloat than this many bytes are never chosen. Default C(8388608) (8 MiB, 1024
        pages of 8 kB): below that, the wasted pages fit many times into the default C(shared_buffers) (128 MB)
        and cost no I/O worth a rebuild."
    type: int
    default: 8388608
  concurrently:
    description:
      - Rebuild with C(REINDEX ... CONCURRENTLY), which does not block writes. A failed concurrent rebuild leaves an
        invalid index named C(<index>_ccnew) behind; drop it (C(DROP INDEX CONCURRENTLY)) before retrying.
      - False takes a lock that blocks writes to the table for the whole rebuild.
    type: bool
    default: true
  lock_timeout:
    description:
      - Seconds a statement may wait for a lock (C(lock_timeout)) before it fails, so that maintenance does not
        queue behind a long transaction and block everybody queued after it. C(0) waits forever.
    type: int
    default: 30
attributes:
  check_mode:
    details: The candidates are chosen as in a real run and returned in RV(steps) with C(status=not_run) and
      their SQL in RV(queries); nothing runs.
extends_documentation_fragment:
  - quantops.platform.postgres
  - quantops.platform.attributes
notes:
  - "Source: seed 002 I(Maintenance Tasks, Weekly Maintenance) (C(VACUUM ANALYZE) of the large tables, C(REINDEX
    INDEX CONCURRENTLY) of bloated indexes, the monthly C(ANALYZE VERBOSE)) and I(Troubleshooting, Issue 1)
    (C(ANALYZE)). It shows the dead-tuple ratio in its autovacuum query but gives no level for it or for index bloat."
  - Without O(statement_timeout) a statement may run as long as it takes (C(0), no limit); O(lock_timeout) still
    bounds the wait for its lock.
  - "Privileges: C(VACUUM)/C(ANALYZE) need ownership of the table (or superuser, or in PostgreSQL 17 the
    C(pg_maintain) role / C(MAINTAIN) privilege); C(REINDEX) needs ownership or C(MAINTAIN) as well. A table the role
    may not maintain fails with the server's message and the other statements still run."
  - C(changed) is true when at least one statement ran (or would run, in check mode). With named relations every run
    changes; with O(auto_select) alone a run right after another one usually finds nothing left to do.
  - The statistics behind the choice are cumulative counters and estimates; C(n_dead_tup) is reset by a vacuum and
    C(reltuples) is refreshed by C(VACUUM) and C(ANALYZE).
seealso:
  - name: VACUUM
    description: The statement run for vacuum_analyze and vacuum.
    link: https://www.postgresql.org/docs/current/sql-vacuum.html
  - name: REINDEX
    description: The statement run for reindex, CONCURRENTLY included.
    link: https://www.postgresql.org/docs/current/sql-reindex.html
  - name: pgsql-bloat-estimation
    description: The B-tree bloat estimate this module computes.
    link: https://github.com/ioguix/pgsql-bloat-estimation
  - module: quantops.platform.postgresql_health_info
author:
  - quantops.platform maintainers (@quantops)
'''

EXAMPLES = r'''
- name: Seed 002 weekly maintenance - VACUUM (ANALYZE) the large tables, then whatever else needs it
  quantops.platform.postgresql_maintenance:
    operations: [vacuum_analyze, reindex]
    tables: [ohlcv_data, technical_analysis]
    auto_select: true
  become: true
  become_user: postgres
  register: pg_maintenance

- name: How long each statement took
  ansible.builtin.debug:
    msg: "{{ pg_maintenance.steps | map(attribute='seconds') | list }}"

- name: Seed 002 Issue 1 - refresh the planner statistics of ohlcv_data
  quantops.platform.postgresql_maintenance:
    operations: [analyze]
    tables: [public.ohlcv_data]
  become: true
  become_user: postgres

- name: Seed 002 index maintenance - rebuild the named index without blocking writes
  quantops.platform.postgresql_maintenance:
    operations: [reindex]
    indexes: [idx_ohlcv_ticker_region_date]
  become: true
  become_user: postgres

- name: What would run (check mode lists the statements)
  quantops.platform.postgresql_maintenance:
    operations: [vacuum_analyze, reindex]
    dead_tuple_ratio: 0.2
  check_mode: true
  become: true
  become_user: postgres
'''

RETURN = r'''
queries:
  description: The SQL of RV(steps), in the order it ran (in check mode, the order it would run).
  returned: always
  type: list
  elements: str
  sample: ['VACUUM (ANALYZE) "public"."ohlcv_data"', 'REINDEX INDEX CONCURRENTLY "public"."ohlcv_data_pkey"']
steps:
  description: The maintenance steps in the order they ran (or would run), with their outcome.
  returned: always
  type: list
  elements: dict
  contains:
    operation:
      description: C(vacuum_analyze), C(vacuum), C(analyze), C(reindex_index) or C(reindex_table).
      type: str
      sample: vacuum_analyze
    relation:
      description: C(schema.name) of the table or index; null for a database-wide C(ANALYZE).
      type: str
      sample: public.ohlcv_data
    reason:
      description: Why it was chosen (C(named) or the figures that selected it).
      type: str
      sample: "dead tuples 45000 = 31.0 % of 145000 (>= 10.0 % and >= 1000)"
    sql:
      description: The statement text, identifiers quoted.
      type: str
      sample: VACUUM (ANALYZE) "public"."ohlcv_data"
    status:
      description: C(ok), C(failed) or C(not_run) (check mode).
      type: str
      sample: ok
    seconds:
      description: Wall-clock seconds the statement took; null when not run.
      type: float
      sample: 1.274
    error:
      description: The server's message when it failed.
      type: str
      returned: when status is failed
      sample: canceling statement due to lock timeout
total_seconds:
  description: Sum of the seconds of the statements that ran.
  returned: always
  type: float
  sample: 3.41
tables:
  description: Tables considered by the automatic choice with their figures; empty when O(auto_select) is false.
  returned: always
  type: list
  elements: dict
  sample: [{"schema": "public", "name": "ohlcv_data", "live_tuples": 100000, "dead_tuples": 45000, "dead_tuple_ratio": 0.3103}]
indexes:
  description: >-
    B-tree indexes considered by the automatic choice with the estimate (pages, expected_pages, bloat_pages,
    bloat_bytes, bloat_ratio, size_bytes, reliable); empty when O(auto_select) is false or C(reindex) is not in O(operations).
  returned: always
  type: list
  elements: dict
  sample: [{"schema": "public", "table": "ohlcv_data", "name": "ohlcv_data_pkey", "pages": 420, "expected_pages": 276,
            "bloat_pages": 144, "bloat_bytes": 1179648, "bloat_ratio": 0.3429, "size_bytes": 3440640, "reliable": true}]
thresholds:
  description: The thresholds applied.
  returned: always
  type: dict
  sample: {"dead_tuple_ratio": 0.1, "min_dead_tuples": 1000, "index_bloat_ratio": 0.3, "min_index_bloat_bytes": 8388608}
'''

import time

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.quantops.platform.plugins.module_utils.postgres import (
    Query, fetch_all_dicts, fetch_one_dict, pg_session, postgres_common_argument_spec, psycopg, start_module,
    validate_identifier
)
from ansible_collections.quantops.platform.plugins.module_utils import maintenance as mt

STATEMENT_TIMEOUT = 0


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        operations=dict(type='list', elements='str', choices=list(mt.OPERATIONS), default=['vacuum_analyze']),
        tables=dict(type='list', elements='str', default=[]),
        indexes=dict(type='list', elements='str', default=[]),
        reindex_tables=dict(type='list', elements='str', default=[]),
        auto_select=dict(type='bool'),
        schemas=dict(type='list', elements='str'),
        dead_tuple_ratio=dict(type='float', default=0.1),
        min_dead_tuples=dict(type='int', default=1000),
        index_bloat_ratio=dict(type='float', default=0.3),
        min_index_bloat_bytes=dict(type='int', default=8388608),
        concurrently=dict(type='bool', default=True),
        lock_timeout=dict(type='int', default=30),
    )
    return spec


def validate_options(params):
    """Return (tables, indexes, reindex_tables, auto_select) as parsed names; raise ValueError for the user."""
    if not params.get('operations'):
        raise ValueError('operations must name at least one of: %s' % ', '.join(mt.OPERATIONS))
    for option in ('dead_tuple_ratio', 'index_bloat_ratio'):
        value = params.get(option)
        if value is None or not 0 <= value <= 1:
            raise ValueError('%s is a ratio between 0 and 1 (0.1 = 10 %%), got %s' % (option, value))
    for option in ('min_dead_tuples', 'min_index_bloat_bytes', 'lock_timeout'):
        if params.get(option) is None or params[option] < 0:
            raise ValueError('%s must be 0 or more, got %s' % (option, params.get(option)))
    try:
        tables = [mt.parse_relation(t, 'table') for t in params.get('tables') or []]
        indexes = [mt.parse_relation(i, 'index') for i in params.get('indexes') or []]
        reindex_tables = [mt.parse_relation(t, 'table') for t in params.get('reindex_tables') or []]
        for schema in params.get('schemas') or []:
            validate_identifier(schema, 'schema')
    except ValueError as e:
        raise ValueError(to_native(e))
    if (indexes or reindex_tables) and 'reindex' not in params['operations']:
        raise ValueError('indexes and reindex_tables are rebuilt only with reindex in operations; add it or leave '
                         'them empty')
    auto = params.get('auto_select')
    if auto is None:
        auto = not (tables or indexes or reindex_tables)
    return tables, indexes, reindex_tables, auto


def lookup(cur, names, kinds, what, database):
    """Check that each (schema, name) exists with one of ``kinds``; return dicts with reason 'named'."""
    found = []
    for schema, name in names:
        row = fetch_one_dict(cur, mt.RELATION_LOOKUP, (schema, name))
        if row is None or row['kind'] not in kinds:
            raise ValueError('%s %s.%s does not exist in database %s (or is not a %s): check the name and its '
                             'schema' % (what, schema, name, database, what))
        found.append({'schema': schema, 'name': name, 'reason': 'named'})
    return found


def merge(named, selected):
    seen = set((n['schema'], n['name']) for n in named)
    return named + [s for s in selected if (s['schema'], s['name']) not in seen]


def run_module():
    module, (tables, indexes, reindex_tables, auto) = start_module(argument_spec(), validate_options)
    params = module.params

    operations = params['operations']
    thresholds = dict(dead_tuple_ratio=params['dead_tuple_ratio'], min_dead_tuples=params['min_dead_tuples'],
                      index_bloat_ratio=params['index_bloat_ratio'],
                      min_index_bloat_bytes=params['min_index_bloat_bytes'])
    result = dict(changed=False, steps=[], queries=[], total_seconds=0.0, tables=[], indexes=[],
                  thresholds=thresholds)
    with pg_session(module, STATEMENT_TIMEOUT) as conn:
        cur = conn.cursor()
        try:
            cur.execute(Query('SET lock_timeout = {t}', literals={'t': '%ds' % params['lock_timeout']}).compose(conn))
            database = fetch_one_dict(cur, 'SELECT current_database() AS database')['database']
            named_tables = lookup(cur, tables, ('r', 'p', 'm'), 'table', database)
            named_indexes = lookup(cur, indexes, ('i', 'I'), 'index', database)
            named_reindex = lookup(cur, reindex_tables, ('r', 'p', 'm'), 'table', database)
            selected_tables, selected_indexes = [], []
            if auto and any(op in operations for op in ('vacuum_analyze', 'vacuum', 'analyze')):
                selected_tables, result['tables'] = mt.select_tables(
                    fetch_all_dicts(cur, mt.TABLES_QUERY), params['dead_tuple_ratio'], params['min_dead_tuples'],
                    params['schemas'])
            if auto and 'reindex' in operations:
                selected_indexes, result['indexes'] = mt.select_indexes(
                    fetch_all_dicts(cur, mt.INDEX_INPUTS_QUERY), params['index_bloat_ratio'],
                    params['min_index_bloat_bytes'], params['schemas'])
        except ValueError as e:
            module.fail_json(msg=to_native(e), **result)
        except psycopg.Error as e:
            module.fail_json(msg='Could not read the statistics of %s: %s' % (params['login_db'], to_native(e).strip()),
                             **result)

        steps = mt.plan(operations, merge(named_tables, selected_tables), merge(named_indexes, selected_indexes),
                        named_reindex, params['concurrently'])
        if 'analyze' in operations and not auto and not named_tables and not any(
                op in operations for op in ('vacuum', 'vacuum_analyze')):
            steps.insert(0, {'operation': 'analyze', 'relation': None, 'reason': 'database-wide ANALYZE',
                             'query': Query('ANALYZE')})

        failed = []
        for step in steps:
            query = step.pop('query')
            step['sql'] = query.as_string(conn)
            result['queries'].append(step['sql'])
            step['seconds'] = None
            if module.check_mode:
                step['status'] = 'not_run'
                continue
            started = time.monotonic()
            try:
                cur.execute(query.compose(conn))
                step['status'] = 'ok'
            except psycopg.Error as e:
                step['status'] = 'failed'
                step['error'] = to_native(e).strip().splitlines()[0]
                if step['operation'].startswith('reindex') and params['concurrently']:
                    step['error'] += (' (a failed concurrent rebuild may leave an invalid index named <index>_ccnew: '
                                      'drop it with DROP INDEX CONCURRENTLY)')
                failed.append(step)
            step['seconds'] = round(time.monotonic() - started, 3)
            result['total_seconds'] += step['seconds']
        result['total_seconds'] = round(result['total_seconds'], 3)
        result['steps'] = steps
        result['changed'] = bool(steps)
    if failed:
        module.fail_json(msg='%d of %d maintenance statements failed: %s' % (
            len(failed), len(steps), '; '.join('%s: %s' % (f['sql'], f['error']) for f in failed)), **result)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
