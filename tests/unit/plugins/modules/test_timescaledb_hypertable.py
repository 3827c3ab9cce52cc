# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of timescaledb_hypertable: option validation before any connection, quoting of
hostile identifiers in the compression reloptions, which features count as TSL, and main() on a
scripted TimescaleDB whose state follows the statements sent: check mode returns the exact
statements and runs none, a real run sends exactly those, and a second run is unchanged.

The statements also run against a real TimescaleDB (Apache build) in the runbooks scenario.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import re

import pytest


from ansible_collections.quantops.platform.plugins.module_utils import timescaledb as tsdb
from ansible_collections.quantops.platform.plugins.module_utils.postgres import Query
from ansible_collections.quantops.platform.plugins.modules import timescaledb_hypertable as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import HOSTILE, fail_runner, FakeDB, ok_runner

run_ok = ok_runner(mod)
run_fail = fail_runner(mod)


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
     'parameters are required together: start_offset, end_offset found in continuous_aggregates'),
])
def test_bad_options_fail_before_connecting(no_connect, args, fragment):
    assert fragment in run_fail(args)['msg']


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


# --- main() on a scripted TimescaleDB -------------------------------------------------------------

REG = "'\"public\".\"ohlcv_data\"'::regclass"
CONVERT_SQL = "SELECT create_hypertable(%s, by_range('date', '1 month'::interval), migrate_data => false)" % REG
COMPRESS_SQL = ('ALTER TABLE "public"."ohlcv_data" SET (timescaledb.compress, timescaledb.compress_segmentby = '
                "'\"ticker\"', timescaledb.compress_orderby = '\"date\" DESC')")
POLICY_SQL = "SELECT add_compression_policy(%s, '1 year'::interval)" % REG
CHANGING = ('SELECT create_hypertable', 'ALTER TABLE', 'SELECT add_', 'SELECT remove_', 'SELECT set_chunk')


class HypertableDB(FakeDB):
    """public.ohlcv_data, a plain table at first; the statements the module sends change what it reads next."""

    def __init__(self, license_name='timescale', has_rows=False):
        self.hyper = None          # {'interval': ..., 'compression': bool, 'segmentby': [...], 'orderby': [...]}
        self.policies = {}
        lit = "WHERE hypertable_schema = 'public' AND hypertable_name = 'ohlcv_data'"
        super(HypertableDB, self).__init__([
            ("FROM pg_catalog.pg_extension e WHERE e.extname = 'timescaledb'",
             [{'version': '2.19.3', 'license': license_name}]),
            ("WHERE n.nspname = 'public' AND c.relname = 'ohlcv_data'", [{'relkind': 'r'}]),
            ("WHERE h.hypertable_schema = 'public' AND h.hypertable_name = 'ohlcv_data'", lambda p: self.hypertable()),
            ('SELECT EXISTS (SELECT 1 FROM "public"."ohlcv_data") AS has_rows', [{'has_rows': has_rows}]),
            ('FROM timescaledb_information.compression_settings ' + lit, lambda p: self.settings()),
            ('FROM timescaledb_information.continuous_aggregates c', []),
            ('FROM timescaledb_information.jobs ' + lit, lambda p: self.jobs()),
            ('AS same', lambda p: self.same(self.executed[-1][0])),
            ('SELECT create_hypertable(', lambda p: self.run(self.executed[-1][0])),
            ('ALTER TABLE "public"."ohlcv_data" SET (', lambda p: self.run(self.executed[-1][0])),
            ('SELECT add_compression_policy(', lambda p: self.run(self.executed[-1][0])),
        ])

    def hypertable(self):
        if self.hyper is None:
            return []
        return [{'compression_enabled': self.hyper['compression'], 'column_name': 'date',
                 'time_interval': self.hyper['interval'], 'iv': self.hyper['interval']}]

    def settings(self):
        if not self.hyper or not self.hyper['compression']:
            return []
        rows = [{'attname': c, 'segmentby_column_index': i + 1, 'orderby_column_index': None, 'orderby_asc': None}
                for i, c in enumerate(self.hyper['segmentby'])]
        rows += [{'attname': 'date', 'segmentby_column_index': None, 'orderby_column_index': 1, 'orderby_asc': False}]
        return rows

    def jobs(self):
        return [{'proc_name': 'policy_compression', 'config': '{}', 'compress_after': v, 'drop_after': None}
                for v in self.policies.values()]

    @staticmethod
    def same(text):
        """interval = interval, for the spellings used here (PostgreSQL prints '1 month' as '1 mon')."""
        a, b = [{'1 mon': '1 month'}.get(v, v) for v in re.findall(r"'([^']*)'::interval", text)]
        return [{'same': a == b}]

    def run(self, text):
        if text.startswith('SELECT create_hypertable'):
            self.hyper = {'interval': '1 mon', 'compression': False, 'segmentby': [], 'orderby': []}
        elif text.startswith('ALTER TABLE'):
            self.hyper.update(compression=True, segmentby=['ticker'])
        elif text.startswith('SELECT add_compression_policy'):
            self.policies['compression'] = re.findall(r"'([^']*)'::interval", text)[0]
        return [{'done': True}]

    def changes(self):
        return [t for t in self.statements() if t.startswith(CHANGING)]


