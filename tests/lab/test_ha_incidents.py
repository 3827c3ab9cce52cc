"""The Patroni incident runbooks (playbooks/incidents/replication_lag.yml, split_brain.yml) on a real cluster.

Each fault is made by hand, the way it happens: replay paused on a replica while the leader writes
(replication lag), a replica promoted outside Patroni while the cluster is paused (a second primary).
The runbook must find it, change nothing without its confirm variable (nor under --check), and
with it resolve the incident; the fenced member keeps its data directory.

Runs against the cluster lab of `make lab-ha` (`make lab-ha-test`, which sets the variables below);
not yet inside the Molecule `ha` scenario, where it has not had a verified run:

    QP_HA_PREFIX=qp-labha- QP_HA_INVENTORY=inventories/lab-ha \
      ANSIBLE_CONFIG=$PWD/ansible.cfg ANSIBLE_CONNECTION_PLUGINS=$PWD/tests/testbed/connection_plugins \
      .venv/bin/pytest -p no:cacheprovider tests/lab/test_ha_incidents.py

The containers are reached with `podman exec` (psql and patronictl as postgres inside them).
"""
import json
import os
import re
import subprocess
import tempfile
import time

import pytest

PREFIX = os.environ.get("QP_HA_PREFIX", "qp-ha-")
MEMBERS = [f"{PREFIX}db{n}" for n in (1, 2, 3)]
CLUSTER = "quant"
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
INVENTORY = os.environ.get("QP_HA_INVENTORY") or os.environ.get("MOLECULE_INVENTORY_FILE", "")
DATA_DIR = "/var/lib/postgresql/17/quant"
REPORTS = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY") or tempfile.mkdtemp(prefix="qp-incidents-")
testinfra_hosts = [f"podman://{MEMBERS[0]}"]


def podman(*argv, check=True, user=None):
    command = ["podman", "exec"] + (["-u", user] if user else []) + list(argv)
    run = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    if check and run.returncode != 0:
        raise AssertionError(f"{' '.join(command)}: {run.stderr or run.stdout}")
    return run.stdout.strip()


def psql(member, sql, check=True):
    return podman(member, "psql", "-d", "postgres", "-XAtc", sql, check=check, user="postgres")


def patronictl(*argv, check=True):
    return podman(MEMBERS[0], "patronictl", "-c", "/etc/patroni/config.yml", *argv, check=check, user="postgres")


def exists(member, path):
    return subprocess.run(["podman", "exec", member, "test", "-e", path], check=False).returncode == 0


def members():
    """{name: {role, state, timeline, ...}} from `patronictl list` (JSON), asked on the first member that answers."""
    for member in MEMBERS:
        out = podman(member, "patronictl", "-c", "/etc/patroni/config.yml", "list", "-f", "json", CLUSTER,
                     check=False, user="postgres")
        if out.startswith("["):
            return {m["Member"]: m for m in json.loads(out)}
    raise AssertionError("no member answers patronictl list")


def leader():
    leaders = [name for name, m in members().items() if m["Role"] == "Leader"]
    assert len(leaders) == 1, members()
    return leaders[0]


def async_replica():
    """A replica that is not the synchronous standby (else any replica)."""
    state = members()
    replicas = [name for name, m in state.items() if m["Role"] == "Replica"]
    return (replicas or [name for name, m in state.items() if m["Role"] != "Leader"])[0]


