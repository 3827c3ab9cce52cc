"""Print every PromQL expression of the Grafana dashboards (and Prometheus rules) as JSON lines.

Usage::

    python scripts/promql_exprs.py [DASHBOARD ...] [--rules DIR ...] [--only-rules]
                                   [--prometheus URL [--ca-file PEM] [--user NAME]]

* ``DASHBOARD``: dashboard JSON files or directories of them (default:
  ``roles/grafana/files/dashboards``). Every target whose data source (its own,
  else its panel's) has the uid ``prometheus`` is printed as
  ``{"file": ..., "panel": ..., "expr": ...}``. Rows' nested panels count.
  Grafana's built-in variables are replaced by fixed values a plain Prometheus
  query accepts (``$__rate_interval`` and ``$__range`` -> ``5m``/``1h``,
  ``$__interval`` -> ``1m``), and dashboard variables by their current value.
* ``--rules DIR`` (repeatable): every ``*.yml``/``*.yaml`` Prometheus rule
  file under DIR; each rule is printed as
  ``{"file": ..., "group": ..., "rule": ..., "expr": ...}`` (``rule`` is the
  alert or record name).
* ``--prometheus URL``: also run each expression as an instant query against
  that Prometheus (``/api/v1/query``) and add ``"status"`` (``success`` or
  ``error``), ``"series"`` and ``"error"`` to each line; exits 1 when any
  query fails. Without it nothing is contacted.
* ``--ca-file PEM``: verify an https Prometheus against this CA certificate
  (e.g. the pki role's ``ca.crt``); without it the system's CAs are used.
* ``--user NAME``: send basic auth as NAME; the password is read from the
  environment variable ``PROMETHEUS_PASSWORD`` (never from the command line).

Exits 2 when a file cannot be read or parsed. Standard library plus PyYAML
(an ansible-core dependency) for the rule files.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DASHBOARDS = ROOT / "roles" / "grafana" / "files" / "dashboards"
PROMETHEUS_UID = "prometheus"
BUILTIN_VARS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
_VAR_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


# Aggregation operators, keywords and constants: words of PromQL that are not metric names.
PROMQL_WORDS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
                "group", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                "bool", "offset", "inf", "nan"}


def metric_names(expr):
    """Metric names in a PromQL expression.

    Strings, label matchers, range selectors and grouping clauses are removed
    first; function names (a word followed by ``(``), PromQL keywords and the
    parts of numbers and durations (``1e9``, ``24h``) are not metric names.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        if text[match.end():].lstrip().startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        if match.start() and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # 1e9, 24h, 0.5e9
        names.add(word)
    return names


class InputError(Exception):
    """A file that cannot be read or parsed."""


def _uid(datasource):
    if isinstance(datasource, dict):
        return datasource.get("uid")
    return datasource


def _panels(panels):
    for panel in panels or []:
        if isinstance(panel, dict):
            yield panel
            yield from _panels(panel.get("panels"))


def _variables(dashboard):
    values = dict(BUILTIN_VARS)
    for var in (dashboard.get("templating") or {}).get("list") or []:
        current = (var or {}).get("current") or {}
        value = current.get("value")
        if isinstance(value, list):
            value = "|".join(str(v) for v in value)
        if var.get("name") and value is not None:
            values[var["name"]] = str(value)
    return values


def substitute(expr, values):
    """Replace Grafana variables ($x, ${x}, ${x:fmt}, [[x]]) that have a value."""

    def repl(match):
        name = match.group(1) or match.group(2) or match.group(3)
        return values.get(name, match.group(0))

    return _VAR_RE.sub(repl, expr)


def dashboard_exprs(path, display=None):
    """(panel title, expr) of every Prometheus target of one dashboard file."""
    try:
        dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{display or path}: {exc}") from exc
    if not isinstance(dashboard, dict):
        raise InputError(f"{display or path}: not a dashboard (top level is not an object)")
    values = _variables(dashboard)
    for panel in _panels(dashboard.get("panels")):
        if panel.get("type") == "row":
            continue
        for target in panel.get("targets") or []:
            uid = _uid(target.get("datasource", panel.get("datasource")))
            expr = target.get("expr")
            if uid == PROMETHEUS_UID and isinstance(expr, str) and expr.strip():
                yield panel.get("title", ""), substitute(expr, values)


def rule_exprs(path, display=None):
    """(group, rule name, expr) of every rule of one Prometheus rule file."""
    import yaml  # pylint: disable=import-outside-toplevel

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{display or path}: {exc}") from exc
    if data is None:
        return
    if not isinstance(data, dict) or not isinstance(data.get("groups", []), list):
        raise InputError(f"{display or path}: not a Prometheus rule file (no 'groups' list)")
    for group in data.get("groups") or []:
        for rule in (group or {}).get("rules") or []:
            if isinstance(rule, dict) and "expr" in rule:
                name = rule.get("alert") or rule.get("record") or ""
                yield group.get("name", ""), name, str(rule["expr"])


def _files(paths, patterns):
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = sorted({f for pattern in patterns for f in path.rglob(pattern) if f.is_file()})
            yield from found
        elif path.exists():
            yield path
        else:
            raise InputError(f"{path}: no such file or directory")


def _display(path):
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def query(prometheus, expr, timeout=10.0, ca_file=None, auth=None):
    """Run one instant query; returns (status, series count, error).

    ``ca_file`` verifies an https Prometheus against that CA, ``auth`` is a
    (user, password) pair sent as basic auth.
    """
    url = prometheus.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(("%s:%s" % auth).encode("utf-8")).decode("ascii")
        request.add_header("Authorization", "Basic " + token)
    context = ssl.create_default_context(cafile=ca_file) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # nosec - the URL is given by the caller
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            body = json.load(exc)
        except ValueError:
            return "error", 0, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return "error", 0, str(exc)
    if body.get("status") != "success":
        return "error", 0, f"{body.get('errorType', '')}: {body.get('error', '')}".strip(": ")
    result = (body.get("data") or {}).get("result")
    return "success", len(result) if isinstance(result, list) else 1, ""


def collect(dashboards, rules, only_rules=False):
    """Every record to print, dashboards first."""
    records = []
    if not only_rules:
        for path in _files(dashboards or [DEFAULT_DASHBOARDS], ["*.json"]):
            shown = _display(path)
            for title, expr in dashboard_exprs(path, shown):
                records.append({"file": shown, "panel": title, "expr": expr})
    for path in _files(rules or [], ["*.yml", "*.yaml"]):
        shown = _display(path)
        for group, name, expr in rule_exprs(path, shown):
            records.append({"file": shown, "group": group, "rule": name, "expr": expr})
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("dashboards", nargs="*", help="dashboard JSON files or directories (default: the grafana role's)")
    parser.add_argument("--rules", action="append", default=[], metavar="DIR", help="directory (or file) of Prometheus rule files")
    parser.add_argument("--only-rules", action="store_true", help="print the rules' expressions only")
    parser.add_argument("--prometheus", metavar="URL", help="run every expression against this Prometheus")
    parser.add_argument("--ca-file", metavar="PEM", help="CA certificate that verifies an https Prometheus")
    parser.add_argument("--user", metavar="NAME", help="basic-auth user; the password comes from $PROMETHEUS_PASSWORD")
    args = parser.parse_args(argv)
    auth = None
    if args.user:
        password = os.environ.get("PROMETHEUS_PASSWORD")
        if not password:
            print("promql_exprs: --user needs the password in the environment variable PROMETHEUS_PASSWORD", file=sys.stderr)
            return 2
        auth = (args.user, password)
    try:
        records = collect(args.dashboards, args.rules, args.only_rules)
    except InputError as exc:
        print(f"promql_exprs: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for record in records:
        if args.prometheus:
            status, series, error = query(args.prometheus, record["expr"], ca_file=args.ca_file, auth=auth)
            record.update({"status": status, "series": series, "error": error})
            failed += status != "success"
        print(json.dumps(record, ensure_ascii=False))
    if failed:
        print(f"promql_exprs: {failed} of {len(records)} expressions failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
