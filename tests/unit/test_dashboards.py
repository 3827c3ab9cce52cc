"""Structural checks of the grafana role's dashboards (roles/grafana/files/dashboards/*.json).

Every dashboard: valid JSON, schemaVersion 39, uid = file name (the seeds'
/d/<uid> URLs), unique panel ids, gridPos inside 24 columns without overlap,
a title and a description on every panel, and data sources referenced by a
uid the role's rendered provisioning defines (never ``${DS_PROMETHEUS}``).

postgres-monitoring holds exactly seed 002's 15 panels ("Grafana Dashboard
Usage") in its 5 groups. The PromQL uses real metric names (node_exporter 1.9,
postgres_exporter 0.17, the platform exporter, the seeds' application
metrics), counters only through rate()/increase(), gauges never rated.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.quantops.platform.tests.unit.loader import load_file

ROOT = Path(__file__).resolve().parents[2]


# scripts/promql_exprs.py: the one reader of PromQL expressions the tests share.
_PROMQL = load_file("promql_exprs", "scripts/promql_exprs.py")
PROMQL_WORDS = _PROMQL.PROMQL_WORDS
metric_names = _PROMQL.metric_names

ROLE = ROOT / "roles" / "grafana"
DASHBOARDS = ROLE / "files" / "dashboards"
EXPECTED = ["api", "backtest", "backups", "database", "ha", "postgres-monitoring", "redis", "risk", "system",
            "trading-overview"]

# Seed 002, "Grafana Dashboard Usage": 15 visualization panels in 5 groups.
SEED_002_GROUPS = {
    "Database Overview": ["Total database size trend", "Table sizes", "Row counts by table", "Total tickers by region"],
    "Query Performance": ["Query duration by type", "Backtest query percentiles (P50/P95/P99)", "Slow query rate",
                          "Query error rate"],
    "Connections & Resources": ["Active connections", "Index hit rate by table", "Cache hit rate"],
    "Data Quality": ["Data age by region", "Missing dates count"],
    "TimescaleDB": ["Hypertable sizes", "Chunk counts"],
}
# Visualizations seed 002 names for some of them.
SEED_002_TYPES = {"Active connections": "gauge", "Index hit rate by table": "gauge", "Cache hit rate": "gauge",
                  "Missing dates count": "gauge", "Chunk counts": "gauge", "Hypertable sizes": "barchart",
                  "Data age by region": "timeseries", "Query duration by type": "timeseries"}

# The platform exporter's metrics (the collection's custom queries).
QUANTOPS_METRICS = {"quantops_ohlcv_freshness_seconds", "quantops_ohlcv_missing_dates", "quantops_ohlcv_duplicate_rows",
                    "quantops_hypertable_chunks", "quantops_hypertable_compressed_chunks", "quantops_table_size_bytes",
                    "quantops_index_size_bytes", "quantops_index_hit_ratio", "quantops_slow_statements",
                    "quantops_backup_last_success_timestamp_seconds"}
# Exporter metrics the dashboards must use, by exporter.
REQUIRED_METRICS = QUANTOPS_METRICS | {
    "node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes", "node_filesystem_avail_bytes",
    "node_disk_read_bytes_total", "node_network_receive_bytes_total",
    "pg_up", "pg_database_size_bytes", "pg_stat_activity_count", "pg_stat_database_blks_hit", "pg_stat_database_blks_read",
    "pg_stat_database_xact_commit", "pg_stat_database_xact_rollback", "pg_locks_count", "pg_stat_database_deadlocks",
    "postgres_query_duration_seconds_bucket",
}
# Metric name families the dashboards may use: exporters, then the seeds' applications.
ALLOWED_PREFIXES = ("node_", "pg_", "pgbackrest_", "process_", "quantops_", "postgres_", "quant_", "trading_", "risk_",
                    "execution_", "market_data_", "http_", "redis_", "patroni_", "etcd_", "haproxy_", "pgbouncer_",
                    "quantops:")
ALLOWED_NAMES = {"up"}
GAUGES = QUANTOPS_METRICS | {"pg_up", "pg_database_size_bytes", "pg_stat_activity_count", "pg_locks_count",
                             "node_memory_MemAvailable_bytes", "node_filesystem_avail_bytes", "node_load1",
                             "quant_backtest_success_rate", "quant_backtest_cache_hit_rate", "trading_open_positions",
                             "risk_circuit_breaker_active", "pg_stat_archiver_last_archive_age"}

# Counters whose value itself is shown: realized P&L to date (seed 001 adds it to the unrealized P&L as is).
VALUE_COUNTERS = {"trading_realized_pnl_total"}


def _load(name):
    return json.loads((DASHBOARDS / f"{name}.json").read_text(encoding="utf-8"))


def _panels(panels):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _visual(dashboard):
    return [p for p in _panels(dashboard["panels"]) if p["type"] != "row"]


def _exprs(dashboard):
    for panel in _visual(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel["title"], target["expr"]


@pytest.fixture(scope="module")
def provisioned_uids(tmp_path_factory):
    """Data source uids of the role's datasources template rendered with its defaults by Ansible."""
    tmp = tmp_path_factory.mktemp("datasources")
    dest = tmp / "datasources.yml"
    play = [{"name": "Render the data sources", "hosts": "localhost", "gather_facts": False,
             "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
             "vars": {"role_path": str(ROLE), "grafana_admin_password": "unit-test-password",
                      "grafana_postgresql_password": "unit-test-password"},
             "tasks": [{"name": "Render", "ansible.builtin.template": {
                 "src": str(ROLE / "templates" / "datasources.yml.j2"), "dest": str(dest), "mode": "0600"}}]}]
    book = tmp / "render.yml"
    book.write_text(yaml.safe_dump(play), encoding="utf-8")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    result = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                             "-e", f"ansible_python_interpreter={sys.executable}", str(book)],
                            capture_output=True, text=True, env=env, cwd=str(tmp), timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    data = yaml.safe_load(dest.read_text(encoding="utf-8"))
    return {source["uid"]: source["type"] for source in data["datasources"]}


