"""Verify scenario backup_restore: pgBackRest repository host + database host (issue 4).

Everything runs against the real servers in the two containers (PostgreSQL 17 +
TimescaleDB, pgBackRest 2.55.1 TLS servers, node_exporter); nothing is mocked.
side_effect.yml left its step results in /var/tmp/qp-br on the database host;
the refusal and fault tests below drive playbooks and kill real processes.
"""
import json
import os
import re
import stat
import time

import pytest
import testinfra

from _helpers import ROOT, ansible_playbook, assert_refused, metric, playbook, psql, unchanged_by

testinfra_hosts = ["podman://qp-br-db"]

DB = testinfra.get_host("podman://qp-br-db")
REPO = testinfra.get_host("podman://qp-br-repo")
PG_DATA = "/var/lib/postgresql/17/main"
TEXTFILE = "/var/lib/prometheus/node-exporter"
SERVICES = ["trading-market-data", "trading-risk-manager", "trading-execution-engine", "trading-signal-bridge"]
SECRETS = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "secrets")


def backrest_info(host=REPO, repo=None):
    """pgbackrest info of stanza main: every repository, or only repo N."""
    opt = " --repo=%d" % repo if repo else ""
    cmd = host.run("runuser -u postgres -- pgbackrest --stanza=main%s --output=json info" % opt)
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)[0]


def prom(host, path):
    return host.file(path).content_string if host.file(path).exists else ""


# --- role ----------------------------------------------------------------------------------------

def test_archiving_goes_to_pgbackrest_with_rpo_bound():
    assert psql(DB, "SHOW archive_mode") == "on"
    assert psql(DB, "SHOW archive_command") == "pgbackrest --stanza=main archive-push %p"
    assert psql(DB, "SHOW archive_timeout") == "1min"
    conf = DB.file("/etc/postgresql/17/main/conf.d/70-pgbackrest.conf")
    assert conf.exists and "archive-push" in conf.content_string
    assert "archive_command" not in DB.file("/etc/postgresql/17/main/postgresql.conf").content_string.split("include_dir")[-1]
    # WAL really reaches the repository: no failures since the last reset, and an archived segment.
    assert psql(DB, "SELECT last_archived_wal IS NOT NULL FROM pg_stat_archiver", db="postgres") == "t"


def test_repository_is_encrypted_on_its_own_host_over_tls():
    info = backrest_info()
    assert info["status"]["code"] == 0, info["status"]
    assert info["cipher"] == "aes-256-cbc"
    conf = REPO.file("/etc/pgbackrest.conf")
    assert conf.mode == 0o640 and conf.user == "root" and conf.group == "postgres"
    assert "repo1-cipher-pass=" in conf.content_string
    db_conf = DB.file("/etc/pgbackrest.conf").content_string
    assert "repo1-host=qp-br-repo" in db_conf and "repo1-host-type=tls" in db_conf
    assert "repo1-cipher-pass" not in db_conf
    assert REPO.file("/var/lib/pgbackrest/backup/main").is_directory
    assert not DB.file("/var/lib/pgbackrest/backup").exists
    for host in (DB, REPO):
        assert host.service("pgbackrest").is_running
        assert host.socket("tcp://0.0.0.0:8432").is_listening
    # The encrypted backup.info is OpenSSL ciphertext, not pgBackRest's plain INI.
    assert REPO.run("head -c 8 /var/lib/pgbackrest/backup/main/backup.info").stdout == "Salted__"
    assert REPO.run("grep -c backrest-format /var/lib/pgbackrest/backup/main/backup.info").rc != 0


def test_backups_are_bundled_with_block_maps():
    """The role's defaults from make bench-backup: repo-bundle and repo-block on repo1 (and repo2)."""
    conf = REPO.file("/etc/pgbackrest.conf").content_string
    for line in ("repo1-bundle=y", "repo1-block=y", "repo2-bundle=y", "repo2-block=y", "compress-type=zst", "compress-level=1"):
        assert line in conf.splitlines(), line
    fulls = [b for b in backrest_info(repo=1)["backup"] if b["type"] == "full"]
    assert fulls
    # A block incremental full writes block maps (info reports their size) and bundles its files.
    assert fulls[-1]["info"]["repository"].get("size-map", 0) > 0, fulls[-1]["info"]
    assert REPO.file("/var/lib/pgbackrest/backup/main/%s/bundle" % fulls[-1]["label"]).is_directory


