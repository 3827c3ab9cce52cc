"""Verify the monitoring stack converged by playbooks/site.yml (scenario default).

Everything here talks to the real servers under systemd in the containers:
Prometheus and Alertmanager (Debian 13 packages) on qp-default-mon, node
exporter on both hosts, postgres exporter and PostgreSQL on qp-default-db.
Grafana itself is not installed (its packages are unreachable here,
grafana_install: false); its provisioning is checked by the unit tests.
Every endpoint serves HTTPS only and asks for basic auth: the tests verify it
against the scenario's CA (pki_dir/ca.crt; the container's address is in its
certificate) and log in with the scenario's generated passwords.  What happens
without credentials is tested in test_security_mon.py.
"""
import base64
import json
import os
import pathlib
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import ssl

import pytest
import yaml
from _helpers import CA_FILE, container_ip, read_secret

testinfra_hosts = ["podman://qp-default-mon"]

ROOT = pathlib.Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", pathlib.Path(__file__).resolve().parents[3]))
RULES_DIR = ROOT / "roles" / "prometheus" / "files" / "rules"
MON, DB = "qp-default-mon", "qp-default-db"

# Metrics the dashboards and rules read that no server of this scenario can
# export, each with the reason.  Every other exporter metric must have a series.
ABSENT_HERE = {
    # pgBackRest's exporter is not part of this scenario.
    "pgbackrest_",
    # Written by the backup jobs (node_exporter textfile collector); no backup role runs here.
    "quantops_backup_",
    # A primary without replicas: the replication collector exports no per-slot series.
    "pg_replication_slots_",
}
# Prefixes of exporter metrics (node, postgres, the platform's custom queries).
EXPORTER_PREFIXES = ("node_", "pg_", "quantops_", "postgres_exporter_")


def _get(url, auth=None, timeout=10):
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode())
    context = ssl.create_default_context(cafile=str(CA_FILE))
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        return response.status, response.read().decode()


def _status(url, auth=None):
    try:
        return _get(url, auth)[0]
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture(scope="module")
def prometheus():
    return "https://%s:9090" % container_ip(MON)


@pytest.fixture(scope="module")
def alertmanager():
    return "https://%s:9093" % container_ip(MON)


@pytest.fixture(scope="module")
def scrape_auth():
    return ("prometheus", read_secret("scrape"))


@pytest.fixture(scope="module")
def am_auth():
    return ("alertmanager", read_secret("alertmanager_web"))


def _api(prometheus, path, **params):
    auth = ("prometheus", read_secret("prometheus_web"))
    status, body = _get(prometheus + path + ("?" + urllib.parse.urlencode(params) if params else ""), auth)
    assert status == 200
    data = json.loads(body)
    assert data["status"] == "success", data
    return data["data"]


def test_every_target_of_every_job_is_up(prometheus):
    targets = _api(prometheus, "/api/v1/targets", state="active")["activeTargets"]
    jobs = {}
    for target in targets:
        jobs.setdefault(target["labels"]["job"], []).append(target)
    assert sorted(jobs) == ["alertmanager", "node", "postgres", "prometheus", "redis"]
    assert len(jobs["node"]) == 2 and len(jobs["postgres"]) == 1
    down = ["%s %s: %s" % (t["labels"]["job"], t["scrapeUrl"], t["lastError"]) for t in targets if t["health"] != "up"]
    assert down == []


def test_prometheus_loaded_every_rule_of_the_role(prometheus):
    expected = set()
    for path in RULES_DIR.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            expected |= {rule.get("alert") or rule.get("record") for rule in group["rules"]}
    loaded = {rule["name"] for group in _api(prometheus, "/api/v1/rules")["groups"] for rule in group["rules"]}
    assert expected - loaded == set()
    # slo.rules.yml, rendered from prometheus_slos, adds its burn-rate rules.
    assert {"SLOErrorBudgetBurnFast", "SLOErrorBudgetBurnSlow", "slo:error_budget:ratio"} <= loaded - expected
    health = {rule["health"] for group in _api(prometheus, "/api/v1/rules")["groups"] for rule in group["rules"]}
    assert health == {"ok"}


