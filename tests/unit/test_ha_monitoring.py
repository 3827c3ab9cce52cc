"""Scrape jobs of the HA pieces in roles/prometheus/templates/prometheus.yml.j2.

Rendered by Ansible itself (ansible.builtin.template, connection local, into
pytest's tmp directory) for two inventories:

* single node (monitoring + database): no HA group exists, and the file is
  byte for byte the one rendered with every HA group list emptied - the HA
  jobs add nothing, so single-node inventories keep today's prometheus.yml;
* a cluster: etcd and patroni (with a child group per cluster) on db1..db3,
  pg_endpoint on ep1: jobs patroni, etcd, haproxy and pgbouncer, HTTPS with the
  pki CA, etcd with Prometheus's own certificate as client certificate,
  haproxy and pgbouncer with basic auth from password files, Patroni without
  credentials (a read endpoint), and a target whose address is not its name
  checked against its name.

``promtool check config --syntax-only`` accepts both when promtool is unpacked
(scripts/promtool-test.sh does it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.quantops.platform.tests.unit.test_monitoring_security import SECRET, render_prometheus

ROOT = Path(__file__).resolve().parents[2]
TLS = "/etc/prometheus/prometheus_tls"
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
SINGLE = {"all": {"children": {"monitoring": {"hosts": {"mon1": LOCAL}},
                               "database": {"hosts": {"db1": LOCAL}}}}}
EMPTY_HA = {"prometheus_patroni_groups": [], "prometheus_etcd_groups": [], "prometheus_haproxy_groups": [],
            "prometheus_pgbouncer_exporter_groups": []}


def _cluster(db3_address=None):
    members = {"db1": LOCAL, "db2": LOCAL,
               "db3": dict(LOCAL, **({"prometheus_target_address": db3_address} if db3_address else {}))}
    return {"all": {"children": {
        "monitoring": {"hosts": {"mon1": LOCAL}},
        "etcd": {"hosts": members},
        "patroni": {"children": {"pgc1": {"hosts": members}}},
        "pg_endpoint": {"hosts": {"ep1": LOCAL}}}}}


def _render(tmp, inventory, extra=None):
    """prometheus.yml for mon1 of the inventory, with scrape credentials for every job that needs them."""
    variables = {"prometheus_scrape_basic_auth": dict(
        {job: {"username": "prometheus", "password": SECRET + "-" + job} for job in ("node", "postgres", "haproxy", "pgbouncer")},
        alertmanager={"username": "alertmanager", "password": SECRET + "-am"})}
    variables.update(extra or {})
    return render_prometheus(tmp, variables, inventory=inventory)


def _jobs(config):
    return {job["job_name"]: job for job in config["scrape_configs"]}


def _promtool():
    found = sorted((ROOT / ".cache" / "promtool").glob("*/usr/bin/promtool"))
    return found[-1] if found else None


def test_single_node_renders_the_same_file_as_without_the_ha_jobs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    text, config = _render(tmp_path / "a", SINGLE)
    empty, _config = _render(tmp_path / "b", SINGLE, EMPTY_HA)
    assert text == empty
    assert sorted(_jobs(config)) == ["alertmanager", "node", "postgres", "prometheus"]


def test_a_cluster_inventory_gets_the_four_ha_jobs_over_https(tmp_path):
    text, config = _render(tmp_path, _cluster())
    jobs = _jobs(config)
    assert sorted(jobs) == ["alertmanager", "etcd", "haproxy", "node", "patroni", "pgbouncer", "prometheus"]
    assert jobs["patroni"]["static_configs"] == [{"targets": ["db1:8008", "db2:8008", "db3:8008"]}]
    assert jobs["etcd"]["static_configs"] == [{"targets": ["db1:2379", "db2:2379", "db3:2379"]}]
    assert jobs["haproxy"]["static_configs"] == [{"targets": ["ep1:8405"]}]
    assert jobs["pgbouncer"]["static_configs"] == [{"targets": ["ep1:9127"]}]
    for name in ("patroni", "etcd", "haproxy", "pgbouncer"):
        assert jobs[name]["scheme"] == "https", name
    assert jobs["patroni"]["tls_config"] == {"ca_file": TLS + "/ca.crt"}
    assert "basic_auth" not in jobs["patroni"]
    assert jobs["etcd"]["tls_config"] == {"ca_file": TLS + "/ca.crt", "cert_file": TLS + "/host.crt",
                                          "key_file": TLS + "/host.key"}
    assert "basic_auth" not in jobs["etcd"]
    for name in ("haproxy", "pgbouncer"):
        assert jobs[name]["tls_config"] == {"ca_file": TLS + "/ca.crt"}
        assert jobs[name]["basic_auth"] == {"username": "prometheus",
                                            "password_file": "/etc/prometheus/secrets/%s.password" % name}
    # The node job covers every host of the inventory, the others are unchanged.
    assert jobs["node"]["static_configs"] == [{"targets": ["db1:9100", "db2:9100", "db3:9100", "ep1:9100", "mon1:9100"]}]
    assert SECRET not in text


def test_a_member_whose_address_is_not_its_name_is_checked_against_its_name(tmp_path):
    jobs = _jobs(_render(tmp_path, _cluster("10.0.0.13"))[1])
    assert jobs["patroni"]["static_configs"] == [{"targets": ["db1:8008", "db2:8008"]}]
    assert jobs["patroni_db3"]["static_configs"] == [{"targets": ["10.0.0.13:8008"]}]
    assert jobs["patroni_db3"]["tls_config"] == {"ca_file": TLS + "/ca.crt", "server_name": "db3"}
    assert jobs["patroni_db3"]["relabel_configs"] == [{"target_label": "job", "replacement": "patroni"}]
    assert jobs["etcd_db3"]["tls_config"] == {"ca_file": TLS + "/ca.crt", "cert_file": TLS + "/host.crt",
                                              "key_file": TLS + "/host.key", "server_name": "db3"}


def test_exporters_follow_prometheus_scrape_tls_and_patroni_etcd_stay_https(tmp_path):
    jobs = _jobs(_render(tmp_path, _cluster(), {"prometheus_scrape_tls": False})[1])
    for name in ("haproxy", "pgbouncer"):
        assert "scheme" not in jobs[name] and "tls_config" not in jobs[name], name
    assert jobs["patroni"]["scheme"] == jobs["etcd"]["scheme"] == "https"


@pytest.mark.skipif(_promtool() is None, reason="promtool not unpacked yet (bash scripts/promtool-test.sh does it)")
@pytest.mark.parametrize("inventory", [SINGLE, _cluster(), _cluster("10.0.0.13")], ids=["single", "cluster", "split"])
def test_promtool_accepts_the_rendered_config(tmp_path, inventory):
    _render(tmp_path, inventory)
    check = subprocess.run([str(_promtool()), "check", "config", "--syntax-only", str(tmp_path / "prometheus.yml")],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