def test_tls_server_refuses_a_client_certificate_not_from_the_ca():
    cmd = DB.run("timeout 5 openssl s_client -connect qp-br-repo:8432 -CAfile /etc/pgbackrest/tls/ca.crt </dev/null")
    assert "Verify return code: 0" in cmd.stdout + cmd.stderr  # the server's certificate is valid for its name
    ok = DB.run("runuser -u postgres -- pgbackrest --stanza=main --output=json info")
    assert json.loads(ok.stdout)[0]["status"]["code"] == 0
    # Same CN, but self-signed: the repository's TLS server must refuse it.
    assert DB.run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=qp-br-db -days 1 "
                  "-keyout /tmp/qp-br-rogue.key -out /tmp/qp-br-rogue.crt && chown postgres /tmp/qp-br-rogue.*"
                  " && chmod 600 /tmp/qp-br-rogue.key").rc == 0
    rogue = DB.run("runuser -u postgres -- pgbackrest --stanza=main --repo1-host-cert-file=/tmp/qp-br-rogue.crt "
                   "--repo1-host-key-file=/tmp/qp-br-rogue.key --output=json info")
    DB.run("rm -f /tmp/qp-br-rogue.key /tmp/qp-br-rogue.crt")
    assert json.loads(rogue.stdout)[0]["status"]["code"] != 0


def test_timers_follow_seed_002():
    full = REPO.file("/etc/systemd/system/quantops-pgbackrest-main-full.timer").content_string
    diff = REPO.file("/etc/systemd/system/quantops-pgbackrest-main-diff.timer").content_string
    assert "OnCalendar=Sun *-*-* 03:00:00" in full
    assert "OnCalendar=*-*-* 02:00:00" in diff
    for t in ("quantops-pgbackrest-main-full.timer", "quantops-pgbackrest-main-diff.timer"):
        assert REPO.service(t).is_enabled
        assert REPO.run("systemctl is-active %s", t).stdout.strip() == "active"


def test_archive_push_queue_is_bounded_so_a_dead_repository_cannot_fill_pg_wal():
    conf = DB.file("/etc/pgbackrest.conf").content_string
    assert "archive-push-queue-max=4GiB" in conf
    # pgBackRest reads the option: its help shows the configured value.
    shown = DB.run("runuser -u postgres -- pgbackrest --stanza=main help archive-push archive-push-queue-max")
    assert shown.rc == 0, shown.stderr
    assert "current: 4GiB" in shown.stdout or "current: 4294967296" in shown.stdout, shown.stdout


def test_repository_verification_runs_weekly_and_reports_its_result():
    timer = REPO.file("/etc/systemd/system/quantops-pgbackrest-verify-main.timer").content_string
    assert "OnCalendar=Sun *-*-* 06:00:00" in timer
    assert REPO.service("quantops-pgbackrest-verify-main.timer").is_enabled
    assert REPO.run("systemctl is-active quantops-pgbackrest-verify-main.timer").stdout.strip() == "active"
    before = time.time()
    run = REPO.run("systemctl start quantops-pgbackrest-verify@main.service")
    log = REPO.run("journalctl -u quantops-pgbackrest-verify@main.service -n 40 --no-pager").stdout
    assert run.rc == 0, log
    text = prom(REPO, TEXTFILE + "/quantops_backup_pgbackrest_main.prom")
    assert metric(text, "quantops_backup_verify_last_exit_status", tool="pgbackrest", target="main", type="verify") == 0
    assert metric(text, "quantops_backup_verify_last_success_timestamp_seconds", type="verify") >= int(before)
    # A passing check is not a backup: the backup families carry no type="verify" series.
    assert metric(text, "quantops_backup_last_success_timestamp_seconds", type="verify") is None


