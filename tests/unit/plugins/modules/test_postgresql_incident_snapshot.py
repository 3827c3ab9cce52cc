# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of postgresql_incident_snapshot: option validation, log tail, archive layout, check mode,
a missing pg_stat_statements, and a hostile extension schema.

The database is scripted (utils.FakeDB: substring of the query -> rows); the archive and the log file are
real files under pytest's tmp_path.  The module against a real server runs in the runbooks scenario
(playbooks/incidents/triage.yml fetches the archive).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat
import tarfile

import pytest


from ansible_collections.quantops.platform.plugins.modules import postgresql_incident_snapshot as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import (
    T0, FakeDB, assert_options_documented, fail_runner, ok_runner)

run_ok = ok_runner(mod)
run_fail = fail_runner(mod)


HOSTILE = 'x"; DROP TABLE y; --'


# --- pure helpers ---------------------------------------------------------------------------

def test_tail_lines_is_bounded(tmp_path):
    log = tmp_path / 'pg.log'
    log.write_text(''.join('line %d\n' % i for i in range(1000)))
    assert mod.tail_lines(str(log), 3) == ['line 997', 'line 998', 'line 999']
    assert mod.tail_lines(str(log), 0) == []
    # reading only the last 20 bytes drops the first, probably cut, line
    assert mod.tail_lines(str(log), 100, limit=20) == ['line 998', 'line 999']


def test_default_log_file():
    assert mod.default_log_file('log/postgresql.log', '/var/lib/postgresql/17/main', 170002) == \
        '/var/lib/postgresql/17/main/log/postgresql.log'
    assert mod.default_log_file('/var/log/pg.log', '/data', 170002) == '/var/log/pg.log'
    assert mod.default_log_file(None, None, 170011) == '/var/log/postgresql/postgresql-17-main.log'


def test_build_archive_layout_and_mode(tmp_path):
    path = str(tmp_path / 'incident-1.tar.gz')
    members = mod.build_archive(path, 'incident-1', [('meta', {'a': 1}), ('activity', [{'t': T0}])])
    assert members == ['incident-1/meta.json', 'incident-1/activity.json']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with tarfile.open(path) as tar:
        activity = json.loads(tar.extractfile('incident-1/activity.json').read())
    assert activity == [{'t': '2026-11-23T12:00:00+00:00'}]
    assert [p.name for p in tmp_path.iterdir()] == ['incident-1.tar.gz']     # no temporary file left


# --- the module -----------------------------------------------------------------------------

def activity_row(pid, state, blocked_by=(), backend_type='client backend'):
    return {'pid': pid, 'database': 'quant_platform', 'user': 'quant_app', 'application': 'psql',
            'client_addr': None, 'backend_type': backend_type, 'state': state, 'wait_event_type': None,
            'wait_event': None, 'backend_start': T0, 'state_change': T0, 'connection_seconds': 10.0,
            'transaction_seconds': 5.0, 'query_seconds': 5.0, 'state_seconds': 5.0, 'blocked_by': list(blocked_by),
            'query': 'LOCK TABLE t', 'is_self': False}


class SnapshotDB(FakeDB):
    def __init__(self, extension_schema='public', log_file=None):
        statement = {'queryid': 1, 'database': 'quant_platform', 'role': 'quant_app', 'calls': 3,
                     'total_exec_time_ms': 3000.0, 'mean_exec_time_ms': 1000.0, 'stddev_exec_time_ms': 1.0,
                     'max_exec_time_ms': 1002.0, 'rows': 3, 'shared_blks_hit': 10, 'shared_blks_read': 0,
                     'hit_percent': 100.0, 'query': 'SELECT pg_sleep($1)'}
        super(SnapshotDB, self).__init__([
            ('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', None),
            ('AS collected_at', [{'collected_at': T0, 'database': 'quant_platform',
                                  'server_version': '17.11', 'version_num': 170011}]),
            ('FROM pg_catalog.pg_stat_activity a ORDER BY', [
                activity_row(1, 'idle in transaction'), activity_row(2, 'active', blocked_by=[1]),
                activity_row(3, None, backend_type='checkpointer')]),
            ("extname = 'pg_stat_statements'", [{'schema': extension_schema}] if extension_schema else []),
            ('ORDER BY s.', [statement]),
            ('FROM pg_catalog.pg_settings', [{'name': 'work_mem', 'setting': '65536', 'unit': 'kB',
                                              'source': 'configuration file', 'sourcefile': '/etc/x.conf',
                                              'sourceline': 3, 'pending_restart': False}]),
            ('pg_database_size', [{'database': 'quant_platform', 'size_bytes': 1234}]),
            ('pg_current_logfile', [{'file': log_file, 'data_directory': '/var/lib/postgresql/17/main'}]),
        ])


