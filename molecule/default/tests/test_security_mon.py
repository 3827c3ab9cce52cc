"""The monitoring plane is secure by default (scenario default, real servers).

Prometheus (:9090) and Alertmanager (:9093) on qp-default-mon, the node
exporter (:9100) on both hosts and the postgres exporter (:9187) on
qp-default-db, as playbooks/site.yml converged them with the scenario's
inventory (random passwords under MOLECULE_EPHEMERAL_DIRECTORY/secrets, the
scenario's CA under MOLECULE_EPHEMERAL_DIRECTORY/pki):

* every endpoint serves HTTPS only, with a certificate that verifies against
  pki_dir/ca.crt (and not against the system's CAs), refuses plain HTTP and
  TLS 1.1;
* a request without credentials, or with a wrong password, gets 401 - the
  Alertmanager API too, including POST /api/v2/silences; with credentials it
  works (a silence is created and expired again);
* Prometheus scrapes every target over HTTPS and they are all up;
* the node exporter, the postgres exporter and Alertmanager run as system
  users of their own, and an exporter's user cannot read Alertmanager's
  configuration, its secrets or the other exporter's connection string;
* bad input (a missing password, an empty secret key) stops site.yml in its
  preflight, with a message that names the variable, before any change.
"""
import base64
import datetime
import json
import os
import re
import socket
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest
import testinfra
import yaml
from _helpers import CA_FILE, container_ip, read_secret

testinfra_hosts = ["podman://qp-default-mon"]
MON_NAME, DB_NAME = "qp-default-mon", "qp-default-db"
DB = testinfra.get_host("podman://" + DB_NAME)
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")

# (name, host, port, path, user, secret file)
ENDPOINTS = [
    ("prometheus", MON_NAME, 9090, "/api/v1/targets", "prometheus", "prometheus_web"),
    ("prometheus-metrics", MON_NAME, 9090, "/metrics", "prometheus", "prometheus_web"),
    ("alertmanager", MON_NAME, 9093, "/api/v2/alerts", "alertmanager", "alertmanager_web"),
    ("alertmanager-status", MON_NAME, 9093, "/api/v2/status", "alertmanager", "alertmanager_web"),
    ("node-exporter-mon", MON_NAME, 9100, "/metrics", "prometheus", "scrape"),
    ("node-exporter-db", DB_NAME, 9100, "/metrics", "prometheus", "scrape"),
    ("postgres-exporter", DB_NAME, 9187, "/metrics", "prometheus", "scrape"),
]
IDS = [e[0] for e in ENDPOINTS]


def _context(cafile=str(CA_FILE)):
    return ssl.create_default_context(cafile=cafile)