def test_a_converge_with_diff_shows_no_passphrase_and_no_private_key(tmp_path):
    """Rewrite pgbackrest.conf on both hosts and the TLS key on the database host; --diff must not show them."""
    secrets = [open(os.path.join(SECRETS, name), encoding="utf-8").read().split()[0]
               for name in ("pgbackrest_repo", "pgbackrest_repo2", "s3_secret")]
    for host in (DB, REPO):
        assert host.run("sed -i 's/^log-level-console=.*/log-level-console=warn/' /etc/pgbackrest.conf").rc == 0
    assert DB.run("echo >> /etc/pgbackrest/tls/host.key").rc == 0
    play = tmp_path / "pgbackrest.yml"
    play.write_text("- name: pgBackRest with --diff\n  hosts: database:backup_repo\n  become: true\n"
                    "  roles:\n    - role: quantops.platform.pgbackrest\n", encoding="utf-8")
    run = ansible_playbook(play, "--diff")
    assert run.returncode == 0, run.stdout[-3000:]
    assert re.search(r"qp-br-db\s*: ok=\d+\s+changed=[1-9]", run.stdout), run.stdout[-2000:]
    assert "PRIVATE KEY" not in run.stdout
    for secret in secrets:
        assert secret not in run.stdout
    for host in (DB, REPO):
        # backup: true would have kept the old passphrases in /etc/pgbackrest.conf.<date>~
        assert host.run("ls -A /etc | grep -c '^pgbackrest.conf.*~$'").stdout.strip() == "0"
        assert "log-level-console=info" in host.file("/etc/pgbackrest.conf").content_string
    assert json.loads(DB.run("runuser -u postgres -- pgbackrest --stanza=main --output=json info").stdout)[0]["status"]["code"] == 0


def test_backup_run_was_reported_through_metrics():
    text = prom(REPO, TEXTFILE + "/quantops_backup_pgbackrest_main.prom")
    assert metric(text, "quantops_backup_last_exit_status", tool="pgbackrest", target="main", type="full") == 0
    assert metric(text, "quantops_backup_size_bytes", type="full") > 0
    assert metric(text, "quantops_backup_last_success_timestamp_seconds", type="full") > time.time() - 3600


# --- PITR, in place, drill (side_effect.yml) -----------------------------------------------------

def test_pitr_restores_exactly_the_markers_committed_before_t():
    assert DB.file("/var/tmp/qp-br/pitr_target").exists
    assert DB.file("/var/tmp/qp-br/pitr_markers").content_string.strip() == "1"
    # The scratch cluster was removed afterwards and production was never touched.
    assert not DB.file("/var/lib/postgresql/quantops-restore/main-5433").exists


def test_in_place_restore_brought_the_data_back_and_the_services_up():
    before = json.loads(DB.file("/var/tmp/qp-br/before_in_place.json").content_string)
    after = json.loads(DB.file("/var/tmp/qp-br/after_in_place.json").content_string)
    assert before["ohlcv"] > 0 and before["markers"] == 2
    assert (after["ohlcv"], after["markers"]) == (before["ohlcv"], before["markers"])
    assert psql(DB, "SELECT pg_is_in_recovery()", db="postgres") == "f"
    for svc in SERVICES:
        assert DB.service(svc).is_running, svc
    rollback = DB.run("ls -d %s.rollback-*", PG_DATA)
    assert rollback.rc == 0 and rollback.stdout.strip(), "the replaced data directory must be kept"


def test_drill_metrics_in_textfile_and_node_exporter():
    text = prom(DB, TEXTFILE + "/quantops_backup_pgbackrest_main.prom")
    verified = metric(text, "quantops_backup_last_verified_timestamp_seconds", type="drill")
    assert verified and verified > time.time() - 3600
    rto = metric(text, "quantops_backup_drill_rto_seconds", type="drill")
    rpo = metric(text, "quantops_backup_drill_rpo_seconds", type="drill")
    assert rto is not None and 0 < rto < 600
    assert rpo is not None and 0 <= rpo < 600
    addr = DB.run("hostname -I").stdout.split()[0]
    scraped = DB.run("python3 -c %s", "import urllib.request;print(urllib.request.urlopen('http://%s:9100/metrics').read().decode())" % addr)
    assert scraped.rc == 0, scraped.stderr
    assert 'quantops_backup_drill_rto_seconds{target="main",tool="pgbackrest",type="drill"}' in scraped.stdout \
        or re.search(r'quantops_backup_drill_rto_seconds\{[^}]*type="drill"', scraped.stdout)


