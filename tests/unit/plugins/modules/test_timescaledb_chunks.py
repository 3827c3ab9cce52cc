# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of timescaledb_chunks and module_utils/timescaledb: option validation (hostile
names and cutoffs rejected or quoted before any connection), the pure helpers, and main() on a
scripted TimescaleDB whose chunks change when compressed or dropped: check mode returns the exact
statements and runs none, a real run sends exactly those statements, and a second run is unchanged.

The statements also run against a real TimescaleDB in the Molecule scenario ``runbooks``
(monthly and high_db_size runbooks).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import datetime

import pytest


from ansible_collections.quantops.platform.plugins.module_utils import timescaledb as tsdb
from ansible_collections.quantops.platform.plugins.module_utils.postgres import Query
from ansible_collections.quantops.platform.plugins.modules import timescaledb_chunks as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import HOSTILE, fail_runner, FakeDB, ok_runner

run_ok = ok_runner(mod)
run_fail = fail_runner(mod)


@pytest.mark.parametrize('args, fragment', [
    ({'hypertables': ['ohlcv_data'], 'drop_older_than': "1 year'; DROP TABLE x; --"}, 'drop_older_than must be'),
    ({'hypertables': ['ohlcv_data'], 'compress_older_than': 'last year'}, 'compress_older_than must be'),
    ({'drop_older_than': '5 years'}, 'need hypertables'),
    ({'hypertables': ['a.b.c']}, 'one dot at most'),
    ({'hypertables': ['x' * 70]}, 'limited to 63 bytes'),
    ({'statement_timeout': '-1'}, 'statement_timeout must be milliseconds'),
])
def test_bad_options_fail_before_connecting(no_connect, args, fragment):
    assert fragment in run_fail(args)['msg']


@pytest.mark.parametrize('value, kind', [
    ('1 year', 'interval'), ('5 years', 'interval'), ('90 days', 'interval'), ('3 months 2 days', 'interval'),
    ('P1Y', 'interval'), ('2010-01-01', 'date'), ('2010-01-01T00:00:00Z', 'timestamp'),
    ('2010-01-01 12:00+09:00', 'timestamp'),
])
def test_cutoff_kinds(value, kind):
    assert tsdb.classify_cutoff(value, 'x') == (kind, value)


@pytest.mark.parametrize('value', ["1 year'", '1 year; DROP TABLE x', 'now()', '', None])
def test_cutoff_rejects_anything_else(value):
    if value in ('', None):
        assert tsdb.classify_cutoff(value, 'x') is None
    else:
        with pytest.raises(tsdb.TimescaleError):
            tsdb.classify_cutoff(value, 'x')


def test_cutoff_cast_follows_the_time_dimension():
    assert tsdb.cutoff_cast('interval', 'date') == 'interval'
    assert tsdb.cutoff_cast('date', 'date') == 'date'
    assert tsdb.cutoff_cast('date', 'timestamp with time zone') == 'timestamptz'
    assert tsdb.cutoff_cast('timestamp', 'timestamp without time zone') == 'timestamp'


def test_hostile_hypertable_name_is_quoted_inside_a_literal():
    schema, table = tsdb.split_name(HOSTILE)
    assert (schema, table) == ('public', HOSTILE)
    reg = tsdb.regclass_text(schema, table)
    assert reg.text(None) == '"public"."""; DROP TABLE x; --"'
    text = Query('SELECT drop_chunks({reg}::regclass, older_than => {cut}::interval)',
                 literals={'reg': reg, 'cut': '5 years'}).as_string(None)
    # The whole name is one string literal cast to regclass: PostgreSQL looks it up, never runs it.
    assert text == ('SELECT drop_chunks(\'"public"."""; DROP TABLE x; --"\'::regclass, '
                    "older_than => '5 years'::interval)")


def test_split_name_defaults_to_public():
    assert tsdb.split_name('ohlcv_data') == ('public', 'ohlcv_data')
    assert tsdb.split_name('market.bars') == ('market', 'bars')


def test_license_message_names_the_license_and_the_way_out():
    msg = tsdb.license_message('Compressing chunks', 'apache')
    assert 'timescaledb.license=apache' in msg and 'tsl_required=false' in msg
    assert tsdb.tsl_available('timescale') and not tsdb.tsl_available('apache')