@pytest.fixture
def ht_db(install):
    return lambda **kw: install(HypertableDB(**kw))


WANTED = {'table': 'ohlcv_data', 'time_column': 'date', 'chunk_time_interval': '1 month',
          'compression': {'segmentby': ['ticker'], 'orderby': ['date DESC']}, 'compress_after': '1 year'}


def test_check_mode_returns_the_statements_and_runs_none(ht_db):
    db = ht_db()
    result = run_ok(dict(WANTED, _ansible_check_mode=True))
    assert result['changed'] is True
    assert result['queries'] == [CONVERT_SQL, COMPRESS_SQL, POLICY_SQL]
    assert db.changes() == [] and result['hypertable']['is_hypertable'] is False
    assert db.statements()[0] == "SET statement_timeout = '0'"


def test_convert_compress_and_policy_then_unchanged(ht_db):
    db = ht_db()
    result = run_ok(WANTED)
    assert result['changed'] is True
    assert db.changes() == result['queries'] == [CONVERT_SQL, COMPRESS_SQL, POLICY_SQL]
    after = result['hypertable']
    assert (after['is_hypertable'], after['compression_enabled'], after['segmentby'], after['orderby'],
            after['compress_after']) == (True, True, ['ticker'], ['date DESC'], '1 year')
    again = run_ok(WANTED)
    assert again['changed'] is False and again['queries'] == []
    assert db.changes() == result['queries']          # the second run sent nothing that changes state


def test_a_table_with_rows_needs_migrate_data(ht_db):
    db = ht_db(has_rows=True)
    msg = run_fail({'table': 'ohlcv_data', 'time_column': 'date'})['msg']
    assert 'already holds rows: set migrate_data=true' in msg and db.changes() == []
    result = run_ok({'table': 'ohlcv_data', 'time_column': 'date', 'migrate_data': True})
    assert db.changes() == result['queries'] == [
        "SELECT create_hypertable(%s, by_range('date'), migrate_data => true)" % REG]


def test_apache_license_refuses_tsl_features_before_changing_anything(ht_db):
    db = ht_db(license_name='apache')
    msg = run_fail(WANTED)['msg']
    assert 'compression settings, compression policy (compress_after)' in msg and 'timescaledb.license=apache' in msg
    assert db.changes() == []
    result = run_ok(dict(WANTED, tsl_required=False))
    assert result['skipped'] == ['compression settings', 'compression policy (compress_after)']
    assert db.changes() == result['queries'] == [CONVERT_SQL]
