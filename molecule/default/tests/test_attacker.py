"""The attacker's-eye test (issue 15): the scenario's hosts probed from a third container.

qp-default-probe (molecule/default/prepare.yml) sits on the scenario's network outside the
inventory, with Debian's nmap, openssl, curl and psql, and knows nothing but the CA certificate
that clients are meant to verify against.  From there:
- every open TCP port of the database and monitoring hosts must be one we expect;
- every HTTP endpoint refuses anonymous use (401) over TLS, and plain HTTP serves no data;
- every TLS endpoint refuses TLS 1.1 and offers a certificate that verifies for the host's name;
- PostgreSQL refuses a plaintext login with the right password and a TLS login with a wrong one.
Last, a converge with --diff after the files that hold secrets were removed (so it must write
them again) prints no password, passphrase or private key.  Nothing is mocked.
"""
import json
import os
import pathlib
import subprocess

import pytest
import testinfra

testinfra_hosts = ["podman://qp-default-probe"]

PROJECT = pathlib.Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", pathlib.Path(__file__).resolve().parents[3]))
EPHEMERAL = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
SECRETS = EPHEMERAL / "secrets"
CA = EPHEMERAL / "pki" / "ca.crt"
DB, MON = "qp-default-db", "qp-default-mon"

# Every port a host may have open, with what answers there.  Anything else open is a finding.
EXPECTED_PORTS = {
    DB: {5432: "postgresql", 6379: "redis (TLS)", 9100: "node exporter", 9121: "redis exporter",
         9187: "postgres exporter"},
    MON: {9090: "prometheus", 9093: "alertmanager", 9100: "node exporter"},
}
# HTTP requests an anonymous client must not get answered (method, path).
HTTP_PROBES = {
    9090: [("GET", "/api/v1/query?query=up"), ("GET", "/metrics"), ("GET", "/api/v1/targets")],
    9093: [("GET", "/api/v2/status"), ("GET", "/api/v2/silences"), ("POST", "/api/v2/silences")],
    9100: [("GET", "/metrics")],
    9121: [("GET", "/metrics")],
    9187: [("GET", "/metrics")],
}
SILENCE = json.dumps({"matchers": [{"name": "alertname", "value": ".*", "isRegex": True}],
                      "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2036-01-01T00:00:00Z",
                      "createdBy": "attacker", "comment": "hide everything"})


def _endpoints(kind):
    for host, ports in EXPECTED_PORTS.items():
        for port, name in ports.items():
            if kind == "http" and port in HTTP_PROBES:
                yield pytest.param(host, port, id=f"{host}:{port} {name}")
            if kind == "tls":
                yield pytest.param(host, port, id=f"{host}:{port} {name}")


@pytest.fixture(scope="module", autouse=True)
def ca_in_probe():
    """The probe gets the CA certificate, which is public; never a key or a password."""
    subprocess.run(["podman", "cp", str(CA), "qp-default-probe:/tmp/ca.crt"], check=True)


@pytest.mark.parametrize("target", [DB, MON])
def test_only_expected_ports_are_open(host, target):
    # -sT: a plain TCP connect scan, what any unprivileged client on the network can do.
    scan = host.run(f"nmap -sT -Pn -n -p- -T4 --open -oG - {target}")
    assert scan.rc == 0, scan.stderr
    open_ports = set()
    for line in scan.stdout.splitlines():
        if "Ports:" in line:
            for entry in line.split("Ports:")[1].split(","):
                fields = entry.strip().split("/")
                if len(fields) > 1 and fields[1] == "open":
                    open_ports.add(int(fields[0]))
    assert open_ports, f"nmap found no open port on {target}: {scan.stdout}"
    unexpected = open_ports - set(EXPECTED_PORTS[target])
    assert not unexpected, f"{target} has ports open that nothing expects: {sorted(unexpected)}"


@pytest.mark.parametrize(("target", "port"), list(_endpoints("http")))
def test_http_endpoints_refuse_anonymous_use(host, target, port):
    for method, path in HTTP_PROBES[port]:
        data = f"-H 'Content-Type: application/json' --data '{SILENCE}'" if method == "POST" else ""
        https = host.run(f"curl -s -o /tmp/body -w '%{{http_code}}' --cacert /tmp/ca.crt -X {method} {data} "
                         f"'https://{target}:{port}{path}'")
        assert https.stdout == "401", f"{method} https://{target}:{port}{path} answered {https.stdout} {https.stderr}"
        plain = host.run(f"curl -s -o /tmp/body -w '%{{http_code}}' -X {method} {data} 'http://{target}:{port}{path}'")
        body = host.run("cat /tmp/body 2>/dev/null").stdout
        assert plain.stdout not in ("200", "201", "202"), f"plain http {path} on {target}:{port} answered"
        assert "# HELP" not in body and '"status":"success"' not in body and "silenceID" not in body


