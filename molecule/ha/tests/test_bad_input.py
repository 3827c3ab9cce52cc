"""Bad input stops playbooks/cluster.yml in its preflight play, before anything changes.

Each case runs the real cluster.yml against the converged scenario hosts with one wrong variable
(or one extra inventory file), and checks that the run failed with a message that says what is
wrong, that no task on any host reported a change and that Patroni's, etcd's, HAProxy's and
PgBouncer's configuration files are the files they were.
"""
import json
import os
import re
import subprocess
import tempfile

import pytest
import testinfra

testinfra_hosts = ["podman://qp-ha-db1"]
EP = testinfra.get_host("podman://qp-ha-ep")
WATCHED = [
    ("db", "/etc/patroni/config.yml"),
    ("db", "/etc/default/etcd"),
    ("ep", "/etc/haproxy/haproxy.cfg"),
    ("ep", "/etc/pgbouncer/pgbouncer.ini"),
]
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")


def extra_inventory(text):
    handle = tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="qp-ha-inv-", delete=False)
    handle.write(text)
    handle.close()
    return handle.name


# qp-ha-db1 also in a second cluster 'other' (whose other member is the endpoint host).
TWO_CLUSTERS = extra_inventory("""
all:
  children:
    patroni:
      children:
        other:
          hosts: {qp-ha-db1: {}, qp-ha-ep: {}}
          vars: {patroni_cluster_name: other}
""")
# A cluster 'solo' of one member, with the scenario's synchronous mode.
SOLO = extra_inventory("""
all:
  children:
    patroni:
      children:
        solo:
          hosts: {qp-ha-ep: {}}
          vars: {patroni_cluster_name: solo}
""")

CASES = {
    "even number of etcd members": (
        {"etcd_group": "all"}, None,
        "etcd_group=all has 4 member(s)"),
    "host in two clusters": (
        {}, TWO_CLUSTERS,
        "qp-ha-db1 is in the groups of 2 Patroni clusters"),
    "synchronous mode with one member": (
        {}, SOLO,
        "patroni_synchronous_mode=true, but cluster solo has one member"),
    "PgBouncer pools larger than max_connections allows": (
        {"pgbouncer_default_pool_size": 60}, None,
        "PgBouncer may open 65 server connections"),
    "cluster name that is not an identifier": (
        {"patroni_cluster_name": "quant-db"}, None,
        'patroni_cluster_name="quant-db" on qp-ha-db'),
    "short REST API password": (
        {"patroni_restapi_password": "Sh0rtSecret"}, None,
        "patroni_restapi_password must each be"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_before_any_change(host, case):
    extra_vars, inventory, expected = CASES[case]
    hosts = {"db": host, "ep": EP}
    before = [hosts[h].file(path).md5sum for h, path in WATCHED]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    command = ["ansible-playbook", "-i", INVENTORY] + (["-i", inventory] if inventory else [])
    command += [os.path.join(PROJECT, "playbooks", "cluster.yml"), "-e", json.dumps(extra_vars)]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-2000:]
    assert expected in " ".join(out.split()), out[-3000:]
    recap = dict(re.findall(r"(qp-ha-\w+)\s*:\s*ok=\d+\s+changed=(\d+)", out))
    assert recap and set(recap.values()) == {"0"}, out[-2000:]
    assert [hosts[h].file(path).md5sum for h, path in WATCHED] == before
    for name, value in extra_vars.items():
        if "password" in name:
            assert value not in out, "a password was printed"
