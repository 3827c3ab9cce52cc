"""Verify the logical backups of scenario backup_restore (roles pg_dump_backup, backup_metrics; issue 4).

Real PostgreSQL 17 + TimescaleDB in the qp-br-db container; nothing is mocked.
dump_steps.yml ran the job through its systemd service, dropped and restored a
table, restored the whole dump into a scratch database, pruned fake-aged dumps
and filled a 16 MiB tmpfs; it left its results in /var/tmp/qp-br/dump.  The
refusal tests below run playbooks/backup/restore.yml against the scenario's
inventory and check that nothing changed.
"""
import json
import os
import re

import pytest
import testinfra

from _helpers import ansible_playbook, assert_refused, metric, psql, unchanged_by
import _helpers

testinfra_hosts = ["podman://qp-br-db"]

DB = testinfra.get_host("podman://qp-br-db")
RESULTS = "/var/tmp/qp-br/dump"
DUMP_DIR = "/var/backups/quantops/pg_dump"
PROM = "/var/lib/prometheus/node-exporter/quantops_backup_pg_dump_quant_platform.prom"
STAMP = re.compile(r"^quant_platform_(\d{8}T\d{6}Z)\.dump$")


def result(name):
    text = DB.file("%s/%s" % (RESULTS, name)).content_string
    return json.loads(text) if name.endswith(".json") else text


def playbook(name, *extra):
    return _helpers.playbook(name, "-e", "restore_source=dump", *extra, timeout=600)


def dumps():
    return sorted(n for n in DB.run("ls -1 %s", DUMP_DIR).stdout.split() if STAMP.match(n))


# --- role -------------------------------------------------------------------------------------

def test_timer_runs_daily_at_2am_and_persists():
    assert DB.service("quantops-pg-dump-backup.timer").is_enabled
    assert DB.service("quantops-pg-dump-backup.timer").is_running
    shown = DB.run("systemctl show quantops-pg-dump-backup.timer -p TimersCalendar -p Persistent").stdout
    assert "OnCalendar=*-*-* 02:00:00" in shown and "Persistent=yes" in shown


def test_dumps_are_verified_custom_format_files_readable_by_postgres_only():
    names = dumps()
    assert names, "no dump in %s" % DUMP_DIR
    newest = names[-1]
    check = DB.run("cd %s && sha256sum --check --strict %s.sha256", DUMP_DIR, newest)
    assert check.rc == 0 and ": OK" in check.stdout
    toc = DB.run("/usr/lib/postgresql/17/bin/pg_restore --list %s/%s", DUMP_DIR, newest)
    assert toc.rc == 0 and "Format: CUSTOM" in toc.stdout and " TABLE DATA public qp_dump_probe " in toc.stdout
    dump = DB.file("%s/%s" % (DUMP_DIR, newest))
    assert (dump.user, dump.group, dump.mode) == ("root", "postgres", 0o640)
    assert DB.file(DUMP_DIR).mode == 0o750
    # no partial or unverified leftovers
    assert not [n for n in DB.run("ls -1A %s", DUMP_DIR).stdout.split() if n.endswith((".partial", ".unverified"))]


def test_tarballs_of_configuration_are_verified():
    names = DB.run("ls -1 /var/backups/quantops/tarballs").stdout.split()
    tars = sorted(n for n in names if n.startswith("postgresql-config_") and n.endswith(".tar.gz"))
    assert tars and tars[-1] + ".sha256" in names
    listing = DB.run("tar -tzf /var/backups/quantops/tarballs/%s", tars[-1])
    assert listing.rc == 0 and "/etc/postgresql/17/main/postgresql.conf" in listing.stdout


def test_log_file_has_the_runs():
    log = DB.file("/var/log/quantops/pg_dump_backup.log").content_string
    assert re.search(r"INFO pg_dump quant_platform: \S+\.dump written and verified \(\d+ bytes, sha256 [0-9a-f]{64}", log)
    assert "run end: exit status 0" in log


def test_metrics_of_the_last_run_drill_and_tarball():
    prom = DB.file(PROM).content_string
    dump = dict(tool="pg_dump", target="quant_platform", type="dump")
    assert metric(prom, "quantops_backup_last_exit_status", **dump) == 0
    assert metric(prom, "quantops_backup_size_bytes", **dump) > 100000
    assert metric(prom, "quantops_backup_last_success_timestamp_seconds", **dump) == \
        metric(prom, "quantops_backup_last_run_timestamp_seconds", **dump)
    drill = dict(tool="pg_dump", target="quant_platform", type="drill")
    assert metric(prom, "quantops_backup_last_verified_timestamp_seconds", **drill) is not None
    assert 0 < metric(prom, "quantops_backup_drill_rto_seconds", **drill) < 600
    assert metric(prom, "quantops_backup_drill_rpo_seconds", **drill) >= 0
    tar = DB.file("/var/lib/prometheus/node-exporter/quantops_backup_tarball_postgresql_config.prom")
    assert metric(tar.content_string, "quantops_backup_last_exit_status", tool="tarball", type="tarball") == 0
    assert metric(tar.content_string, "quantops_backup_last_verified_timestamp_seconds", tool="tarball") is not None


