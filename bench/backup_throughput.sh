#!/usr/bin/env bash
# Backup and restore throughput of pgBackRest on the lab (issue 19, part 4):
# a matrix of settings on one data set, the disk's own bandwidth (dd) on the
# same filesystems in the same run, block incremental vs whole-file
# incrementals after a realistic change, and the restore drill's RTO/RPO on a
# ~5 GB data directory.  Writes bench/results/backup.json.
#
#   bench/backup_throughput.sh [--size-mb N] [--rto-mb N] [--matrix default|full] [--keep] [--reuse]
#   (--reuse: keep the containers of an earlier --keep run and converge them again)
#
# It starts two containers of its own (hb-bench-db, hb-bench-repo on network
# hb-bench; stale ones of the same names are removed first unless --reuse),
# converges them with the backup_restore scenario's playbooks (PostgreSQL 17 +
# TimescaleDB + platform schema + lab market data on the database host, the
# pgBackRest repository host over mutual TLS, repo1 aes-256-cbc), then:
#   disk     dd write (1 MiB blocks, conv=fdatasync) and O_DIRECT read of a
#            1 GiB file on the database host's data filesystem and on the
#            repository filesystem
#   data     the lab data plus N MiB (--size-mb) of generated rows in table
#            bench_filler (bigint, timestamptz, double, md5 text: about half
#            compressible, like market data with text columns)
#   matrix   per row (compress-type:level:process-max:repo-bundle): a full
#            backup (pgbackrest backup on the repository host, settings on the
#            command line) and a files-only restore of it into an empty
#            directory on the database host (same process-max); wall time,
#            MB/s = backup size (the database's files) / wall time, CPU seconds
#            of each container (cgroup cpuacct), repository size
#   incr     per repo-block n/y, with the fastest compressed row's settings
#            and repo-bundle: a full backup, the same change (1 % new rows at
#            the end of bench_filler, an UPDATE of every 1000th row - spread
#            over every 1 GiB segment file - and new rows in the newest
#            market-data chunk), an incremental backup, a restore of it
#   drill    the data set grown to --rto-mb MiB (data directory), a full
#            backup with the same settings, a timed files-only restore, then
#            playbooks/backup/verify.yml: its RTO (restore start -> promoted)
#            and RPO as the drill reports them
# Load average before and after each phase.  Containers are removed at the end
# unless --keep.  Needs podman and localhost/quantops-trixie (TESTBED.md).
set -euo pipefail
SIZE_MB=2048
RTO_MB=5000
MATRIX=default
KEEP=0
REUSE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --size-mb) SIZE_MB=$2; shift 2;;
        --rto-mb) RTO_MB=$2; shift 2;;
        --matrix) MATRIX=$2; shift 2;;
        --keep) KEEP=1; shift;;
        --reuse) REUSE=1; KEEP=1; shift;;
        *) echo "usage: $0 [--size-mb N] [--rto-mb N] [--matrix default|full] [--keep] [--reuse]" >&2; exit 2;;
    esac
done
case "$SIZE_MB$RTO_MB" in *[!0-9]*) echo "$0: --size-mb and --rto-mb take whole MiB" >&2; exit 2;; esac
# One table, and the drill checksums each table as one string capped at 1 GiB (33.5 M rows).
[ "$SIZE_MB" -le 2700 ] || { echo "$0: --size-mb at most 2700 (the drill's checksum of one table)" >&2; exit 2; }
# compress-type:compress-level:process-max:repo-bundle
case "$MATRIX" in
    default) ROWS="none:0:2:n lz4:1:2:n zst:1:2:n zst:3:2:n gz:6:2:n lz4:1:1:n lz4:1:4:n lz4:1:2:y zst:1:2:y";;
    full) ROWS="none:0:1:n none:0:2:n none:0:4:n lz4:1:1:n lz4:1:2:n lz4:1:4:n lz4:6:2:n zst:1:1:n zst:1:2:n
                zst:1:4:n zst:3:1:n zst:3:2:n zst:3:4:n zst:6:2:n gz:1:2:n gz:6:2:n none:0:2:y lz4:1:2:y zst:1:2:y zst:3:2:y";;
    *) echo "$0: --matrix default or full" >&2; exit 2;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/qp-bench-backup.XXXXXX)
