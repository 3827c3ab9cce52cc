# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters quantops.platform.query_benchmark_checks and quantops.platform.query_benchmark_metrics.

Judge a postgresql_query_benchmark result against seed 002's Target / Acceptable / Critical table
(checks in the health_checklist format), and render the result as Prometheus text exposition for
node_exporter's textfile collector.  Documentation: query_benchmark_checks.yml and
query_benchmark_metrics.yml beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.module_utils.health import STATUS_CRITICAL, STATUS_OK, STATUS_UNKNOWN, STATUS_WARNING

SOURCE = 'seed 002 Performance Benchmarks: Query Performance Targets'
STATISTICS = ('p50', 'p95')
LEVELS = ('target', 'acceptable', 'critical')
# Band of a measured time: under Target, under Acceptable, up to Critical, beyond Critical.
BAND_TARGET = 'target'
BAND_ACCEPTABLE = 'acceptable'
BAND_ABOVE_ACCEPTABLE = 'above acceptable'
BAND_CRITICAL = 'critical'
STATUS_CODES = {STATUS_OK: 0, STATUS_WARNING: 1, STATUS_CRITICAL: 2, STATUS_UNKNOWN: 3}


def _ms(value):
    return ('%.1f' % value).rstrip('0').rstrip('.') if value < 100 else '%d' % round(value)


def _queries(result, what):
    if not isinstance(result, dict) or not isinstance(result.get('queries'), list):
        raise AnsibleFilterError('%s expects the registered result of quantops.platform.postgresql_query_benchmark '
                                 '(a dict with a "queries" list), got %s' % (what, type(result).__name__))
    for index, query in enumerate(result['queries']):
        if not isinstance(query, dict) or 'name' not in query:
            raise AnsibleFilterError('%s: query %d of the result has no "name"' % (what, index))
    return result['queries']


def validate_targets(targets):
    """Return {query: {target, acceptable, critical}} as floats; AnsibleFilterError for bad input."""
    if not isinstance(targets, dict):
        raise AnsibleFilterError('query_benchmark_checks: targets must be a dict of query type to '
                                 '{target, acceptable, critical} in milliseconds, got %s' % type(targets).__name__)
    clean = {}
    for name, levels in targets.items():
        if not isinstance(levels, dict) or set(levels) != set(LEVELS):
            raise AnsibleFilterError('query_benchmark_checks: targets.%s must have exactly the keys target, '
                                     'acceptable and critical (milliseconds), got %r' % (name, levels))
        try:
            values = dict((level, float(levels[level])) for level in LEVELS)
        except (TypeError, ValueError):
            raise AnsibleFilterError('query_benchmark_checks: targets.%s must be numbers of milliseconds, got %r'
                                     % (name, levels))
        if not 0 < values['target'] <= values['acceptable'] <= values['critical']:
            raise AnsibleFilterError('query_benchmark_checks: targets.%s must satisfy 0 < target <= acceptable <= '
                                     'critical, got %r' % (name, levels))
        clean[name] = values
    return clean


def band(value, levels):
    """(status, band) of a time in milliseconds: < target ok; < acceptable and <= critical warning; > critical."""
    if value < levels['target']:
        return STATUS_OK, BAND_TARGET
    if value < levels['acceptable']:
        return STATUS_WARNING, BAND_ACCEPTABLE
    if value <= levels['critical']:
        return STATUS_WARNING, BAND_ABOVE_ACCEPTABLE
    return STATUS_CRITICAL, BAND_CRITICAL


