#!/usr/bin/env bash
# Builds the execution environment (ee/execution-environment.yml) with ansible-builder on
# the test bed's Debian 13 image (scripts/build-image.sh), offline as far as Ansible Galaxy
# goes: the collection's own tarball (ansible-galaxy collection build) and its declared
# dependencies (galaxy.yml), packed from the copies bundled in the pinned `ansible`
# package, go in as local files.  PyPI and Debian's mirror are used for the Python and
# system packages.
#
# The tag is a hash of every input (the definition, requirements.txt, bindep.txt,
# meta/execution-environment.yml, the base image, ansible-builder's version and the
# checksums of every file of the three collections): the image is rebuilt only when one
# of them changes.  Prints the image reference on stdout (last line); also tags
# localhost/quantops-ee:latest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${VENV_BIN:-$root/.venv/bin}
name=localhost/quantops-ee

base=$(bash scripts/build-image.sh | tail -1)
work=$root/.build/ee
rm -rf "$work"
mkdir -p "$work/collections"

"$bin/ansible-galaxy" collection build --force --output-path "$work/collections" "$root" >/dev/null
# Each declared dependency, packed from the `ansible` package's bundled copy (Galaxy is not
# reachable here), and collections/requirements.yml listing every tarball (type: file).
"$bin/python" scripts/ee_collections.py pack "$work/collections"

inputs() {
  cat ee/execution-environment.yml requirements.txt bindep.txt meta/execution-environment.yml
  podman image inspect --format '{{.Id}}' "$base"
  "$bin/ansible-builder" --version
  "$bin/python" scripts/ee_collections.py digest "$work/collections"
}
tag=$(inputs | sha256sum | cut -c1-12)
image="$name:$tag"
if podman image exists "$image"; then
  podman tag "$image" "$name:latest"
  echo "$image"
  exit 0
fi

cp ee/execution-environment.yml "$work/"
# Behind a TLS-inspecting proxy the host's pip trusts a CA bundle of its own (PIP_CERT):
# the build's pip gets the same bundle, bind-mounted for the build only (not in the image).
extra=()
ca=${QUANTOPS_EE_CA_BUNDLE:-${PIP_CERT:-}}
if [ -n "$ca" ] && [ -f "$ca" ]; then
  extra=("--extra-build-cli-args=--volume=$(readlink -f "$ca"):/etc/ssl/certs/ca-certificates.crt:ro")
fi
echo "building $image on $base (ansible-builder, first build ~5 min)" >&2
start=$(date +%s)
"$bin/ansible-builder" build --file "$work/execution-environment.yml" --context "$work/context" \
  --container-runtime podman --tag "$image" --build-arg "EE_BASE_IMAGE=$base" --verbosity 3 \
  "${extra[@]}" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
podman tag "$image" "$name:latest"
echo "built $image in $(($(date +%s) - start)) s" >&2
echo "$image"