@pytest.mark.parametrize(("target", "port"), list(_endpoints("tls")))
def test_tls_endpoints_verify_and_refuse_tls_1_1(host, target, port):
    starttls = "-starttls postgres" if port == 5432 else ""
    good = host.run(f"openssl s_client -connect {target}:{port} {starttls} -tls1_2 -CAfile /tmp/ca.crt "
                    f"-verify_return_error -verify_hostname {target} </dev/null")
    assert good.rc == 0 and "Verify return code: 0 (ok)" in good.stdout, good.stdout[-1500:] + good.stderr[-800:]
    # The client side allows TLS 1.1 (SECLEVEL=0), so a failed handshake is the server's refusal.
    old = host.run(f"openssl s_client -connect {target}:{port} {starttls} -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' "
                   f"</dev/null")
    assert old.rc != 0, f"{target}:{port} accepted TLS 1.1: {old.stdout[-800:]}"
    assert "Cipher is (NONE)" in old.stdout or "alert protocol version" in old.stderr, old.stdout + old.stderr


def _psql(host, password, sslmode):
    conninfo = (f"host={DB} dbname=quant_platform user=reporting sslmode={sslmode} sslrootcert=/tmp/ca.crt "
                "connect_timeout=5")
    return host.run(f"PGPASSWORD='{password}' psql '{conninfo}' -Atc 'SELECT ssl FROM pg_stat_ssl "
                    "WHERE pid = pg_backend_pid()'")


def test_postgresql_refuses_plaintext_and_wrong_passwords(host):
    password = (SECRETS / "reporting").read_text().strip()
    good = _psql(host, password, "verify-full")
    assert good.rc == 0 and good.stdout.strip() == "t", good.stderr
    plain = _psql(host, password, "disable")
    assert plain.rc != 0 and "no encryption" in plain.stderr, plain.stderr
    wrong = _psql(host, password + "x", "verify-full")
    assert wrong.rc != 0 and "password authentication failed" in wrong.stderr, wrong.stderr


def _secrets():
    values = {p.read_text().strip() for p in SECRETS.iterdir() if p.is_file()}
    return sorted(v for v in values if len(v) >= 8)


def test_a_converge_that_rewrites_every_secret_file_prints_no_secret():
    secrets = _secrets()
    assert secrets, f"no secrets found in {SECRETS}"
    removed = {}
    for target in (DB, MON):
        # /etc/ssl holds Debian's own snakeoil key, which no role writes.
        hits = testinfra.get_host(f"podman://{target}").run(
            "grep -rlF --exclude-dir=ssl -e 'PRIVATE KEY' " + " ".join(f"-e '{s}'" for s in secrets) + " /etc")
        removed[target] = [path for path in hits.stdout.split() if path]
        for path in removed[target]:
            testinfra.get_host(f"podman://{target}").run(f"mv '{path}' '{path}.probe-moved'")
    assert removed[DB] and removed[MON], f"no secret-bearing file found: {removed}"
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    run = subprocess.run(["ansible-playbook", "--diff", "-i", INVENTORY, str(PROJECT / "playbooks" / "site.yml")],
                         env=env, capture_output=True, text=True, check=False, timeout=900)
    output = run.stdout + run.stderr
    not_rewritten = []
    for target, paths in removed.items():
        node = testinfra.get_host(f"podman://{target}")
        for path in paths:
            if node.file(path).exists:
                node.run(f"rm -f '{path}.probe-moved'")
            else:  # put it back, then fail below
                node.run(f"mv '{path}.probe-moved' '{path}'")
                not_rewritten.append(f"{target}:{path}")
    assert run.returncode == 0, output[-3000:]
    assert "PRIVATE KEY" not in output
    leaked = [s[:3] + "..." for s in secrets if s in output]
    assert not leaked, f"{len(leaked)} secret(s) printed by a --diff converge: {leaked}"
    assert not not_rewritten, f"secret-bearing files the converge did not write again: {not_rewritten}"