def _request(url, auth=None, method="GET", body=None, context=None):
    """(status, body) of one request; HTTP errors are returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def _url(host, port, path, scheme="https"):
    return "%s://%s:%d%s" % (scheme, container_ip(host), port, path)


def _silence(comment):
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"matchers": [{"name": "alertname", "value": "QpSecurityTest", "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(), "endsAt": (now + datetime.timedelta(minutes=5)).isoformat(),
            "createdBy": "test_security_mon", "comment": comment}


# --- authentication ---------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_request_without_credentials_gets_401(endpoint):
    host, port, path, user, secret = endpoint[1:]
    url = _url(host, port, path)
    assert _request(url, context=_context())[0] == 401
    assert _request(url, (user, "not-the-password-at-all"), context=_context())[0] == 401
    assert _request(url, ("nobody", read_secret(secret)), context=_context())[0] == 401


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_with_credentials_it_answers_over_https_verified_against_the_ca(endpoint):
    host, port, path, user, secret = endpoint[1:]
    status, body = _request(_url(host, port, path), (user, read_secret(secret)), context=_context())
    assert status == 200, body[:500]
    assert body


def test_no_silence_can_be_created_without_credentials(host):
    url = _url(MON_NAME, 9093, "/api/v2/silences")
    status = _request(url, method="POST", body=_silence("must be refused"), context=_context())[0]
    assert status == 401
    status = _request(url, ("alertmanager", "not-the-password-at-all"), method="POST",
                      body=_silence("must be refused"), context=_context())[0]
    assert status == 401
    auth = ("alertmanager", read_secret("alertmanager_web"))
    silences = json.loads(_request(url, auth, context=_context())[1])
    assert not [s for s in silences if s["comment"] == "must be refused"]


def test_with_credentials_a_silence_is_created_and_expired():
    auth = ("alertmanager", read_secret("alertmanager_web"))
    base = _url(MON_NAME, 9093, "/api/v2")
    status, body = _request(base + "/silences", auth, method="POST", body=_silence("created by the test"),
                            context=_context())
    assert status == 200, body
    silence_id = json.loads(body)["silenceID"]
    try:
        status, body = _request(base + "/silence/" + silence_id, auth, context=_context())
        assert status == 200 and json.loads(body)["status"]["state"] == "active"
    finally:
        assert _request(base + "/silence/" + silence_id, auth, method="DELETE", context=_context())[0] == 200
    assert json.loads(_request(base + "/silence/" + silence_id, auth, context=_context())[1])["status"]["state"] == "expired"


# --- TLS --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_the_certificate_is_the_pki_one(endpoint):
    """Verified against pki_dir/ca.crt only: the system's CAs do not know it."""
    host, port, path, user, secret = endpoint[1:]
    with pytest.raises(urllib.error.URLError) as err:
        _request(_url(host, port, path), (user, read_secret(secret)), context=ssl.create_default_context())
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError)
    # The name in it is the inventory name (what Prometheus and the roles check).
    with socket.create_connection((container_ip(host), port), timeout=10) as sock:
        with _context().wrap_socket(sock, server_hostname=host) as tls:
            names = [v for k, v in tls.getpeercert()["subjectAltName"] if k == "DNS"]
    assert host in names


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_plain_http_is_refused(endpoint):
    host, port, path, user, secret = endpoint[1:]
    status, body = _request(_url(host, port, path, scheme="http"), (user, read_secret(secret)))
    assert status == 400
    assert "HTTPS" in body


def _handshake(host, port, version):
    context = _context()
    context.check_hostname = False
    context.minimum_version = version
    context.maximum_version = version
    # Let this client offer the old protocol at all (OpenSSL 3 refuses it at its default level).
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection((container_ip(host), port), timeout=10) as sock:
        with context.wrap_socket(sock) as tls:
            return tls.version()


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e[3] == "/metrics" or e[0] == "alertmanager"],
                         ids=[e[0] for e in ENDPOINTS if e[3] == "/metrics" or e[0] == "alertmanager"])
def test_tls_1_1_is_refused_and_1_2_accepted(endpoint):
    host, port = endpoint[1:3]
    assert _handshake(host, port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError) as err:
        _handshake(host, port, ssl.TLSVersion.TLSv1_1)
    # The server's refusal (an alert), not this client's inability to offer TLS 1.1.
    assert "PROTOCOL_VERSION" in str(err.value).upper() or "protocol version" in str(err.value), err.value


# --- Prometheus scrapes over HTTPS ------------------------------------------------------------------

def test_every_prometheus_target_is_scraped_over_https_and_up():
    auth = ("prometheus", read_secret("prometheus_web"))
    status, body = _request(_url(MON_NAME, 9090, "/api/v1/targets?state=active"), auth, context=_context())
    assert status == 200
    targets = json.loads(body)["data"]["activeTargets"]
    assert sorted({t["labels"]["job"] for t in targets}) == ["alertmanager", "node", "postgres", "prometheus", "redis"]
    assert [t["scrapeUrl"] for t in targets if not t["scrapeUrl"].startswith("https://")] == []
    assert ["%s: %s" % (t["scrapeUrl"], t["lastError"]) for t in targets if t["health"] != "up"] == []
    status, body = _request(_url(MON_NAME, 9090, "/api/v1/alertmanagers"), auth, context=_context())
    assert [a["url"] for a in json.loads(body)["data"]["activeAlertmanagers"]] == [
        "https://%s:9093/api/v2/alerts" % MON_NAME]