def test_compression_ratio():
    assert tsdb.compression_ratio(1000, 200) == 5.0
    assert tsdb.compression_ratio(None, 200) is None
    assert tsdb.compression_ratio(1000, 0) is None


def test_summarize_counts_and_percentages():
    ht = {'schema': 'public', 'name': 'ohlcv_data', 'compression_enabled': True, 'time_column': 'date'}
    chunks = [{'is_compressed': True, 'total_bytes': 100}, {'is_compressed': False, 'total_bytes': 300},
              {'is_compressed': False, 'total_bytes': None}]
    entry = mod.summarize(ht, chunks, {'before': 1000, 'after': 100}, False)
    assert entry['total_chunks'] == 3 and entry['compressed_chunks'] == 1 and entry['uncompressed_chunks'] == 2
    assert entry['compression_pct'] == 33.33 and entry['total_bytes'] == 400 and entry['compression_ratio'] == 10.0
    assert 'chunks' not in entry


# --- main() on a scripted TimescaleDB -------------------------------------------------------------

SERVER_SQL = ("SELECT e.extversion AS version, current_setting('timescaledb.license', true) AS license "
              "FROM pg_catalog.pg_extension e WHERE e.extname = 'timescaledb'")
CHUNKS_SQL = ('SELECT c.chunk_schema, c.chunk_name, c.range_start, c.range_end, c.is_compressed, s.total_bytes '
              'FROM timescaledb_information.chunks c LEFT JOIN chunks_detailed_size(\'"public"."ohlcv_data"\'::regclass) s '
              'ON s.chunk_schema = c.chunk_schema AND s.chunk_name = c.chunk_name '
              "WHERE c.hypertable_schema = 'public' AND c.hypertable_name = 'ohlcv_data' ")


def compress_sql(chunk):
    return ('SELECT compress_chunk(\'"_timescaledb_internal"."%s"\'::regclass, if_not_compressed => true)' % chunk)


DROP_SQL = ('SELECT drop_chunks(\'"public"."ohlcv_data"\'::regclass, older_than => \'5 years\'::interval) AS chunk')


class ChunksDB(FakeDB):
    """One hypertable public.ohlcv_data (date) with three chunks: 2015 and 2023 uncompressed, 2024 compressed.

    show_chunks(older_than) is answered from the range ends relative to 2026-12-07; compress_chunk marks
    its chunk compressed and drop_chunks removes the chunks older than 5 years, so a second run sees
    the result of the first.
    """

    TODAY = datetime.date(2026, 12, 7)

    def __init__(self, license_name='timescale', compression_enabled=True):
        self.chunks = [self.chunk('_hyper_1_1_chunk', 2015, False), self.chunk('_hyper_1_2_chunk', 2023, False),
                       self.chunk('_hyper_1_3_chunk', 2026, True)]
        super(ChunksDB, self).__init__([
            (SERVER_SQL, [{'version': '2.19.3', 'license': license_name}]),
            ('FROM timescaledb_information.hypertables h', [
                {'schema': 'public', 'name': 'ohlcv_data', 'compression_enabled': compression_enabled,
                 'time_column': 'date', 'time_type': 'date'}]),
            ('FROM timescaledb_information.chunks c', lambda params: self.listed(self.executed[-1][0])),
            ('hypertable_compression_stats', [{'before': 3000, 'after': 300}]),
            ('SELECT compress_chunk(', lambda params: self.compress(self.executed[-1][0])),
            ('SELECT drop_chunks(', lambda params: self.drop()),
        ])

    @staticmethod
    def chunk(name, year, compressed):
        return {'chunk_schema': '_timescaledb_internal', 'chunk_name': name,
                'range_start': datetime.date(year, 1, 1), 'range_end': datetime.date(year, 12, 31),
                'is_compressed': compressed, 'total_bytes': 1000}

    def older(self, interval):
        years = int(interval.split()[0])
        return [c for c in self.chunks if c['range_end'] < self.TODAY.replace(year=self.TODAY.year - years)]

    def listed(self, text):
        if 'show_chunks' not in text:
            return [dict(c) for c in self.chunks]
        interval = text.split("older_than => '")[1].split("'")[0]
        return [dict(c) for c in self.older(interval)]

    def compress(self, text):
        for c in self.chunks:
            if '"%s"' % c['chunk_name'] in text:
                c['is_compressed'] = True
        return [{'compress_chunk': 'done'}]

    def drop(self):
        gone = self.older('5 years')
        self.chunks = [c for c in self.chunks if c not in gone]
        return [{'chunk': '_timescaledb_internal.%s' % c['chunk_name']} for c in gone]

    def changes(self):
        return [t for t in self.statements() if t.startswith(('SELECT compress_chunk', 'SELECT drop_chunks'))]


