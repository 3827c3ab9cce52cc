"""Unit tests of roles/pg_dump_backup/files/quantops-pg-dump-backup.py.py's decisions.

Retention (what is kept and why), the table-of-contents selection used for
single-table restores and the hypertable detection, on real pg_restore output
of PostgreSQL 17.12 / TimescaleDB 2.19.3 (excerpts of a dump of the lab's
quant_platform database with a probe table).  The backup run itself (pg_dump,
verification, free-space refusal, ENOSPC) is tested on a real server in
molecule/backup_restore (dump_steps.yml, tests/test_dump.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from ansible_collections.quantops.platform.tests.unit.loader import load_backup_job

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "roles" / "pg_dump_backup" / "files" / "quantops-pg-dump-backup.py"


job = load_backup_job("quantops_pg_dump_backup", SCRIPT.relative_to(ROOT))
DAY = 86400.0
NOW = time.mktime((2026, 11, 23, 12, 0, 0, 0, 0, 0)) - time.timezone  # 2026-11-23 12:00 UTC


def entry(name, days_old, verified=True):
    return {"name": name, "mtime": NOW - days_old * DAY, "verified": verified}


def test_retention_deletes_old_and_keeps_young():
    entries = [entry("db_new", 1), entry("db_29", 29), entry("db_31", 31), entry("db_60", 60)]
    decisions = job.plan_retention(entries, NOW, 30, 0)
    assert decisions["db_new"] == "newest verified backup"
    assert decisions["db_29"].startswith("younger than 30")
    assert decisions["db_31"] is None and decisions["db_60"] is None


def test_retention_never_deletes_the_newest_verified_backup():
    # every backup is past retention; the newest one is unverified
    entries = [entry("db_40", 40), entry("db_50", 50), entry("db_35_unverified", 35, verified=False)]
    decisions = job.plan_retention(entries, NOW, 30, 0)
    assert decisions == {"db_40": "newest verified backup", "db_50": None, "db_35_unverified": None}


def test_retention_without_any_verified_backup_keeps_the_young_ones_only():
    entries = [entry("a", 2, verified=False), entry("b", 45, verified=False)]
    assert job.plan_retention(entries, NOW, 30, 3) == {"a": "younger than 30 days", "b": None}


def test_monthly_keep_is_the_first_verified_backup_of_each_recent_month():
    # 2026-09-01 .. 2026-09-03, 2026-08-15 and 2026-08-20, 2025-10-05 (13 months back)
    def at(y, m, d, name, verified=True):
        return {"name": name, "mtime": time.mktime((y, m, d, 3, 0, 0, 0, 0, 0)) - time.timezone, "verified": verified}

    entries = [at(2026, 9, 1, "sep1", verified=False), at(2026, 9, 2, "sep2"), at(2026, 9, 3, "sep3"),
               at(2026, 8, 15, "aug15"), at(2026, 8, 20, "aug20"), at(2025, 10, 5, "oct25"),
               entry("today", 0)]
    decisions = job.plan_retention(entries, NOW, 30, 12)
    assert decisions["today"] == "newest verified backup"
    assert "monthly keep" in decisions["sep2"] and "2026-09" in decisions["sep2"]  # sep1 is unverified
    assert decisions["sep1"] is None and decisions["sep3"] is None
    assert "2026-08" in decisions["aug15"] and decisions["aug20"] is None
    assert decisions["oct25"] is None  # 13 calendar months back, only 12 kept
    assert "monthly keep" in job.plan_retention(entries, NOW, 30, 14)["oct25"]


def test_list_backups_reads_names_and_sha256_files(tmp_path):
    for name in ("quant_platform_20261101T020000Z.dump", "quant_platform_20261102T020000Z.dump",
                 "quant_platform_20261103T020000Z.dump.unverified", "quant_platform_x_20261101T020000Z.dump",
                 ".quant_platform_20261104T020000Z.dump.partial", "quant_20261101T020000Z.dump"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "quant_platform_20261101T020000Z.dump.sha256").write_text("0" * 64 + "  x\n")
    found = {e["name"]: e["verified"] for e in job.list_backups(str(tmp_path), "quant_platform", ".dump")}
    assert found == {"quant_platform_20261101T020000Z.dump": True, "quant_platform_20261102T020000Z.dump": False,
                     "quant_platform_20261103T020000Z.dump.unverified": False}
    assert [e["name"] for e in job.list_backups(str(tmp_path), "quant", ".dump")] == ["quant_20261101T020000Z.dump"]


def test_sha256_files_are_sha256sum_format(tmp_path):
    path = tmp_path / "a.sha256"
    path.write_text(job.sha256_line("ab" * 32, "a.dump"), encoding="utf-8")
    assert path.read_text(encoding="utf-8") == "ab" * 32 + "  a.dump\n"
    assert job.read_sha256_file(str(path)) == "ab" * 32


def test_space_estimate():
    assert job.estimate_bytes(42325683, 1.0, 104857600) == 147183283
    assert job.estimate_bytes(1000, 0.5, 0) == 500


def test_stamp_is_utc():
    assert job.stamp(NOW) == "20261123T120000Z"


# pg_restore --list and --schema-only of the lab database with two probe tables (excerpts).
TOC = """;
; Archive created at 2026-11-23 12:31:02 UTC
4; 3079 16467 EXTENSION - timescaledb \n\
6859; 0 0 COMMENT - EXTENSION timescaledb \n\
287; 1259 17232 TABLE public ohlcv_data quant_app
6862; 0 0 ACL public TABLE ohlcv_data quant_app
585; 1259 20009 TABLE public dump_restore_probe postgres
7159; 0 0 COMMENT public TABLE dump_restore_probe postgres
7160; 0 0 ACL public TABLE dump_restore_probe postgres
584; 1259 20008 SEQUENCE public dump_restore_probe_id_seq postgres
587; 1259 20019 TABLE public serial_probe postgres
586; 1259 20018 SEQUENCE public serial_probe_id_seq postgres
7164; 0 0 SEQUENCE OWNED BY public serial_probe_id_seq postgres
5317; 2604 20022 DEFAULT public serial_probe id postgres
6848; 0 20009 TABLE DATA public dump_restore_probe postgres
6550; 0 17232 TABLE DATA public ohlcv_data quant_app
6850; 0 20019 TABLE DATA public serial_probe postgres
7173; 0 0 SEQUENCE SET public dump_restore_probe_id_seq postgres
7174; 0 0 SEQUENCE SET public serial_probe_id_seq postgres
6378; 2606 20016 CONSTRAINT public dump_restore_probe dump_restore_probe_pkey postgres
6381; 2606 20024 CONSTRAINT public serial_probe serial_probe_pkey postgres
6379; 1259 20017 INDEX public dump_restore_probe_ticker_day postgres
6382; 2606 20025 FK CONSTRAINT public serial_probe serial_probe_probe_id_fkey postgres
"""

SCHEMA = """
--
-- Name: dump_restore_probe; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.dump_restore_probe (
    id bigint NOT NULL,
    ticker text NOT NULL
);

