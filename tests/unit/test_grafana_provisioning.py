"""The grafana role's provisioning files, rendered by Ansible itself, against Grafana's documented format.

The role's templates are rendered with ``ansible.builtin.template`` (a
playbook against localhost, ``connection: local``, writing only into pytest's
tmp directory) from the role's defaults and vars plus test passwords, then
checked against Grafana's provisioning format (apiVersion 1; data sources,
dashboard providers, contact points and policies with their documented keys).

The role's preflight is run the same way (``tasks_from: preflight``, in
check mode): it must pass on the defaults and stop on a dashboard that is not
JSON, on a template data source input, and on bad passwords or contact
points. The dashboard check script it calls is unit-tested directly too.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "grafana"
CHECK_SCRIPT = ROLE / "files" / "grafana_dashboard_check.py"
ADMIN_PASSWORD = "unit-Test-admin-Pw-42"
PG_PASSWORD = "unit-Test-reporting-Pw-7"
PROM_PASSWORD = "unit-Test-prometheus-Pw-5"
SECRET_KEY = "unit-Test-secret-key-0123456789"
WEBHOOK_SECRET = "https://hooks.example.invalid/unit-TOKEN-9"

# Grafana's documented provisioning keys (administration/provisioning and
# alerting/set-up/provision-alerting-resources/file-provisioning).
DATASOURCE_KEYS = {"name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth",
                   "basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonData", "version",
                   "editable"}
PROVIDER_KEYS = {"name", "orgId", "folder", "folderUid", "type", "disableDeletion", "updateIntervalSeconds",
                 "allowUiUpdates", "options"}
RECEIVER_TYPES = {"prometheus-alertmanager", "dingding", "discord", "email", "googlechat", "kafka", "line",
                  "teams", "opsgenie", "pagerduty", "pushover", "slack", "sensugo", "sns", "telegram", "threema",
                  "victorops", "webhook", "webex", "wecom", "oncall"}
POLICY_KEYS = {"orgId", "receiver", "group_by", "matchers", "object_matchers", "mute_time_intervals",
               "group_wait", "group_interval", "repeat_interval", "routes", "continue"}
CONTACT_POINTS = [{"name": "ops-webhook",
                   "receivers": [{"uid": "ops-webhook", "type": "webhook", "settings": {"url": WEBHOOK_SECRET}},
                                 {"uid": "ops-email", "type": "email", "settings": {"addresses": "ops@example.com"}}]}]
POLICIES = [{"receiver": "ops-webhook", "group_by": ["alertname"],
             "routes": [{"receiver": "ops-webhook", "matchers": ["severity = critical"]}]}]
TEMPLATES = ["grafana.ini", "datasources.yml", "dashboards.yml", "alerting.yml"]


def _playbook_env():
    env = dict(os.environ)
    env.update({"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
                "ANSIBLE_RETRY_FILES_ENABLED": "false"})
    return env


def run_playbook(tmp, play, extra_vars=None, check=False):
    """Run a one-play playbook against localhost (connection local); returns the CompletedProcess."""
    book = Path(tmp) / f"play-{len(list(Path(tmp).glob('play-*.yml')))}.yml"
    book.write_text(yaml.safe_dump([play], sort_keys=False), encoding="utf-8")
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}", str(book)]
    if extra_vars is not None:
        varfile = book.with_suffix(".vars.json")
        varfile.write_text(json.dumps(extra_vars), encoding="utf-8")
        cmd[-1:-1] = ["-e", f"@{varfile}"]
    if check:
        cmd.append("--check")
    return subprocess.run(cmd, capture_output=True, text=True, env=_playbook_env(), cwd=str(tmp), timeout=300,
                          check=False)


def render(tmp, extra_vars=None):
    """Render the role's templates with its defaults and vars; returns {name: text}."""
    out = Path(tmp) / "rendered"
    out.mkdir(parents=True, exist_ok=True)
    play = {
        "name": "Render the grafana role's templates",
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "vars": {"role_path": str(ROLE), "grafana_admin_password": ADMIN_PASSWORD,
                 "grafana_postgresql_password": PG_PASSWORD, "grafana_prometheus_password": PROM_PASSWORD,
                 "grafana_secret_key": SECRET_KEY},
        "tasks": [{"name": f"Render {name}",
                   "ansible.builtin.template": {"src": str(ROLE / "templates" / f"{name}.j2"),
                                                "dest": str(out / name), "mode": "0600"}}
                  for name in TEMPLATES],
    }
    result = run_playbook(tmp, play, extra_vars)
    assert result.returncode == 0, result.stdout + result.stderr
    return {name: (out / name).read_text(encoding="utf-8") for name in TEMPLATES}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render(tmp_path_factory.mktemp("grafana-defaults"))


