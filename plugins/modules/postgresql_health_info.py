#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: postgresql_health_info
short_description: Measure and judge the morning health figures of the quant platform database
version_added: 0.1.0
description:
  - Connects to one PostgreSQL database (default C(quant_platform)) and returns the figures of the
    PostgreSQL operations guide's Morning Checklist (seed 002) as structured data, each judged
    C(ok), C(warning), C(critical) or C(unknown) against thresholds whose sources are listed under O(thresholds).
  - "Checks: database size (C(pg_database_size)); client connections to the database and to the server
    against C(max_connections); statements in C(pg_stat_statements) slower than
    C(slow_statement_ms) (see O(thresholds)) on average; the heap cache hit ratio of the seed's Database Health
    Summary (C(pg_statio_user_tables)); index hit ratio and dead-tuple ratio per table, with the chunks of a
    TimescaleDB hypertable added up under the hypertable; data freshness, the age of the latest row per
    region of the OHLCV table; chunk counts per hypertable, compressed and uncompressed."
  - A check that cannot be measured (extension missing, table missing, privilege missing) is returned with
    status C(unknown) and a message saying what to do; the module fails only for bad options or when it
    cannot connect.
  - The session is read-only (C(SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY)) and the module never
    reports a change, so it runs the same in check mode.
options:
  checks:
    description:
      - Which checks to run. By default all of them.
      - C(index_hit_ratio) and C(dead_tuples) share one read of the table statistics.
    type: list
    elements: str
    choices: [ database_size, connections, slow_statements, cache_hit_ratio, index_hit_ratio, dead_tuples,
               freshness, hypertable_chunks ]
    default: [ database_size, connections, slow_statements, cache_hit_ratio, index_hit_ratio, dead_tuples,
               freshness, hypertable_chunks ]
  thresholds:
    description:
      - Overrides of the default thresholds, as a dict of key to number. Keys not given keep their default.
      - An unknown key, a value that is not a number (numeric strings are accepted), a negative value, a
        percentage above 100 or a warning level past its critical level makes the module fail.
      - C(null) disables a level where noted.
      - "C(database_size_warning_bytes) (bytes, default C(85899345920) = 80 GB, warning when size > it):
        80 % of the critical size, the headroom seed 003 gives storage (Scaling Triggers: storage
        auto_expand at usage > 80 %); at the ~1 GB/month growth seed 002 expects, about 20 months to act."
      - "C(database_size_critical_bytes) (bytes, default C(107374182400) = 100 GB, critical when size > it):
        seed 002 Alert Rules, critical C(DatabaseSizeCritical), database > 100GB (pg_size_pretty units,
        1 GB = 1024^3 bytes)."
      - "C(connections_warning) (connections, default C(20), warning when the client connections to the
        database, this module's session excluded, are >= it): seed 002 Morning Checklist, Active
        Connections expected < 20."
      - "C(connections_critical_pct) (percent, default C(80), critical when the client connections to the
        whole server are >= this share of C(max_connections - superuser_reserved_connections -
        reserved_connections); null disables): postgres_exporter postgres-mixin C(PostgreSQLHighConnections)
        and awesome-prometheus-alerts C(PostgresqlTooManyConnections) alert at 80 % (as a warning), seed 003
        Resource Utilization Limits set Database Connections < 80 %. Since the warning is already seed 002's
        20 connections, crossing the seed 003 limit is the critical step."
      - "C(slow_statement_ms) (milliseconds, default C(1000)): a statement is slow when its
        C(mean_exec_time) is > it; seed 002 Morning Checklist and Weekly Maintenance queries."
      - "C(slow_statements_warning) (statements, default C(10), warning when the count of slow statements is
        >= it): seed 002 Morning Checklist, Slow Queries expected < 10."
      - "C(slow_statements_critical) (statements, default C(null) = none, critical when >= it): the seeds have
        no critical level for slow statements (seed 002 C(SlowQueriesHigh) is a warning)."
      - "C(cache_hit_warning_pct) (percent, default C(95), warning when the ratio is < it): seed 003 Database
        Performance SLO, Cache Hit Ratio > 95 %."
      - "C(cache_hit_critical_pct) (percent, default C(90), critical when < it; null disables): twice the
        miss rate the seed 003 SLO allows, the same 90 % line seed 002 draws for C(IndexHitRateLow);
        postgres-mixin C(PostgreSQLCacheHitRatio) warns below 98 % and has no critical level."
      - "C(hit_ratio_min_blocks) (blocks, default C(1000)): the cache hit ratio and a table's index hit ratio
        are not judged (status C(ok), not evaluated) over fewer block requests. Below 1000 requests (8 MB) a
        few cold reads after a restart decide the ratio, 50 of them are already the whole 5 % miss budget of
        seed 003; the anchors judge a rate over minutes of traffic for the same reason."
      - "C(index_hit_warning_pct) (percent, default C(90), warning when a table's index hit ratio is < it):
        seed 002 Alert Rules, warning C(IndexHitRateLow), index hit rate < 90 %."
      - "C(index_hit_critical_pct) (percent, default C(null) = none, critical when < it): no critical level in
        the seeds."
      - "C(dead_tuple_warning_pct) (percent, default C(10), warning when n_dead_tup / (n_live_tup +
        n_dead_tup) is >= it): awesome-prometheus-alerts C(PostgresqlTooManyDeadTuples) and postgres-mixin
        C(PostgresHasTooManyDeadTuples) (>= 0.1, warning)."
      - "C(dead_tuple_critical_pct) (percent, default C(null) = none, critical when >= it): no critical level in
        the seeds or the anchors."
      - "C(dead_tuple_min_live_tuples) (tuples, default C(1000)): tables with fewer live tuples are not
        judged. They fill about ten 8 kB pages, so their dead tuples cost nothing measurable, while
        autovacuum's fixed C(autovacuum_vacuum_threshold) of 50 alone is 5 % of them; the anchors suppress the
        same noise with C(n_dead_tup > 10000)."
      - "C(freshness_warning_hours) (hours, default C(24), warning when the latest row of a region is >= it
        old): seed 002 Morning Checklist step 2, latest OHLCV data should be < 24 hours old. Freshness is
        never critical: the seed's C(DataStale) alert is a warning too."
      - "C(freshness_stale_days) (days, default C(7)): data older than this is named as seed 002's
        C(DataStale) alert in the message; the status stays C(warning)."
      - "C(uncompressed_chunks_warning) (chunks, default C(100), warning when a hypertable has more
        uncompressed chunks): seed 002 Alert Rules, info C(CompressionNotEnabled), > 100 uncompressed chunks.
        Judged only when compression is available (C(timescaledb.license=timescale)); with the Apache-only
        build the check is C(ok) and its message says compression needs the TSL build."
    type: dict
    default: {}
  as_of:
    description:
      - Reference time for the freshness check, as an ISO 8601 date (C(2024-06-28), meaning 00:00 UTC) or
        timestamp (C(2024-06-28T18:00:00Z), C(2024-06-28 18:00+09:00)); a timestamp without offset is UTC.
      - Defaults to the current time. Set it when the data are historical, as in the lab.
    type: str
  freshness_schema:
    description:
      - Schema of O(freshness_table).
    type: str
    default: public
  freshness_table:
    description:
      - Table (or view) holding the market data whose latest row per group is checked.
      - Quoted as an identifier, never interpolated. When it does not exist the freshness check is C(unknown).
    type: str
    default: ohlcv_data
  freshness_time_column:
    description:
      - Column of type C(date), C(timestamp) or C(timestamptz) giving the time of a row.
      - A C(date) D is a daily bar complete when day D ends, so its age is counted from D+1 00:00 UTC;
        a C(timestamp) without time zone is taken as UTC.
    type: str
    default: date
  freshness_group_column:
    description:
      - Column the latest row is computed per (one check per value).
    type: str
    default: region
