"""PostgreSQL secure by default (issue 15), on the converged scenario hosts.

TLS with the pki role's certificate, checked from the monitoring container the
way Grafana's data source and the reporting clients connect (over the podman
network, not loopback); plaintext, wrong-password and TLS 1.1 logins refused;
connection/DDL logging and no password text in the log or in
pg_stat_statements; and the restart policy, with real runs of the
postgresql role against the running server.
"""
import json
import os
import pathlib
import re
import subprocess
import tempfile

import pytest
import testinfra

testinfra_hosts = ["podman://qp-default-db"]
MON = testinfra.get_host("podman://qp-default-mon")
DB_NAME = "qp-default-db"
EPHEMERAL = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
SECRETS = EPHEMERAL / "secrets"
PKI_DIR = EPHEMERAL / "pki"
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
TLS_DIR = "/etc/postgresql/17/main/tls"
MON_CA = "/tmp/qp-test-pki-ca.crt"
SERVER_LOG = "/var/log/postgresql/postgresql-17-main.log"


def psql(host, sql, db="quant_platform"):
    cmd = host.run("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s", db, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def secret(name):
    path = SECRETS / name
    assert path.is_file(), "molecule converge should have generated %s" % path
    return path.read_text().split()[0]


@pytest.fixture(scope="module")
def mon_client():
    """psql and the pki CA on the monitoring container (a remote client of the database)."""
    if MON.run("command -v psql").rc != 0:
        install = MON.run("apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                          "--no-install-recommends postgresql-client")
        assert install.rc == 0, install.stderr
    ca = PKI_DIR / "ca.crt"
    assert ca.is_file(), "the pki role should have made its CA in %s" % PKI_DIR
    subprocess.run(["podman", "cp", str(ca), "qp-default-mon:" + MON_CA], check=True, timeout=60)
    return MON


def remote_psql(client, conninfo, password, sql="SELECT 1"):
    return client.run("env PGPASSWORD=%s PGCONNECT_TIMEOUT=10 psql -XAtq -v ON_ERROR_STOP=1 %s -c %s",
                      password, conninfo, sql)


def conninfo(sslmode, user="reporting"):
    extra = " sslrootcert=%s" % MON_CA if sslmode.startswith("verify") else ""
    return "host=%s port=5432 dbname=quant_platform user=%s sslmode=%s%s" % (DB_NAME, user, sslmode, extra)


# --- TLS ----------------------------------------------------------------------------

def test_ssl_is_on_with_the_pki_certificate(host):
    assert psql(host, "SHOW ssl") == "on"
    assert psql(host, "SHOW ssl_cert_file") == TLS_DIR + "/host.crt"
    assert psql(host, "SHOW ssl_key_file") == TLS_DIR + "/host.key"
    assert psql(host, "SHOW ssl_min_protocol_version") == "TLSv1.2"
    # The installed certificate is the one the pki role issued for this host.
    assert host.file(TLS_DIR + "/host.crt").content_string == (PKI_DIR / (DB_NAME + ".crt")).read_text()
    assert host.file(TLS_DIR + "/ca.crt").content_string == (PKI_DIR / "ca.crt").read_text()
    key = host.file(TLS_DIR + "/host.key")
    assert (key.user, key.group, key.mode) == ("root", "postgres", 0o640)


def test_server_certificate_chains_to_the_pki_ca(mon_client):
    out = mon_client.run("echo | openssl s_client -starttls postgres -connect %s:5432 -CAfile %s "
                         "-verify_hostname %s -verify_return_error", DB_NAME, MON_CA, DB_NAME)
    assert out.rc == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Verify return code: 0 (ok)" in out.stdout
    assert re.search(r"subject=.*CN\s*=\s*%s" % DB_NAME, out.stdout), out.stdout[:2000]


def test_verify_full_login_from_the_monitoring_host(host, mon_client):
    out = remote_psql(mon_client, conninfo("verify-full"), secret("reporting"),
                      "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert out.rc == 0, out.stderr
    ssl, version = out.stdout.strip().split("|")
    assert ssl == "t" and version in ("TLSv1.2", "TLSv1.3")
    # log_connections / log_disconnections put that session in the server log, with its TLS.
    log = host.file(SERVER_LOG).content_string
    assert re.search(r"connection authorized: user=reporting database=quant_platform "
                     r"application_name=psql SSL enabled \(protocol=TLSv1\.[23]", log)
    assert re.search(r"disconnection: session time: .* user=reporting database=quant_platform host=10\.", log)


def test_plaintext_remote_login_is_refused(mon_client):
    out = remote_psql(mon_client, conninfo("disable"), secret("reporting"))
    assert out.rc != 0
    assert 'no pg_hba.conf entry for host' in out.stderr and "no encryption" in out.stderr, out.stderr


def test_wrong_password_is_refused(mon_client):
    out = remote_psql(mon_client, conninfo("verify-full"), "not-the-password-123")
    assert out.rc != 0
    assert 'password authentication failed for user "reporting"' in out.stderr, out.stderr


def test_tls_1_1_is_refused_by_the_server(mon_client):
    # SECLEVEL=0 lets the client offer TLS 1.1 at all: the refusal must come from the server.
    old = mon_client.run("echo | openssl s_client -starttls postgres -connect %s:5432 -tls1_1 "
                         "-cipher DEFAULT:@SECLEVEL=0", DB_NAME)
    assert old.rc != 0
    assert "alert protocol version" in old.stdout + old.stderr, old.stdout[-1500:] + old.stderr[-1500:]
    current = mon_client.run("echo | openssl s_client -starttls postgres -connect %s:5432 -tls1_2 -CAfile %s",
                             DB_NAME, MON_CA)
    assert current.rc == 0 and "Protocol: TLSv1.2" in current.stdout, current.stdout[-1500:]


def test_remote_hba_lines_are_hostssl(host):
    rules = psql(host, "SELECT type, coalesce(address, ''), auth_method FROM pg_hba_file_rules "
                       "WHERE error IS NULL", db="postgres").splitlines()
    for rule in rules:
        kind, address, method = rule.split("|")
        if kind == "host":
            assert address in ("127.0.0.1", "::1"), rule
        assert method not in ("trust", "password", "md5"), rule
    assert "hostssl|10.0.0.0|scram-sha-256" in rules


# --- logging and statement statistics ---------------------------------------------

def test_logging_and_track_utility(host):
    assert psql(host, "SHOW log_connections") == "on"
    assert psql(host, "SHOW log_disconnections") == "on"
    assert psql(host, "SHOW log_statement") == "ddl"
    assert psql(host, "SHOW pg_stat_statements.track_utility") == "off"


def test_no_password_in_the_server_log_or_statement_statistics(host):
    log = host.file(SERVER_LOG).content_string
    # DDL is logged (log_statement=ddl), so the platform's own CREATE TABLE statements are there ...
    assert re.search(r"(statement|execute [^:]*): CREATE ", log)
    # ... but no password of a role the roles created.
    for name in ("quant_app", "reporting", "postgres_exporter"):
        assert secret(name) not in log, "the %s password is in %s" % (name, SERVER_LOG)
    assert psql(host, "SELECT count(*) FROM pg_stat_statements "
                      "WHERE query ~* '(CREATE|ALTER) +(ROLE|USER)'") == "0"


# --- restart policy -----------------------------------------------------------------

PLAYBOOK = """
- name: The postgresql role alone
  hosts: database
  become: true
  roles:
    - role: quantops.platform.postgresql
"""


def run_role(extra_vars):
    with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="qp-pg-role-", delete=False) as handle:
        handle.write(PLAYBOOK)
    try:
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        run = subprocess.run(["ansible-playbook", "-i", INVENTORY, handle.name, "-e", json.dumps(extra_vars)],
                             capture_output=True, text=True, env=env, timeout=600, check=False, cwd=PROJECT)
    finally:
        os.unlink(handle.name)
    return run, run.stdout + run.stderr


def test_restart_policy_never_then_rolling(host):
    start = psql(host, "SELECT pg_postmaster_start_time()")
    before = int(psql(host, "SHOW max_locks_per_transaction"))
    wanted = before * 2
    try:
        # never: the file changes and is reloaded, the postmaster keeps running, the run says why.
        run, out = run_role({"postgresql_settings": {"max_locks_per_transaction": wanted},
                             "postgresql_restart_policy": "never"})
        assert run.returncode == 0, out[-3000:]
        assert ("PostgreSQL on %s: settings pending a restart: max_locks_per_transaction. "
                "postgresql_restart_policy=never: NOT restarted" % DB_NAME) in out, out[-3000:]
        assert psql(host, "SELECT pg_postmaster_start_time()") == start
        assert int(psql(host, "SHOW max_locks_per_transaction")) == before
        assert psql(host, "SELECT name FROM pg_settings WHERE pending_restart") == "max_locks_per_transaction"

        # rolling (the default): the same files, and the setting left pending is applied by a restart.
        run, out = run_role({"postgresql_settings": {"max_locks_per_transaction": wanted}})
        assert run.returncode == 0, out[-3000:]
        assert "postgresql_restart_policy=rolling: restarting this host" in out, out[-3000:]
        assert re.search(r"TASK \[quantops\.platform\.postgresql : Restart PostgreSQL on %s\] \*+\n"
                         r"changed: " % DB_NAME, out), out[-3000:]
        restarted = psql(host, "SELECT pg_postmaster_start_time()")
        assert restarted != start
        assert int(psql(host, "SHOW max_locks_per_transaction")) == wanted
        assert psql(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"
    finally:
        # Back to the converged settings (a rolling restart again).
        run, out = run_role({})
        assert run.returncode == 0, out[-3000:]
    assert int(psql(host, "SHOW max_locks_per_transaction")) == before
    assert psql(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"


# --- files PostgreSQL cannot load are never left in place -------------------------

def test_a_setting_postgresql_cannot_load_is_put_back(host):
    conf = "/etc/postgresql/17/main/conf.d/50-quantops.conf"
    before = host.file(conf).md5sum
    start = psql(host, "SELECT pg_postmaster_start_time()")
    # Valid syntax, invalid value: pg_file_settings alone does not see it, postgres -C does.
    run, out = run_role({"postgresql_settings": {"work_mem": "lots"}})
    assert run.returncode != 0, out[-3000:]
    assert "PostgreSQL on %s cannot load the configuration files" % DB_NAME in out, out[-3000:]
    assert 'invalid value for parameter \\"work_mem\\": \\"lots\\"' in out or \
        'invalid value for parameter "work_mem": "lots"' in out, out[-3000:]
    assert "the files this run wrote were put back as they were (%s)" % conf in out, out[-3000:]
    assert host.file(conf).md5sum == before
    assert "lots" not in host.file(conf).content_string
    # Nothing was reloaded with it, nothing restarted, nothing left pending.
    assert psql(host, "SELECT pg_postmaster_start_time()") == start
    assert psql(host, "SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL") == "0"
    assert host.run("runuser -u postgres -- /usr/lib/postgresql/17/bin/postgres "
                    "--config-file=/etc/postgresql/17/main/postgresql.conf -C data_directory").rc == 0
