"""The HA runbooks (playbooks/ha/*.yml, role quantops.platform.ha_runbook) against the real cluster.

Each runbook runs with ansible-playbook as an operator would run it.  The switchover and the rolling
restart run while a writer inserts sequence numbers through PgBouncer; its failed transactions are
counted and no acknowledged commit may be lost.  The refusals (no confirmation, the wrong tool for
the cluster's state, the leader as target) must change nothing.
"""
import collections
import json
import os
import re
import subprocess
import time

import psycopg
from ha_writer import Writer
from test_ha import ADDR, CA, EPHEMERAL, MEMBERS, api, cluster, connect, leader_name, secret
from test_rolling_restart import converge

testinfra_hosts = ["podman://qp-ha-db1"]
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
DATA_DIR = "/var/lib/postgresql/17/quant"
RESULTS = EPHEMERAL / "ha-runbooks.json"


Run = collections.namedtuple("Run", "rc out took")


def runbook(name, check=False, **extra):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    command = ["ansible-playbook", "-i", INVENTORY, os.path.join(PROJECT, "playbooks", "ha", name + ".yml"),
               "-e", json.dumps(dict({"ha_runbook_cluster": "quant"}, **extra))] + (["--check", "--diff"] if check else [])
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    return Run(run.returncode, " ".join((run.stdout + run.stderr).split()), time.monotonic() - started)


def changed(out):
    return {host: int(n) for host, n in re.findall(r"(qp-ha-\w+|localhost) : ok=\d+ changed=(\d+)", out)}


def states():
    return {m["name"]: (m["role"], m["state"]) for m in cluster()["members"]}


def wait_healthy(timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            now = states()
        except AssertionError:
            now = {}
        roles = [entry[0] for entry in now.values()]
        if (sorted(now) == MEMBERS and roles.count("leader") == 1
                and all(entry[1] in ("running", "streaming") for entry in now.values())
                and all(entry[1] == "streaming" for entry in now.values() if entry[0] != "leader")):
            return now
        time.sleep(2)
    raise AssertionError(f"cluster not healthy after {timeout} s: {states()}")


def record(key, value):
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[key] = value
    RESULTS.write_text(json.dumps(data, indent=1))


def podman(*argv):
    return subprocess.run(["podman", *argv], capture_output=True, text=True, check=True).stdout.strip()


def test_switchover_check_mode_changes_nothing():
    wait_healthy()
    leader = leader_name()
    rc, out, _took = runbook("switchover", check=True)
    assert rc == 0, out[-3000:]
    assert f"Switchover of cluster quant: {leader} ->" in out
    assert set(changed(out).values()) == {0}, out[-2000:]
    assert leader_name() == leader


def test_switchover_refuses_the_leader_as_candidate():
    leader = leader_name()
    rc, out, _took = runbook("switchover", ha_runbook_candidate=leader)
    assert rc != 0 and f"candidate {leader} is already the leader" in out, out[-2000:]
    assert leader_name() == leader


def test_switchover_holds_pgbouncer_clients_and_loses_nothing():
    old = leader_name()
    with Writer(connect, 6432) as writer:
        time.sleep(3)
        rc, out, took = runbook("switchover")
        time.sleep(3)
    assert rc == 0, out[-3000:]
    new = leader_name()
    lost = writer.lost(connect)
    record("switchover", {"from": old, "to": new, "playbook_s": round(took, 1), "acknowledged": len(writer.acked),
                          "failed_transactions": len(writer.errors), "longest_write_gap_s": round(writer.longest_gap(), 2),
                          "lost": len(lost)})
    print(f"switchover {old} -> {new} in {took:.1f} s: {len(writer.acked)} commits, {len(writer.errors)} failed "
          f"transactions, longest gap {writer.longest_gap():.2f} s, lost {len(lost)}")
    assert new != old
    assert lost == []
    assert writer.errors == [], writer.errors[:5]
    assert states()[old] == ("sync_standby", "streaming") or states()[old][1] == "streaming"


def test_failover_is_refused_without_confirm_and_while_a_leader_runs():
    leader = leader_name()
    rc, out, _took = runbook("failover")
    assert rc != 0 and "set ha_runbook_failover_confirm=true" in out, out[-2000:]
    rc, out, _took = runbook("failover", ha_runbook_failover_confirm=True)
    assert rc != 0 and f"{leader} is a healthy leader - use the switchover runbook" in out, out[-2000:]
    assert leader_name() == leader


def test_failover_promotes_a_replica_when_the_leader_is_down():
    """Maintenance mode (pause) keeps Patroni from failing over by itself; the leader's PostgreSQL dies."""
    wait_healthy()
    old = leader_name()
    auth = ("patroni", secret("patroni_api"))
    assert api(MEMBERS[0], "/config", "PATCH", {"pause": True}, auth=auth)[0] == 200
    try:
        time.sleep(7)
        pid = podman("exec", old, "head", "-1", f"{DATA_DIR}/postmaster.pid")
        podman("exec", old, "kill", "-9", pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and states()[old][1] == "running":
            time.sleep(1)
        assert states()[old][1] != "running", states()
        rc, out, _took = runbook("failover")
        assert rc != 0 and "set ha_runbook_failover_confirm=true" in out, out[-2000:]
        rc, out, took = runbook("failover", ha_runbook_failover_confirm=True)
        assert rc == 0, out[-3000:]
        new = leader_name()
        assert new != old
        with connect(5000) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS ha_probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), note text)")
            conn.execute("INSERT INTO ha_probe (note) VALUES ('after the manual failover')")
        record("manual_failover", {"from": old, "to": new, "playbook_s": round(took, 1)})
    finally:
        api(MEMBERS[0], "/config", "PATCH", {"pause": False}, auth=auth)
    now = wait_healthy()
    assert now[old][0] != "leader"


