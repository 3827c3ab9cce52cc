# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The query benchmark runbook (playbooks/maintenance/benchmark.yml, seed 002 Performance Benchmarks)
against this scenario's real PostgreSQL 17 + TimescaleDB and the lab's real market data.

Run here with ansible-playbook against the scenario's inventory (MOLECULE_INVENTORY_FILE), in order:
  1. a normal run: the five query types measured (3 runs after a warm-up), the ✓/⚠/✗ checklist, the
     metrics file in node_exporter's textfile directory, and no row of the platform tables changed;
  2. the same under --check: the same checklist, the metrics file left as it was;
  3. targets no query can meet (-e query_benchmark_targets=...): every line ✗, the metrics say 2 and the
     run fails after writing them;
  4. bad input (query_benchmark_runs=0): refused before any query runs.
The host is read through testinfra (psql, the file), nothing is mocked.
"""

import json
import os
import re
import subprocess

import pytest
from _helpers import psql

testinfra_hosts = ["podman://qp-rb-db"]

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
PROM = '/var/lib/prometheus/node-exporter/quantops_query_benchmark.prom'
TITLES = ['Single ticker, 250 days', 'Single ticker, 1 year', 'Single ticker, 10 years',
          'Backtest (5 years, 50 tickers)', 'Portfolio optimization']
NAMES = ['single_ticker_250d', 'single_ticker_1y', 'single_ticker_10y', 'backtest', 'portfolio_optimization']
# Counters of every write to the platform tables, and their contents' fingerprint.
WRITES_SQL = ("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
              "WHERE relname IN ('ohlcv_data', 'technical_analysis', 'factor_scores') "
              "OR relid IN (SELECT format('%I.%I', chunk_schema, chunk_name)::regclass FROM timescaledb_information.chunks)")
CONTENT_SQL = "SELECT count(*) || ' ' || coalesce(md5(string_agg(ticker || date || close, ',' ORDER BY ticker, date, created_at)), '') FROM ohlcv_data"


def run_runbook(*extra):
    if not os.environ.get('MOLECULE_INVENTORY_FILE'):
        pytest.skip('MOLECULE_INVENTORY_FILE not set: run through molecule verify')
    cmd = ['ansible-playbook', '-i', os.environ['MOLECULE_INVENTORY_FILE'],
           os.path.join(ROOT, 'playbooks', 'maintenance', 'benchmark.yml'),
           '-e', 'query_benchmark_runs=3'] + list(extra)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)


def flat(proc):
    """The run's output, stdout then stderr (where a failed task's message goes), with every run of white
    space one blank (a callback may wrap long lines)."""
    return re.sub(r'\s+', ' ', proc.stdout + proc.stderr)


def checklist(proc):
    """{title: (symbol, text up to the row count)} of the checklist the run printed."""
    lines = {}
    for title in TITLES:
        found = re.findall(r'([\u2713\u26a0\u2717?]) %s: (p95 [\d.]+ ms, p50 [\d.]+ ms, \d+ rows)' % re.escape(title),
                           flat(proc))
        assert found, 'no checklist line for %s:\n%s' % (title, proc.stdout[-3000:])
        lines[title] = found[-1]
    return lines


def metrics(text):
    """{series: value} of an exposition text."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            key, value = line.rsplit(' ', 1)
            samples[key] = float(value)
    return samples


@pytest.fixture(scope='module')
def runs(host):
    writes_before, content_before = psql(host, WRITES_SQL), psql(host, CONTENT_SQL)
    normal = run_runbook()
    prom_after_normal = host.file(PROM).content_string if host.file(PROM).exists else None
    checked = run_runbook('--check', '--diff')
    prom_after_check = host.file(PROM).content_string if host.file(PROM).exists else None
    writes_after, content_after = psql(host, WRITES_SQL), psql(host, CONTENT_SQL)
    impossible = json.dumps({'query_benchmark_targets': dict(
        (name, {'target': 0.001, 'acceptable': 0.002, 'critical': 0.003}) for name in NAMES)})
    failing = run_runbook('-e', impossible)
    bad = run_runbook('-e', 'query_benchmark_runs=0')
    return dict(normal=normal, checked=checked, failing=failing, bad=bad,
                prom_after_normal=prom_after_normal, prom_after_check=prom_after_check,
                writes=(writes_before, writes_after), content=(content_before, content_after))


def test_the_runbook_measures_and_judges_the_five_query_types(runs):
    proc = runs['normal']
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    lines = checklist(proc)
    for title, (symbol, text) in lines.items():
        p95, p50 = re.match(r'p95 ([\d.]+) ms, p50 ([\d.]+) ms, (\d+) rows', text).groups()[:2]
        assert 0 < float(p50) <= float(p95), (title, text)
        # On the lab's data (a few indices) every query is far from Critical.
        assert symbol in ('\u2713', '\u26a0'), (title, text)
    # 250 days is 250 bars when the ticker has that many; the lab's tickers have years of data.
    assert re.match(r'p95 [\d.]+ ms, p50 [\d.]+ ms, 250 rows', lines['Single ticker, 250 days'][1])
    assert re.search(r'Overall: (ok|warning) \(0 critical', flat(proc))
    assert 'Metrics: %s' % PROM in flat(proc)


def test_the_metrics_are_exported_through_the_textfile_directory(runs, host):
    # As the normal run left it (the run with impossible targets rewrites it later).
    assert runs['prom_after_normal'] is not None
    samples = metrics(runs['prom_after_normal'])
    for name in NAMES:
        p50 = samples['quantops_query_benchmark_seconds{query="%s",quantile="0.5"}' % name]
        p95 = samples['quantops_query_benchmark_seconds{query="%s",quantile="0.95"}' % name]
        assert 0 < p50 <= p95
        assert samples['quantops_query_benchmark_runs{query="%s"}' % name] == 3
        assert samples['quantops_query_benchmark_status{query="%s"}' % name] in (0, 1)
    assert samples['quantops_query_benchmark_target_seconds{query="backtest",level="critical"}'] == 30.0
    assert host.file(PROM).mode == 0o644


def test_the_runbook_changed_no_data(runs):
    assert runs['writes'][0] == runs['writes'][1]
    assert runs['content'][0] == runs['content'][1]


def test_check_mode_measures_but_writes_nothing(runs):
    proc = runs['checked']
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert len(checklist(proc)) == 5
    assert '(not written: check mode)' in flat(proc)
    assert runs['prom_after_check'] == runs['prom_after_normal']


def test_beyond_critical_every_line_is_a_cross_the_metrics_say_so_and_the_run_fails(runs, host):
    proc = runs['failing']
    assert proc.returncode != 0
    assert all(symbol == '\u2717' for symbol, _line in checklist(proc).values())
    assert 'Overall: critical (5 critical' in flat(proc)
    assert 'Critical time (see the checklist)' in flat(proc)
    samples = metrics(host.file(PROM).content_string)
    assert all(samples['quantops_query_benchmark_status{query="%s"}' % name] == 2 for name in NAMES)


def test_bad_input_is_refused_before_any_query(runs):
    proc = runs['bad']
    assert proc.returncode != 0
    assert 'query_benchmark_runs must be >= 1' in flat(proc)
    assert "Run seed 002's query types" not in proc.stdout
