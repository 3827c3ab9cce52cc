"""Bad input stops playbooks/site.yml in its preflight, before anything changes.

Each case runs the real site.yml against the converged scenario hosts with one
wrong variable, and checks that the run failed, that the message names the
variable and says what to set, that no task on any host reported a change and
that the running configurations (PostgreSQL, Prometheus, Alertmanager) are the
files they were.
"""
import json
import os
import re
import subprocess
import tempfile

import pytest
import testinfra

testinfra_hosts = ["podman://qp-default-db"]
MON = testinfra.get_host("podman://qp-default-mon")
WATCHED = [
    ("db", "/etc/postgresql/17/main/conf.d/50-quantops.conf"),
    ("db", "/etc/postgresql/17/main/pg_hba.conf"),
    ("mon", "/etc/prometheus/prometheus.yml"),
    ("mon", "/etc/prometheus/alertmanager.yml"),
    ("mon", "/etc/grafana/provisioning/dashboards/quantops.yml"),
    ("db", "/etc/redis/redis.conf"),
    ("db", "/etc/redis/users.acl"),
]
NOT_JSON_DIR = tempfile.mkdtemp(prefix="qp-bad-dashboard-")
with open(os.path.join(NOT_JSON_DIR, "broken.json"), "w", encoding="utf-8") as handle:
    handle.write("{ this is not JSON ]\n")

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")