def test_the_eight_seed_dashboards_are_there():
    assert sorted(p.stem for p in DASHBOARDS.glob("*.json")) == EXPECTED
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    assert sorted(defaults["grafana_dashboards"]) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_dashboard_header(name):
    dashboard = _load(name)
    assert isinstance(dashboard, dict)
    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"] == name
    assert dashboard["title"].strip() and dashboard["description"].strip()
    assert dashboard.get("id") is None
    assert "__inputs" not in dashboard and "__requires" not in dashboard
    assert "quant-platform" in dashboard["tags"]
    assert dashboard["panels"]


@pytest.mark.parametrize("name", EXPECTED)
def test_panel_ids_are_unique(name):
    ids = [p["id"] for p in _panels(_load(name)["panels"])]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", EXPECTED)
def test_grid_positions_fit_and_do_not_overlap(name):
    boxes = []
    for panel in _panels(_load(name)["panels"]):
        pos = panel["gridPos"]
        assert set(pos) == {"x", "y", "w", "h"}
        assert all(isinstance(v, int) for v in pos.values())
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] >= 1 and pos["h"] >= 1
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        boxes.append((panel["title"], pos))
    for i, (title_a, a) in enumerate(boxes):
        for title_b, b in boxes[i + 1:]:
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
            assert apart, f"{title_a!r} overlaps {title_b!r}"


@pytest.mark.parametrize("name", EXPECTED)
def test_every_panel_has_a_title_and_a_description(name):
    for panel in _panels(_load(name)["panels"]):
        assert panel.get("title", "").strip(), panel["id"]
        if panel["type"] != "row":
            assert panel.get("description", "").strip(), panel["title"]
            assert panel.get("targets"), panel["title"]


@pytest.mark.parametrize("name", EXPECTED)
def test_datasources_are_provisioned_uids(name, provisioned_uids):
    assert set(provisioned_uids) == {"prometheus", "quant-platform-pg"}
    text = (DASHBOARDS / f"{name}.json").read_text(encoding="utf-8")
    assert "${DS_" not in text and "$datasource" not in text
    for panel in _visual(_load(name)):
        refs = [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]
        for ref in refs:
            assert isinstance(ref, dict), panel["title"]
            assert ref["uid"] in provisioned_uids, (panel["title"], ref)
            assert ref["type"] == provisioned_uids[ref["uid"]], (panel["title"], ref)
        for target in panel["targets"]:
            if target["datasource"]["uid"] == "prometheus":
                assert target.get("expr", "").strip(), panel["title"]
            else:
                assert target.get("rawSql", "").strip() and target.get("rawQuery") is True, panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    for annotation in _load(name)["annotations"]["list"]:
        assert annotation["datasource"] == {"type": "grafana", "uid": "-- Grafana --"}


