"""Inventory of the Prometheus rules of the prometheus role and of their promtool tests.

Rule files: roles/prometheus/files/rules/*.yml, plus templates/slo.rules.yml.j2
rendered with files/slo_defaults.yml (tests/promtool/render_slo.py, the same
Jinja2 settings as ansible.builtin.template; scripts/promtool-test.sh checks
that the two renderings are identical).

* every alert the seeds name is defined exactly once, with the seed's severity
  and the seed line quoted in a comment above it;
* every alert: severity critical|warning|info, team and service labels, a
  summary, a description and a runbook_url naming a playbook (playbooks/...yml);
* every alert has a firing case (exp_alerts with labels and annotations) and a
  not-firing case (exp_alerts: []) in tests/promtool/*.test.yml;
* the PromQL uses metric families of the exporters and the seeds' applications,
  and rate()/increase() only on counters;
* the SLO rules follow the SRE workbook's multi-window, multi-burn-rate pairs,
  and the default SLOs are seed 003's table.

promtool itself runs in scripts/promtool-test.sh (make test); this file needs
only PyYAML and Jinja2.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.quantops.platform.tests.unit.loader import load_file

ROOT = Path(__file__).resolve().parents[2]


# scripts/promql_exprs.py: the one reader of PromQL expressions the tests share.
_PROMQL = load_file("promql_exprs", "scripts/promql_exprs.py")
PROMQL_WORDS = _PROMQL.PROMQL_WORDS
metric_names = _PROMQL.metric_names

RULES_DIR = ROOT / "roles" / "prometheus" / "files" / "rules"
TESTS_DIR = ROOT / "tests" / "promtool"
SLO_DEFAULTS = ROOT / "roles" / "prometheus" / "files" / "slo_defaults.yml"
RENDERED_SLO = "../../.cache/promtool/rendered/slo.rules.yml"

# Every alert the seeds name, with the seed's severity.
SEED_ALERTS = {
    # seed 000
    "DatabaseConnectionLost": "critical",
    "BacktestTooSlow": "warning",
    "DailyFactorUpdate": "info",
    # seed 001 (its HighErrorRate is TradingErrorRateHigh: the name belongs to seed 003's rule)
    "CircuitBreakerActive": "critical",
    "MarketDataDisconnected": "critical",
    # seed 002, "Alert Rules (20+ alerts)" and its troubleshooting section
    "DatabaseDown": "critical",
    "DatabaseSizeCritical": "critical",
    "DuplicateRecordsDetected": "critical",
    "QueryErrorRateHigh": "critical",
    "DataStale": "warning",
    "MissingDatesHigh": "warning",
    "SlowQueriesHigh": "warning",
    "IndexHitRateLow": "warning",
    "BacktestQuerySlow": "warning",
    "CompressionNotEnabled": "info",
    "TableSizeGrowing": "info",
    "BackupMissing": "warning",
    "ActiveConnectionsHigh": "warning",
    # seed 003
    "ServiceDown": "critical",
    "HighErrorRate": "critical",
    "HighLatency": "warning",
    "HighCPUUsage": "warning",
    "LowDiskSpace": "warning",
    # seed 004 (High Loss Alert, "Trading Inactive"; its System Down Alert is ServiceDown)
    "HighDailyLoss": "warning",
    "TradingInactive": "warning",
    "TradingErrorRateHigh": "warning",
}

SEVERITIES = {"critical", "warning", "info"}

# Metric families the rules may use: exporters, Prometheus/Alertmanager, the seeds' applications.
ALLOWED_PREFIXES = ("node_", "pg_", "quantops_", "postgres_", "prometheus_", "alertmanager_", "quant_", "trading_", "redis_",
                    "patroni_", "etcd_", "haproxy_", "pgbouncer_", "quantops:",
                    "risk_", "execution_", "market_data_", "http_", "slo:")
ALLOWED_NAMES = {"up"}
# Counters whose name does not end in _total/_count/_sum/_bucket.
COUNTERS = {"pg_stat_database_xact_commit", "pg_stat_database_xact_rollback", "pg_stat_database_blks_hit",
            "pg_stat_database_blks_read", "pg_stat_database_deadlocks", "pg_stat_archiver_failed_count",
            "node_vmstat_oom_kill"}

# Seed 003, "Service-Specific Availability": availability % and response_time_p95 (s).
SEED_003_SLOS = {
    "api_gateway": (99.99, 0.2),
    "user_service": (99.95, 0.5),
    "market_data_service": (99.9, 0.1),
    "trading_service": (99.99, 0.3),
    "analytics_service": (99.5, 2.0),
}
# SRE workbook, multi-window multi-burn-rate: (burn rate, long window, short window).
PAGE = [(14.4, "1h", "5m"), (6.0, "6h", "30m")]
TICKET = [(3.0, "1d", "2h"), (1.0, "3d", "6h")]


def _load_render_slo():
    spec = importlib.util.spec_from_file_location("render_slo", TESTS_DIR / "render_slo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDER_SLO = _load_render_slo()


def _rule_files():
    return sorted(RULES_DIR.glob("*.yml"))


def _rules(doc):
    for group in doc["groups"]:
        for rule in group["rules"]:
            yield group["name"], rule


@pytest.fixture(scope="module")
def static_alerts():
    """(file, group, rule) of every alerting rule of files/rules/*.yml."""
    found = []
    for path in _rule_files():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        found += [(path.name, group, rule) for group, rule in _rules(doc) if "alert" in rule]
    return found


@pytest.fixture(scope="module")
def slo_doc():
    return yaml.safe_load(RENDER_SLO.render(RENDER_SLO.load_slos(SLO_DEFAULTS)))


@pytest.fixture(scope="module")
def all_rules(slo_doc):
    found = []
    for path in _rule_files():
        found += [(path.name, g, r) for g, r in _rules(yaml.safe_load(path.read_text(encoding="utf-8")))]
    found += [("slo.rules.yml", g, r) for g, r in _rules(slo_doc)]
    return found


@pytest.fixture(scope="module")
def test_cases():
    """alertname -> list of (test file, group name, eval_time, firing?)."""
    cases = {}
    for path in sorted(TESTS_DIR.glob("*.test.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in doc["tests"]:
            for case in group.get("alert_rule_test") or []:
                firing = bool(case.get("exp_alerts"))
                cases.setdefault(case["alertname"], []).append((path.name, group.get("name"), case["eval_time"], firing))
    return cases


def test_every_seed_alert_is_defined_exactly_once(static_alerts):
    names = [rule["alert"] for _file, _group, rule in static_alerts]
    for alert in SEED_ALERTS:
        assert names.count(alert) == 1, "%s defined %d times" % (alert, names.count(alert))


def test_static_alert_names_are_unique(static_alerts):
    names = [rule["alert"] for _file, _group, rule in static_alerts]
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)


def test_seed_alerts_keep_the_seed_severity(static_alerts):
    for _file, _group, rule in static_alerts:
        if rule["alert"] in SEED_ALERTS:
            assert rule["labels"]["severity"] == SEED_ALERTS[rule["alert"]], rule["alert"]


def test_seed_alerts_quote_their_seed():
    for path in _rule_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            match = re.match(r"\s*- alert: (\w+)$", line)
            if not match or match.group(1) not in SEED_ALERTS:
                continue
            comments = []
            for previous in reversed(lines[:number]):
                if not previous.strip().startswith("#"):
                    break
                comments.append(previous)
            assert any(re.search(r"Seed 00\d", c) for c in comments), "%s: %s has no seed quote" % (
                path.name, match.group(1))


def test_every_alert_is_labelled_and_annotated(all_rules):
    for file, group, rule in all_rules:
        if "alert" not in rule:
            continue
        where = "%s %s %s" % (file, group, rule["alert"])
        labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
        assert labels.get("severity") in SEVERITIES, where
        assert labels.get("team") and labels.get("service"), where
        assert annotations.get("summary", "").strip(), where
        assert annotations.get("description", "").strip(), where
        runbook = annotations.get("runbook_url", "")
        assert re.fullmatch(r"playbooks/[a-z_]+/[a-z0-9_]+\.yml", runbook), "%s: %r" % (where, runbook)
        assert set(annotations) == {"summary", "description", "runbook_url"}, where


def test_descriptions_show_the_value_or_the_instance(all_rules):
    for file, _group, rule in all_rules:
        # absent() yields neither a useful value nor the series' labels
        if "alert" in rule and rule["alert"] != "SLOLatencyBucketMissing":
            text = rule["annotations"]["description"]
            assert "$value" in text or "$labels" in text, "%s %s" % (file, rule["alert"])


def test_every_alert_has_a_firing_and_a_quiet_test_case(all_rules, test_cases):
    for file, _group, rule in all_rules:
        if "alert" not in rule:
            continue
        cases = test_cases.get(rule["alert"], [])
        assert any(firing for *_where, firing in cases), "%s %s: no firing case" % (file, rule["alert"])
        assert any(not firing for *_where, firing in cases), "%s %s: no exp_alerts: [] case" % (file, rule["alert"])


def test_firing_cases_check_labels_and_every_annotation(all_rules):
    annotations = {}
    for _file, _group, rule in all_rules:
        if "alert" in rule:
            annotations[rule["alert"]] = set(rule["annotations"])
    for path in sorted(TESTS_DIR.glob("*.test.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in group.get("alert_rule_test") or []:
                assert case["alertname"] in annotations, "%s: unknown alert %s" % (path.name, case["alertname"])
                for alert in case.get("exp_alerts") or []:
                    assert alert["exp_labels"]["severity"] in SEVERITIES
                    assert set(alert["exp_annotations"]) == annotations[case["alertname"]], (path.name, group["name"])


def test_test_files_are_well_formed():
    rule_files_tested = set()
    for path in sorted(TESTS_DIR.glob("*.test.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        names = [group.get("name") for group in doc["tests"]]
        assert all(names) and len(names) == len(set(names)), "%s: test groups need unique names" % path.name
        for rule_file in doc["rule_files"]:
            if rule_file == RENDERED_SLO:
                rule_files_tested.add("slo.rules.yml")
                continue
            target = (path.parent / rule_file).resolve()
            assert target.is_file(), "%s: %s" % (path.name, rule_file)
            assert target.parent == RULES_DIR, "%s: %s" % (path.name, rule_file)
            rule_files_tested.add(target.name)
    assert rule_files_tested == {p.name for p in _rule_files()} | {"slo.rules.yml"}


def test_metric_names_are_real_families(all_rules):
    for file, _group, rule in all_rules:
        for name in metric_names(rule["expr"]):
            assert name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES), "%s %s: %s" % (
                file, rule.get("alert") or rule.get("record"), name)


def test_rate_and_increase_only_on_counters(all_rules):
    for file, _group, rule in all_rules:
        for func, metric in re.findall(r"\b(rate|irate|increase)\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", rule["expr"]):
            counter = metric.endswith(("_total", "_count", "_sum", "_bucket")) or metric in COUNTERS
            assert counter, "%s %s: %s(%s) on a gauge" % (file, rule.get("alert") or rule.get("record"), func, metric)
        for func, metric in re.findall(r"\b(delta|deriv|predict_linear)\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", rule["expr"]):
            assert not metric.endswith("_total") and metric not in COUNTERS, "%s: %s on a counter" % (file, func)


def test_postgres_exporter_017_labels_are_aggregated(all_rules):
    """0.17 gives pg_stat_activity_* extra labels: never compare them unaggregated."""
    for file, _group, rule in all_rules:
        for match in re.finditer(r"pg_stat_activity_(?:count|max_tx_duration)", rule["expr"]):
            before = rule["expr"][:match.start()]
            assert re.search(r"(sum|max) by \([^)]*\) \($", before), "%s %s" % (file, rule.get("alert"))


def test_default_slos_are_seed_003s_table():
    slos = RENDER_SLO.load_slos(SLO_DEFAULTS)
    assert {slo["name"]: (slo["objective"], float(slo["latency"]["threshold_seconds"])) for slo in slos} == SEED_003_SLOS
    for slo in slos:
        assert slo["service"] == slo["name"]
        assert 0 < slo["objective"] < 100
        assert "$window" in slo["availability"]["errors_query"] and "$window" in slo["availability"]["total_query"]
        assert slo["latency"]["objective"] == 95  # "response_time_p95"


def _burn_pairs(expr):
    """[(burn rate, long window, short window)] of a burn-rate alert expression, with the budget."""
    terms = re.findall(r"slo:sli_error:ratio_rate(\w+)\{[^}]*\} > \(([\d.]+) \* ([\d.e-]+)\)", expr)
    pairs = [(float(terms[i][1]), terms[i][0], terms[i + 1][0]) for i in range(0, len(terms), 2)]
    assert all(terms[i][1] == terms[i + 1][1] for i in range(0, len(terms), 2)), expr
    return pairs, {float(t[2]) for t in terms}


def test_slo_rules_are_multiwindow_multi_burn_rate(slo_doc):
    slos = {slo["name"]: slo for slo in RENDER_SLO.load_slos(SLO_DEFAULTS)}
    groups = {group["name"]: group for group in slo_doc["groups"]}
    assert sorted(groups) == sorted("slo.%s.%s" % (name, sli) for name in slos for sli in ("availability", "latency"))
    for name, group in groups.items():
        slo_name, sli = name.split(".")[1:]
        objective = slos[slo_name][sli].get("objective", slos[slo_name]["objective"])
        budget = round((100 - objective) / 100, 10)
        records = [rule["record"] for rule in group["rules"] if "record" in rule]
        assert records == ["slo:sli_error:ratio_rate%s" % w for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")] + [
            "slo:objective:ratio", "slo:error_budget:ratio"]
        for rule in group["rules"]:
            if "record" in rule:
                assert rule["labels"] == {"slo": slo_name, "sli": sli, "service": slos[slo_name]["service"]}
        alerts = {rule["alert"]: rule for rule in group["rules"] if "alert" in rule}
        assert sorted(alerts) == ["SLOErrorBudgetBurnFast", "SLOErrorBudgetBurnSlow"] + (
            ["SLOLatencyBucketMissing"] if sli == "latency" else [])
        for alert, expected, severity in (("SLOErrorBudgetBurnFast", PAGE, "critical"),
                                          ("SLOErrorBudgetBurnSlow", TICKET, "warning")):
            pairs, budgets = _burn_pairs(alerts[alert]["expr"])
            assert pairs == expected, (name, alert)
            assert budgets == {budget}, (name, alert, budgets)
            assert alerts[alert]["labels"]["severity"] == severity
            assert "for" not in alerts[alert]  # the short window does the debouncing


def test_slo_latency_bucket_matches_both_client_spellings(slo_doc):
    exprs = {g["name"]: g["rules"][0]["expr"] for g in slo_doc["groups"]}
    assert 'le=~"2([.]0)?"' in exprs["slo.analytics_service.latency"]  # "2" (Go) or "2.0" (Python)
    assert 'le="0.2"' in exprs["slo.api_gateway.latency"]


def test_an_empty_slo_list_renders_an_empty_rule_file():
    assert yaml.safe_load(RENDER_SLO.render([])) == {"groups": []}