def test_prometheus_yml_checks_every_target_against_the_ca(host):
    data = yaml.safe_load(host.file("/etc/prometheus/prometheus.yml").content_string)
    for job in data["scrape_configs"]:
        assert job["scheme"] == "https", job["job_name"]
        assert job["tls_config"]["ca_file"] == "/etc/prometheus/prometheus_tls/ca.crt", job["job_name"]
        assert job["basic_auth"]["password_file"].startswith("/etc/prometheus/secrets/"), job["job_name"]
        assert "insecure_skip_verify" not in job["tls_config"]
    (am,) = data["alerting"]["alertmanagers"]
    assert am["scheme"] == "https" and am["tls_config"]["ca_file"] == "/etc/prometheus/prometheus_tls/ca.crt"
    assert am["basic_auth"] == {"username": "alertmanager", "password_file": "/etc/prometheus/secrets/alertmanager.password"}
    check = host.run("promtool check config /etc/prometheus/prometheus.yml")
    assert check.rc == 0, check.stdout + check.stderr


# --- service identities and file ownership ----------------------------------------------------------

def _service_user(target, unit):
    pid = target.check_output("systemctl show --property=MainPID --value %s", unit).strip()
    assert pid not in ("", "0"), unit
    return target.check_output("stat -c %%U /proc/%s", pid).strip()


def test_each_service_runs_as_its_own_user(host):
    users = {
        ("mon", "prometheus"): _service_user(host, "prometheus"),
        ("mon", "alertmanager"): _service_user(host, "prometheus-alertmanager"),
        ("mon", "node"): _service_user(host, "prometheus-node-exporter"),
        ("db", "node"): _service_user(DB, "prometheus-node-exporter"),
        ("db", "postgres"): _service_user(DB, "prometheus-postgres-exporter"),
    }
    assert users == {("mon", "prometheus"): "prometheus", ("mon", "alertmanager"): "alertmanager",
                     ("mon", "node"): "node-exporter", ("db", "node"): "node-exporter",
                     ("db", "postgres"): "postgres-exporter"}
    # Distinct groups too: none of them is in another's group.
    for target, user in ((host, "alertmanager"), (host, "node-exporter"), (DB, "postgres-exporter")):
        assert target.user(user).groups == [user], user


@pytest.mark.parametrize("path", [
    "/etc/prometheus/alertmanager.yml",
    "/etc/prometheus/alertmanager_web.yml",
    "/etc/prometheus/alertmanager_tls/host.key",
])
@pytest.mark.parametrize("user", ["node-exporter", "prometheus"])
def test_an_exporter_or_prometheus_cannot_read_alertmanager_config(host, path, user):
    assert host.file(path).exists
    assert host.file(path).mode == 0o640
    assert host.file(path).group == "alertmanager"
    denied = host.run("runuser -u %s -- cat %s", user, path)
    assert denied.rc != 0 and "Permission denied" in denied.stderr
    assert host.run("runuser -u alertmanager -- cat %s", path).rc == 0
    listing = host.run("runuser -u %s -- ls /etc/prometheus/alertmanager_secrets", user)
    assert listing.rc != 0 and "Permission denied" in listing.stderr


def test_the_exporters_cannot_read_each_others_secrets():
    dsn = "/etc/default/prometheus-postgres-exporter"
    assert DB.file(dsn).mode == 0o640 and DB.file(dsn).group == "postgres-exporter"
    for user in ("node-exporter", "prometheus"):
        denied = DB.run("runuser -u %s -- cat %s", user, dsn)
        assert denied.rc != 0 and "Permission denied" in denied.stderr, user
        key = DB.run("runuser -u %s -- cat /etc/prometheus/postgres_exporter_tls/host.key", user)
        assert key.rc != 0, user
    assert DB.run("runuser -u postgres-exporter -- cat /etc/prometheus/node_exporter_tls/host.key").rc != 0
    assert DB.run("runuser -u postgres-exporter -- cat /etc/prometheus/node_exporter_web.yml").rc != 0


