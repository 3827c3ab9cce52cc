# Copyright: quantops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Record the outcome of one backup run as node_exporter textfile metrics.

Installed as /usr/local/sbin/quantops-backup-metrics by the role
quantops.platform.backup_metrics; every backup job of the platform (pgBackRest,
pg_dump, tarballs, restore drills) reports through it, so the metric names,
labels and files are the same for all of them:

    quantops-backup-metrics --tool pgbackrest|pg_dump|tarball|redis --target NAME
        --type full|diff|incr|dump|tarball|drill|verify|rdb [--exit-status N]
        [--duration SECONDS] [--size BYTES] [--started EPOCH] [--verified]
        [--rto SECONDS] [--rpo SECONDS] [--textfile-dir DIR]

It rewrites <textfile dir>/quantops_backup_<tool>_<target>.prom atomically
(temporary file in the same directory, fsync, rename) under an flock, keeping
the series of the other types already in that file.  A file that cannot be
parsed is moved aside (<file>.corrupt-<epoch>) with a warning, not merged.  Families (labels tool,
target, type), all gauges:

    quantops_backup_last_run_timestamp_seconds       every run
    quantops_backup_last_success_timestamp_seconds   runs with exit status 0
    quantops_backup_last_exit_status                 every run
    quantops_backup_duration_seconds                 --duration, or now - --started
    quantops_backup_size_bytes                       --size
    quantops_backup_last_verified_timestamp_seconds  --verified with exit status 0
    quantops_backup_drill_rto_seconds                --rto
    quantops_backup_drill_rpo_seconds                --rpo

--type verify (a check of the repository's files, `pgbackrest verify`, not a
backup and not a restore) writes families of its own, so a passing check can
never stand in for a missing backup or restore drill (BackupMissing,
BackupNotVerified):

    quantops_backup_verify_last_run_timestamp_seconds       every run
    quantops_backup_verify_last_success_timestamp_seconds   runs with exit status 0
    quantops_backup_verify_last_exit_status                 every run
    quantops_backup_verify_duration_seconds                 --duration, or now - --started

