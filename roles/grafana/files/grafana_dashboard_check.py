# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks the grafana role runs on dashboard files before it installs them.

Run on the controller by the role's preflight (through the ``pipe`` lookup:
a role inside a collection cannot carry its own filter plugins)::

    grafana_dashboard_check.py --uid=prometheus --uid=quant-platform-pg -- FILE...

prints a JSON list of problems, one string each, empty when every file is
fine, and exits 0 (2 on a usage error):

* the file is not readable UTF-8 JSON, or not a JSON object;
* no ``uid`` (or one Grafana refuses: more than 40 characters, characters
  other than letters, digits, ``-`` and ``_``), no ``title``, or no
  ``panels`` list;
* the same ``uid`` or the same file name in two files (both would be
  installed into one directory, the second silently replacing the first);
* an export made for sharing (``__inputs``) or a data source given as
  ``${DS_...}``/``$var`` or by name instead of by uid - file provisioning
  has no import step to resolve them ("datasource not found");
* a data source uid the role does not provision (Grafana's own built-in
  uids are allowed);
* two panels with the same id.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import sys

_UID_RE = re.compile(r'^[A-Za-z0-9_-]{1,40}$')
# Grafana's built-in pseudo data sources.
_BUILTIN_UIDS = frozenset(['-- Grafana --', 'grafana', '-- Mixed --', '-- Dashboard --', '__expr__'])


def _panels(panels):
    """Every panel, including those nested in collapsed rows."""
    for panel in panels or []:
        if isinstance(panel, dict):
            yield panel
            yield from _panels(panel.get('panels'))


def _datasource_refs(dashboard):
    """(where, datasource value) for every data source reference."""
    for panel in _panels(dashboard.get('panels')):
        where = 'panel %s %r' % (panel.get('id'), panel.get('title'))
        if panel.get('type') != 'row' and 'datasource' in panel:
            yield where, panel['datasource']
        for target in panel.get('targets') or []:
            if isinstance(target, dict) and 'datasource' in target:
                yield where + ' target %s' % target.get('refId'), target['datasource']
    for var in (dashboard.get('templating') or {}).get('list') or []:
        if isinstance(var, dict) and var.get('datasource') is not None:
            yield 'variable %r' % var.get('name'), var['datasource']
    for ann in (dashboard.get('annotations') or {}).get('list') or []:
        if isinstance(ann, dict) and ann.get('datasource') is not None:
            yield 'annotation %r' % ann.get('name'), ann['datasource']


def _check_datasource(where, ref, known):
    if ref is None:
        return None
    if isinstance(ref, dict):
        uid = ref.get('uid')
    else:
        return '%s: data source %r is given by name; reference it by uid (%s)' % (
            where, ref, ', '.join(sorted(known)) or 'none provisioned')
    if not isinstance(uid, str) or not uid:
        return '%s: data source without a uid' % where
    if uid.startswith('$'):
        return ('%s: data source uid %r is a template input; a provisioned dashboard must name a '
                'provisioned data source uid (%s)' % (where, uid, ', '.join(sorted(known)) or 'none provisioned'))
    if uid not in known and uid not in _BUILTIN_UIDS:
        return '%s: data source uid %r is not provisioned (provisioned: %s)' % (
            where, uid, ', '.join(sorted(known)) or 'none')
    return None


def dashboard_problems_in(name, text, known):
    """Problems of one dashboard given as text; returns (problems, uid)."""
    try:
        dashboard = json.loads(text)
    except ValueError as exc:
        return ['%s: not valid JSON (%s)' % (name, exc)], None
    if not isinstance(dashboard, dict):
        return ['%s: the top level is not a JSON object' % name], None
    problems = []
    uid = dashboard.get('uid')
    if not isinstance(uid, str) or not _UID_RE.match(uid):
        problems.append('%s: uid %r is missing or not 1-40 letters, digits, "-" or "_"' % (name, uid))
        uid = None
    if not isinstance(dashboard.get('title'), str) or not dashboard['title'].strip():
        problems.append('%s: no title' % name)
    if not isinstance(dashboard.get('panels'), list):
        problems.append('%s: no "panels" list' % name)
    if '__inputs' in dashboard:
        problems.append('%s: exported "for sharing externally" (__inputs): file provisioning cannot '
                        'resolve its inputs; export it without that option' % name)
    for where, ref in _datasource_refs(dashboard):
        problem = _check_datasource(where, ref, known)
        if problem:
            problems.append('%s: %s' % (name, problem))
    seen = {}
    for panel in _panels(dashboard.get('panels')):
        pid = panel.get('id')
        if pid in seen:
            problems.append('%s: panel id %r is used by %r and %r' % (name, pid, seen[pid], panel.get('title')))
        else:
            seen[pid] = panel.get('title')
    return problems, uid


def grafana_dashboard_problems(paths, datasource_uids):
    """Problems of the dashboard files at ``paths`` (controller paths)."""
    if not isinstance(paths, (list, tuple)):
        raise TypeError('grafana_dashboard_problems: expected a list of paths, got %r' % (paths,))
    known = set(datasource_uids or [])
    problems = []
    uids = {}
    names = {}
    for path in paths:
        path = str(path)
        base = os.path.basename(path)
        if base in names:
            problems.append('%s: same file name as %s; both would be installed as %s' % (path, names[base], base))
        else:
            names[base] = path
        try:
            with open(path, 'rb') as handle:
                text = handle.read().decode('utf-8')
        except (IOError, OSError, UnicodeDecodeError) as exc:
            problems.append('%s: cannot be read as UTF-8 (%s)' % (path, exc))
            continue
        found, uid = dashboard_problems_in(path, text, known)
        problems.extend(found)
        if uid is not None:
            if uid in uids:
                problems.append('%s: uid %r is also the uid of %s' % (path, uid, uids[uid]))
            else:
                uids[uid] = path
    return problems


def main(argv=None):
    """Command line: --uid=UID (repeatable), then the dashboard files."""
    args = list(sys.argv[1:] if argv is None else argv)
    uids = []
    paths = []
    while args:
        arg = args.pop(0)
        if arg.startswith('--uid='):
            uids.append(arg[len('--uid='):])
        elif arg == '--uid':
            if not args:
                sys.stderr.write('usage: grafana_dashboard_check.py [--uid=UID]... [--] FILE...\n')
                return 2
            uids.append(args.pop(0))
        elif arg == '--':
            paths.extend(args)
            break
        else:
            paths.append(arg)
    sys.stdout.write(json.dumps(grafana_dashboard_problems(paths, uids)) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