extends_documentation_fragment:
  - quantops.platform.postgres
  - quantops.platform.attributes
  - quantops.platform.attributes.info_module
notes:
  - Without O(statement_timeout) each query may run 60 seconds (C(60s)). The freshness query reads the whole OHLCV
    table, so keep a limit on large databases.
  - "Privileges: connect as a superuser or as a role granted C(pg_monitor) (which includes C(pg_read_all_stats)
    and C(pg_read_all_settings)); without it C(pg_stat_activity) hides the state of other roles' sessions. The
    freshness check also needs C(SELECT) on O(freshness_table); without it that check is C(unknown)."
  - "C(pg_stat_statements) must be in C(shared_preload_libraries) (server restart) and created with
    C(CREATE EXTENSION pg_stat_statements) in the checked database; otherwise the slow-statements check is
    C(unknown). Its count covers every database of the server, as the seed's query does; the query texts are
    not returned (utility statements can keep literals such as passwords), only C(queryid) and timings."
  - "Chunks of hypertables appear in C(pg_stat_user_tables) one by one; the index-hit and dead-tuple checks add
    them up under their hypertable and leave out the other TimescaleDB internal tables."
  - The cache hit ratio, index hit ratio and dead-tuple figures are cumulative since the last statistics reset
    (or server start for the block counters); just after a restart they describe few reads.
  - Statuses rank C(critical) > C(warning) > C(unknown) > C(ok); O(checks) can drop a check that cannot apply.
seealso:
  - name: PostgreSQL monitoring statistics
    description: pg_stat_activity, pg_stat_user_tables and pg_statio_user_tables.
    link: https://www.postgresql.org/docs/current/monitoring-stats.html
  - name: pg_stat_statements
    description: The extension counting statement execution times.
    link: https://www.postgresql.org/docs/current/pgstatstatements.html
  - name: TimescaleDB chunks view
    description: timescaledb_information.chunks, read for the chunk counts.
    link: https://docs.timescale.com/api/latest/informational-views/chunks/
author:
  - quantops.platform maintainers (@quantops)
'''

EXAMPLES = r'''
- name: Morning checklist of the platform database over the local unix socket
  quantops.platform.postgresql_health_info:
    login_unix_socket: /var/run/postgresql
  become: true
  become_user: postgres
  register: pg_health

