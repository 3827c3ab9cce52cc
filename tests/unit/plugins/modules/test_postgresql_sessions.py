# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of postgresql_sessions and module_utils/sessions.py: the selection rules, the exclusions,
the cap, check mode and option validation.

The database is scripted (utils.FakeDB: substring of the query -> rows), because these tests
check which pids the module decides to signal and with which statement; the real server is
exercised by the runbooks scenario (molecule/runbooks, seed_sessions.yml and tests/test_sessions.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import pytest


from ansible_collections.quantops.platform.plugins.module_utils import sessions as sess
from ansible_collections.quantops.platform.plugins.modules import postgresql_sessions as mod
from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import (
    T0, FakeDB, assert_options_documented, fail_runner, ok_runner)

run_ok = ok_runner(mod)
run_fail = fail_runner(mod)


HOSTILE = 'x"; DROP TABLE y; --'


def session(pid, state='idle', seconds=0.0, query_seconds=None, xact=None, user='quant_app', app='trader',
            db='quant_platform', backend_type='client backend', blocked_by=(), is_self=False, query='SELECT 1'):
    return {
        'pid': pid, 'database': db, 'user': user, 'application': app, 'client_addr': None,
        'backend_type': backend_type, 'state': state, 'wait_event_type': None, 'wait_event': None,
        'backend_start': T0, 'state_change': T0 + datetime.timedelta(seconds=pid),
        'connection_seconds': 1000.0, 'transaction_seconds': xact,
        'query_seconds': query_seconds if query_seconds is not None else seconds, 'state_seconds': seconds,
        'blocked_by': list(blocked_by), 'query': query, 'is_self': is_self,
    }


SAMPLE = [
    session(100, 'active', 1.0, is_self=True, app='ansible-quantops.platform', user='postgres'),
    session(101, 'idle', 900.0),
    session(102, 'idle', 60.0),
    session(103, 'idle in transaction', 700.0, xact=710.0),
    session(104, 'idle in transaction (aborted)', 400.0, xact=400.0),
    session(105, 'active', 400.0, xact=400.0, query='SELECT pg_sleep(600)'),
    session(106, 'active', 30.0, xact=30.0, blocked_by=[103]),     # waits on 103 for 30 s
    session(107, 'active', 5000.0, backend_type='walsender', user='replicator'),
    session(108, 'active', 5000.0, backend_type='autovacuum worker', user=None),
    session(109, 'idle', 5000.0, user='postgres_exporter', app='postgres_exporter'),
    session(110, 'idle', 5000.0, db='postgres'),
    session(111, 'active', 600.0, xact=600.0, app='pg_dump'),
]


# --- the selection rules (pure) ---------------------------------------------------------

def pids(sessions):
    return [s['pid'] for s in sessions]


def test_idle_rule_uses_state_change_and_strict_greater():
    matched, over = sess.select_sessions(SAMPLE, {'idle': 60.0}, databases=['quant_platform'])
    assert pids(matched) == [109, 101]     # 102 is idle exactly 60 s: not more than 60; longest idle first
    assert over == []
    assert matched[1]['reasons'] == ['idle for 900 s (> 60 s)']


def test_idle_in_transaction_rule_covers_aborted_transactions():
    matched, dummy = sess.select_sessions(SAMPLE, {'idle_in_transaction': 300.0}, databases=['quant_platform'])
    assert pids(matched) == [103, 104]     # oldest transaction first
    assert 'idle in transaction (aborted) for 400 s' in matched[1]['reasons'][0]


def test_active_rule_uses_query_start():
    matched, dummy = sess.select_sessions(SAMPLE, {'active': 300.0}, databases=['quant_platform'])
    assert pids(matched) == [111, 105]     # the own session (100), walsender (107) and autovacuum (108) never
    matched, dummy = sess.select_sessions(SAMPLE, {'active': 300.0}, databases=['quant_platform'],
                                          exclude_applications=['pg_dump'])
    assert pids(matched) == [105]


def test_blocking_rule_selects_root_blockers_by_wait_time():
    matched, dummy = sess.select_sessions(SAMPLE, {'blocking': 10.0}, databases=['quant_platform'])
    assert pids(matched) == [103]
    assert matched[0]['reasons'] == ['blocks other sessions, longest wait 30 s (> 10 s)']
    matched, dummy = sess.select_sessions(SAMPLE, {'blocking': 30.0}, databases=['quant_platform'])
    assert matched == []


def test_blocker_that_waits_itself_is_not_a_root():
    rows = [session(1, 'idle in transaction', 50.0, xact=50.0),
            session(2, 'active', 40.0, xact=40.0, blocked_by=[1]),
            session(3, 'active', 20.0, xact=20.0, blocked_by=[2])]
    matched, dummy = sess.select_sessions(rows, {'blocking': 0.0})
    assert pids(matched) == [1]


def test_never_self_replication_background_or_excluded():
    everything = {'idle': 0.0, 'idle_in_transaction': 0.0, 'active': 0.0, 'blocking': 0.0}
    matched, dummy = sess.select_sessions(SAMPLE, everything, databases=None,
                                          exclude_users=['postgres_exporter'])
    chosen = set(pids(matched))
    assert not chosen & {100, 107, 108, 109}
    assert 110 in chosen                   # databases=None means every database
    matched, dummy = sess.select_sessions(SAMPLE, everything, databases=['quant_platform'])
    assert 110 not in pids(matched)


def test_exclusions_are_exact_strings_even_hostile_ones():
    rows = [session(1, 'idle', 100.0, user=HOSTILE), session(2, 'idle', 100.0, user='x')]
    matched, dummy = sess.select_sessions(rows, {'idle': 10.0}, exclude_users=[HOSTILE])
    assert pids(matched) == [2]


def test_cap_keeps_the_longest_standing():
    rows = [session(p, 'idle in transaction', 100.0 + p, xact=100.0 + p) for p in range(1, 6)]
    matched, over = sess.select_sessions(rows, {'idle_in_transaction': 10.0}, max_sessions=2)
    assert pids(matched) == [5, 4]
    assert pids(over) == [3, 2, 1]


def test_query_is_truncated_and_can_be_hidden():
    rows = [session(1, 'idle', 100.0, query='x' * 500)]
    matched, dummy = sess.select_sessions(rows, {'idle': 1.0}, query_length=10)
    assert matched[0]['query'] == 'x' * 9 + '\u2026'
    matched, dummy = sess.select_sessions(rows, {'idle': 1.0}, query_length=0)
    assert matched[0]['query'] == ''


def test_summary_counts_like_seed_002_issue_3():
    summary = sess.summarize(SAMPLE, ['quant_platform'])
    assert summary['by_state'] == {'active': 4, 'idle': 3, 'idle in transaction': 1,
                                   'idle in transaction (aborted)': 1}
    assert summary['total'] == 9           # walsender, autovacuum and the other database left out
    assert summary['by_group'][0]['count'] >= summary['by_group'][-1]['count']


def test_blocking_tree_nests_chains_and_survives_cycles():
    rows = [session(1, 'idle in transaction', 50.0), session(2, 'active', 40.0, blocked_by=[1]),
            session(3, 'active', 20.0, blocked_by=[2]), session(4, 'active', 10.0, blocked_by=[1])]
    tree = sess.blocking_tree(rows)
    assert [n['pid'] for n in tree] == [1]
    assert [n['pid'] for n in tree[0]['blocks']] == [2, 4]
    assert tree[0]['blocks'][0]['blocks'][0]['pid'] == 3
    cycle = [session(1, 'active', 5.0, blocked_by=[2]), session(2, 'active', 5.0, blocked_by=[1])]
    tree = sess.blocking_tree(cycle)
    assert tree[0]['pid'] == 1 and tree[0]['blocks'][0]['pid'] == 2 and tree[0]['blocks'][0]['blocks'] == []


@pytest.mark.parametrize('rules, fragment', [
    ({'idle_longer_than': -1}, 'idle_longer_than must be 0 or more'),
    ({'active_longer_than': 'ten'}, 'must be a number of seconds'),
    ({'blocking_longer_than': True}, 'must be a number of seconds'),
])
def test_validate_rules_rejects_bad_thresholds(rules, fragment):
    with pytest.raises(sess.RuleError, match=fragment):
        sess.validate_rules(rules)


# --- the module ------------------------------------------------------------------------

class SessionsDB(FakeDB):
    def __init__(self, rows=None, signal=True):
        super(SessionsDB, self).__init__([
            ("current_setting('max_connections')", [{'max_connections': 100, 'superuser_reserved': 3, 'reserved': 0,
                                                     'version_num': 170002, 'database': 'quant_platform'}]),
            ('pg_terminate_backend', lambda params: [{'done': signal}] if signal is not None else []),
            ('pg_cancel_backend', lambda params: [{'done': signal}] if signal is not None else []),
            ('FROM pg_catalog.pg_stat_activity a ORDER BY', [dict(r) for r in (rows or SAMPLE)]),
        ])

    def signals(self):
        return [(t, p) for t, p in self.executed if 'backend(a.pid' in t]


@pytest.fixture
def fake_db(install):
    return lambda **kw: install(SessionsDB(**kw))


@pytest.mark.parametrize('args, fragment', [
    ({'mode': 'terminate'}, 'mode is terminate but any of the following are missing: idle_longer_than, '
                            'idle_in_transaction_longer_than, active_longer_than, blocking_longer_than'),
    ({'mode': 'cancel'}, 'mode is cancel but any of the following are missing'),
    ({'mode': 'cancel', 'idle_longer_than': 60}, 'use mode=terminate'),
    ({'idle_longer_than': -5}, 'must be 0 or more'),
    ({'mode': 'terminate', 'active_longer_than': 1, 'max_terminations': 0}, 'max_terminations must be 1'),
    ({'databases': ['a'], 'all_databases': True}, 'parameters are mutually exclusive: databases|all_databases'),
    ({'databases': []}, 'databases must list database names'),
    ({'terminate_timeout': -1}, 'terminate_timeout must be 0 or more'),
    ({'mode': 'kill'}, 'value of mode must be one of'),
])
def test_bad_options_fail_before_connecting(no_connect, args, fragment):
    assert fragment in run_fail(args)['msg']


def test_list_mode_signals_nothing(fake_db):
    db = fake_db()
    result = run_ok({'idle_in_transaction_longer_than': 300, 'blocking_longer_than': 0})
    assert result['changed'] is False
    assert pids(result['sessions']) == [103, 104]
    assert all(s['action'] == 'listed' for s in result['sessions'])
    assert db.signals() == [] and result['queries'] == []
    assert db.statements()[0] == "SET statement_timeout = '30s'"
    assert result['summary']['total'] == 9
    assert result['connections']['server_total'] == 10 and result['connections']['utilization_pct'] == 10.3
    assert result['blocking_tree'][0]['pid'] == 103
    assert db.closed


def test_check_mode_lists_victims_and_statements_without_signalling(fake_db):
    db = fake_db()
    result = run_ok({'mode': 'terminate', 'idle_in_transaction_longer_than': 300, '_ansible_check_mode': True})
    assert result['changed'] is True
    assert [s['action'] for s in result['sessions']] == ['would_terminate', 'would_terminate']
    assert result['queries'] == [
        "SELECT pg_catalog.pg_terminate_backend(a.pid, 5000) AS done FROM pg_catalog.pg_stat_activity a "
        "WHERE a.pid = %d AND a.backend_start = '2026-11-23 12:00:00+00:00'::timestamptz "
        "AND a.state_change IS NOT DISTINCT FROM '2026-11-23 12:%s+00:00'::timestamptz" % (pid, change)
        for pid, change in ((103, '01:43'), (104, '01:44'))]
    assert db.signals() == [] and result['terminated'] == []


def test_terminate_checks_identity_and_respects_the_cap(fake_db):
    db = fake_db()
    result = run_ok({'mode': 'terminate', 'idle_longer_than': 600, 'all_databases': True, 'max_terminations': 1,
                     'exclude_users': ['postgres_exporter'], 'terminate_timeout': 2})
    assert result['terminated'] == [110] and result['changed'] is True     # idle 5000 s before idle 900 s
    assert [(s['pid'], s['action']) for s in result['sessions']] == [(110, 'terminated'), (101, 'over_cap')]
    assert result['over_cap'] == 1
    (text, params), = db.signals()
    assert text == ("SELECT pg_catalog.pg_terminate_backend(a.pid, 2000) AS done FROM pg_catalog.pg_stat_activity a "
                    "WHERE a.pid = 110 AND a.backend_start = '2026-11-23 12:00:00+00:00'::timestamptz "
                    "AND a.state_change IS NOT DISTINCT FROM '2026-11-23 12:01:50+00:00'::timestamptz")
    assert params is None and result['queries'] == [text]     # the SQL returned is the SQL sent
    assert '_identity' not in result['sessions'][0]


def test_session_gone_or_refused_is_reported(fake_db):
    fake_db(signal=None)
    result = run_ok({'mode': 'cancel', 'active_longer_than': 300})
    assert [s['action'] for s in result['sessions']] == ['gone', 'gone']
    assert result['changed'] is False
    fake_db(signal=False)
    result = run_ok({'mode': 'cancel', 'active_longer_than': 300})
    assert [s['action'] for s in result['sessions']] == ['failed', 'failed'] and result['cancelled'] == []


def test_cancel_uses_pg_cancel_backend(fake_db):
    db = fake_db()
    result = run_ok({'mode': 'cancel', 'active_longer_than': 300, 'exclude_applications': ['pg_dump']})
    assert result['cancelled'] == [105]
    (text, params), = db.signals()
    assert text == ("SELECT pg_catalog.pg_cancel_backend(a.pid) AS done FROM pg_catalog.pg_stat_activity a "
                    "WHERE a.pid = 105 AND a.backend_start = '2026-11-23 12:00:00+00:00'::timestamptz "
                    "AND a.state_change IS NOT DISTINCT FROM '2026-11-23 12:01:45+00:00'::timestamptz")


def test_hostile_names_are_only_compared_never_sent(fake_db):
    db = fake_db(rows=[session(1, 'idle', 900.0, user=HOSTILE, app=HOSTILE), session(2, 'idle', 900.0)])
    result = run_ok({'mode': 'terminate', 'idle_longer_than': 60, 'exclude_users': [HOSTILE],
                     'exclude_applications': [HOSTILE], 'databases': ['quant_platform', HOSTILE]})
    assert result['terminated'] == [2]
    for text, params in db.executed:
        assert 'DROP TABLE' not in text
        assert HOSTILE not in (params or ())


def test_documentation_options_match_the_argument_spec():
    assert_options_documented(mod)
