#!/usr/bin/env bash
# Seed 002's query benchmark (issue 19, item 5): the runbook's queries on the seed's
# size estimate, the postgresql role's TUNED configuration against Debian's DEFAULT
# one, side by side in one run on the same data, plus pgbench.
# Writes bench/results/queries-<UTC date>.json.
#
#   bench/query_benchmark.sh [--tickers N] [--years N] [--rounds N] [--runs N] [--pgbench-seconds N] [--keep] [--reuse]
#
# One container of its own (qp-qb-db on network qp-qb, localhost/quantops-trixie,
# --memory=2g, 2 vCPUs of the host; stale ones of the same name are removed first),
# converged with the collection's postgresql + timescaledb + platform_schema roles
# (bench/query_benchmark/provision.yml; tuning for 2048 MiB and 2 vCPUs).  The data is
# loaded ONCE (seed 002 "Database Size Estimates": N tickers x N years of daily bars,
# 250-261 per year, in ohlcv_data, technical_analysis and factor_scores, inserted day by
# day as a collector would), then VACUUM ANALYZE.
# Two configurations of the same cluster, switched by replacing conf.d/50-quantops.conf and
# restarting PostgreSQL (same data files, same OS page cache):
#   tuned    the file as the role wrote it
#   default  the same file without its "tuning" block, i.e. Debian's defaults for
#            everything the role tunes (shared_buffers 128MB, work_mem 4MB,
#            random_page_cost 4, effective_cache_size 4GB, ...); TLS, logging and
#            shared_preload_libraries (timescaledb) stay as they are.
# Rounds alternate tuned/default (ABAB...); each round restarts PostgreSQL, runs
# bench/query_benchmark/run.yml (the runbook's role: 1 warm-up + --runs measured runs of
# each query type) and pgbench (select-only and TPC-B-like, 4 clients, --pgbench-seconds
# each, scale 20, initialised once).  The summary per configuration is the median over the
# rounds of each query's p50 and p95; the load average of the host is recorded before
# and after every round (other work on this 2-core machine shows up there).
# The container is removed at the end unless --keep.  --reuse measures again on a container
# left by an earlier run with --keep (or stopped during its rounds): no new provisioning or
# load; the sizes and times of that load are read back from the container (/root/qp-qb-*).
set -euo pipefail
TICKERS=1000
YEARS=10
ROUNDS=3
RUNS=5
PGB_SECONDS=20
KEEP=0
REUSE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --tickers) TICKERS=$2; shift 2;;
        --years) YEARS=$2; shift 2;;
        --rounds) ROUNDS=$2; shift 2;;
        --runs) RUNS=$2; shift 2;;
        --pgbench-seconds) PGB_SECONDS=$2; shift 2;;
        --keep) KEEP=1; shift;;
        --reuse) REUSE=1; shift;;
        *) echo "usage: $0 [--tickers N] [--years N] [--rounds N] [--runs N] [--pgbench-seconds N] [--keep] [--reuse]" >&2; exit 2;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/qp-qb-bench.XXXXXX)
NET=qp-qb
DBC=qp-qb-db
CONF=/etc/postgresql/17/main/conf.d/50-quantops.conf
OUT="$ROOT/bench/results/queries-$(date -u +%Y%m%d).json"
export PATH="$ROOT/.venv/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1