def query_benchmark_checks(result, targets, statistic='p95', prefix=''):
    """One check per query of the result, judged on ``statistic`` (p95 by default) against ``targets``.

    ``prefix`` goes before each check's name (a runbook's step number, e.g. '1. Performance audit - ').
    """
    if statistic not in STATISTICS:
        raise AnsibleFilterError('query_benchmark_checks: statistic must be one of %s, got %r'
                                 % (', '.join(STATISTICS), statistic))
    levels_of = validate_targets(targets)
    checks = []
    for query in _queries(result, 'query_benchmark_checks'):
        name = query['name']
        title = prefix + (query.get('title') or name)
        value = query.get('%s_ms' % statistic)
        levels = levels_of.get(name)
        check = {'check': 'query_benchmark', 'name': title, 'subject': name, 'value': value, 'unit': 'ms',
                 'statistic': statistic, 'p50_ms': query.get('p50_ms'), 'p95_ms': query.get('p95_ms'),
                 'rows': query.get('rows'), 'runs': len(query.get('times_ms') or []), 'operator': None,
                 'warning': levels['target'] if levels else None, 'critical': levels['critical'] if levels else None,
                 'acceptable': levels['acceptable'] if levels else None, 'source': SOURCE}
        if value is None or levels is None:
            check.update(status=STATUS_UNKNOWN, band=None, display='n/a',
                         message='no %s time measured' % statistic if value is None
                         else 'no target for %s in the targets' % name)
            checks.append(check)
            continue
        status, where = band(float(value), levels)
        measured = 'p95 %s ms, p50 %s ms, %s rows' % (_ms(query.get('p95_ms') or 0), _ms(query.get('p50_ms') or 0),
                                                      query.get('rows'))
        if where == BAND_TARGET:
            verdict = 'target met (< %s ms)' % _ms(levels['target'])
        elif where == BAND_ACCEPTABLE:
            verdict = 'acceptable, target < %s ms missed (acceptable < %s ms)' % (
                _ms(levels['target']), _ms(levels['acceptable']))
        elif where == BAND_ABOVE_ACCEPTABLE:
            verdict = 'above acceptable (< %s ms), not yet critical (> %s ms)' % (
                _ms(levels['acceptable']), _ms(levels['critical']))
        else:
            verdict = 'critical (> %s ms)' % _ms(levels['critical'])
        check.update(status=status, band=where, display='%s: %s' % (measured, verdict),
                     message='%s %s: %s %s ms, %s' % (title, SOURCE, statistic, _ms(float(value)), verdict))
        checks.append(check)
    return checks


def _label(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def query_benchmark_metrics(result, checks=None, timestamp=None):
    """Prometheus text exposition of a result (and of its checks: status and target times)."""
    queries = _queries(result, 'query_benchmark_metrics')
    by_name = dict((c.get('subject'), c) for c in (checks or []) if isinstance(c, dict))
    families = [
        ('quantops_query_benchmark_seconds',
         "Wall time of seed 002's query types (execute and fetch every row), quantiles of the measured runs."),
        ('quantops_query_benchmark_rows', 'Rows the query returned.'),
        ('quantops_query_benchmark_runs', 'Measured runs of the query (warm-up runs excluded).'),
        ('quantops_query_benchmark_target_seconds', "The seed's Target, Acceptable and Critical times."),
        ('quantops_query_benchmark_status', '0 target met, 1 missed but not critical, 2 critical, 3 unknown.'),
    ]
    samples = dict((family, []) for family, _help in families)
    for query in queries:
        label = 'query="%s"' % _label(query['name'])
        for quantile, key in (('0.5', 'p50_ms'), ('0.95', 'p95_ms')):
            if query.get(key) is not None:
                samples['quantops_query_benchmark_seconds'].append(
                    '{%s,quantile="%s"} %s' % (label, quantile, repr(round(float(query[key]) / 1000.0, 6))))
        samples['quantops_query_benchmark_rows'].append('{%s} %d' % (label, int(query.get('rows') or 0)))
        samples['quantops_query_benchmark_runs'].append('{%s} %d' % (label, len(query.get('times_ms') or [])))
        check = by_name.get(query['name'])
        if check is None:
            continue
        for level, key in (('target', 'warning'), ('acceptable', 'acceptable'), ('critical', 'critical')):
            if check.get(key) is not None:
                samples['quantops_query_benchmark_target_seconds'].append(
                    '{%s,level="%s"} %s' % (label, level, repr(round(float(check[key]) / 1000.0, 6))))
        samples['quantops_query_benchmark_status'].append(
            '{%s} %d' % (label, STATUS_CODES.get(check.get('status'), STATUS_CODES[STATUS_UNKNOWN])))
    lines = []
    for family, text in families:
        if not samples[family]:
            continue
        lines.append('# HELP %s %s' % (family, text))
        lines.append('# TYPE %s gauge' % family)
        lines.extend(family + sample for sample in samples[family])
    if timestamp is not None:
        lines.append('# HELP quantops_query_benchmark_last_run_timestamp_seconds When the benchmark last ran.')
        lines.append('# TYPE quantops_query_benchmark_last_run_timestamp_seconds gauge')
        lines.append('quantops_query_benchmark_last_run_timestamp_seconds %d' % int(float(timestamp)))
    return '\n'.join(lines) + '\n'


class FilterModule(object):
    """quantops.platform query benchmark filters."""

    def filters(self):
        return {
            'query_benchmark_checks': query_benchmark_checks,
            'query_benchmark_metrics': query_benchmark_metrics,
        }
