"""Bad input stops playbooks/site.yml in its preflight, before anything changes.

Each case runs the real site.yml against the converged scenario host with one
wrong variable, and checks that the run failed, that the message names the
variable and says what to set, and that no task reported a change.
"""
import json
import os
import re
import subprocess

import pytest

testinfra_hosts = ["podman://qp-default-db"]

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
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_before_any_change(host, case):
    extra_vars, expected = CASES[case]
    before = host.file("/etc/postgresql/17/main/conf.d/50-quantops.conf").md5sum
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    run = subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, os.path.join(PROJECT, "playbooks", "site.yml"),
         "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-2000:]
    assert expected in out, out[-3000:]
    recap = re.search(r"qp-default-db\s*:\s*ok=\d+\s+changed=(\d+)", out)
    assert recap and recap.group(1) == "0", out[-2000:]
    assert host.file("/etc/postgresql/17/main/conf.d/50-quantops.conf").md5sum == before
    for name, value in extra_vars.items():
        if "password" in name:
            assert value not in out, "a password was printed"
