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