# --- bad input: refused, nothing changed ----------------------------------------------------------

@pytest.fixture()
def unchanged():
    """Production's identity before a refused run; asserted unchanged after it."""
    def state():
        return (DB.run("stat -c %%i %s", PG_DATA).stdout.strip(),
                psql(DB, "SELECT pg_postmaster_start_time()", db="postgres"),
                DB.run("ls /var/lib/postgresql/quantops-restore 2>/dev/null").stdout.strip(),
                tuple(DB.service(s).is_running for s in SERVICES))
    yield from unchanged_by(state)


def test_in_place_without_confirm_is_refused(unchanged):
    run = playbook("restore.yml", "-e", "restore_into=in_place")
    assert_refused(run, "restore_confirm=true")


def test_target_time_before_oldest_backup_is_refused(unchanged):
    run = playbook("restore.yml", "-e", "restore_target_time='2001-01-01 00:00:00+00'")
    assert_refused(run, "cannot be reached", "oldest backup")


def test_unknown_label_is_refused(unchanged):
    run = playbook("restore.yml", "-e", "restore_set=20000101-000000F")
    assert_refused(run, "is not a backup of stanza 'main'")


def test_check_mode_prints_the_plan_and_changes_nothing(unchanged):
    run = playbook("restore.yml", "--check", "-e", "restore_into=in_place", "-e", "restore_confirm=true")
    assert run.returncode == 0, run.stdout[-2000:]
    assert "check mode: nothing will change" in run.stdout
    assert "trading-signal-bridge -> trading-execution-engine -> trading-risk-manager -> trading-market-data" in run.stdout
    assert re.search(r"qp-br-db\s*: ok=\d+\s+changed=0", run.stdout)


def test_in_place_on_more_than_one_host_is_refused(unchanged):
    run = playbook("restore.yml", "-e", "restore_hosts=all", "-e", "restore_into=in_place", "-e", "restore_confirm=true")
    assert_refused(run, "runs on exactly one host", "Nothing was changed")


@pytest.mark.parametrize("root", ["/", "/var/lib/postgresql/quantops-restore/../..", "var/lib/postgresql/quantops-restore",
                                  "/var/lib/postgresql"])
@pytest.mark.parametrize("mode", ["restore", "cleanup"])
def test_scratch_root_outside_the_allowed_roots_is_refused(unchanged, root, mode):
    extra = ["-e", "restore_cleanup_only=true"] if mode == "cleanup" else []
    run = playbook("restore.yml", "-e", "restore_scratch_root=" + root, *extra)
    assert_refused(run, "restore_scratch_root must be an absolute, normalised path", "Nothing was changed")


def test_drill_refuses_when_the_scratch_cluster_does_not_fit(unchanged):
    run = playbook("verify.yml", "-e", "drill_space_reserve_bytes=1000000000000000")
    assert_refused(run, "RESTORE DRILL REFUSED: not enough free space", "Nothing was changed")


def test_unfinished_in_place_restore_is_refused_and_its_copy_survives_the_cleanup():
    copies = DB.run("ls -d %s.rollback-*", PG_DATA).stdout.split()
    assert copies, "side_effect's in-place restore keeps a rollback copy"
    marker = PG_DATA + ".restore-in-progress"
    assert DB.run("printf '%%s\\n' %s > %s", copies[-1], marker).rc == 0
    try:
        run = playbook("restore.yml", "-e", "restore_into=in_place", "-e", "restore_confirm=true")
        assert_refused(run, "did not finish", copies[-1], "Nothing was changed")
        cleanup = playbook("restore.yml", "-e", "restore_cleanup_only=true")
        assert cleanup.returncode == 0, cleanup.stdout[-2000:]
        assert "the only good copy" in cleanup.stdout
        assert DB.file(copies[-1]).is_directory
    finally:
        DB.run("rm -f %s", marker)


