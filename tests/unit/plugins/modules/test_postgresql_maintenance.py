# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of postgresql_maintenance and module_utils/maintenance.py: the dead-tuple and B-tree bloat
choice, statement composition with hostile names, option validation, check mode and timing.

The database is scripted (utils.FakeDB: substring of the query -> rows) because these tests check which
statements the module composes and runs; VACUUM/REINDEX on a real server run in the runbooks scenario
(molecule/runbooks: the weekly playbook on a seeded bloated table).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import psycopg
import pytest


from ansible_collections.quantops.platform.plugins.module_utils import maintenance as mt
from ansible_collections.quantops.platform.plugins.modules import postgresql_maintenance as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import (
    FakeDB, assert_options_documented, fail_runner, ok_runner)

run_ok = ok_runner(mod)
run_fail = fail_runner(mod)


HOSTILE = 'x"; DROP TABLE y; --'


def index_row(name='t_pkey', pages=1096, tuples=200000.0, width=4.0, nullable=False, columns=1, with_stats=1,
              name_type=False, schema='public', table='t', fillfactor=90):
    return {'schema': schema, 'table_name': table, 'name': name, 'pages': pages, 'tuples': tuples,
            'block_size': 8192, 'fillfactor': fillfactor, 'columns': columns, 'columns_with_stats': with_stats,
            'data_width': width, 'nullable': nullable, 'has_name_type': name_type}


def table_row(name, live, dead, schema='public'):
    return {'schema': schema, 'name': name, 'live_tuples': live, 'dead_tuples': dead}


# --- estimate and choice (pure) ------------------------------------------------------------

def test_btree_estimate_of_an_int4_index():
    # 16-byte tuples (8 header + 4 data, aligned) + 4-byte line pointer; (8192-24-16)*0.9/20 = 366 per page
    est = mt.btree_estimate(index_row())
    assert est['expected_pages'] == 1 + 547
    assert est['bloat_pages'] == 1096 - 548
    assert est['bloat_ratio'] == 0.5
    assert est['bloat_bytes'] == 548 * 8192 and est['reliable'] is True


def test_btree_estimate_null_bitmap_fillfactor_and_no_negative_bloat():
    plain = mt.btree_estimate(index_row(width=8.0))
    nullable = mt.btree_estimate(index_row(width=8.0, nullable=True))
    assert nullable['expected_pages'] > plain['expected_pages']     # 24-byte tuples instead of 16
    packed = mt.btree_estimate(index_row(fillfactor=100))
    assert packed['expected_pages'] < mt.btree_estimate(index_row())['expected_pages']
    small = mt.btree_estimate(index_row(pages=10))                   # deduplicated: smaller than expected
    assert small['bloat_pages'] == 0 and small['bloat_ratio'] == 0.0


def test_unreliable_estimates_never_select():
    rows = [index_row('no_stats', with_stats=0), index_row('name_col', name_type=True), index_row('good')]
    selected, considered = mt.select_indexes(rows, 0.3, 0)
    assert [i['name'] for i in selected] == ['good']
    assert len(considered) == 3


def test_index_thresholds_ratio_and_bytes():
    rows = [index_row('big', pages=20000, tuples=200000.0), index_row('mid'), index_row('small', pages=700)]
    selected, dummy = mt.select_indexes(rows, 0.3, 8 * 1024 * 1024)
    assert [i['name'] for i in selected] == ['big']                  # mid: 4.5 MB of bloat < 8 MiB
    selected, dummy = mt.select_indexes(rows, 0.3, 0)
    assert [i['name'] for i in selected] == ['big', 'mid']           # small: 21.7 % < 30 %
    assert 'estimated bloat' in selected[0]['reason']