@pytest.fixture
def fake_db(install):
    return lambda **kw: install(SnapshotDB(**kw))


def test_bad_paths_fail_before_connecting(no_connect, tmp_path):
    assert 'absolute file name ending in .tar.gz' in run_fail({'path': 'relative.tar.gz'})['msg']
    assert 'absolute file name ending in .tar.gz' in run_fail({'path': str(tmp_path / 'x.zip')})['msg']
    assert 'does not exist on the target' in run_fail({'path': str(tmp_path / 'no' / 'x.tar.gz')})['msg']
    existing = tmp_path / 'old.tar.gz'
    existing.write_text('keep me')
    assert 'never overwrites' in run_fail({'path': str(existing)})['msg']
    assert existing.read_text() == 'keep me'
    assert 'log_lines must be 0 or more' in run_fail({'path': str(tmp_path / 'a.tar.gz'), 'log_lines': -1})['msg']


def test_snapshot_archive_contents(fake_db, tmp_path):
    log = tmp_path / 'postgresql-17-main.log'
    log.write_text('a\nb\nERROR: boom\n')
    fake_db(log_file=str(log))
    path = tmp_path / 'incident-x.tar.gz'
    result = run_ok({'path': str(path), 'log_lines': 2})
    assert result['written'] is True and result['changed'] is True and result['errors'] == {}
    summary = result['summary']
    assert summary['blocked_sessions'] == 1
    assert summary['client_sessions_by_state'] == {'idle in transaction': 1, 'active': 1}
    assert summary['top_statements'][0]['queryid'] == 1 and summary['databases'] == {'quant_platform': 1234}
    assert summary['log_lines'] == 2 and summary['log_file'] == str(log)
    with tarfile.open(str(path)) as tar:
        names = tar.getnames()
        tree = json.loads(tar.extractfile('incident-x/blocking_tree.json').read())
        server_log = json.loads(tar.extractfile('incident-x/server_log.json').read())
    assert names == result['files'] and len(names) == 8
    assert tree[0]['pid'] == 1 and tree[0]['blocks'][0]['pid'] == 2
    assert server_log['lines'] == ['b', 'ERROR: boom']


def test_check_mode_collects_but_writes_nothing(fake_db, tmp_path):
    db = fake_db()
    result = run_ok({'path': str(tmp_path / 'x.tar.gz'), 'log_lines': 0, '_ansible_check_mode': True})
    assert result['written'] is False and result['changed'] is True
    assert list(tmp_path.iterdir()) == []
    assert any('pg_stat_activity' in t for t, p in db.executed)


def test_missing_extension_and_unreadable_log_are_recorded_not_fatal(fake_db, tmp_path):
    fake_db(extension_schema=None, log_file=str(tmp_path / 'missing.log'))
    result = run_ok({'path': str(tmp_path / 'x.tar.gz')})
    assert 'CREATE EXTENSION pg_stat_statements' in result['errors']['statements']
    assert 'Could not read' in result['errors']['server_log']
    assert result['summary']['statements_available'] is False and result['written'] is True


def test_hostile_extension_schema_is_quoted(fake_db, tmp_path):
    db = fake_db(extension_schema=HOSTILE)
    run_ok({'path': str(tmp_path / 'x.tar.gz'), 'log_lines': 0})
    ranked = [t for t in db.statements() if 'ORDER BY s.' in t]
    view = '"x""; DROP TABLE y; --"."pg_stat_statements"'
    assert ranked == [mod.STATEMENTS_TEMPLATE.replace('{view}', view).replace('{order}', '"%s"' % order)
                      .replace('{top}', '50') for order in ('total_exec_time', 'mean_exec_time')]
    assert ranked[0].endswith('FROM "x""; DROP TABLE y; --"."pg_stat_statements" AS s LEFT JOIN pg_catalog.pg_database '
                              'd ON d.oid = s.dbid LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid ORDER BY '
                              's."total_exec_time" DESC LIMIT 50')
    assert db.statements()[:2] == ["SET statement_timeout = '30s'", 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY']


def test_documentation_options_match_the_argument_spec():
    assert_options_documented(mod)
