#!/usr/bin/env bash
# Prometheus rules: "promtool check rules" on every rule file of the
# prometheus role (files/rules/*.yml and slo.rules.yml rendered from
# templates/slo.rules.yml.j2 with files/slo_defaults.yml), then
# "promtool test rules" on every tests/promtool/*.test.yml.
#
# promtool comes from Debian's prometheus package, fetched with
# "apt-get download" (the host's own apt sources: bookworm 2.42.0, trixie
# 2.53.3) and unpacked - only usr/bin/promtool - with dpkg-deb into
# .cache/promtool/<version>/ (git-ignored); later runs use that copy and
# need no network.  Overrides: PROMTOOL=/path/to/promtool, or
# PROMTOOL_DEB_VERSION=<version> for another version apt can download.
#
# The SLO rules are rendered twice - with ansible.builtin.template (what the
# role does) and with tests/promtool/render_slo.py (plain Jinja2, used by
# the pytest inventory) - and the two must be identical.
#
# promtool < 2.55 has no --junit: tests/output/junit/promtool.xml is written
# here, one test case per rule file checked and per test group.
#
# Last line: "promtool: N passed, M failed" - N test groups passed; M counts
# failed test groups, rule files failing the check and a render mismatch.
# Exit status 1 on any failure, 2 when promtool cannot be found.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/promtool"
rendered="$cache/rendered"
junit="$root/tests/output/junit/promtool.xml"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py=python3
cd "$root"
mkdir -p "$cache" "$rendered"

log() { printf '%s\n' "$*" >&2; }

# --- promtool -------------------------------------------------------------------
cached_promtool() {
  # the newest version already unpacked, if any
  local best
  best=$(find "$cache" -mindepth 4 -maxdepth 4 -path '*/usr/bin/promtool' -type f 2>/dev/null \
         | sed "s|^$cache/||; s|/usr/bin/promtool$||" | sort -V | tail -n 1)
  [ -n "$best" ] && printf '%s\n' "$cache/$best/usr/bin/promtool"
}

fetch_promtool() {
  # $1: the Debian version of package prometheus to download
  local version=$1 tmp ok=0
  tmp=$(mktemp -d "$cache/download.XXXXXX")
  log "promtool: apt-get download prometheus=$version"
  if (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "prometheus=$version" >&2) \
     && mkdir -p "$tmp/root" \
     && dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp/root" ./usr/bin/promtool; then
    rm -rf "${cache:?}/$version"
    mv "$tmp/root" "$cache/$version"
    ok=1
  fi
  rm -rf "$tmp"
  [ "$ok" = 1 ]
}

find_promtool() {
  if [ -n "${PROMTOOL:-}" ]; then
    printf '%s\n' "$PROMTOOL"
    return
  fi
  local version="${PROMTOOL_DEB_VERSION:-}"
  if [ -z "$version" ] && command -v apt-cache >/dev/null; then
    version=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
    [ "$version" = "(none)" ] && version=""
  fi
  if [ -n "$version" ] && [ -x "$cache/$version/usr/bin/promtool" ]; then
    printf '%s\n' "$cache/$version/usr/bin/promtool"
    return
  fi
  if [ -n "$version" ] && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
     && fetch_promtool "$version"; then
    printf '%s\n' "$cache/$version/usr/bin/promtool"
    return
  fi
  [ -n "$version" ] && log "promtool: could not download prometheus=$version, looking for another copy"
  cached_promtool && return
  command -v promtool && return
  return 1
}

if ! promtool=$(find_promtool) || ! "$promtool" --version >/dev/null 2>&1; then
  log "promtool: not found. On Debian: apt-get update, then re-run (it uses apt-get download prometheus);"
  log "elsewhere set PROMTOOL=/path/to/promtool."
  echo "promtool: 0 passed, 1 failed"
  exit 2
fi
log "promtool: $("$promtool" --version 2>&1 | head -n 1) ($promtool)"

# --- render the SLO rules -------------------------------------------------------
render_failed=0
"$py" tests/promtool/render_slo.py --out "$rendered/slo.rules.jinja2.yml"
if command -v ansible >/dev/null; then
  "$py" - "$rendered/slo_vars.json" <<'PY'
