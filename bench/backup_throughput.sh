#!/usr/bin/env bash
# Backup and restore throughput of pgBackRest on the lab (issue 4), with raw
# disk bandwidth measured the same way (dd) on the same filesystems, and the
# restore drill's RTO/RPO.  Writes bench/results/backup.json.
#
#   bench/backup_throughput.sh [--size-mb N] [--keep]
#
# It starts two containers of its own (hb-bench-db, hb-bench-repo on network
# hb-bench; stale ones of the same names are removed first), converges them
# with the backup_restore scenario's playbooks (PostgreSQL 17 + TimescaleDB +
# platform schema + lab market data on the database host, the pgBackRest
# repository host over TLS), then measures, on the lab data as converged and
# again after adding N MiB of generated rows (table bench_filler: bigint,
# timestamptz, double, md5 text - about half compressible, like market data
# with text columns):
#   backup   full backup by the timer wrapper (zst, process-max 2, encrypted)
#            MB/s = pgBackRest's backup size / wall time
#   restore  pgbackrest restore of that backup into an empty directory on the
#            database host (files only, no WAL replay), MB/s = size / wall time
# and once:
#   disk     dd write (1 MiB blocks, conv=fdatasync) and O_DIRECT read of a
#            file of min(size, 1 GiB) (at least 256 MiB) on the database
#            host's data filesystem and the repository filesystem
#   drill    playbooks/backup/verify.yml on the larger data set: RTO and RPO
#            as reported by it
# Containers are removed at the end unless --keep.  Needs podman and the
# localhost/quantops-trixie image (see /work/shared/TESTBED.md).
set -euo pipefail
SIZE_MB=0
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --size-mb) SIZE_MB=$2; shift 2;;
        --keep) KEEP=1; shift;;
        *) echo "usage: $0 [--size-mb N] [--keep]" >&2; exit 2;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/qp-bench-backup.XXXXXX)
NET=hb-bench
DBC=hb-bench-db
REPOC=hb-bench-repo
export PATH="$ROOT/.venv/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1

cleanup() {
    if [ "$KEEP" -eq 0 ]; then
        podman rm -f "$DBC" "$REPOC" >/dev/null 2>&1 || true
        podman network rm "$NET" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

podman rm -f "$DBC" "$REPOC" >/dev/null 2>&1 || true
podman network exists "$NET" || podman network create "$NET" >/dev/null
for c in "$DBC" "$REPOC"; do
    podman run -d --name "$c" --hostname "$c" --network "$NET" --memory=2g --runtime=runc \
        --ulimit nofile=1024:1024 --ulimit nproc=2000:2000 \
        localhost/quantops-trixie:latest /sbin/init SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1 >/dev/null
done

# Inventory: the scenario's group_vars, these two containers.
mkdir -p "$WORK/inventory/group_vars" "$WORK/secrets"
python3 - "$ROOT/molecule/backup_restore/molecule.yml" "$WORK" <<'PY'
import sys, yaml
scenario, work = sys.argv[1], sys.argv[2]
gv = yaml.safe_load(open(scenario))['provisioner']['inventory']['group_vars']
gv['all']['ansible_connection'] = 'podman_nsenter'  # the test bed's connection (ansible.cfg)
text = yaml.safe_dump(gv['all']).replace('${MOLECULE_EPHEMERAL_DIRECTORY}', work)
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

t0=$(date +%s)
play "$ROOT/molecule/backup_restore/prepare.yml"
play "$ROOT/molecule/backup_restore/converge.yml"
echo "converged in $(( $(date +%s) - t0 )) s"

# One full backup (the timer wrapper: zst, process-max, encrypted, over TLS) and
# one files-only restore of it into an empty directory; appends a JSON object to
# $WORK/runs.jsonl.
measure() {
    local tag=$1 t backup_s restore_s info db_bytes
    psqlc "CHECKPOINT" >/dev/null
    db_bytes=$(dbsh "du -sb /var/lib/postgresql/17/main | cut -f1")
    t=$(date +%s.%N)
    reposh "/usr/local/sbin/quantops-pgbackrest-backup main full" > "$WORK/backup-$tag.log" 2>&1
    backup_s=$(echo "$(date +%s.%N) - $t" | bc)
    info=$(reposh "runuser -u postgres -- pgbackrest --stanza=main --output=json info")
    label=$(echo "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backup"][-1]["label"])')
    dbsh "rm -rf /var/lib/postgresql/bench-restore && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/bench-restore"
    t=$(date +%s.%N)
    dbsh "runuser -u postgres -- pgbackrest --stanza=main --set=$label --pg1-path=/var/lib/postgresql/bench-restore --archive-mode=off --type=immediate restore" > "$WORK/restore-$tag.log" 2>&1
    restore_s=$(echo "$(date +%s.%N) - $t" | bc)
    dbsh "rm -rf /var/lib/postgresql/bench-restore"
    echo "$info" | python3 -c '
import json, sys
tag, label, db_bytes, backup_s, restore_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
b = [x for x in json.load(sys.stdin)[0]["backup"] if x["label"] == label][0]["info"]
size, repo = b["size"], b["repository"]["size"]
print(json.dumps({"dataset": tag, "label": label, "data_directory_bytes": db_bytes, "backup_size_bytes": size,
                  "repo_size_bytes": repo, "compression_ratio": round(size / max(repo, 1), 2),
                  "backup": {"wall_seconds": round(backup_s, 2), "throughput_mb_s": round(size / 1e6 / backup_s, 1)},
                  "restore": {"wall_seconds": round(restore_s, 2), "throughput_mb_s": round(size / 1e6 / restore_s, 1)}}))
' "$tag" "$label" "$db_bytes" "$backup_s" "$restore_s" >> "$WORK/runs.jsonl"
    tail -1 "$WORK/runs.jsonl"
}