def test_failed_in_place_restore_puts_the_original_back_and_the_services_up():
    """A recovery target the WAL never reaches: PostgreSQL stops with FATAL during recovery; the rescue rolls back."""
    inode = DB.run("stat -c %%i %s", PG_DATA).stdout.strip()
    counts = psql(DB, "SELECT (SELECT count(*) FROM ohlcv_data) || ',' || (SELECT count(*) FROM public.qp_backup_markers)")
    copies = sorted(DB.run("ls -d %s.rollback-*", PG_DATA).stdout.split())
    run = playbook("restore.yml", "-e", "restore_into=in_place", "-e", "restore_confirm=true",
                   "-e", "restore_target_name=qp_no_such_restore_point")
    assert_refused(run, "Rolled back: the original data directory was moved back")
    assert DB.run("stat -c %%i %s", PG_DATA).stdout.strip() == inode
    assert psql(DB, "SELECT pg_is_in_recovery()", db="postgres") == "f"
    assert psql(DB, "SELECT (SELECT count(*) FROM ohlcv_data) || ',' || (SELECT count(*) FROM public.qp_backup_markers)") == counts
    for svc in SERVICES:
        assert DB.service(svc).is_running, svc
    assert sorted(DB.run("ls -d %s.rollback-*", PG_DATA).stdout.split()) == copies
    assert not DB.file(PG_DATA + ".restore-in-progress").exists


def test_incident_snapshot_is_fetched_readable_by_its_owner_only(tmp_path):
    run = ansible_playbook(os.path.join(ROOT, "playbooks", "incidents", "triage.yml"), "-e", "incident_reports_dir=" + str(tmp_path))
    snapshots = list(tmp_path.glob("incident-*.tar.gz"))
    assert snapshots, run.stdout[-3000:]
    for path in snapshots:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# --- faults -------------------------------------------------------------------------------------

def test_kill_postmaster_during_backup_fails_the_job_and_earlier_backups_still_restore():
    labels_before = [b["label"] for b in backrest_info(repo=1)["backup"]]
    REPO.run("systemctl reset-failed 'quantops-pgbackrest-backup@main:full.service'")
    assert REPO.run("systemctl start --no-block 'quantops-pgbackrest-backup@main:full.service'").rc == 0
    # Wait until pgBackRest has started the backup on the database (pg_backup_start), then kill -9 the postmaster.
    killed = DB.run(
        "for i in $(seq 600); do "
        "  if runuser -u postgres -- psql -XAtq -d postgres "
        "     -c \"SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'pgBackRest%%backup%%'\" | grep -q 1; then "
        "    kill -9 $(head -1 %s/postmaster.pid); echo killed; exit 0; fi; sleep 0.1; done; exit 1" % PG_DATA)
    assert killed.rc == 0 and "killed" in killed.stdout, "the backup never reached the database"
    for dummy in range(120):
        state = REPO.run("systemctl show -p ActiveState --value 'quantops-pgbackrest-backup@main:full.service'").stdout.strip()
        if state in ("failed", "inactive"):
            break
        time.sleep(1)
    assert state == "failed"
    text = prom(REPO, TEXTFILE + "/quantops_backup_pgbackrest_main.prom")
    assert metric(text, "quantops_backup_last_exit_status", type="full") != 0
    # Bring PostgreSQL back; the earlier backups are intact and the drill still passes.
    assert DB.run("systemctl start postgresql@17-main").rc == 0
    DB.run("runuser -u postgres -- psql -XAtq -d postgres -c 'SELECT 1'")
    info = backrest_info(repo=1)
    assert [b["label"] for b in info["backup"]] == labels_before
    drill = playbook("verify.yml")
    assert drill.returncode == 0, drill.stdout[-3000:]