--
-- Name: TABLE dump_restore_probe; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TABLE public.dump_restore_probe IS 'probe';

--
-- Name: dump_restore_probe_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

ALTER TABLE public.dump_restore_probe ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.dump_restore_probe_id_seq
);

--
-- Name: serial_probe_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE public.serial_probe_id_seq
    AS integer;

--
-- Name: serial_probe_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: postgres
--

ALTER SEQUENCE public.serial_probe_id_seq OWNED BY public.serial_probe.id;

--
-- Name: dump_restore_probe_ticker_day; Type: INDEX; Schema: public; Owner: postgres
--

CREATE UNIQUE INDEX dump_restore_probe_ticker_day ON public.dump_restore_probe USING btree (ticker, traded_on);

--
-- Name: serial_probe serial_probe_probe_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.serial_probe
    ADD CONSTRAINT serial_probe_probe_id_fkey FOREIGN KEY (probe_id) REFERENCES public.dump_restore_probe(id);
"""


def ids(lines):
    return [int(line.split(";")[0]) for line in lines]


def test_table_selection_takes_the_table_and_everything_that_belongs_to_it():
    selected = job.select_table_entries(TOC, SCHEMA, "public", "dump_restore_probe")
    # table, comment, ACL, identity sequence, data, sequence value, primary key, index -
    # not the foreign key of serial_probe that points at it
    assert ids(selected) == [585, 7159, 7160, 584, 6848, 7173, 6378, 6379]


def test_table_selection_of_a_serial_table_with_its_own_foreign_key():
    selected = job.select_table_entries(TOC, SCHEMA, "public", "serial_probe")
    assert ids(selected) == [587, 586, 7164, 5317, 6850, 7174, 6381, 6382]


def test_table_selection_of_an_unknown_table_is_empty():
    assert job.select_table_entries(TOC, SCHEMA, "public", "dump_restore") == []
    assert job.select_table_entries(TOC, SCHEMA, "other", "dump_restore_probe") == []


def test_hypertables_are_read_from_the_catalog_copy():
    data = ("COPY _timescaledb_catalog.hypertable (id, schema_name, table_name, associated_schema_name) FROM stdin;\n"
            "1\tpublic\tohlcv_data\t_timescaledb_internal\n"
            "2\tpublic\ttechnical_analysis\t_timescaledb_internal\n"
            "\\.\n"
            "COPY other (a, b) FROM stdin;\n1\tx\n\\.\n")
    assert job.hypertables_in_dump(data) == {("public", "ohlcv_data"), ("public", "technical_analysis")}


def test_quote_ident():
    assert job.quote_ident("ohlcv_data") == "ohlcv_data"
    assert job.quote_ident("Mixed") == '"Mixed"'
    assert job.quote_ident('a"b') == '"a""b"'


def test_prune_deletes_files_and_their_sha256(tmp_path):
    old = tmp_path / "db_20260101T020000Z.dump"
    newest = tmp_path / "db_20260201T020000Z.dump"
    for path, days in ((old, 90), (newest, 60)):
        path.write_bytes(b"x")
        (tmp_path / (path.name + ".sha256")).write_text("0" * 64 + "  " + path.name + "\n")
        os.utime(path, (NOW - days * DAY, NOW - days * DAY))
    messages = []
    runner = job.Job({"pg_bindir": "/usr/lib/postgresql/17/bin", "retention_days": 30, "monthly_keep_months": 0},
                     lambda level, text: messages.append((level, text)))
    assert runner.prune(str(tmp_path), "db", ".dump", NOW) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [newest.name, newest.name + ".sha256"]
    assert any("retention: deleting" in text and old.name in text for _level, text in messages)


def test_encrypted_dumps_are_one_series_with_the_plain_ones(tmp_path):
    """<name>.dump.age (encryption on) and <name>.dump (before it was on) share the retention."""
    for name in ("db_20261101T020000Z.dump", "db_20261102T020000Z.dump.age", "db_20261103T020000Z.dump.age",
                 ".db_20261104T020000Z.dump.age.partial", "db_20261105T020000Z.dump.age.sha256",
                 "db_20261106T020000Z.dump.agex"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "db_20261102T020000Z.dump.age.sha256").write_text("0" * 64 + "  x\n")
    found = {e["name"]: e["verified"] for e in job.list_backups(str(tmp_path), "db", ".dump")}
    assert found == {"db_20261101T020000Z.dump": False, "db_20261102T020000Z.dump.age": True,
                     "db_20261103T020000Z.dump.age": False}


def test_prune_never_deletes_the_newest_verified_encrypted_dump(tmp_path):
    plain, encrypted = tmp_path / "db_20260101T020000Z.dump", tmp_path / "db_20260201T020000Z.dump.age"
    for path, days in ((plain, 90), (encrypted, 60)):
        path.write_bytes(b"x")
        (tmp_path / (path.name + ".sha256")).write_text("0" * 64 + "  " + path.name + "\n")
        os.utime(path, (NOW - days * DAY, NOW - days * DAY))
    runner = job.Job({"pg_bindir": "/usr/lib/postgresql/17/bin", "retention_days": 30, "monthly_keep_months": 0},
                     lambda level, text: None)
    assert runner.prune(str(tmp_path), "db", ".dump", NOW) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [encrypted.name, encrypted.name + ".sha256"]


def test_encryption_without_a_recipients_file_is_a_configuration_error(tmp_path):
    config = {key: "x" for key in ("dump_dir", "tarball_dir", "os_user", "compress", "log_file", "metrics_command",
                                   "pg_bindir")}
    config.update(databases=["db"], port=5432, retention_days=30, monthly_keep_months=0, space_factor=1.0,
                  space_reserve_bytes=0, paths=[], offsite={"enabled": False},
                  encryption={"enabled": True, "recipients_file": str(tmp_path / "missing.txt")})
    path = tmp_path / "config.json"
    path.write_text(job.json.dumps(config), encoding="utf-8")
    try:
        job.load_config(str(path))
    except job.JobError as exc:
        assert exc.status == job.CONFIG and "recipients file" in str(exc)
    else:
        raise AssertionError("load_config accepted encryption without recipients")
