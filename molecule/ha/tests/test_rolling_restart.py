"""A setting that needs a restart is applied by a rolling restart, never all members at once.

cluster.yml runs again with one tuning override that needs a restart (max_locks_per_transaction).
Meanwhile a writer inserts a row through HAProxy's read-write port every 0.2 s.  Afterwards every
member runs with the new value and nothing pending; the replicas restarted before the old leader
(postmaster start times), the leader moved by a switchover, and the longest stretch without a
successful write is measured and bounded.  With postgresql_restart_policy=never the same kind of
change is only reported.  Lowering it again (back to the inventory's value) restarts the leader in
place first - a replica must run at least the primary's value - and then the replicas; afterwards
the cluster runs the inventory's settings again, as the later test files expect.
"""
import json
import os
import re
import subprocess
import threading
import time

import psycopg
from test_ha import ADDR, CA, EPHEMERAL, MEMBERS, api, cluster, connect, leader_name, secret

testinfra_hosts = ["podman://qp-ha-db1"]
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
WRITE_GAP_BOUND_S = 30


def converge(extra_vars):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    run = subprocess.run(["ansible-playbook", "-i", INVENTORY, os.path.join(PROJECT, "playbooks", "cluster.yml"),
                          "-e", json.dumps(extra_vars)], capture_output=True, text=True, env=env, timeout=900, check=False)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    return out


def member_settings(member):
    with psycopg.connect(host=ADDR[member], port=5432, dbname="postgres", user="quant_app",
                         password=secret("quant_app"), sslmode="verify-ca", sslrootcert=CA) as conn:
        return conn.execute("SELECT current_setting('max_locks_per_transaction'), pg_postmaster_start_time(), "
                            "pg_is_in_recovery()").fetchone()


def test_never_only_reports_the_pending_restart():
    out = converge({"postgresql_tuning_overrides": {"max_locks_per_transaction": 192},
                    "postgresql_restart_policy": "never"})
    assert re.search(r"have settings\s+pending a restart; postgresql_restart_policy=never", out), out[-3000:]
    members = cluster()["members"]
    assert all(m.get("pending_restart") for m in members), members
    assert {member_settings(m)[0] for m in MEMBERS} == {"128"}


def converge_while_writing(extra_vars):
    """cluster.yml with extra_vars while a row is inserted through :5000 every 0.2 s; the gaps between successes."""
    gaps, stop = [], threading.Event()

    def writer():
        last_ok = time.monotonic()
        while not stop.is_set():
            try:
                with connect(5000) as conn:
                    conn.execute("CREATE TABLE IF NOT EXISTS rolling_probe (at timestamptz DEFAULT now())")
                    conn.execute("INSERT INTO rolling_probe DEFAULT VALUES")
                now = time.monotonic()
                gaps.append(now - last_ok)
                last_ok = now
            except psycopg.Error:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        out = converge(extra_vars)
    finally:
        stop.set()
        thread.join(timeout=30)
    return out, gaps


def record(key, value):
    path = EPHEMERAL / "ha-rolling-restart.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=1))


def test_rolling_restart_replicas_first_then_switchover_then_old_leader():
    old_leader = leader_name()
    _out, gaps = converge_while_writing({"postgresql_tuning_overrides": {"max_locks_per_transaction": 256}})
    settings = {m: member_settings(m) for m in MEMBERS}
    assert {s[0] for s in settings.values()} == {"256"}, settings
    assert not [m for m in cluster()["members"] if m.get("pending_restart")]
    new_leader = leader_name()
    assert new_leader != old_leader, "the leader restarts only after a switchover"
    assert settings[old_leader][2] is True, "the old leader runs as a replica"
    replicas_first = [settings[m][1] for m in MEMBERS if m != old_leader]
    assert max(replicas_first) < settings[old_leader][1], "the old leader restarted last"
    longest = max(gaps) if gaps else None
    record("raised", {"old_leader": old_leader, "new_leader": new_leader, "longest_write_gap_s": round(longest, 1)})
    print(f"rolling restart: {old_leader} -> {new_leader}, longest gap between writes {longest:.1f} s")
    assert longest is not None and longest <= WRITE_GAP_BOUND_S, longest
    # Idempotent again: a second run sends nothing to the DCS and restarts nothing.
    out = converge({"postgresql_tuning_overrides": {"max_locks_per_transaction": 256}})
    recap = re.findall(r"(qp-ha-\w+)\s*:\s*ok=\d+\s+changed=(\d+)", out)
    assert recap and all(entry[1] == "0" for entry in recap), out[-2000:]
    assert api(MEMBERS[0], "/config")[1]["postgresql"]["parameters"]["max_locks_per_transaction"] in (256, "256")


def test_lowering_restarts_the_leader_in_place_first_then_the_replicas():
    leader = leader_name()
    before = {m: member_settings(m) for m in MEMBERS}
    # No override: back to the scenario's 128 (PostgreSQL's default), lower than the running 256.
    out, gaps = converge_while_writing({})
    assert "max_locks_per_transaction lowered; a replica must run with at least the primary's value" in " ".join(out.split()), out[-3000:]
    settings = {m: member_settings(m) for m in MEMBERS}
    assert {s[0] for s in settings.values()} == {"128"}, settings
    assert not [m for m in cluster()["members"] if m.get("pending_restart")], cluster()
    assert leader_name() == leader, "restarted in place, no switchover"
    assert all(settings[m][1] > before[m][1] for m in MEMBERS), (before, settings)
    assert settings[leader][2] is False
    assert min(settings[m][1] for m in MEMBERS if m != leader) > settings[leader][1], "the leader restarted first"
    longest = max(gaps) if gaps else None
    record("lowered", {"leader": leader, "longest_write_gap_s": None if longest is None else round(longest, 1)})
    print(f"lowered max_locks_per_transaction: {leader} restarted in place, longest gap between writes {longest:.1f} s")
    assert longest is not None and longest <= WRITE_GAP_BOUND_S, longest