def test_postgres_monitoring_has_exactly_the_15_seed_panels_in_their_groups():
    dashboard = _load("postgres-monitoring")
    assert dashboard["uid"] == "postgres-monitoring"  # seed 002's URL .../dashboards/postgres-monitoring
    groups = {}
    current = None
    for panel in dashboard["panels"]:  # top level, in order: a row, then its panels
        if panel["type"] == "row":
            assert not panel.get("panels"), "rows are expanded"
            current = panel["title"]
            groups[current] = []
        else:
            assert current is not None, "every panel sits under a group row"
            groups[current].append(panel["title"])
    assert groups == SEED_002_GROUPS
    visual = _visual(dashboard)
    assert len(visual) == 15
    for panel in visual:
        if panel["title"] in SEED_002_TYPES:
            assert panel["type"] == SEED_002_TYPES[panel["title"]], panel["title"]
    names = {a["name"] for a in dashboard["annotations"]["list"]}
    assert {"Deployments", "Migrations", "Performance tuning"} <= names  # seed 002's dashboard annotations


def test_postgres_monitoring_uses_the_seed_query_collector_histogram():
    exprs = dict(_exprs(_load("postgres-monitoring")))
    assert "postgres_query_duration_seconds_bucket" in exprs["Query duration by type"]
    assert 'query_type="backtest"' in exprs["Backtest query percentiles (P50/P95/P99)"]


def test_required_metrics_are_used():
    used = set()
    for name in EXPECTED:
        for _title, expr in _exprs(_load(name)):
            used |= metric_names(expr)
    assert REQUIRED_METRICS <= used, REQUIRED_METRICS - used


@pytest.mark.parametrize("name", EXPECTED)
def test_metric_names_are_real_families(name):
    for title, expr in _exprs(_load(name)):
        names = metric_names(expr)
        assert names, (title, expr)
        for metric in names:
            assert metric in ALLOWED_NAMES or metric.startswith(ALLOWED_PREFIXES), (title, metric, expr)


@pytest.mark.parametrize("name", EXPECTED)
def test_counters_are_rated_and_gauges_are_not(name):
    for title, expr in _exprs(_load(name)):
        for metric in metric_names(expr):
            counter = metric.endswith(("_total", "_bucket", "_count", "_sum")) or metric == "pg_stat_database_deadlocks"
            if counter and metric not in GAUGES | VALUE_COUNTERS:
                rated = re.search(r"\b(?:rate|irate|increase)\(\s*" + re.escape(metric) + r"\b", expr)
                cumulative = metric.startswith(("pg_stat_database_blks_", "process_cpu_seconds_total"))
                assert rated or cumulative, (title, expr)
            if metric in GAUGES:
                assert not re.search(r"\b(?:rate|irate|increase)\(\s*" + re.escape(metric) + r"\b", expr), (title, expr)


@pytest.mark.parametrize("name", EXPECTED)
def test_promql_follows_the_exporters_label_sets(name):
    for title, expr in _exprs(_load(name)):
        # postgres_exporter 0.17 splits pg_stat_activity_count by usename, application_name, backend_type.
        for match in re.finditer(r"pg_stat_activity_count", expr):
            before = expr[:match.start()]
            assert re.search(r"sum(?: by \([^)]*\))? ?\($", before), (title, expr)
        if "histogram_quantile" in expr:
            assert re.search(r"by \((?:[^)]*, )?le\b", expr), (title, expr)
        assert "$__" not in expr and "${" not in expr, (title, expr)


def test_metric_name_parser():
    assert metric_names('sum by (le) (rate(a_bucket{x="y{z}"}[5m])) / b') == {"a_bucket", "b"}
    assert metric_names("100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m])))") == {
        "node_cpu_seconds_total"}
    assert metric_names("x and on (table) label_replace(y, \"t\", \"$1\", \"h\", \"(.*)\")") == {"x", "y"}


# --- scripts/promql_exprs.py: the dashboards' (and rules') PromQL for a live Prometheus ----------

SCRIPT = ROOT / "scripts" / "promql_exprs.py"


