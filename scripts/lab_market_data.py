"""Build the lab's market data set from real OHLCV series shipped in PyPI wheels.

The lab loads real daily market data into TimescaleDB.  The series ship inside
two pinned wheels (fetched with ``pip download``, never installed):

* ``arch==8.0.0``: ``arch/data/sp500/sp500.csv.gz`` and
  ``arch/data/nasdaq/nasdaq.csv.gz`` (daily, 1999-01-04..2018-12-31),
* ``backtesting==0.6.6``: ``backtesting/test/GOOG.csv`` (daily),
  ``EURUSD.csv`` (hourly bars, aggregated here to daily bars) and
  ``BTCUSD.csv`` (monthly bars, kept as they are).

Usage::

    lab_market_data.py --cache-dir .cache/market-data \\
        --out .cache/market-data/ohlcv.csv

writes ``ohlcv.csv`` (``ticker,region,date,open,high,low,close,volume``, sorted
by ticker then date) and ``ohlcv.manifest.json`` beside it.  Prices and
volumes are the source's decimal strings (the ``Adj Close`` column is
dropped); aggregated EURUSD highs, lows and volumes are exact decimal
arithmetic.  Re-running produces byte-identical files and does not rewrite
files whose content is unchanged.

Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable, Sequence

# --- pinned inputs --------------------------------------------------------------
# The wheels are downloaded for one fixed target (CPython 3.11, manylinux
# x86_64) whatever the interpreter running this script, so the file name and
# its digest never vary; the data files inside are all we read.
PIP_TARGET_ARGS = (
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--platform",
    "manylinux_2_28_x86_64",
)


@dataclass(frozen=True)
class Wheel:
    project: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"


ARCH = Wheel(
    project="arch",
    version="8.0.0",
    filename=(
        "arch-8.0.0-cp311-cp311-manylinux2014_x86_64"
        ".manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl"
    ),
    sha256="975ec3bdf7926335742ac362251fafe32b448b8f194dead062f22a00beef772d",
)
BACKTESTING = Wheel(
    project="backtesting",
    version="0.6.6",
    filename="backtesting-0.6.6-py3-none-any.whl",
    sha256="d2fc29ab6e10fbf44b05570720cef144d6d0d2ec8e183977114f2be9c5089b78",
)
WHEELS = (ARCH, BACKTESTING)


@dataclass(frozen=True)
class Series:
    """One source file and where its rows go."""

    wheel: Wheel
    member: str
    kind: str  # "arch" | "daily" | "hourly" | "monthly"
    ticker: str
    region: str

    @property
    def source(self) -> str:
        return f"{self.wheel.requirement}:{self.member}"

    @property
    def interval(self) -> str:
        return {"monthly": "1mo", "hourly": "1d"}.get(self.kind, "1d")


SERIES = (
    Series(ARCH, "arch/data/sp500/sp500.csv.gz", "arch", "SPX", "US"),
    Series(ARCH, "arch/data/nasdaq/nasdaq.csv.gz", "arch", "IXIC", "US"),
    Series(BACKTESTING, "backtesting/test/GOOG.csv", "daily", "GOOG", "US"),
    Series(BACKTESTING, "backtesting/test/EURUSD.csv", "hourly", "EURUSD", "FX"),
    Series(BACKTESTING, "backtesting/test/BTCUSD.csv", "monthly", "BTCUSD", "CRYPTO"),
)

COLUMNS = ("ticker", "region", "date", "open", "high", "low", "close", "volume")
ARCH_HEADER = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
BACKTESTING_HEADER = ["", "Open", "High", "Low", "Close", "Volume"]


class DataError(Exception):
    """The inputs are not what this script was written for."""


# --- parsing ----------------------------------------------------------------------
Row = tuple[str, str, str, str, str, str, str, str]


def parse_us_date(text: str) -> str:
    """``1/4/1999`` (month/day/year, as in arch's files) -> ``1999-01-04``."""
    try:
        month, day, year = text.strip().split("/")
        return dt.date(int(year), int(month), int(day)).isoformat()
    except ValueError as exc:
        raise DataError(f"not a M/D/YYYY date: {text!r}") from exc


def parse_iso_date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError as exc:
        raise DataError(f"not a YYYY-MM-DD date: {text!r}") from exc


def parse_timestamp(text: str) -> dt.datetime:
    """``2017-04-19 09:00:00`` (naive, taken as UTC) -> aware datetime."""
    try:
        stamp = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise DataError(f"not a timestamp: {text!r}") from exc
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.astimezone(dt.timezone.utc)


def decimal_text(text: str, what: str) -> str:
    """Check that ``text`` is a finite decimal and return it unchanged."""
    value = text.strip()
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise DataError(f"{what}: not a number: {text!r}") from exc
    if not number.is_finite():
        raise DataError(f"{what}: not a finite number: {text!r}")
    return value


def _records(text: str, header: Sequence[str], what: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text))
    try:
        found = next(reader)
    except StopIteration as exc:
        raise DataError(f"{what}: empty file") from exc
    if found != list(header):
        raise DataError(f"{what}: header {found!r}, expected {list(header)!r}")
    records = []
    for line_no, record in enumerate(reader, start=2):
        if not record:
            continue
        if len(record) != len(header):
            raise DataError(f"{what}:{line_no}: {len(record)} fields, expected {len(header)}")
        records.append(record)
    return records