def wait_healthy(timeout=420, checkpoint_on=None):
    """Until one leader runs and every replica streams; CHECKPOINT on ``checkpoint_on`` meanwhile (a clone's
    pg_basebackup waits for a checkpoint, which would otherwise come only after checkpoint_timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if checkpoint_on:
            psql(checkpoint_on, "CHECKPOINT", check=False)
        try:
            state = members()
        except AssertionError:
            state = {}
        if (sorted(state) == MEMBERS and [m["Role"] for m in state.values()].count("Leader") == 1
                and all(m["State"] == "streaming" for m in state.values() if m["Role"] != "Leader")):
            return state
        time.sleep(3)
    raise AssertionError(f"cluster not healthy after {timeout} s: {members()}")


def runbook(name, check=False, **extra):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    variables = dict({f"{name}_cluster": CLUSTER, "incident_reports_dir": REPORTS}, **extra)
    command = ["ansible-playbook", "-i", INVENTORY, os.path.join(PROJECT, "playbooks", "incidents", name + ".yml"),
               "-e", json.dumps(variables)] + (["--check", "--diff"] if check else [])
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    out = " ".join((run.stdout + run.stderr).split())
    print(f"{name} {extra} check={check}: rc {run.returncode} in {time.monotonic() - started:.1f} s")
    return run.returncode, out


def checklist(out):
    """The printed checklist lines (✓/⚠/✗/?) of the run."""
    return re.findall(r'"([✓⚠✗?] [^"]*)"', out)


@pytest.fixture()
def paused_cluster():
    """Maintenance mode: Patroni neither resumes a paused replay nor demotes a second primary."""
    wait_healthy()
    patronictl("pause", "--wait", CLUSTER)
    try:
        yield
    finally:
        # (already resumed by a test that had to wait for the cluster)
        patronictl("resume", "--wait", CLUSTER, check=False)


def test_runbooks_refuse_bad_input_and_change_nothing():
    replica = async_replica()
    before = members()
    rc, out = runbook("replication_lag", replication_lag_cluster="no_such_cluster")
    assert rc != 0 and "pass the inventory group of the Patroni cluster" in out, out[-2000:]
    rc, out = runbook("replication_lag", replication_lag_reinit_confirm=True)
    assert rc != 0 and "replication_lag_reinit_confirm=true needs it" in out, out[-2000:]
    rc, out = runbook("replication_lag", replication_lag_reinit_member="not-a-member", replication_lag_reinit_confirm=True)
    assert rc != 0 and "must be a member of that cluster" in out, out[-2000:]
    rc, out = runbook("split_brain", split_brain_cluster="1bad")
    assert rc != 0 and "pass the inventory group of the Patroni cluster" in out, out[-2000:]
    assert members() == before
    assert psql(replica, "SELECT pg_is_in_recovery()") == "t"


def test_healthy_cluster_is_p3_for_both_runbooks():
    wait_healthy()
    rc, out = runbook("replication_lag")
    assert rc == 0, out[-3000:]
    assert "Replication lag checklist for the cluster quant (P3)" in out
    rc, out = runbook("split_brain")
    assert rc == 0, out[-3000:]
    assert "Split brain checklist for the cluster quant (P3)" in out
    assert f"✓ Primaries (pg_is_in_recovery() false): {leader()}" in out


def test_replication_lag_finds_paused_replay_and_resumes_it_only_when_confirmed(paused_cluster):
    replica, primary = async_replica(), leader()
    psql(replica, "SELECT pg_wal_replay_pause()")
    try:
        # ~37 MB of WAL: more than the 16 MiB of PatroniReplicationLagBytes
        psql(primary, "DROP TABLE IF EXISTS incident_lag_probe; "
                      "CREATE TABLE incident_lag_probe AS SELECT g, md5(g::text) AS h FROM generate_series(1, 400000) AS g")
        time.sleep(2)
        rc, out = runbook("replication_lag")
        lines = checklist(out)
        line = next(x for x in lines if x.startswith(f"⚠ Replica {replica} "))
        assert rc != 0, out[-3000:]
        assert "replay paused (pg_wal_replay_pause: paused)" in line and "received but not replayed" in line, lines
        assert re.search(r"lag \d+(\.\d)? MB", line), line
        assert any(x.startswith(f"⚠ Replay paused on {replica}: re-run with -e replication_lag_confirm=true") for x in lines)
        assert psql(replica, "SELECT pg_get_wal_replay_pause_state()") == "paused"
        rc, out = runbook("replication_lag", check=True, replication_lag_confirm=True)
        assert rc != 0, out[-3000:]
        assert psql(replica, "SELECT pg_get_wal_replay_pause_state()") == "paused"
        rc, out = runbook("replication_lag", replication_lag_confirm=True)
        lines = checklist(out)
        assert rc == 0, out[-3000:]
        assert f"✓ Replay resumed (pg_wal_replay_resume) on {replica}" in lines, lines
        assert "✓ After the remedies: every replica streaming within the limits" in lines, lines
        assert psql(replica, "SELECT pg_get_wal_replay_pause_state()") == "not paused"
    finally:
        psql(replica, "SELECT CASE WHEN pg_get_wal_replay_pause_state() <> 'not paused' THEN pg_wal_replay_resume() END",
             check=False)
        psql(primary, "DROP TABLE IF EXISTS incident_lag_probe", check=False)


def test_split_brain_fences_a_second_primary_only_when_confirmed(paused_cluster):
    replica, primary = async_replica(), leader()
    fenced_dir = None
    psql(replica, "SELECT pg_promote()")
    try:
        assert psql(replica, "SELECT pg_is_in_recovery()") == "f"
        rc, out = runbook("split_brain")
        lines = checklist(out)
        assert rc != 0, out[-3000:]
        assert f"✓ DCS leader key: {primary}" in lines, lines
        assert f"✗ Primaries (pg_is_in_recovery() false): {', '.join(sorted([primary, replica]))}" in lines, lines
        assert any(x.startswith(f"✗ To fence (not the DCS leader {primary}): {replica}") for x in lines), lines
        rc, out = runbook("split_brain", check=True, split_brain_confirm=True)
        assert rc != 0 and f"check mode: would fence {replica}" in out, out[-3000:]
        assert psql(replica, "SELECT pg_is_in_recovery()") == "f"
        rc, out = runbook("split_brain", split_brain_confirm=True)
        lines = checklist(out)
        assert rc == 0, out[-3000:]
        assert f"✓ Fenced (Patroni and PostgreSQL stopped, data directory kept): {replica}" in lines, lines
        assert f"✓ After fencing: primaries {primary}" in lines, lines
        assert podman(replica, "systemctl", "is-active", "patroni", check=False) == "inactive"
        assert podman(replica, "systemctl", "is-enabled", "patroni", check=False) == "disabled"
        assert exists(replica, f"{DATA_DIR}/PG_VERSION")
        assert not exists(replica, f"{DATA_DIR}/postmaster.pid")
        # The fenced copy is rebuilt by hand as the runbook says: its directory moved aside (kept), Patroni clones the leader.
        fenced_dir = f"{DATA_DIR}.fenced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        podman(replica, "mv", "--no-clobber", DATA_DIR, fenced_dir)
    finally:
        if fenced_dir is None and psql(replica, "SELECT pg_is_in_recovery()", check=False) == "f":
            podman(replica, "systemctl", "stop", "patroni", check=False)
            podman(replica, "/usr/lib/postgresql/17/bin/pg_ctl", "stop", "-D", DATA_DIR, "-m", "fast", check=False,
                   user="postgres")
            fenced_dir = f"{DATA_DIR}.fenced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
            podman(replica, "mv", "--no-clobber", DATA_DIR, fenced_dir, check=False)
        podman(replica, "systemctl", "enable", "--now", "patroni", check=False)
    patronictl("resume", "--wait", CLUSTER)
    wait_healthy(checkpoint_on=primary)
    assert exists(replica, f"{fenced_dir}/PG_VERSION")