@pytest.mark.parametrize("path, group", [
    ("/etc/prometheus/web.yml", "prometheus"),
    ("/etc/prometheus/alertmanager_web.yml", "alertmanager"),
    ("/etc/prometheus/node_exporter_web.yml", "node-exporter"),
])
def test_web_configs_hold_bcrypt_hashes_and_tls_only(host, path, group):
    web = host.file(path)
    assert (web.user, web.group, web.mode) == ("root", group, 0o640)
    text = web.content_string
    assert re.search(r'(?m)^  min_version: "TLS12"$', text), text
    hashes = re.findall(r'(?m)^  "[^"]+": "(\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53})"$', text)
    assert hashes, text
    for secret in ("prometheus_web", "alertmanager_web", "scrape", "grafana_prometheus"):
        assert read_secret(secret) not in text


def test_textfile_collector_still_works_under_the_new_user():
    """The backup job (root) wrote its .prom file; node-exporter reads and exports it."""
    textfile = DB.file("/var/lib/prometheus/node-exporter")
    assert textfile.is_directory and textfile.mode & 0o005 == 0o005
    proms = DB.check_output("ls /var/lib/prometheus/node-exporter").split()
    assert any(name.endswith(".prom") for name in proms), proms
    status, body = _request(_url(DB_NAME, 9100, "/metrics"), ("prometheus", read_secret("scrape")), context=_context())
    assert status == 200
    assert "\nnode_textfile_scrape_error 0\n" in body
    assert "\nquantops_backup_" in body
    assert re.search(r'(?m)^node_scrape_collector_success\{collector="systemd"\} 1$', body)


# --- bad input: refused in the preflight, nothing changed -------------------------------------------

BAD_INPUT = {
    "Prometheus without a password": (
        {"prometheus_web_password": ""}, "prometheus_web_password is not set, or not a string of 12 to 72"),
    # Prometheus's preflight (it runs first) would stop on its alertmanager scrape entry, which
    # takes this password: give it one of its own so that Alertmanager's check speaks.
    "Alertmanager without a password": (
        {"alertmanager_web_password": "",
         "prometheus_scrape_basic_auth": {job: {"username": "u", "password": "not-used-preflight-only"}
                                          for job in ("alertmanager", "node", "postgres", "redis")}},
        "alertmanager_web_password is not set, or not a string of 12 to 72"),
    "node exporter without authentication": (
        {"node_exporter_web_auth": {}}, "node_exporter_web_auth is empty"),
    "empty Grafana secret key": (
        {"grafana_secret_key": ""}, "grafana_secret_key is not set, shorter than 16 characters"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_refused_before_any_change(host, case):
    extra_vars, expected = BAD_INPUT[case]
    watched = [(host, "/etc/prometheus/web.yml"), (host, "/etc/prometheus/alertmanager_web.yml"),
               (host, "/etc/prometheus/prometheus.yml"), (DB, "/etc/prometheus/node_exporter_web.yml")]
    before = [t.file(p).md5sum for t, p in watched]
    run = subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, os.path.join(PROJECT, "playbooks", "site.yml"), "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"),
        timeout=600, check=False)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-2000:]
    assert expected in out, out[-3000:]
    recap = dict(re.findall(r"(qp-default-\w+)\s*:\s*ok=\d+\s+changed=(\d+)", out))
    assert recap == {DB_NAME: "0", MON_NAME: "0"}, out[-2000:]
    assert [t.file(p).md5sum for t, p in watched] == before
    for secret in ("prometheus_web", "alertmanager_web", "scrape", "grafana_secret_key"):
        assert read_secret(secret) not in out