- name: Show the checklist
  ansible.builtin.debug:
    msg: "{{ pg_health.checks | quantops.platform.health_checklist }}"

- name: Fail the play on a critical finding
  ansible.builtin.assert:
    that: pg_health.critical_count == 0
    fail_msg: "{{ pg_health.checks | quantops.platform.health_checklist(include_ok=false) }}"

- name: Lab with historical market data, judged as of their last trading day
  quantops.platform.postgresql_health_info:
    login_host: 127.0.0.1
    login_user: monitor
    login_password: "{{ vault_monitor_password }}"
    as_of: "2024-06-28T22:00:00Z"
    thresholds:
      freshness_warning_hours: 72      # a weekend between two daily bars is normal
      connections_warning: 40
      slow_statements_critical: 50
  register: pg_health

- name: Only the data checks, on another table layout
  quantops.platform.postgresql_health_info:
    login_unix_socket: /var/run/postgresql
    login_db: research
    checks: [freshness, hypertable_chunks]
    freshness_schema: market
    freshness_table: bars_1d
    freshness_time_column: ts
    freshness_group_column: venue
  become: true
  become_user: postgres
'''

RETURN = r'''
status:
  description: Worst status of all checks (C(critical) > C(warning) > C(unknown) > C(ok)).
  returned: always
  type: str
  sample: warning
critical_count:
  description: Number of checks with status C(critical).
  returned: always
  type: int
  sample: 0
warning_count:
  description: Number of checks with status C(warning).
  returned: always
  type: int
  sample: 2
unknown_count:
  description: Number of checks with status C(unknown).
  returned: always
  type: int
  sample: 1
ok_count:
  description: Number of checks with status C(ok).
  returned: always
  type: int
  sample: 9
checks:
  description: One dict per check and subject (table, region, hypertable), in the order of O(checks).
  returned: always
  type: list
  elements: dict
  contains:
    check:
      description: Check kind, one of the O(checks) choices.
      type: str
      sample: freshness
    name:
      description: Display name, with the subject in parentheses.
      type: str
      sample: Data freshness (FX)
    subject:
      description: Table, region or hypertable the check is about; null for database-wide checks.
      type: str
      sample: FX
    value:
      description: Measured value, in the unit of the check; null when not measured or not evaluated.
      type: float
      sample: 7848.0
    unit:
      description: Unit of value and thresholds (C(bytes), C(connections), C(statements), C(percent), C(hours), C(chunks)).
      type: str
      sample: hours
    display:
      description: Value rendered for people.
      type: str
      sample: 327 days old
    status:
      description: C(ok), C(warning), C(critical) or C(unknown).
      type: str
      sample: warning
    warning:
      description: Warning threshold applied, in unit; null when none.
      type: float
      sample: 24
    critical:
      description: Critical threshold applied, in unit; null when none. For connections, the server-wide count.
      type: float
      sample: null
    operator:
      description: How value is compared with the thresholds (C(>), C(>=), C(<)).
      type: str
      sample: ">="
    message:
      description: What was measured and, for a finding, what to do.
      type: str
      sample: Latest row of public.ohlcv_data for region FX is 2023-12-31, 327 days old (warning >= 24 h, seed 002).
    source:
      description: Where each threshold of the check comes from.
      type: str
      sample: "freshness_warning_hours: seed 002 Morning Checklist step 2: latest OHLCV data should be < 24 hours old"