cleanup() {
    if [ "$KEEP" -eq 0 ]; then
        podman rm -f "$DBC" >/dev/null 2>&1 || true
        podman network rm "$NET" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$REUSE" -eq 0 ]; then
podman rm -f "$DBC" >/dev/null 2>&1 || true
podman network exists "$NET" || podman network create "$NET" >/dev/null
podman run -d --name "$DBC" --hostname "$DBC" --network "$NET" --memory=2g --runtime=runc \
    --ulimit nofile=1024:1024 --ulimit nproc=2000:2000 \
    localhost/quantops-trixie:latest /sbin/init SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1 >/dev/null
fi

mkdir -p "$WORK/inventory/group_vars" "$WORK/secrets" "$WORK/rounds"
cat > "$WORK/inventory/hosts.yml" <<EOF
all:
  children:
    database:
      hosts:
        $DBC: {}
EOF
cat > "$WORK/inventory/group_vars/all.yml" <<EOF
ansible_connection: podman_nsenter
qp_secrets_dir: $WORK/secrets
pki_dir: $WORK/pki
postgresql_tuning_timescaledb: true
postgresql_tuning_memory_mb: 2048
postgresql_tuning_cpus: 2
postgresql_users:
  - name: quant_app
    password: "{{ lookup('ansible.builtin.password', qp_secrets_dir ~ '/quant_app', length=24, chars=['ascii_letters', 'digits']) }}"
postgresql_databases:
  - name: quant_platform
    owner: quant_app
    extensions: [pg_stat_statements]
timescaledb_repository: distro
timescaledb_databases: [quant_platform]
platform_schema_reporting_password: "{{ lookup('ansible.builtin.password', qp_secrets_dir ~ '/reporting', length=24, chars=['ascii_letters', 'digits']) }}"
EOF
INV="$WORK/inventory"
play() { ansible-playbook -i "$INV" "$@" > "$WORK/last_play.log" 2>&1 || { tail -40 "$WORK/last_play.log"; exit 1; }; }
dbsh() { podman exec "$DBC" bash -c "$1"; }
psqlc() { dbsh "runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d ${2:-quant_platform} -c \"$1\""; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

if [ "$REUSE" -eq 1 ]; then
    podman exec "$DBC" test -f /root/qp-qb-default.conf -a -f /root/qp-qb-sizes.json || {
        echo "--reuse: $DBC has no loaded data set (run without --reuse, with --keep)" >&2; exit 1; }
    podman exec "$DBC" cat /root/qp-qb-sizes.json > "$WORK/sizes.json"
    read -r provision_s load_s < <(podman exec "$DBC" cat /root/qp-qb-timings)
    echo "reusing $DBC: provisioned in $provision_s s, loaded in $load_s s (earlier run)"
else
t0=$(date +%s)
play "$ROOT/bench/query_benchmark/provision.yml"
provision_s=$(( $(date +%s) - t0 ))
echo "provisioned in $provision_s s"

# --- the data, loaded once ---------------------------------------------------------------
# Business days (Mon-Fri) of the YEARS years ending 2026-11-30; tickers T0001.. in two
# regions (US first half, KR second half); rows inserted day by day.  The values are
# deterministic functions of ticker and day (a sine-shaped walk): the queries' work does
# not depend on them.
t0=$(date +%s)
cat > "$WORK/load.sql" <<EOF
\\set ON_ERROR_STOP on
CREATE TEMP TABLE days AS
  SELECT d::date AS date, row_number() OVER (ORDER BY d) AS i
  FROM generate_series(date '2026-11-30' - interval '$YEARS years' + interval '1 day', date '2026-11-30', interval '1 day') d
  WHERE extract(isodow FROM d) < 6;
CREATE TEMP TABLE tickers AS
  SELECT t, 'T' || lpad(t::text, 4, '0') AS ticker, CASE WHEN t <= $TICKERS / 2 THEN 'US' ELSE 'KR' END AS region
  FROM generate_series(1, $TICKERS) t;
CREATE TEMP TABLE px AS
  SELECT d.date, d.i, k.t, k.ticker, k.region,
         (60 + (k.t % 140) + 25 * sin(d.i / 40.0 + k.t) + 8 * sin(d.i / 7.0 + 2 * k.t))::numeric(20,6) AS close
  FROM days d CROSS JOIN tickers k;
INSERT INTO ohlcv_data (ticker, region, date, open, high, low, close, volume)
  SELECT ticker, region, date, close * 0.995, close * 1.01, close * 0.985, close, 100000 + (t * i) % 900000
  FROM px ORDER BY date, ticker;
INSERT INTO technical_analysis (ticker, region, date, sma_20, sma_50, sma_200, rsi_14, bb_upper, bb_middle, bb_lower, atr_14)
  SELECT ticker, region, date, close * 0.99, close * 0.98, close * 0.95, 30 + (t * i) % 40, close * 1.04, close,
         close * 0.96, close * 0.02
  FROM px ORDER BY date, ticker;
INSERT INTO factor_scores (ticker, region, date, factor_name, score, percentile)
  SELECT ticker, region, date, (ARRAY['momentum', 'value', 'quality', 'size', 'volatility'])[1 + (i % 5)],
         sin(i / 11.0 + t), ((t * 7 + i) % 100) / 100.0
  FROM px ORDER BY date, ticker;
EOF
podman cp "$WORK/load.sql" "$DBC:/tmp/qp-qb-load.sql"
dbsh "chmod 0644 /tmp/qp-qb-load.sql && runuser -u postgres -- psql -Xq -d quant_platform -f /tmp/qp-qb-load.sql"
psqlc "VACUUM ANALYZE" >/dev/null
load_s=$(( $(date +%s) - t0 ))
echo "loaded in $load_s s"
psqlc "SELECT json_build_object(
  'ohlcv_data', json_build_object('rows', (SELECT count(*) FROM ohlcv_data), 'bytes', hypertable_size('ohlcv_data'),
                                  'index_bytes', (SELECT sum(index_bytes) FROM hypertable_detailed_size('ohlcv_data'))),
  'technical_analysis', json_build_object('rows', (SELECT count(*) FROM technical_analysis), 'bytes', hypertable_size('technical_analysis'),
                                  'index_bytes', (SELECT sum(index_bytes) FROM hypertable_detailed_size('technical_analysis'))),
  'factor_scores', json_build_object('rows', (SELECT count(*) FROM factor_scores), 'bytes', hypertable_size('factor_scores'),
                                  'index_bytes', (SELECT sum(index_bytes) FROM hypertable_detailed_size('factor_scores'))),
  'database_bytes', pg_database_size('quant_platform'),
  'tickers', (SELECT count(DISTINCT ticker) FROM ohlcv_data),
  'first_date', (SELECT min(date) FROM ohlcv_data), 'last_date', (SELECT max(date) FROM ohlcv_data))" > "$WORK/sizes.json"
cat "$WORK/sizes.json"

# pgbench's own tables, in a database of their own, initialised once.
psqlc "CREATE DATABASE pgbench" postgres >/dev/null
dbsh "runuser -u postgres -- pgbench -q -i -s 20 pgbench" > "$WORK/pgbench-init.log" 2>&1

# --- the two configurations ----------------------------------------------------------------
dbsh "cp $CONF /root/qp-qb-tuned.conf"
podman exec -i "$DBC" bash -c "python3 - $CONF > /root/qp-qb-default.conf" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
# Drop the tuning block: from its '# --- tuning' heading to the next '# ---' heading or the end.
print(re.sub(r'\n# --- tuning.*?(?=\n# ---|\Z)', '\n', text, flags=re.S), end='')
PY
dbsh "diff /root/qp-qb-default.conf /root/qp-qb-tuned.conf" > "$WORK/tuning.diff" || true
grep -q "shared_buffers" "$WORK/tuning.diff" || { echo "no tuning block found in $CONF" >&2; cat "$WORK/tuning.diff"; exit 1; }
podman cp "$WORK/sizes.json" "$DBC:/root/qp-qb-sizes.json"
echo "$provision_s $load_s" | podman exec -i "$DBC" bash -c "cat > /root/qp-qb-timings"
fi

use_config() {
    dbsh "install -m 0644 -o postgres -g postgres /root/qp-qb-$1.conf $CONF && systemctl restart postgresql@17-main"
    for _ in $(seq 1 60); do
        dbsh "runuser -u postgres -- pg_isready -q" && return 0
        sleep 1
    done
    echo "PostgreSQL did not come back with the $1 configuration" >&2
    exit 1
}

pgbench_tps() {   # $1 = extra pgbench options; prints tps
    dbsh "runuser -u postgres -- pgbench -n $1 -c 4 -j 2 -T $PGB_SECONDS pgbench 2>&1" \
        | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}

for round in $(seq 1 "$ROUNDS"); do
    for config in tuned default; do
        use_config "$config"
        before=$(loadavg)
        t=$(date +%s.%N)
        play "$ROOT/bench/query_benchmark/run.yml" -e "bench_out=$WORK/rounds/$round-$config.json" \
            -e "query_benchmark_runs=$RUNS"
        wall=$(echo "$(date +%s.%N) - $t" | bc)
        select_tps=$(pgbench_tps "-S")
        tpcb_tps=$(pgbench_tps "")
        after=$(loadavg)
        settings=$(psqlc "SELECT json_object_agg(name, setting || coalesce(unit, '')) FROM pg_settings WHERE name IN
            ('shared_buffers', 'effective_cache_size', 'work_mem', 'maintenance_work_mem', 'random_page_cost',
             'effective_io_concurrency', 'max_parallel_workers_per_gather', 'max_worker_processes', 'jit',
             'wal_buffers', 'default_statistics_target', 'checkpoint_completion_target', 'max_wal_size')")
        python3 - "$WORK/rounds/$round-$config.json" "$round" "$config" "$before" "$after" "$wall" \
            "$select_tps" "$tpcb_tps" "$settings" <<'PY'
import json, sys
path, rnd, config, before, after, wall, sel, tpcb, settings = sys.argv[1:]
data = json.load(open(path))
data.update(round=int(rnd), config=config, loadavg_before=before, loadavg_after=after,
            playbook_wall_seconds=round(float(wall), 1), settings=json.loads(settings),
            pgbench={'select_only_tps': float(sel or 0), 'tpcb_like_tps': float(tpcb or 0)})
json.dump(data, open(path, 'w'))
print('round %s %-7s load %s -> %s  %s  pgbench -S %s tps, TPC-B %s tps' % (
    rnd, config, before, after,
    ', '.join('%s p95 %.1f ms' % (q['name'], q['p95_ms']) for q in data['result']['queries']), sel, tpcb))
PY
    done
done
use_config tuned

versions=$(dbsh "runuser -u postgres -- psql -XAtq -d quant_platform -c \"SELECT json_build_object('postgresql', current_setting('server_version'), 'timescaledb', (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'))\"")
python3 - "$WORK" "$OUT" "$TICKERS" "$YEARS" "$ROUNDS" "$RUNS" "$PGB_SECONDS" "$provision_s" "$load_s" "$versions" <<'PY'
import glob, json, os, platform, statistics, sys, datetime
work, out, tickers, years, rounds, runs, pgb_s, provision_s, load_s, versions = sys.argv[1:]
data = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work, 'rounds', '*.json')))]
targets = {c['subject']: {'target': c['warning'], 'acceptable': c['acceptable'], 'critical': c['critical']}
           for c in data[0]['checks']}