# --- restores -----------------------------------------------------------------------------------

def test_dropped_table_came_back_with_rows_indexes_grants_and_identity():
    before, after = result("probe_before.json"), result("probe_after.json")
    assert after["n"] == before["n"] == 5000
    assert after["md5"] == before["md5"]
    assert after["indexes"] == 2  # primary key + unique index
    assert after["reporting_select"] is True
    assert after["new_id"] == 5001  # the identity sequence was restored at its value
    assert psql(DB, "SELECT obj_description('public.qp_dump_probe'::regclass)") == "backup_restore scenario probe"


def test_scratch_restore_has_every_row_and_was_dropped():
    counts = result("scratch_counts.json")
    restored, production = counts["restored"], counts["production"]
    for table in ("public.ohlcv_data", "public.technical_analysis", "public.factor_scores", "public.qp_dump_probe"):
        assert restored[table] == production[table], table
    assert restored["public.ohlcv_data"] > 1000
    assert psql(DB, "SELECT count(*) FROM pg_database WHERE datname = 'quant_platform_restore_drill'", db="postgres") == "0"


# --- retention ------------------------------------------------------------------------------------

def test_retention_never_deletes_the_newest_verified_dump():
    names = dict(line.split() for line in DB.file(RESULTS + "/retention/names").content_string.splitlines())
    left = result("retention_left").split()
    # A: 45 days, the newest verified -> kept with its .sha256 although past 30 days
    assert names["A"] in left and names["A"] + ".sha256" in left
    # B: 60 days verified, C: 40 days never verified (newer than A) -> deleted
    assert names["B"] not in left and names["B"] + ".sha256" not in left
    assert names["C"] not in left
    log = DB.file(RESULTS + "/retention.log").content_string
    assert "retention: deleting %s/%s" % (RESULTS + "/retention", names["B"]) in log


def test_retention_after_a_run_keeps_the_monthly_dump_and_deletes_the_rest():
    aged = dict(line.split() for line in result("real_dir_aged").splitlines())
    names = DB.run("ls -1A %s", DUMP_DIR).stdout.split()
    assert aged["month_first"] in names and aged["month_first"] + ".sha256" in names  # monthly keep
    for key in ("month_second", "old"):
        assert aged[key] not in names and aged[key] + ".sha256" not in names, key
    log = DB.file("/var/log/quantops/pg_dump_backup.log").content_string
    assert "retention: deleting %s/%s" % (DUMP_DIR, aged["old"]) in log
    assert len([n for n in dumps() if n not in aged.values()]) >= 2  # today's dumps are all kept


# --- faults ---------------------------------------------------------------------------------------

def test_full_disk_is_refused_before_writing():
    fault = result("fault.json")["precheck"]
    assert fault["rc"] == 3
    assert any("REFUSED pg_dump quant_platform: not enough free space" in line for line in fault["stdout"])
    assert metric(fault["metrics"], "quantops_backup_last_exit_status", type="dump") == 3


def test_enospc_during_the_dump_fails_cleanly_and_deletes_nothing():
    fault = result("fault.json")
    enospc = fault["enospc"]
    assert enospc["rc"] == 3
    assert any("No space left on device" in line for line in enospc["stdout"])
    assert any("removed the partial file" in line for line in enospc["stdout"])
    assert not any("retention" in line for line in enospc["stdout"])
    assert metric(enospc["metrics"], "quantops_backup_last_exit_status", type="dump") == 3
    existing = result("small_existing").strip()
    assert existing in fault["left"] and existing + ".sha256" in fault["left"]
    assert not [n for n in fault["left"] if n.endswith(".partial") or (STAMP.match(n) and n != existing)]
    # and the good run afterwards set the status back
    assert metric(DB.file(PROM).content_string, "quantops_backup_last_exit_status", type="dump") == 0


# --- offsite copy (seed 002 weekly S3 upload; rclone to moto's S3 server, prepare.yml) -----------

RCLONE = "rclone --config /etc/quantops-rclone.conf --ca-cert /etc/pgbackrest-s3-ca.crt"


