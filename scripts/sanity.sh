#!/usr/bin/env bash
# ansible-test sanity needs the collection at ansible_collections/NS/NAME:
# copy the tracked files there and run it (no ignore files are used).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="${QUANTOPS_SANITY_DIR:-/var/tmp/quantops-sanity}/ansible_collections/quantops/platform"
rm -rf "$dest"
mkdir -p "$dest"
cd "$root"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$dest"
cd "$dest"
ansible-test sanity --venv --requirements --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" "$@"
