"""Runbooks of issue 5 (H5 part) on the scenario `runbooks`, end to end.

side_effect.yml ran the runbooks with ansible-playbook against this
scenario's container - a real PostgreSQL 17 + TimescaleDB killed with
SIGKILL, real systemd units for the platform services (stand-ins: test
fixtures serving /health, /metrics and the seeds' API, see
molecule/runbooks/files/standin_service.py) - and kept each run's rc, recap
and report path in ${MOLECULE_EPHEMERAL_DIRECTORY}/runbook-runs/<name>.json.
These tests read those results, the incident reports and the host's state.
Nothing is mocked.
"""
import json
import pathlib
import re

import pytest
from _helpers import EPHEMERAL, psql, run_record

testinfra_hosts = ["podman://qp-rb-db"]

REPORTS = EPHEMERAL / "reports"
SERVICES = ["market-data", "risk-manager", "execution-engine", "signal-bridge"]


def run(name):
    return run_record(name, "side_effect.yml")


def report(result, key):
    """The incident report the run printed (INC-...-<key>.md), parsed into a dict."""
    paths = [p for p in result["reports"] if re.search(r"/INC-\d{8}-\d{6}-%s\.md$" % key, p)]
    assert len(paths) == 1, "%s printed no single %s report: %s" % (result["name"], key, result["stdout_tail"][-15:])
    text = pathlib.Path(paths[0]).read_text()
    fields = dict(re.findall(r"^\*\*([^*]+)\*\*: (.*)$", text, re.M))
    sections = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    return {"text": text, "fields": fields, "sections": sections, "path": paths[0]}


def recap(result, field):
    values = [int(m) for line in result["recap"] for m in re.findall(r" %s=(\d+)" % field, line)]
    assert values, result
    return sum(values)


def state(host, name):
    return json.loads(host.file("/var/lib/qp-standin/%s.json" % name).content_string)


# --- crash recovery (seed 002 "Database Crash Recovery") ----------------------

def test_crash_recovery_brings_the_killed_database_back_with_a_p0_report(host):
    result = run("crash_recovery")
    assert result["rc"] == 0, result["stdout_tail"]
    rep = report(result, "crash-recovery")
    assert rep["fields"]["Severity"].startswith("P0 - Critical")   # seed 002: database completely down
    findings = rep["sections"]["Findings"]
    assert re.search(r"^- ✗ 0\. PostgreSQL status: .*DOWN", findings, re.M)
    assert re.search(r"^- ✓ 2\. Safe start: started postgresql@17-main\.service", findings, re.M)
    assert re.search(r"^- ✓ 2\. Recovery finished: .*pg_is_in_recovery\(\) = false", findings, re.M)
    assert re.search(r"^- ✓ \+ Data check: ohlcv_data: [1-9]\d* rows.*[1-9]\d* B-tree indexes pass bt_index_check; "
                     r"checksum failures: 0", findings, re.M)
    # The start after SIGKILL logged PostgreSQL's own crash recovery.
    assert "not properly shut down" in rep["sections"]["Root Cause"] or "was interrupted" in rep["sections"]["Root Cause"]
    attachment = rep["sections"]["Attachments"].strip().lstrip("- ").strip()
    assert pathlib.Path(attachment).is_file()
    # amcheck was used inside a rolled-back transaction: not left installed.
    assert psql(host, "SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'") == "0"
    assert host.service("postgresql@17-main").is_running


# --- services: start / stop / restart (seed 001 Service Management) ------------

def test_start_follows_the_dependency_order_and_gates_each_step(host):
    result = run("services_start")
    assert result["rc"] == 0, result["stdout_tail"]
    lines = [l for l in result["stdout_tail"] if re.search(r"[✓✗?] (%s) \(" % "|".join(SERVICES), l)]
    assert [re.search(r"(%s)" % "|".join(SERVICES), l).group(1) for l in lines] == SERVICES
    assert all("✓" in l and "healthy" in l for l in lines), lines


def test_second_start_changes_nothing():
    assert run("services_start_again")["rc"] == 0
    assert recap(run("services_start_again"), "changed") == 0


def test_stop_without_confirmation_changes_nothing():
    result = run("services_stop_unconfirmed")
    assert result["rc"] == 0
    assert recap(result, "changed") == 0
    assert any("nothing was stopped" in l for l in result["stdout_tail"])


def test_restart_of_one_service():
    result = run("services_restart_one")
    assert result["rc"] == 0, result["stdout_tail"]
    assert any("✓ execution-engine" in l and "restarted" in l for l in result["stdout_tail"])


# --- service down (seed 003 Runbook 1) -----------------------------------------

def test_service_down_without_confirmation_reports_p1_and_restarts_nothing():
    result = run("service_down_unconfirmed")
    assert result["rc"] != 0
    rep = report(result, "service-down")
    assert rep["fields"]["Severity"].startswith("P1")
    assert "risk-manager down" in rep["sections"]["Summary"] and "NOT recovered" in rep["sections"]["Summary"]
    assert "service_down_confirm is not true" in rep["sections"]["Findings"]
    assert "Main process exited, code=killed, status=9/KILL" in rep["sections"]["Findings"]


