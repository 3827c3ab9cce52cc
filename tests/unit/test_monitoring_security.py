"""The monitoring roles' security templates, rendered by Ansible itself.

* roles/prometheus/templates/prometheus.yml.j2 with a two-host inventory:
  every built-in job and the alerts use HTTPS with the pki CA and basic auth
  from password files; a target whose address is not its inventory name gets
  a scrape config of its own with tls_config.server_name and its job label
  set back; ``promtool check config --syntax-only`` accepts the result when
  promtool is unpacked (scripts/promtool-test.sh).
* roles/web_config/templates/web_config.yml.j2: bcrypt hashes only, the TLS
  files and min_version.
* argument_specs.yml of the roles changed for this (and the new web_config
  role) list every default with the same value, and the new switches.

The playbooks run against localhost (connection local) and write only into
pytest's tmp directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "roles" / "prometheus"
WEB_CONFIG = ROOT / "roles" / "web_config"
CA = "/etc/prometheus/prometheus_tls/ca.crt"
SECRET = "unit-Test-prom-Pw-1234"


def _env():
    env = dict(os.environ)
    env.update({"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_RETRY_FILES_ENABLED": "false"})
    return env


def _run(tmp, inventory, play, extra_vars):
    book = Path(tmp) / "play.yml"
    book.write_text(yaml.safe_dump([play], sort_keys=False), encoding="utf-8")
    inv = Path(tmp) / "inventory.yml"
    inv.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    varfile = Path(tmp) / "vars.json"
    varfile.write_text(json.dumps(extra_vars), encoding="utf-8")
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inv), "-e", f"@{varfile}", str(book)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=str(tmp), timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def render_prometheus(tmp, extra=None, db_address=None, inventory=None):
    """prometheus.yml for host mon1 of an inventory mon1 (monitoring) + db1 (database), or of the given one."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    db = dict(local, **({"prometheus_target_address": db_address} if db_address else {}))
    inventory = inventory or {"all": {"children": {"monitoring": {"hosts": {"mon1": local}},
                                                   "database": {"hosts": {"db1": db}}}}}
    out = Path(tmp) / "prometheus.yml"
    play = {"name": "Render prometheus.yml", "hosts": "mon1", "gather_facts": False,
            "vars_files": [str(PROMETHEUS / "defaults" / "main.yml"), str(PROMETHEUS / "vars" / "main.yml")],
            "vars": {"role_path": str(PROMETHEUS), "prometheus_listen_address": "10.0.0.2:9090",
                     "prometheus_slos": []},
            "tasks": [{"name": "Render", "ansible.builtin.template": {
                "src": str(PROMETHEUS / "templates" / "prometheus.yml.j2"), "dest": str(out), "mode": "0600"}}]}
    variables = {"prometheus_web_password": SECRET,
                 "prometheus_scrape_basic_auth": {
                     "alertmanager": {"username": "alertmanager", "password": SECRET + "-am"},
                     "node": {"username": "prometheus", "password": SECRET + "-node"},
                     "postgres": {"username": "prometheus", "password": SECRET + "-pg"}}}
    variables.update(extra or {})
    _run(tmp, inventory, play, variables)
    text = out.read_text(encoding="utf-8")
    return text, yaml.safe_load(text)


def _promtool():
    found = sorted((ROOT / ".cache" / "promtool").glob("*/usr/bin/promtool"))
    return found[-1] if found else None


def _jobs(config):
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_every_builtin_job_and_the_alerts_use_https_with_the_ca_and_basic_auth(tmp_path):
    text, config = render_prometheus(tmp_path)
    jobs = _jobs(config)
    assert sorted(jobs) == ["alertmanager", "node", "postgres", "prometheus"]
    for name, job in jobs.items():
        assert job["scheme"] == "https", name
        assert job["tls_config"] == {"ca_file": CA}, name
        assert job["basic_auth"]["password_file"] == "/etc/prometheus/secrets/%s.password" % name
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["mon1:9090"]}]
    assert jobs["prometheus"]["basic_auth"]["username"] == "prometheus"
    assert jobs["node"]["static_configs"] == [{"targets": ["db1:9100", "mon1:9100"]}]
    assert jobs["postgres"]["static_configs"] == [{"targets": ["db1:9187"]}]
    assert config["alerting"]["alertmanagers"] == [{
        "scheme": "https", "tls_config": {"ca_file": CA},
        "basic_auth": {"username": "alertmanager", "password_file": "/etc/prometheus/secrets/alertmanager.password"},
        "static_configs": [{"targets": ["mon1:9093"]}]}]
    assert SECRET not in text


