"""Redis on the database host (issue 20, seed 004): role, backup, restore, alert, TLS.

Everything runs against the real redis-server 8.0 under systemd in qp-default-db
and the real Prometheus + Alertmanager in qp-default-mon.  The tests run in file
order and share the server: each one uses keys or databases of its own.
"""
import base64
import json
import os
import pathlib
import shlex
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from _helpers import CA_FILE, container_ip, read_secret

testinfra_hosts = ["podman://qp-default-db"]

PROJECT = pathlib.Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", pathlib.Path(__file__).resolve().parents[3]))
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
DB, MON = "qp-default-db", "qp-default-mon"
BACKUP_DIR = "/var/backups/quantops/redis"
SMALL_DIR = "/var/backups/quantops/redis-small"
ENV = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")


def cli(host, *args, db=0, stdin=None):
    """redis-cli on the socket as the admin user; the password only in the environment."""
    command = "REDISCLI_AUTH=%s redis-cli -s /run/redis/redis-server.sock --user quantops-admin --no-auth-warning -n %d %s" % (
        shlex.quote(read_secret("redis_admin")), db, " ".join(shlex.quote(str(a)) for a in args))
    if stdin is not None:
        command = "%s | %s" % (stdin, command)
    result = host.run(command)
    assert result.rc == 0, result.stderr
    return result.stdout.rstrip("\n")


def _playbook(*args, timeout=900):
    run = subprocess.run(["ansible-playbook", "-i", INVENTORY] + list(args), capture_output=True, text=True, env=ENV,
                         timeout=timeout, check=False)
    return run.returncode, run.stdout + run.stderr


def _pid(host):
    return host.check_output("systemctl show --property=MainPID --value redis-server")


def _newest_manifest(host, directory=BACKUP_DIR):
    name = host.check_output("ls -1 %s/redis_*.json | sort | tail -n 1", directory)
    return json.loads(host.file(name).content_string)


# --- the role ------------------------------------------------------------------------------------

def test_redis_runs_with_seed_004_settings_and_no_open_default_user(host):
    assert host.service("redis-server").is_running and host.service("redis-server").is_enabled
    # maxmemory is the scenario's 256mb; the policy and the save points are seed 004's defaults.
    assert cli(host, "CONFIG", "GET", "maxmemory").splitlines()[1] == str(256 * 1024 * 1024)
    assert cli(host, "CONFIG", "GET", "maxmemory-policy").splitlines()[1] == "allkeys-lru"
    assert cli(host, "CONFIG", "GET", "save").splitlines()[1] == "900 1 300 10 60 10000"
    assert cli(host, "CONFIG", "GET", "appendonly").splitlines()[1] == "yes"
    anonymous = host.run("redis-cli -s /run/redis/redis-server.sock PING")
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    wrong = host.run("REDISCLI_AUTH=wrong-password redis-cli -s /run/redis/redis-server.sock --user trading --no-auth-warning PING")
    assert "WRONGPASS" in wrong.stdout + wrong.stderr
    # Passwords are on the host as SHA-256 only.
    acl = host.file("/etc/redis/users.acl")
    assert acl.mode == 0o640 and acl.group == "redis"
    assert read_secret("redis_admin") not in acl.content_string and read_secret("redis_trading") not in acl.content_string


def _redis_tls(address, password, context):
    raw = socket.create_connection((address, 6379), timeout=10)
    with context.wrap_socket(raw, server_hostname=address) as conn:
        conn.sendall(("AUTH trading %s\r\nPING\r\n" % password).encode())
        data = b""
        while data.count(b"\r\n") < 2:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.decode()


def test_network_clients_get_tls_only_checked_against_the_ca():
    address = container_ip(DB)
    context = ssl.create_default_context(cafile=str(CA_FILE))
    assert _redis_tls(address, read_secret("redis_trading"), context) == "+OK\r\n+PONG\r\n"
    # Plain text on the same port: Redis drops it (no reply to a cleartext command).
    with socket.create_connection((address, 6379), timeout=10) as plain:
        plain.sendall(b"PING\r\n")
        try:
            reply = plain.recv(100)
        except (ConnectionResetError, socket.timeout):
            reply = b""
    assert b"PONG" not in reply