def _ohlcv(record: Sequence[str], what: str) -> tuple[str, str, str, str, str]:
    open_, high, low, close, volume = (
        decimal_text(value, f"{what} {name}")
        for value, name in zip(record, ("open", "high", "low", "close", "volume"))
    )
    return open_, high, low, close, volume


def read_arch(text: str, ticker: str, region: str) -> list[Row]:
    """arch's ``Date,Open,High,Low,Close,Adj Close,Volume`` (Adj Close dropped)."""
    rows = []
    for record in _records(text, ARCH_HEADER, ticker):
        date = parse_us_date(record[0])
        open_, high, low, close, volume = _ohlcv(
            (record[1], record[2], record[3], record[4], record[6]), f"{ticker} {date}"
        )
        rows.append((ticker, region, date, open_, high, low, close, volume))
    return rows


def read_backtesting_daily(text: str, ticker: str, region: str) -> list[Row]:
    """backtesting's ``,Open,High,Low,Close,Volume`` with one bar per date."""
    rows = []
    for record in _records(text, BACKTESTING_HEADER, ticker):
        date = parse_iso_date(record[0])
        rows.append((ticker, region, date, *_ohlcv(record[1:], f"{ticker} {date}")))
    return rows


def aggregate_hourly(text: str, ticker: str, region: str) -> list[Row]:
    """Hourly bars -> one bar per UTC day.

    open = open of the day's first bar, high = max, low = min, close = close
    of the day's last bar, volume = sum.  Bars are ordered by timestamp first,
    so the file's order does not matter.  The chosen high/low keep the
    source's decimal string; the volume sum is exact decimal arithmetic.
    """
    bars = []
    seen = set()
    for record in _records(text, BACKTESTING_HEADER, ticker):
        stamp = parse_timestamp(record[0])
        if stamp in seen:
            raise DataError(f"{ticker}: duplicate bar at {record[0]}")
        seen.add(stamp)
        bars.append((stamp, _ohlcv(record[1:], f"{ticker} {record[0]}")))
    bars.sort(key=lambda bar: bar[0])

    days: dict[str, list[tuple[str, str, str, str, str]]] = {}
    for stamp, values in bars:
        days.setdefault(stamp.date().isoformat(), []).append(values)

    rows = []
    for date, day in days.items():
        high = max((values[1] for values in day), key=Decimal)
        low = min((values[2] for values in day), key=Decimal)
        volume = sum((Decimal(values[4]) for values in day), Decimal(0))
        rows.append((ticker, region, date, day[0][0], high, low, day[-1][3], str(volume)))
    return rows


def read_series(series: Series, payload: bytes) -> list[Row]:
    """Rows of one source file (``payload`` as stored in the wheel)."""
    if series.member.endswith(".gz"):
        payload = gzip.decompress(payload)
    text = payload.decode("utf-8-sig")
    if series.kind == "arch":
        return read_arch(text, series.ticker, series.region)
    if series.kind in ("daily", "monthly"):
        return read_backtesting_daily(text, series.ticker, series.region)
    if series.kind == "hourly":
        return aggregate_hourly(text, series.ticker, series.region)
    raise DataError(f"unknown series kind {series.kind!r}")


def normalise(rows: Iterable[Row]) -> list[Row]:
    """Sort by ticker, date (then region) and refuse duplicate keys."""
    ordered = sorted(rows, key=lambda row: (row[0], row[2], row[1]))
    for previous, current in zip(ordered, ordered[1:]):
        if previous[:3] == current[:3]:
            raise DataError(f"duplicate row for {current[0]} {current[1]} {current[2]}")
    return ordered


