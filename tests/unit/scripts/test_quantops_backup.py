"""Unit tests of roles/backup_metrics/files/quantops_backup.py, the helpers both backup jobs import."""

from __future__ import annotations

import hashlib
import subprocess

from ansible_collections.quantops.platform.tests.unit.loader import load_file

qb = load_file("quantops_backup_shared", "roles/backup_metrics/files/quantops_backup.py")


def test_file_sha256_is_sha256sum_of_a_file_larger_than_one_chunk(tmp_path):
    path = tmp_path / "big.rdb"
    data = bytes(range(256)) * (qb.CHUNK // 256 * 2 + 3)
    path.write_bytes(data)
    assert qb.file_sha256(str(path)) == hashlib.sha256(data).hexdigest()
    out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True).stdout
    assert qb.file_sha256(str(path)) == out.split()[0]


def test_a_sha256sum_line_is_read_back_and_anything_else_is_not(tmp_path):
    (tmp_path / "a.dump").write_bytes(b"dump")
    line = qb.sha256_line(qb.file_sha256(str(tmp_path / "a.dump")), "a.dump")
    (tmp_path / "a.dump.sha256").write_text(line, encoding="utf-8")
    check = subprocess.run(["sha256sum", "-c", "a.dump.sha256"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert qb.parse_sha256_line(line) == hashlib.sha256(b"dump").hexdigest()
    assert qb.parse_sha256_line("%s *a.dump\n" % ("0f" * 32)) == "0f" * 32
    assert qb.parse_sha256_line("not a digest  a.dump") is None
    assert qb.parse_sha256_line("%s  a.dump b.dump" % ("0f" * 32)) is None


def test_the_run_lock_is_exclusive_until_it_is_closed(tmp_path):
    path = str(tmp_path / "job.lock")
    first = qb.exclusive_lock(path)
    assert first is not None
    assert qb.exclusive_lock(path) is None
    first.close()
    again = qb.exclusive_lock(path)
    assert again is not None
    again.close()
