"""The Patroni cluster of scenario ha, tested from the controller against the real containers.

Three members (qp-ha-db1..3, PostgreSQL 17 + TimescaleDB, Patroni, etcd) and one endpoint host
(qp-ha-ep, HAProxy + PgBouncer).  The controller cannot resolve the containers' names, so it
uses their addresses, which are in every host certificate (pki_host_sans), and verifies every
TLS connection against the scenario's CA.  Nothing is mocked.
"""
import base64
import concurrent.futures
import json
import os
import pathlib
import ssl
import subprocess
import threading
import urllib.error
import urllib.request

import psycopg
import pytest

testinfra_hosts = ["podman://qp-ha-db1"]

EPHEMERAL = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
SECRETS = EPHEMERAL / "secrets"
CA = str(EPHEMERAL / "pki" / "ca.crt")
MEMBERS = ["qp-ha-db1", "qp-ha-db2", "qp-ha-db3"]
EP = "qp-ha-ep"
MAX_CONNECTIONS = 50          # postgresql_max_connections of the scenario


def address(name):
    out = subprocess.run(["podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


ADDR = {name: address(name) for name in MEMBERS + [EP]}
NAME_OF = {ip: name for name, ip in ADDR.items()}


def secret(name):
    return (SECRETS / name).read_text(encoding="utf-8").strip()


def api(member, path, method="GET", body=None, auth=None):
    """Patroni's REST API over HTTPS, the certificate verified against the CA."""
    request = urllib.request.Request(f"https://{ADDR[member]}:8008{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    context = ssl.create_default_context(cafile=CA)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if text.startswith(("{", "[")) else text)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def cluster():
    for member in MEMBERS:
        try:
            status, body = api(member, "/cluster")
        except OSError:
            continue
        if status == 200:
            return body
    raise AssertionError("no member answers GET /cluster")


def leader_name():
    leaders = [m["name"] for m in cluster()["members"] if m["role"] == "leader"]
    return leaders[0] if len(leaders) == 1 else None


def connect(port, host=EP, dbname="quant_platform", **kwargs):
    return psycopg.connect(host=ADDR[host], port=port, dbname=dbname, user="quant_app",
                           password=secret("quant_app"), sslmode="verify-ca", sslrootcert=CA,
                           connect_timeout=5, **kwargs)


def test_one_leader_and_two_streaming_replicas():
    members = cluster()["members"]
    assert sorted(m["name"] for m in members) == MEMBERS
    assert [m["state"] for m in members if m["role"] == "leader"] == ["running"]
    replicas = [m for m in members if m["role"] != "leader"]
    assert len(replicas) == 2 and all(m["state"] == "streaming" for m in replicas), members
    # Synchronous mode (the scenario's choice): one of them is the synchronous standby.
    assert [m["role"] for m in replicas].count("sync_standby") == 1, members
    leader = leader_name()
    with psycopg.connect(host=ADDR[leader], port=5432, dbname="postgres", user="quant_app",
                         password=secret("quant_app"), sslmode="verify-ca", sslrootcert=CA) as conn:
        rows = conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone()
    assert rows is not None


def test_every_member_preloads_timescaledb_with_the_tuned_settings(host):
    for member in MEMBERS:
        # shared_preload_libraries is readable by superusers (and pg_read_all_settings) only.
        preload = host.get_host(f"podman://{member}").check_output(
            "runuser -u postgres -- psql -XAt -h /var/run/postgresql -c 'SHOW shared_preload_libraries'")
        assert preload.split(",")[0] == "timescaledb", (member, preload)
        with psycopg.connect(host=ADDR[member], port=5432, dbname="quant_platform", user="quant_app",
                             password=secret("quant_app"), sslmode="verify-ca", sslrootcert=CA) as conn:
            assert conn.execute("SHOW max_connections").fetchone()[0] == str(MAX_CONNECTIONS)
            assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
            assert conn.execute("SHOW ssl").fetchone()[0] == "on"
    # The tuning is in the DCS (Patroni's dynamic configuration), not in a file of one member.
    status, config = api(MEMBERS[0], "/config")
    assert status == 200
    assert {"shared_buffers", "effective_cache_size", "work_mem", "max_worker_processes"} <= set(config["postgresql"]["parameters"])
    # No pg_createcluster cluster on a member.
    assert host.run("pg_lsclusters -h").stdout.strip() == ""


def test_writes_through_the_read_write_port_land_on_the_leader():
    leader = leader_name()
    with connect(5000) as conn:
        in_recovery, server = conn.execute("SELECT pg_is_in_recovery(), host(inet_server_addr())").fetchone()
        conn.execute("CREATE TABLE IF NOT EXISTS ha_probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), note text)")
        conn.execute("INSERT INTO ha_probe (note) VALUES ('through :5000')")
    assert in_recovery is False
    assert NAME_OF[server] == leader


def test_the_read_only_port_answers_only_from_replicas():
    leader = leader_name()
    seen = set()
    for attempt in range(8):
        with connect(5001) as conn:
            in_recovery, server = conn.execute("SELECT pg_is_in_recovery(), host(inet_server_addr())").fetchone()
            assert in_recovery is True, attempt
            seen.add(NAME_OF[server])
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("CREATE TABLE ro_probe (id int)")
    assert leader not in seen
    assert seen == set(MEMBERS) - {leader}, "round robin over both replicas"


def test_pgbouncer_serves_more_clients_than_max_connections_in_transaction_mode():
    clients = MAX_CONNECTIONS * 3
    barrier = threading.Barrier(clients)

    def one_client(number):
        with connect(6432, prepare_threshold=None) as conn:
            conn.autocommit = True
            barrier.wait(timeout=60)      # every client connected at the same time
            for value in (number, number + 1000, number + 2000):
                assert conn.execute("SELECT %s::int", (value,)).fetchone()[0] == value
            return True

    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one_client, range(clients)))
    assert results == [True] * clients
    # The leader saw at most one pool's worth of PgBouncer's connections, never one per client.
    with connect(5000) as conn:
        servers = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'quant_app' "
                               "AND client_addr = %s::inet", (ADDR[EP],)).fetchone()[0]
    assert servers <= 25 + 5, servers


def test_pgbouncer_keeps_no_password_and_refuses_a_wrong_one(host):
    ep = host.get_host(f"podman://{EP}")
    userlist = ep.file("/etc/pgbouncer/userlist.txt").content_string
    assert all(line.startswith(";") or not line.strip() for line in userlist.splitlines()), userlist
    assert "pool_mode = transaction" in ep.file("/etc/pgbouncer/pgbouncer.ini").content_string
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=ADDR[EP], port=6432, dbname="quant_platform", user="quant_app",
                        password="not-the-password", sslmode="verify-ca", sslrootcert=CA, connect_timeout=5)
    # Superusers are never looked up: postgres cannot log in through PgBouncer.
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=ADDR[EP], port=6432, dbname="postgres", user="postgres",
                        password=secret("postgres"), sslmode="verify-ca", sslrootcert=CA, connect_timeout=5)


