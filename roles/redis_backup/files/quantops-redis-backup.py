# Copyright: quantops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Consistent, verified RDB backups of the local Redis (seed 004 "Automated Backup Script").

Run by quantops-redis-backup.timer (role quantops.platform.redis_backup):

    quantops-redis-backup [--config FILE] run     # back up now
    quantops-redis-backup [--config FILE] plan    # what run would do, changes nothing

One run:
  1. BGSAVE SCHEDULE over the unix socket as the admin ACL user, then wait
     until LASTSAVE moved past the time before the call and
     rdb_bgsave_in_progress is 0; rdb_last_bgsave_status must be ok (a failed
     BGSAVE fails the run, exit status 4).  The snapshot is Redis's own
     fork-time copy: consistent while writes go on.
  2. Free-space precheck: size of dump.rdb x space_factor + space_reserve_bytes
     must fit in backup_dir, else refused (exit status 3); ENOSPC while copying
     also gives 3.  The partial file is removed; nothing older is deleted.
  3. dump.rdb is copied (opened right after the save: Redis replaces it by
     rename, so an open file never changes) into .<name>.partial while its
     SHA-256 is computed.
  4. Verification: the file on disk has that SHA-256; redis-check-rdb reads
     it; a scratch redis-server (port 0, its own unix socket, no persistence)
     loads it, and its key count per database is recorded; a sample of keys is
     read back with DUMP from the scratch server and from the live one - more
     than half of them different means the file is not this server's data
     (exit status 5; the file is kept as .unverified).
  5. redis_<UTC>.rdb + .sha256 (sha256sum format) + .json manifest (key counts,
     sha256 of the RDB, Redis version, snapshot time) - the manifest is what
     playbooks/backup/restore_redis.yml checks the restored server against.
  5b. With encryption on: the RDB is encrypted with age to the recipients file
     into redis_<UTC>.rdb.age; the .sha256 is of that file; the plaintext is
     removed.  The manifest keeps the plaintext's SHA-256.
  6. Optional offsite copy (aws s3 cp / rclone copyto) of the three files on
     the configured weekdays (exit status 6 on failure).
  7. Retention, only after a verified backup in this run: backups older than
     retention_days go, never the newest verified one.
  8. quantops-backup-metrics --tool redis --target <target> --type rdb.