def test_a_configuration_redis_cannot_load_is_never_put_in_place(host):
    """The value passes the preflight (a directive name and one line), redis-server refuses it."""
    before = (host.file("/etc/redis/redis.conf").md5sum, _pid(host))
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as play:
        play.write("- hosts: redis\n  become: true\n  roles: [quantops.platform.redis]\n")
    try:
        rc, out = _playbook(play.name, "-e", json.dumps({"redis_extra_settings": {"maxclients": "lots"}}))
    finally:
        os.unlink(play.name)
    assert rc != 0, out[-2000:]
    assert "redis-server cannot load this configuration" in out and "maxclients" in out, out[-3000:]
    assert (host.file("/etc/redis/redis.conf").md5sum, _pid(host)) == before
    assert cli(host, "PING") == "PONG"


# --- backup and restore --------------------------------------------------------------------------

KNOWN = {"test:quote:AAPL": "189.25", "test:quote:MSFT": "411.10", "test:signal:last": "BUY AAPL 10", "test:strategy:count": "5"}


def test_backup_flushall_restore_brings_every_key_and_value_back(host):
    for key, value in KNOWN.items():
        cli(host, "SET", key, value)
    cli(host, "HSET", "portfolio", "cash", "1000", "AAPL", "10")
    cli(host, "RPUSH", "orders", "o1", "o2", "o3")
    cli(host, "EVAL", "for i=1,200 do redis.call('SET','bar:'..i,'close='..i) end return 1", "0", db=3)
    before = {db: cli(host, "DBSIZE", db=db) for db in (0, 3)}
    start = host.run("systemctl start quantops-redis-backup.service")
    assert start.rc == 0, host.run("journalctl -u quantops-redis-backup --no-pager -n 30").stdout
    manifest = _newest_manifest(host)
    assert manifest["keys"]["db0"] == int(before[0]) and manifest["keys"]["db3"] == int(before[3])
    assert manifest["sample"]["checked"] > 0 and manifest["sample"]["equal"] == manifest["sample"]["checked"]
    rdb = "%s/%s" % (BACKUP_DIR, manifest["file"])
    assert host.check_output("sha256sum %s", rdb).split()[0] == host.file(rdb + ".sha256").content_string.split()[0]
    metrics = host.file("/var/lib/prometheus/node-exporter/quantops_backup_redis_redis_server.prom").content_string
    assert 'quantops_backup_last_exit_status{target="redis-server",tool="redis",type="rdb"} 0' in metrics

    cli(host, "FLUSHALL")
    assert cli(host, "DBSIZE") == "0"
    rc, out = _playbook(str(PROJECT / "playbooks" / "backup" / "restore_redis.yml"), "-e", "restore_confirm=true")
    assert rc == 0, out[-3000:]
    assert "✓ Redis restored from %s" % manifest["file"] in out
    for key, value in KNOWN.items():
        assert cli(host, "GET", key) == value
    assert cli(host, "HGET", "portfolio", "AAPL") == "10"
    assert cli(host, "LRANGE", "orders", "0", "-1").splitlines() == ["o1", "o2", "o3"]
    assert cli(host, "GET", "bar:137", db=3) == "close=137"
    assert {db: cli(host, "DBSIZE", db=db) for db in (0, 3)} == before
    # The replaced files are kept, and the AOF was rebuilt from the restored data: a restart keeps every key.
    assert host.run("ls -d /var/lib/redis/quantops-replaced-*/appendonlydir").rc == 0
    host.run("systemctl restart redis-server")
    for _attempt in range(30):
        if host.run("REDISCLI_AUTH=%s redis-cli -s /run/redis/redis-server.sock --user quantops-admin --no-auth-warning PING",
                    read_secret("redis_admin")).stdout.strip() == "PONG":
            break
        time.sleep(1)
    assert {db: cli(host, "DBSIZE", db=db) for db in (0, 3)} == before
    assert cli(host, "GET", "test:quote:AAPL") == "189.25"


def test_restore_is_refused_without_confirmation_and_check_mode_only_shows_the_plan(host):
    before = (host.file("/var/lib/redis/dump.rdb").md5sum, _pid(host))
    rc, out = _playbook(str(PROJECT / "playbooks" / "backup" / "restore_redis.yml"))
    assert rc != 0 and "restore_confirm is not true" in out and "Nothing was changed" in out, out[-2000:]
    rc, out = _playbook("--check", str(PROJECT / "playbooks" / "backup" / "restore_redis.yml"))
    assert rc == 0, out[-2000:]
    assert "CHECK MODE: nothing was changed." in out and "stop: redis-server" in out
    assert (host.file("/var/lib/redis/dump.rdb").md5sum, _pid(host)) == before


