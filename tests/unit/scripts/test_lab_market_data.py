"""Unit tests of scripts/lab_market_data.py on small in-memory samples.

The samples are verbatim excerpts of the real source files (arch 8.0.0 and
backtesting 0.6.6).  Nothing here touches the network: the wheels are built in
tmp_path and the download step is only exercised on already-cached files.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "lab_market_data.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("lab_market_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the module through sys.modules while the class is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


lmd = _load_script()

# arch's files use CRLF line ends.
SP500 = (
    "Date,Open,High,Low,Close,Adj Close,Volume\r\n"
    "1/4/1999,1229.22998,1248.810059,1219.099976,1228.099976,1228.099976,877000000\r\n"
    "1/5/1999,1228.099976,1246.109985,1228.099976,1244.780029,1244.780029,775000000\r\n"
)
NASDAQ = (
    "Date,Open,High,Low,Close,Adj Close,Volume\r\n"
    "1/4/1999,2207.540039,2233.570068,2192.679932,2208.050049,2208.050049,936660000\r\n"
    "1/5/1999,2207.75,2251.77002,2206.48999,2251.27002,2251.27002,948350000\r\n"
)
GOOG = (
    ",Open,High,Low,Close,Volume\n"
    "2004-08-19,100,104.06,95.96,100.34,22351900\n"
    "2004-08-20,101.01,109.08,100.5,108.31,11428600\n"
)
BTCUSD = (
    ",Open,High,Low,Close,Volume\n"
    "2012-01-31,4.58,7.38,3.8,5.55,2012.25343589\n"
    "2012-02-29,5.55,6.5,3.8,4.99,4761.6090813\n"
)
# Friday's last bar, the Sunday-evening open and Monday's first two hours.
EURUSD = (
    ",Open,High,Low,Close,Volume\n"
    "2017-04-21 20:00:00,1.07029,1.07306,1.06986,1.07268,2681\n"
    "2017-04-23 21:00:00,1.0893,1.09063,1.08803,1.0898,1758\n"
    "2017-04-23 22:00:00,1.08977,1.08995,1.08701,1.08842,2532\n"
    "2017-04-23 23:00:00,1.08839,1.08902,1.08648,1.08734,1166\n"
    "2017-04-24 00:00:00,1.08732,1.08768,1.0838,1.08504,2562\n"
    "2017-04-24 01:00:00,1.08506,1.08555,1.08366,1.08405,1104\n"
)


# --- dates --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [("1/4/1999", "1999-01-04"), ("12/31/2018", "2018-12-31"), ("2/29/2000", "2000-02-29")],
)
def test_parse_us_date(text, expected):
    assert lmd.parse_us_date(text) == expected


@pytest.mark.parametrize("text", ["1999-01-04", "13/1/1999", "2/30/2001", ""])
def test_parse_us_date_rejects_other_formats(text):
    with pytest.raises(lmd.DataError):
        lmd.parse_us_date(text)


# --- sources ------------------------------------------------------------------------
def test_read_arch_drops_adj_close_and_keeps_decimal_strings():
    rows = lmd.read_arch(SP500, "SPX", "US")
    assert rows == [
        (
            "SPX",
            "US",
            "1999-01-04",
            "1229.22998",
            "1248.810059",
            "1219.099976",
            "1228.099976",
            "877000000",
        ),
        (
            "SPX",
            "US",
            "1999-01-05",
            "1228.099976",
            "1246.109985",
            "1228.099976",
            "1244.780029",
            "775000000",
        ),
    ]


def test_read_arch_refuses_unexpected_header():
    with pytest.raises(lmd.DataError, match="header"):
        lmd.read_arch(GOOG, "SPX", "US")


def test_read_backtesting_daily_keeps_fractional_volume():
    rows = lmd.read_backtesting_daily(BTCUSD, "BTCUSD", "CRYPTO")
    assert rows[0] == (
        "BTCUSD",
        "CRYPTO",
        "2012-01-31",
        "4.58",
        "7.38",
        "3.8",
        "5.55",
        "2012.25343589",
    )
    assert rows[1][-1] == "4761.6090813"


def test_non_numeric_value_is_refused():
    bad = GOOG.replace("104.06", "n/a")
    with pytest.raises(lmd.DataError, match="not a number"):
        lmd.read_backtesting_daily(bad, "GOOG", "US")


def test_hourly_bars_aggregate_to_utc_days():
    rows = lmd.aggregate_hourly(EURUSD, "EURUSD", "FX")
    assert rows == [
        ("EURUSD", "FX", "2017-04-21", "1.07029", "1.07306", "1.06986", "1.07268", "2681"),
        # first open, max high, min low, last close, summed volume
        ("EURUSD", "FX", "2017-04-23", "1.0893", "1.09063", "1.08648", "1.08734", "5456"),
        ("EURUSD", "FX", "2017-04-24", "1.08732", "1.08768", "1.08366", "1.08405", "3666"),
    ]


def test_hourly_aggregation_ignores_file_order():
    header, *lines = EURUSD.splitlines(keepends=True)
    shuffled = header + "".join(reversed(lines))
    assert lmd.aggregate_hourly(shuffled, "EURUSD", "FX") == lmd.aggregate_hourly(
        EURUSD, "EURUSD", "FX"
    )


def test_hourly_aggregation_sums_fractional_volume_exactly():
    text = (
        ",Open,High,Low,Close,Volume\n"
        "2018-01-02 00:00:00,1.2,1.3,1.1,1.25,0.1\n"
        "2018-01-02 01:00:00,1.25,1.26,1.2,1.21,0.2\n"
    )
    (row,) = lmd.aggregate_hourly(text, "EURUSD", "FX")
    assert row[-1] == "0.3"


def test_hourly_duplicate_bar_is_refused():
    header, first, *_rest = EURUSD.splitlines(keepends=True)
    with pytest.raises(lmd.DataError, match="duplicate"):
        lmd.aggregate_hourly(header + first + first, "EURUSD", "FX")


def test_series_mapping():
    mapping = {(s.member.rsplit("/", 1)[-1], s.ticker, s.region, s.interval) for s in lmd.SERIES}
    assert mapping == {
        ("sp500.csv.gz", "SPX", "US", "1d"),
        ("nasdaq.csv.gz", "IXIC", "US", "1d"),
        ("GOOG.csv", "GOOG", "US", "1d"),
        ("EURUSD.csv", "EURUSD", "FX", "1d"),
        ("BTCUSD.csv", "BTCUSD", "CRYPTO", "1mo"),
    }
    assert {s.wheel.requirement for s in lmd.SERIES} == {"arch==8.0.0", "backtesting==0.6.6"}


def test_read_series_decompresses_gzip_members():
    series = next(s for s in lmd.SERIES if s.ticker == "IXIC")
    rows = lmd.read_series(series, gzip.compress(NASDAQ.encode()))
    assert [row[:3] for row in rows] == [("IXIC", "US", "1999-01-04"), ("IXIC", "US", "1999-01-05")]


# --- normalised output --------------------------------------------------------------
def _all_rows():
    return (
        lmd.read_arch(SP500, "SPX", "US")
        + lmd.aggregate_hourly(EURUSD, "EURUSD", "FX")
        + list(reversed(lmd.read_backtesting_daily(GOOG, "GOOG", "US")))
        + lmd.read_arch(NASDAQ, "IXIC", "US")
        + lmd.read_backtesting_daily(BTCUSD, "BTCUSD", "CRYPTO")
    )


def test_normalise_sorts_by_ticker_then_date():
    rows = lmd.normalise(_all_rows())
    keys = [(row[0], row[2]) for row in rows]
    assert keys == sorted(keys)
    assert [row[0] for row in rows] == (
        ["BTCUSD"] * 2 + ["EURUSD"] * 3 + ["GOOG"] * 2 + ["IXIC"] * 2 + ["SPX"] * 2
    )


def test_normalise_refuses_duplicate_keys():
    rows = lmd.read_arch(SP500, "SPX", "US")
    with pytest.raises(lmd.DataError, match="duplicate"):
        lmd.normalise(rows + rows[:1])


def test_render_csv_header_and_line_ends():
    text = lmd.render_csv(lmd.normalise(_all_rows())).decode()
    lines = text.split("\n")
    assert lines[0] == "ticker,region,date,open,high,low,close,volume"
    assert lines[1] == "BTCUSD,CRYPTO,2012-01-31,4.58,7.38,3.8,5.55,2012.25343589"
    assert lines[-1] == "" and "\r" not in text
    assert len(lines) == 1 + 11 + 1


def test_manifest_counts_and_digest():
    rows = lmd.normalise(_all_rows())
    csv_bytes = lmd.render_csv(rows)
    manifest = lmd.build_manifest(rows, csv_bytes)
    assert manifest["total_rows"] == 11
    assert manifest["csv_sha256"] == hashlib.sha256(csv_bytes).hexdigest()
    summary = {
        (s["ticker"], s["region"]): (s["rows"], s["first_date"], s["last_date"])
        for s in manifest["series"]
    }
    assert summary == {
        ("BTCUSD", "CRYPTO"): (2, "2012-01-31", "2012-02-29"),
        ("EURUSD", "FX"): (3, "2017-04-21", "2017-04-24"),
        ("GOOG", "US"): (2, "2004-08-19", "2004-08-20"),
        ("IXIC", "US"): (2, "1999-01-04", "1999-01-05"),
        ("SPX", "US"): (2, "1999-01-04", "1999-01-05"),
    }
    assert sum(s["rows"] for s in manifest["series"]) == manifest["total_rows"]
    assert [(s["ticker"], s["region"]) for s in manifest["series"]] == sorted(summary)
    assert manifest["sources"]["arch"]["sha256"] == lmd.ARCH.sha256
    rendered = lmd.render_manifest(manifest)
    assert json.loads(rendered) == manifest and rendered.endswith(b"\n")


# --- wheels and the whole run (no network: wheels are built locally) ----------------
def _fake_wheels(directory: Path) -> dict[str, Path]:
    """Zip files laid out like the two wheels, holding the samples above."""
    members = {
        "arch": {
            "arch/data/sp500/sp500.csv.gz": gzip.compress(SP500.encode(), mtime=0),
            "arch/data/nasdaq/nasdaq.csv.gz": gzip.compress(NASDAQ.encode(), mtime=0),
        },
        "backtesting": {
            "backtesting/test/GOOG.csv": GOOG.encode(),
            "backtesting/test/EURUSD.csv": EURUSD.encode(),
            "backtesting/test/BTCUSD.csv": BTCUSD.encode(),
        },
    }
    paths = {}
    for project, files in members.items():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, payload in files.items():
                archive.writestr(name, payload)
        path = directory / f"{project}.whl"
        path.write_bytes(buffer.getvalue())
        paths[project] = path
    return paths


def test_extract_rows_reads_every_series_from_the_wheels(tmp_path):
    rows = lmd.extract_rows(_fake_wheels(tmp_path))
    assert len(rows) == 11
    assert {(row[0], row[1]) for row in rows} == {
        ("SPX", "US"),
        ("IXIC", "US"),
        ("GOOG", "US"),
        ("EURUSD", "FX"),
        ("BTCUSD", "CRYPTO"),
    }


def test_cached_wheel_with_wrong_digest_fails_clearly(tmp_path):
    cached = tmp_path / lmd.BACKTESTING.filename
    cached.write_bytes(b"not the wheel")
    with pytest.raises(lmd.DataError, match="sha256 mismatch") as caught:
        lmd.fetch_wheel(lmd.BACKTESTING, tmp_path)
    assert lmd.BACKTESTING.sha256 in str(caught.value)


def test_cached_wheel_with_pinned_digest_is_used_without_download(tmp_path, monkeypatch):
    payload = b"pinned content"
    wheel = lmd.Wheel(
        "demo", "1.0", "demo-1.0-py3-none-any.whl", hashlib.sha256(payload).hexdigest()
    )
    (tmp_path / wheel.filename).write_bytes(payload)
    monkeypatch.setattr(lmd.subprocess, "run", lambda *a, **k: pytest.fail("must not download"))
    assert lmd.fetch_wheel(wheel, tmp_path) == tmp_path / wheel.filename


def test_main_is_idempotent(tmp_path, monkeypatch, capsys):
    wheels = _fake_wheels(tmp_path)
    monkeypatch.setattr(lmd, "fetch_wheel", lambda wheel, cache_dir: wheels[wheel.project])
    out = tmp_path / "out" / "ohlcv.csv"
    argv = ["--cache-dir", str(tmp_path), "--out", str(out)]

    assert lmd.main(argv) == 0
    manifest_path = tmp_path / "out" / "ohlcv.manifest.json"
    first = (out.read_bytes(), manifest_path.read_bytes())
    stamps = (out.stat().st_mtime_ns, manifest_path.stat().st_mtime_ns)

    assert lmd.main(argv) == 0
    assert (out.read_bytes(), manifest_path.read_bytes()) == first
    assert (out.stat().st_mtime_ns, manifest_path.stat().st_mtime_ns) == stamps
    assert "(unchanged)" in capsys.readouterr().out

    manifest = json.loads(first[1])
    assert manifest["csv"] == "ohlcv.csv"
    assert manifest["csv_sha256"] == hashlib.sha256(first[0]).hexdigest()
    assert manifest["total_rows"] == 11
