"""Verify the database host converged by playbooks/site.yml (scenario default).

Every test talks to the real PostgreSQL 17 + TimescaleDB running under systemd
in the container; nothing is mocked.
"""
import os
import pathlib

import pytest

testinfra_hosts = ["podman://qp-default-db"]

SECRETS = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "secrets"


def psql(host, sql, db="quant_platform"):
    """Run SQL as the postgres OS user over the unix socket; return stripped stdout."""
    cmd = host.run("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s",
                   db, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def psql_tcp(host, user, password, sql):
    """Run SQL over TCP on 127.0.0.1 with a password (scram-sha-256 in pg_hba)."""
    return host.run("env PGPASSWORD=%s psql -XAtq -v ON_ERROR_STOP=1 -h 127.0.0.1 -U %s "
                    "-d quant_platform -c %s", password, user, sql)


@pytest.fixture(scope="module")
def reporting_password():
    path = SECRETS / "reporting"
    assert path.is_file(), "molecule converge should have generated %s" % path
    return path.read_text().split()[0]


def test_postgresql_17_runs_under_systemd(host):
    svc = host.service("postgresql@17-main")
    assert svc.is_running
    assert svc.is_enabled
    assert psql(host, "SHOW server_version_num").startswith("17")


def test_cluster_has_data_checksums_and_utf8(host):
    assert psql(host, "SHOW data_checksums") == "on"
    assert psql(host, "SHOW server_encoding") == "UTF8"


def test_settings_come_from_conf_d_not_postgresql_conf(host):
    rows = psql(host, "SELECT DISTINCT sourcefile FROM pg_settings WHERE name IN "
                      "('shared_buffers', 'work_mem', 'shared_preload_libraries')")
    assert set(rows.splitlines()) == {
        "/etc/postgresql/17/main/conf.d/50-quantops.conf",
        "/etc/postgresql/17/main/conf.d/60-timescaledb.conf",
    }


def test_shared_buffers_is_a_quarter_of_the_container_memory(host):
    # timescaledb-tune: shared_buffers = RAM / 4, where RAM is the smaller of
    # the host's memory and the container's cgroup limit (2 GiB here).
    limit = int(host.file("/sys/fs/cgroup/memory/memory.limit_in_bytes").content_string.strip())
    meminfo = host.file("/proc/meminfo").content_string
    memtotal_kb = int(meminfo.split("MemTotal:")[1].split()[0])
    ram = min(limit, memtotal_kb * 1024)
    assert ram == 2 * 1024 ** 3, "scenario runs the container with --memory=2g"
    blocks = int(psql(host, "SELECT setting FROM pg_settings WHERE name = 'shared_buffers'"))
    assert blocks * 8192 == ram // 4


def test_no_restart_left_pending(host):
    assert psql(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"


def test_timescaledb_is_preloaded_with_an_explicit_license(host):
    assert psql(host, "SHOW shared_preload_libraries").split(",")[0] == "timescaledb"
    assert psql(host, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    assert psql(host, "SHOW timescaledb.license") == "apache"


def test_extensions_present(host):
    names = set(psql(host, "SELECT extname FROM pg_extension").splitlines())
    assert {"timescaledb", "pg_stat_statements", "pgcrypto"} <= names


def test_ohlcv_data_is_a_hypertable_with_chunks_and_real_rows(host):
    chunks = int(psql(host, "SELECT count(*) FROM timescaledb_information.chunks "
                            "WHERE hypertable_name = 'ohlcv_data'"))
    assert chunks > 10
    rows = psql(host, "SELECT region || ':' || count(*) FROM ohlcv_data GROUP BY region ORDER BY region")
    counts = dict(line.split(":") for line in rows.splitlines())
    assert set(counts) == {"CRYPTO", "FX", "US"}
    assert int(counts["US"]) > 10000


def test_seed_index_exists(host):
    indexdef = psql(host, "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_ohlcv_ticker_region_date'")
    assert "(ticker, region, date DESC)" in indexdef


def test_tables_are_owned_by_the_application_role(host):
    owners = psql(host, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename IN ('ohlcv_data', 'technical_analysis', 'factor_scores')")
    assert owners == "quant_app"


def test_pg_hba_allows_tcp_only_with_scram(host):
    methods = psql(host, "SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type LIKE 'host%'")
    assert methods.splitlines() == ["scram-sha-256"]
    assert psql(host, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL") == "0"


def test_reporting_role_can_read(host, reporting_password):
    res = psql_tcp(host, "reporting", reporting_password, "SELECT count(*) > 0 FROM ohlcv_data")
    assert res.rc == 0, res.stderr
    assert res.stdout.strip() == "t"


@pytest.mark.parametrize("statement", [
    "INSERT INTO ohlcv_data (ticker, region, date) VALUES ('X', 'US', '2020-01-02')",
    "UPDATE factor_scores SET score = 0",
    "DELETE FROM technical_analysis",
    "CREATE TABLE public.reporting_was_here (id int)",
])
def test_reporting_role_cannot_write(host, reporting_password, statement):
    res = psql_tcp(host, "reporting", reporting_password, statement)
    assert res.rc != 0
    assert "permission denied" in res.stderr


def test_wrong_password_is_refused(host, reporting_password):
    res = psql_tcp(host, "reporting", reporting_password + "x", "SELECT 1")
    assert res.rc != 0
    assert "password authentication failed" in res.stderr


def test_no_secret_in_postgresql_conf_d(host, reporting_password):
    for name in ("50-quantops.conf", "60-timescaledb.conf"):
        content = host.file("/etc/postgresql/17/main/conf.d/" + name).content_string
        assert reporting_password not in content