def test_dead_tuple_choice_ratio_and_minimum():
    rows = [table_row('bloated', 100000, 50000), table_row('tiny', 10, 900), table_row('healthy', 100000, 5000),
            table_row('_hyper_1_1_chunk', 1000, 1000, schema='_timescaledb_internal'),
            table_row('pg_x', 0, 5000, schema='pg_catalog')]
    selected, considered = mt.select_tables(rows, 0.1, 1000)
    assert [(t['schema'], t['name']) for t in selected] == [
        ('public', 'bloated'), ('_timescaledb_internal', '_hyper_1_1_chunk')]
    assert selected[0]['dead_tuple_ratio'] == 0.3333
    assert 'pg_catalog' not in [t['schema'] for t in considered]
    selected, dummy = mt.select_tables(rows, 0.1, 1000, schemas=['public'])
    assert [t['name'] for t in selected] == ['bloated']


@pytest.mark.parametrize('text, expected', [
    ('ohlcv_data', ('public', 'ohlcv_data')),
    ('market.bars', ('market', 'bars')),
    ('a.b.c', ('a', 'b.c')),
    (HOSTILE, ('public', HOSTILE)),
])
def test_parse_relation(text, expected):
    assert mt.parse_relation(text) == expected


@pytest.mark.parametrize('text', ['', '.x', 'x.', 'a' * 64, 'a\x00b'])
def test_parse_relation_rejects_what_postgres_would_not_take(text):
    with pytest.raises(mt.MaintenanceError):
        mt.parse_relation(text)


def test_statements_quote_hostile_names():
    assert mt.statement('vacuum_analyze', 'public', HOSTILE).as_string(None) == \
        'VACUUM (ANALYZE) "public"."x""; DROP TABLE y; --"'
    assert mt.statement('reindex_index', 's;', 'i"').as_string(None) == 'REINDEX INDEX CONCURRENTLY "s;"."i"""'
    assert mt.statement('reindex_table', 'public', 't', concurrently=False).as_string(None) == \
        'REINDEX TABLE "public"."t"'
    assert mt.statement('analyze', 'public', 't').as_string(None) == 'ANALYZE "public"."t"'


def test_plan_orders_vacuum_before_reindex_and_merges_vacuum_with_analyze():
    tables = [{'schema': 'public', 'name': 't', 'reason': 'named'}]
    indexes = [{'schema': 'public', 'name': 'i', 'reason': 'named'}]
    steps = mt.plan(['reindex', 'vacuum', 'analyze'], tables, indexes, [])
    assert [s['operation'] for s in steps] == ['vacuum_analyze', 'reindex_index']


# --- the module -----------------------------------------------------------------------------

class MaintenanceDB(FakeDB):
    def __init__(self, relations=None, fail_on=None):
        relations = relations if relations is not None else {('public', 'ohlcv_data'): 'p', ('public', 'idx'): 'i',
                                                             ('public', HOSTILE): 'r'}

        def lookup(params):
            kind = relations.get(tuple(params))
            return [{'schema': params[0], 'name': params[1], 'kind': kind}] if kind else []

        def maintenance(params):
            return psycopg.errors.LockNotAvailable('canceling statement due to lock timeout') if fail_on else None

        super(MaintenanceDB, self).__init__([
            ('SET lock_timeout = ', None),
            ('current_database() AS database', [{'database': 'quant_platform'}]),
            ('WHERE n.nspname = %s AND c.relname = %s', lookup),
            ('FROM pg_catalog.pg_stat_user_tables', [table_row('bloated', 1000, 9000), table_row('fine', 1000, 1)]),
            ('pg_catalog.pg_index x', [index_row('bloated_pkey', table='bloated', pages=3000)]),
            (fail_on or '\x00never', maintenance),
            ('VACUUM', None), ('ANALYZE', None), ('REINDEX', None),
        ])

    def maintenance(self):
        return [t for t, p in self.executed if t.split(' ')[0] in ('VACUUM', 'ANALYZE', 'REINDEX')]


@pytest.fixture
def fake_db(install):
    return lambda **kw: install(MaintenanceDB(**kw))