@pytest.fixture
def chunks_db(install):
    return lambda **kw: install(ChunksDB(**kw))


COMPRESS = {'hypertables': ['ohlcv_data'], 'compress_older_than': '1 year'}
DROP = {'hypertables': ['ohlcv_data'], 'drop_older_than': '5 years'}


def test_check_mode_lists_the_compression_and_runs_nothing(chunks_db):
    db = chunks_db()
    result = run_ok(dict(COMPRESS, _ansible_check_mode=True))
    assert result['changed'] is True
    assert [c['chunk_name'] for c in result['would_compress']] == ['_hyper_1_1_chunk', '_hyper_1_2_chunk']
    assert result['queries'] == [compress_sql('_hyper_1_1_chunk'), compress_sql('_hyper_1_2_chunk')]
    assert db.changes() == [] and result['compressed'] == []
    assert db.statements()[:2] == ["SET statement_timeout = '1h'", SERVER_SQL]
    # the chunks to compress were chosen by show_chunks with the cutoff, cast to the dimension's type
    assert CHUNKS_SQL + ("AND format('%I.%I', c.chunk_schema, c.chunk_name)::regclass IN (SELECT show_chunks("
                         "'\"public\".\"ohlcv_data\"'::regclass, older_than => '1 year'::interval)) "
                         "ORDER BY c.range_start") in db.statements()


def test_compression_runs_the_listed_statements_then_is_unchanged(chunks_db):
    db = chunks_db()
    result = run_ok(COMPRESS)
    assert result['changed'] is True
    assert result['compressed'] == ['_timescaledb_internal._hyper_1_1_chunk', '_timescaledb_internal._hyper_1_2_chunk']
    assert db.changes() == result['queries'] == [compress_sql('_hyper_1_1_chunk'), compress_sql('_hyper_1_2_chunk')]
    report, = result['hypertables']
    assert (report['compressed_chunks'], report['uncompressed_chunks'], report['compression_ratio']) == (3, 0, 10.0)
    again = run_ok(COMPRESS)
    assert again['changed'] is False and again['compressed'] == [] and again['queries'] == []
    assert db.changes() == result['queries']      # nothing more was sent


def test_drop_in_check_mode_then_for_real_then_unchanged(chunks_db):
    db = chunks_db()
    check = run_ok(dict(DROP, _ansible_check_mode=True))
    assert check['changed'] is True and check['queries'] == [DROP_SQL] and check['dropped'] == []
    assert [c['chunk_name'] for c in check['would_drop']] == ['_hyper_1_1_chunk'] and db.changes() == []
    real = run_ok(DROP)
    assert real['changed'] is True and real['dropped'] == ['_timescaledb_internal._hyper_1_1_chunk']
    assert db.changes() == real['queries'] == [DROP_SQL]
    again = run_ok(DROP)
    assert again['changed'] is False and again['queries'] == [] and db.changes() == [DROP_SQL]


def test_apache_license_refuses_compression_or_skips_it(chunks_db):
    db = chunks_db(license_name='apache')
    msg = run_fail(COMPRESS)['msg']
    assert 'timescaledb.license=apache' in msg and db.changes() == []
    result = run_ok(dict(COMPRESS, tsl_required=False))
    assert result['changed'] is False and 'timescaledb.license=apache' in result['skipped'][0]
    assert result['hypertables'][0]['compression_ratio'] is None      # no statistics without the TSL


def test_compression_not_enabled_fails_naming_the_hypertable(chunks_db):
    chunks_db(compression_enabled=False)
    assert 'Compression is not enabled on public.ohlcv_data' in run_fail(COMPRESS)['msg']