The text format is Prometheus' exposition format 0.0.4
(https://prometheus.io/docs/instrumenting/exposition_formats/).  The default
directory is node_exporter's textfile directory on Debian; the role writes the
configured one into /etc/default/quantops-backup-metrics (TEXTFILE_DIR=...).

Exit status: 0 written, 1 the file could not be written, 2 bad arguments.
Python 3 standard library only.
"""

import argparse
import fcntl
import math
import os
import re
import sys
import tempfile
import time

DEFAULT_TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
CONFIG_FILE = "/etc/default/quantops-backup-metrics"

TOOLS = ("pgbackrest", "pg_dump", "tarball", "redis")
TYPES = ("full", "diff", "incr", "dump", "tarball", "drill", "verify", "rdb")
LABELS = ("tool", "target", "type")

# name -> HELP text, in the order they are written.
FAMILIES = {
    "quantops_backup_last_run_timestamp_seconds": "Unix time the last backup run of this tool/target/type ended.",
    "quantops_backup_last_success_timestamp_seconds": "Unix time the last backup run with exit status 0 ended.",
    "quantops_backup_last_exit_status": "Exit status of the last backup run (0 = success).",
    "quantops_backup_duration_seconds": "Duration of the last backup run in seconds.",
    "quantops_backup_size_bytes": "Size of the backup written by the last run, in bytes.",
    "quantops_backup_last_verified_timestamp_seconds": "Unix time the backup was last verified (restore or read-back check).",
    "quantops_backup_drill_rto_seconds": "Recovery time measured by the last restore drill, in seconds.",
    "quantops_backup_drill_rpo_seconds": "Recovery point (data loss window) measured by the last restore drill, in seconds.",
    "quantops_backup_verify_last_run_timestamp_seconds": "Unix time the last repository verification (pgbackrest verify) ended.",
    "quantops_backup_verify_last_success_timestamp_seconds": "Unix time the last repository verification with exit status 0 ended.",
    "quantops_backup_verify_last_exit_status": "Exit status of the last repository verification (0 = every file checked is valid).",
    "quantops_backup_verify_duration_seconds": "Duration of the last repository verification in seconds.",
}

TARGET_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,128}$")
METRIC_NAME_RE = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE_RE = re.compile(
    r"^(?P<name>" + METRIC_NAME_RE + r")"
    r"(?:\{(?P<labels>(?:[^\"}]|\"(?:[^\"\\]|\\.)*\")*)\})?"
    r"\s+(?P<value>\S+)(?:\s+(?P<ts>-?[0-9]+))?\s*$")
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


class MetricsError(Exception):
    """A problem the caller has to fix (bad file content, unwritable directory)."""


def escape_label(value):
    """Escape a label value as the exposition format requires (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def unescape_label(value):
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({"n": "\n", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def parse_labels(text):
    labels, pos = {}, 0
    text = text or ""
    while pos < len(text.rstrip()):
        match = LABEL_RE.match(text, pos)
        if not match:
            raise MetricsError("cannot parse labels {%s}" % text)
        labels[match.group(1)] = unescape_label(match.group(2))
        pos = match.end()
    return labels


def parse_value(text):
    special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if text in special:
        return special[text]
    return float(text)


def format_value(value):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(float(value))


def parse(text):
    """Samples of an exposition-format text: {(name, ((label, value), ...)): float}.

    HELP/TYPE/comment lines are skipped (they are rewritten from FAMILIES); a
    line that is not a sample raises MetricsError.
    """
    samples = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = SAMPLE_RE.match(line)
        if not match:
            raise MetricsError("line %d is not a metric sample: %r" % (number, line))
        try:
            value = parse_value(match.group("value"))
        except ValueError:
            raise MetricsError("line %d has no numeric value: %r" % (number, line))
        labels = tuple(sorted(parse_labels(match.group("labels")).items()))
        samples[(match.group("name"), labels)] = value
    return samples


def update(samples, tool, target, type_, now, exit_status=0, duration=None, size=None,
           started=None, verified=False, rto=None, rpo=None):
    """Return a copy of samples with the series of tool/target/type set for one run ending at now."""
    result = dict(samples)
    labels = tuple(sorted({"tool": tool, "target": target, "type": type_}.items()))

    def put(name, value):
        result[(name, labels)] = float(value)

    if duration is None and started is not None:
        duration = max(0.0, now - started)
    # A verify run has metric families of its own, so it never counts as a backup.
    prefix = "quantops_backup_verify_" if type_ == "verify" else "quantops_backup_"
    put(prefix + "last_run_timestamp_seconds", now)
    put(prefix + "last_exit_status", exit_status)
    if exit_status == 0:
        put(prefix + "last_success_timestamp_seconds", now)
    if duration is not None:
        put(prefix + "duration_seconds", duration)
    if type_ == "verify":
        return result
    if size is not None:
        put("quantops_backup_size_bytes", size)
    if verified and exit_status == 0:
        put("quantops_backup_last_verified_timestamp_seconds", now)
    if rto is not None:
        put("quantops_backup_drill_rto_seconds", rto)
    if rpo is not None:
        put("quantops_backup_drill_rpo_seconds", rpo)
    return result


def render(samples):
    """Exposition text: known families first (HELP + TYPE gauge), then any other family as untyped."""
    by_name = {}
    for (name, labels), value in samples.items():
        by_name.setdefault(name, []).append((labels, value))
    names = [n for n in FAMILIES if n in by_name] + sorted(n for n in by_name if n not in FAMILIES)
    lines = []
    for name in names:
        if name in FAMILIES:
            lines.append("# HELP %s %s" % (name, FAMILIES[name]))
            lines.append("# TYPE %s gauge" % name)
        for labels, value in sorted(by_name[name]):
            text = ",".join('%s="%s"' % (key, escape_label(val)) for key, val in labels)
            lines.append("%s%s %s" % (name, "{%s}" % text if text else "", format_value(value)))
    return "\n".join(lines) + "\n" if lines else ""


def file_name(tool, target):
    safe = re.sub(r"[^A-Za-z0-9_]", "_", target)
    return "quantops_backup_%s_%s.prom" % (tool, safe)


def write_atomic(path, text, mode=0o644):
    """Write text to path through a temporary file in the same directory and rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def record(directory, tool, target, type_, now=None, **run):
    """Merge one run into the tool/target file of directory; return the path written."""
    if now is None:
        now = time.time()
    path = os.path.join(directory, file_name(tool, target))
    lock_path = os.path.join(directory, "." + file_name(tool, target) + ".lock")
    with open(lock_path, "a", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            with open(path, encoding="utf-8") as handle:
                current = parse(handle.read())
        except FileNotFoundError:
            current = {}
        except (MetricsError, UnicodeDecodeError) as exc:
            # Never block the report of this run on an old file nobody can read:
            # keep it aside (node_exporter reads *.prom only) and start afresh.
            aside = "%s.corrupt-%d" % (path, int(now))
            os.replace(path, aside)
            sys.stderr.write("quantops-backup-metrics: %s: %s; moved to %s\n" % (path, exc, aside))
            current = {}
        write_atomic(path, render(update(current, tool, target, type_, now, **run)))
    return path


def configured_dir(config_file=CONFIG_FILE):
    """TEXTFILE_DIR from the role's /etc/default file, else node_exporter's Debian default."""
    try:
        with open(config_file, encoding="utf-8") as handle:
            for line in handle:
                match = re.match(r"^\s*TEXTFILE_DIR\s*=\s*['\"]?([^'\"\s]+)['\"]?\s*$", line)
                if match:
                    return match.group(1)
    except FileNotFoundError:
        pass
    return DEFAULT_TEXTFILE_DIR


def non_negative(kind):
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a number" % text)
        if value < 0 or (isinstance(value, float) and not math.isfinite(value)):
            raise argparse.ArgumentTypeError("%r must be a finite number >= 0" % text)
        return value
    return convert


def target_name(text):
    if not TARGET_RE.match(text):
        raise argparse.ArgumentTypeError(
            "%r: use 1-128 characters of letters, digits, '_', '.', '-', '@', ':'" % text)
    return text


def build_parser():
    parser = argparse.ArgumentParser(
        prog="quantops-backup-metrics",
        description="Record one backup run as node_exporter textfile metrics (quantops_backup_*).")
    parser.add_argument("--tool", required=True, choices=TOOLS)
    parser.add_argument("--target", required=True, type=target_name,
                        help="stanza, database or tarball name")
    parser.add_argument("--type", required=True, choices=TYPES, dest="type_")
    parser.add_argument("--exit-status", type=non_negative(int), default=0,
                        help="exit status of the run (default 0 = success)")
    parser.add_argument("--duration", type=non_negative(float), help="seconds the run took")
    parser.add_argument("--size", type=non_negative(float), help="bytes written")
    parser.add_argument("--started", type=non_negative(float),
                        help="Unix time the run started (duration = now - started when --duration is not given)")
    parser.add_argument("--verified", action="store_true",
                        help="the backup was verified (restore or read-back check); needs exit status 0")
    parser.add_argument("--rto", type=non_negative(float), help="restore drill: seconds to recover")
    parser.add_argument("--rpo", type=non_negative(float), help="restore drill: seconds of data not recovered")
    parser.add_argument("--textfile-dir", default=None,
                        help="default: TEXTFILE_DIR of %s, else %s" % (CONFIG_FILE, DEFAULT_TEXTFILE_DIR))
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    directory = args.textfile_dir or configured_dir()
    if args.verified and args.exit_status != 0:
        sys.stderr.write("quantops-backup-metrics: --verified ignored: exit status is %d, not 0\n" % args.exit_status)
    try:
        if not os.path.isdir(directory):
            raise MetricsError("textfile directory %s does not exist (install the role "
                               "quantops.platform.backup_metrics or node_exporter)" % directory)
        path = record(directory, args.tool, args.target, args.type_, exit_status=args.exit_status,
                      duration=args.duration, size=args.size, started=args.started,
                      verified=args.verified, rto=args.rto, rpo=args.rpo)
    except (MetricsError, OSError) as exc:
        sys.stderr.write("quantops-backup-metrics: %s\n" % exc)
        return 1
    sys.stdout.write("%s\n" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