@pytest.mark.parametrize('args, fragment', [
    ({'dead_tuple_ratio': 10}, 'dead_tuple_ratio is a ratio between 0 and 1'),
    ({'index_bloat_ratio': -0.1}, 'index_bloat_ratio is a ratio'),
    ({'min_dead_tuples': -1}, 'min_dead_tuples must be 0 or more'),
    ({'lock_timeout': -1}, 'lock_timeout must be 0 or more'),
    ({'tables': ['a' * 64]}, 'limited to 63 bytes'),
    ({'tables': ['']}, 'non-empty'),
    ({'indexes': ['i']}, 'only with reindex in operations'),
    ({'operations': []}, 'operations must name at least one'),
    ({'operations': ['vacuum_full']}, 'value of operations must be one or more of'),
])
def test_bad_options_fail_before_connecting(no_connect, args, fragment):
    assert fragment in run_fail(args)['msg']


def test_unknown_named_table_fails_before_anything_runs(fake_db):
    db = fake_db()
    result = run_fail({'tables': ['ohlcv_data', 'nope']})
    assert 'table public.nope does not exist in database quant_platform' in result['msg']
    assert db.maintenance() == []


def test_check_mode_returns_the_statements_and_runs_none(fake_db):
    db = fake_db()
    result = run_ok({'operations': ['vacuum_analyze', 'reindex'], '_ansible_check_mode': True,
                     'min_index_bloat_bytes': 0})
    assert result['changed'] is True
    assert [(s['sql'], s['status']) for s in result['steps']] == [
        ('VACUUM (ANALYZE) "public"."bloated"', 'not_run'),
        ('REINDEX INDEX CONCURRENTLY "public"."bloated_pkey"', 'not_run')]
    assert result['queries'] == ['VACUUM (ANALYZE) "public"."bloated"',
                                 'REINDEX INDEX CONCURRENTLY "public"."bloated_pkey"']
    assert db.maintenance() == []
    assert result['tables'][0]['dead_tuple_ratio'] == 0.9


def test_named_and_hostile_relations_run_quoted_with_timings(fake_db):
    db = fake_db()
    result = run_ok({'operations': ['vacuum_analyze', 'reindex'], 'tables': ['ohlcv_data', HOSTILE],
                     'indexes': ['idx']})
    assert db.maintenance() == ['VACUUM (ANALYZE) "public"."ohlcv_data"',
                                'VACUUM (ANALYZE) "public"."x""; DROP TABLE y; --"',
                                'REINDEX INDEX CONCURRENTLY "public"."idx"']
    assert result['queries'] == db.maintenance()                  # queries: exactly what ran
    assert [s['status'] for s in result['steps']] == ['ok', 'ok', 'ok']
    assert all(isinstance(s['seconds'], float) for s in result['steps'])
    assert db.statements()[:2] == ["SET statement_timeout = '0'", "SET lock_timeout = '30s'"]
    assert result['tables'] == [] and result['indexes'] == []    # auto_select off with named relations
    lookups = [p for t, p in db.executed if 'c.relname = %s' in t]
    assert ('public', HOSTILE) in lookups                         # looked up as a bound value


def test_nothing_to_do_is_not_a_change(fake_db):
    fake_db()
    result = run_ok({'dead_tuple_ratio': 0.95})
    assert result['changed'] is False and result['steps'] == [] and result['queries'] == []


def test_database_wide_analyze(fake_db):
    db = fake_db()
    result = run_ok({'operations': ['analyze'], 'auto_select': False})
    assert db.maintenance() == ['ANALYZE'] and result['steps'][0]['relation'] is None
    assert result['queries'] == ['ANALYZE']


def test_a_failing_statement_does_not_stop_the_others_and_fails_the_module(fake_db):
    db = fake_db(fail_on='REINDEX')
    result = run_fail({'operations': ['vacuum_analyze', 'reindex'], 'min_index_bloat_bytes': 0})
    assert '1 of 2 maintenance statements failed' in result['msg']
    assert [s['status'] for s in result['steps']] == ['ok', 'failed']
    assert '_ccnew' in result['steps'][1]['error']
    assert result['queries'] == ['VACUUM (ANALYZE) "public"."bloated"',
                                 'REINDEX INDEX CONCURRENTLY "public"."bloated_pkey"']
    assert len(db.maintenance()) == 2


def test_documentation_options_match_the_argument_spec():
    assert_options_documented(mod)
