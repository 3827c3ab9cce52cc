#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: timescaledb_hypertable
short_description: Convert a table to a TimescaleDB hypertable and manage its chunk interval, compression, policies and continuous aggregates
version_added: 0.1.0
description:
  - Converts an existing table to a hypertable (C(create_hypertable) with C(by_range) on the time column and
    the chunk interval, and C(migrate_data)) when it is not one yet, and sets its chunk interval (C(set_chunk_time_interval)).
  - Enables compression with C(segmentby) and C(orderby) settings (C(ALTER TABLE ... SET) with C(timescaledb.compress))
    and manages the compression policy (C(add_compression_policy)), the retention policy (C(add_retention_policy)) and
    continuous aggregates with their refresh policy.
  - Idempotent - the wanted state is compared with C(timescaledb_information.hypertables), C(.dimensions),
    C(.compression_settings), C(.jobs) and C(.continuous_aggregates); only differences are applied, each as one
    statement returned in RV(queries).
  - "License-aware like the quantops.platform.timescaledb role: compression, policies and continuous aggregates
    are Timescale License (TSL) features. On a server with C(timescaledb.license=apache) (Debian's package) the
    module fails before changing anything, naming the license and the features asked for, unless
    O(tsl_required=false): then those features are skipped, listed in RV(skipped) and warned about, and the
    Apache features (hypertable, chunk interval) are still applied."
options:
  table:
    description: The table. It must exist; the module converts it, it does not create tables.
    type: str
    required: true
  schema:
    description: Schema of O(table).
    type: str
    default: public
  time_column:
    description: Time column partitioning the hypertable. Required when O(table) is not a hypertable yet.
    type: str
  chunk_time_interval:
    description:
      - Chunk interval as a PostgreSQL interval (C(3 months), C(7 days)). Changing it applies to new chunks only.
      - Empty keeps the current interval (TimescaleDB's default of 7 days when converting).
    type: str
  migrate_data:
    description:
      - Convert a table that already holds rows, moving them into chunks (C(migrate_data => true); locks the table
        and can take long). Without it a table with rows is refused with a message.
    type: bool
    default: false
  compression:
    description:
      - Compression settings (TSL). Omit to leave them as they are.
    type: dict
    suboptions:
      enabled:
        description: Whether compression is enabled. C(false) disables it (refused by TimescaleDB while chunks are compressed).
        type: bool
        default: true
      segmentby:
        description: Columns to segment by (C(timescaledb.compress_segmentby)), for example C([ticker, region]).
        type: list
        elements: str
        default: []
      orderby:
        description: Order inside a segment (C(timescaledb.compress_orderby)), entries C(column) or C(column DESC), for example C([date DESC]).
        type: list
        elements: str
        default: []
  compress_after:
    description:
      - Compression policy (TSL) - compress chunks older than this interval.
      - C(none) removes the policy; omitted leaves it as it is. Needs O(compression) enabled.
    type: str
  drop_after:
    description:
      - Retention policy (TSL) - drop chunks older than this interval.
      - C(none) removes the policy; omitted leaves it as it is. On the Apache build use
        M(quantops.platform.timescaledb_chunks) O(quantops.platform.timescaledb_chunks#module:drop_older_than) from a runbook instead.
    type: str
  continuous_aggregates:
    description:
      - Continuous aggregates (TSL) on this hypertable, created C(WITH NO DATA) when missing. An existing one is
        compared by name only; its query is not changed (drop it to redefine it).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: View name (in O(schema)).
        type: str
        required: true
      query:
        description:
          - The SELECT of the view (with C(time_bucket)). Taken as SQL as written, like
            community.postgresql.postgresql_query; never build it from untrusted input.
        type: str
        required: true
      start_offset:
        description: Refresh policy C(start_offset) (interval); omit with O(continuous_aggregates[].end_offset) for no policy.
        type: str
      end_offset:
        description: Refresh policy C(end_offset) (interval).
        type: str
      schedule_interval:
        description: Refresh policy C(schedule_interval) (interval).
        type: str
        default: 1 day
  tsl_required:
    description:
      - C(true) - asking for a TSL feature on an Apache-build server fails, naming the license.
      - C(false) - such features are skipped with a warning (the policies on Debian's package).
    type: bool
    default: true
attributes:
  check_mode:
    details: Returns the statements that would run in RV(queries) and runs none of them.
extends_documentation_fragment:
  - quantops.platform.postgres
  - quantops.platform.attributes
notes:
  - "Source: seed 002's TimescaleDB settings - compress after C(1 year), drop after C(5 years), the monthly aggregate
    C(ohlcv_monthly) (see the examples)."
  - Without O(statement_timeout) a statement may run as long as it takes (C(0), no limit), so that O(migrate_data)
    can move a large table into chunks.
  - Connect as the owner of the table (or a superuser); TimescaleDB needs ownership for every statement here.
  - Identifiers are quoted (C(psycopg.sql.Identifier)) and values passed as literals; only
    O(continuous_aggregates[].query) is SQL by design.
seealso:
  - module: quantops.platform.timescaledb_chunks
  - name: create_hypertable
    link: https://docs.timescale.com/api/latest/hypertable/create_hypertable/
    description: TimescaleDB reference.
  - name: Compression settings
    link: https://docs.timescale.com/api/latest/compression/alter_table_compression/
    description: TimescaleDB reference.
author:
  - quantops.platform maintainers (@quantops)
'''

EXAMPLES = r'''
- name: Seed 002 layout of ohlcv_data (TSL build)
  quantops.platform.timescaledb_hypertable:
    login_unix_socket: /var/run/postgresql
    table: ohlcv_data
    time_column: date
    chunk_time_interval: 3 months
    compression:
      segmentby: [ticker, region]
      orderby: [date DESC]
    compress_after: 1 year
    drop_after: 5 years
    continuous_aggregates:
      - name: ohlcv_monthly
        query: >-
          SELECT time_bucket(INTERVAL '1 month', date) AS month, ticker, region,
                 first(open, date) AS open, max(high) AS high, min(low) AS low,
                 last(close, date) AS close, sum(volume) AS volume
          FROM public.ohlcv_data GROUP BY month, ticker, region
        start_offset: 3 months
        end_offset: 1 day
  become: true
  become_user: postgres

- name: Same on Debian's Apache build - hypertable and interval applied, TSL features skipped with a warning
  quantops.platform.timescaledb_hypertable:
    table: ohlcv_data
    time_column: date
    chunk_time_interval: 3 months
    compress_after: 1 year
    tsl_required: false
  become: true
  become_user: postgres
'''

RETURN = r'''
license:
  description: The server's C(timescaledb.license).
  returned: always
  type: str
  sample: apache
hypertable:
  description: State after the run (in check mode, before), from the timescaledb_information views.
  returned: always
  type: dict
  sample: {schema: public, name: ohlcv_data, is_hypertable: true, time_column: date, chunk_time_interval: "90 days",
           compression_enabled: false, segmentby: [], orderby: [], compress_after: null, drop_after: null, continuous_aggregates: []}
queries:
  description: Statements run (or that would run in check mode), in order.
  returned: always
  type: list
  elements: str
skipped:
  description: TSL features skipped on the Apache build with O(tsl_required=false).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.quantops.platform.plugins.module_utils import timescaledb as tsdb
from ansible_collections.quantops.platform.plugins.module_utils.postgres import (
    IdentifierError, Query, QueryRunner, QuotedName, pg_session, postgres_common_argument_spec, psycopg,
    start_module, validate_identifier
)

NONE = 'none'
STATEMENT_TIMEOUT = 0


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        table=dict(type='str', required=True),
        schema=dict(type='str', default='public'),
        time_column=dict(type='str'),
        chunk_time_interval=dict(type='str'),
        migrate_data=dict(type='bool', default=False),
        compression=dict(type='dict', options=dict(
            enabled=dict(type='bool', default=True),
            segmentby=dict(type='list', elements='str', default=[]),
            orderby=dict(type='list', elements='str', default=[]),
        )),
        compress_after=dict(type='str'),
        drop_after=dict(type='str'),
        continuous_aggregates=dict(type='list', elements='dict', default=[], options=dict(
            name=dict(type='str', required=True),
            query=dict(type='str', required=True),
            start_offset=dict(type='str'),
            end_offset=dict(type='str'),
            schedule_interval=dict(type='str', default='1 day'),
        ), required_together=[('start_offset', 'end_offset')]),
        tsl_required=dict(type='bool', default=True),
    )
    return spec


def parse_orderby(entry):
    """'date DESC' -> ('date', 'DESC'); the column is validated, the direction must be ASC or DESC."""
    parts = entry.strip().rsplit(' ', 1)
    direction = 'ASC'
    if len(parts) == 2 and parts[1].upper() in ('ASC', 'DESC'):
        column, direction = parts[0].strip(), parts[1].upper()
    else:
        column = entry.strip()
    return validate_identifier(column, 'compression.orderby column'), direction


def validate(params):
    try:
        validate_identifier(params['schema'], 'schema')
        validate_identifier(params['table'], 'table')
        if params.get('time_column'):
            validate_identifier(params['time_column'], 'time_column')
        opts = {'chunk_time_interval': tsdb.validate_interval(params.get('chunk_time_interval'), 'chunk_time_interval')}
        for name in ('compress_after', 'drop_after'):
            value = params.get(name)
            opts[name] = NONE if value is not None and value.strip().lower() == NONE else tsdb.validate_interval(value, name)
        comp = params.get('compression')
        if comp is not None:
            comp = dict(enabled=comp['enabled'],
                        segmentby=[validate_identifier(c, 'compression.segmentby column') for c in comp['segmentby']],
                        orderby=[parse_orderby(o) for o in comp['orderby']])
        opts['compression'] = comp
        caggs = []
        for cagg in params['continuous_aggregates']:
            validate_identifier(cagg['name'], 'continuous_aggregates name')
            entry = dict(cagg)
            for key in ('start_offset', 'end_offset', 'schedule_interval'):
                entry[key] = tsdb.validate_interval(cagg.get(key), 'continuous_aggregates %s.%s' % (cagg['name'], key))
            caggs.append(entry)
        opts['continuous_aggregates'] = caggs
    except IdentifierError as e:
        raise tsdb.TimescaleError(str(e))
    if opts['compress_after'] not in (None, NONE) and comp is not None and not comp['enabled']:
        raise tsdb.TimescaleError('compress_after needs compression enabled (compression.enabled=true)')
    return opts


def tsl_features(opts):
    names = []
    if opts['compression'] is not None:
        names.append('compression settings')
    if opts['compress_after'] is not None:
        names.append('compression policy (compress_after)')
    if opts['drop_after'] is not None:
        names.append('retention policy (drop_after)')
    if opts['continuous_aggregates']:
        names.append('continuous aggregates')
    return names


def compress_options_sql(comp):
    """Reloptions of ALTER TABLE ... SET (...) with segmentby/orderby as string literals of quoted names."""
    if not comp['enabled']:
        return 'timescaledb.compress = false', {}
    text = 'timescaledb.compress'
    literals = {}
    if comp['segmentby']:
        text += ', timescaledb.compress_segmentby = {segmentby}'
        literals['segmentby'] = QuotedName(names=[(c,) for c in comp['segmentby']])
    if comp['orderby']:
        text += ', timescaledb.compress_orderby = {orderby}'
        literals['orderby'] = QuotedName(names=comp['orderby'])
    return text, literals


class Hypertable(QueryRunner):
    def __init__(self, module, conn, schema, table):
        super(Hypertable, self).__init__(module, conn)
        self.schema = schema
        self.table = table
        self.reg = tsdb.regclass_text(schema, table)

    def read(self, template, literals=None, idents=None):
        return self.rows(Query(template, idents, literals))

    def plan(self, template, literals=None, idents=None):
        self.queries.append(Query(template, idents, literals).as_string(self.conn))

    def state(self):
        lit = {'s': self.schema, 't': self.table}
        exists = self.read('SELECT c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace '
                           'WHERE n.nspname = {s} AND c.relname = {t}', lit)
        st = dict(schema=self.schema, name=self.table, exists=bool(exists), is_hypertable=False, time_column=None,
                  chunk_time_interval=None, compression_enabled=False, segmentby=[], orderby=[],
                  compress_after=None, drop_after=None, continuous_aggregates=[])
        if not exists:
            return st
        ht = self.read('SELECT h.compression_enabled, d.column_name, d.time_interval::text AS time_interval, '
                       'd.time_interval AS iv FROM timescaledb_information.hypertables h '
                       'LEFT JOIN timescaledb_information.dimensions d ON d.hypertable_schema = h.hypertable_schema '
                       'AND d.hypertable_name = h.hypertable_name AND d.dimension_number = 1 '
                       'WHERE h.hypertable_schema = {s} AND h.hypertable_name = {t}', lit)
        if not ht:
            st['rows'] = self.read('SELECT EXISTS (SELECT 1 FROM {tbl}) AS has_rows', idents={'tbl': (self.schema, self.table)}
                                   )[0]['has_rows']
            return st
        st.update(is_hypertable=True, time_column=ht[0]['column_name'], chunk_time_interval=ht[0]['time_interval'],
                  compression_enabled=bool(ht[0]['compression_enabled']))
        settings = self.read('SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc '
                             'FROM timescaledb_information.compression_settings '
                             'WHERE hypertable_schema = {s} AND hypertable_name = {t}', lit)
        seg = sorted((r for r in settings if r['segmentby_column_index']), key=lambda r: r['segmentby_column_index'])
        order = sorted((r for r in settings if r['orderby_column_index']), key=lambda r: r['orderby_column_index'])
        st['segmentby'] = [r['attname'] for r in seg]
        st['orderby'] = ['%s %s' % (r['attname'], 'ASC' if r['orderby_asc'] else 'DESC') for r in order]
        jobs = self.read("SELECT proc_name, config::text AS config, config->>'compress_after' AS compress_after, "
                         "config->>'drop_after' AS drop_after FROM timescaledb_information.jobs "
                         'WHERE hypertable_schema = {s} AND hypertable_name = {t}', lit)
        for job in jobs:
            if job['proc_name'] == 'policy_compression':
                st['compress_after'] = job['compress_after']
            elif job['proc_name'] == 'policy_retention':
                st['drop_after'] = job['drop_after']
        caggs = self.read('SELECT c.view_schema, c.view_name, c.materialization_hypertable_schema AS ms, '
                          'c.materialization_hypertable_name AS mn, EXISTS (SELECT 1 FROM timescaledb_information.jobs j '
                          "WHERE j.proc_name = 'policy_refresh_continuous_aggregate' AND j.hypertable_schema = "
                          'c.materialization_hypertable_schema AND j.hypertable_name = c.materialization_hypertable_name) '
                          'AS has_policy FROM timescaledb_information.continuous_aggregates c '
                          'WHERE c.hypertable_schema = {s} AND c.hypertable_name = {t}', lit)
        st['continuous_aggregates'] = [dict(name=c['view_name'], schema=c['view_schema'], refresh_policy=c['has_policy'])
                                       for c in caggs]
        return st

    def same_interval(self, current, wanted):
        if current is None:
            return False
        return self.read('SELECT {a}::interval = {b}::interval AS same', {'a': current, 'b': wanted})[0]['same']


def run_module():
    module, opts = start_module(argument_spec(), validate, errors=(tsdb.TimescaleError,))
    params = module.params
    skipped = []
    with pg_session(module, STATEMENT_TIMEOUT) as conn:
        ht = Hypertable(module, conn, params['schema'], params['table'])
        try:
            license_name = tsdb.server(ht)['license']
            wanted_tsl = tsl_features(opts)
            if wanted_tsl and not tsdb.tsl_available(license_name):
                message = tsdb.license_message(', '.join(wanted_tsl), license_name)
                if params['tsl_required']:
                    module.fail_json(msg=message)
                skipped = wanted_tsl
                module.warn(message)
                opts.update(compression=None, compress_after=None, drop_after=None, continuous_aggregates=[])
            before = ht.state()
            if not before['exists']:
                module.fail_json(msg='Table %s.%s does not exist: create it first (the module converts tables, it does not '
                                     'define columns).' % (params['schema'], params['table']))
            reg = {'reg': ht.reg}
            if not before['is_hypertable']:
                if not params.get('time_column'):
                    module.fail_json(msg='%s.%s is not a hypertable yet: time_column is required to convert it.'
                                     % (params['schema'], params['table']))
                if before.get('rows') and not params['migrate_data']:
                    module.fail_json(msg='%s.%s already holds rows: set migrate_data=true to move them into chunks while '
                                         'converting (locks the table for the duration).' % (params['schema'], params['table']))
                template = 'SELECT create_hypertable({reg}::regclass, by_range({col}'
                lit = dict(reg, col=params['time_column'])
                if opts['chunk_time_interval']:
                    template += ', {iv}::interval'
                    lit['iv'] = opts['chunk_time_interval']
                template += '), migrate_data => {m})'
                lit['m'] = bool(params['migrate_data'])
                ht.plan(template, lit)
            else:
                if params.get('time_column') and params['time_column'] != before['time_column']:
                    module.fail_json(msg='%s.%s is partitioned by %s, not %s; a hypertable\'s time column cannot change.'
                                     % (params['schema'], params['table'], before['time_column'], params['time_column']))
                if opts['chunk_time_interval'] and not ht.same_interval(before['chunk_time_interval'], opts['chunk_time_interval']):
                    ht.plan('SELECT set_chunk_time_interval({reg}::regclass, {iv}::interval)',
                            dict(reg, iv=opts['chunk_time_interval']))
            comp = opts['compression']
            if comp is not None:
                want_seg = list(comp['segmentby'])
                want_order = ['%s %s' % (c, d) for c, d in comp['orderby']]
                differs = (comp['enabled'] != before['compression_enabled']
                           or (comp['enabled'] and (want_seg != before['segmentby']
                                                    or (want_order and want_order != before['orderby']))))
                if differs:
                    text, lit = compress_options_sql(comp)
                    ht.plan('ALTER TABLE {tbl} SET (' + text + ')', lit, {'tbl': (params['schema'], params['table'])})
            for name, proc, arg in (('compress_after', 'compression', 'compress_after'), ('drop_after', 'retention', 'drop_after')):
                want, have = opts[name], before[name]
                if want is None:
                    continue
                if want == NONE:
                    if have is not None:
                        ht.plan('SELECT remove_%s_policy({reg}::regclass)' % proc, reg)
                    continue
                if have is not None and ht.same_interval(have, want):
                    continue
                if have is not None:
                    ht.plan('SELECT remove_%s_policy({reg}::regclass)' % proc, reg)
                ht.plan('SELECT add_%s_policy({reg}::regclass, {iv}::interval)' % proc, dict(reg, iv=want))
            existing = dict((c['name'], c) for c in before['continuous_aggregates'] if c['schema'] == params['schema'])
            for cagg in opts['continuous_aggregates']:
                view = (params['schema'], cagg['name'])
                if cagg['name'] not in existing:
                    ht.queries.append(Query('CREATE MATERIALIZED VIEW {v} WITH (timescaledb.continuous) AS ', {'v': view}
                                            ).as_string(conn) + cagg['query'].strip().rstrip(';') + ' WITH NO DATA')
                if cagg['start_offset'] and not (cagg['name'] in existing and existing[cagg['name']]['refresh_policy']):
                    ht.plan('SELECT add_continuous_aggregate_policy({v}::regclass, start_offset => {so}::interval, '
                            'end_offset => {eo}::interval, schedule_interval => {si}::interval)',
                            {'v': tsdb.regclass_text(*view), 'so': cagg['start_offset'], 'eo': cagg['end_offset'],
                             'si': cagg['schedule_interval']})
            if ht.queries and not module.check_mode:
                with conn.cursor() as cur:
                    for text in ht.queries:
                        cur.execute(text)  # built above from quoted identifiers and literals only
            after = ht.state() if ht.queries and not module.check_mode else before
        except psycopg.Error as e:
            module.fail_json(msg='TimescaleDB statement failed on %s.%s: %s' % (
                params['schema'], params['table'], to_native(e).strip()), queries=ht.queries)
    after.pop('rows', None)
    module.exit_json(changed=bool(ht.queries), queries=ht.queries, skipped=skipped, license=license_name,
                     hypertable=after)


def main():
    run_module()


if __name__ == '__main__':
    main()
