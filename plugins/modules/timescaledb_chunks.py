#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: timescaledb_chunks
short_description: Report, compress and drop the chunks of TimescaleDB hypertables
version_added: 0.1.0
description:
  - Reports, per hypertable, the chunk count, compressed and uncompressed chunks, total size and (with the TSL
    build) the compression ratio.
  - With O(compress_older_than), compresses the uncompressed chunks older than it (C(compress_chunk) with
    C(if_not_compressed => true) on each chunk that C(show_chunks) lists with C(older_than)).
    Compression is a Timescale License (TSL) feature and the hypertable must have compression enabled
    (M(quantops.platform.timescaledb_hypertable) O(quantops.platform.timescaledb_hypertable#module:compression)).
  - With O(drop_older_than), drops the chunks older than it with C(drop_chunks). Works on the Apache build. The
    data in those chunks is deleted.
  - Check mode lists the chunks that would be compressed or dropped and the statements, and changes nothing.
options:
  hypertables:
    description:
      - Hypertables to work on, as C(table) (schema C(public)) or C(schema.table). Empty means every hypertable
        of the database (report only; O(compress_older_than) and O(drop_older_than) then need explicit names).
    type: list
    elements: str
    default: []
  compress_older_than:
    description:
      - Compress the chunks whose data is entirely older than this. A PostgreSQL interval (C(1 year), C(90 days)),
        taken back from now by TimescaleDB, or an ISO date / timestamp (the cutoff itself, useful for historical
        data).
    type: str
  drop_older_than:
    description:
      - Drop the chunks whose data is entirely older than this (interval, or ISO date / timestamp as for
        O(compress_older_than)). Destructive; runbooks pass it only when confirmed.
    type: str
  tsl_required:
    description:
      - What to do when O(compress_older_than) is given but the server runs the Apache-2 build
        (C(timescaledb.license=apache)).
      - C(true) fails with a message naming the license. C(false) skips compression with a warning and still
        reports and drops.
    type: bool
    default: true
  include_chunks:
    description: Return every chunk (name, range, size, compressed) under each hypertable in RV(hypertables).
    type: bool
    default: false
attributes:
  check_mode:
    details: Lists the chunks that would be compressed or dropped in RV(would_compress) and RV(would_drop).
extends_documentation_fragment:
  - quantops.platform.postgres
  - quantops.platform.attributes
notes:
  - "Source: seed 002 Weekly Maintenance \"TimescaleDB Chunk Management\" and Monthly Maintenance \"Compression
    Review\" (report), \"Enable compression on old chunks (>1 year)\" and \"Drop chunks older than 5 years\"."
  - Without O(statement_timeout) each statement may run one hour (C(1h)); compressing a large chunk takes minutes.
  - "License: C(timescaledb_information) views, C(show_chunks), C(drop_chunks) and C(chunks_detailed_size) work on
    the Apache build; C(compress_chunk) and the compression statistics need C(timescaledb.license=timescale)
    (the quantops.platform.timescaledb role publishes the same as the fact C(timescaledb_effective_license))."
  - "Privileges: the owner of the hypertables (or a superuser) for compress and drop; reading needs SELECT on the
    C(timescaledb_information) views only."
  - "Idempotent: a second run finds no uncompressed chunk older than the cutoff and no chunk to drop."
seealso:
  - name: drop_chunks
    link: https://docs.timescale.com/api/latest/hypertable/drop_chunks/
    description: TimescaleDB reference.
  - name: compress_chunk
    link: https://docs.timescale.com/api/latest/compression/compress_chunk/
    description: TimescaleDB reference.
  - module: quantops.platform.timescaledb_hypertable
author:
  - quantops.platform maintainers (@quantops)
'''

EXAMPLES = r'''
- name: Chunk report of every hypertable (seed 002 weekly chunk management)
  quantops.platform.timescaledb_chunks:
    login_unix_socket: /var/run/postgresql
  become: true
  become_user: postgres
  register: chunks

- name: Compress ohlcv_data chunks older than a year (TSL build), skip on the Apache build
  quantops.platform.timescaledb_chunks:
    hypertables: [ohlcv_data]
    compress_older_than: 1 year
    tsl_required: false
  become: true
  become_user: postgres

- name: Drop chunks older than 5 years, only when the operator confirmed
  quantops.platform.timescaledb_chunks:
    hypertables: [public.ohlcv_data]
    drop_older_than: 5 years
  become: true
  become_user: postgres
  when: retention_confirm | bool
'''

RETURN = r'''
license:
  description: The server's C(timescaledb.license) (C(apache) or C(timescale)).
  returned: always
  type: str
  sample: apache
timescaledb_version:
  description: Installed extension version.
  returned: always
  type: str
  sample: 2.19.3
hypertables:
  description: One entry per hypertable, after the changes of this run.
  returned: always
  type: list
  elements: dict
  contains:
    schema: {description: "Schema.", type: str}
    name: {description: "Hypertable name.", type: str}
    compression_enabled: {description: "Whether compression is enabled on it.", type: bool}
    total_chunks: {description: "Chunks.", type: int}
    compressed_chunks: {description: "Compressed chunks.", type: int}
    uncompressed_chunks: {description: "Uncompressed chunks.", type: int}
    compression_pct: {description: "Compressed chunks / chunks x 100 (seed 002 compression review), 2 decimals.", type: float}
    total_bytes: {description: "Size of all chunks (heap, indexes, TOAST; chunks_detailed_size), bytes.", type: int}
    before_compression_bytes: {description: "Bytes of the compressed chunks before compression (TSL only, else null).", type: int}
    after_compression_bytes: {description: "Bytes of the compressed chunks after compression (TSL only, else null).", type: int}
    compression_ratio: {description: "before / after (TSL only, null when nothing is compressed).", type: float}
    chunks: {description: "With O(include_chunks), each chunk's schema, name, range_start, range_end, is_compressed, total_bytes.", type: list}
compressed:
  description: Chunks compressed by this run (C(schema.name)).
  returned: always
  type: list
  elements: str
dropped:
  description: Chunks dropped by this run (C(schema.name)), as returned by C(drop_chunks).
  returned: always
  type: list
  elements: str
would_compress:
  description: In check mode, the chunks that would be compressed, with their ranges.
  returned: check mode
  type: list
  elements: dict
would_drop:
  description: In check mode, the chunks that would be dropped, with their ranges and sizes.
  returned: check mode
  type: list
  elements: dict
skipped:
  description: Actions skipped and why (for example compression on the Apache build with O(tsl_required=false)).
  returned: always
  type: list
  elements: str
queries:
  description: Statements that changed something, or in check mode would have.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.quantops.platform.plugins.module_utils import timescaledb as tsdb
from ansible_collections.quantops.platform.plugins.module_utils.postgres import (
    Query, QueryRunner, pg_session, postgres_common_argument_spec, psycopg, start_module
)

STATEMENT_TIMEOUT = '1h'


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        hypertables=dict(type='list', elements='str', default=[]),
        compress_older_than=dict(type='str'),
        drop_older_than=dict(type='str'),
        tsl_required=dict(type='bool', default=True),
        include_chunks=dict(type='bool', default=False),
    )
    return spec


def validate(params):
    names = [tsdb.split_name(n) for n in params['hypertables']]
    compress = tsdb.classify_cutoff(params.get('compress_older_than'), 'compress_older_than')
    drop = tsdb.classify_cutoff(params.get('drop_older_than'), 'drop_older_than')
    if (compress or drop) and not names:
        raise tsdb.TimescaleError('compress_older_than and drop_older_than need hypertables: name the hypertables '
                                  'to change explicitly (an empty list means every hypertable, for the report only)')
    return names, compress, drop


class Chunks(QueryRunner):
    def hypertables(self, names):
        rows = self.rows('SELECT h.hypertable_schema AS schema, h.hypertable_name AS name, h.compression_enabled, '
                         'd.column_name AS time_column, d.column_type AS time_type '
                         'FROM timescaledb_information.hypertables h '
                         'LEFT JOIN timescaledb_information.dimensions d ON d.hypertable_schema = h.hypertable_schema '
                         "AND d.hypertable_name = h.hypertable_name AND d.dimension_number = 1 "
                         'ORDER BY 1, 2')
        found = dict(((r['schema'], r['name']), r) for r in rows)
        if not names:
            return rows
        missing = [n for n in names if n not in found]
        if missing:
            self.module.fail_json(msg='Not hypertables in database %s: %s. Hypertables there: %s.' % (
                self.module.params['login_db'], ', '.join('%s.%s' % n for n in missing),
                ', '.join('%s.%s' % k for k in sorted(found)) or 'none'))
        return [found[n] for n in names]

    def chunks(self, ht, cutoff=None):
        """Chunks of one hypertable with sizes; with cutoff only those show_chunks(older_than) returns."""
        literals = {'reg': tsdb.regclass_text(ht['schema'], ht['name']), 's': ht['schema'], 'n': ht['name']}
        older = ''
        if cutoff is not None:
            older = ('AND format(%s, c.chunk_schema, c.chunk_name)::regclass IN '
                     '(SELECT show_chunks({reg}::regclass, older_than => {cut}::' % "'%I.%I'"
                     + tsdb.cutoff_cast(cutoff[0], ht['time_type']) + ')) ')
            literals['cut'] = cutoff[1]
        query = Query(
            'SELECT c.chunk_schema, c.chunk_name, c.range_start, c.range_end, c.is_compressed, s.total_bytes '
            'FROM timescaledb_information.chunks c LEFT JOIN chunks_detailed_size({reg}::regclass) s '
            'ON s.chunk_schema = c.chunk_schema AND s.chunk_name = c.chunk_name '
            'WHERE c.hypertable_schema = {s} AND c.hypertable_name = {n} ' + older
            + 'ORDER BY c.range_start', literals=literals)
        return self.rows(query), query

    def compression_stats(self, ht):
        q = Query('SELECT sum(before_compression_total_bytes) AS before, sum(after_compression_total_bytes) AS after '
                  'FROM hypertable_compression_stats({reg}::regclass)',
                  literals={'reg': tsdb.regclass_text(ht['schema'], ht['name'])})
        return self.rows(q)[0]

    def run_or_record(self, query, check_mode):
        """Run a changing statement (recorded in queries); in check mode only record it."""
        if check_mode:
            self.queries.append(query.as_string(self.conn))
            return []
        return self.rows(query, record=True)


def compress_query(chunk):
    return Query('SELECT compress_chunk({c}::regclass, if_not_compressed => true)',
                 literals={'c': tsdb.regclass_text(chunk['chunk_schema'], chunk['chunk_name'])})


def drop_query(ht, cutoff):
    return Query('SELECT drop_chunks({reg}::regclass, older_than => {cut}::' + tsdb.cutoff_cast(cutoff[0], ht['time_type'])
                 + ') AS chunk', literals={'reg': tsdb.regclass_text(ht['schema'], ht['name']), 'cut': cutoff[1]})


def summarize(ht, chunks, stats, include):
    total = len(chunks)
    compressed = sum(1 for c in chunks if c['is_compressed'])
    entry = dict(schema=ht['schema'], name=ht['name'], compression_enabled=bool(ht['compression_enabled']),
                 time_column=ht['time_column'], total_chunks=total, compressed_chunks=compressed,
                 uncompressed_chunks=total - compressed,
                 compression_pct=round(compressed * 100.0 / total, 2) if total else 0.0,
                 total_bytes=int(sum(c['total_bytes'] or 0 for c in chunks)),
                 before_compression_bytes=int(stats['before']) if stats and stats['before'] is not None else None,
                 after_compression_bytes=int(stats['after']) if stats and stats['after'] is not None else None)
    entry['compression_ratio'] = tsdb.compression_ratio(entry['before_compression_bytes'], entry['after_compression_bytes'])
    if include:
        entry['chunks'] = chunks
    return entry


def run_module():
    module, (names, compress_cut, drop_cut) = start_module(argument_spec(), validate, errors=(tsdb.TimescaleError,))
    params = module.params
    result = dict(changed=False, compressed=[], dropped=[], skipped=[])
    if module.check_mode:
        result.update(would_compress=[], would_drop=[])
    with pg_session(module, STATEMENT_TIMEOUT) as conn:
        worker = Chunks(module, conn)
        try:
            server = tsdb.server(worker)
            license_name = server['license']
            tsl = tsdb.tsl_available(license_name)
            if compress_cut and not tsl:
                if params['tsl_required']:
                    module.fail_json(msg=tsdb.license_message('Compressing chunks (compress_older_than)', license_name))
                result['skipped'].append(tsdb.license_message('Compressing chunks (compress_older_than)', license_name))
                module.warn(result['skipped'][-1])
                compress_cut = None
            hts = worker.hypertables(names)
            if compress_cut:
                disabled = ['%s.%s' % (h['schema'], h['name']) for h in hts if not h['compression_enabled']]
                if disabled:
                    module.fail_json(msg='Compression is not enabled on %s: enable it first with '
                                         'quantops.platform.timescaledb_hypertable (compression.enabled=true).'
                                     % ', '.join(disabled))
            report = []
            for ht in hts:
                if compress_cut:
                    old, query = worker.chunks(ht, compress_cut)
                    todo = [c for c in old if not c['is_compressed']]
                    for c in todo:
                        worker.run_or_record(compress_query(c), module.check_mode)
                    if module.check_mode:
                        result['would_compress'] += [dict(c, hypertable='%s.%s' % (ht['schema'], ht['name']))
                                                     for c in todo]
                    else:
                        result['compressed'] += ['%s.%s' % (c['chunk_schema'], c['chunk_name']) for c in todo]
                if drop_cut:
                    old, query = worker.chunks(ht, drop_cut)
                    if old:
                        dropped = worker.run_or_record(drop_query(ht, drop_cut), module.check_mode)
                        result['dropped'] += [r['chunk'] for r in dropped]
                    if module.check_mode:
                        result['would_drop'] += [dict(c, hypertable='%s.%s' % (ht['schema'], ht['name'])) for c in old]
                chunks, query = worker.chunks(ht)
                stats = worker.compression_stats(ht) if tsl and ht['compression_enabled'] else None
                report.append(summarize(ht, chunks, stats, params['include_chunks']))
        except psycopg.Error as e:
            module.fail_json(msg='TimescaleDB statement failed: %s' % to_native(e).strip(), queries=worker.queries)
    result['changed'] = bool(result['compressed'] or result['dropped']
                             or result.get('would_compress') or result.get('would_drop'))
    result.update(license=license_name, timescaledb_version=server['version'], hypertables=report,
                  queries=worker.queries)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
