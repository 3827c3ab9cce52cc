# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of timescaledb_chunks and module_utils/timescaledb: option validation (hostile
names and cutoffs rejected or quoted before any connection) and the pure helpers.

The statements themselves run against a real TimescaleDB in the Molecule scenario ``runbooks``
(monthly and high_db_size runbooks); no database is faked here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import pytest


from ansible_collections.quantops.platform.plugins.module_utils import timescaledb as tsdb
from ansible_collections.quantops.platform.plugins.module_utils.data_quality import Query
from ansible_collections.quantops.platform.plugins.modules import timescaledb_chunks as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import connect_refused, module_fail


HOSTILE = '"; DROP TABLE x; --'


no_connect = connect_refused(mod, autouse=True)


def fail_of(args):
    return module_fail(mod.main, args)['msg']


@pytest.mark.parametrize('args, fragment', [
    ({'hypertables': ['ohlcv_data'], 'drop_older_than': "1 year'; DROP TABLE x; --"}, 'drop_older_than must be'),
    ({'hypertables': ['ohlcv_data'], 'compress_older_than': 'last year'}, 'compress_older_than must be'),
    ({'drop_older_than': '5 years'}, 'need hypertables'),
    ({'hypertables': ['a.b.c']}, 'one dot at most'),
    ({'hypertables': ['x' * 70]}, 'limited to 63 bytes'),
    ({'query_timeout': -1}, 'query_timeout must be >= 0'),
])
def test_bad_options_fail_before_connecting(args, fragment):
    assert fragment in fail_of(args)


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
    assert reg == '"public"."""; DROP TABLE x; --"'
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