def test_offsite_copy_holds_the_newest_dump_and_its_checksum_byte_for_byte():
    newest = dumps()[-1]
    listed = DB.run("%s lsf moto:qp-dumps/pg_dump" % RCLONE)
    assert listed.rc == 0, listed.stderr
    assert newest in listed.stdout.split() and newest + ".sha256" in listed.stdout.split()
    local = DB.file("%s/%s.sha256" % (DUMP_DIR, newest)).content_string.split()[0]
    remote = DB.run("set -o pipefail; %s cat moto:qp-dumps/pg_dump/%s | sha256sum" % (RCLONE, newest))
    assert remote.rc == 0, remote.stderr
    assert remote.stdout.split()[0] == local
    remote_sum = DB.run("%s cat moto:qp-dumps/pg_dump/%s.sha256" % (RCLONE, newest))
    assert remote_sum.stdout.split()[0] == local
    # the configuration tarballs go the same way
    assert [n for n in listed.stdout.split() if n.startswith("postgresql-config_") and n.endswith(".tar.gz")]


def test_unreachable_offsite_fails_the_job_and_keeps_the_verified_local_dump():
    fault = result("offsite_fault.json")
    assert fault["rc"] == 6
    assert any("offsite copy of" in line and "moto-down:qp-dumps/pg_dump" in line and "failed" in line
               for line in fault["stdout"])
    assert metric(fault["metrics"], "quantops_backup_last_exit_status", type="dump") == 6
    # the dump was written and verified before the copy was tried, and is kept
    assert fault["check_rc"] == 0, fault["left"]
    kept = [n for n in fault["left"] if STAMP.match(n)]
    assert len(kept) == 1 and kept[0] + ".sha256" in fault["left"]
    assert any(line.endswith(": OK") for line in fault["left"])


def test_aws_cli_offsite_copy_holds_the_dump_and_its_checksum_byte_for_byte():
    """aws s3 cp (the role's default tool) to moto's S3 server; read back with rclone, the other tool."""
    run = result("offsite_aws.json")
    assert run["rc"] == 0, run["stdout"]
    local = sorted(n for n in DB.run("ls -1 %s", run["dir"]).stdout.split() if STAMP.match(n))
    assert len(local) == 1
    newest = local[0]
    assert any("offsite copy:" in line and "s3://qp-dumps/pg_dump-aws/" + newest in line for line in run["stdout"])
    listed = DB.run("%s lsf moto:qp-dumps/pg_dump-aws" % RCLONE)
    assert listed.rc == 0, listed.stderr
    assert newest in listed.stdout.split() and newest + ".sha256" in listed.stdout.split()
    digest = DB.file("%s/%s.sha256" % (run["dir"], newest)).content_string.split()[0]
    remote = DB.run("set -o pipefail; %s cat moto:qp-dumps/pg_dump-aws/%s | sha256sum" % (RCLONE, newest))
    assert remote.rc == 0, remote.stderr
    assert remote.stdout.split()[0] == digest


# --- refusals: nothing changes ------------------------------------------------------------------

@pytest.fixture()
def unchanged():
    def state():
        return (psql(DB, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database", db="postgres"),
                psql(DB, "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM public.qp_dump_probe t"),
                psql(DB, "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace"))
    yield from unchanged_by(state)


def test_in_place_without_confirm_is_refused(unchanged):
    run = playbook("restore.yml", "-e", "restore_into=in_place", "-e", '{"restore_tables": ["public.qp_dump_probe"]}')
    assert_refused(run, "add -e restore_confirm=true")


def test_missing_dump_file_is_refused(unchanged):
    run = playbook("restore.yml", "-e", "restore_dump_file=/var/backups/quantops/pg_dump/nope.dump")
    assert_refused(run, "does not exist", "Nothing was changed")


def test_checksum_mismatch_is_refused(unchanged):
    src = result("dump_file").strip()
    bad = "/var/tmp/qp-br/dump/corrupt.dump"
    assert DB.run("cp %s %s && cp %s.sha256 %s.sha256 && printf 'x' >> %s", src, bad, src, bad, bad).rc == 0
    run = playbook("restore.yml", "-e", "restore_dump_file=" + bad)
    assert_refused(run, "Checksum mismatch")


def test_hypertable_single_table_restore_is_refused(unchanged):
    run = playbook("restore.yml", "-e", '{"restore_tables": ["ohlcv_data"]}')
    assert_refused(run, "public.ohlcv_data is a TimescaleDB hypertable")


def test_check_mode_prints_the_plan_and_changes_nothing(unchanged):
    run = playbook("restore.yml", "--check", "-e", "restore_into=in_place", "-e", "restore_confirm=true",
                   "-e", '{"restore_tables": ["public.qp_dump_probe"]}')
    assert run.returncode == 0, run.stdout[-3000:]
    assert "(check mode: nothing will change)" in run.stdout
    assert "tables present now move to schema restore_kept_" in run.stdout


def test_source_database_that_is_not_an_identifier_is_refused_even_for_the_cleanup(unchanged):
    """'quant_platform|' pasted into a regex matched production itself, and the clean-up drops with force."""
    for extra in (["-e", "restore_cleanup_only=true"], []):
        run = playbook("restore.yml", "-e", "restore_database_source=quant_platform|", *extra)
        assert_refused(run, "restore_database_source must be a plain lower-case database name", "Nothing was changed")
    assert "quant_platform" in psql(DB, "SELECT string_agg(datname, ',') FROM pg_database", db="postgres").split(",")


def test_in_place_dump_restore_stops_the_services_first_in_seed_001_order(unchanged):
    run = playbook("restore.yml", "--check", "-e", "restore_into=in_place", "-e", "restore_confirm=true")
    assert run.returncode == 0, run.stdout[-3000:]
    assert ("stop first: trading-signal-bridge -> trading-execution-engine -> trading-risk-manager -> trading-market-data"
            in run.stdout)
    assert "start afterwards (also after a failure): trading-market-data -> trading-risk-manager" in run.stdout


# --- encryption (age) ---------------------------------------------------------------------------

IDENTITY = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "secrets", "age_identity.yml")
ENC_STAMP = re.compile(r"^quant_platform_\d{8}T\d{6}Z\.dump\.age$")