@pytest.fixture(scope="module")
def rendered_alerting(tmp_path_factory):
    return render(tmp_path_factory.mktemp("grafana-alerting"),
                  {"grafana_alerting_contact_points": CONTACT_POINTS, "grafana_alerting_policies": POLICIES,
                   "grafana_postgresql_enabled": False, "grafana_secret_key": "unit-test-secret-key-123"})


@pytest.fixture(scope="module")
def defaults():
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))


def _yaml(text):
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


# --- secrets -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TEMPLATES)
def test_no_secret_in_any_rendered_file(rendered, rendered_alerting, name):
    for text in (rendered[name], rendered_alerting[name] if name != "alerting.yml" else ""):
        assert ADMIN_PASSWORD not in text
        assert PG_PASSWORD not in text
        assert PROM_PASSWORD not in text
        assert SECRET_KEY not in text
        assert "unit-test-secret-key-123" not in text


# --- grafana.ini --------------------------------------------------------------------------------

def _ini(text):
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read_string(text)
    return parser


def test_grafana_ini_settings(rendered):
    ini = _ini(rendered["grafana.ini"])
    assert ini["server"]["http_port"] == "3000"
    # HTTPS by default, with the pki role's certificate installed for Grafana.
    assert ini["server"]["protocol"] == "https"
    assert ini["server"]["cert_file"] == "/etc/grafana/tls/host.crt"
    assert ini["server"]["cert_key"] == "/etc/grafana/tls/host.key"
    assert ini["server"]["min_tls_version"] == "TLS1.2"
    assert ini["server"]["domain"] == "localhost"
    assert ini["server"]["root_url"] == "%(protocol)s://%(domain)s:%(http_port)s/"
    assert ini["security"]["admin_user"] == "admin"
    assert ini["security"]["admin_password"] == "$__file{/etc/grafana/secrets/admin_password}"
    # The secret key is required and read from its file, never written here.
    assert ini["security"]["secret_key"] == "$__file{/etc/grafana/secrets/secret_key}"
    assert ini["analytics"]["reporting_enabled"] == "false"
    assert ini["analytics"]["check_for_updates"] == "false"
    assert ini["users"]["allow_sign_up"] == "false"
    assert ini["auth.anonymous"]["enabled"] == "false"
    assert ini["paths"]["provisioning"] == "/etc/grafana/provisioning"


def test_grafana_ini_secret_key_is_a_file_reference(rendered_alerting):
    ini = _ini(rendered_alerting["grafana.ini"])
    assert ini["security"]["secret_key"] == "$__file{/etc/grafana/secrets/secret_key}"


def test_grafana_ini_plain_http_has_no_certificate(tmp_path):
    ini = _ini(render(tmp_path, {"grafana_protocol": "http"})["grafana.ini"])
    assert ini["server"]["protocol"] == "http"
    assert "cert_file" not in ini["server"] and "cert_key" not in ini["server"]


def test_grafana_ini_extra_is_merged_not_duplicated(tmp_path):
    extra = {"grafana_ini_extra": {"server": {"enforce_domain": True}, "smtp": {"enabled": True, "host": "smtp:25"}}}
    text = render(tmp_path, extra)["grafana.ini"]
    ini = _ini(text)  # strict: a repeated section would raise
    assert ini["server"]["enforce_domain"] == "true"
    assert ini["server"]["http_port"] == "3000"
    assert ini["smtp"]["host"] == "smtp:25"


