"""postgresql_restart_policy=rolling restarts one database host at a time (issue 15).

The scenario has one database container, so the test makes a second real PostgreSQL cluster on
it (pg_createcluster 17 rolling, port 5433) and gives it an inventory name of its own,
qp-default-db-rolling, reached through ansible_host like any other host.  Both clusters get a
setting that needs a restart (ALTER SYSTEM, as a DBA would), the role's apply_config entry point
runs on both inventory hosts, and the clusters' own logs must show the second shutdown only after
the first cluster accepted connections again.  Nothing is mocked; the second cluster is dropped.
"""
import datetime
import os
import re
import subprocess
import tempfile

import yaml

testinfra_hosts = ["podman://qp-default-db"]

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
DB = "qp-default-db"
CLUSTERS = {DB: ("main", 5432), DB + "-rolling": ("rolling", 5433)}
PLAYBOOK = """
- name: Apply the configuration on both inventory hosts (the role's apply_config entry point)
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Apply the configuration
      ansible.builtin.include_role:
        name: quantops.platform.postgresql
        tasks_from: apply_config
"""
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)")


def psql(host, port, sql):
    result = host.run(f"su postgres -c \"psql -p {port} -XAtc \\\"{sql}\\\"\"")
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def log_times(host, cluster, text, since):
    """Timestamps (UTC) of the log lines of one cluster that contain text, written after since."""
    log = host.file(f"/var/log/postgresql/postgresql-17-{cluster}.log").content_string
    times = []
    for line in log.splitlines():
        match = STAMP.match(line)
        if match and text in line:
            stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f")
            if stamp >= since:
                times.append(stamp)
    return times


def test_rolling_restarts_one_host_after_the_other(host):
    assert host.run("pg_createcluster 17 rolling --port 5433 --start").rc == 0
    try:
        ports = {name: port for name, (cluster, port) in CLUSTERS.items()}
        locks = {name: int(psql(host, port, "SHOW max_locks_per_transaction")) for name, port in ports.items()}
        for name, port in ports.items():
            psql(host, port, f"ALTER SYSTEM SET max_locks_per_transaction = {locks[name] + 16}")
            psql(host, port, "SELECT pg_reload_conf()")
            assert psql(host, port, "SELECT name FROM pg_settings WHERE pending_restart") == "max_locks_per_transaction"
        now = psql(host, 5432, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
        since = datetime.datetime.strptime(now, "%Y-%m-%d %H:%M:%S.%f")
        inventory = {"all": {"vars": {"ansible_connection": "podman_nsenter",
                                      "ansible_python_interpreter": "/usr/bin/python3"},
                             "hosts": {name: {"ansible_host": DB, "postgresql_cluster_name": cluster,
                                              "postgresql_port": port}
                                       for name, (cluster, port) in CLUSTERS.items()}}}
        with tempfile.TemporaryDirectory(prefix="qp-rolling-") as tmp:
            with open(os.path.join(tmp, "inventory.yml"), "w", encoding="utf-8") as handle:
                yaml.safe_dump(inventory, handle)
            with open(os.path.join(tmp, "play.yml"), "w", encoding="utf-8") as handle:
                handle.write(PLAYBOOK)
            env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
            run = subprocess.run(["ansible-playbook", "-i", os.path.join(tmp, "inventory.yml"),
                                  os.path.join(tmp, "play.yml")], capture_output=True, text=True, env=env,
                                 timeout=600, check=False, cwd=PROJECT)
        out = run.stdout + run.stderr
        assert run.returncode == 0, out[-3000:]
        for name in CLUSTERS:
            assert f"Restart PostgreSQL on {name}]" in out, out[-3000:]
        for name, port in ports.items():
            assert int(psql(host, port, "SHOW max_locks_per_transaction")) == locks[name] + 16
        order = sorted((log_times(host, cluster, "received fast shutdown request", since)[0],
                        log_times(host, cluster, "database system is ready to accept connections", since)[0], cluster)
                       for cluster in (c for c, p in CLUSTERS.values()))
        first_ready, first = order[0][1], order[0][2]
        second_shutdown, second = order[1][0], order[1][2]
        assert first_ready <= second_shutdown, (
            f"{second} was shut down at {second_shutdown}, before {first} accepted connections at {first_ready}")
    finally:
        host.run("pg_dropcluster 17 rolling --stop")
        psql(host, 5432, "ALTER SYSTEM RESET max_locks_per_transaction")
        assert host.run("systemctl restart postgresql@17-main").rc == 0
        assert host.run("timeout 60 sh -c 'until pg_isready -q -p 5432; do sleep 1; done'").rc == 0
    assert psql(host, 5432, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"
