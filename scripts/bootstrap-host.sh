#!/usr/bin/env bash
# Host set-up for the lab and the tests: podman + runc + debootstrap and the
# containers.conf this test bed needs (see README "Test bed").  Idempotent.
set -euo pipefail
need=()
for p in podman runc debootstrap shellcheck; do
  command -v "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq podman runc debootstrap shellcheck >/dev/null
fi
# PostgreSQL server binaries for the unit tests that start a throwaway cluster
# of their own (tests/unit/plugins/modules/test_postgresql_health_info_live.py);
# no cluster is created or started on the host.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf \
    || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  apt-get update -qq
  apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold postgresql >/dev/null
fi
conf=/etc/containers/containers.conf
want='[containers]
default_ulimits = ["nofile=1024:1024", "nproc=2000:2000"]
[engine]
runtime = "runc"'
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
  mkdir -p /etc/containers
  [ -f "$conf" ] && cp -a "$conf" "$conf.quantops-backup"
  printf '%s\n' "$want" > "$conf"
fi
echo "host ready: $(podman --version), runc $(runc --version | head -1 | awk '{print $3}')"
