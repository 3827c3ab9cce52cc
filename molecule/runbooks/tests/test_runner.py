"""Runbooks through ansible_runner.run() (the CI path, docs/runner.md).

Real ansible-runner runs against this scenario's container, with the
collection's runner/ private data dir (runner/env/{envvars,settings,extravars})
copied to a temporary directory, the collection root as project dir and the
scenario inventory.  Asserts on the runner's events, stats, artifacts and the
JUnit XML of the ansible.builtin.junit callback.  Nothing is mocked.

Order matters: after side_effect.yml the platform services are stopped (the
emergency stop ran), so start.yml has work to do.
"""
import os
import pathlib
import shutil
import xml.etree.ElementTree as ET

import ansible_runner
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
HOST = os.environ.get("RB_RUNNER_HOST", "qp-rb-db")   # another host only for development runs


@pytest.fixture(scope="module")
def pdd(tmp_path_factory):
    path = tmp_path_factory.mktemp("runner")
    shutil.copytree(ROOT / "runner" / "env", path / "env")
    return path


def run(pdd, playbook, ident, extravars=None):
    events = []
    # env/envvars wins over envvars=: write this run's JUnit dir into the copy.
    envvars = yaml.safe_load((ROOT / "runner" / "env" / "envvars").read_text())
    envvars["JUNIT_OUTPUT_DIR"] = str(pdd / "junit" / ident)
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    result = ansible_runner.run(
        private_data_dir=str(pdd),
        project_dir=str(ROOT),
        inventory=os.environ["MOLECULE_INVENTORY_FILE"],
        playbook=playbook,
        ident=ident,
        extravars=dict({"incident_reports_dir": str(pdd / "reports")}, **(extravars or {})),
        event_handler=lambda event: events.append(event) or True,
        quiet=True,
    )
    return result, events


def junit_cases(pdd, ident):
    files = list((pdd / "junit" / ident).glob("*.xml"))
    assert len(files) == 1, files
    root = ET.parse(str(files[0])).getroot()
    return root.findall(".//testcase")


def task_names(events, event_type):
    return [e["event_data"].get("task") for e in events if e["event"] == event_type]


def test_services_start_through_ansible_runner(pdd):
    result, events = run(pdd, "playbooks/services/start.yml", "services-start")
    assert result.status == "successful" and result.rc == 0
    assert result.stats["failures"] == {} and result.stats["dark"] == {}
    assert result.stats["changed"][HOST] >= 4          # the four units were stopped by the emergency stop
    ok = task_names(events, "runner_on_ok")
    gates = [t for t in ok if t and t.startswith("Health gate: ")]
    assert gates == ["Health gate: market-data", "Health gate: risk-manager",
                     "Health gate: execution-engine", "Health gate: signal-bridge"]
    assert events[-1]["event"] == "playbook_on_stats"
    artifacts = pdd / "artifacts" / "services-start"
    assert (artifacts / "rc").read_text().strip() == "0"
    assert (artifacts / "status").read_text().strip() == "successful"
    assert len(list((artifacts / "job_events").glob("*.json"))) == len(events)
    cases = junit_cases(pdd, "services-start")
    assert any("Health gate: signal-bridge" in c.get("name") for c in cases)
    assert not any(c.find("failure") is not None or c.find("error") is not None for c in cases)


def test_crash_recovery_check_through_ansible_runner(pdd):
    """The database is up: the runbook only checks, reports and exits 0.

    P1 when the last lines of the server log still show side_effect's crash,
    P3 when later log lines (the seeded sessions) have pushed them out.
    """
    result, events = run(pdd, "playbooks/incidents/crash_recovery.yml", "crash-recovery")
    assert result.status == "successful" and result.rc == 0
    assert result.stats["failures"] == {}
    assert "Write the incident report" in task_names(events, "playbook_on_task_start")
    # No start was needed: the safe-start block was skipped.
    assert "2. Start the cluster (PostgreSQL runs crash recovery from the WAL)" in task_names(events, "runner_on_skipped")
    reports = list((pdd / "reports").glob("INC-*-crash-recovery.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert "**Severity**: P1" in text or "**Severity**: P3" in text
    assert "- ✓ + Data check: ohlcv_data:" in text


def test_emergency_stop_unconfirmed_fails_through_ansible_runner(pdd):
    result, events = run(pdd, "playbooks/incidents/emergency_stop.yml", "emergency-stop-unconfirmed")
    assert result.status == "failed" and result.rc == 2
    assert result.stats["failures"] == {HOST: 1}
    failed = [e for e in events if e["event"] == "runner_on_failed"]
    assert [e["event_data"]["task"] for e in failed] == ["Fail when the emergency stop is not complete"]
    cases = junit_cases(pdd, "emergency-stop-unconfirmed")
    # The junit callback reports a failed task as <error> (<failure> is for
    # tasks named with JUNIT_TEST_CASE_PREFIX): exactly one, the final assert.
    errors = [c.get("name") for c in cases if c.find("error") is not None or c.find("failure") is not None]
    assert len(errors) == 1 and "Fail when the emergency stop is not complete" in errors[0], errors
