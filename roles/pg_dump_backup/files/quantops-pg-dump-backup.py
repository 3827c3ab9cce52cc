# Copyright: quantops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Logical backups of the platform: pg_dump -Fc per database, tarballs of paths.

Seed 002, "Backup & Recovery" (daily 02:00 backup_postgres.sh, RETENTION_DAYS=30,
weekly S3 upload, "Check backup integrity", single-table restore with
pg_restore -t) and seeds 001/004 (config/log/state tar.gz archives), as one job
run by quantops-pg-dump-backup.timer (role quantops.platform.pg_dump_backup).

    quantops-pg-dump-backup [--config FILE] run [--database DB ...] [--no-tarballs]
    quantops-pg-dump-backup [--config FILE] plan      # what run would do, changes nothing
    quantops-pg-dump-backup [--config FILE] prune     # retention only
    quantops-pg-dump-backup [--config FILE] toc --file DUMP --table [SCHEMA.]TABLE ...

Per database, run:
  1. free-space precheck: pg_database_size x space_factor + space_reserve_bytes
     must fit in the free space of dump_dir, else refuse (exit status 3);
  2. pg_dump -Fc as the PostgreSQL OS user, its output streamed by this script
     into <dump_dir>/.<db>_<UTC>.dump.partial while its SHA-256 is computed;
  3. verification: the file read back from disk has that SHA-256 and
     `pg_restore --list` reads its table of contents (seed 002 only ran
     gunzip -t); then it is renamed to <db>_<UTC>.dump and <name>.sha256 is
     written beside it (sha256sum format).  A dump with a .sha256 is "verified";
     one that fails verification is kept as <name>.unverified;
  3b. with encryption on (config "encryption"): the verified file is
     encrypted with age to the public keys in encryption.recipients_file into
     <name>.age, the .sha256 is of that file, and the plaintext is removed (it
     only ever exists as the hidden .partial of the running job).  The host
     needs no private key: restores decrypt with the identity from the
     inventory (role quantops.platform.restore, entry point dump);
  4. optional offsite copy (aws s3 cp or rclone copyto) on the configured weekdays;
  5. retention - only after a verified dump of that database in this run:
     delete dumps older than retention_days, but never the newest verified
     dump, and keep the first verified dump of each of the last
     monthly_keep_months months;
  6. quantops-backup-metrics --tool pg_dump --target <db> --type dump.
Tarballs (config/logs/state paths): the same steps with tar -czf, verification
`tar -tzf` + SHA-256, metrics --tool tarball --target <name> --type tarball
(--verified: listing a tarball reads and decompresses all of it).

Exit status (also the metric quantops_backup_last_exit_status): 0 success,
1 some other failure, 2 bad configuration, 3 not enough free space (refused or
ENOSPC), 4 pg_dump/tar failed, 5 verification failed, 6 offsite copy failed,
7 encryption failed, 75 another run holds the lock.  The job's exit status is the highest of its
targets.  Partial files are always removed; nothing older is deleted by a
run whose own backup failed.
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

from quantops_backup import CHUNK, exclusive_lock, file_sha256, parse_sha256_line, sha256_line  # beside this job (role backup_metrics)

CONFIG_FILE = "/etc/quantops/pg_dump_backup.json"
LOCK_FILE = "/run/quantops-pg-dump-backup.lock"

OK, FAILED, CONFIG, NO_SPACE, TOOL_FAILED, VERIFY_FAILED, OFFSITE_FAILED, ENCRYPT_FAILED, LOCKED = 0, 1, 2, 3, 4, 5, 6, 7, 75
ENCRYPTED_SUFFIX = ".age"
STAMP_RE = r"(?P<stamp>[0-9]{8}T[0-9]{6}Z)"


class JobError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Log:
    def __init__(self, path=None):
        self.path = path

    def __call__(self, level, message):
        line = "%s %s %s" % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), level, message)
        print(line, flush=True)
        if self.path:
            try:
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
            except OSError as exc:
                print("%s WARNING cannot write the log file %s: %s" % (line[:20], self.path, exc), flush=True)