summary = {}
for config in ('tuned', 'default'):
    mine = [d for d in data if d['config'] == config]
    queries = {}
    for name in [q['name'] for q in mine[0]['result']['queries']]:
        per_round = [[q for q in d['result']['queries'] if q['name'] == name][0] for d in mine]
        queries[name] = {
            'p50_ms_median': round(statistics.median(q['p50_ms'] for q in per_round), 2),
            'p95_ms_median': round(statistics.median(q['p95_ms'] for q in per_round), 2),
            'p95_ms_per_round': [q['p95_ms'] for q in per_round],
            'rows': per_round[-1]['rows'],
            'statuses_per_round': [[c for c in d['checks'] if c['subject'] == name][0]['status'] for d in mine],
        }
    summary[config] = {
        'queries': queries,
        'pgbench_select_only_tps_median': statistics.median(d['pgbench']['select_only_tps'] for d in mine),
        'pgbench_tpcb_like_tps_median': statistics.median(d['pgbench']['tpcb_like_tps'] for d in mine),
        'settings': mine[0]['settings'],
    }
comparison = {}
for name, tuned in summary['tuned']['queries'].items():
    default = summary['default']['queries'][name]
    t = targets[name]
    p95 = tuned['p95_ms_median']
    comparison[name] = {
        'target_ms': t['target'], 'acceptable_ms': t['acceptable'], 'critical_ms': t['critical'],
        'tuned_p95_ms': p95, 'default_p95_ms': default['p95_ms_median'],
        'tuned_target_met': p95 < t['target'], 'default_target_met': default['p95_ms_median'] < t['target'],
        'tuned_headroom_x': round(t['target'] / p95, 1) if p95 else None,
        'default_over_tuned_p95': round(default['p95_ms_median'] / p95, 2) if p95 else None,
        'default_over_tuned_p50': round(default['p50_ms_median'] / tuned['p50_ms_median'], 2) if tuned['p50_ms_median'] else None,
    }
