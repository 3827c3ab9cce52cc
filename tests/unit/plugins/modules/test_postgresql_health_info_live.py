# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""quantops.platform.postgresql_health_info against a real PostgreSQL server, through ansible (AnsiballZ).

The server is a throwaway cluster this file starts from the PostgreSQL server binaries of the
machine (Debian's ``postgresql`` package: /usr/lib/postgresql/<major>/bin/initdb), on a unix socket
in a temporary directory, with pg_stat_statements preloaded; it is stopped and removed at the end.
As root the cluster runs as the ``postgres`` user.  ``QUANTOPS_PG_DSN`` (a libpq conninfo of a
role that may create databases, e.g. the Molecule instance with TimescaleDB) is used instead when
set.  Without either the tests are skipped, saying why.

Each run creates a scratch database ``quantops_health_<random>`` with a small OHLCV table for the
lab regions US, FX and CRYPTO, and drops it again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import ansible_collections.quantops.platform as collection

HOSTILE = 'x"; DROP TABLE y; --'
AS_OF = '2024-06-29T09:00:00Z'
PORT = 55439


def _server_bin():
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'), key=lambda p: int(p.split('/')[4]))
    return os.path.dirname(found[-1]) if found else None


def _as_server_user(argv):
    if os.geteuid() == 0:
        return ['runuser', '-u', 'postgres', '--'] + argv
    return argv


@pytest.fixture(scope='module')
def server_dsn():
    """A conninfo of a superuser on a server: QUANTOPS_PG_DSN, or a throwaway cluster started here."""
    if os.environ.get('QUANTOPS_PG_DSN'):
        yield os.environ['QUANTOPS_PG_DSN']
        return
    bindir = _server_bin()
    if bindir is None:
        pytest.skip('no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb: apt-get install postgresql) '
                    'and QUANTOPS_PG_DSN is not set')
    base = Path(tempfile.mkdtemp(prefix='qp-pg-'))     # in /tmp: the postgres user must reach it
    if os.geteuid() == 0:
        user = pwd.getpwnam('postgres')
        os.chown(str(base), user.pw_uid, user.pw_gid)
    data = str(base / 'data')
    subprocess.run(_as_server_user([os.path.join(bindir, 'initdb'), '-D', data, '-A', 'trust', '-U', 'postgres']),
                   check=True, capture_output=True)
    options = "-p %d -k %s -c listen_addresses='' -c shared_preload_libraries=pg_stat_statements" % (PORT, base)
    subprocess.run(_as_server_user([os.path.join(bindir, 'pg_ctl'), '-D', data, '-l', str(base / 'log'), '-w',
                                    '-o', options, 'start']), check=True, capture_output=True)
    try:
        yield 'host=%s port=%d user=postgres dbname=postgres' % (base, PORT)
    finally:
        subprocess.run(_as_server_user([os.path.join(bindir, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop']),
                       check=False, capture_output=True)
        shutil.rmtree(str(base), ignore_errors=True)


@pytest.fixture(scope='module')
def scratch_db(server_dsn):
    name = 'quantops_health_%s' % uuid.uuid4().hex[:10]
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name)))
    dsn = make_conninfo(server_dsn, dbname=name)
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
        conn.execute('CREATE VIEW slow_view AS SELECT region, date FROM ohlcv_data, pg_sleep(3) AS s')
        conn.execute('CREATE TABLE churn (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false)')
        conn.execute('INSERT INTO churn SELECT g, g FROM generate_series(1, 2000) g')
        conn.execute('DELETE FROM churn WHERE id <= 500')
        conn.execute('SELECT count(*) FROM churn WHERE id = 1000')   # one index read at least
        if preloaded:
            conn.execute('SELECT pg_sleep(1.05)')
    params = conninfo_to_dict(dsn)
    info = {'name': name, 'dsn': dsn, 'params': params, 'timescaledb': has_timescaledb, 'preloaded': preloaded}
    yield info
    with psycopg.connect(server_dsn, autocommit=True) as admin:
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


def run_with_ansible(args, *options):
    """Run the module through ansible's real packaging (AnsiballZ) on localhost, without the checkout's ansible.cfg."""
    collections_dir = os.path.dirname(os.path.dirname(os.path.dirname(list(collection.__path__)[0])))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_dir, ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
               ANSIBLE_LOCALHOST_WARNING='false')
    env.pop('ANSIBLE_CONFIG', None)
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % sys.executable] + list(options)
    cmd += ['-m', 'quantops.platform.postgresql_health_info', '-a', json.dumps(args)]
    proc = subprocess.run(cmd, cwd='/', env=env, capture_output=True, text=True, timeout=180, check=False)
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
        assert tables['ohlcv_data']['live_tuples'] == 180          # 3 series x 60 days, summed over the chunks
    else:
        assert result['timescaledb']['installed'] is False
        assert checks['Hypertable chunks']['status'] == 'unknown'
        assert result['status'] == 'warning'      # warnings outrank the unknown check


def test_check_mode_is_read_only(scratch_db):
    host = run_with_ansible(module_args(scratch_db, checks=['database_size']), '--check')
    assert not host.get('failed'), host.get('msg')
    assert host['changed'] is False
    assert [c['check'] for c in host['checks']] == ['database_size']


def test_statement_timeout_cancels_and_session_role_applies(scratch_db):
    """statement_timeout and session_role reach the server: a 500 ms limit cancels the freshness query of a
    view that sleeps 3 s (the check turns unknown with the server's message), and SET ROLE to a role
    without SELECT on the table makes the same check report the missing privilege."""
    with psycopg.connect(scratch_db['dsn'], autocommit=True) as conn:
        conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'qp_reader') "
                     "THEN CREATE ROLE qp_reader; END IF; END $$")
    result = run_with_ansible(module_args(scratch_db, checks=['freshness'], statement_timeout='500ms',
                                          freshness_table='slow_view'))
    assert not result.get('failed'), result.get('msg')
    assert result['checks'][0]['status'] == 'unknown'
    assert 'canceling statement due to statement timeout' in result['checks'][0]['message']
    result = run_with_ansible(module_args(scratch_db, checks=['freshness'], session_role='qp_reader'))
    assert result['checks'][0]['status'] == 'unknown'
    assert 'permission denied' in result['checks'][0]['message']


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