import json, sys, yaml
with open("roles/prometheus/files/slo_defaults.yml", encoding="utf-8") as handle:
    slos = yaml.safe_load(handle)
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    json.dump({"prometheus_slos": slos}, handle)
PY
  rm -f "$rendered/slo.rules.yml"
  if ! ANSIBLE_CONFIG="$root/ansible.cfg" ANSIBLE_FORCE_COLOR=0 ansible localhost -i localhost, -c local \
      -m ansible.builtin.template \
      -a "src=$root/roles/prometheus/templates/slo.rules.yml.j2 dest=$rendered/slo.rules.yml mode=0644" \
      -e "@$rendered/slo_vars.json" -e "ansible_python_interpreter=$py" >"$rendered/ansible.log" 2>&1; then
    log "render: ansible.builtin.template failed:"
    cat "$rendered/ansible.log" >&2
    render_failed=1
  elif ! cmp -s "$rendered/slo.rules.yml" "$rendered/slo.rules.jinja2.yml"; then
    log "render: ansible.builtin.template and tests/promtool/render_slo.py disagree:"
    diff -u "$rendered/slo.rules.yml" "$rendered/slo.rules.jinja2.yml" >&2 || true
    render_failed=1
  fi
else
  log "render: ansible not on PATH - slo.rules.yml rendered by tests/promtool/render_slo.py only"
fi
[ -f "$rendered/slo.rules.yml" ] || cp "$rendered/slo.rules.jinja2.yml" "$rendered/slo.rules.yml"

# --- check, test, count, report -------------------------------------------------
rule_files=(roles/prometheus/files/rules/*.yml "${rendered#"$root"/}/slo.rules.yml")
test_files=(tests/promtool/*.test.yml)
mkdir -p "$(dirname "$junit")"
status=0
"$py" - "$promtool" "$junit" "$render_failed" "${#rule_files[@]}" "${rule_files[@]}" "${test_files[@]}" <<'PY' || status=$?
"""Run promtool per rule file and per test file; count test groups."""
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import yaml

promtool, junit, render_failed, n_rules = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rule_files = sys.argv[5:5 + n_rules]
test_files = sys.argv[5 + n_rules:]
suites = []
passed = failed = 0


def run(args):
    start = time.monotonic()
    proc = subprocess.run([promtool] + args, capture_output=True, text=True, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).strip(), time.monotonic() - start


suite = ET.Element("testsuite", name="promtool check rules")
for path in rule_files:
    rc, out, secs = run(["check", "rules", path])
    case = ET.SubElement(suite, "testcase", classname="check_rules", name=path, time="%.3f" % secs)
    if rc:
        failed += 1
        ET.SubElement(case, "failure", message="promtool check rules failed").text = out
        print("FAIL  check rules %s\n%s" % (path, out))
    else:
        print("ok    check rules %s (%s)" % (path, out.splitlines()[-1].strip()))
suites.append(suite)

if render_failed:
    failed += 1
    suite = ET.Element("testsuite", name="slo render")
    case = ET.SubElement(suite, "testcase", classname="render", name="slo.rules.yml.j2")
    ET.SubElement(case, "failure", message="ansible and render_slo.py renderings differ")
    suites.append(suite)

for path in test_files:
    try:
        with open(path, encoding="utf-8") as handle:
            groups = [g.get("name") or "group %d" % i for i, g in enumerate(yaml.safe_load(handle)["tests"], 1)]
    except Exception as exc:  # an unreadable test file is one failure
        groups = ["(file)"]
        print("FAIL  %s: %s" % (path, exc))
    rc, out, secs = run(["test", "rules", path])
    bad = set(re.findall(r"^\s*name: (.*),\s*$", out, re.M)) if rc else set()
    if rc and not bad & set(groups):
        bad = set(groups)  # the file itself failed (parse error, missing rule file)
    suite = ET.SubElement(ET.Element("x"), "testsuite", name=path)
    for name in groups:
        case = ET.SubElement(suite, "testcase", classname=path, name=name, time="%.3f" % (secs / len(groups)))
        if name in bad:
            failed += 1
            ET.SubElement(case, "failure", message="promtool test rules failed").text = out
        else:
            passed += 1
    suites.append(suite)
    print("%s  test rules %s: %d of %d groups passed" % ("FAIL" if rc else "ok  ", path, len(groups) - len(bad & set(groups)), len(groups)))
    if rc:
        print(out)

root = ET.Element("testsuites", name="promtool")
for suite in suites:
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("failures", str(len(suite.findall("testcase/failure"))))
    root.append(suite)
root.set("tests", str(len(root.findall("testsuite/testcase"))))
root.set("failures", str(len(root.findall("testsuite/testcase/failure"))))
ET.ElementTree(root).write(junit, encoding="utf-8", xml_declaration=True)
print("promtool: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
exit "$status"