for key in ('pgbench_select_only_tps_median', 'pgbench_tpcb_like_tps_median'):
    comparison[key.replace('_median', '_tuned_over_default')] = round(
        summary['tuned'][key] / summary['default'][key], 2) if summary['default'][key] else None
result = {
    'benchmark': 'queries',
    'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    'method': {
        'what': "seed 002 Query Performance Targets, the runbook's role quantops.platform.query_benchmark "
                "(module postgresql_query_benchmark: execute + fetch all rows, on the database host over the unix socket)",
        'data': '%s tickers (2 regions) x %s years of business days, inserted day by day; ohlcv_data, '
                'technical_analysis, factor_scores one row per ticker and day; VACUUM ANALYZE' % (tickers, years),
        'configs': {'tuned': 'conf.d/50-quantops.conf as the postgresql role wrote it (tuning for 2048 MiB, 2 vCPUs, timescaledb formulas)',
                    'default': 'the same file without its tuning block (Debian/PostgreSQL defaults for those settings)'},
        'alternation': 'rounds tuned, default, tuned, default, ...; PostgreSQL restarted before each round (same data files, OS page cache kept)',
        'runs_per_query_per_round': int(runs), 'warmup_runs_per_query_per_round': 1, 'rounds_per_config': int(rounds),
        'statistic': 'median over the rounds of each round\'s p50/p95 (linear interpolation over the measured runs)',
        'pgbench': 'scale 20, 4 clients, 2 threads, %s s each: -S (select-only) and the default TPC-B-like script' % pgb_s,
        'container': 'podman, --memory=2g, 2 host cores shared with other work (see loadavg)',
    },
    'sizes': json.load(open(os.path.join(work, 'sizes.json'))),
    'versions': dict(json.loads(versions), podman_image='localhost/quantops-trixie:latest', host_kernel=platform.release()),
    'timings_seconds': {'provision': int(provision_s), 'load': int(load_s)},
    'loadavg': [{'round': d['round'], 'config': d['config'], 'before': d['loadavg_before'], 'after': d['loadavg_after']}
                for d in data],
    'summary': summary,
    'comparison': comparison,
    'rounds': [{'round': d['round'], 'config': d['config'], 'parameters': d['result']['parameters'],
                'queries': [{k: q[k] for k in ('name', 'rows', 'warmup_ms', 'times_ms', 'p50_ms', 'p95_ms')}
                            for q in d['result']['queries']],
                'checklist_status': {c['subject']: c['status'] for c in d['checks']},
                'pgbench': d['pgbench'], 'playbook_wall_seconds': d['playbook_wall_seconds']} for d in data],
    'sql': {q['name']: q['sql'] for q in data[0]['result']['queries']},
}
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(result, open(out, 'w'), indent=1, sort_keys=False)
print(json.dumps(comparison, indent=1))
print('wrote', out)
PY