Exit status (also quantops_backup_last_exit_status): 0 success, 1 other
failure, 2 configuration, 3 not enough space, 4 BGSAVE failed, 5 verification
failed, 6 offsite copy failed, 7 encryption failed, 75 another run is active.
Python 3 standard library only.
"""

import argparse
import datetime
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from quantops_backup import CHUNK, exclusive_lock, file_sha256, sha256_line  # beside this job (role backup_metrics)

CONFIG_FILE = "/etc/quantops/redis_backup.json"
LOCK_FILE = "/run/quantops-redis-backup.lock"
OK, FAILED, CONFIG, NO_SPACE, SAVE_FAILED, VERIFY_FAILED, OFFSITE_FAILED, ENCRYPT_FAILED, LOCKED = 0, 1, 2, 3, 4, 5, 6, 7, 75
NAME_RE = re.compile(r"^redis_(?P<stamp>[0-9]{8}T[0-9]{6}Z)\.rdb(?:\.age)?$")


class JobError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def log(level, message, path=None):
    line = "%s %s %s" % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), level, message)
    print(line, flush=True)
    if path:
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError:
            pass


def parse_info(text):
    """INFO output -> {key: value}."""
    info = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            key, _sep, value = line.partition(":")
            info[key.strip()] = value.strip()
    return info


def keyspace(info):
    """{db0: keys, ...} from INFO keyspace lines like db0:keys=3,expires=0,avg_ttl=0."""
    counts = {}
    for key, value in info.items():
        match = re.match(r"^db([0-9]+)$", key)
        found = re.search(r"(?:^|,)keys=([0-9]+)", value)
        if match and found:
            counts[key] = int(found.group(1))
    return counts


def retention(entries, now, days):
    """entries [{name, mtime, verified}] -> names to delete: older than days, never the newest verified."""
    verified = sorted((e for e in entries if e["verified"]), key=lambda e: (e["mtime"], e["name"]))
    newest = verified[-1]["name"] if verified else None
    return sorted(e["name"] for e in entries if e["name"] != newest and (now - e["mtime"]) / 86400.0 >= days)


class Redis:
    """redis-cli on a unix socket; the password travels in REDISCLI_AUTH, never on the command line."""

    def __init__(self, socket, user=None, password=None):
        self.socket, self.user, self.password = socket, user, password

    def __call__(self, *args, db=0):
        argv = ["redis-cli", "-s", self.socket, "-n", str(db)]
        env = dict(os.environ)
        env.pop("REDISCLI_AUTH", None)
        if self.user:
            argv += ["--user", self.user, "--no-auth-warning"]
            env["REDISCLI_AUTH"] = self.password
        proc = subprocess.run(argv + [str(a) for a in args], capture_output=True, env=env, check=False)
        out = proc.stdout.decode("utf-8", "backslashreplace").rstrip("\n")
        if proc.returncode != 0 or out.startswith(("ERR", "NOAUTH", "WRONGPASS", "NOPERM", "Could not connect")):
            raise JobError(FAILED, "redis-cli %s: %s%s" % (" ".join(str(a) for a in args[:2]), out,
                                                           proc.stderr.decode("utf-8", "replace").strip()))
        return out


class Job:
    def __init__(self, config, dry_run=False):
        self.c = config
        self.dry_run = dry_run
        with open(config["auth_file"], encoding="utf-8") as handle:
            password = handle.read().strip()
        self.live = Redis(config["socket"], config["user"], password)

    def log(self, level, message):
        log(level, message, None if self.dry_run else self.c["log_file"])

    def bgsave(self):
        before = int(self.live("LASTSAVE"))
        # LASTSAVE has a resolution of one second: a snapshot must end after `before`.
        while int(time.time()) <= before:
            time.sleep(0.2)
        reply = self.live("BGSAVE", "SCHEDULE")
        self.log("INFO", "BGSAVE SCHEDULE: %s" % reply)
        deadline = time.time() + self.c["save_timeout_seconds"]
        while time.time() < deadline:
            info = parse_info(self.live("INFO", "persistence"))
            if int(self.live("LASTSAVE")) > before and info.get("rdb_bgsave_in_progress") == "0":
                if info.get("rdb_last_bgsave_status") != "ok":
                    raise JobError(SAVE_FAILED, "BGSAVE failed (rdb_last_bgsave_status:%s); see %s" % (
                        info.get("rdb_last_bgsave_status"), "/var/log/redis/redis-server.log"))
                return
            if info.get("rdb_last_bgsave_status") == "err" and info.get("rdb_bgsave_in_progress") == "0" \
                    and info.get("aof_rewrite_in_progress") == "0" and int(self.live("LASTSAVE")) <= before:
                raise JobError(SAVE_FAILED, "BGSAVE failed (rdb_last_bgsave_status:err): the disk of %s is full or "
                                            "not writable, or fork failed; see /var/log/redis/redis-server.log" %
                               self.c["redis_dir"])
            time.sleep(0.5)
        raise JobError(SAVE_FAILED, "BGSAVE did not finish within %d s" % self.c["save_timeout_seconds"])

    def copy(self, source, partial):
        digest, size = hashlib.sha256(), 0
        with open(source, "rb") as src:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        return digest.hexdigest(), size

    def verify(self, path):
        """Load path into a scratch redis-server; return its key counts and the sample result."""
        check = subprocess.run(["redis-check-rdb", path], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise JobError(VERIFY_FAILED, "redis-check-rdb %s failed: %s" % (path, (check.stdout + check.stderr)[-1000:]))
        # Beside the file (same file system): a hard link, no second copy.
        scratch = tempfile.mkdtemp(prefix=".verify.", dir=os.path.dirname(path))
        proc = None
        try:
            os.link(path, os.path.join(scratch, "dump.rdb"))
            sock = os.path.join(scratch, "verify.sock")
            proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock, "--dir", scratch,
                                     "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
                                     "--daemonize", "no", "--logfile", os.path.join(scratch, "log")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            scratch_cli = Redis(sock)
            deadline = time.time() + self.c["verify_timeout_seconds"]
            while True:
                if proc.poll() is not None:
                    with open(os.path.join(scratch, "log"), encoding="utf-8", errors="replace") as handle:
                        raise JobError(VERIFY_FAILED, "a scratch redis-server cannot load %s: %s" % (
                            path, handle.read()[-1000:]))
                try:
                    if os.path.exists(sock) and parse_info(scratch_cli("INFO", "persistence")).get("loading") == "0":
                        break
                except JobError:
                    pass
                if time.time() > deadline:
                    raise JobError(VERIFY_FAILED, "a scratch redis-server did not load %s within %d s" % (
                        path, self.c["verify_timeout_seconds"]))
                time.sleep(0.2)
            counts = keyspace(parse_info(scratch_cli("INFO", "keyspace")))
            checked = equal = 0
            for name in sorted(counts):
                db = int(name[2:])
                for _attempt in range(self.c["sample_keys"]):
                    key = scratch_cli("RANDOMKEY", db=db)
                    if not key:
                        break
                    checked += 1
                    if scratch_cli("DUMP", key, db=db) == self.live("DUMP", key, db=db):
                        equal += 1
            return counts, checked, equal
        finally:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            shutil.rmtree(scratch, ignore_errors=True)

    def encrypt(self, plain):
        target = plain + ".age"
        partial = os.path.join(os.path.dirname(plain), "." + os.path.basename(target) + ".partial")
        try:
            proc = subprocess.run(["age", "--encrypt", "--recipients-file", self.c["encryption"]["recipients_file"],
                                   "--output", partial, plain], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise JobError(NO_SPACE if "no space left" in proc.stderr.lower() else ENCRYPT_FAILED,
                               "age --encrypt failed (%d): %s" % (proc.returncode, proc.stderr.strip()[-1000:]))
            os.chmod(partial, 0o640)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        os.unlink(plain)
        return target

    def offsite(self, paths):
        off = self.c["offsite"]
        for item in paths:
            dest = "%s/%s" % (off["url"].rstrip("/"), os.path.basename(item))
            tool = ["rclone", "copyto"] if off["tool"] == "rclone" else ["aws", "s3", "cp", "--only-show-errors"]
            if shutil.which(tool[0]) is None:
                raise JobError(OFFSITE_FAILED, "offsite copy: %s is not installed" % tool[0])
            proc = subprocess.run(tool + [item, dest] + off.get("extra_args", []), capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                raise JobError(OFFSITE_FAILED, "offsite copy of %s to %s failed (%d): %s" % (
                    item, dest, proc.returncode, proc.stderr.strip()[-2000:]))
            self.log("INFO", "offsite copy: %s -> %s" % (item, dest))

    def prune(self, now):
        directory = self.c["backup_dir"]
        entries = []
        for name in os.listdir(directory):
            base = name[:-len(".unverified")] if name.endswith(".unverified") else name
            if NAME_RE.match(base):
                path = os.path.join(directory, name)
                entries.append({"name": name, "mtime": os.stat(path).st_mtime,
                                "verified": base == name and os.path.exists(path + ".sha256")})
        doomed = retention(entries, now, self.c["retention_days"])
        for name in doomed:
            self.log("INFO", "%s %s (older than %d days)" % (
                "would delete" if self.dry_run else "retention: deleting", name, self.c["retention_days"]))
            if not self.dry_run:
                stem = re.sub(r"\.age$", "", name)
                for item in (name, name + ".sha256", stem + ".json"):
                    try:
                        os.unlink(os.path.join(directory, item))
                    except FileNotFoundError:
                        pass
        self.log("INFO", "retention: %d kept, %d deleted" % (len(entries) - len(doomed), len(doomed)))

    def metrics(self, status, started, size=None):
        argv = [self.c["metrics_command"], "--tool", "redis", "--target", self.c["target"], "--type", "rdb",
                "--exit-status", str(status), "--started", "%.3f" % started]
        if status == OK:
            argv += ["--size", str(size), "--verified"]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            self.log("ERROR", "metrics not written: %s" % proc.stderr.strip())

    def run(self):
        started = time.time()
        status, size, partial = OK, None, None
        directory = self.c["backup_dir"]
        source = os.path.join(self.c["redis_dir"], "dump.rdb")
        try:
            live_info = parse_info(self.live("INFO", "all"))
            live_keys = sum(keyspace(live_info).values())
            raw = os.path.getsize(source) if os.path.exists(source) else int(live_info.get("used_memory", "0"))
            need = int(raw * self.c["space_factor"]) + self.c["space_reserve_bytes"]
            stat = os.statvfs(directory)
            free = stat.f_bavail * stat.f_frsize
            self.log("INFO", "redis %s: %d keys, dump.rdb %d bytes, %d bytes needed, %d free in %s" % (
                self.c["target"], live_keys, raw, need, free, directory))
            if free < need:
                raise JobError(NO_SPACE, "REFUSED: not enough free space in %s: %d bytes free, %d needed (size %d x "
                                         "space_factor %s + reserve %d); nothing was written or deleted" % (
                                             directory, free, need, raw, self.c["space_factor"],
                                             self.c["space_reserve_bytes"]))
            if self.dry_run:
                self.log("INFO", "would run BGSAVE SCHEDULE, copy %s into %s, verify it and apply the retention" % (
                    source, directory))
                self.prune(time.time())
                return OK
            self.bgsave()
            name = "redis_%s.rdb" % time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
            final = os.path.join(directory, name)
            partial = os.path.join(directory, "." + name + ".partial")
            try:
                digest, size = self.copy(source, partial)
            except OSError as exc:
                raise JobError(NO_SPACE if exc.errno == errno.ENOSPC else FAILED,
                               "copying %s to %s failed: %s" % (source, partial, exc))
            if file_sha256(partial) != digest:
                raise JobError(VERIFY_FAILED, "%s: the SHA-256 on disk differs from the bytes copied" % partial)
            try:
                counts, checked, equal = self.verify(partial)
            except JobError:
                os.replace(partial, final + ".unverified")
                partial = None
                raise
            if (live_keys > 0 and sum(counts.values()) == 0) or (checked > 0 and equal * 2 < checked):
                os.replace(partial, final + ".unverified")
                partial = None
                raise JobError(VERIFY_FAILED, "%s does not hold this server's data: %d keys loaded (live: %d), %d of %d "
                                              "sampled keys equal; kept as %s.unverified" % (
                                                  name, sum(counts.values()), live_keys, equal, checked, final))
            os.replace(partial, final)
            partial = None
            manifest = {"file": name, "sha256": digest, "size": size, "keys": counts, "total_keys": sum(counts.values()),
                        "sample": {"checked": checked, "equal": equal}, "redis_version": live_info.get("redis_version"),
                        "snapshot_time": int(self.live("LASTSAVE")), "created": started, "encrypted": False}
            if self.c["encryption"]["enabled"]:
                final = self.encrypt(final)
                manifest["encrypted"] = True
                manifest["encrypted_file"] = os.path.basename(final)
                size = os.path.getsize(final)
            files = [final]
            for path, text in ((final + ".sha256", sha256_line(file_sha256(final), os.path.basename(final))),
                               (os.path.join(directory, name[:-len(".rdb")] + ".json"),
                                json.dumps(manifest, indent=2, sort_keys=True) + "\n")):
                with open(path + ".tmp", "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(path + ".tmp", path)
                files.append(path)
            self.log("INFO", "%s written and verified: %d bytes, sha256 %s, keys %s, %d of %d sampled keys equal, "
                             "%.1f s" % (final, size, digest, counts, equal, checked, time.time() - started))
            try:
                off = self.c["offsite"]
                days = off.get("weekdays") or []
                if off.get("enabled") and (not days or time.localtime(started).tm_wday + 1 in days):
                    self.offsite(files)
            finally:
                self.prune(time.time())
        except JobError as exc:
            status = exc.status
            self.log("ERROR", str(exc))
        except Exception as exc:  # anything unexpected still reports a failure
            status = FAILED
            self.log("ERROR", "%s: %s" % (type(exc).__name__, exc))
        finally:
            if partial and os.path.exists(partial):
                os.unlink(partial)
                self.log("INFO", "removed the partial file %s" % partial)
        if not self.dry_run:
            self.metrics(status, started, size)
        self.log("INFO" if status == OK else "ERROR", "run end: exit status %d" % status)
        return status


def main(argv=None):
    parser = argparse.ArgumentParser(prog="quantops-redis-backup", description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--config", default=CONFIG_FILE)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "plan"])
    args = parser.parse_args(argv)
    try:
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
        job = Job(config, dry_run=args.command == "plan")
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write("quantops-redis-backup: cannot read the configuration: %s\n" % exc)
        return CONFIG
    lock = exclusive_lock(LOCK_FILE)  # held until this process ends
    if lock is None:
        log("ERROR", "another quantops-redis-backup run holds %s; not starting" % LOCK_FILE)
        return LOCKED
    return job.run()


if __name__ == "__main__":
    sys.exit(main())
