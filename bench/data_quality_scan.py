# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the ohlcv_data_quality module's scan against seed 002's data-quality SQL as written.

0. Without --host, starts its own database: the container qp-dq-db (network qp-dq) from the test image
   localhost/quantops-trixie:latest, converged with the collection's postgresql and timescaledb roles (the
   lab's tuning: 2 GiB memory limit, timescaledb-tune formulas), secrets under --workdir. It stays up, with
   its data, for the next run (--fresh-container rebuilds it; `podman rm -f qp-dq-db` removes it).
1. Generates an OHLCV hypertable of --rows rows (default 10 000 000) in schema --schema, entirely on the
   server (generate_series; nothing is sent from Python): --series tickers of region US, one bar per weekday
   going back from 2024-12-31, 3-month chunks like the platform schema, the seed's index (ticker, region,
   date DESC), and seeded problems: 0.01 % duplicated rows, 0.001 % NULL closes, 0.002 % deleted bars
   (missing trading days), 0.001 % price spikes (outliers). An existing table of the same size is reused.
2. Side by side, --rounds times, the order flipping each round (other sessions load this machine): seed
   002's three queries exactly as the guide writes them (Missing Date Detection, Z-Score Outlier Detection,
   Find Duplicates), each fetched completely, and the module (ansible localhost -m
   quantops.platform.ohlcv_data_quality, the real module in a real ansible process) over the whole table;
   medians, with the load average before each round.
3. The daily run (since=--daily-since, the newest chunk) --daily-runs times.
4. Findings: the module's duplicates and outliers against the seed's rows; with --reference GITREF the
   module of that ref runs once too and its findings (every list, count and method) are compared.
5. Plans: one more run of each side with auto_explain (ANALYZE, BUFFERS) on for the bench user, the plans
   read back from the server log (bench container only).
Writes bench/results/data_quality.json.

    python3 bench/data_quality_scan.py [--rows 10000000] [--rounds 3] [--reference main]
    python3 bench/data_quality_scan.py --host 10.89.4.2 --password-file secrets/quant_app   # an existing server