def _job(host, config):
    return host.run("/usr/local/sbin/quantops-redis-backup --config %s run", config)


def test_a_full_backup_disk_fails_loudly_and_keeps_the_previous_backup(host):
    """The backup directory is a 2 MB tmpfs (molecule.yml): first a backup that fits, then one that does not."""
    config = json.loads(host.file("/etc/quantops/redis_backup.json").content_string)
    config.update(backup_dir=SMALL_DIR, target="redis-small", space_reserve_bytes=0)
    path = "/etc/quantops/redis_backup_small.json"
    host.run("printf '%%s' %s > %s", json.dumps(config), path)
    try:
        first = _job(host, path)
        assert first.rc == 0, first.stdout + first.stderr
        kept = host.check_output("ls %s", SMALL_DIR).split()
        # About 4 MB that LZF cannot compress, in a database of its own.
        cli(host, "EVAL", "math.randomseed(7) for k=1,40 do local t={} for i=1,100000 do t[i]=string.char(math.random(0,255)) end "
            "redis.call('SET','big:'..k,table.concat(t)) end return 1", "0", db=6)
        second = _job(host, path)
        out = second.stdout + second.stderr
        assert second.rc == 3, out
        assert "No space left" in out or "REFUSED" in out, out
        assert host.check_output("ls %s", SMALL_DIR).split() == kept
        prom = host.file("/var/lib/prometheus/node-exporter/quantops_backup_redis_redis_small.prom").content_string
        assert 'quantops_backup_last_exit_status{target="redis-small",tool="redis",type="rdb"} 3' in prom
        # Now dump.rdb itself is big: the precheck refuses before writing anything.
        third = _job(host, path)
        assert third.rc == 3 and "REFUSED: not enough free space" in third.stdout, third.stdout + third.stderr
        assert host.check_output("ls %s", SMALL_DIR).split() == kept
    finally:
        cli(host, "FLUSHDB", db=6)
        cli(host, "SAVE")  # dump.rdb small again, so the precheck lets the next run through
        # A successful run again, so the scenario has no failed backup left behind.
        assert _job(host, path).rc == 0
        host.run("rm -f %s", path)


def test_a_backup_taken_while_writes_run_is_a_consistent_snapshot(host):
    """A writer sets w:1..w:N in order, each followed by w:last; the snapshot must hold every w:i up to its w:last."""
    writer = ("for i in $(seq 1 150000); do echo \"SET w:$i $i\"; echo \"SET w:last $i\"; done | "
              "REDISCLI_AUTH=%s redis-cli -s /run/redis/redis-server.sock --user quantops-admin --no-auth-warning -n 1 "
              ">/dev/null" % shlex.quote(read_secret("redis_admin")))
    host.run("systemd-run --unit=qp-redis-writer --collect bash -c %s", writer)
    try:
        for _attempt in range(50):
            if int(cli(host, "DBSIZE", db=1)) > 1000:
                break
            time.sleep(0.2)
        start = host.run("systemctl start quantops-redis-backup.service")
        assert start.rc == 0, host.run("journalctl -u quantops-redis-backup --no-pager -n 30").stdout
        still_writing = host.run("systemctl is-active qp-redis-writer").stdout.strip() == "active"
    finally:
        host.run("systemctl stop qp-redis-writer")
    manifest = _newest_manifest(host)
    rdb = "%s/%s" % (BACKUP_DIR, manifest["file"])
    scratch = host.check_output("mktemp -d")
    try:
        host.run("cp %s %s/dump.rdb", rdb, scratch)
        host.run("redis-server --port 0 --unixsocket %s/s.sock --dir %s --save '' --appendonly no --daemonize yes "
                 "--logfile %s/log", scratch, scratch, scratch)
        for _attempt in range(50):
            if host.run("redis-cli -s %s/s.sock PING", scratch).stdout.strip() == "PONG":
                break
            time.sleep(0.2)
        check = host.check_output(
            "redis-cli -s %s/s.sock -n 1 EVAL %s 0", scratch,
            "local last=tonumber(redis.call('GET','w:last')) local bad=0 for i=1,last do "
            "if redis.call('GET','w:'..i)~=tostring(i) then bad=bad+1 end end "
            "return {last, bad, redis.call('DBSIZE')}")
        last, bad, size = (int(x) for x in check.split())
        host.run("redis-cli -s %s/s.sock SHUTDOWN NOSAVE", scratch)
    finally:
        host.run("rm -rf %s", scratch)
        cli(host, "FLUSHDB", db=1)
    assert 1000 < last and bad == 0, (last, bad)
    # w:1..w:last and w:last itself, plus at most the one key set before w:last moved.
    assert size in (last + 1, last + 2), (last, size)
    assert manifest["keys"]["db1"] == size
    # The writer was still running when the backup ended (else this proved nothing about concurrency).
    assert still_writing or last < 150000


