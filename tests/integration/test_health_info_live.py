# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""quantops.platform.postgresql_health_info against a real PostgreSQL server.

Skipped unless QUANTOPS_PG_DSN names a server whose role may create databases
(a libpq conninfo string, for example
``host=/tmp/qpg port=55433 user=postgres dbname=postgres``).  Each test run
creates a scratch database ``quantops_health_<random>``, loads a small OHLCV
table for the lab regions US, FX and CRYPTO and drops the database again.

A throwaway server for it (Debian's postgresql package, no TimescaleDB)::

    mkdir -p /tmp/qpg && chown postgres: /tmp/qpg
    su postgres -c '/usr/lib/postgresql/15/bin/initdb -D /tmp/qpg/data -A trust -U postgres'
    su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D /tmp/qpg/data -l /tmp/qpg/log \\
        -o \\"-p 55433 -k /tmp/qpg -c listen_addresses='' -c shared_preload_libraries=pg_stat_statements\\" start"
    QUANTOPS_PG_DSN='host=/tmp/qpg port=55433 user=postgres dbname=postgres' \\
        .venv/bin/pytest tests/integration/test_health_info_live.py -v

Against the Molecule instance (PostgreSQL 17 + TimescaleDB) the hypertable
assertions run as well.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

DSN = os.environ.get('QUANTOPS_PG_DSN')
pytestmark = pytest.mark.skipif(not DSN, reason='QUANTOPS_PG_DSN is not set: no PostgreSQL server to test against '
                                                '(see the module docstring for a throwaway one)')

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / '.build' / 'collections'
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

HOSTILE = 'x"; DROP TABLE y; --'
AS_OF = '2024-06-29T09:00:00Z'


def _psycopg():
    return pytest.importorskip('psycopg')


def _admin(dsn):
    psycopg = _psycopg()
    return psycopg.connect(dsn, autocommit=True)


@pytest.fixture(scope='module')
def scratch_db():
    psycopg = _psycopg()
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    name = 'quantops_health_%s' % uuid.uuid4().hex[:10]
    with _admin(DSN) as admin:
        admin.execute(sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name)))
    dsn = make_conninfo(DSN, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        preload = conn.execute('SHOW shared_preload_libraries').fetchone()[0]
        preloaded = 'pg_stat_statements' in preload
        # CREATE EXTENSION timescaledb needs the library preloaded as well as packaged
        has_timescaledb = 'timescaledb' in preload and conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()[0] == 1
        conn.execute('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
        if has_timescaledb:
            conn.execute('CREATE EXTENSION IF NOT EXISTS timescaledb')
        conn.execute('CREATE TABLE ohlcv_data (ticker text, region text, date date, open numeric, high numeric, '
                     'low numeric, close numeric, volume numeric, created_at timestamptz DEFAULT now())')
        if has_timescaledb:
            conn.execute("SELECT create_hypertable('ohlcv_data', 'date', chunk_time_interval => interval '7 days')")
        conn.execute("INSERT INTO ohlcv_data (ticker, region, date, open, high, low, close, volume) "
                     "SELECT t, r, d::date, 1, 2, 0.5, 1.5, 100 FROM "
                     "(VALUES ('AAPL', 'US', date '2024-06-27'), ('EURUSD', 'FX', date '2023-12-31'), "
                     "('BTC', 'CRYPTO', date '2024-06-28')) AS v(t, r, last_day), "
                     "generate_series(last_day - 59, last_day, interval '1 day') AS d")
        conn.execute(sql.SQL('CREATE TABLE {} (region text, date date)').format(sql.Identifier(HOSTILE)))
        conn.execute(sql.SQL("INSERT INTO {} VALUES ('EU', date '2024-06-28')").format(sql.Identifier(HOSTILE)))
        conn.execute('CREATE TABLE y (id int)')
        conn.execute('CREATE TABLE churn (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false)')
        conn.execute('INSERT INTO churn SELECT g, g FROM generate_series(1, 2000) g')
        conn.execute('DELETE FROM churn WHERE id <= 500')
        conn.execute('SELECT count(*) FROM churn WHERE id = 1000')   # one index read at least
        if preloaded:
            conn.execute('SELECT pg_sleep(1.05)')
    params = conninfo_to_dict(dsn)
    info = {'name': name, 'dsn': dsn, 'params': params, 'timescaledb': has_timescaledb, 'preloaded': preloaded}
    yield info
    with _admin(DSN) as admin:
        admin.execute(sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)').format(sql.Identifier(name)))


def module_args(db, **extra):
    p = db['params']
    args = {'login_db': db['name'], 'login_user': p.get('user', 'postgres'), 'as_of': AS_OF}
    host = p.get('host', '')
    if host.startswith('/'):
        args['login_unix_socket'] = host
    elif host:
        args['login_host'] = host
    if p.get('port'):
        args['login_port'] = int(p['port'])
    if p.get('password'):
        args['login_password'] = p['password']
    args.update(extra)
    return args


def run_with_ansible(args):
    """Run the module through ansible's real packaging (AnsiballZ) on localhost."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
               ANSIBLE_LOCALHOST_WARNING='false')
    ansible = str(Path(sys.executable).parent / 'ansible')
    cmd = [ansible, 'localhost', '-i', 'localhost,', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-m', 'quantops.platform.postgresql_health_info', '-a', json.dumps(args)]
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode in (0, 2), proc.stderr
    out = json.loads(proc.stdout)
    return out['plays'][0]['tasks'][0]['hosts']['localhost']


def by_name(result):
    return dict((c['name'], c) for c in result['checks'])


def test_module_through_ansible(scratch_db):
    result = run_with_ansible(module_args(scratch_db))
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is False
    assert result['database'] == scratch_db['name']
    checks = by_name(result)
    assert checks['Database size']['status'] == 'ok'
    assert result['database_size_bytes'] > 0
    assert checks['Active connections']['status'] == 'ok'
    assert result['connections']['max_connections'] >= result['connections']['usable'] > 0

    fresh = dict((f['group'], f) for f in result['freshness'])
    assert sorted(fresh) == ['CRYPTO', 'FX', 'US']
    assert fresh['CRYPTO']['latest'] == '2024-06-28' and fresh['CRYPTO']['age_hours'] == 9.0
    assert fresh['US']['age_hours'] == 33.0
    assert checks['Data freshness (CRYPTO)']['status'] == 'ok'
    assert checks['Data freshness (US)']['status'] == 'warning'
    assert checks['Data freshness (FX)']['status'] == 'warning'
    assert 'DataStale' in checks['Data freshness (FX)']['message']

    assert result['checklist'][0].startswith(u'\u2713 Database size: ')
    assert result['status'] in ('warning', 'unknown', 'critical')
    assert result['warning_count'] >= 2
    if scratch_db['timescaledb']:
        assert result['timescaledb']['installed'] is True
        assert result['hypertables'][0]['name'] == 'ohlcv_data'
        assert result['hypertables'][0]['total_chunks'] >= 1
        tables = dict((t['name'], t) for t in result['tables'])
        assert tables['ohlcv_data']['is_hypertable'] is True
        assert tables['ohlcv_data']['live_tuples'] + tables['ohlcv_data']['dead_tuples'] >= 0
    else:
        assert result['timescaledb']['installed'] is False
        assert checks['Hypertable chunks']['status'] == 'unknown'
        assert result['status'] == 'warning'      # warnings outrank the unknown check


def test_check_mode_is_read_only(scratch_db):
    args = module_args(scratch_db, checks=['database_size'])
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json')
    cmd = [str(Path(sys.executable).parent / 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local', '--check',
           '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-m', 'quantops.platform.postgresql_health_info', '-a', json.dumps(args)]
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=180,
                          check=False)
    host = json.loads(proc.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']
    assert not host.get('failed'), host.get('msg')
    assert host['changed'] is False
    assert [c['check'] for c in host['checks']] == ['database_size']


def test_slow_statements(scratch_db):
    result = run_with_ansible(module_args(scratch_db, checks=['slow_statements'],
                                          thresholds={'slow_statements_warning': 1}))
    check = result['checks'][0]
    if scratch_db['preloaded']:
        assert result['slow_statements']['installed'] is True
        assert result['slow_statements']['count'] >= 1          # the pg_sleep(1.05) of the fixture
        assert check['status'] == 'warning'
        assert any(t['mean_exec_time_ms'] > 1000 for t in result['slow_statements']['top'])
    else:
        assert check['status'] == 'unknown'
        assert 'shared_preload_libraries' in check['message']


def test_dead_tuples_and_index_hits(scratch_db):
    result = run_with_ansible(module_args(scratch_db, checks=['dead_tuples', 'index_hit_ratio', 'cache_hit_ratio'],
                                          thresholds={'hit_ratio_min_blocks': 1}))
    tables = dict((t['name'], t) for t in result['tables'])
    churn = tables['churn']
    assert churn['live_tuples'] == 1500 and churn['dead_tuples'] == 500
    assert churn['dead_tuple_ratio'] == 0.25
    checks = by_name(result)
    assert checks['Dead tuples (public.churn)']['status'] == 'warning'
    assert 'Index hit ratio (public.churn)' in checks
    assert checks['Cache hit ratio']['status'] in ('ok', 'warning', 'critical')
    assert result['cache_hit_ratio'] is None or 0 <= result['cache_hit_ratio'] <= 1


def test_hostile_table_name_is_read_not_executed(scratch_db):
    result = run_with_ansible(module_args(scratch_db, checks=['freshness'], freshness_table=HOSTILE))
    assert not result.get('failed'), result.get('msg')
    assert result['freshness'] == [{'group': 'EU', 'latest': '2024-06-28', 'age_seconds': 32400.0, 'age_hours': 9.0}]
    psycopg = _psycopg()
    with psycopg.connect(scratch_db['dsn']) as conn:
        assert conn.execute("SELECT to_regclass('public.y') IS NOT NULL").fetchone()[0] is True


def test_missing_freshness_table_is_unknown(scratch_db):
    result = run_with_ansible(module_args(scratch_db, checks=['freshness'], freshness_table='no_such_table'))
    assert not result.get('failed'), result.get('msg')
    assert result['checks'][0]['status'] == 'unknown'
    assert 'does not exist' in result['checks'][0]['message']


def test_connection_failure_names_the_target(scratch_db):
    args = module_args(scratch_db, login_db='quantops_no_such_db', login_password='not-shown-anywhere')
    result = run_with_ansible(args)
    assert result['failed'] is True
    assert 'dbname=quantops_no_such_db' in result['msg']
    assert 'not-shown-anywhere' not in json.dumps(result)