NET=hb-bench
DBC=hb-bench-db
REPOC=hb-bench-repo
PGDATA=/var/lib/postgresql/17/main
RESTORE_DIR=/var/lib/postgresql/bench-restore
export MOLECULE_PROJECT_DIRECTORY="$ROOT" PATH="$ROOT/.venv/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1

cleanup() {
    if [ "$KEEP" -eq 0 ]; then
        podman rm -f "$DBC" "$REPOC" >/dev/null 2>&1 || true
        podman network rm "$NET" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' ','; }
LOAD_START=$(loadavg)
T_START=$(date +%s)

if [ "$REUSE" -eq 0 ] || ! podman container exists "$DBC"; then
    podman rm -f "$DBC" "$REPOC" >/dev/null 2>&1 || true
    podman network exists "$NET" || podman network create "$NET" >/dev/null
    for c in "$DBC" "$REPOC"; do
        podman run -d --name "$c" --hostname "$c" --network "$NET" --memory=2g --runtime=runc \
            --ulimit nofile=1024:1024 --ulimit nproc=2000:2000 \
            localhost/quantops-trixie:latest /sbin/init SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1 >/dev/null
    done
    FRESH=1
else
    FRESH=0
fi

# Inventory: the scenario's group_vars, these two containers.
# Secrets and the CA live as long as the containers (.build/bench-backup, new with them).
STATE="$ROOT/.build/bench-backup"
[ "$FRESH" -eq 1 ] && rm -rf "$STATE"
mkdir -p "$WORK/inventory/group_vars" "$STATE/secrets"
rm -f "$STATE"/*.jsonl
python3 - "$ROOT/molecule/backup_restore/molecule.yml" "$WORK" "$STATE" <<'PY'
import sys, yaml
scenario, work, state = sys.argv[1], sys.argv[2], sys.argv[3]
gv = yaml.safe_load(open(scenario))['provisioner']['inventory']['group_vars']
gv['all']['ansible_connection'] = 'podman_nsenter'  # the test bed's connection (ansible.cfg)
# repo1 only: the scenario's offsite S3 (moto, repo2) and the dumps' offsite copy would
# add a second upload to every backup and WAL push, and they need the scenario's hosts.
gv['all'] = {k: v for k, v in gv['all'].items() if not k.startswith('pgbackrest_repo2_')}
gv['all']['pgbackrest_repo2_s3_enabled'] = False
gv['database'] = {k: v for k, v in gv['database'].items() if not k.startswith('pg_dump_backup_offsite_')}
gv['database']['pg_dump_backup_offsite_enabled'] = False
# The scenario's prepare without its moto play: systemd booted, stand-in services.
plays = yaml.safe_load(open(scenario.replace('molecule.yml', 'prepare.yml')))
plays = [p for p in plays if not any(w in p['name'] for w in ('moto', 'S3', 'Rclone'))]
yaml.safe_dump(plays, open(work + '/prepare.yml', 'w'), sort_keys=False)
text = yaml.safe_dump(gv['all']).replace('${MOLECULE_EPHEMERAL_DIRECTORY}', state)
open(work + '/inventory/group_vars/all.yml', 'w').write(text)
open(work + '/inventory/group_vars/database.yml', 'w').write(yaml.safe_dump(gv['database']))
open(work + '/inventory/hosts.yml', 'w').write(yaml.safe_dump(
    {'all': {'children': {'database': {'hosts': {'hb-bench-db': {}}},
                          'backup_repo': {'hosts': {'hb-bench-repo': {}}}}}}))
PY
INV="$WORK/inventory"
play() { ansible-playbook -i "$INV" "$@" > "$WORK/last_play.log" 2>&1 || { tail -40 "$WORK/last_play.log"; exit 1; }; }
dbsh() { podman exec "$DBC" bash -c "$1"; }
reposh() { podman exec "$REPOC" bash -c "$1"; }
psqlc() { dbsh "runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d quant_platform -c \"$1\""; }
pgbr_repo() { reposh "runuser -u postgres -- pgbackrest --stanza=main $1"; }
pgbr_db() { dbsh "runuser -u postgres -- pgbackrest --stanza=main $1"; }
# CPU nanoseconds a container has used (its cgroup, from the host).
cpu_ns() {
    local cg
    cg=$(podman inspect --format '{{.State.CgroupPath}}' "$1")
    cat "/sys/fs/cgroup/cpu,cpuacct$cg/cpuacct.usage" 2>/dev/null || cat "/sys/fs/cgroup/cpuacct$cg/cpuacct.usage"
}
now() { date +%s.%N; }
PHASES="$STATE/phases.jsonl"
phase() {  # name start_epoch load_before
    python3 -c 'import json,sys,time; print(json.dumps({"phase": sys.argv[1], "seconds": round(time.time()-float(sys.argv[2]),1),
        "load_before": [float(x) for x in sys.argv[3].split(",")], "load_after": [float(x) for x in sys.argv[4].split(",")]}))' \
        "$1" "$2" "$3" "$(loadavg)" >> "$PHASES"
}

t0=$(now); l0=$(loadavg)
[ "$FRESH" -eq 1 ] && play "$WORK/prepare.yml"
play "$ROOT/molecule/backup_restore/converge.yml"
phase converge "$t0" "$l0"
log "converged"
# If the CPU accounting cannot be read, stop before measuring anything.
cpu_ns "$DBC" >/dev/null && cpu_ns "$REPOC" >/dev/null

# --- raw disk bandwidth, same filesystems, same run (before and after the matrix) -------
# The containers cannot drop the page cache (/proc/sys is read-only); iflag=direct bypasses
# it, and the file is written just before it is read.
DD_MB=1024
DD="$STATE/dd.jsonl"
ddw() { $1 "dd if=/dev/zero of=$2/qp-dd.test bs=1M count=$DD_MB conv=fdatasync 2>&1 | tail -1"; }
ddr() { $1 "dd if=$2/qp-dd.test of=/dev/null bs=1M iflag=direct 2>&1 | tail -1; rm -f $2/qp-dd.test"; }
rate() { python3 -c 'import re,sys; m=re.search(r"(\d+) bytes.*?, ([\d.]+) s,", sys.argv[1]); print(round(int(m.group(1))/float(m.group(2))/1e6,1))' "$1"; }
measure_dd() {  # when
    local t0 l0 dw dr rw rr
    t0=$(now); l0=$(loadavg)
    dw=$(rate "$(ddw dbsh /var/lib/postgresql)"); dr=$(rate "$(ddr dbsh /var/lib/postgresql)")
    rw=$(rate "$(ddw reposh /var/lib/pgbackrest)"); rr=$(rate "$(ddr reposh /var/lib/pgbackrest)")
    echo "{\"when\": \"$1\", \"db_host_write_mb_s\": $dw, \"db_host_read_mb_s\": $dr, \"repo_host_write_mb_s\": $rw, \"repo_host_read_mb_s\": $rr}" >> "$DD"
    phase "dd_$1" "$t0" "$l0"
    log "dd $1: db write $dw read $dr, repo write $rw read $rr MB/s"
}
measure_dd before_matrix

# AES-256-CBC (repo1's cipher) on one core of this CPU, for the limits discussion.
aes_mb_s=$(openssl speed -seconds 2 -bytes 65536 -evp aes-256-cbc 2>/dev/null | awk 'tolower($1) == "aes-256-cbc" {sub("k","",$2); print int($2*1000/1e6)}' || true)

# --- data set ---------------------------------------------------------------------------
# 93 bytes per row on disk (heap + tuple headers; measured: 20 480 000 rows made
# pgBackRest's backup 1 908 MB larger): rows = MiB * 1048576 / 93.
ROW_BYTES=93
# The drill checksums every table as one string of 32 bytes a row, which PostgreSQL caps at
# 1 GiB: no table may pass 33.5 M rows, so the drill's extra rows go into a table of their own.
filler_rows() { psqlc "SELECT coalesce(max(id), 0) FROM ${1:-bench_filler}" 2>/dev/null || echo 0; }
add_rows() {  # how-many [table]
    local from table=${2:-bench_filler}
    from=$(filler_rows "$table")
    psqlc "CREATE TABLE IF NOT EXISTS $table (id bigint, at timestamptz, price double precision, note text)"
    psqlc "INSERT INTO $table SELECT g, timestamptz '2020-01-01' + g * interval '1 second', random(), md5(g::text) FROM generate_series($from + 1, $from + $1) g"
}
t0=$(now); l0=$(loadavg)
if [ "$SIZE_MB" -gt 0 ] && [ "$(filler_rows)" -eq 0 ]; then
    add_rows $(( SIZE_MB * 1048576 / ROW_BYTES ))
fi
psqlc "VACUUM ANALYZE bench_filler" >/dev/null 2>&1 || true
phase generate_matrix_data "$t0" "$l0"
log "data set: $(dbsh "du -sm $PGDATA | cut -f1") MiB data directory"

# --- one backup + one restore, appended to runs.jsonl ------------------------------------
RUNS="$STATE/runs.jsonl"
# backup_restore KIND TYPE OPTIONS... : KIND names the row in the results.
backup_restore() {
    local kind=$1 btype=$2 opts=$3 pm=$4 t b_s r_s label info cdb0 crepo0 cdb1 crepo1 cdb1b crepo1b cdb2 crepo2 db_bytes l0
    l0=$(loadavg)
    psqlc "CHECKPOINT" >/dev/null
    db_bytes=$(dbsh "du -sb $PGDATA | cut -f1")
    cdb0=$(cpu_ns "$DBC"); crepo0=$(cpu_ns "$REPOC"); t=$(now)
    pgbr_repo "--type=$btype $opts backup" > "$WORK/backup-$kind.log" 2>&1 || { tail -20 "$WORK/backup-$kind.log"; exit 1; }
    b_s=$(echo "$(now) - $t" | bc); cdb1=$(cpu_ns "$DBC"); crepo1=$(cpu_ns "$REPOC")
    info=$(pgbr_repo "--output=json info")
    label=$(echo "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backup"][-1]["label"])')
    dbsh "rm -rf $RESTORE_DIR && install -d -o postgres -g postgres -m 0700 $RESTORE_DIR"
    cdb1b=$(cpu_ns "$DBC"); crepo1b=$(cpu_ns "$REPOC"); t=$(now)
    pgbr_db "--set=$label --pg1-path=$RESTORE_DIR --archive-mode=off --type=immediate --process-max=$pm restore" \
        > "$WORK/restore-$kind.log" 2>&1 || { tail -20 "$WORK/restore-$kind.log"; exit 1; }
    dbsh "sync"
    r_s=$(echo "$(now) - $t" | bc); cdb2=$(cpu_ns "$DBC"); crepo2=$(cpu_ns "$REPOC")
    dbsh "rm -rf $RESTORE_DIR"
    echo "$info" | python3 -c '
import json, sys
(kind, btype, opts, label, db_bytes, b_s, r_s, cdb0, crepo0, cdb1, crepo1, cdb1b, crepo1b, cdb2, crepo2, l0, l1) = sys.argv[1:]
b = [x for x in json.load(sys.stdin)[0]["backup"] if x["label"] == label][0]
size, repo = b["info"]["size"], b["info"]["repository"]
moved = b["info"]["delta"]  # bytes of database files this backup read and stored
b_s, r_s = float(b_s), float(r_s)
cpu = lambda a, z: round((int(z) - int(a)) / 1e9, 1)
print(json.dumps({"row": kind, "type": btype, "options": opts, "label": label,
    "data_directory_bytes": int(db_bytes), "backup_size_bytes": size, "backup_delta_bytes": moved,
    # A block incremental backup reports its map instead of a repository size.
    "repo_size_bytes": repo.get("size"), "repo_delta_bytes": repo["delta"], "repo_map_bytes": repo.get("size-map"),
    "compression_ratio": round(moved / max(repo["delta"], 1), 2),
    "backup": {"wall_seconds": round(b_s, 2), "throughput_mb_s": round(moved / 1e6 / b_s, 1),
               "cpu_seconds_db_host": cpu(cdb0, cdb1), "cpu_seconds_repo_host": cpu(crepo0, crepo1)},
    "restore": {"wall_seconds": round(r_s, 2), "throughput_mb_s": round(size / 1e6 / r_s, 1),
                "cpu_seconds_db_host": cpu(cdb1b, cdb2), "cpu_seconds_repo_host": cpu(crepo1b, crepo2)},
    "load_before": [float(x) for x in l0.split(",")], "load_after": [float(x) for x in l1.split(",")]}))
' "$kind" "$btype" "$opts" "$label" "$db_bytes" "$b_s" "$r_s" "$cdb0" "$crepo0" "$cdb1" "$crepo1" "$cdb1b" "$crepo1b" "$cdb2" "$crepo2" "$l0" "$(loadavg)" >> "$RUNS"
    log "$(tail -1 "$RUNS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["row"], r["type"], "backup", r["backup"]["throughput_mb_s"], "MB/s", r["backup"]["wall_seconds"], "s; restore", r["restore"]["throughput_mb_s"], "MB/s", r["restore"]["wall_seconds"], "s; stored", r["repo_delta_bytes"]//1000000, "MB")')"
}
row_opts() {  # type:level:pm:bundle[:block]
    local ct cl pm bu bl
    IFS=: read -r ct cl pm bu bl <<< "$1"
    echo "--compress-type=$ct --compress-level=$cl --process-max=$pm --repo1-bundle=$bu${bl:+ --repo1-block=$bl}"
}

# --- matrix of full backups -----------------------------------------------------------
t0=$(now); l0=$(loadavg)
for row in $ROWS; do
    backup_restore "$row" full "$(row_opts "$row")" "$(cut -d: -f3 <<< "$row")"
done
phase matrix "$t0" "$l0"
measure_dd after_matrix

# The fastest compressed row with process-max 2 and repo-bundle (block incremental needs
# bundling) settles the settings of the incremental and drill phases.
BEST=$(python3 - "$RUNS" <<'PY'
import json, sys
runs = [json.loads(x) for x in open(sys.argv[1])]
cands = [r for r in runs if not r["row"].startswith("none:") and r["row"].split(":")[2] == "2"]
best = max(cands, key=lambda r: r["backup"]["throughput_mb_s"] + r["restore"]["throughput_mb_s"] / 4)
ct, cl, pm, _ = best["row"].split(":")
print(f"{ct}:{cl}:{pm}:y")
PY
)
log "incremental and drill settings: $BEST"

# --- incrementals: whole-file vs block ---------------------------------------------------------
NEW_ROWS=$(( $(filler_rows) / 100 ))
change() {
    local from
    from=$(filler_rows)
    psqlc "INSERT INTO bench_filler SELECT g, timestamptz '2020-01-01' + g * interval '1 second', random(), md5(g::text) FROM generate_series($from + 1, $from + $NEW_ROWS) g"
    psqlc "UPDATE bench_filler SET price = price * 1.0001 WHERE id % 1000 = 0"
    psqlc "INSERT INTO public.ohlcv_data (ticker, region, date, open, high, low, close, volume) SELECT ticker, region, date + 1, open, high, low, close, volume FROM public.ohlcv_data WHERE date = (SELECT max(date) FROM public.ohlcv_data)"
}
t0=$(now); l0=$(loadavg)
for block in n y; do
    backup_restore "incr-base:$BEST:$block" full "$(row_opts "$BEST:$block")" "$(cut -d: -f3 <<< "$BEST")"
    change
    backup_restore "incr:$BEST:$block" incr "$(row_opts "$BEST:$block")" "$(cut -d: -f3 <<< "$BEST")"
done
phase incrementals "$t0" "$l0"

# --- the drill on a ~RTO_MB data directory -------------------------------------------------------
drill_ok=skipped; drill_s=0; rto=nan; rpo=nan; drill_msg=""
if [ "$RTO_MB" -gt 0 ]; then
    t0=$(now); l0=$(loadavg)
    have=$(dbsh "du -sm $PGDATA | cut -f1")
    if [ "$have" -lt "$RTO_MB" ]; then
        left=$(( (RTO_MB - have) * 1048576 / ROW_BYTES )); n=1
        while [ "$left" -gt 0 ]; do
            chunk=$(( left < 30000000 ? left : 30000000 ))
            add_rows "$chunk" "bench_filler_drill_$n"
            psqlc "VACUUM ANALYZE bench_filler_drill_$n" >/dev/null
            left=$(( left - chunk )); n=$(( n + 1 ))
        done
    fi
    phase generate_drill_data "$t0" "$l0"
    log "drill data set: $(dbsh "du -sm $PGDATA | cut -f1") MiB data directory"
    t0=$(now); l0=$(loadavg)
    backup_restore "drill:$BEST" full "$(row_opts "$BEST:y")" "$(cut -d: -f3 <<< "$BEST")"
    phase drill_backup "$t0" "$l0"
    t0=$(now); l0=$(loadavg)
    drill_ok=true
    ansible-playbook -i "$INV" "$ROOT/playbooks/backup/verify.yml" > "$WORK/drill.log" 2>&1 || { drill_ok=false; tail -30 "$WORK/drill.log"; drill_msg=$(grep -m1 -o 'restore drill failed at .*' "$WORK/drill.log" | tr -d "\"\\\\" || true); }
    phase drill "$t0" "$l0"
    drill_s=$(python3 -c 'import json,sys; print([json.loads(x) for x in open(sys.argv[1])][-1]["seconds"])' "$PHASES")
    prom=$(dbsh "cat /var/lib/prometheus/node-exporter/quantops_backup_pgbackrest_main.prom")
    rto=$(echo "$prom" | awk '/^quantops_backup_drill_rto_seconds\{/ {print $2}')
    rpo=$(echo "$prom" | awk '/^quantops_backup_drill_rpo_seconds\{/ {print $2}')
    log "drill: $drill_ok, RTO ${rto:-?} s, RPO ${rpo:-?} s, $drill_s s wall"
fi

pgbr_version=$(reposh "pgbackrest version" | awk '{print $2}')
pg_version=$(psqlc "SHOW server_version")
conf() { reposh "sed -n 's/^$1=//p' /etc/pgbackrest.conf | head -1"; }
cipher=$(conf repo1-cipher-type)
role_conf="compress-type=$(conf compress-type) compress-level=$(conf compress-level) process-max=$(conf process-max) repo1-bundle=$(conf repo1-bundle) repo1-block=$(conf repo1-block)"

mkdir -p "$ROOT/bench/results"
python3 - "$ROOT/bench/results/backup.json" "$RUNS" "$PHASES" <<PY
import datetime, json, sys, platform, os, subprocess
runs = [json.loads(line) for line in open(sys.argv[2])]
phases = [json.loads(line) for line in open(sys.argv[3])]
dds = [json.loads(line) for line in open("$DD")]
# The reference: the mean of the two dd runs (before and after the matrix) per direction.
mean = lambda k: round(sum(d[k] for d in dds) / len(dds), 1)
disk = {"file_mib": $DD_MB, "method": "dd bs=1M conv=fdatasync write, then dd iflag=direct read (page cache bypassed), "
                                      "before and after the matrix; the reference is their mean",
        "runs": dds, **{k: mean(k) for k in ("db_host_write_mb_s", "db_host_read_mb_s", "repo_host_write_mb_s", "repo_host_read_mb_s")}}
db_w, db_r, repo_w, repo_r = (disk[k] for k in ("db_host_write_mb_s", "db_host_read_mb_s", "repo_host_write_mb_s", "repo_host_read_mb_s"))
for r in runs:
    # A backup reads the database host's disk and writes the repository's; a restore the reverse.
    r["backup"]["pct_of_repo_write"] = round(100 * r["backup"]["throughput_mb_s"] / repo_w)
    r["backup"]["pct_of_db_read"] = round(100 * r["backup"]["throughput_mb_s"] / db_r)
    r["restore"]["pct_of_db_write"] = round(100 * r["restore"]["throughput_mb_s"] / db_w)
    r["restore"]["pct_of_repo_read"] = round(100 * r["restore"]["throughput_mb_s"] / repo_r)
r = {
  "benchmark": "pgbackrest backup/restore throughput (bench/backup_throughput.sh)",
  "date": datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
  "matrix": "$MATRIX", "generated_dataset_mib": $SIZE_MB, "drill_dataset_mib": $RTO_MB,
  "incremental_and_drill_settings": "$BEST",
  "versions": {"pgbackrest": "$pgbr_version", "postgresql": "$pg_version",
               "os": "Debian 13 (localhost/quantops-trixie containers)"},
  "pgbackrest": {"cipher": "$cipher", "role_config_of_this_run": "$role_conf",
                 "transport": "TLS server (repository on a container of its own)"},
  "method": {"backup": "pgbackrest --type=full|incr <row's options> backup on the repository host (pulls the files "
                       "from the database host over TLS, writes repo1 encrypted); MB/s = bytes of database files "
                       "the backup read (info delta) / wall time; CPU = each container's cgroup cpuacct",
             "restore": "pgbackrest restore --type=immediate --process-max=<row's> of that backup into an empty "
                        "directory on the database host (files only, no WAL replay), then sync; MB/s = backup "
                        "size / wall time",
             "change": "incrementals: 1 % new rows appended to bench_filler, UPDATE of every 1000th row "
                       "(every 1 GiB segment touched), the newest day of ohlcv_data copied to the next day (newest chunk)",
             "row": "compress-type:compress-level:process-max:repo-bundle[:repo-block]"},
  "disk_dd": disk,
  "aes_256_cbc_one_core_mb_s": float("${aes_mb_s:-nan}"),
  "runs": runs,
  "drill": {"playbook": "playbooks/backup/verify.yml", "on_data_directory_bytes": runs[-1]["data_directory_bytes"],
            "passed": "$drill_ok" == "true", "ran": "$drill_ok" != "skipped", "failure": "$drill_msg",
            "wall_seconds": float("$drill_s"), "rto_seconds": float("${rto:-nan}"), "rpo_seconds": float("${rpo:-nan}"),
            "rto_is": "restore command start -> scratch cluster promoted (roles/drill/tasks/verify.yml)",
            "rpo_is": "restore start - time of the named restore point the drill checksummed (newest restorable transaction)"},
  "phases": phases,
  "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "container_memory": "2g",
              "load_average_start": [float(x) for x in "$LOAD_START".split(",")],
              "load_average_end": [round(x, 2) for x in os.getloadavg()],
              "storage": "both containers' filesystems are podman overlay on the same host disk"},
  "total_seconds": round(__import__("time").time() - $T_START),
}
json.dump(r, open(sys.argv[1], "w"), indent=2)
print(json.dumps({k: r[k] for k in ("date", "disk_dd", "drill", "total_seconds")}, indent=2))
PY