def test_service_down_with_confirmation_restarts_the_killed_unit():
    result = run("service_down")
    assert result["rc"] == 0, result["stdout_tail"]
    rep = report(result, "service-down")
    assert rep["fields"]["Severity"].startswith("P1")
    assert "restarted and healthy" in rep["sections"]["Summary"]
    assert re.search(r"^- ✓ Post-resolution: service health: every service answers", rep["sections"]["Findings"], re.M)
    assert rep["sections"]["Impact"].count("risk-manager") == 1


# --- emergency stop (seed 001 kill switch) -------------------------------------

def test_emergency_stop_without_confirmation_does_nothing_and_fails():
    result = run("emergency_stop_unconfirmed")
    assert result["rc"] != 0
    rep = report(result, "emergency-stop")
    assert rep["fields"]["Severity"].startswith("P0")
    assert "NOT confirmed" in rep["sections"]["Summary"]
    assert "1. Circuit breaker" not in rep["sections"]["Findings"]


def test_emergency_stop_activates_the_breaker_cancels_orders_and_stops_in_reverse(host):
    result = run("emergency_stop")
    assert result["rc"] == 0, result["stdout_tail"]
    rep = report(result, "emergency-stop")
    assert rep["fields"]["Severity"].startswith("P0")
    # 1. circuit breaker: exactly one activation, by the confirmed run only
    risk = state(host, "risk-manager")
    assert risk["circuit_breaker_active"] is True
    assert [c["path"] for c in risk["calls"]].count("/api/v1/circuit-breaker/activate") == 1
    # 2. the stand-in execution engine had 3 open orders
    engine = state(host, "execution-engine")
    assert engine["open_orders"] == 0 and engine["cancelled_orders"] == 3
    # 3. every unit stopped, in reverse order (timeline order)
    for name in SERVICES:
        assert not host.service("trading-%s" % name).is_running
    stops = re.findall(r"stop trading-([a-z-]+)\.service: stopped", rep["sections"]["Timeline"])
    assert stops == list(reversed(SERVICES))
    # 4. no notification URL in the scenario: a warning, not a silent skip
    assert re.search(r"^- ⚠ 4\. Alert notification: emergency_stop_notify_url is not set", rep["sections"]["Findings"], re.M)
    # the breaker was activated before the first service stopped
    timeline = rep["sections"]["Timeline"]
    assert timeline.index("1. Circuit breaker") < timeline.index("2. Cancel open orders") < timeline.index("stop trading-signal-bridge")


# --- runbook schedules (systemd timers) ----------------------------------------

@pytest.mark.parametrize("job,calendar", [("data-quality", "*-*-* 06:00:00"),
                                          ("weekly-vacuum-analyze", "Sun *-*-* 02:00:00")])
def test_schedule_timers_are_enabled_and_active(host, job, calendar):
    timer = host.service("quantops-%s.timer" % job)
    assert timer.is_enabled and timer.is_running
    assert "OnCalendar=%s" % calendar in host.file("/etc/systemd/system/quantops-%s.timer" % job).content_string
    nxt = host.run("systemctl show -P NextElapseUSecRealtime quantops-%s.timer", job)
    assert nxt.rc == 0 and nxt.stdout.strip()


def test_weekly_vacuum_job_runs(host):
    cmd = host.run("systemctl start quantops-weekly-vacuum-analyze.service")
    assert cmd.rc == 0, cmd.stderr
    assert host.run("systemctl show -P Result quantops-weekly-vacuum-analyze.service").stdout.strip() == "success"
    assert psql(host, "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'ohlcv_data'") == "t"


def test_data_quality_job_fails_on_a_duplicate(host):
    """Adds one duplicate (ticker, region, date) row (valid OHLC, marked by its volume), runs the job, removes it again."""
    key = psql(host, "SELECT ticker || '|' || region || '|' || date FROM ohlcv_data ORDER BY date DESC, ticker LIMIT 1")
    ticker, region, day = key.split("|")
    clean = "DELETE FROM ohlcv_data WHERE ticker = '%s' AND region = '%s' AND date = '%s' AND volume = 123456789.25" % (ticker, region, day)
    psql(host, "INSERT INTO ohlcv_data (ticker, region, date, open, high, low, close, volume) "
               "SELECT ticker, region, date, open, high, low, close, 123456789.25 FROM ohlcv_data "
               "WHERE ticker = '%s' AND region = '%s' AND date = '%s' LIMIT 1" % (ticker, region, day))
    try:
        cmd = host.run("systemctl start quantops-data-quality.service")
        assert cmd.rc != 0
        assert host.run("systemctl show -P Result quantops-data-quality.service").stdout.strip() == "exit-code"
        journal = host.run("journalctl -u quantops-data-quality.service -n 50 --no-pager").stdout
        assert "data quality check failed" in journal
        assert re.search(r"%s\s*\|\s*%s\s*\|\s*%s\s*\|\s*[2-9]" % (re.escape(ticker), re.escape(region), day), journal)
    finally:
        psql(host, clean)
