"""Unit tests of roles/backup_metrics/files/quantops-backup-metrics.py.

The script runs against real files in tmp_path: parsing, merging of the
series of one run into the existing file, the atomic rewrite, the command
line.  prometheus_client is not in the venv, so the output is checked by a
strict regular expression of the text exposition format 0.0.4 and, when
scripts/promtool-test.sh has already unpacked promtool into .cache/promtool,
also by `promtool check metrics` (Prometheus' own parser).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.quantops.platform.tests.unit.loader import load_file

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "roles" / "backup_metrics" / "files" / "quantops-backup-metrics.py"


qbm = load_file("quantops_backup_metrics", SCRIPT.relative_to(ROOT))

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    r"^(?P<name>%s)(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*=%s)(?:,[a-zA-Z_][a-zA-Z0-9_]*=%s)*\})? "
    r"(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)|\+Inf|-Inf|NaN)$" % (NAME, LABEL_VALUE, LABEL_VALUE))
HELP = re.compile(r"^# HELP (%s) \S.*$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
ALL_FAMILIES = set(qbm.FAMILIES)


def assert_exposition_format(text):
    """Strict check: every line HELP, TYPE or a sample; HELP+TYPE once per family, before its samples."""
    assert text.endswith("\n")
    typed, helped, seen_samples = {}, set(), []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = HELP.match(line).group(1)
            assert name not in helped and name not in seen_samples, line
            helped.add(name)
        elif line.startswith("# TYPE "):
            match = TYPE.match(line)
            assert match, line
            assert match.group(1) not in typed and match.group(1) not in seen_samples, line
            typed[match.group(1)] = match.group(2)
        else:
            match = SAMPLE.match(line)
            assert match, "not a sample line: %r" % line
            name = match.group("name")
            if seen_samples and seen_samples[-1] != name:
                assert name not in seen_samples, "family %s is not contiguous" % name
            seen_samples.append(name)
    return typed


def promtool():
    found = sorted((ROOT / ".cache" / "promtool").glob("*/usr/bin/promtool"))
    return found[-1] if found else None


def labels(tool="pg_dump", target="quant_platform", type_="dump"):
    return (("target", target), ("tool", tool), ("type", type_))


def families(samples, key=None):
    """The series of one label set, by family name without the quantops_backup_ prefix."""
    key = key or labels()
    return {name[len("quantops_backup_"):]: value for (name, series), value in samples.items() if series == key}


def test_update_sets_every_family_of_a_successful_verified_run():
    samples = qbm.update({}, "pg_dump", "quant_platform", "dump", now=1000.0, exit_status=0, duration=12.5,
                         size=4096, verified=True)
    assert families(samples) == {"last_run_timestamp_seconds": 1000.0, "last_success_timestamp_seconds": 1000.0,
                                 "last_exit_status": 0, "duration_seconds": 12.5, "size_bytes": 4096,
                                 "last_verified_timestamp_seconds": 1000.0}


def test_a_failed_run_keeps_the_last_success_and_verification():
    first = qbm.update({}, "pg_dump", "quant_platform", "dump", now=1000.0, size=4096, verified=True)
    second = qbm.update(first, "pg_dump", "quant_platform", "dump", now=2000.0, exit_status=3, verified=True)
    after = families(second)
    assert (after["last_run_timestamp_seconds"], after["last_exit_status"]) == (2000.0, 3)
    assert (after["last_success_timestamp_seconds"], after["last_verified_timestamp_seconds"]) == (1000.0, 1000.0)
    assert after["size_bytes"] == 4096
    assert families(first)["last_exit_status"] == 0  # input not mutated


def test_duration_comes_from_started_when_not_given():
    samples = qbm.update({}, "tarball", "config", "tarball", now=1100.0, started=1000.0)
    assert samples[("quantops_backup_duration_seconds", labels("tarball", "config", "tarball"))] == 100.0
    samples = qbm.update({}, "tarball", "config", "tarball", now=1100.0, started=1000.0, duration=7)
    assert samples[("quantops_backup_duration_seconds", labels("tarball", "config", "tarball"))] == 7


def test_drill_rto_rpo():
    samples = qbm.update({}, "pgbackrest", "main", "drill", now=50.0, rto=321.5, rpo=60, verified=True)
    key = labels("pgbackrest", "main", "drill")
    assert samples[("quantops_backup_drill_rto_seconds", key)] == 321.5
    assert samples[("quantops_backup_drill_rpo_seconds", key)] == 60
    assert samples[("quantops_backup_last_verified_timestamp_seconds", key)] == 50.0


def test_repository_verification_has_families_of_its_own():
    """A passing `pgbackrest verify` must never look like a backup or a restore drill."""
    first = qbm.update({}, "pgbackrest", "main", "verify", now=100.0, started=40.0, verified=True, size=5)
    second = qbm.update(first, "pgbackrest", "main", "verify", now=200.0, exit_status=1, duration=3)
    key = labels("pgbackrest", "main", "verify")
    assert second[("quantops_backup_verify_last_run_timestamp_seconds", key)] == 200.0
    assert second[("quantops_backup_verify_last_exit_status", key)] == 1
    assert second[("quantops_backup_verify_last_success_timestamp_seconds", key)] == 100.0
    assert second[("quantops_backup_verify_duration_seconds", key)] == 3
    assert first[("quantops_backup_verify_duration_seconds", key)] == 60.0
    assert all(name.startswith("quantops_backup_verify_") for name, _labels in second)
    assert_exposition_format(qbm.render(second))


def test_render_then_parse_round_trips_with_escaped_labels():
    samples = qbm.update({}, "pg_dump", 'we"ird\\na\nme', "dump", now=1700000000.25, size=1.5e12)
    samples[("other_metric", ())] = 42.0
    text = qbm.render(samples)
    assert qbm.parse(text) == samples
    assert 'target="we\\"ird\\\\na\\nme"' in text
    assert "quantops_backup_last_run_timestamp_seconds{" in text and " 1700000000.25\n" in text
    assert_exposition_format(text)


def test_render_has_help_and_gauge_type_for_each_family():
    samples = qbm.update({}, "pg_dump", "db", "dump", now=1.0, duration=2, size=3, verified=True, rto=4, rpo=5)
    samples = qbm.update(samples, "pg_dump", "db", "verify", now=1.0, duration=2)
    typed = assert_exposition_format(qbm.render(samples))
    assert typed == {name: "gauge" for name in ALL_FAMILIES}


def test_parse_rejects_garbage_and_keeps_comments_out():
    assert qbm.parse("# HELP x y\n# TYPE x gauge\nx 1\n\n") == {("x", ()): 1.0}
    assert qbm.parse('x{a="1",b="two"} 2 1700000000000\n') == {("x", (("a", "1"), ("b", "two"))): 2.0}
    assert qbm.parse("x +Inf\n")[("x", ())] == float("inf")
    with pytest.raises(qbm.MetricsError):
        qbm.parse("this is not a metric\n")
    with pytest.raises(qbm.MetricsError):
        qbm.parse("x{a=1} 2\n")
    with pytest.raises(qbm.MetricsError):
        qbm.parse("x abc\n")


def test_record_keeps_other_types_and_rewrites_one_file(tmp_path):
    path = qbm.record(str(tmp_path), "pgbackrest", "main", "full", now=100.0, size=10, verified=False)
    qbm.record(str(tmp_path), "pgbackrest", "main", "incr", now=200.0, size=2, exit_status=0)
    qbm.record(str(tmp_path), "pgbackrest", "main", "full", now=300.0, exit_status=1)
    assert path == str(tmp_path / "quantops_backup_pgbackrest_main.prom")
    samples = qbm.parse(Path(path).read_text(encoding="utf-8"))
    full, incr = labels("pgbackrest", "main", "full"), labels("pgbackrest", "main", "incr")
    assert samples[("quantops_backup_last_exit_status", full)] == 1
    assert samples[("quantops_backup_last_success_timestamp_seconds", full)] == 100.0
    assert samples[("quantops_backup_size_bytes", full)] == 10
    assert samples[("quantops_backup_last_success_timestamp_seconds", incr)] == 200.0
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".prom") == ["quantops_backup_pgbackrest_main.prom"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_file_names_are_safe():
    assert qbm.file_name("pg_dump", "quant_platform") == "quantops_backup_pg_dump_quant_platform.prom"
    assert qbm.file_name("tarball", "etc.postgresql-conf") == "quantops_backup_tarball_etc_postgresql_conf.prom"


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "quantops_backup_pg_dump_db.prom"
    path.write_text("old 1\n", encoding="utf-8")

    def broken_fsync(_fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(qbm.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        qbm.write_atomic(str(path), "new 2\n")
    assert path.read_text(encoding="utf-8") == "old 1\n"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_write_atomic_replaces_by_rename(tmp_path):
    path = tmp_path / "m.prom"
    path.write_text("old 1\n", encoding="utf-8")
    inode = os.stat(path).st_ino
    qbm.write_atomic(str(path), "new 2\n")
    assert path.read_text(encoding="utf-8") == "new 2\n"
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one, never truncated in place


def test_configured_dir(tmp_path):
    config = tmp_path / "quantops-backup-metrics"
    assert qbm.configured_dir(str(config)) == qbm.DEFAULT_TEXTFILE_DIR
    config.write_text("# written by ansible\nTEXTFILE_DIR=/srv/textfile\n", encoding="utf-8")
    assert qbm.configured_dir(str(config)) == "/srv/textfile"


def _cli(tmp_path, *args):
    return subprocess.run([sys.executable, str(SCRIPT), "--textfile-dir", str(tmp_path)] + list(args),
                          capture_output=True, text=True, check=False)


def test_cli_writes_the_contract_metrics(tmp_path):
    proc = _cli(tmp_path, "--tool", "pg_dump", "--target", "quant_platform", "--type", "dump",
                "--exit-status", "0", "--duration", "3.5", "--size", "123456", "--verified")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "quantops_backup_pg_dump_quant_platform.prom").read_text(encoding="utf-8")
    assert_exposition_format(text)
    assert re.search(r'^quantops_backup_size_bytes\{target="quant_platform",tool="pg_dump",type="dump"\} 123456$',
                     text, re.M)
    assert re.search(r"^quantops_backup_last_exit_status\{[^}]*\} 0$", text, re.M)
    proc = _cli(tmp_path, "--tool", "pg_dump", "--target", "quant_platform", "--type", "dump", "--exit-status", "3",
                "--verified")
    assert proc.returncode == 0
    assert "--verified ignored" in proc.stderr
    text = (tmp_path / "quantops_backup_pg_dump_quant_platform.prom").read_text(encoding="utf-8")
    assert re.search(r"^quantops_backup_last_exit_status\{[^}]*\} 3$", text, re.M)


@pytest.mark.parametrize("args", [
    ["--tool", "rsync", "--target", "x", "--type", "dump"],
    ["--tool", "pg_dump", "--target", "bad name", "--type", "dump"],
    ["--tool", "pg_dump", "--target", "x", "--type", "weekly"],
    ["--tool", "pg_dump", "--target", "x", "--type", "dump", "--size", "-1"],
    ["--tool", "pg_dump", "--target", "x", "--type", "dump", "--duration", "nan"],
    ["--tool", "pg_dump", "--type", "dump"],
])
def test_cli_refuses_bad_arguments(tmp_path, args):
    proc = _cli(tmp_path, *args)
    assert proc.returncode == 2
    assert not list(tmp_path.glob("*.prom"))


def test_cli_reports_a_missing_directory(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--textfile-dir", str(tmp_path / "nope"), "--tool", "tarball",
                           "--target", "config", "--type", "tarball"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "does not exist" in proc.stderr


def test_cli_moves_a_corrupt_file_aside_and_still_reports(tmp_path):
    path = tmp_path / "quantops_backup_tarball_config.prom"
    path.write_text("garbage {here\n", encoding="utf-8")
    proc = _cli(tmp_path, "--tool", "tarball", "--target", "config", "--type", "tarball")
    assert proc.returncode == 0
    assert "line 1" in proc.stderr and "moved to" in proc.stderr
    kept = list(tmp_path.glob("quantops_backup_tarball_config.prom.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8") == "garbage {here\n"
    samples = qbm.parse(path.read_text(encoding="utf-8"))
    assert samples[("quantops_backup_last_exit_status", labels("tarball", "config", "tarball"))] == 0


@pytest.mark.skipif(promtool() is None, reason="promtool not unpacked yet (bash scripts/promtool-test.sh does it)")
def test_promtool_accepts_the_output(tmp_path):
    for type_ in ("full", "incr", "drill"):
        _cli(tmp_path, "--tool", "pgbackrest", "--target", "main", "--type", type_, "--size", "10", "--duration", "2",
             "--verified", "--rto", "30", "--rpo", "5")
    text = (tmp_path / "quantops_backup_pgbackrest_main.prom").read_text(encoding="utf-8")
    proc = subprocess.run([str(promtool()), "check", "metrics"], input=text, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
