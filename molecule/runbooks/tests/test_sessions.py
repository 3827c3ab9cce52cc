# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End state after seed_sessions.yml (H3): the runbooks found the seeded problems and, once
confirmed, fixed them.

Runs against the real PostgreSQL of the scenario's database host (testinfra over podman) and
reads the incident reports and the snapshot the runbooks wrote on the controller
(incident_reports_dir = $MOLECULE_EPHEMERAL_DIRECTORY/reports, see molecule.yml).
"""

import glob
import json
import os
import re
import tarfile

import pytest

testinfra_hosts = ["podman://qp-rb-db"]

SEEDED_APPS = ('qp-seed-idle-tx', 'qp-seed-blocker', 'qp-seed-waiter', 'qp-seed-long-query')


def psql(host, sql):
    """Run one query as postgres in quant_platform; return the rows as lists of strings."""
    cmd = host.run("runuser -u postgres -- psql -X -A -t -F '|' -d quant_platform -c %s" % _quote(sql))
    assert cmd.rc == 0, cmd.stderr
    return [line.split('|') for line in cmd.stdout.strip().splitlines() if line]


def _quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def reports_dir():
    base = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY')
    if not base:
        pytest.skip('MOLECULE_EPHEMERAL_DIRECTORY not set: run through molecule verify')
    return os.path.join(base, 'reports')


def reports(kind):
    return sorted(glob.glob(os.path.join(reports_dir(), 'INC-*-%s*.md' % kind)))


def severity(path):
    with open(path) as handle:
        match = re.search(r'^\*\*Severity\*\*: (P[0-3])', handle.read(), re.M)
    return match.group(1) if match else None


def test_no_seeded_session_is_left(host):
    rows = psql(host, "SELECT application_name, state FROM pg_stat_activity WHERE application_name LIKE 'qp-seed-%'")
    assert rows == [], 'seeded sessions still connected: %s' % rows


def test_no_idle_transaction_or_lock_wait_is_left(host):
    rows = psql(host, "SELECT pid, application_name FROM pg_stat_activity WHERE backend_type = 'client backend' "
                      "AND (state LIKE 'idle in transaction%' OR cardinality(pg_blocking_pids(pid)) > 0)")
    assert rows == []


def test_bloated_table_was_vacuumed(host):
    (dead, live, vacuumed), = psql(host, "SELECT n_dead_tup, n_live_tup, last_vacuum IS NOT NULL "
                                         "FROM pg_stat_user_tables WHERE relname = 'qp_seed_bloat'")
    assert int(live) == 100000
    assert int(dead) < 1000
    assert vacuumed == 't'


def test_bloated_primary_key_was_rebuilt(host):
    # 100 000 int4 keys packed at fillfactor 90 need about 275 pages; before REINDEX it had ~550.
    (pages,), = psql(host, "SELECT pg_relation_size('qp_seed_bloat_pkey') / current_setting('block_size')::int")
    assert int(pages) < 350


def test_triage_report_and_snapshot():
    triage = reports('triage')
    assert triage, 'no triage report in %s' % reports_dir()
    assert severity(triage[-1]) == 'P1'           # a session was blocked by another
    archives = sorted(glob.glob(os.path.join(reports_dir(), 'incident-*.tar.gz')))
    assert archives, 'the snapshot was not fetched to the controller'
    with tarfile.open(archives[-1]) as tar:
        names = [os.path.basename(n) for n in tar.getnames()]
        assert set(names) >= {'meta.json', 'activity.json', 'blocking_tree.json', 'statements_by_total_time.json',
                              'statements_by_mean_time.json', 'settings.json', 'database_sizes.json', 'server_log.json'}
        member = [m for m in tar.getmembers() if m.name.endswith('/blocking_tree.json')][0]
        tree = json.loads(tar.extractfile(member).read())
        activity = json.loads(tar.extractfile([m for m in tar.getmembers() if m.name.endswith('/activity.json')][0]).read())
    apps = dict((row['pid'], row['application']) for row in activity)
    chains = [(apps.get(root['pid']), [apps.get(child['pid']) for child in root['blocks']]) for root in tree]
    assert ('qp-seed-blocker', ['qp-seed-waiter']) in chains
    with open(triage[-1]) as handle:
        assert archives[-1] in handle.read()          # attached to the report


def test_connection_exhaustion_reports_unconfirmed_then_confirmed():
    found = reports('connection-exhaustion')
    assert len(found) >= 2
    dry, confirmed = found[-2], found[-1]
    assert severity(dry) == 'P2' and severity(confirmed) == 'P2'
    with open(dry) as handle:
        text = handle.read()
    assert 'Nothing terminated: not confirmed' in text and '✗ Sessions over the limits left: 2' in text
    with open(confirmed) as handle:
        text = handle.read()
    assert re.search(r'Terminated 2 session\(s\): pids \d+, \d+', text)
    assert '✓ Sessions over the limits left: 0' in text


def test_slow_queries_reports_unconfirmed_then_confirmed():
    found = reports('slow-queries')
    assert len(found) >= 2
    dry, confirmed = found[-2], found[-1]
    assert severity(dry) == 'P2' and severity(confirmed) == 'P2'
    with open(dry) as handle:
        assert '✗ Long-running statements left: 1' in handle.read()
    with open(confirmed) as handle:
        text = handle.read()
    assert re.search(r'Cancelled 1 statement\(s\): pids \d+', text)
    assert '✓ Long-running statements left: 0' in text