def test_alertmanager_runs_the_configuration_on_disk(host, alertmanager, am_auth):
    status = json.loads(_get(alertmanager + "/api/v2/status", am_auth)[1])
    running = yaml.safe_load(status["config"]["original"])
    on_disk = yaml.safe_load(host.file("/etc/prometheus/alertmanager.yml").content_string)
    # The API returns the loaded configuration with Alertmanager's defaults filled in.
    for key in ("receiver", "group_by", "group_wait", "group_interval", "repeat_interval"):
        assert running["route"][key] == on_disk["route"][key], key
    assert ([r["receiver"] for r in running["route"].get("routes", [])]
            == [r["receiver"] for r in on_disk["route"].get("routes", [])])
    assert sorted(r["name"] for r in running["receivers"]) == sorted(r["name"] for r in on_disk["receivers"])
    inhibit = [{k: rule.get(k) for k in ("source_matchers", "target_matchers", "equal")} for rule in running["inhibit_rules"]]
    assert inhibit == [{"source_matchers": ['severity="critical"'],
                        "target_matchers": ['severity="warning"'],
                        "equal": ["alertname", "instance"]}]
    check = host.run("amtool check-config /etc/prometheus/alertmanager.yml")
    assert check.rc == 0, check.stdout + check.stderr
    metrics = _get(alertmanager + "/metrics", am_auth)[1]
    assert "\nalertmanager_config_last_reload_successful 1\n" in metrics


def test_prometheus_sends_to_the_alertmanager(prometheus):
    active = _api(prometheus, "/api/v1/alertmanagers")["activeAlertmanagers"]
    assert [a["url"] for a in active] == ["https://%s:9093/api/v2/alerts" % MON]


@pytest.mark.parametrize("port", [9100, 9187])
def test_exporters_refuse_scrapes_without_credentials(port, scrape_auth):
    url = "https://%s:%d/metrics" % (container_ip(DB), port)
    assert _status(url) == 401
    assert _status(url, ("prometheus", "not-the-password")) == 401
    assert _status(url, scrape_auth) == 200


def test_postgres_exporter_reports_the_platform_metrics(scrape_auth):
    body = _get("https://%s:9187/metrics" % container_ip(DB), scrape_auth)[1]
    assert "\npg_up 1\n" in body
    for name in ("quantops_ohlcv_freshness_seconds", "quantops_ohlcv_duplicate_rows", "quantops_hypertable_chunks"):
        assert "\n" + name + "{" in body, name


def test_every_dashboard_and_rule_expression_runs_on_the_live_prometheus(prometheus):
    """scripts/promql_exprs.py runs every expression; every exporter metric they read has a series."""
    script = ROOT / "scripts" / "promql_exprs.py"
    run = subprocess.run([sys.executable, str(script), "--rules", str(RULES_DIR), "--prometheus", prometheus,
                          "--ca-file", str(CA_FILE), "--user", "prometheus"],
                         env=dict(os.environ, PROMETHEUS_PASSWORD=read_secret("prometheus_web")),
                         capture_output=True, text=True, timeout=600, check=False)
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    errors = ["%s %s: %s" % (x["file"], x.get("rule") or x.get("panel"), x.get("error")) for x in lines if x["status"] != "success"]
    assert errors == [] and run.returncode == 0, errors or run.stderr
    assert len(lines) > 100

    sys.path.insert(0, str(script.parent))
    try:
        from promql_exprs import metric_names
    finally:
        sys.path.pop(0)
    referenced = set()
    for line in lines:
        referenced |= {n for n in metric_names(line["expr"]) if n.startswith(EXPORTER_PREFIXES)}
    present = set(_api(prometheus, "/api/v1/label/__name__/values"))
    missing = sorted(n for n in referenced - present if not n.startswith(tuple(ABSENT_HERE)))
    assert missing == [], "exporter metrics read by dashboards/rules with no series: %s" % missing


def test_logrotate_configuration_is_valid_and_rotates(host):
    debug = host.run("logrotate --debug /etc/logrotate.conf")
    assert debug.rc == 0, debug.stderr
    log = "/opt/quant_platform/logs/verify-rotation.log"
    host.run_test("install -d /opt/quant_platform/logs && printf 'line one\\nline two\\n' > %s", log)
    try:
        forced = host.run("logrotate --force --state /tmp/verify-logrotate.state /etc/logrotate.d/quant_platform")
        assert forced.rc == 0, forced.stderr
        rotated = host.run("ls %s-*", log).stdout.split()
        assert len(rotated) == 1, rotated
        # copytruncate: the live file stays (the writer keeps its descriptor), emptied.
        assert host.file(log).exists and host.file(log).size == 0
        assert host.file(rotated[0]).content_string == "line one\nline two\n"
    finally:
        host.run("rm -f %s %s-* /tmp/verify-logrotate.state", log, log)