# --- naming and retention (pure functions, unit-tested) ---------------------------
def stamp(now):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def backup_re(prefix, suffix):
    """<prefix>_<UTC stamp><suffix>, plain or encrypted (<suffix>.age): one series for the retention."""
    return re.compile("^" + re.escape(prefix) + "_" + STAMP_RE + re.escape(suffix) + "(?:" + re.escape(ENCRYPTED_SUFFIX) + ")?$")


def read_sha256_file(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read().strip()
    digest = parse_sha256_line(text)
    if digest is None:
        raise JobError(VERIFY_FAILED, "%s is not a sha256sum line" % path)
    return digest


def month_index(epoch):
    t = time.gmtime(epoch)
    return t.tm_year * 12 + t.tm_mon - 1


def plan_retention(entries, now, retention_days, monthly_keep_months):
    """Decide which backups to keep.

    entries: list of dicts {name, mtime, verified}.  Returns {name: reason to
    keep or None to delete}.  Rules: younger than retention_days -> keep; the
    newest verified -> keep always; the first verified backup of each of the
    last monthly_keep_months calendar months (UTC, counting the current one)
    -> keep; anything else -> delete.
    """
    decisions = {}
    verified = sorted((e for e in entries if e["verified"]), key=lambda e: (e["mtime"], e["name"]))
    newest = verified[-1]["name"] if verified else None
    firsts = {}
    for entry in verified:
        firsts.setdefault(month_index(entry["mtime"]), entry["name"])
    current_month = month_index(now)
    monthly = {name for month, name in firsts.items()
               if monthly_keep_months > 0 and current_month - month < monthly_keep_months}
    for entry in entries:
        age_days = (now - entry["mtime"]) / 86400.0
        if entry["name"] == newest:
            decisions[entry["name"]] = "newest verified backup"
        elif age_days < retention_days:
            decisions[entry["name"]] = "younger than %d days" % retention_days
        elif entry["name"] in monthly:
            decisions[entry["name"]] = "first verified backup of %s (monthly keep)" % time.strftime(
                "%Y-%m", time.gmtime(entry["mtime"]))
        else:
            decisions[entry["name"]] = None
    return decisions


def list_backups(directory, prefix, suffix):
    """Backups of one target in directory: verified (<name> + <name>.sha256) and <name>.unverified."""
    pattern = backup_re(prefix, suffix)
    unverified = backup_re(prefix, suffix + ".unverified")
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return found
    for name in names:
        path = os.path.join(directory, name)
        if pattern.match(name):
            found.append({"name": name, "mtime": os.stat(path).st_mtime,
                          "verified": os.path.exists(path + ".sha256")})
        elif unverified.match(name):
            found.append({"name": name, "mtime": os.stat(path).st_mtime, "verified": False})
    return found


def estimate_bytes(raw_bytes, factor, reserve):
    return int(raw_bytes * factor) + int(reserve)


def free_bytes(directory):
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


# --- TOC selection for single-table restores (pure functions, unit-tested) -------
TOC_LINE_RE = re.compile(r"^(?P<id>\d+);\s+\d+\s+\d+\s+(?P<rest>.*)$")
TOC_TYPES = ("FK CONSTRAINT", "TABLE DATA", "SEQUENCE OWNED BY", "SEQUENCE SET", "DEFAULT ACL", "ROW SECURITY",
             "TABLE", "INDEX", "CONSTRAINT", "TRIGGER", "DEFAULT", "SEQUENCE", "COMMENT", "ACL", "POLICY", "RULE",
             "STATISTICS", "INDEX ATTACH")
SQL_HEADER_RE = re.compile(r"^-- (?:Data for )?Name: (?P<name>.*?); Type: (?P<type>[^;]+); Schema: (?P<schema>[^;]+);")


def parse_toc(text):
    """pg_restore --list output -> [(line, type, schema, tag)]."""
    entries = []
    types = sorted(TOC_TYPES, key=len, reverse=True)
    for line in text.splitlines():
        match = TOC_LINE_RE.match(line)
        if not match:
            continue
        rest = match.group("rest")
        for kind in types:
            if rest.startswith(kind + " "):
                parts = rest[len(kind) + 1:].split(" ")
                schema = parts[0]
                tag = " ".join(parts[1:-1]) if len(parts) > 2 else (parts[1] if len(parts) > 1 else "")
                entries.append((line, kind, schema, tag))
                break
        else:
            entries.append((line, rest.split(" ")[0], "", rest))
    return entries


def quote_ident(name):
    return name if re.match(r"^[a-z_][a-z0-9_$]*$", name) else '"%s"' % name.replace('"', '""')


def parse_schema_sql(text):
    """pg_restore --schema-only -f - output -> {(type, schema, name): sql}."""
    blocks, key, lines = {}, None, []
    for line in text.splitlines():
        match = SQL_HEADER_RE.match(line)
        if match:
            if key:
                blocks[key] = "\n".join(lines)
            key, lines = (match.group("type").strip(), match.group("schema").strip(), match.group("name").strip()), []
        elif key:
            lines.append(line)
    if key:
        blocks[key] = "\n".join(lines)
    return blocks


def select_table_entries(toc_text, schema_sql, schema, table):
    """TOC lines that recreate one table: definition, data, indexes, constraints, triggers, sequences, ACLs.

    Foreign keys of other tables pointing at it are left out (their tables are
    not restored); the FK constraints of the table itself are kept.
    """
    qualified = re.escape("%s.%s" % (quote_ident(schema), quote_ident(table)))
    subject = re.compile(r"(?:\bON\s+(?:ONLY\s+)?|ALTER\s+TABLE\s+(?:ONLY\s+)?|OWNED\s+BY\s+)" + qualified + r"(?:\.|\s|\(|;|$)")
    blocks = parse_schema_sql(schema_sql)
    owned_sequences = set()
    for (kind, sch, name), sql in blocks.items():
        if kind in ("SEQUENCE", "SEQUENCE OWNED BY") and sch == schema and subject.search(sql):
            owned_sequences.add(name)
    selected = []
    for line, kind, sch, tag in parse_toc(toc_text):
        if sch != schema and kind not in ("ACL", "COMMENT"):
            continue
        if kind in ("TABLE", "TABLE DATA") and tag == table:
            selected.append(line)
        elif kind in ("CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "DEFAULT", "POLICY", "RULE") and tag.split(" ")[0] == table:
            selected.append(line)
        elif kind in ("SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET") and tag in owned_sequences:
            selected.append(line)
        elif kind in ("INDEX", "STATISTICS") and subject.search(blocks.get((kind, sch, tag), "")):
            selected.append(line)
        elif kind in ("ACL", "COMMENT") and sch == schema and (
                tag == "TABLE %s" % table or tag.startswith("COLUMN %s." % table)
                or tag.split(" ")[-1] in owned_sequences and tag.startswith("SEQUENCE ")):
            selected.append(line)
    return selected


def hypertables_in_dump(catalog_data):
    """(schema, table) of the hypertables in the COPY data of _timescaledb_catalog.hypertable."""
    found, columns = set(), None
    for line in catalog_data.splitlines():
        match = re.match(r"^COPY _timescaledb_catalog\.hypertable \(([^)]*)\) FROM stdin;$", line)
        if match:
            columns = [c.strip() for c in match.group(1).split(",")]
            continue
        if columns is not None:
            if line == "\\.":
                columns = None
                continue
            row = dict(zip(columns, line.split("\t")))
            if "schema_name" in row and "table_name" in row:
                found.add((row["schema_name"], row["table_name"]))
    return found


# --- the job -------------------------------------------------------------------------
class Job:
    def __init__(self, config, log, dry_run=False):
        self.c = config
        self.log = log
        self.dry_run = dry_run
        self.bindir = config["pg_bindir"]

    # helpers
    def as_pg(self, argv):
        return ["runuser", "-u", self.c["os_user"], "--"] + argv

    def run(self, argv, **kwargs):
        return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)

    def metrics(self, tool, target, type_, status, started, size=None, verified=False):
        argv = [self.c["metrics_command"], "--tool", tool, "--target", target, "--type", type_,
                "--exit-status", str(status), "--started", "%.3f" % started]
        if size is not None:
            argv += ["--size", str(size)]
        if verified:
            argv.append("--verified")
        proc = self.run(argv)
        if proc.returncode != 0:
            self.log("ERROR", "metrics for %s %s not written: %s" % (tool, target, proc.stderr.strip()))

    def psql_value(self, database, sql):
        proc = self.run(self.as_pg([os.path.join(self.bindir, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                    "-p", str(self.c["port"]), "-d", database, "-c", sql]))
        if proc.returncode != 0:
            raise JobError(TOOL_FAILED, "psql on %s failed: %s" % (database, proc.stderr.strip()))
        return proc.stdout.strip()

    def check_space(self, directory, raw_bytes, what):
        need = estimate_bytes(raw_bytes, self.c["space_factor"], self.c["space_reserve_bytes"])
        free = free_bytes(directory)
        self.log("INFO", "%s: %d bytes to back up, estimate %d bytes needed (x%s + %d reserve), %d free in %s" % (
            what, raw_bytes, need, self.c["space_factor"], self.c["space_reserve_bytes"], free, directory))
        if free < need:
            raise JobError(NO_SPACE, "REFUSED %s: not enough free space in %s: %d bytes free, %d needed "
                                     "(size %d x space_factor %s + reserve %d). Free space or move the backup "
                                     "directory; nothing was written or deleted." % (
                                         what, directory, free, need, raw_bytes, self.c["space_factor"],
                                         self.c["space_reserve_bytes"], ))
        return need, free

    def stream_to_file(self, argv, partial):
        """Run argv, write its stdout to partial while hashing it; return (rc, stderr, sha256, size)."""
        digest, size = hashlib.sha256(), 0
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            os.fchown(fd, 0, self.c["group_gid"])
        except OSError:
            pass
        # stderr goes to an unlinked file in /tmp: it must not need space in a full backup directory
        with os.fdopen(fd, "wb") as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
            write_error = None
            try:
                for chunk in iter(lambda: proc.stdout.read(CHUNK), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    if write_error is None:
                        try:
                            out.write(chunk)
                        except OSError as exc:
                            write_error = exc
                if write_error is None:
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as exc:
                write_error = exc
            finally:
                proc.stdout.close()
                rc = proc.wait()
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace").strip()
        if write_error is not None:
            raise write_error
        return rc, stderr, digest.hexdigest(), size

    def write_sha256(self, path, digest):
        tmp = path + ".sha256.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(sha256_line(digest, os.path.basename(path)))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o640)
        try:
            os.chown(tmp, 0, self.c["group_gid"])
        except OSError:
            pass
        os.replace(tmp, path + ".sha256")

    def encryption_on(self):
        return bool((self.c.get("encryption") or {}).get("enabled"))

    def encrypt(self, tool, target, plain, final):
        """Encrypt the verified plain file with age into final + .age; return (path, sha256, size)."""
        enc = self.c["encryption"]
        encrypted = final + ENCRYPTED_SUFFIX
        partial = os.path.join(os.path.dirname(final), "." + os.path.basename(encrypted) + ".partial")
        try:
            proc = self.run([enc.get("command", "age"), "--encrypt", "--recipients-file", enc["recipients_file"],
                             "--output", partial, plain])
            if proc.returncode != 0:
                raise JobError(NO_SPACE if "no space left" in proc.stderr.lower() else ENCRYPT_FAILED,
                               "%s %s: age --encrypt failed (%d): %s" % (tool, target, proc.returncode,
                                                                         proc.stderr.strip()[-1000:]))
            os.chmod(partial, 0o640)
            try:
                os.chown(partial, 0, self.c["group_gid"])
            except OSError:
                pass
            digest = file_sha256(partial)
            size = os.path.getsize(partial)
            os.replace(partial, encrypted)
            partial = None
        except OSError as exc:
            raise JobError(NO_SPACE if exc.errno == errno.ENOSPC else ENCRYPT_FAILED,
                           "%s %s: encrypting %s failed: %s" % (tool, target, plain, exc))
        finally:
            if partial and os.path.exists(partial):
                os.unlink(partial)
        return encrypted, digest, size

    def offsite_due(self, now):
        days = self.c["offsite"].get("weekdays") or []
        return self.c["offsite"].get("enabled") and (not days or time.localtime(now).tm_wday + 1 in days)

    def offsite(self, path):
        off = self.c["offsite"]
        url = off["url"].rstrip("/")
        for item in (path, path + ".sha256"):
            dest = "%s/%s" % (url, os.path.basename(item))
            if off["tool"] == "rclone":
                argv = ["rclone", "copyto", item, dest] + off.get("extra_args", [])
            else:
                argv = ["aws", "s3", "cp", "--only-show-errors", item, dest] + off.get("extra_args", [])
            if shutil.which(argv[0]) is None:
                raise JobError(OFFSITE_FAILED, "offsite copy: %s is not installed" % argv[0])
            proc = self.run(argv)
            if proc.returncode != 0:
                raise JobError(OFFSITE_FAILED, "offsite copy of %s to %s failed (%d): %s" % (
                    item, dest, proc.returncode, proc.stderr.strip()[-2000:]))
            self.log("INFO", "offsite copy: %s -> %s" % (item, dest))

    def prune(self, directory, prefix, suffix, now):
        entries = list_backups(directory, prefix, suffix)
        decisions = plan_retention(entries, now, self.c["retention_days"], self.c["monthly_keep_months"])
        deleted = 0
        for entry in sorted(entries, key=lambda e: e["mtime"]):
            reason = decisions[entry["name"]]
            path = os.path.join(directory, entry["name"])
            if reason:
                continue
            self.log("INFO", "%s %s (%.1f days old, older than %d days, not a monthly keep)" % (
                "would delete" if self.dry_run else "retention: deleting", path,
                (now - entry["mtime"]) / 86400.0, self.c["retention_days"]))
            if not self.dry_run:
                for item in (path, path + ".sha256"):
                    try:
                        os.unlink(item)
                    except FileNotFoundError:
                        pass
                deleted += 1
        kept = [e["name"] for e in entries if decisions[e["name"]]]
        self.log("INFO", "retention %s_*%s: %d kept, %d deleted" % (prefix, suffix, len(kept), deleted))
        return deleted

    # one backup, generic
    def backup(self, tool, type_, target, directory, suffix, raw_bytes, argv, verify_argv):
        started = time.time()
        status, size = OK, None
        partial = None
        try:
            self.check_space(directory, raw_bytes, "%s %s" % (tool, target))
            if self.dry_run:
                self.log("INFO", "would run: %s" % " ".join(argv))
                return OK
            name = "%s_%s%s" % (target, stamp(started), suffix)
            final = os.path.join(directory, name)
            partial = os.path.join(directory, "." + name + ".partial")
            try:
                rc, stderr, digest, size = self.stream_to_file(argv, partial)
            except OSError as exc:
                raise JobError(NO_SPACE if exc.errno == errno.ENOSPC else FAILED,
                               "%s %s: writing %s failed: %s" % (tool, target, partial, exc))
            if rc not in (0, 1) or (rc == 1 and tool != "tarball"):
                raise JobError(NO_SPACE if "No space left" in stderr else TOOL_FAILED,
                               "%s %s: %s exited %d: %s" % (tool, target, argv[-1] if tool == "tarball" else "pg_dump",
                                                            rc, stderr[-2000:]))
            if rc == 1:
                self.log("WARNING", "%s %s: tar reported files changed while read (exit 1): %s" % (
                    tool, target, stderr[-500:]))
            # verification: the bytes on disk are the bytes the tool wrote, and the archive reads back
            on_disk = file_sha256(partial)
            check = self.run(verify_argv + [partial])
            if on_disk != digest or check.returncode != 0 or not check.stdout.strip():
                os.replace(partial, final + ".unverified")
                partial = None
                raise JobError(VERIFY_FAILED, "%s %s: verification failed (sha256 written %s, on disk %s, %s exit %d: "
                                              "%s); kept as %s.unverified" % (
                                                  tool, target, digest, on_disk, verify_argv[0], check.returncode,
                                                  check.stderr.strip()[-500:], final))
            if self.encryption_on():
                final, digest, size = self.encrypt(tool, target, partial, final)
                os.unlink(partial)
                partial = None
                self.log("INFO", "%s %s: encrypted with age to the recipients in %s" % (
                    tool, target, self.c["encryption"]["recipients_file"]))
            else:
                os.replace(partial, final)
                partial = None
            self.write_sha256(final, digest)
            self.log("INFO", "%s %s: %s written and verified (%d bytes, sha256 %s, %d TOC/list lines, %.1f s)" % (
                tool, target, final, size, digest, len(check.stdout.splitlines()), time.time() - started))
            try:
                if self.offsite_due(started):
                    self.offsite(final)
            finally:
                self.prune(directory, target, suffix, time.time())
        except JobError as exc:
            status = exc.status
            self.log("ERROR", str(exc))
        except Exception as exc:  # anything unexpected still reports a failure
            status = FAILED
            self.log("ERROR", "%s %s: %s: %s" % (tool, target, type(exc).__name__, exc))
        finally:
            if partial and os.path.exists(partial):
                os.unlink(partial)
                self.log("INFO", "%s %s: removed the partial file %s" % (tool, target, partial))
        if not self.dry_run:
            self.metrics(tool, target, type_, status, started, size=size if status == OK else None,
                         verified=(tool == "tarball" and status == OK))
        return status

    def dump(self, database):
        try:
            raw = int(self.psql_value(database, "SELECT pg_database_size(current_database())"))
        except (JobError, ValueError) as exc:
            self.log("ERROR", "pg_dump %s: cannot read the database size: %s" % (database, exc))
            if not self.dry_run:
                self.metrics("pg_dump", database, "dump", TOOL_FAILED, time.time())
            return TOOL_FAILED
        argv = self.as_pg([os.path.join(self.bindir, "pg_dump"), "--format=custom",
                           "--compress=%s" % self.c["compress"], "-p", str(self.c["port"]), "-d", database])
        verify = [os.path.join(self.bindir, "pg_restore"), "--list"]
        return self.backup("pg_dump", "dump", database, self.c["dump_dir"], ".dump", raw, argv, verify)

    def tarball(self, spec):
        paths = spec["paths"]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            self.log("ERROR", "tarball %s: paths not found: %s - fix pg_dump_backup_paths" % (spec["name"], missing))
            if not self.dry_run:
                self.metrics("tarball", spec["name"], "tarball", CONFIG, time.time())
            return CONFIG
        raw = 0
        for path in paths:
            if os.path.isfile(path):
                raw += os.path.getsize(path)
            for root, _dirs, files in os.walk(path):
                for name in files:
                    try:
                        raw += os.lstat(os.path.join(root, name)).st_size
                    except OSError:
                        pass
        argv = ["tar", "--create", "--gzip", "--file", "-", "--absolute-names", "--warning=no-file-changed"]
        argv += ["--exclude=%s" % pattern for pattern in spec.get("exclude", [])]
        argv += paths
        return self.backup("tarball", "tarball", spec["name"], self.c["tarball_dir"], ".tar.gz", raw, argv,
                           ["tar", "--list", "--gzip", "--file"])


def load_config(path):
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        raise JobError(CONFIG, "cannot read %s: %s" % (path, exc))
    required = ("dump_dir", "tarball_dir", "databases", "os_user", "port", "compress", "retention_days",
                "monthly_keep_months", "space_factor", "space_reserve_bytes", "paths", "offsite", "log_file",
                "metrics_command", "pg_bindir")
    missing = [key for key in required if key not in config]
    if missing:
        raise JobError(CONFIG, "%s lacks %s" % (path, ", ".join(missing)))
    enc = config.get("encryption") or {}
    if enc.get("enabled") and not os.path.isfile(enc.get("recipients_file", "")):
        raise JobError(CONFIG, "%s: encryption is on but its recipients file %r does not exist" % (
            path, enc.get("recipients_file")))
    try:
        import grp
        import pwd
        config["group_gid"] = grp.getgrnam(config.get("group", config["os_user"])).gr_gid
        pwd.getpwnam(config["os_user"])
    except KeyError as exc:
        raise JobError(CONFIG, "unknown user or group: %s" % exc)
    return config


def build_parser():
    parser = argparse.ArgumentParser(prog="quantops-pg-dump-backup", description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--config", default=CONFIG_FILE)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="back up now (default)")
    run.add_argument("--database", action="append", default=None, help="only these databases (repeatable)")
    run.add_argument("--no-tarballs", action="store_true")
    sub.add_parser("plan", help="print what run would do; changes nothing")
    sub.add_parser("prune", help="apply the retention only")
    toc = sub.add_parser("toc", help="print the pg_restore -L list that restores whole tables")
    toc.add_argument("--file", required=True)
    toc.add_argument("--table", action="append", required=True, help="[schema.]table, repeatable")
    return parser


def toc_command(config, args):
    restore = os.path.join(config["pg_bindir"], "pg_restore")
    listing = subprocess.run([restore, "--list", args.file], capture_output=True, text=True, check=False)
    schema = subprocess.run([restore, "--schema-only", "--file", "-", args.file], capture_output=True, text=True,
                            check=False)
    catalog = subprocess.run([restore, "--data-only", "--schema", "_timescaledb_catalog", "--table", "hypertable",
                              "--file", "-", args.file], capture_output=True, text=True, check=False)
    if listing.returncode or schema.returncode:
        sys.stderr.write("pg_restore cannot read %s: %s\n" % (args.file, (listing.stderr + schema.stderr).strip()))
        return VERIFY_FAILED
    hypertables = hypertables_in_dump(catalog.stdout) if catalog.returncode == 0 else set()
    lines, problems = [], []
    for item in args.table:
        sch, _dot, table = item.rpartition(".")
        sch = sch or "public"
        if (sch, table) in hypertables:
            problems.append("%s.%s is a TimescaleDB hypertable: its rows are in chunk tables, pg_restore -t cannot "
                            "restore it alone; restore the whole dump into a scratch database (restore_into: "
                            "scratch) and copy the rows back" % (sch, table))
            continue
        selected = select_table_entries(listing.stdout, schema.stdout, sch, table)
        if not any(" TABLE %s %s " % (sch, table) in line for line in selected):
            problems.append("%s.%s is not in %s" % (sch, table, args.file))
        lines += selected
    if problems:
        sys.stderr.write("\n".join(problems) + "\n")
        return CONFIG
    sys.stdout.write("\n".join(lines) + "\n")
    return OK


def main(argv=None):
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    try:
        config = load_config(args.config)
    except JobError as exc:
        sys.stderr.write("quantops-pg-dump-backup: %s\n" % exc)
        return exc.status
    if command == "toc":
        return toc_command(config, args)
    log = Log(None if command == "plan" else config["log_file"])
    lock = exclusive_lock(LOCK_FILE)  # held until this process ends
    if lock is None:
        log("ERROR", "another quantops-pg-dump-backup run holds %s; not starting" % LOCK_FILE)
        return LOCKED
    job = Job(config, log, dry_run=(command == "plan"))
    now = time.time()
    if command == "prune":
        for database in config["databases"]:
            job.prune(config["dump_dir"], database, ".dump", now)
        for spec in config["paths"]:
            job.prune(config["tarball_dir"], spec["name"], ".tar.gz", now)
        return OK
    databases = getattr(args, "database", None) or config["databases"]
    unknown = [d for d in databases if d not in config["databases"]]
    if unknown:
        log("ERROR", "not configured databases: %s (pg_dump_backup_databases)" % unknown)
        return CONFIG
    log("INFO", "%s start: databases %s, tarballs %s" % (
        command, databases, [] if getattr(args, "no_tarballs", False) else [p["name"] for p in config["paths"]]))
    statuses = [job.dump(database) for database in databases]
    if not getattr(args, "no_tarballs", False):
        statuses += [job.tarball(spec) for spec in config["paths"]]
    if command == "plan":
        for database in databases:
            job.prune(config["dump_dir"], database, ".dump", now)
        for spec in config["paths"]:
            job.prune(config["tarball_dir"], spec["name"], ".tar.gz", now)
    status = max(statuses) if statuses else OK
    log("INFO" if status == OK else "ERROR", "%s end: exit status %d" % (command, status))
    return status


if __name__ == "__main__":
    sys.exit(main())