def test_full_backup_disk_fails_cleanly_and_retention_deletes_nothing():
    labels_before = [b["label"] for b in backrest_info(repo=1)["backup"]]
    offsite_before = [b["label"] for b in backrest_info(repo=2)["backup"]]
    avail = int(REPO.run("df --output=avail -B1 /var/lib/pgbackrest | tail -1").stdout.strip())
    assert REPO.run("fallocate -l %s /var/lib/pgbackrest/qp-br-filler", str(max(avail - 2 * 1024 * 1024, 0))).rc == 0
    try:
        REPO.run("systemctl reset-failed 'quantops-pgbackrest-backup@main:full.service'")
        run = REPO.run("systemctl start 'quantops-pgbackrest-backup@main:full.service'")
        assert run.rc != 0
        log = REPO.run("journalctl -u 'quantops-pgbackrest-backup@main:full.service' -n 60 --no-pager").stdout
        # pgBackRest: ERROR [064] FileWriteError "unable to write" when the repository filesystem is full.
        assert "unable to write" in log or "No space left on device" in log
        text = prom(REPO, TEXTFILE + "/quantops_backup_pgbackrest_main.prom")
        assert metric(text, "quantops_backup_last_exit_status", type="full") != 0
        # repo1 full does not stop the offsite copy: the same run still backed up to repo2.
        assert metric(text_offsite(), "quantops_backup_last_exit_status", type="full") == 0
    finally:
        REPO.run("rm -f /var/lib/pgbackrest/qp-br-filler")
    info = backrest_info(repo=1)
    assert [b["label"] for b in info["backup"]] == labels_before, "retention must not expire anything after a failed backup"
    assert info["status"]["code"] == 0
    offsite = [b["label"] for b in backrest_info(repo=2)["backup"]]
    assert offsite[-1] not in offsite_before and set(offsite[:-1]) <= set(offsite_before)


# --- repo2: the offsite S3 repository (moto's S3 server on qp-br-repo, see prepare.yml) ---------

def text_offsite():
    return prom(REPO, TEXTFILE + "/quantops_backup_pgbackrest_main_repo2.prom")


def test_offsite_s3_repository_holds_encrypted_backups_and_wal():
    info = backrest_info(repo=2)
    assert info["status"]["code"] == 0, info["status"]
    repo2 = [r for r in info["repo"] if r["key"] == 2][0]
    assert repo2["cipher"] == "aes-256-cbc" and repo2["status"]["code"] == 0
    assert any(b["type"] == "full" and b["database"]["repo-key"] == 2 for b in info["backup"])
    # The database host pushes WAL to S3 itself: pgbackrest check switches WAL and waits until the
    # segment is in every repository; then both archives end at the same segment.
    check = REPO.run("runuser -u postgres -- pgbackrest --stanza=main check")
    assert check.rc == 0, check.stderr + check.stdout
    archive = backrest_info()["archive"]
    newest = {a["database"]["repo-key"]: a["max"] for a in archive if a["database"]["id"] == max(b["database"]["id"] for b in archive)}
    assert newest.get(2) and newest.get(2) == newest.get(1), archive
    for host in (DB, REPO):
        conf = host.file("/etc/pgbackrest.conf").content_string
        assert "repo2-type=s3" in conf and "repo2-storage-ca-file=/etc/pgbackrest-s3-ca.crt" in conf
    # Each scheduled run reports repo2 as a target of its own, successful.
    assert metric(text_offsite(), "quantops_backup_last_exit_status", type="full") == 0
    assert metric(text_offsite(), "quantops_backup_size_bytes", type="full") > 0


def test_restore_from_the_offsite_repository_gives_the_same_rows():
    """playbooks/backup/restore.yml -e restore_repo=2: the newest S3 backup and its WAL into a scratch cluster."""
    port = "5499"
    try:
        run = playbook("restore.yml", "-e", "restore_repo=2", "-e", "restore_scratch_port=" + port)
        assert run.returncode == 0, run.stdout[-3000:]
        assert "from repo2" in run.stdout
        assert psql(DB, "SELECT pg_is_in_recovery()", port=port) == "f"
        for table in ("ohlcv_data", "public.qp_backup_markers"):
            assert psql(DB, "SELECT count(*) FROM " + table, port=port) == psql(DB, "SELECT count(*) FROM " + table)
    finally:
        cleanup = playbook("restore.yml", "-e", "restore_cleanup_only=true", "-e", "restore_scratch_port=" + port)
    assert cleanup.returncode == 0, cleanup.stdout[-2000:]
    assert DB.run("runuser -u postgres -- psql -XAtq -p %s -c 'SELECT 1'", port).rc != 0


def test_restore_from_a_repository_that_is_not_a_number_is_refused():
    run = playbook("restore.yml", "-e", "restore_repo=s3")
    assert_refused(run, "restore_repo must be a pgBackRest repository number")