def _run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False)


def test_promql_exprs_lists_every_prometheus_target():
    result = _run_script()
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [(f"roles/grafana/files/dashboards/{name}.json", title, expr)
                for name in EXPECTED for title, expr in _exprs(_load(name))]
    assert [(r["file"], r["panel"], r["expr"]) for r in lines] == expected
    assert all(set(r) == {"file", "panel", "expr"} for r in lines)
    assert not any("SELECT" in r["expr"] for r in lines)  # SQL targets are not PromQL


def test_promql_exprs_substitutes_grafana_variables_and_reads_rules(tmp_path):
    dashboard = {"uid": "v", "title": "v", "templating": {"list": [{"name": "db", "current": {"value": "quant_platform"}}]},
                 "panels": [{"id": 1, "type": "row", "title": "r", "panels": [
                     {"id": 2, "type": "timeseries", "title": "nested", "datasource": {"type": "prometheus", "uid": "prometheus"},
                      "targets": [{"refId": "A", "expr": 'rate(x_total{datname="$db"}[$__rate_interval])'},
                                  {"refId": "B", "expr": "y", "datasource": {"uid": "other"}}]}]}]}
    (tmp_path / "v.json").write_text(json.dumps(dashboard), encoding="utf-8")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": "up == 0"}, {"record": "job:up:sum", "expr": "sum by (job) (up)"}]}]}), encoding="utf-8")
    result = _run_script(str(tmp_path / "v.json"), "--rules", str(rules))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {"file": str(tmp_path / "v.json"), "panel": "nested",
                        "expr": 'rate(x_total{datname="quant_platform"}[5m])'}
    assert lines[1:] == [{"file": str(rules / "a.rules.yml"), "group": "g", "rule": "A", "expr": "up == 0"},
                         {"file": str(rules / "a.rules.yml"), "group": "g", "rule": "job:up:sum",
                          "expr": "sum by (job) (up)"}]
    only = _run_script("--only-rules", "--rules", str(rules))
    assert len(only.stdout.splitlines()) == 2


def test_promql_exprs_refuses_broken_input(tmp_path):
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    result = _run_script(str(tmp_path / "bad.json"))
    assert result.returncode == 2 and "bad.json" in result.stderr
    (tmp_path / "bad.yml").write_text("groups: [", encoding="utf-8")
    assert _run_script("--only-rules", "--rules", str(tmp_path / "bad.yml")).returncode == 2
    assert _run_script(str(tmp_path / "missing.json")).returncode == 2


def test_promql_exprs_queries_a_prometheus(tmp_path, monkeypatch):
    """--prometheus against a stand-in Prometheus API on loopback."""
    import http.server
    import threading
    import urllib.parse

    seen_auth = []

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen_auth.append(self.headers.get("Authorization"))
            expr = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)["query"][0]
            if "bad" in expr:
                code, body = 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}
            else:
                code, body = 200, {"status": "success", "data": {"resultType": "vector", "result": [{}, {}]}}
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rules = tmp_path / "r.yml"
        rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"alert": "Good", "expr": "up"},
                                                                            {"alert": "Bad", "expr": "bad("}]}]}),
                         encoding="utf-8")
        result = _run_script("--only-rules", "--rules", str(rules), "--prometheus", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("PROMETHEUS_PASSWORD", "unit-pw")
        authed = _run_script("--only-rules", "--rules", str(rules), "--prometheus",
                             f"http://127.0.0.1:{server.server_port}", "--user", "grafana")
        monkeypatch.delenv("PROMETHEUS_PASSWORD")
        no_password = _run_script("--only-rules", "--rules", str(rules), "--prometheus",
                                  f"http://127.0.0.1:{server.server_port}", "--user", "grafana")
    finally:
        server.shutdown()
        server.server_close()
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1
    assert (lines[0]["status"], lines[0]["series"]) == ("success", 2)
    assert (lines[1]["status"], lines[1]["error"]) == ("error", "bad_data: parse error")
    # --user: basic auth with the password from the environment, never from argv.
    assert authed.returncode == 1
    assert seen_auth[:2] == [None, None]
    assert seen_auth[2:] == ["Basic Z3JhZmFuYTp1bml0LXB3"] * 2
    assert no_password.returncode == 2 and "PROMETHEUS_PASSWORD" in no_password.stderr