# --- incident runbook ---------------------------------------------------------------------------

def test_incident_runbook_reports_and_restarts_only_after_a_backup(host, tmp_path):
    rc, out = _playbook(str(PROJECT / "playbooks" / "incidents" / "redis.yml"), "-e", "incident_reports_dir=%s" % tmp_path)
    assert rc == 0, out[-3000:]
    assert "✓ Redis ping: PONG" in out and "Redis memory:" in out and "Redis persistence: last RDB save" in out
    reports = list(tmp_path.glob("INC-*-redis.md"))
    assert len(reports) == 1 and "Seed 004" in reports[0].read_text()
    pid, keys = _pid(host), cli(host, "DBSIZE")
    backups = host.check_output("ls %s/redis_*.json | wc -l", BACKUP_DIR)
    rc, out = _playbook(str(PROJECT / "playbooks" / "incidents" / "redis.yml"), "-e", "incident_reports_dir=%s" % tmp_path,
                        "-e", "redis_incident_confirm=true", "-e", "redis_incident_action=restart")
    assert rc == 0, out[-3000:]
    assert _pid(host) != pid
    assert int(host.check_output("ls %s/redis_*.json | wc -l", BACKUP_DIR)) == int(backups) + 1
    assert cli(host, "DBSIZE") == keys
    assert "After restart: keys" in out


# --- monitoring ----------------------------------------------------------------------------------

def _am_alerts(name):
    request = urllib.request.Request(
        "https://%s:9093/api/v2/alerts?filter=alertname%%3D%%22%s%%22" % (container_ip(MON), name),
        headers={"Authorization": "Basic " + base64.b64encode(
            ("alertmanager:%s" % read_secret("alertmanager_web")).encode()).decode()})
    context = ssl.create_default_context(cafile=str(CA_FILE))
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return json.loads(response.read())


def test_redis_down_reaches_alertmanager_and_resolves(host):
    host.run("systemctl stop redis-server")
    stopped = time.time()
    try:
        firing = []
        while time.time() - stopped < 180 and not firing:
            firing = [a for a in _am_alerts("RedisDown") if a["status"]["state"] == "active"]
            time.sleep(3)
        assert firing, "RedisDown did not reach Alertmanager within 180 s"
        assert firing[0]["labels"]["severity"] == "critical"
        assert firing[0]["annotations"]["runbook_url"] == "playbooks/incidents/redis.yml"
        assert DB in firing[0]["labels"]["instance"]
    finally:
        host.run("systemctl start redis-server")
    started = time.time()
    active = ["x"]
    while time.time() - started < 180 and active:
        active = [a for a in _am_alerts("RedisDown") if a["status"]["state"] == "active"]
        time.sleep(3)
    assert not active, "RedisDown still active 180 s after Redis started"


def test_exporter_needs_credentials_and_runs_as_its_own_user(host):
    pid = host.check_output("systemctl show --property=MainPID --value prometheus-redis-exporter")
    assert host.check_output("stat -c %%U /proc/%s", pid) == "redis-exporter"
    context = ssl.create_default_context(cafile=str(CA_FILE))
    url = "https://%s:9121/metrics" % container_ip(DB)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, context=context, timeout=10)
    assert err.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(
        ("prometheus:%s" % read_secret("scrape")).encode()).decode()})
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        body = response.read().decode()
    samples = dict(line.split(" ", 1) for line in body.splitlines() if line and not line.startswith("#"))
    assert samples["redis_up"] == "1" and float(samples["redis_memory_max_bytes"]) == 256 * 1024 * 1024
    env = host.file("/etc/default/prometheus-redis-exporter")
    assert env.mode == 0o640 and env.group == "redis-exporter"
    assert read_secret("redis_monitor") not in host.check_output("cat /proc/%s/cmdline | tr '\\0' ' '", pid)