CASES = {
    "unknown workload profile": (
        {"postgresql_tuning_profile": "trading"},
        "postgresql_tuning_profile must be one of: web, oltp, dw, desktop, mixed"),
    "memory override larger than the host": (
        {"postgresql_tuning_memory_mb": 4096},
        "postgresql_tuning_memory_mb=4096 is more than this host has (2048 MiB"),
    "login role without a password": (
        {"postgresql_users": [{"name": "quant_app"}]},
        "postgresql_users: quant_app - a login role needs 'password'"),
    "short reporting password": (
        {"platform_schema_reporting_password": "Sh0rtSecret"},
        "platform_schema_reporting_password is not set (or shorter than 12 characters)"),
    "PostgreSQL version TimescaleDB does not support": (
        {"postgresql_version": 13},
        "TimescaleDB 2.19 supports PostgreSQL 14, 15, 16, 17. Set postgresql_version"),
    "invalid chunk interval": (
        {"platform_schema_chunk_time_interval": "3 fortnights"},
        "platform_schema_chunk_time_interval='3 fortnights'"),
    "weak pg_hba method": (
        {"postgresql_hba_entries": [{"database": "all", "user": "all", "address": "0.0.0.0/0", "method": "trust"}]},
        "trust, password and md5 are refused"),
    # Issue 15: every pg_hba field is checked, and plaintext logins from the network are refused.
    "newline in a pg_hba address": (
        {"postgresql_hba_entries": [{"database": "quant_platform", "user": "reporting",
                                     "address": "10.0.0.0/8\nhost all all 0.0.0.0/0 trust"}]},
        "postgresql_hba_entries[0] (user \"reporting\"): address must each be one word"),
    "quote in a pg_hba user name": (
        {"postgresql_hba_entries": [{"database": "quant_platform", "user": "report\"ing", "address": "10.0.0.0/8"}]},
        "user must each be one word without spaces, newlines"),
    "plaintext host line for a remote address": (
        {"postgresql_hba_entries": [{"type": "host", "database": "quant_platform", "user": "reporting",
                                     "address": "10.0.0.0/8"}]},
        "lets a client log in over plaintext TCP from 10.0.0.0/8, which is not loopback"),
    "unknown key in a pg_hba entry": (
        {"postgresql_hba_entries": [{"database": "quant_platform", "user": "reporting", "adress": "10.0.0.0/8"}]},
        "postgresql_hba_entries.adress. Supported parameters include: address, allow_plaintext"),
    # Issue 16: every list of dicts has suboptions, so argument validation refuses a misspelled key.
    "unknown key in a scrape job": (
        {"prometheus_app_jobs": [{"name": "metrics_collector", "targets": ["qp-default-db:8000"],
                                  "lables": {"team": "quant"}}]},
        "prometheus_app_jobs.lables. Supported parameters include: groups, labels, metrics_path, name, port"),
    "unknown key in an inhibit rule": (
        {"alertmanager_inhibit_rules": [{"source_matchers": ['severity="critical"'],
                                         "target_matchers": ['severity="warning"'], "eqaul": ["alertname"]}]},
        "alertmanager_inhibit_rules.eqaul. Supported parameters include: equal, source_match"),
    "unknown key in a Grafana child route": (
        {"grafana_alerting_policies": [{"receiver": "grafana-default-email",
                                        "routes": [{"receiver": "grafana-default-email", "matcher": ["team=quant"]}]}]},
        "grafana_alerting_policies.routes.matcher. Supported parameters include: active_time_intervals, continue"),
    "unknown key in a config tarball": (
        {"pg_dump_backup_paths": [{"name": "postgresql-config", "paths": ["/etc/postgresql"], "exlude": ["*.pid"]}]},
        "pg_dump_backup_paths.exlude. Supported parameters include: exclude, name, paths"),
    "unknown key in a logrotate entry": (
        {"logrotate_entries": [{"name": "quantops", "paths": ["/var/log/quantops/*.log"], "rotat": 12}]},
        "logrotate_entries.rotat. Supported parameters include: compress, copytruncate"),
    "unknown key in a scheduled job": (
        {"runbook_schedules_jobs": [{"name": "weekly-vacuum-analyze", "description": "VACUUM ANALYZE",
                                     "on_calendar": "Sun *-*-* 02:00:00",
                                     "argv": ["/usr/bin/vacuumdb", "--analyze", "--dbname", "quant_platform"],
                                     "timout_sec": 10800}]},
        "runbook_schedules_jobs.timout_sec. Supported parameters include: argv, description, enabled"),
    "unknown key in an SLO": (
        {"prometheus_slos": [{"name": "api_gateway", "objective": 99.9,
                              "availabilty": {"errors_query": "vector(0)", "total_query": "vector(1)"}}]},
        "prometheus_slos.availabilty. Supported parameters include: availability, latency"),
    "unknown key in a Redis ACL user": (
        {"redis_users": [{"name": "trading", "password": "a-long-enough-password", "rule": "+@read"}]},
        "redis_users.rule. Supported parameters include: name, password"),
    # Issue 3, "Bad input": the monitoring roles refuse these before the running config is replaced.
    "alert route to a receiver that does not exist": (
        {"alertmanager_routes": [{"receiver": "oncall", "matchers": ['severity="critical"']}]},
        "alertmanager_routes: a route names receiver oncall, which does not exist"),
    "scrape target without a port": (
        {"prometheus_app_jobs": [{"name": "metrics_collector", "targets": ["qp-default-db"]}]},
        "Targets without a port: qp-default-db"),
    "SLO objective above 100 %": (
        {"prometheus_slos": [{"name": "api_gateway", "objective": 100.5}]},
        "SLO api_gateway has objective 100.5"),
    # Issue 20: Redis.
    "Redis maxmemory above the host's memory": (
        {"redis_maxmemory": "64gb"},
        "redis_maxmemory=64gb (65536.0 MiB) is more than this host has"),
    "Redis eviction policy that does not exist": (
        {"redis_maxmemory_policy": "allkeys-lruu"},
        "redis_maxmemory_policy='allkeys-lruu' must be one of: noeviction, allkeys-lru"),
    "Redis ACL user without a password": (
        {"redis_users": [{"name": "trading"}]},
        "redis_users: trading - an ACL user needs a name"),
    "dashboard file that is not JSON": (
        {"grafana_dashboards_extra_dirs": [NOT_JSON_DIR]},
        "Dashboards Grafana could not load as they are: "),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_before_any_change(host, case):
    extra_vars, expected = CASES[case]
    hosts = {"db": host, "mon": MON}
    before = [hosts[h].file(path).md5sum for h, path in WATCHED]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    # Both hosts run the preflight play: bad input on one stops the other too.
    run = subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, os.path.join(PROJECT, "playbooks", "site.yml"),
         "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-2000:]
    assert expected in out, out[-3000:]
    recap = dict(re.findall(r"(qp-default-\w+)\s*:\s*ok=\d+\s+changed=(\d+)", out))
    assert recap == {"qp-default-db": "0", "qp-default-mon": "0"}, out[-2000:]
    assert [hosts[h].file(path).md5sum for h, path in WATCHED] == before
    for name, value in extra_vars.items():
        if "password" in name:
            assert value not in out, "a password was printed"