def test_a_target_whose_address_is_not_its_name_is_checked_against_its_name(tmp_path):
    config = render_prometheus(tmp_path, db_address="10.0.0.5")[1]
    jobs = _jobs(config)
    assert jobs["node"]["static_configs"] == [{"targets": ["mon1:9100"]}]
    for split, port, job in (("node_db1", 9100, "node"), ("postgres_db1", 9187, "postgres")):
        assert jobs[split]["tls_config"] == {"ca_file": CA, "server_name": "db1"}
        assert jobs[split]["static_configs"] == [{"targets": ["10.0.0.5:%d" % port]}]
        assert jobs[split]["relabel_configs"] == [{"target_label": "job", "replacement": job}]
        assert jobs[split]["basic_auth"]["password_file"] == "/etc/prometheus/secrets/%s.password" % job
    assert "postgres" not in jobs  # its only target is db1


def test_plain_http_when_tls_is_turned_off(tmp_path):
    config = render_prometheus(tmp_path, {"prometheus_tls": False, "prometheus_scrape_tls": False}, db_address="10.0.0.5")[1]
    jobs = _jobs(config)
    assert sorted(jobs) == ["alertmanager", "node", "postgres", "prometheus"]
    for job in jobs.values():
        assert "scheme" not in job and "tls_config" not in job
    assert jobs["postgres"]["static_configs"] == [{"targets": ["10.0.0.5:9187"]}]
    assert "scheme" not in config["alerting"]["alertmanagers"][0]


def test_https_application_jobs_get_the_ca(tmp_path):
    config = render_prometheus(tmp_path, {"prometheus_app_jobs": [
        {"name": "collector", "targets": ["db1:8000"], "scheme": "https"},
        {"name": "plain", "targets": ["db1:8001"]}]})[1]
    jobs = _jobs(config)
    assert jobs["collector"]["tls_config"] == {"ca_file": CA}
    assert "tls_config" not in jobs["plain"]


@pytest.mark.skipif(_promtool() is None, reason="promtool not unpacked yet (bash scripts/promtool-test.sh does it)")
@pytest.mark.parametrize("address", [None, "10.0.0.5"])
def test_promtool_accepts_the_rendered_config(tmp_path, address):
    render_prometheus(tmp_path, db_address=address)
    check = subprocess.run([str(_promtool()), "check", "config", "--syntax-only", str(tmp_path / "prometheus.yml")],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_web_config_holds_hashes_tls_files_and_min_version(tmp_path):
    out = tmp_path / "web.yml"
    bcrypt = "$2b$10$" + "a" * 53
    play = {"name": "Render the web config", "hosts": "localhost", "gather_facts": False,
            "vars_files": [str(WEB_CONFIG / "defaults" / "main.yml")],
            "vars": {"__web_config_hashed": {"prometheus": bcrypt}},
            "tasks": [{"name": "Render", "ansible.builtin.template": {
                "src": str(WEB_CONFIG / "templates" / "web_config.yml.j2"), "dest": str(out), "mode": "0600"}}]}
    inventory = {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                                 "ansible_python_interpreter": sys.executable}}}}
    _run(tmp_path, inventory, play, {"web_config_tls_cert_file": "/etc/x/host.crt",
                                     "web_config_tls_key_file": "/etc/x/host.key"})
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert data == {"tls_server_config": {"cert_file": "/etc/x/host.crt", "key_file": "/etc/x/host.key",
                                          "min_version": "TLS12"},
                    "basic_auth_users": {"prometheus": bcrypt}}


SWITCHES = {
    "prometheus": {"prometheus_tls": True, "prometheus_scrape_tls": True, "prometheus_web_auth_required": True,
                   "prometheus_scrape_auth_required": True},
    "alertmanager": {"alertmanager_tls": True, "alertmanager_web_auth_required": True},
    "node_exporter": {"node_exporter_tls": True, "node_exporter_web_auth_required": True},
    "postgres_exporter": {"postgres_exporter_tls": True, "postgres_exporter_web_auth_required": True},
    "web_config": {"web_config_tls_min_version": "TLS12"},
}
# Secrets: no default anywhere; each role's preflight refuses a missing one.
NO_DEFAULT = {"prometheus_web_password", "alertmanager_web_password", "postgres_exporter_password"}


@pytest.mark.parametrize("role", sorted(SWITCHES))
def test_secure_switches_are_on_by_default_and_web_secrets_have_none(role):
    """Prefixes, descriptions, defaults in sync and secrets without defaults are checked for every role
    by test_role_docs.py; here: the TLS/auth switches default to on, and user maps are no_log."""
    base = ROOT / "roles" / role
    defaults = yaml.safe_load((base / "defaults" / "main.yml").read_text(encoding="utf-8"))
    options = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    options = options["argument_specs"]["main"]["options"]
    for name, spec in options.items():
        assert name in defaults or name in NO_DEFAULT or spec.get("required"), name
        if name.endswith(("_users", "_web_auth")):
            assert spec.get("no_log") is True, name
    for name, value in SWITCHES[role].items():
        assert defaults[name] == value, name
    for name in NO_DEFAULT & set(options):
        assert name not in defaults
