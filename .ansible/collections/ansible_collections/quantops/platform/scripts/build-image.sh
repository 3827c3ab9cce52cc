#!/usr/bin/env bash
# Builds the Debian 13 (trixie) systemd image the lab and Molecule boot, once.
# The tag is a hash of this recipe: the image is rebuilt only when the recipe
# changes.  Prints the image reference on stdout (last line).
set -euo pipefail
suite=trixie
mirror=http://deb.debian.org/debian
include=systemd,systemd-sysv,python3,sudo,iproute2,procps,ca-certificates
recipe="debootstrap --variant=minbase --include=$include $suite $mirror; CMD /sbin/init"
tag=$(printf '%s' "$recipe" | sha256sum | cut -c1-12)
image="localhost/quantops-trixie:$tag"
if podman image exists "$image"; then
  echo "$image"
  exit 0
fi
work=$(mktemp -d /var/tmp/quantops-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "building $image (debootstrap $suite, ~1 min)" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# systemd in a container: no getty on the console, no need for a machine-id yet.
rm -f "$work/rootfs/etc/machine-id"; : > "$work/rootfs/etc/machine-id"
tar -C "$work/rootfs" -c . | podman import --change 'CMD ["/sbin/init"]' - "$image" >/dev/null
podman tag "$image" localhost/quantops-trixie:latest
echo "$image"