def test_encrypted_dump_is_age_ciphertext_with_no_plaintext_beside_it():
    enc = result("encrypted.json")
    assert "ExecMainStatus=0" in enc["result"], enc["result"]
    listing, check, head, bucket, tarballs = enc["listing"]
    names = listing.split()
    encrypted = [n for n in names if ENC_STAMP.match(n)]
    assert encrypted and encrypted[-1] + ".sha256" in names and enc["dump"].endswith("/" + encrypted[-1]), names
    assert not [n for n in names if n.endswith(".dump") or "partial" in n or "unverified" in n], names
    assert check.strip().endswith(": OK")
    assert head.strip().startswith("age-encryption.org/v1")
    assert encrypted[-1] in bucket.split() and encrypted[-1] + ".sha256" in bucket.split()
    assert [n for n in tarballs.split() if n.endswith(".tar.gz.age")], tarballs
    assert not [n for n in tarballs.split() if n.endswith(".tar.gz")], tarballs
    # The host holds the public key only.
    assert DB.file("/etc/quantops/pg_dump_backup.recipients").content_string.strip() == enc["recipient"]
    assert DB.run("grep -rl AGE-SECRET-KEY /etc /var/backups /root /run /var/tmp").stdout.strip() == ""


def test_encrypted_dump_restores_every_row_and_leaves_no_plaintext():
    restored = result("encrypted_restore.json")
    assert restored["production"] and restored["restored"] == restored["production"]
    assert restored["leftovers"] == []


def test_encrypted_dump_without_the_identity_is_refused(unchanged):
    run = playbook("restore.yml", "-e", "restore_dump_file=" + result("encrypted.json")["dump"])
    assert_refused(run, "pg_dump_backup_encryption_identity", "Nothing was changed")


def test_the_identity_never_shows_in_the_output(unchanged):
    run = playbook("restore.yml", "--check", "--diff", "-e", "@" + IDENTITY,
                   "-e", "restore_dump_file=" + result("encrypted.json")["dump"])
    assert run.returncode == 0, run.stdout[-3000:]
    assert "(check mode: nothing will change)" in run.stdout
    assert "AGE-SECRET-KEY" not in run.stdout
    assert DB.run("ls -A %s | grep -c '^[.]restore-'", DUMP_DIR).stdout.strip() == "0"
    assert DB.run("ls -A /run | grep -c '^quantops-restore-.*[.]key$'").stdout.strip() == "0"


def test_role_refuses_encryption_by_default_with_an_offsite_copy_and_no_recipients(tmp_path):
    config = DB.run("md5sum /etc/quantops/pg_dump_backup.json").stdout
    play = tmp_path / "pg_dump_backup.yml"
    play.write_text("- name: The role with its default encryption setting\n  hosts: database\n  become: true\n"
                    "  roles:\n    - role: quantops.platform.pg_dump_backup\n", encoding="utf-8")
    # molecule.yml turns encryption off for the scenario's own job: put the role's default back.
    run = ansible_playbook(play, "-e", '{"pg_dump_backup_encryption_enabled": "{{ pg_dump_backup_offsite_enabled }}"}',
                           timeout=600)
    assert_refused(run, "pg_dump_backup_encryption_recipients must then list age public keys")
    assert DB.run("md5sum /etc/quantops/pg_dump_backup.json").stdout == config