def render_csv(rows: Iterable[Row]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def build_manifest(
    rows: Sequence[Row],
    csv_bytes: bytes,
    csv_name: str = "ohlcv.csv",
    series: Sequence[Series] = SERIES,
) -> dict:
    """Per (ticker, region): rows, first and last date; totals and the CSV digest."""
    stats: dict[tuple[str, str], dict] = {}
    for ticker, region, date, *_rest in rows:
        entry = stats.setdefault(
            (ticker, region),
            {"ticker": ticker, "region": region, "rows": 0, "first_date": date, "last_date": date},
        )
        entry["rows"] += 1
        entry["first_date"] = min(entry["first_date"], date)
        entry["last_date"] = max(entry["last_date"], date)
    described = {(s.ticker, s.region): s for s in series}
    for key, entry in stats.items():
        if key in described:
            entry["interval"] = described[key].interval
            entry["source"] = described[key].source
    wheels = {s.wheel.project: s.wheel for s in series}
    return {
        "columns": list(COLUMNS),
        "csv": csv_name,
        "csv_sha256": hashlib.sha256(csv_bytes).hexdigest(),
        "series": [stats[key] for key in sorted(stats)],
        "sources": {
            name: {"version": wheel.version, "wheel": wheel.filename, "sha256": wheel.sha256}
            for name, wheel in sorted(wheels.items())
        },
        "total_rows": len(rows),
    }


def render_manifest(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


# --- wheels -----------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_wheel(wheel: Wheel, path: Path) -> None:
    actual = sha256_file(path)
    if actual != wheel.sha256:
        raise DataError(
            f"sha256 mismatch for {path}: expected {wheel.sha256}, got {actual}. "
            f"The file is not the pinned {wheel.requirement} wheel; delete it and re-run "
            "(or check the package index this machine uses)."
        )


def fetch_wheel(wheel: Wheel, cache_dir: Path) -> Path:
    """The verified wheel in ``cache_dir``, downloaded with pip if missing."""
    target = cache_dir / wheel.filename
    if target.exists():
        verify_wheel(wheel, target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir) as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            *PIP_TARGET_ARGS,
            "--dest",
            tmp,
            wheel.requirement,
        ]
        print(f"downloading {wheel.requirement} ...", file=sys.stderr)
        result = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
        if result.returncode != 0:
            raise DataError(
                f"pip download {wheel.requirement} failed (exit {result.returncode}; "
                f"needs pip for {sys.executable} and access to PyPI):\n{result.stdout.strip()}"
            )
        downloaded = Path(tmp) / wheel.filename
        if not downloaded.exists():
            found = sorted(p.name for p in Path(tmp).iterdir())
            raise DataError(
                f"pip download {wheel.requirement} produced {found}, expected {wheel.filename}"
            )
        verify_wheel(wheel, downloaded)
        os.replace(downloaded, target)
    return target


def extract_rows(wheel_paths: dict[str, Path], series: Sequence[Series] = SERIES) -> list[Row]:
    rows: list[Row] = []
    for item in series:
        with zipfile.ZipFile(wheel_paths[item.wheel.project]) as archive:
            try:
                payload = archive.read(item.member)
            except KeyError as exc:
                raise DataError(f"{item.member} is not in {item.wheel.filename}") from exc
        rows.extend(read_series(item, payload))
    return normalise(rows)


# --- output -----------------------------------------------------------------------
def write_if_changed(path: Path, content: bytes) -> bool:
    """Atomically write ``content``; leave the file alone if it already has it."""
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def manifest_path_for(out: Path) -> Path:
    """``.../ohlcv.csv`` -> ``.../ohlcv.manifest.json``."""
    return out.with_name(f"{out.stem}.manifest.json")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(".cache/market-data"),
        help="where the pinned wheels are kept (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="CSV to write (default: CACHE_DIR/ohlcv.csv); "
        "the manifest goes beside it as <stem>.manifest.json",
    )
    args = parser.parse_args(argv)
    out = args.out or args.cache_dir / "ohlcv.csv"
    try:
        paths = {wheel.project: fetch_wheel(wheel, args.cache_dir) for wheel in WHEELS}
        rows = extract_rows(paths)
    except DataError as exc:
        print(f"lab_market_data: error: {exc}", file=sys.stderr)
        return 1
    csv_bytes = render_csv(rows)
    manifest = build_manifest(rows, csv_bytes, csv_name=out.name)
    wrote_csv = write_if_changed(out, csv_bytes)
    manifest_path = manifest_path_for(out)
    wrote_manifest = write_if_changed(manifest_path, render_manifest(manifest))
    for entry in manifest["series"]:
        print(
            f"{entry['ticker']:<7} {entry['region']:<7} {entry['rows']:>6} rows "
            f"{entry['first_date']}..{entry['last_date']}"
        )
    state = "written" if (wrote_csv or wrote_manifest) else "unchanged"
    print(f"{manifest['total_rows']} rows -> {out} ({state}), sha256 {manifest['csv_sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