# --- data sources -------------------------------------------------------------------------------

def test_datasources_format(rendered):
    data = _yaml(rendered["datasources.yml"])
    assert data["apiVersion"] == 1
    assert set(data) <= {"apiVersion", "datasources", "deleteDatasources", "prune"}
    sources = data["datasources"]
    assert [s["uid"] for s in sources] == ["prometheus", "quant-platform-pg"]
    for source in sources:
        assert set(source) <= DATASOURCE_KEYS, set(source) - DATASOURCE_KEYS
        assert {"name", "type", "uid", "access", "url"} <= set(source)
        assert source["access"] in ("proxy", "direct")
        assert isinstance(source.get("jsonData", {}), dict)
    assert [s["name"] for s in sources if s.get("isDefault")] == ["Prometheus"]
    assert len({s["name"] for s in sources}) == len(sources)
    assert data.get("deleteDatasources") == []


def test_prometheus_datasource(rendered, defaults):
    prom = _yaml(rendered["datasources.yml"])["datasources"][0]
    assert prom["type"] == "prometheus"
    # Prometheus on the same host by its inventory name (localhost here), over HTTPS.
    assert defaults["grafana_prometheus_url"] == "https://{{ inventory_hostname }}:9090"
    assert prom["url"] == "https://localhost:9090"
    assert prom["jsonData"]["timeInterval"] == defaults["grafana_prometheus_scrape_interval"]
    # Basic auth and the pki CA, both read by Grafana from files ($__file{}).
    assert prom["basicAuth"] is True
    assert prom["basicAuthUser"] == "prometheus"
    assert prom["jsonData"]["tlsAuthWithCACert"] is True
    assert "tlsSkipVerify" not in prom["jsonData"]
    assert "serverName" not in prom["jsonData"]
    assert prom["secureJsonData"] == {"basicAuthPassword": "$__file{/etc/grafana/secrets/prometheus_password}",
                                      "tlsCACert": "$__file{/etc/grafana/tls/ca.crt}"}


def test_prometheus_datasource_server_name_and_plain_http(tmp_path):
    sources = _yaml(render(tmp_path, {"grafana_prometheus_tls_server_name": "mon1"})["datasources.yml"])["datasources"]
    assert sources[0]["jsonData"]["serverName"] == "mon1"
    plain = _yaml(render(tmp_path, {"grafana_prometheus_url": "http://prom.internal:9090",
                                    "grafana_prometheus_basic_auth": False})["datasources.yml"])["datasources"][0]
    assert plain["url"] == "http://prom.internal:9090"
    assert "basicAuth" not in plain and "secureJsonData" not in plain
    assert "tlsAuthWithCACert" not in plain["jsonData"]


def test_postgresql_datasource_uses_the_reporting_role(rendered):
    pg = _yaml(rendered["datasources.yml"])["datasources"][1]
    assert pg["type"] == "grafana-postgresql-datasource"
    assert pg["url"] == "localhost:5432"
    assert pg["user"] == "reporting"
    assert pg["jsonData"]["database"] == "quant_platform"
    # TLS with the server's certificate checked against the pki CA for the host name.
    assert pg["jsonData"]["sslmode"] == "verify-full"
    assert pg["jsonData"]["tlsConfigurationMethod"] == "file-path"
    assert pg["jsonData"]["sslRootCertFile"] == "/etc/grafana/tls/ca.crt"
    assert pg["jsonData"]["postgresVersion"] == 1500  # an int, as Grafana expects
    assert pg["jsonData"]["timescaledb"] is True
    assert pg["secureJsonData"] == {"password": "$__file{/etc/grafana/secrets/postgresql_password}"}


def test_disabled_postgresql_datasource_is_deleted(rendered_alerting):
    data = _yaml(rendered_alerting["datasources.yml"])
    assert [s["uid"] for s in data["datasources"]] == ["prometheus"]
    assert data["deleteDatasources"] == [{"name": "Quant Platform PostgreSQL", "orgId": 1}]