def test_reinit_rebuilds_a_replica_and_keeps_its_old_data_directory():
    wait_healthy()
    leader = leader_name()
    member = [m for m in MEMBERS if m != leader][-1]
    rc, out, _took = runbook("reinit", ha_runbook_member=leader, ha_runbook_reinit_confirm=True)
    assert rc != 0 and f"{leader} is the leader; switch over first" in out, out[-2000:]
    rc, out, _took = runbook("reinit", ha_runbook_member=member)
    assert rc != 0 and "set ha_runbook_reinit_confirm=true" in out, out[-2000:]
    before = podman("exec", member, "cat", f"{DATA_DIR}/PG_VERSION")
    rc, out, took = runbook("reinit", ha_runbook_member=member, ha_runbook_reinit_confirm=True)
    assert rc == 0, out[-3000:]
    assert states()[member][1] == "streaming"
    kept = podman("exec", member, "sh", "-c", f"ls -d {DATA_DIR}.replaced-*").split()
    assert kept and podman("exec", member, "cat", f"{kept[-1]}/PG_VERSION") == before
    podman("exec", member, "rm", "-rf", *kept)
    record("reinit", {"member": member, "playbook_s": round(took, 1)})


def test_rolling_restart_restarts_every_member_one_at_a_time():
    wait_healthy()
    old = leader_name()

    def start_times():
        out = {}
        for member in MEMBERS:
            with psycopg.connect(host=ADDR[member], port=5432, dbname="postgres", user="quant_app",
                                 password=secret("quant_app"), sslmode="verify-ca", sslrootcert=CA) as conn:
                out[member] = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        return out

    before = start_times()
    time.sleep(1)
    with Writer(connect, 6432) as writer:
        rc, out, took = runbook("restart")
    assert rc == 0, out[-3000:]
    after = start_times()
    assert all(after[m] > before[m] for m in MEMBERS), (before, after)
    assert after[old] == max(after.values()), "the old leader restarts last"
    assert leader_name() != old
    assert writer.lost(connect) == []
    record("rolling_restart", {"playbook_s": round(took, 1), "failed_transactions": len(writer.errors),
                               "longest_write_gap_s": round(writer.longest_gap() or 0, 2)})
    assert writer.errors == [], writer.errors[:5]
    wait_healthy()


def test_remove_takes_a_replica_out_and_a_converge_brings_it_back():
    wait_healthy()
    leader = leader_name()
    member = [m for m in MEMBERS if m != leader][0]
    rc, out, _took = runbook("remove", ha_runbook_member=member)
    assert rc != 0 and "set ha_runbook_remove_confirm=true" in out, out[-2000:]
    rc, out, _took = runbook("remove", ha_runbook_member=member, ha_runbook_remove_confirm=True)
    assert rc == 0, out[-3000:]
    assert member not in states()
    enabled = subprocess.run(["podman", "exec", member, "systemctl", "is-enabled", "patroni"],
                             capture_output=True, text=True, check=False).stdout.strip()
    assert enabled == "disabled"
    assert podman("exec", member, "cat", f"{DATA_DIR}/PG_VERSION") == "17", "the data directory is kept"
    # Back in: the host is still in the inventory's cluster group, so a converge (cluster.yml)
    # enables and starts its Patroni again, and it streams with its kept data directory.
    converge({})
    now = wait_healthy()
    assert now[member][1] == "streaming", now
    enabled = subprocess.run(["podman", "exec", member, "systemctl", "is-enabled", "patroni"],
                             capture_output=True, text=True, check=False).stdout.strip()
    assert enabled == "enabled"
