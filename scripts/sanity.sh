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
# ansible-test bootstraps pip in its venvs with a get-pip script it downloads
# from a host this machine cannot reach; give it an equivalent (ensurepip, then
# the requested pip from PyPI) in its cache.
# (ansible-core 2.19's ansible-test asks for pip 24.2.)
cache=~/.ansible/test/cache
mkdir -p "$cache"
[ -f "$cache/get_pip_24_2.py" ] || cp "$root/scripts/ansible-test-get-pip.py" "$cache/get_pip_24_2.py"
cd "$dest"
ansible-test sanity --venv --requirements --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" "$@"