# --- dashboard provider -------------------------------------------------------------------------

def test_dashboard_provider_format(rendered):
    data = _yaml(rendered["dashboards.yml"])
    assert data["apiVersion"] == 1
    assert set(data) == {"apiVersion", "providers"}
    (provider,) = data["providers"]
    assert set(provider) <= PROVIDER_KEYS
    assert provider["type"] == "file"
    assert provider["folder"] == "Quant Platform"
    assert provider["folderUid"] == "quant-platform"
    assert isinstance(provider["updateIntervalSeconds"], int) and provider["updateIntervalSeconds"] > 0
    assert provider["options"]["foldersFromFilesStructure"] is False  # Grafana ignores folder when true


def test_provider_path_is_where_the_dashboards_are_installed(rendered):
    path = _yaml(rendered["dashboards.yml"])["providers"][0]["options"]["path"]
    assert path == "/etc/grafana/dashboards/quant-platform"
    tasks = yaml.safe_load((ROLE / "tasks" / "configure.yml").read_text(encoding="utf-8"))
    (install,) = [t for t in tasks if t["name"] == "Install the dashboards"]
    assert install["ansible.builtin.copy"]["dest"].startswith("{{ grafana_dashboards_dir }}/")
    provider_tpl = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
    assert provider_tpl["__grafana_dashboards_file"]["providers"][0]["options"]["path"] == "{{ grafana_dashboards_dir }}"


# --- alerting -----------------------------------------------------------------------------------

def test_alerting_without_contact_points_is_valid(rendered):
    assert _yaml(rendered["alerting.yml"]) == {"apiVersion": 1}


def test_contact_points_and_policies_format(rendered_alerting):
    data = _yaml(rendered_alerting["alerting.yml"])
    assert data["apiVersion"] == 1
    assert set(data) <= {"apiVersion", "contactPoints", "deleteContactPoints", "policies", "resetPolicies",
                         "templates", "deleteTemplates", "muteTimes", "deleteMuteTimes", "groups", "deleteRules"}
    names = set()
    for point in data["contactPoints"]:
        assert set(point) <= {"orgId", "name", "receivers"}
        assert isinstance(point["name"], str) and point["receivers"]
        names.add(point["name"])
        for receiver in point["receivers"]:
            assert {"uid", "type", "settings"} <= set(receiver)
            assert receiver["type"] in RECEIVER_TYPES
            assert isinstance(receiver["settings"], dict)
    for policy in data["policies"]:
        assert set(policy) <= POLICY_KEYS
        assert policy["receiver"] in names
        for route in policy.get("routes", []):
            assert route["receiver"] in names
    assert data["contactPoints"][0]["receivers"][0]["settings"]["url"] == WEBHOOK_SECRET


def test_contact_point_task_hides_its_secrets():
    tasks = yaml.safe_load((ROLE / "tasks" / "configure.yml").read_text(encoding="utf-8"))
    (task,) = [t for t in tasks if t.get("ansible.builtin.template", {}).get("src") == "alerting.yml.j2"]
    assert "grafana_alerting_contact_points | length > 0" in task["no_log"]
    assert "grafana_alerting_contact_points | length == 0" in task["diff"]
    secrets = [t for t in tasks if "secrets_dir" in str(t.get("ansible.builtin.copy", {}).get("dest", ""))]
    # admin password, PostgreSQL and Prometheus data source passwords, secret key
    assert len(secrets) == 4
    for task in secrets:
        assert task["no_log"] is True and task["diff"] is False
    # grafana.ini: never diffed, its output hidden when grafana_ini_extra may carry a secret.
    (ini,) = [t for t in tasks if t.get("ansible.builtin.template", {}).get("src") == "grafana.ini.j2"]
    assert ini["diff"] is False
    assert "grafana_ini_extra | length > 0" in ini["no_log"]


# --- the dashboard check script -----------------------------------------------------------------