Needs psycopg 3 and ansible-core in the running Python (the collection's .venv), and podman for the
bench container.
"""

import argparse
import datetime
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time

import psycopg
from psycopg import sql

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
IMAGE = 'localhost/quantops-trixie:latest'
CONTAINER = 'qp-dq-db'
NETWORK = 'qp-dq'

# The bench's own database host: the collection's postgresql and timescaledb roles on a throwaway
# container of the test image, tuned as the lab's db1 is (2 GiB memory limit, timescaledb-tune formulas).
DB_PLAYBOOK = '''---
- name: Bench database host (PostgreSQL + TimescaleDB from the collection's roles)
  hosts: %(container)s
  gather_facts: true
  roles:
    - role: quantops.platform.postgresql
    - role: quantops.platform.timescaledb
'''
DB_VARS = '''---
ansible_connection: podman_nsenter
pki_dir: "{{ bench_dir }}/pki"
postgresql_tuning_timescaledb: true
postgresql_listen_addresses: ["*"]
postgresql_hba_entries:
  - {database: quant_platform, user: quant_app, address: 10.0.0.0/8}
postgresql_users:
  - name: quant_app
    password: "{{ lookup('ansible.builtin.file', bench_dir ~ '/quant_app') }}"
postgresql_databases:
  - name: quant_platform
    owner: quant_app
timescaledb_repository: distro
timescaledb_databases: [quant_platform]
'''

# Seed 002, "Data Quality Management", verbatim (including its use of current_date as a column
# alias: in the outer SELECT that name is the CURRENT_DATE function, so the column shows today).
SEED_QUERIES = {
    'missing_dates': """
WITH date_ranges AS (
    SELECT
        ticker, region,
        date AS current_date,
        LAG(date) OVER (PARTITION BY ticker, region ORDER BY date) AS prev_date,
        date - LAG(date) OVER (PARTITION BY ticker, region ORDER BY date) AS gap_days
    FROM ohlcv_data
)
SELECT
    ticker, region, prev_date, current_date, gap_days
FROM date_ranges
WHERE gap_days > 3
ORDER BY gap_days DESC, ticker;
""",
    'zscore_outliers': """
WITH daily_returns AS (
    SELECT
        ticker, region, date, close,
        (close - LAG(close) OVER w) / NULLIF(LAG(close) OVER w, 0) AS daily_return
    FROM ohlcv_data
    WINDOW w AS (PARTITION BY ticker, region ORDER BY date)
),
return_stats AS (
    SELECT
        ticker, region,
        AVG(daily_return) AS mean_return,
        STDDEV(daily_return) AS std_return
    FROM daily_returns
    WHERE daily_return IS NOT NULL
    GROUP BY ticker, region
)
SELECT
    dr.ticker, dr.region, dr.date, dr.close, dr.daily_return,
    ROUND(((dr.daily_return - rs.mean_return) / NULLIF(rs.std_return, 0))::numeric, 2) AS z_score
FROM daily_returns dr
JOIN return_stats rs USING (ticker, region)
WHERE ABS((dr.daily_return - rs.mean_return) / NULLIF(rs.std_return, 0)) > 3.0
ORDER BY ABS((dr.daily_return - rs.mean_return) / NULLIF(rs.std_return, 0)) DESC;
""",
    'duplicates': """
SELECT
    ticker, region, date, COUNT(*) AS duplicate_count
FROM ohlcv_data
GROUP BY ticker, region, date
HAVING COUNT(*) > 1
ORDER BY duplicate_count DESC;
""",
}


def _run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs).stdout.strip()


def start_container(workdir, fresh):
    """Start (or reuse) the bench's own database container; return (host, password, seconds, reused)."""
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    secret = os.path.join(workdir, 'quant_app')
    running = subprocess.run(['podman', 'container', 'inspect', '-f', '{{.State.Running}}', CONTAINER],
                             capture_output=True, text=True, check=False).stdout.strip() == 'true'
    if running and os.path.exists(secret) and not fresh:
        started, reused = time.time(), True
    else:
        started, reused = time.time(), False
        subprocess.run(['podman', 'rm', '-f', CONTAINER], capture_output=True, check=False)
        subprocess.run(['podman', 'network', 'rm', '-f', NETWORK], capture_output=True, check=False)
        _run(['podman', 'network', 'create', NETWORK])
        _run(['podman', 'run', '-d', '--name', CONTAINER, '--hostname', CONTAINER, '--network', NETWORK,
              '--memory=2g', '--systemd=always', IMAGE, '/sbin/init', 'SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1'])
        subprocess.run(['podman', 'exec', CONTAINER, 'systemctl', 'is-system-running', '--wait'],
                       capture_output=True, check=False)
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
            handle.write(secrets.token_urlsafe(24))
        with open(os.path.join(workdir, 'site.yml'), 'w') as handle:
            handle.write(DB_PLAYBOOK % {'container': CONTAINER})
        os.makedirs(os.path.join(workdir, 'host_vars'), exist_ok=True)
        with open(os.path.join(workdir, 'host_vars', CONTAINER + '.yml'), 'w') as handle:
            handle.write(DB_VARS)
        with open(os.path.join(workdir, 'hosts.yml'), 'w') as handle:
            json.dump({'all': {'hosts': {CONTAINER: {'bench_dir': workdir}}}}, handle)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
        ansible_playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
        proc = subprocess.run([ansible_playbook, '-i', os.path.join(workdir, 'hosts.yml'),
                               os.path.join(workdir, 'site.yml')], cwd=ROOT, env=env, capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit('converging %s failed:\n%s\n%s' % (CONTAINER, proc.stdout[-4000:], proc.stderr[-2000:]))
    host = _run(['podman', 'inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', CONTAINER])
    with open(secret) as handle:
        password = handle.read().strip()
    return host, password, round(time.time() - started, 1), reused


def generate(conn, schema, rows, series, regenerate):
    days = -(-rows // series)  # weekdays per series
    end = datetime.date(2024, 12, 31)
    # ~7/5 calendar days per weekday, plus slack; the LIMIT-free generator is trimmed by row_number.
    start = end - datetime.timedelta(days=int(days * 7 / 5) + 14)
    table = sql.Identifier(schema, 'ohlcv_data')
    with conn.cursor() as cur:
        cur.execute(sql.SQL('CREATE SCHEMA IF NOT EXISTS {}').format(sql.Identifier(schema)))
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", ('%s.ohlcv_data' % schema,))
        exists = cur.fetchone()[0]
        if exists and not regenerate:
            cur.execute(sql.SQL('SELECT count(*) FROM {}').format(table))
            have = cur.fetchone()[0]
            if abs(have - rows) <= rows * 0.001 + series:
                return {'reused': True, 'rows': have, 'seconds': 0.0}
        started = time.time()
        cur.execute(sql.SQL('DROP TABLE IF EXISTS {}').format(table))
        cur.execute(sql.SQL(
            'CREATE TABLE {} (ticker text NOT NULL, region text NOT NULL, date date NOT NULL, open numeric(20,6), '
            'high numeric(20,6), low numeric(20,6), close numeric(20,6), volume numeric(28,8), '
            'created_at timestamptz NOT NULL DEFAULT now())').format(table))
        cur.execute("SELECT create_hypertable(%s::regclass, by_range('date', INTERVAL '3 months'))",
                    ('%s.ohlcv_data' % schema,))
        # Prices: a deterministic wave per ticker plus noise; high/low bracket open and close.
        cur.execute(sql.SQL(
            'INSERT INTO {} (ticker, region, date, open, high, low, close, volume) '
            "SELECT 'T' || lpad(s::text, 5, '0'), 'US', d, o, greatest(o, c) * 1.005, least(o, c) * 0.995, c, "
            '  (100000 + 1000 * s)::numeric '
            'FROM generate_series(1, {series}) AS s '
            'CROSS JOIN LATERAL (SELECT d::date AS d FROM generate_series({start}::date, {end}::date, INTERVAL \'1 day\') d '
            '  WHERE extract(isodow FROM d) < 6 ORDER BY d DESC LIMIT {days}) dd '
            'CROSS JOIN LATERAL (SELECT (100 + s % 50 + 10 * sin((d - {start}::date) / 40.0 + s))::numeric(20,6) AS o, '
            '  (100 + s % 50 + 10 * sin((d - {start}::date + 1) / 40.0 + s) * (1 + (random() - 0.5) / 50))::numeric(20,6) AS c) p'
        ).format(table, series=sql.Literal(series), start=sql.Literal(start), end=sql.Literal(end), days=sql.Literal(days)))
        # 0.01 % duplicates (inserted later, so created_at is later) and 0.001 % NULL closes.
        # (TABLESAMPLE would sample only the hypertable's empty parent, so random() with a fixed seed.)
        cur.execute('SELECT setseed(0.42)')
        cur.execute(sql.SQL('INSERT INTO {t} (ticker, region, date, open, high, low, close, volume, created_at) '
                            'SELECT ticker, region, date, open, high, low, close, volume, created_at + INTERVAL \'1 hour\' '
                            'FROM {t} WHERE random() < 0.0001').format(t=table))
        cur.execute(sql.SQL('UPDATE {t} SET close = NULL WHERE random() < 0.00001').format(t=table))
        # Seeded problems for both scans to find: 0.002 % of bars deleted (missing trading days; the seed's
        # "gap > 3 days" sees only a deleted Monday or Friday) and 0.001 % of closes multiplied by 1.5 (a
        # +50 % return followed by a -33 % one: two z-score outliers each).
        cur.execute(sql.SQL('DELETE FROM {t} WHERE random() < 0.00002').format(t=table))
        cur.execute(sql.SQL('UPDATE {t} SET close = close * 1.5 WHERE random() < 0.00001').format(t=table))
        cur.execute(sql.SQL('CREATE INDEX ON {} (ticker, region, date DESC)').format(table))
        cur.execute(sql.SQL('ANALYZE {}').format(table))
        cur.execute(sql.SQL('SELECT count(*) FROM {}').format(table))
        have = cur.fetchone()[0]
    return {'reused': False, 'rows': have, 'seconds': round(time.time() - started, 1)}


def time_seed(conn, schema):
    """Seed 002's three queries, each fetched completely; returns the timings and the rows."""
    results, rows = {}, {}
    with conn.cursor() as cur:
        cur.execute(sql.SQL('SET search_path TO {}, public').format(sql.Identifier(schema)))
        cur.execute("SET statement_timeout = 0")
        for name, query in SEED_QUERIES.items():
            started = time.time()
            cur.execute(query)
            rows[name] = cur.fetchall()
            results[name] = {'seconds': round(time.time() - started, 2), 'rows_returned': len(rows[name])}
        cur.execute('RESET search_path')
    results['total_seconds'] = round(sum(v['seconds'] for v in results.values()), 2)
    return results, rows


def run_module(args, password, since=None, collections=None):
    """The real module in a real ansible process; returns its result and the wall time."""
    module_args = {
        'login_host': args.host, 'login_port': args.port, 'login_user': args.user,
        'login_db': args.dbname, 'schema': args.schema, 'table': 'ohlcv_data', 'statement_timeout': 0,
        'max_findings': 1000000,
    }
    if since:
        module_args['since'] = since
    # The password goes through libpq's PGPASSWORD (the module leaves an empty login_password out), so it
    # never appears in the process list.
    env = dict(os.environ, PGPASSWORD=password, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json')
    if collections:
        env['ANSIBLE_COLLECTIONS_PATH'] = collections
    ansible = os.path.join(os.path.dirname(sys.executable), 'ansible')
    started = time.time()
    proc = subprocess.run([ansible, 'localhost', '-m', 'quantops.platform.ohlcv_data_quality', '-a', json.dumps(module_args),
                           '-e', 'ansible_python_interpreter=%s' % sys.executable],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = round(time.time() - started, 2)
    if proc.returncode != 0:
        raise SystemExit('module run failed (%d): %s %s' % (proc.returncode, proc.stdout[-3000:], proc.stderr[-2000:]))
    res = json.loads(proc.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']
    return res, wall


def summary(res, wall, since=None):
    return {'wall_seconds_including_ansible': wall, 'module_seconds': res['timings'],
            'module_seconds_total': round(sum(res['timings'].values()), 2),
            'database_seconds': round(sum(v for k, v in res['timings'].items() if k != 'calendars'), 2),
            'scanned_rows': res['scanned_rows'], 'counts': dict((c['name'], c['count']) for c in res['checks']),
            'since': since, 'missing_days_methods': sorted(set(m['method'] for m in res.get('missing_days_methods', [])))}


def findings(res):
    """Everything the module found (for comparing two implementations): lists, counts, methods."""
    keys = ('checks', 'duplicates', 'missing_days', 'outliers', 'null_prices', 'ohlc_invariants',
            'missing_days_methods', 'scanned_rows', 'affected_rows', 'severity', 'status')
    return dict((k, res.get(k)) for k in keys)


def compare_with_seed(res, seed_rows):
    """Where the module and the seed ask the same question, do they find the same rows?"""
    seed_dups = sorted((t, r, d.isoformat(), int(n)) for t, r, d, n in seed_rows['duplicates'])
    mod_dups = sorted((f['ticker'], f['region'], f['time'], int(f['copies'])) for f in res['duplicates'])
    seed_out = sorted((t, r, d.isoformat(), str(z)) for t, r, d, c, ret, z in seed_rows['zscore_outliers'])
    mod_out = sorted((f['ticker'], f['region'], f['time'], '%.2f' % f['z_score']) for f in res['outliers'])
    missing = {}
    for f in res['missing_days']:
        missing.setdefault((f['ticker'], f['region']), []).append(f['time'])
    explained = 0
    for t, r, prev, dummy, gap in seed_rows['missing_dates']:
        days = missing.get((t, r), [])
        if any(prev.isoformat() < d < (prev + datetime.timedelta(days=int(gap))).isoformat() for d in days):
            explained += 1
    return {
        'duplicates_equal': seed_dups == mod_dups, 'duplicates': [len(seed_dups), len(mod_dups)],
        'outliers_equal': seed_out == mod_out, 'outliers': [len(seed_out), len(mod_out)],
        'outliers_only_seed': [list(x) for x in sorted(set(seed_out) - set(mod_out))][:10],
        'outliers_only_module': [list(x) for x in sorted(set(mod_out) - set(seed_out))][:10],
        'seed_gaps': len(seed_rows['missing_dates']), 'seed_gaps_holding_a_module_missing_session': explained,
    }


def median(values):
    return round(statistics.median(values), 2) if values else None


def psql(command):
    """Run SQL as the bench container's superuser (auto_explain settings, log position)."""
    return _run(['podman', 'exec', '-u', 'postgres', CONTAINER, 'psql', '-XAtq', '-d', 'quant_platform', '-c', command])


def capture_plans(args, password, conn):
    """EXPLAIN (ANALYZE, BUFFERS) of every statement the seed and the module send, through auto_explain.

    One extra, untimed run of each side with auto_explain on for the bench user; the plans are read back
    from the server log (the calendar arrays inside the statement text are cut).
    """
    log = '/var/log/postgresql/postgresql-17-main.log'
    start = int(_run(['podman', 'exec', CONTAINER, 'stat', '-c', '%s', log]))
    settings = {'session_preload_libraries': 'auto_explain', 'auto_explain.log_min_duration': '0',
                'auto_explain.log_analyze': 'on', 'auto_explain.log_buffers': 'on', 'auto_explain.log_nested_statements': 'off'}
    for name, value in settings.items():
        psql('ALTER ROLE %s SET %s = %s' % (args.user, name, "'%s'" % value))
    try:
        plan_conn = psycopg.connect(host=args.host, port=args.port, user=args.user, password=password, dbname=args.dbname,
                                    autocommit=True)
        time_seed(plan_conn, args.schema)
        plan_conn.close()
        run_module(args, password)
        run_module(args, password, since=args.daily_since)
    finally:
        for name in settings:
            psql('ALTER ROLE %s RESET %s' % (args.user, name))
    text = _run(['podman', 'exec', CONTAINER, 'tail', '-c', '+%d' % (start + 1), log])
    plans = []
    for block in text.split('LOG:  duration: ')[1:]:
        lines = block.splitlines()
        query = [line for line in lines if 'Query Text:' in line]
        plan = [line.rstrip() for line in lines if not line.startswith('20') or 'Query Text' in line]
        if not query or 'pg_catalog' in query[0] or 'SET ' in query[0][:40]:
            continue
        plans.append({'duration': lines[0], 'query': query[0].split('Query Text:', 1)[1].strip()[:600],
                      'plan': [line[:300] for line in plan[1:] if 'Query Text' not in line and line.strip()]})
    return plans


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--host', help='an existing server (with --password-file); default: the bench container')
    parser.add_argument('--port', type=int, default=5432)
    parser.add_argument('--user', default='quant_app')
    parser.add_argument('--password-file')
    parser.add_argument('--dbname', default='quant_platform')
    parser.add_argument('--schema', default='bench_dq')
    parser.add_argument('--rows', type=int, default=10000000)
    parser.add_argument('--series', type=int, default=2000)
    parser.add_argument('--rounds', type=int, default=3, help='seed and module alternated this many times')
    parser.add_argument('--daily-runs', type=int, default=5)
    parser.add_argument('--daily-since', default='2024-12-24')
    parser.add_argument('--reference', help='a git ref whose module runs once too, to compare findings (e.g. main)')
    parser.add_argument('--no-plans', action='store_true', help='skip the EXPLAIN (ANALYZE, BUFFERS) pass')
    parser.add_argument('--fresh-container', action='store_true')
    parser.add_argument('--workdir', default='/var/tmp/qp-dq-bench')
    parser.add_argument('--regenerate', action='store_true')
    parser.add_argument('--out', default=os.path.join(ROOT, 'bench', 'results', 'data_quality.json'))
    args = parser.parse_args()
    setup = None
    if args.host:
        if not args.password_file:
            parser.error('--host needs --password-file')
        with open(args.password_file) as handle:
            password = handle.read().strip()
    else:
        args.host, password, seconds, reused = start_container(args.workdir, args.fresh_container)
        setup = {'container': CONTAINER, 'image': IMAGE, 'seconds': seconds, 'reused': reused}
    conn = psycopg.connect(host=args.host, port=args.port, user=args.user, password=password, dbname=args.dbname,
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), "
                    "current_setting('timescaledb.license', true), current_setting('shared_buffers'), "
                    "current_setting('work_mem'), current_setting('max_parallel_workers_per_gather')")
        version, tsdb, license_name, shared_buffers, work_mem, workers = cur.fetchone()
    load_start = [round(x, 2) for x in os.getloadavg()]
    print('generating %d rows ...' % args.rows, flush=True)
    gen = generate(conn, args.schema, args.rows, args.series, args.regenerate)
    print('generation: %s' % gen, flush=True)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_schema = %s", (args.schema,))
        chunks = cur.fetchone()[0]
        cur.execute("SELECT pg_size_pretty(hypertable_size(%s::regclass))", ('%s.ohlcv_data' % args.schema,))
        size = cur.fetchone()[0]
    rounds, seed_rows, full = [], None, None
    for i in range(args.rounds):
        load = [round(x, 2) for x in os.getloadavg()]
        order = ('seed', 'module') if i % 2 == 0 else ('module', 'seed')
        entry = {'order': list(order), 'load_average_before': load}
        for side in order:
            if side == 'seed':
                entry['seed'], seed_rows = time_seed(conn, args.schema)
            else:
                full, wall = run_module(args, password)
                entry['module'] = summary(full, wall)
        entry['ratio_module_to_seed'] = round(entry['module']['module_seconds_total'] / entry['seed']['total_seconds'], 3)
        print('round %d: %s' % (i + 1, json.dumps(entry)), flush=True)
        rounds.append(entry)
    daily = []
    for i in range(args.daily_runs):
        res, wall = run_module(args, password, since=args.daily_since)
        daily.append(summary(res, wall, args.daily_since))
    print('daily: %s' % json.dumps(daily), flush=True)
    reference = None
    if args.reference:
        refdir = os.path.join(args.workdir, 'reference')
        target = os.path.join(refdir, 'ansible_collections', 'quantops', 'platform')
        subprocess.run(['rm', '-rf', refdir], check=True)
        os.makedirs(target)
        archive = subprocess.run(['git', '-C', ROOT, 'archive', args.reference, 'plugins', 'meta', 'galaxy.yml'],
                                 check=True, capture_output=True).stdout
        subprocess.run(['tar', '-x', '-C', target], input=archive, check=True)
        ref_res, ref_wall = run_module(args, password, collections=refdir)
        reference = {'ref': args.reference, 'commit': _run(['git', '-C', ROOT, 'rev-parse', args.reference]),
                     'run': summary(ref_res, ref_wall), 'same_findings': findings(ref_res) == findings(full)}
        print('reference: %s' % json.dumps(reference), flush=True)
    plans = None if args.no_plans or setup is None else capture_plans(args, password, conn)
    conn.close()
    seed_total = median([r['seed']['total_seconds'] for r in rounds])
    module_total = median([r['module']['module_seconds_total'] for r in rounds])
    result = {
        'benchmark': 'data-quality scan: quantops.platform.ohlcv_data_quality vs seed 002 SQL as written',
        'method': ('seed 002\'s three queries and the module over the whole table, alternated %d times (the order '
                   'flips each round), medians; then the daily run (since=%s) %d times. The seed side is psycopg '
                   'fetching every row; the module side is the real module in an ansible process, timed inside the '
                   'module (timings: series summary, exchange calendars, the one scan).'
                   % (args.rounds, args.daily_since, args.daily_runs)),
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                    'load_average_at_start': load_start, 'load_average_at_end': [round(x, 2) for x in os.getloadavg()],
                    'note': ('the database ran in the bench container %s (podman, --memory=2g) on this host, which '
                             'other sessions loaded at the same time (see the load averages)' % CONTAINER)
                    if setup else 'the database ran on --host %s' % args.host},
        'setup': setup,
        'server': {'version': version, 'timescaledb': tsdb, 'license': license_name, 'shared_buffers': shared_buffers,
                   'work_mem': work_mem, 'max_parallel_workers_per_gather': workers},
        'data': {'rows': gen['rows'], 'rows_requested': args.rows, 'series': args.series, 'chunks': chunks,
                 'hypertable_size': size, 'generated_in_seconds': gen['seconds'], 'reused': gen['reused']},
        'rounds': rounds,
        'median_seed_seconds': seed_total,
        'median_module_seconds': module_total,
        'median_ratio_module_to_seed': round(module_total / seed_total, 3) if seed_total else None,
        'findings_vs_seed': compare_with_seed(full, seed_rows),
        'reference': reference,
        'daily': daily,
        'median_daily_module_seconds': median([d['module_seconds_total'] for d in daily]),
        'median_daily_database_seconds': median([d['database_seconds'] for d in daily]),
        'plans': plans,
        'notes': [
            'seed 002 runs 3 queries (gaps > 3 days, z-score > 3.0, duplicates); the module runs 5 checks '
            '(plus NULL prices and OHLC rules) and judges missing days against the XNYS calendar.',
            'Missing days differ by design: the seed counts a gap only when more than 3 calendar days pass (a '
            'deleted Tuesday-Thursday bar is invisible to it) and cannot tell a holiday from a missing session; the '
            'module reports each missing XNYS session. The generated bars include US holidays (every weekday), '
            'which the calendar check ignores.',
            'module_seconds_total includes building the exchange calendars (calendars); database_seconds is the '
            'time in the two statements; wall time adds the ansible process start and the exchange_calendars import.',
            "seed 002's missing-date query selects current_date, which PostgreSQL reads as the CURRENT_DATE "
            'function, not the column alias: it returns today instead of the date after the gap.',
        ],
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as handle:
        json.dump(result, handle, indent=2, default=str)
        handle.write('\n')
    print('wrote %s' % args.out)


if __name__ == '__main__':
    main()