def test_the_rest_api_uses_tls_and_refuses_writes_without_credentials():
    member = MEMBERS[0]
    # Plain HTTP gets no answer from the TLS listener.
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"http://{ADDR[member]}:8008/cluster", timeout=5).read()
    # Write endpoints: no credentials and wrong credentials are refused, the right ones accepted.
    assert api(member, "/config", "PATCH", {})[0] == 401
    assert api(member, "/restart", "POST", {})[0] == 401
    assert api(member, "/switchover", "POST", {"leader": leader_name()})[0] == 401
    assert api(member, "/config", "PATCH", {}, auth=("patroni", "wrong-password-1234"))[0] == 401
    # The right credentials: a PATCH that sets ttl to the value it has (an empty PATCH is a 400).
    ttl = api(member, "/config")[1]["ttl"]
    assert api(member, "/config", "PATCH", {"ttl": ttl}, auth=("patroni", secret("patroni_api")))[0] == 200


def etcd_health(member, cert=None):
    context = ssl.create_default_context(cafile=CA)
    if cert:
        context.load_cert_chain(str(EPHEMERAL / "pki" / f"{cert}.crt"), str(EPHEMERAL / "pki" / f"{cert}.key"))
    with urllib.request.urlopen(f"https://{ADDR[member]}:2379/health", context=context, timeout=5) as response:
        return json.loads(response.read().decode())


def test_etcd_requires_tls_client_certificates():
    for member in MEMBERS:
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError, OSError)):
            etcd_health(member)          # no client certificate
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://{ADDR[member]}:2379/health", timeout=5).read()
        assert etcd_health(member, cert=member)["health"] == "true"
