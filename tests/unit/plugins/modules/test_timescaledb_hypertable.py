# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of timescaledb_hypertable: option validation before any connection, quoting of
hostile identifiers in the compression reloptions, and which features count as TSL.

The statements run against a real TimescaleDB (Apache build) in the runbooks scenario and were
exercised by hand there (convert with migrate_data, set_chunk_time_interval, license refusal).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import pytest


from ansible_collections.quantops.platform.plugins.module_utils import timescaledb as tsdb
from ansible_collections.quantops.platform.plugins.module_utils.data_quality import Query
from ansible_collections.quantops.platform.plugins.modules import timescaledb_hypertable as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import connect_refused, module_fail


HOSTILE = '"; DROP TABLE x; --'


no_connect = connect_refused(mod, autouse=True)


def fail_of(args):
    return module_fail(mod.main, args)['msg']


def params(**over):
    p = {'schema': 'public', 'table': 'ohlcv_data', 'time_column': 'date', 'chunk_time_interval': None,
         'compress_after': None, 'drop_after': None, 'compression': None, 'continuous_aggregates': []}
    p.update(over)
    return p


@pytest.mark.parametrize('args, fragment', [
    ({'table': 'ohlcv_data', 'chunk_time_interval': "1 month'); DROP TABLE x; --"}, 'chunk_time_interval must be'),
    ({'table': 'ohlcv_data', 'chunk_time_interval': '2024-01-01'}, 'chunk_time_interval must be an interval'),
    ({'table': 'x' * 64}, 'limited to 63 bytes'),
    ({'table': 'ohlcv_data', 'compress_after': '1 year', 'compression': {'enabled': False}}, 'needs compression enabled'),
    ({'table': 'ohlcv_data', 'compression': {'orderby': ['a\x00 DESC']}}, 'NUL'),
    ({'table': 'ohlcv_data', 'continuous_aggregates': [{'name': 'm', 'query': 'SELECT 1', 'start_offset': '3 months'}]},
     'give both start_offset and end_offset'),
])
def test_bad_options_fail_before_connecting(args, fragment):
    assert fragment in fail_of(args)


def test_none_removes_a_policy():
    opts = mod.validate(params(compress_after='none', drop_after='5 years'))
    assert opts['compress_after'] == 'none' and opts['drop_after'] == '5 years'


def test_orderby_parsing():
    assert mod.parse_orderby('date DESC') == ('date', 'DESC')
    assert mod.parse_orderby('date') == ('date', 'ASC')
    assert mod.parse_orderby('my col asc') == ('my col', 'ASC')


def test_hostile_compression_columns_are_quoted_inside_the_literal():
    comp = {'enabled': True, 'segmentby': [HOSTILE, 'region'], 'orderby': [(HOSTILE, 'DESC')]}
    text, literals = mod.compress_options_sql(comp)
    rendered = Query('ALTER TABLE {tbl} SET (' + text + ')', {'tbl': ('public', HOSTILE)}, literals).as_string(None)
    assert rendered == ('ALTER TABLE "public"."""; DROP TABLE x; --" SET (timescaledb.compress, '
                        'timescaledb.compress_segmentby = \'"""; DROP TABLE x; --", "region"\', '
                        'timescaledb.compress_orderby = \'"""; DROP TABLE x; --" DESC\')')


def test_disable_compression():
    assert mod.compress_options_sql({'enabled': False, 'segmentby': [], 'orderby': []}) == ('timescaledb.compress = false', {})


def test_tsl_features_listed():
    opts = mod.validate(params(compression={'enabled': True, 'segmentby': ['ticker'], 'orderby': []},
                               compress_after='1 year', drop_after='5 years',
                               continuous_aggregates=[{'name': 'm', 'query': 'SELECT 1', 'start_offset': '3 months',
                                                       'end_offset': '1 day', 'schedule_interval': '1 day'}]))
    assert mod.tsl_features(opts) == ['compression settings', 'compression policy (compress_after)',
                                      'retention policy (drop_after)', 'continuous aggregates']
    assert mod.tsl_features(mod.validate(params(chunk_time_interval='3 months'))) == []
    assert 'apache' in tsdb.license_message(', '.join(mod.tsl_features(opts)), 'apache')