# 1. The lab data as converged.
measure lab_data

# 2. The lab data plus SIZE_MB of generated rows.
if [ "$SIZE_MB" -gt 0 ]; then
    # 93 bytes per row on disk (heap + tuple headers; measured: 20 480 000 rows made
    # pgBackRest's backup 1 908 MB larger): rows = MiB * 1048576 / 93.
    rows=$(( SIZE_MB * 1048576 / 93 ))
    t=$(date +%s)
    psqlc "CREATE TABLE bench_filler AS SELECT g AS id, timestamptz '2020-01-01' + g * interval '1 second' AS at, random() AS price, md5(g::text) AS note FROM generate_series(1, $rows) g"
    echo "generated $rows rows in $(( $(date +%s) - t )) s"
    measure "lab_data_plus_${SIZE_MB}_mib"
fi

# --- raw disk bandwidth, same filesystems -------------------------------------------------
dd_mb=$(( SIZE_MB > 0 && SIZE_MB < 1024 ? SIZE_MB : 1024 ))
[ "$dd_mb" -lt 256 ] && dd_mb=256
ddw() { $1 "dd if=/dev/zero of=$2/qp-dd.test bs=1M count=$dd_mb conv=fdatasync 2>&1 | tail -1"; }
ddr() { $1 "dd if=$2/qp-dd.test of=/dev/null bs=1M iflag=direct 2>&1 | tail -1; rm -f $2/qp-dd.test"; }
rate() { python3 -c 'import re,sys; m=re.search(r"(\d+) bytes.*?, ([\d.]+) s,", sys.argv[1]); print(round(int(m.group(1))/float(m.group(2))/1e6,1))' "$1"; }
db_w=$(rate "$(ddw dbsh /var/lib/postgresql)"); db_r=$(rate "$(ddr dbsh /var/lib/postgresql)")
repo_w=$(rate "$(ddw reposh /var/lib/pgbackrest)"); repo_r=$(rate "$(ddr reposh /var/lib/pgbackrest)")

# --- drill --------------------------------------------------------------------------
t=$(date +%s)
drill_ok=true
ansible-playbook -i "$INV" "$ROOT/playbooks/backup/verify.yml" > "$WORK/drill.log" 2>&1 || { drill_ok=false; tail -30 "$WORK/drill.log"; }
drill_s=$(( $(date +%s) - t ))
prom=$(dbsh "cat /var/lib/prometheus/node-exporter/quantops_backup_pgbackrest_main.prom")
rto=$(echo "$prom" | awk '/^quantops_backup_drill_rto_seconds\{/ {print $2}')
rpo=$(echo "$prom" | awk '/^quantops_backup_drill_rpo_seconds\{/ {print $2}')

pgbr_version=$(reposh "pgbackrest version" | awk '{print $2}')
conf() { reposh "sed -n 's/^$1=//p' /etc/pgbackrest.conf | head -1"; }
compress_type=$(conf compress-type); compress_level=$(conf compress-level); process_max=$(conf process-max)
cipher=$(conf repo1-cipher-type)

mkdir -p "$ROOT/bench/results"
python3 - "$ROOT/bench/results/backup.json" "$WORK/runs.jsonl" <<PY
import datetime, json, sys, platform, os
runs = [json.loads(line) for line in open(sys.argv[2])]
r = {
  "benchmark": "pgbackrest backup/restore throughput (bench/backup_throughput.sh)",
  "date": datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
  "generated_dataset_mib": $SIZE_MB,
  "pgbackrest": {"version": "$pgbr_version", "compress_type": "$compress_type", "compress_level": int("$compress_level"),
                 "process_max": int("$process_max"), "cipher": "$cipher",
                 "transport": "TLS server (repository on a container of its own)"},
  "method": {"backup": "full backup by the timer wrapper (quantops-pgbackrest-backup) on the repository host; "
                       "MB/s = pgBackRest's backup size (the database's files) / wall time",
             "restore": "pgbackrest restore --type=immediate of that backup into an empty directory on the "
                        "database host (files only, no WAL replay); MB/s = backup size / wall time"},
  "runs": runs,
  "disk_dd": {"file_mib": $dd_mb, "method": "dd bs=1M conv=fdatasync write, then dd iflag=direct read (page cache bypassed)",
              "db_host_write_mb_s": $db_w, "db_host_read_mb_s": $db_r,
              "repo_host_write_mb_s": $repo_w, "repo_host_read_mb_s": $repo_r},
  "drill": {"playbook": "playbooks/backup/verify.yml", "on": runs[-1]["dataset"], "passed": "$drill_ok" == "true",
            "wall_seconds": $drill_s, "rto_seconds": float("${rto:-nan}"), "rpo_seconds": float("${rpo:-nan}")},
  "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "container_memory": "2g",
              "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
              "storage": "both containers' filesystems are podman overlay on the same host disk"},
}
json.dump(r, open(sys.argv[1], "w"), indent=2)
print(json.dumps(r, indent=2))
PY