def _load_check():
    spec = importlib.util.spec_from_file_location("grafana_dashboard_check", CHECK_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECK = _load_check()
UIDS = ["prometheus", "quant-platform-pg"]


def _dash(uid="d1", panels=None, **extra):
    data = {"uid": uid, "title": "T", "panels": panels if panels is not None else [
        {"id": 1, "type": "timeseries", "title": "p", "datasource": {"type": "prometheus", "uid": "prometheus"},
         "targets": [{"refId": "A", "expr": "up", "datasource": {"type": "prometheus", "uid": "prometheus"}}]}]}
    data.update(extra)
    return json.dumps(data)


def test_check_accepts_the_builtin_dashboards():
    files = sorted((ROLE / "files" / "dashboards").glob("*.json"))
    assert len(files) == 10
    assert CHECK.grafana_dashboard_problems([str(f) for f in files], UIDS) == []


@pytest.mark.parametrize("text, expected", [
    ('{"uid": "x", "title": "X", "panels": [', "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    (_dash(uid="bad uid!"), "uid 'bad uid!'"),
    (_dash(title=""), "no title"),
    (_dash(panels={}), 'no "panels" list'),
    (_dash(__inputs=[{"name": "DS_PROMETHEUS"}]), "__inputs"),
    (_dash(panels=[{"id": 1, "title": "p", "type": "stat",
                    "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}}]), "template input"),
    (_dash(panels=[{"id": 1, "title": "p", "type": "stat", "datasource": "Prometheus"}]), "given by name"),
    (_dash(panels=[{"id": 1, "title": "p", "type": "stat", "datasource": {"type": "loki", "uid": "loki"}}]),
     "'loki' is not provisioned"),
    (_dash(panels=[{"id": 1, "title": "a", "type": "row", "panels": [{"id": 1, "title": "b", "type": "stat"}]}]),
     "panel id 1 is used by"),
    (_dash(panels=[{"id": 1, "title": "p", "type": "stat", "targets": [
        {"refId": "A", "datasource": {"type": "grafana-postgresql-datasource", "uid": "other-pg"}}]}]),
     "'other-pg' is not provisioned"),
])
def test_check_reports_a_bad_dashboard(tmp_path, text, expected):
    path = tmp_path / "d.json"
    path.write_text(text, encoding="utf-8")
    problems = CHECK.grafana_dashboard_problems([str(path)], UIDS)
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith(str(path))


def test_check_reports_repeated_uids_and_file_names(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for sub in ("a", "b"):
        (tmp_path / sub / "same.json").write_text(_dash(uid="u-" + sub), encoding="utf-8")
    (tmp_path / "c.json").write_text(_dash(uid="u-a"), encoding="utf-8")
    problems = CHECK.grafana_dashboard_problems(
        [str(tmp_path / "a" / "same.json"), str(tmp_path / "b" / "same.json"), str(tmp_path / "c.json")], UIDS)
    assert any("same file name" in p for p in problems)
    assert any("uid 'u-a' is also the uid of" in p for p in problems)


def test_check_allows_grafana_builtin_datasources(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(_dash(annotations={"list": [{"name": "a", "datasource": {"type": "grafana", "uid": "-- Grafana --"}}]}),
                    encoding="utf-8")
    assert CHECK.grafana_dashboard_problems([str(path)], UIDS) == []
    assert CHECK.grafana_dashboard_problems([str(path)], []) != []  # the panel's prometheus is then unknown


def test_check_command_line(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(_dash(), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    result = subprocess.run([sys.executable, str(CHECK_SCRIPT), "--uid=prometheus", "--uid", "quant-platform-pg", "--",
                             str(good), str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    problems = json.loads(result.stdout)
    assert len(problems) == 1 and problems[0].startswith(str(bad))
    usage = subprocess.run([sys.executable, str(CHECK_SCRIPT), "--uid"], capture_output=True, text=True, check=False)
    assert usage.returncode == 2


# --- the role's preflight, run against localhost in check mode ----------------------------------

def preflight(tmp, extra_vars):
    play = {"name": "Run the grafana role's preflight", "hosts": "localhost", "gather_facts": False,
            "tasks": [{"name": "Preflight",
                       "ansible.builtin.include_role": {"name": str(ROLE), "tasks_from": "preflight"}}]}
    variables = {"grafana_admin_password": ADMIN_PASSWORD, "grafana_postgresql_password": PG_PASSWORD,
                 "grafana_prometheus_password": PROM_PASSWORD, "grafana_secret_key": SECRET_KEY}
    variables.update(extra_vars)
    variables = {k: v for k, v in variables.items() if v is not None}
    return run_playbook(tmp, play, variables, check=True)


def test_preflight_passes_on_the_defaults(tmp_path):
    result = preflight(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert ADMIN_PASSWORD not in result.stdout + result.stderr


def test_preflight_stops_on_a_dashboard_that_is_not_json(tmp_path):
    extra = tmp_path / "dashboards"
    extra.mkdir()
    (extra / "good.json").write_text(_dash(uid="extra-good"), encoding="utf-8")
    (extra / "broken.json").write_text('{"uid": "broken", "panels": [', encoding="utf-8")
    result = preflight(tmp_path, {"grafana_dashboards_extra_dirs": [str(extra)]})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{extra}/broken.json: not valid JSON" in output
    assert "good.json" not in output.split("could not load as they are:", 1)[1].split("\n", 1)[0]


def test_preflight_stops_on_a_template_datasource_input(tmp_path):
    extra = tmp_path / "dashboards"
    extra.mkdir()
    (extra / "exported.json").write_text(_dash(uid="exported", panels=[
        {"id": 1, "title": "p", "type": "stat", "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}}]),
        encoding="utf-8")
    result = preflight(tmp_path, {"grafana_dashboards_extra_dirs": [str(extra)]})
    assert result.returncode != 0
    assert "is a template input" in result.stdout + result.stderr


def test_preflight_stops_when_a_dashboard_needs_a_disabled_datasource(tmp_path):
    result = preflight(tmp_path, {"grafana_postgresql_enabled": False})
    assert result.returncode != 0
    assert "'quant-platform-pg' is not provisioned" in result.stdout + result.stderr
    ok = preflight(tmp_path, {"grafana_postgresql_enabled": False, "grafana_postgresql_password": None,
                              "grafana_dashboards": ["database", "system", "api", "backtest", "trading-overview",
                                                     "risk", "backups"]})
    assert ok.returncode == 0, ok.stdout + ok.stderr


@pytest.mark.parametrize("extra, message", [
    ({"grafana_admin_password": None}, "grafana_admin_password"),
    ({"grafana_admin_password": "admin"}, "grafana_admin_password is not set, shorter than 12"),
    ({"grafana_admin_password": "short-pw"}, "grafana_admin_password is not set, shorter than 12"),
    ({"grafana_postgresql_password": "has-a-$dollar-sign"}, 'contains "$"'),
    ({"grafana_alerting_contact_points": CONTACT_POINTS,
      "grafana_alerting_policies": [{"receiver": "nobody"}]}, "must name a contact point"),
    ({"grafana_install": True, "grafana_config_dir": "/srv/grafana"}, "must be /etc/grafana"),
    ({"grafana_secret_key": None}, "grafana_secret_key is not set, shorter than 16 characters"),
    ({"grafana_secret_key": ""}, "grafana_secret_key is not set, shorter than 16 characters"),
    ({"grafana_secret_key": "too-short"}, "grafana_secret_key is not set, shorter than 16 characters"),
    ({"grafana_prometheus_password": None}, "grafana_prometheus_password is not set"),
])
def test_preflight_refuses_bad_input(tmp_path, extra, message):
    result = preflight(tmp_path, extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output, textwrap.shorten(output, 2000)
    for secret in (PG_PASSWORD, PROM_PASSWORD, SECRET_KEY, "has-a-$dollar-sign"):
        assert secret not in output
