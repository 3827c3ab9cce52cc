# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the ohlcv_data_quality module's scan against seed 002's data-quality SQL as written.

1. Generates an OHLCV hypertable of --rows rows (default 10 000 000) in schema --schema of the target
   database, entirely on the server (generate_series; nothing is sent from Python): --series tickers
   of region US, one bar per weekday going back from 2024-12-31, 3-month chunks like the platform
   schema, the seed's index (ticker, region, date DESC), and seeded problems: 0.01 % duplicated rows,
   0.001 % NULL closes, 0.002 % deleted bars (missing trading days), 0.001 % price spikes (outliers).
   An existing table of the same size is reused (--regenerate to rebuild it).
2. Times seed 002's three queries exactly as the guide writes them (Missing Date Detection, Z-Score
   Outlier Detection, Find Duplicates; the guide has no SQL for NULL prices or OHLC rules), each
   fetched completely, with search_path set to the bench schema so "ohlcv_data" is the generated table.
3. Times the module (ansible localhost -m quantops.platform.ohlcv_data_quality, the real module in a
   real ansible process) over the whole table, and over the last 7 days (the daily job: chunk exclusion).
Writes bench/results/data_quality.json.

    python3 bench/data_quality_scan.py --host 10.89.4.2 --user quant_app --password-file secrets/quant_app [--rows 10000000]

Needs psycopg 3 and ansible-core in the running Python (the collection's .venv) and a PostgreSQL
with TimescaleDB where the user may create a schema.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import psycopg
from psycopg import sql

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))

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
    results = {}
    with conn.cursor() as cur:
        cur.execute(sql.SQL('SET search_path TO {}, public').format(sql.Identifier(schema)))
        cur.execute("SET statement_timeout = 0")
        for name, query in SEED_QUERIES.items():
            started = time.time()
            cur.execute(query)
            found = len(cur.fetchall())
            results[name] = {'seconds': round(time.time() - started, 2), 'rows_returned': found}
        cur.execute('RESET search_path')
    results['total_seconds'] = round(sum(v['seconds'] for v in results.values()), 2)
    return results


def time_module(args, password, since=None):
    module_args = {
        'login_host': args.host, 'login_port': args.port, 'login_user': args.user,
        'login_db': args.dbname, 'schema': args.schema, 'table': 'ohlcv_data', 'statement_timeout': 0,
        'max_findings': 10,
    }
    if since:
        module_args['since'] = since
    # The password goes through libpq's PGPASSWORD (the module leaves an empty login_password out), so it
    # never appears in the process list.
    env = dict(os.environ, PGPASSWORD=password, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json')
    ansible = os.path.join(os.path.dirname(sys.executable), 'ansible')
    started = time.time()
    proc = subprocess.run([ansible, 'localhost', '-m', 'quantops.platform.ohlcv_data_quality', '-a', json.dumps(module_args),
                           '-e', 'ansible_python_interpreter=%s' % sys.executable],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = round(time.time() - started, 2)
    if proc.returncode != 0:
        raise SystemExit('module run failed (%d): %s %s' % (proc.returncode, proc.stdout[-3000:], proc.stderr[-2000:]))
    data = json.loads(proc.stdout)
    res = data['plays'][0]['tasks'][0]['hosts']['localhost']
    return {'wall_seconds_including_ansible': wall, 'check_seconds': res['timings'],
            'checks_seconds_total': round(sum(res['timings'].values()), 2), 'scanned_rows': res['scanned_rows'],
            'counts': dict((c['name'], c['count']) for c in res['checks']), 'since': since,
            'missing_days_methods': sorted(set(m['method'] for m in res.get('missing_days_methods', [])))}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--host', required=True)
    parser.add_argument('--port', type=int, default=5432)
    parser.add_argument('--user', default='quant_app')
    parser.add_argument('--password-file', required=True)
    parser.add_argument('--dbname', default='quant_platform')
    parser.add_argument('--schema', default='bench_dq')
    parser.add_argument('--rows', type=int, default=10000000)
    parser.add_argument('--series', type=int, default=2000)
    parser.add_argument('--regenerate', action='store_true')
    parser.add_argument('--out', default=os.path.join(ROOT, 'bench', 'results', 'data_quality.json'))
    args = parser.parse_args()
    with open(args.password_file) as handle:
        password = handle.read().strip()
    conn = psycopg.connect(host=args.host, port=args.port, user=args.user, password=password, dbname=args.dbname,
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), "
                    "current_setting('timescaledb.license', true), current_setting('shared_buffers'), "
                    "current_setting('work_mem')")
        version, tsdb, license_name, shared_buffers, work_mem = cur.fetchone()
    load_start = [round(x, 2) for x in os.getloadavg()]
    print('generating %d rows ...' % args.rows, flush=True)
    gen = generate(conn, args.schema, args.rows, args.series, args.regenerate)
    print('generation: %s' % gen, flush=True)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_schema = %s", (args.schema,))
        chunks = cur.fetchone()[0]
        cur.execute("SELECT pg_size_pretty(hypertable_size(%s::regclass))", ('%s.ohlcv_data' % args.schema,))
        size = cur.fetchone()[0]
    seed = time_seed(conn, args.schema)
    print('seed SQL: %s' % seed, flush=True)
    conn.close()
    full = time_module(args, password)
    print('module, whole table: %s' % full, flush=True)
    daily = time_module(args, password, since='2024-12-24')
    print('module, last 7 days: %s' % daily, flush=True)
    result = {
        'benchmark': 'data-quality scan: quantops.platform.ohlcv_data_quality vs seed 002 SQL as written',
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                    'load_average_at_start': load_start, 'load_average_at_end': [round(x, 2) for x in os.getloadavg()],
                    'note': 'the database ran in the lab container db1 (podman, --memory=2g) on this host'},
        'server': {'version': version, 'timescaledb': tsdb, 'license': license_name, 'shared_buffers': shared_buffers,
                   'work_mem': work_mem},
        'data': {'rows': gen['rows'], 'rows_requested': args.rows, 'series': args.series, 'chunks': chunks,
                 'hypertable_size': size, 'generated_in_seconds': gen['seconds'], 'reused': gen['reused']},
        'seed_002_sql': seed,
        'module_whole_table': full,
        'module_last_7_days': daily,
        'notes': [
            'seed_002_sql runs 3 queries (gaps > 3 days, z-score > 3.0, duplicates); the module runs 5 checks '
            '(plus NULL prices and OHLC rules) and judges missing days against the XNYS calendar.',
            'Findings differ by design: the seed counts a gap only when more than 3 calendar days pass (a deleted '
            'Tuesday-Thursday bar is invisible to it) and cannot tell a holiday from a missing session; the module '
            'reports each missing XNYS session. The generated bars include US holidays (every weekday), which '
            'the calendar check ignores. Duplicates: the seed lists (ticker, region, date) groups, the module too.',
            'module timings are measured inside the module (psycopg round trips included); wall time adds the '
            'ansible process start and the exchange_calendars import.',
            "seed 002's missing-date query selects current_date, which PostgreSQL reads as the CURRENT_DATE "
            'function, not the column alias: it returns today instead of the date after the gap.',
        ],
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as handle:
        json.dump(result, handle, indent=2)
        handle.write('\n')
    print('wrote %s' % args.out)


if __name__ == '__main__':
    main()
