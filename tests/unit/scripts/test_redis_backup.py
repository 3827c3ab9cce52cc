"""Unit tests of roles/redis_backup/files/quantops-redis-backup.py's decisions.

Parsing of INFO (real redis-server 8.0.2 output), the key counts of the
manifest, and the retention.  The run itself (BGSAVE, verification in a
scratch redis-server, ENOSPC, the precheck refusal, a backup under writes, the
restore) is tested on a real server in molecule/default (tests/test_redis.py).
"""

from __future__ import annotations

from pathlib import Path

from ansible_collections.quantops.platform.tests.unit.loader import load_backup_job

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "roles" / "redis_backup" / "files" / "quantops-redis-backup.py"
job = load_backup_job("quantops_redis_backup", SCRIPT.relative_to(ROOT))
DAY = 86400.0

# INFO persistence + keyspace of redis-server 8.0.2 (Debian 13), shortened.
INFO = """# Persistence\r
loading:0\r
rdb_changes_since_last_save:0\r
rdb_bgsave_in_progress:0\r
rdb_last_save_time:1796675110\r
rdb_last_bgsave_status:ok\r
aof_enabled:1\r
aof_last_write_status:ok\r
\r
# Keyspace\r
db0:keys=50,expires=0,avg_ttl=0,subexpiry=0\r
db2:keys=1,expires=1,avg_ttl=3600,subexpiry=0\r
"""


def test_info_is_parsed_into_fields():
    info = job.parse_info(INFO)
    assert info["rdb_bgsave_in_progress"] == "0"
    assert info["rdb_last_bgsave_status"] == "ok"
    assert info["rdb_last_save_time"] == "1796675110"
    assert "# Keyspace" not in info


def test_keyspace_counts_every_database_and_ignores_other_fields():
    assert job.keyspace(job.parse_info(INFO)) == {"db0": 50, "db2": 1}
    assert job.keyspace(job.parse_info("# Keyspace\r\n")) == {}


def test_retention_deletes_old_backups_but_never_the_newest_verified_one():
    now = 100 * DAY
    entries = [
        {"name": "redis_a.rdb", "mtime": now - 40 * DAY, "verified": True},
        {"name": "redis_b.rdb", "mtime": now - 31 * DAY, "verified": True},
        {"name": "redis_c.rdb.unverified", "mtime": now - 35 * DAY, "verified": False},
        {"name": "redis_d.rdb", "mtime": now - 2 * DAY, "verified": True},
    ]
    assert job.retention(entries, now, 30) == ["redis_a.rdb", "redis_b.rdb", "redis_c.rdb.unverified"]


def test_retention_keeps_the_only_verified_backup_however_old():
    now = 100 * DAY
    entries = [{"name": "redis_old.rdb", "mtime": now - 90 * DAY, "verified": True},
               {"name": "redis_new.rdb.unverified", "mtime": now - 1 * DAY, "verified": False}]
    assert not job.retention(entries, now, 30)


def test_backup_names_match_plain_and_encrypted_files_only():
    assert job.NAME_RE.match("redis_20261207T023000Z.rdb")
    assert job.NAME_RE.match("redis_20261207T023000Z.rdb.age")
    assert not job.NAME_RE.match("redis_20261207T023000Z.json")
    assert not job.NAME_RE.match(".redis_20261207T023000Z.rdb.partial")