checklist:
  description: The checks rendered as lines, as the P(quantops.platform.health_checklist#filter) filter does.
  returned: always
  type: list
  elements: str
  sample:
    - "\u2713 Database size: 12.3 MB"
    - "\u26a0 Data freshness (FX): 327 days old (warning >= 24 h)"
database:
  description: Database the checks ran in, as C(current_database) returns it.
  returned: always
  type: str
  sample: quant_platform
server_version:
  description: Server version string (C(server_version) setting).
  returned: always
  type: str
  sample: "17.2 (Debian 17.2-1.pgdg120+1)"
server_version_num:
  description: Server version number (C(server_version_num) setting).
  returned: always
  type: int
  sample: 170002
as_of:
  description: Reference time used for freshness, ISO 8601 in UTC.
  returned: always
  type: str
  sample: "2024-06-28T22:00:00+00:00"
thresholds:
  description: Thresholds in effect after O(thresholds) overrides.
  returned: always
  type: dict
  sample: {"connections_warning": 20, "freshness_warning_hours": 24, "slow_statement_ms": 1000}
timescaledb:
  description: The TimescaleDB extension in the checked database.
  returned: always
  type: dict
  contains:
    installed:
      description: Whether the extension is created in the database.
      type: bool
      sample: true
    version:
      description: Installed extension version; null when not installed.
      type: str
      sample: 2.17.2
    available_version:
      description: Default version the server could install (C(pg_available_extensions)); null when not packaged.
      type: str
      sample: 2.17.2
    license:
      description: Value of C(timescaledb.license) (C(apache) or C(timescale)); null when the library is not loaded.
      type: str
      sample: apache
    compression_available:
      description: Whether compression can be used (C(license=timescale) and installed).
      type: bool
      sample: false
database_size_bytes:
  description: Size of the database in bytes; null when the check was not selected.
  returned: always
  type: int
  sample: 12897439
connections:
  description: Client connection counts and limits; null when the check was not selected.
  returned: always
  type: dict
  contains:
    database_total:
      description: Client connections to the database, this module's session excluded.
      type: int
      sample: 4
    database_active:
      description: Those of them with C(state=active).
      type: int
      sample: 1
    database_idle_in_transaction:
      description: Those of them with C(state=idle in transaction).
      type: int
      sample: 0
    server_total:
      description: Client connections to the whole server, this module's session included.
      type: int
      sample: 6
    max_connections:
      description: Setting C(max_connections).
      type: int
      sample: 100
    superuser_reserved_connections:
      description: Setting C(superuser_reserved_connections).
      type: int
      sample: 3
    reserved_connections:
      description: Setting C(reserved_connections) (PostgreSQL 16+, 0 before).
      type: int
      sample: 0
    usable:
      description: Slots ordinary roles can use.
      type: int
      sample: 97
    utilization_pct:
      description: server_total as a percentage of usable.
      type: float
      sample: 6.2
slow_statements:
  description: Slow statements from pg_stat_statements; null when the check was not selected.
  returned: always
  type: dict
  contains:
    installed:
      description: Whether pg_stat_statements is created in the database.
      type: bool
      sample: true
    schema:
      description: Schema of the extension.
      type: str
      sample: public
    threshold_ms:
      description: The C(slow_statement_ms) threshold applied, in milliseconds.
      type: float
      sample: 1000
    count:
      description: Statements, all databases, with mean_exec_time above threshold_ms; null when unreadable.
      type: int
      sample: 3
    count_current_database:
      description: Those of them run in the checked database.
      type: int
      sample: 2
    statements:
      description: Number of entries in pg_stat_statements.
      type: int
      sample: 412
    top:
      description: Up to 5 slowest by mean, with C(queryid), C(database), C(role), C(calls), C(mean_exec_time_ms), C(total_exec_time_ms).
      type: list
      elements: dict
      sample: [{"queryid": 4207335113726372212, "database": "quant_platform", "role": "quant", "calls": 12,
                "mean_exec_time_ms": 1840.52, "total_exec_time_ms": 22086.24}]
    error:
      description: Why the view could not be read, when it could not.
      type: str
      sample: pg_stat_statements must be loaded via "shared_preload_libraries"
cache_hit_ratio:
  description: Heap cache hit ratio of user tables, 0 to 1 (seed 002 Appendix); null when nothing was read or not selected.
  returned: always
  type: float
  sample: 0.9934
tables:
  description: Statistics per user table, hypertable chunks added up under their hypertable; empty when neither
    C(index_hit_ratio) nor C(dead_tuples) was selected.
  returned: always
  type: list
  elements: dict
  contains:
    schema:
      description: Schema of the table.
      type: str
      sample: public
    name:
      description: Table name.
      type: str
      sample: ohlcv_data
    is_hypertable:
      description: Whether the figures add up the chunks of a hypertable.
      type: bool
      sample: true
    chunks:
      description: Number of chunk tables added up (0 for a plain table).
      type: int
      sample: 52
    live_tuples:
      description: n_live_tup.
      type: int
      sample: 750000
    dead_tuples:
      description: n_dead_tup.
      type: int
      sample: 1200
    dead_tuple_ratio:
      description: dead / (live + dead), 0 to 1; null for an empty table.
      type: float
      sample: 0.0016
    heap_blks_hit:
      description: Heap blocks found in shared_buffers.
      type: int
      sample: 98231
    heap_blks_read:
      description: Heap blocks read from outside shared_buffers.
      type: int
      sample: 811
    idx_blks_hit:
      description: Index blocks found in shared_buffers; null for a table without index.
      type: int
      sample: 40213
    idx_blks_read:
      description: Index blocks read from outside shared_buffers; null for a table without index.
      type: int
      sample: 310
    index_hit_ratio:
      description: idx_blks_hit / (idx_blks_hit + idx_blks_read), 0 to 1; null when no index block was read.
      type: float
      sample: 0.9923
    last_vacuum:
      description: Latest manual vacuum (ISO 8601), null if never.
      type: str
      sample: null
    last_autovacuum:
      description: Latest autovacuum (ISO 8601), null if never.
      type: str
      sample: "2024-06-28T02:10:11.120000+00:00"
freshness:
  description: Latest row per group of O(freshness_table); empty when the table could not be read or the check was not selected.
  returned: always
  type: list
  elements: dict
  contains:
    group:
      description: Value of O(freshness_group_column); the string "(null)" stands for NULL.
      type: str
      sample: FX
    latest:
      description: Latest value of O(freshness_time_column), ISO 8601.
      type: str
      sample: "2023-12-31"
    age_seconds:
      description: Seconds from the latest row to O(as_of) (a date counts from the end of its day); 0 when in the future.
      type: float
      sample: 28252800.0
    age_hours:
      description: The same in hours.
      type: float
      sample: 7848.0
hypertables:
  description: Chunk counts per hypertable; empty without TimescaleDB or when the check was not selected.
  returned: always
  type: list
  elements: dict
  contains:
    schema:
      description: Schema of the hypertable.
      type: str
      sample: public
    name:
      description: Hypertable name.
      type: str
      sample: ohlcv_data
    compression_enabled:
      description: Whether C(timescaledb.compress) is set on it.
      type: bool
      sample: false
    total_chunks:
      description: Number of chunks.
      type: int
      sample: 160
    compressed_chunks:
      description: Compressed chunks.
      type: int
      sample: 0
    uncompressed_chunks:
      description: Uncompressed chunks.
      type: int
      sample: 160
'''

import datetime

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.quantops.platform.plugins.module_utils import health
from ansible_collections.quantops.platform.plugins.module_utils.postgres import (
    IdentifierError, Query, fetch_all_dicts, fetch_one_dict, pg_session, postgres_common_argument_spec, psycopg,
    start_module, validate_identifier
)

# Schemas of TimescaleDB's own tables: their rows in pg_stat_user_tables are
# chunks (added up under their hypertable) or catalog tables (left out).
TIMESCALEDB_SCHEMA_PREFIXES = ('_timescaledb', 'timescaledb_')

TIME_TYPES = ('date', 'timestamp', 'timestamptz')

TOP_SLOW_STATEMENTS = 5

STATEMENT_TIMEOUT = '60s'


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        checks=dict(type='list', elements='str', choices=list(health.CHECK_NAMES), default=list(health.CHECK_NAMES)),
        thresholds=dict(type='dict', default={}),
        as_of=dict(type='str'),
        freshness_schema=dict(type='str', default='public'),
        freshness_table=dict(type='str', default='ohlcv_data'),
        freshness_time_column=dict(type='str', default='date'),
        freshness_group_column=dict(type='str', default='region'),
    )
    return spec


def validate_options(params, now=None):
    """Check the options that need more than the argument spec; return (thresholds, as_of).

    Raises ValueError with a message for the user.  Runs before connecting.
    """
    try:
        thresholds = health.merge_thresholds(params.get('thresholds') or {})
    except health.ThresholdError as e:
        raise ValueError(to_native(e))
    if params.get('as_of'):
        as_of = health.parse_as_of(params['as_of'])
    else:
        as_of = now or datetime.datetime.now(datetime.timezone.utc)
    for option in ('freshness_schema', 'freshness_table', 'freshness_time_column', 'freshness_group_column'):
        try:
            validate_identifier(params.get(option), option)
        except IdentifierError as e:
            raise ValueError(to_native(e))
    if not params.get('checks'):
        raise ValueError('checks must name at least one of: %s' % ', '.join(health.CHECK_NAMES))
    return thresholds, as_of


def freshness_query(schema, table, time_column, group_column):
    """Latest time per group; every name is an identifier of the Query, none interpolated."""
    return Query('SELECT {group_col}::text AS grp, max({time_col}) AS latest FROM {table} GROUP BY 1 ORDER BY 1',
                 {'group_col': group_column, 'time_col': time_column, 'table': (schema, table)})


def aggregate_tables(rows, chunk_map):
    """Add the statistics of hypertable chunks up under their hypertable.

    ``rows``: pg_stat_user_tables joined with pg_statio_user_tables (schema, name, ...).
    ``chunk_map``: {(chunk_schema, chunk_name): (hypertable_schema, hypertable_name)}.
    Rows in TimescaleDB's internal schemas that are not chunks (catalog tables,
    compressed-chunk storage) are left out.  Returns a list sorted by schema, name.
    """
    summed = ('live_tuples', 'dead_tuples', 'heap_blks_hit', 'heap_blks_read')
    nullable = ('idx_blks_hit', 'idx_blks_read')
    tables = {}
    hypertables = set(chunk_map.values())
    for row in rows:
        key = (row['schema'], row['name'])
        is_chunk = key in chunk_map
        if is_chunk:
            key = chunk_map[key]
        elif row['schema'].startswith(TIMESCALEDB_SCHEMA_PREFIXES):
            continue
        entry = tables.get(key)
        if entry is None:
            entry = {'schema': key[0], 'name': key[1], 'is_hypertable': key in hypertables, 'chunks': 0,
                     'last_vacuum': None, 'last_autovacuum': None}
            for field in summed:
                entry[field] = 0
            for field in nullable:
                entry[field] = None
            tables[key] = entry
        if is_chunk:
            entry['chunks'] += 1
        for field in summed:
            entry[field] += int(row.get(field) or 0)
        for field in nullable:
            if row.get(field) is not None:
                entry[field] = (entry[field] or 0) + int(row[field])
        for field in ('last_vacuum', 'last_autovacuum'):
            value = row.get(field)
            if value is not None and (entry[field] is None or value > entry[field]):
                entry[field] = value
    result = []
    for key in sorted(tables):
        entry = tables[key]
        live, dead = entry['live_tuples'], entry['dead_tuples']
        entry['dead_tuple_ratio'] = round(dead / float(live + dead), 4) if live + dead > 0 else None
        pct = health.ratio_pct(entry['idx_blks_hit'], entry['idx_blks_read'])
        entry['index_hit_ratio'] = round(pct / 100.0, 4) if pct is not None else None
        for field in ('last_vacuum', 'last_autovacuum'):
            if hasattr(entry[field], 'isoformat'):
                entry[field] = entry[field].isoformat()
        result.append(entry)
    return result


class HealthInfo(object):
    """Runs the selected checks on one connection."""

    def __init__(self, module, conn, thresholds, as_of, db_error=Exception):
        self.module = module
        self.conn = conn
        self.cur = conn.cursor()
        self.thresholds = thresholds
        self.as_of = as_of
        self.db_error = db_error
        self.database = None
        self.server_version_num = None
        self.timescaledb = {'installed': False, 'version': None, 'available_version': None, 'license': None,
                            'compression_available': False}
        self.chunk_map = {}
        self.result = {
            'database_size_bytes': None,
            'connections': None,
            'slow_statements': None,
            'cache_hit_ratio': None,
            'tables': [],
            'freshness': [],
            'hypertables': [],
        }

    # -- helpers ------------------------------------------------------------
    def all_dicts(self, query, params=None, convert=True):
        return fetch_all_dicts(self.cur, query, params, convert=convert)

    def one_dict(self, query, params=None, convert=True):
        return fetch_one_dict(self.cur, query, params, convert=convert)

    @staticmethod
    def error_text(error):
        text = to_native(error).strip()
        return text.splitlines()[0] if text else type(error).__name__

    def guarded(self, check, name, func, unit=None):
        """Run one check; a database error turns into an unknown check instead of a failure."""
        try:
            return func()
        except self.db_error as e:
            return [health.unknown_check(check, name, 'Query failed: %s' % self.error_text(e), unit=unit)]

    # -- session ------------------------------------------------------------
    def prepare_session(self):
        self.cur.execute('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY')
        info = self.one_dict("SELECT current_database() AS database, current_setting('server_version') AS version, "
                             "current_setting('server_version_num')::int AS version_num")
        self.database = info['database']
        self.server_version_num = info['version_num']
        return info

    def read_timescaledb(self):
        ext = self.one_dict("SELECT e.extversion AS version FROM pg_catalog.pg_extension e "
                            "WHERE e.extname = 'timescaledb'")
        available = self.one_dict("SELECT default_version FROM pg_catalog.pg_available_extensions "
                                  "WHERE name = 'timescaledb'")
        lic = self.one_dict("SELECT current_setting('timescaledb.license', true) AS license")
        self.timescaledb['installed'] = ext is not None
        self.timescaledb['version'] = ext['version'] if ext else None
        self.timescaledb['available_version'] = available['default_version'] if available else None
        self.timescaledb['license'] = (lic or {}).get('license') or None
        self.timescaledb['compression_available'] = health.compression_available(self.timescaledb)
        if self.timescaledb['installed']:
            rows = self.all_dicts('SELECT chunk_schema, chunk_name, hypertable_schema, hypertable_name '
                                  'FROM timescaledb_information.chunks')
            self.chunk_map = dict(((r['chunk_schema'], r['chunk_name']), (r['hypertable_schema'], r['hypertable_name']))
                                  for r in rows)

    # -- checks -------------------------------------------------------------
    def check_database_size(self):
        row = self.one_dict('SELECT pg_database_size(current_database()) AS size')
        self.result['database_size_bytes'] = int(row['size'])
        return [health.check_database_size(self.result['database_size_bytes'], self.thresholds, self.database)]

    def check_connections(self):
        counts = self.one_dict(
            "SELECT "
            "count(*) FILTER (WHERE datname = current_database() AND pid <> pg_backend_pid()) AS database_total, "
            "count(*) FILTER (WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state = 'active') AS database_active, "
            "count(*) FILTER (WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state = 'idle in transaction') AS database_idle_in_transaction, "
            "count(*) AS server_total "
            "FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend'")
        limits = self.one_dict(
            "SELECT current_setting('max_connections')::int AS max_connections, "
            "current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections, "
            "coalesce(current_setting('reserved_connections', true), '0')::int AS reserved_connections")
        figures = dict((k, int(v)) for k, v in counts.items())
        figures.update((k, int(v)) for k, v in limits.items())
        usable = health.usable_connections(figures['max_connections'], figures['superuser_reserved_connections'],
                                           figures['reserved_connections'])
        figures['usable'] = usable
        figures['utilization_pct'] = round(100.0 * figures['server_total'] / usable, 1) if usable > 0 else None
        self.result['connections'] = figures
        return [health.check_connections(figures, self.thresholds, self.database)]

    def check_slow_statements(self):
        limit_ms = self.thresholds['slow_statement_ms']
        figures = {'installed': False, 'schema': None, 'threshold_ms': limit_ms, 'count': None,
                   'count_current_database': None, 'statements': None, 'top': [], 'error': None}
        self.result['slow_statements'] = figures
        ext = self.one_dict("SELECT n.nspname AS schema FROM pg_catalog.pg_extension e "
                            "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
                            "WHERE e.extname = 'pg_stat_statements'")
        if ext is None:
            figures['error'] = ('pg_stat_statements is not installed in %s: add pg_stat_statements to '
                                'shared_preload_libraries (server restart), then CREATE EXTENSION '
                                'pg_stat_statements in this database.' % self.database)
            return [health.check_slow_statements(figures, self.thresholds)]
        figures['installed'] = True
        figures['schema'] = ext['schema']
        # mean_exec_time since PostgreSQL 13, mean_time before.
        mean_col, total_col = ('mean_exec_time', 'total_exec_time')
        if self.server_version_num and self.server_version_num < 130000:
            mean_col, total_col = ('mean_time', 'total_time')
        view = (ext['schema'], 'pg_stat_statements')
        try:
            row = self.one_dict(Query(
                'SELECT count(*) FILTER (WHERE s.{mean} > {limit}) AS count, '
                'count(*) FILTER (WHERE s.{mean} > {limit} AND s.dbid = '
                '(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())) '
                'AS count_current_database, count(*) AS statements FROM {view} AS s',
                {'mean': mean_col, 'view': view}, {'limit': limit_ms}))
            top = self.all_dicts(Query(
                'SELECT s.queryid, d.datname AS database, r.rolname AS role, s.calls, '
                'round(s.{mean}::numeric, 2) AS mean_exec_time_ms, '
                'round(s.{total}::numeric, 2) AS total_exec_time_ms '
                'FROM {view} AS s '
                'LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid '
                'LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid '
                'WHERE s.{mean} > {limit} ORDER BY s.{mean} DESC LIMIT {top}',
                {'mean': mean_col, 'total': total_col, 'view': view},
                {'limit': limit_ms, 'top': TOP_SLOW_STATEMENTS}))
        except self.db_error as e:
            text = self.error_text(e)
            if 'shared_preload_libraries' in text:
                text += ('. pg_stat_statements is created in %s but not loaded: add it to shared_preload_libraries '
                         'and restart the server.' % self.database)
            figures['error'] = text
            return [health.check_slow_statements(figures, self.thresholds)]
        figures['count'] = int(row['count'])
        figures['count_current_database'] = int(row['count_current_database'])
        figures['statements'] = int(row['statements'])
        figures['top'] = top
        return [health.check_slow_statements(figures, self.thresholds)]

    def check_cache_hit(self):
        row = self.one_dict('SELECT coalesce(sum(heap_blks_hit), 0)::bigint AS hit, '
                            'coalesce(sum(heap_blks_read), 0)::bigint AS read '
                            'FROM pg_catalog.pg_statio_user_tables')
        hit, read = int(row['hit']), int(row['read'])
        pct = health.ratio_pct(hit, read)
        self.result['cache_hit_ratio'] = round(pct / 100.0, 4) if pct is not None else None
        return [health.check_cache_hit(hit, read, self.thresholds)]

    def read_tables(self):
        rows = self.all_dicts(
            'SELECT s.schemaname AS schema, s.relname AS name, s.n_live_tup AS live_tuples, '
            's.n_dead_tup AS dead_tuples, s.last_vacuum, s.last_autovacuum, '
            'io.heap_blks_hit, io.heap_blks_read, io.idx_blks_hit, io.idx_blks_read '
            'FROM pg_catalog.pg_stat_user_tables s '
            'JOIN pg_catalog.pg_statio_user_tables io ON io.relid = s.relid '
            'ORDER BY 1, 2', convert=False)
        self.result['tables'] = aggregate_tables(rows, self.chunk_map)
        return self.result['tables']

    def check_freshness(self, schema, table, time_column, group_column):
        label = '%s.%s' % (schema, table)
        columns = self.all_dicts(
            'SELECT a.attname AS column, t.typname AS type FROM pg_catalog.pg_class c '
            'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace '
            'LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped '
            'LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid '
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            (schema, table))
        if not columns:
            return health.check_freshness([], self.thresholds, label, group_column, error=(
                'Table %s does not exist in %s: create the platform schema, or point freshness_schema / '
                'freshness_table at the market-data table.' % (label, self.database)))
        types = dict((c['column'], c['type']) for c in columns if c['column'] is not None)
        if time_column not in types:
            return health.check_freshness([], self.thresholds, label, group_column, error=(
                'Column %s does not exist in %s (freshness_time_column).' % (time_column, label)))
        if types[time_column] not in TIME_TYPES:
            return health.check_freshness([], self.thresholds, label, group_column, error=(
                'Column %s of %s is of type %s; freshness_time_column must be a date, timestamp or timestamptz.'
                % (time_column, label, types[time_column])))
        if group_column not in types:
            return health.check_freshness([], self.thresholds, label, group_column, error=(
                'Column %s does not exist in %s (freshness_group_column).' % (group_column, label)))
        try:
            rows = self.all_dicts(freshness_query(schema, table, time_column, group_column), convert=False)
        except self.db_error as e:
            text = self.error_text(e)
            if 'permission denied' in text:
                text += ' (GRANT SELECT ON %s to the login role)' % label
            return health.check_freshness([], self.thresholds, label, group_column, error='Query failed: %s' % text)
        groups = []
        for row in rows:
            latest = row['latest']
            seconds = health.age_seconds(latest, self.as_of)
            groups.append({
                'group': row['grp'] if row['grp'] is not None else '(null)',
                'latest': latest.isoformat() if latest is not None else None,
                'age_seconds': seconds,
                'age_hours': round(seconds / 3600.0, 2) if seconds is not None else None,
            })
        self.result['freshness'] = groups
        return health.check_freshness(groups, self.thresholds, label, group_column)

    def check_hypertables(self):
        if not self.timescaledb['installed']:
            return health.check_hypertable_chunks([], self.timescaledb, self.thresholds, self.database)
        rows = self.all_dicts(
            'SELECT h.hypertable_schema AS schema, h.hypertable_name AS name, h.compression_enabled, '
            'count(c.chunk_name) AS total_chunks, '
            'count(c.chunk_name) FILTER (WHERE c.is_compressed) AS compressed_chunks, '
            'count(c.chunk_name) FILTER (WHERE NOT c.is_compressed) AS uncompressed_chunks '
            'FROM timescaledb_information.hypertables h '
            'LEFT JOIN timescaledb_information.chunks c '
            'ON c.hypertable_schema = h.hypertable_schema AND c.hypertable_name = h.hypertable_name '
            'GROUP BY 1, 2, 3 ORDER BY 1, 2')
        for row in rows:
            for field in ('total_chunks', 'compressed_chunks', 'uncompressed_chunks'):
                row[field] = int(row[field])
        self.result['hypertables'] = rows
        return health.check_hypertable_chunks(rows, self.timescaledb, self.thresholds, self.database)

    def run(self, selected, params):
        checks = []
        if 'database_size' in selected:
            checks += self.guarded('database_size', 'Database size', self.check_database_size, 'bytes')
        if 'connections' in selected:
            checks += self.guarded('connections', 'Active connections', self.check_connections, 'connections')
        if 'slow_statements' in selected:
            checks += self.guarded('slow_statements', 'Slow statements', self.check_slow_statements, 'statements')
        if 'cache_hit_ratio' in selected:
            checks += self.guarded('cache_hit_ratio', 'Cache hit ratio', self.check_cache_hit, 'percent')
        if 'index_hit_ratio' in selected or 'dead_tuples' in selected:
            try:
                tables = self.read_tables()
                table_error = None
            except self.db_error as e:
                tables, table_error = [], 'Query failed: %s' % self.error_text(e)
            if 'index_hit_ratio' in selected:
                checks += ([health.unknown_check('index_hit_ratio', 'Index hit ratio', table_error, unit='percent')]
                           if table_error else health.check_index_hit(tables, self.thresholds))
            if 'dead_tuples' in selected:
                checks += ([health.unknown_check('dead_tuples', 'Dead tuples', table_error, unit='percent')]
                           if table_error else health.check_dead_tuples(tables, self.thresholds))
        if 'freshness' in selected:
            checks += self.guarded('freshness', 'Data freshness', lambda: self.check_freshness(
                params['freshness_schema'], params['freshness_table'], params['freshness_time_column'],
                params['freshness_group_column']), 'hours')
        if 'hypertable_chunks' in selected:
            checks += self.guarded('hypertable_chunks', 'Hypertable chunks', self.check_hypertables, 'chunks')
        return checks


def run_module():
    module, (thresholds, as_of) = start_module(argument_spec(), validate_options)
    params = module.params

    with pg_session(module, STATEMENT_TIMEOUT) as conn:
        info_collector = HealthInfo(module, conn, thresholds, as_of, db_error=psycopg.Error)
        try:
            server = info_collector.prepare_session()
            info_collector.read_timescaledb()
        except psycopg.Error as e:
            module.fail_json(msg='Could not read server information from %s: %s'
                             % (params['login_db'], info_collector.error_text(e)))
        selected = [name for name in health.CHECK_NAMES if name in params['checks']]
        checks = info_collector.run(selected, params)

    counts = health.count_statuses(checks)
    result = dict(
        changed=False,
        status=health.overall_status(checks),
        critical_count=counts[health.STATUS_CRITICAL],
        warning_count=counts[health.STATUS_WARNING],
        unknown_count=counts[health.STATUS_UNKNOWN],
        ok_count=counts[health.STATUS_OK],
        checks=checks,
        checklist=health.render_checklist(checks),
        database=info_collector.database,
        server_version=server['version'],
        server_version_num=server['version_num'],
        as_of=as_of.isoformat(),
        thresholds=thresholds,
        timescaledb=info_collector.timescaledb,
    )
    result.update(info_collector.result)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
