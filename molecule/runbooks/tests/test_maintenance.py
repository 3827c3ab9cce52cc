"""Maintenance runbooks (seed 002 daily, weekly, monthly, quarterly) on the scenario `runbooks`.

side_effect_maintenance.yml ran them with ansible-playbook against this scenario's
container (real PostgreSQL 17 + TimescaleDB with the lab's market data and the
seeded problems) and kept each run's rc, recap and output tail in
runbook-runs/maintenance_*.json.  Nothing is mocked.
"""
import re

from _helpers import run_record

testinfra_hosts = ["podman://qp-rb-db"]


def run(name):
    result = run_record(name, "side_effect_maintenance.yml")
    # The whole output: a monthly run without the drill ends in many skipped tasks, and a
    # failed task's message is on stderr (ansible-core 2.19's default callback).
    result["text"] = "\n".join(result["output"])
    return result


def changed(result):
    values = [int(m) for line in result["recap"] for m in re.findall(r" changed=(\d+)", line)]
    assert values, result["stdout_tail"]
    return sum(values)


def item(result, pattern):
    """The checklist line matching pattern (symbol, name, text)."""
    found = re.findall(r'"([✓⚠✗?] %s)",?$' % pattern, result["text"], re.M)
    assert len(found) == 1, "no single line %r in: %s" % (pattern, result["stdout_tail"][-40:])
    return found[0]


def assert_fails_only_on_a_critical_item(result):
    assert "Overall:" in result["text"], result["stdout_tail"]
    critical = re.findall(r'"✗ ', result["text"])
    assert (result["rc"] == 0) == (not critical), result["stdout_tail"]


def test_morning_check_lists_health_backup_and_log():
    result = run("maintenance_morning")
    assert_fails_only_on_a_critical_item(result)
    assert item(result, r"Database size: .*")
    assert item(result, r"Data freshness \(US\): .*")
    # no backup job ran in this scenario: unknown, never guessed
    assert item(result, r"Backup age: .*").startswith(("? Backup age: no successful database backup recorded", "✓", "⚠"))
    assert re.match(r"[✓✗] Server log: \d+ ERROR/FATAL/PANIC lines \(\d+ PANIC\) in /var/log/postgresql/postgresql-17-main\.log",
                    item(result, r"Server log: .*"))


def test_bad_input_is_refused_before_anything_runs():
    for name, setting in [("maintenance_morning_bad_port", "morning_check_port"),
                          ("maintenance_weekly_bad_ratio", "weekly_dead_tuple_ratio")]:
        result = run(name)
        assert result["rc"] != 0
        assert setting in result["text"] and "Validation of arguments failed" in result["text"], result["stdout_tail"]
        assert changed(result) == 0
        assert "Overall:" not in result["text"]


def test_evening_check_judges_the_day_and_refuses_a_bad_one():
    result = run("maintenance_evening")
    assert_fails_only_on_a_critical_item(result)
    assert "End-of-day checklist for qp-rb-db / quant_platform (2018-12-31)" in result["text"]
    assert item(result, r"1\. Data collection 2018-12-31: .*")
    assert re.search(r"2\. Data quality of 2018-12-31 \(ohlcv_data_quality\): \d+ rows scanned", result["text"])
    assert item(result, r"3\. OHLCV query performance: .*")
    bad = run("maintenance_evening_bad_day")
    assert bad["rc"] != 0 and "evening_check_as_of must be a date YYYY-MM-DD (got '31.12.2018')" in bad["text"]


def test_weekly_in_check_mode_runs_nothing():
    result = run("maintenance_weekly_check")
    assert result["rc"] == 0, result["stdout_tail"]
    assert re.search(r"Weekly maintenance on qp-rb-db / quant_platform took [\d.]+ s \(check mode: nothing ran\)", result["text"])
    assert item(result, r"1\. pg_stat_statements_reset\(\): skipped \(check mode.*")
    assert item(result, r"3\. Hypertable ohlcv_data: chunks \d+")
    # nothing ran: every statement is listed as "would run", none as done
    assert not re.search(r'"✓ [12]\. (VACUUM|REINDEX)[^:]*: (VACUUM|REINDEX)', result["text"])


def test_monthly_reports_the_size_trend_of_the_second_run():
    first, second = run("maintenance_monthly_first"), run("maintenance_monthly_second")
    assert first["rc"] == 0 and second["rc"] == 0, second["stdout_tail"]
    assert item(second, r"1\. Compression review ohlcv_data: \d+ compressed, \d+ uncompressed chunks .*")
    assert item(second, r"1\. Compress old chunks: .*")
    assert item(second, r"2\. ANALYZE: ANALYZE in [\d.]+ s.*")
    size = item(second, r"3\. Database size quant_platform: .*")
    assert re.search(r": [\d.]+ (MB|GB), [+-][\d.]+ (bytes|kB|MB) since \d{4}-\d{2}-\d{2} [\d:]+[+-]\d{2}(:\d{2})? \(less than a day: no daily rate\)$",
                     size), size
    assert item(second, r"3\. Size of ohlcv_data: .*")


def test_quarterly_audits_and_projects_the_measured_growth(host):
    first = run("maintenance_quarterly_first")
    assert_fails_only_on_a_critical_item(first)
    # Step 1 is seed 002's query benchmark: one judged item per query type of its table.
    for query in ("Single ticker, 250 days", "Single ticker, 1 year", "Single ticker, 10 years", "Backtest",
                  "Portfolio optimization"):
        assert re.match(r"[✓⚠✗] ", item(first, r"1\. Performance audit - " + re.escape(query) + r".*: p95 .*"))
    for name in ("2a. Table grants", "2b. Password expiry", "2c. Superusers", "2d. pg_hba.conf rules"):
        assert item(first, re.escape(name) + ": .*")
    assert item(first, r"2c\. Superusers: postgres") == "✓ 2c. Superusers: postgres"
    assert item(first, r"3\. Disk growth projection: .*").startswith("? 3. Disk growth projection: 1 size sample(s)")
    growth = run("maintenance_quarterly_growth")
    assert_fails_only_on_a_critical_item(growth)
    line = item(growth, r"3\. Disk growth projection: .*")
    # 1 MiB over 30 days
    assert re.search(r"growth 34\.\d kB/day \(least squares over 2 samples, 30 days\), in 180 days", line), line
    samples = host.file("/var/lib/postgresql/quantops/size_samples.csv")
    assert samples.user == "postgres" and samples.mode == 0o640
    assert len(samples.content_string.splitlines()) == 2
    check = run("maintenance_quarterly_check")
    assert check["rc"] == growth["rc"] and changed(check) == 0
