#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: ohlcv_data_quality
short_description: Check an OHLCV table for duplicates, missing trading days, outliers, NULL prices and broken OHLC bars
version_added: 0.1.0
description:
  - Checks a table of daily bars, by default the platform's C(public.ohlcv_data) (C(ticker), C(region), C(date),
    C(open), C(high), C(low), C(close), C(volume), C(created_at)), for five kinds of bad data.
  - "C(duplicates): more than one bar for the same series key and time. Critical: every later read double-counts."
  - "C(missing_days): trading days without a row, judged per series between its first and last row in the
    range against the real exchange calendar of its region (the C(exchange_calendars) library, region to
    exchange through O(calendars), e.g. C(KR) -> C(XKRX), C(US) -> C(XNYS)). Without a usable calendar the
    gap method is used: consecutive rows more than O(gap_days) calendar days apart. The result says,
    per series, which method judged which dates and why (C(missing_days_methods))."
  - "C(outliers): daily close-to-close returns whose z-score against the series' mean and standard deviation
    exceeds O(zscore_threshold). The statistics are computed in double precision (the reported return in the
    close column's own type)."
  - "C(null_prices): rows with a NULL open, high, low or close."
  - "C(ohlc_invariants): rows breaking low <= open <= high, low <= close <= high or volume >= 0. NULLs are left
    to C(null_prices)."
  - O(since) and O(until) bound every check to C(since <= time < until) with constants in the WHERE clause,
    so TimescaleDB excludes the chunks outside the range at plan time and a daily run reads only the newest
    chunks. The outlier statistics also read O(zscore_lookback_days) before O(since).
  - "With O(fix=true) the duplicates are removed keeping, in each group, the row with the earliest
    O(created_at_column) (ties broken by physical order), in one transaction, and every removed row is returned
    in RV(removed_rows). Nothing else is ever changed: missing days, outliers, NULLs and broken bars need a
    person (backfill from the source, check for splits)."
options:
  schema:
    description: Schema of O(table).
    type: str
    default: public
  table:
    description:
      - The OHLCV table (a plain table or a TimescaleDB hypertable). Quoted as an identifier, never interpolated.
    type: str
    default: ohlcv_data
  key_columns:
    description:
      - Columns identifying one series (one instrument on one market). Duplicates are rows with the same key
        and time.
    type: list
    elements: str
    default: [ ticker, region ]
  region_column:
    description:
      - Key column whose value selects the exchange calendar (see O(calendars)) and O(gap_days_by_region).
      - Must be one of O(key_columns). Empty means every series uses O(default_calendar).
    type: str
    default: region
  time_column:
    description:
      - Time of a bar. Calendar checks need type C(date) (daily bars); with C(timestamp)/C(timestamptz) the
        gap method is used and its day counts use the UTC date.
    type: str
    default: date
  price_columns:
    description: Columns holding the open, high, low and close prices (keys C(open), C(high), C(low), C(close)).
    type: dict
    default: { open: open, high: high, low: low, close: close }
  volume_column:
    description: Column holding the volume, checked to be >= 0. Empty skips the volume rule.
    type: str
    default: volume
  created_at_column:
    description:
      - Insertion time of a row; the earliest is kept when O(fix=true) removes duplicates.
      - Required with O(fix=true).
    type: str
    default: created_at
  since:
    description:
      - First day checked (ISO date C(YYYY-MM-DD), inclusive). Empty means from the first row.
      - A daily run sets it to a few days back so that only the newest chunks are read.
    type: str
  until:
    description:
      - Day after the last day checked (ISO date, exclusive). Empty means up to the last row.
      - The alias O(before) keeps playbooks clear of the task keyword C(until), which linters read as a
        condition.
    type: str
    aliases: [before]
  regions:
    description: Check only series whose O(region_column) is one of these. Empty means every region.
    type: list
    elements: str
    default: []
  checks:
    description: Which checks to run.
    type: list
    elements: str
    choices: [ duplicates, missing_days, outliers, null_prices, ohlc_invariants ]
    default: [ duplicates, missing_days, outliers, null_prices, ohlc_invariants ]
  calendars:
    description:
      - Map of region value to C(exchange_calendars) code (ISO 10383 MIC such as C(XKRX), C(XNYS), or
        C(24/7)). A region mapped to C(null) or an empty string uses the gap method.
      - "Replaces the default map C({KR: XKRX, US: XNYS, JP: XTKS, HK: XHKG, CN: XSHG}) when given."
    type: dict
  default_calendar:
    description: Calendar code for regions not in O(calendars). Empty means the gap method for them.
    type: str
  gap_days:
    description:
      - Gap method threshold in calendar days; consecutive rows further apart are a gap.
      - Used for regions without a calendar, when C(exchange_calendars) is not importable, for
        non-C(date) time columns and for the dates before or after what a calendar records.
    type: int
    default: 3
  gap_days_by_region:
    description:
      - "Per-region override of O(gap_days), for example C({CRYPTO: 31}) for a series of monthly bars."
    type: dict
    default: {}
  zscore_threshold:
    description: Absolute z-score above which a daily return is an outlier, in standard deviations.
    type: float
    default: 3.0
  zscore_lookback_days:
    description:
      - Calendar days before O(since) whose returns also enter the mean and standard deviation, so that a
        short daily range is judged against a year of history. Ignored without O(since).
    type: int
    default: 365
  min_returns:
    description: A series needs at least this many returns before its outliers are judged.
    type: int
    default: 20
  max_findings:
    description: At most this many findings are returned per check (counts are always complete).
    type: int
    default: 100
  fix:
    description:
      - Remove duplicate rows keeping the earliest O(created_at_column) of each group. In check mode the rows
        that would be removed are listed and nothing is deleted.
      - Runbooks set this only when the operator confirmed (C(data_quality_fix_confirm=true)).
    type: bool
    default: false
attributes:
  check_mode:
    details:
      - Every check runs (they only read). With O(fix=true) the rows that would be removed are returned in
        RV(removed_rows) and the DELETE statement in RV(queries); nothing is deleted.
extends_documentation_fragment:
  - quantops.platform.postgres
  - quantops.platform.attributes
requirements:
  - C(exchange_calendars) >= 4.5 (tested with 4.13.2; pulls pandas and numpy) in the Python that runs the module,
    for the calendar method of C(missing_days). Without it the module still runs and judges missing days with
    the gap method, saying so in RV(missing_days_methods).
notes:
  - "Source: seed 002 (PostgreSQL Operations Guide) \"Data Quality Management\" (Find Duplicates, Remove Duplicates,
    Z-Score Outlier Detection at 3.0, gaps > 3 days, NULL values, business logic) and Troubleshooting \"Issue 4
    Data Quality Issues\"; its C(DuplicateRecordsDetected) alert is critical, C(MissingDatesHigh) counts gaps > 3 days."
  - Without O(statement_timeout) each query may run 10 minutes (C(10min)).
  - "Where it runs: C(exchange_calendars) is not a Debian package. The collection's runbooks
    (C(playbooks/incidents/data_quality.yml)) run this module on the Ansible controller (C(delegate_to:
    localhost)) in the controller's Python, which needs C(exchange_calendars) (the collection's requirements.txt or
    its execution environment; the runbook stops with an error naming the package when it is missing), and connect to
    the database over TCP. That keeps pandas/numpy and a PyPI download off the database servers (which often
    have no route to PyPI) at the price of a TCP login (O(login_host), O(login_password), a C(pg_hba.conf)
    line for the controller). Running it on the database host with an interpreter that has the library works
    the same."
  - "Calendar bounds: C(exchange_calendars) builds a calendar for 20 years back by default; the module asks
    for the range it needs, but each calendar records holidays only from a first year (C(bound_min), e.g.
    XKRX 1956, XTKS 1997, XSHG 1990-12-03) and up to a last one (C(bound_max), about a year ahead or a fixed
    year). Dates outside are judged with the gap method and the reason is given."
  - "Privileges: C(SELECT) on the table; C(DELETE) too with O(fix=true). The session is read-only unless rows
    are removed."
  - "How it reads the table: two statements. A per-series summary (first and last time, row count; a grouped
    aggregate that PostgreSQL runs with parallel workers) decides which exchange calendar judges which dates;
    then one scan computes all five checks in a single pass: one order by key, time (newest first) and
    O(created_at_column), which the seed's index on ticker, region, date DESC provides (the planner merges
    the chunks' index scans instead of sorting the range), window functions on it for the copies of each bar,
    the previous bar and each series' return statistics, and two integer-array lookups per bar for the
    sessions a calendar has between two bars. Window functions run in one process. Give O(since) on big
    tables so that only the newest chunks (and the outlier lookback) are read (see the benchmark in
    C(bench/data_quality_scan.py) and C(docs/benchmarks.md))."
seealso:
  - name: exchange_calendars
    description: Trading calendars of 50+ exchanges, used for the missing-day check.
    link: https://github.com/gerrymanoim/exchange_calendars
  - name: TimescaleDB chunk exclusion
    description: Constraints on the time column let the planner skip chunks.
    link: https://docs.timescale.com/use-timescale/latest/hypertables/about-hypertables/
author:
  - quantops.platform maintainers (@quantops)
'''

EXAMPLES = r'''
- name: Daily data-quality check of the last week of KR data (seed 002, 06:00 job)
  quantops.platform.ohlcv_data_quality:
    login_host: db1.example.net
    login_user: quant_app
    login_password: "{{ vault_quant_app_password }}"
    since: "{{ '%Y-%m-%d' | strftime(now().timestamp() - 7 * 86400) }}"
    regions: [KR]
  delegate_to: localhost
  register: dq

- name: Remove duplicates, keeping the earliest inserted row (only when confirmed)
  quantops.platform.ohlcv_data_quality:
    login_host: db1.example.net
    login_user: quant_app
    login_password: "{{ vault_quant_app_password }}"
    checks: [duplicates]
    fix: true
  delegate_to: localhost
  when: data_quality_fix_confirm | bool

- name: Another table layout, monthly crypto bars judged by a 31-day gap
  quantops.platform.ohlcv_data_quality:
    login_unix_socket: /var/run/postgresql
    table: bars
    key_columns: [symbol, venue]
    region_column: venue
    time_column: day
    price_columns: {open: o, high: h, low: l, close: c}
    volume_column: v
    created_at_column: inserted_at
    calendars: {XNAS: XNAS, CRYPTO: null}
    gap_days_by_region: {CRYPTO: 31}
  become: true
  become_user: postgres
'''

RETURN = r'''
status:
  description: Worst status of the checks (C(critical) > C(warning) > C(ok)), after the fix when O(fix=true) removed the duplicates.
  returned: always
  type: str
  sample: warning
severity:
  description:
    - Seed 002 incident severity for this run. C(P1) when findings touch more than 10 % of the scanned rows or
      duplicates remain; C(P2) for other findings; C(P3) when nothing is found or only duplicates that were removed.
  returned: always
  type: str
  sample: P2
checks:
  description:
    - One entry per check run, in the seed's order, with the counts as found before any fix.
    - After a fix (not in check mode) the C(duplicates) entry is C(ok) and its message says how many rows were
      removed; the other checks are not re-run, so a broken bar that was itself a removed duplicate is still counted.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Check name., type: str, sample: duplicates}
    status: {description: "C(ok), C(warning) or C(critical).", type: str}
    count: {description: "Findings (duplicate groups, missing days plus gaps, outliers, rows).", type: int}
    message: {description: Human-readable summary., type: str}
  sample: [{name: duplicates, status: critical, count: 3, message: "3 duplicate groups, 4 extra rows"}]
checklist:
  description: One line per check, prefixed with a check mark, a warning sign or a cross.
  returned: always
  type: list
  elements: str
  sample: ["\u2717 Duplicates: 3 duplicate groups (4 extra rows)", "\u2713 NULL prices: none"]
scanned_rows:
  description: Rows of the table inside the range (and regions).
  returned: always
  type: int
affected_rows:
  description: Rows touched by at least one finding (duplicate extras, NULL rows, broken bars, outliers; missing days count as rows).
  returned: always
  type: int
range:
  description: The range checked, C(since) inclusive and C(until) exclusive (null = open).
  returned: always
  type: dict
  sample: {since: "2018-01-01", until: null}
duplicates:
  description: Duplicate groups (at most O(max_findings)), each with the key columns, C(time), C(copies) and the earliest/latest created_at.
  returned: when the duplicates check ran
  type: list
  elements: dict
missing_days:
  description: >-
    Missing trading days (at most O(max_findings)); calendar findings have C(method=calendar), C(calendar) and
    C(time); gap findings have C(method=gap), C(prev_time), C(time) and C(gap_days).
  returned: when the missing_days check ran
  type: list
  elements: dict
missing_days_methods:
  description: >-
    Per series: C(method) (C(calendar), C(gap) or C(calendar+gap)), C(calendar), the dates the calendar covered,
    the ranges judged by the gap method and C(reason) for the fallback.
  returned: when the missing_days check ran
  type: list
  elements: dict
exchange_calendars_version:
  description: Version of exchange_calendars used, or null when it could not be imported (gap method everywhere).
  returned: when the missing_days check ran
  type: str
  sample: 4.13.2
outliers:
  description: Returns beyond the z-score threshold (key columns, C(time), C(close), C(daily_return), C(z_score)), largest first.
  returned: when the outliers check ran
  type: list
  elements: dict
null_prices:
  description: Rows with NULL prices (key columns, C(time), C(null_columns)).
  returned: when the null_prices check ran
  type: list
  elements: dict
ohlc_invariants:
  description: Rows breaking the OHLC rules (key columns, C(time), prices, C(violations)).
  returned: when the ohlc_invariants check ran
  type: list
  elements: dict
removed_rows:
  description: With O(fix=true), every duplicate row removed (or, in check mode, that would be removed), row by row with all its values.
  returned: when fix is true
  type: list
  elements: dict
  sample: [{ticker: SPX, region: US, time: "2018-06-01", created_at: "2024-01-02T10:00:00+00:00", close: 2734.62}]
timings:
  description:
    - "Seconds each step took (wall clock): C(series) the per-series summary (also the row count), C(calendars)
      the exchange calendars (import and sessions; only with the C(missing_days) check), C(scan) the one pass
      computing every check, including the transfer of its findings."
    - The checks share one scan, so there is no per-check time.
  returned: always
  type: dict
  sample: {series: 0.12, calendars: 0.9, scan: 2.3}
queries:
  description: SQL statements run (or, for the DELETE in check mode, that would run), each cut at 6000 characters.
  returned: always
  type: list
  elements: str
'''

import bisect
import time

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.quantops.platform.plugins.module_utils import data_quality as dq
from ansible_collections.quantops.platform.plugins.module_utils.postgres import (
    Query, QueryRunner, convert_value, pg_session, postgres_common_argument_spec, psycopg, start_module
)

QUERY_TEXT_LIMIT = 6000
STATEMENT_TIMEOUT = '10min'


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        schema=dict(type='str', default='public'),
        table=dict(type='str', default='ohlcv_data'),
        key_columns=dict(type='list', elements='str', default=['ticker', 'region'], no_log=False),
        region_column=dict(type='str', default='region'),
        time_column=dict(type='str', default='date'),
        price_columns=dict(type='dict', default={'open': 'open', 'high': 'high', 'low': 'low', 'close': 'close'}),
        volume_column=dict(type='str', default='volume'),
        created_at_column=dict(type='str', default='created_at'),
        since=dict(type='str'),
        until=dict(type='str', aliases=['before']),
        regions=dict(type='list', elements='str', default=[]),
        checks=dict(type='list', elements='str', choices=dq.CHECK_NAMES, default=list(dq.CHECK_NAMES)),
        calendars=dict(type='dict'),
        default_calendar=dict(type='str'),
        gap_days=dict(type='int', default=3),
        gap_days_by_region=dict(type='dict', default={}),
        zscore_threshold=dict(type='float', default=3.0),
        zscore_lookback_days=dict(type='int', default=365),
        min_returns=dict(type='int', default=20),
        max_findings=dict(type='int', default=100),
        fix=dict(type='bool', default=False),
    )
    return spec


LABELS = {
    'duplicates': 'Duplicates',
    'missing_days': 'Missing trading days',
    'outliers': 'Price anomalies',
    'null_prices': 'NULL prices',
    'ohlc_invariants': 'Business logic (OHLC)',
}


class DataQuality(QueryRunner):
    text_limit = QUERY_TEXT_LIMIT

    def __init__(self, module, conn, opts, db_error):
        super(DataQuality, self).__init__(module, conn)
        self.opts = opts
        self.db_error = db_error
        self.timings = {}

    def rows(self, query, record=True, convert=True):
        """Every check's query is recorded unless told otherwise."""
        return super(DataQuality, self).rows(query, record, convert)

    def fail(self, msg):
        self.module.fail_json(msg=msg, queries=self.queries)

    def columns(self):
        """Column types of the table."""
        o = self.opts
        rows = self.rows(Query(
            'SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type '
            'FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid '
            'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace '
            'WHERE n.nspname = {schema} AND c.relname = {table} AND a.attnum > 0 AND NOT a.attisdropped',
            literals={'schema': o['schema'], 'table': o['table']}), record=False)
        if not rows:
            self.fail('Table %s.%s does not exist or is not visible to %s (option table/schema).'
                      % (o['schema'], o['table'], self.module.params['login_user']))
        types = dict((r['name'], r['type']) for r in rows)
        needed = list(o['key_columns']) + [o['time_column']] + list(o['price_columns'].values())
        for extra in ('volume_column', 'created_at_column'):
            if o[extra]:
                needed.append(o[extra])
        missing = [c for c in needed if c not in types]
        if missing:
            self.fail('Column(s) %s do not exist in %s.%s (it has: %s). Set key_columns, time_column, price_columns, '
                      'volume_column and created_at_column to its column names.'
                      % (', '.join(repr(c) for c in missing), o['schema'], o['table'], ', '.join(sorted(types))))
        return types

    def timed(self, name, func):
        started = time.time()
        try:
            return func()
        finally:
            self.timings[name] = round(time.time() - started, 3)

    # --- missing days: which calendar (or the gap method) judges which dates of each series ---------
    def plan_missing(self, series, types):
        """Per series, the calendar that judges which dates and the gap method's ranges (and why).

        Returns (plan, sessions_by_code, version): one entry per series, in the series query's order.
        """
        o = self.opts
        xcals, version, import_error = dq.import_calendars()
        time_is_date = types.get(o['time_column']) == 'date'
        region_idx = o['key_columns'].index(o['region_column']) if o['region_column'] else None
        names = o['key_columns']
        # One calendar per code over the union of the series' ranges.
        wanted = {}
        for s in series:
            region = s[names[region_idx]] if region_idx is not None else None
            code = o['calendars'].get(region, o['default_calendar']) if region is not None else o['default_calendar']
            if code and xcals is not None and time_is_date and s['first_time'] is not None:
                lo, hi = wanted.get(code, (s['first_time'], s['last_time']))
                wanted[code] = (min(lo, s['first_time']), max(hi, s['last_time']))
        calendars = {}
        for code, (lo, hi) in wanted.items():
            try:
                calendars[code] = dq.calendar_sessions(xcals, code, lo, hi)
            except Exception as e:  # unknown code, or a bound error from the library
                calendars[code] = {'error': '%s: %s' % (type(e).__name__, to_native(e))}
        plan = []
        for s in series:
            key = [s[c] for c in names]
            region = key[region_idx] if region_idx is not None else None
            code = o['calendars'].get(region, o['default_calendar']) if region is not None else o['default_calendar']
            gap_days = o['gap_days_by_region'].get(region, o['gap_days']) if region is not None else o['gap_days']
            first, last = s['first_time'], s['last_time']
            entry = dict(zip(names, [convert_value(k) for k in key]))
            entry.update({'first_time': convert_value(first), 'last_time': convert_value(last),
                          'calendar': None, 'calendar_from': None, 'calendar_to': None,
                          'gap_days': gap_days, 'gap_ranges': [], 'reason': None})
            covered = None
            if not code:
                entry['reason'] = 'no calendar configured for %s=%r' % (o['region_column'] or 'series', region)
            elif xcals is None:
                entry['reason'] = 'exchange_calendars is not importable (%s)' % import_error
            elif not time_is_date:
                entry['reason'] = '%s is %s, not date: calendars judge daily bars' % (
                    o['time_column'], types.get(o['time_column']))
            elif 'error' in calendars.get(code, {}):
                entry['reason'] = 'calendar %s unavailable: %s' % (code, calendars[code]['error'])
            if entry['reason']:
                fallback = [(first, last)]
            else:
                cal = calendars[code]
                entry['calendar'] = code
                if cal['covered'] is not None:
                    lo, hi = max(first, cal['covered'][0]), min(last, cal['covered'][1])
                    if lo <= hi:
                        covered = (lo, hi)
                if covered is not None:
                    entry['calendar_from'], entry['calendar_to'] = covered[0].isoformat(), covered[1].isoformat()
                fallback = dq.uncovered_ranges(first, last, covered)
                if fallback:
                    entry['reason'] = ('dates outside what %s records (%s)' % (code, cal['note'] or 'calendar range'))
            for lo, hi in fallback:
                entry['gap_ranges'].append([convert_value(lo), convert_value(hi)])
            entry['method'] = ('calendar+gap' if entry['calendar'] and entry['gap_ranges']
                               else 'calendar' if entry['calendar'] else 'gap')
            plan.append({'key': key, 'entry': entry, 'code': code, 'covered': covered,
                         'fallback': fallback, 'gap_days': gap_days, 'whole': bool(entry['reason']) and not entry['calendar']})
        # The sessions each calendar judges: those inside the union of its series' covered ranges.
        sessions_by_code = {}
        for p in plan:
            if p['covered'] is not None:
                lo, hi = sessions_by_code.get(p['code'], p['covered'])
                sessions_by_code[p['code']] = (min(lo, p['covered'][0]), max(hi, p['covered'][1]))
        for code, (lo, hi) in list(sessions_by_code.items()):
            sessions = [d for d in calendars[code]['sessions'] if lo <= d <= hi]
            if sessions:
                sessions_by_code[code] = sessions
            else:
                del sessions_by_code[code]
        return plan, sessions_by_code, version

    @staticmethod
    def scan_series(plan, layout):
        """The plan as the scan's per-series rows (see dq.scan_query)."""
        out = []
        for p in plan:
            off, base, days = layout.get(p['code'], (None, None, None)) if p['covered'] is not None else (None, None, None)
            ranges = [] if p['whole'] else list(p['fallback'])
            ranges += [None] * (2 - len(ranges))
            out.append({'key': p['key'], 'off': off, 'base': base, 'days': days, 'gap': p['gap_days'],
                        'gap_all': p['whole'], 'f1lo': ranges[0] and ranges[0][0], 'f1hi': ranges[0] and ranges[0][1],
                        'f2lo': ranges[1] and ranges[1][0], 'f2hi': ranges[1] and ranges[1][1]})
        return out

    # --- the findings of the one scan, check by check ----------------------------------------------
    def split(self, rows, plan, sessions_by_code):
        """Findings of each check from the scan's rows (ordered by key and time), in each check's order."""
        o = self.opts
        names = o['key_columns']
        found = dict((name, []) for name in dq.CHECK_NAMES)
        dup_rank, out_rank, by_series = [], [], {}
        for rank, r in enumerate(rows):
            key = dict((c, convert_value(r[c])) for c in names)
            time_value = convert_value(r['time'])
            if r['duplicate']:
                item = dict(key, time=time_value, copies=int(r['copies']))
                if o['created_at_column']:
                    item['earliest_created_at'] = convert_value(r['earliest_created_at'])
                    item['latest_created_at'] = convert_value(r['latest_created_at'])
                dup_rank.append((-int(r['copies']), rank, item))
            if r['null_price']:
                found['null_prices'].append(dict(key, time=time_value, null_columns=list(r['null_columns'])))
            if r['ohlc_invalid']:
                item = dict(key, time=time_value, open=convert_value(r['open']), high=convert_value(r['high']),
                            low=convert_value(r['low']), close=convert_value(r['close']))
                if o['volume_column']:
                    item['volume'] = convert_value(r['volume'])
                item['violations'] = list(r['violations'])
                found['ohlc_invariants'].append(item)
            if r['outlier']:
                out_rank.append((-r['z_abs'], rank, dict(key, time=time_value, close=convert_value(r['bar_close']),
                                                         daily_return=convert_value(r['daily_return']),
                                                         z_score=convert_value(r['z_score']))))
            if r['missing_sessions'] or r['gap']:
                by_series.setdefault(r['series'], []).append(r)
        found['duplicates'] = [item for dummy, dummy2, item in sorted(dup_rank, key=lambda x: x[:2])]
        found['outliers'] = [item for dummy, dummy2, item in sorted(out_rank, key=lambda x: x[:2])]
        sessions_total, gaps_total = 0, 0
        for i, p in enumerate(plan):
            calendar, gaps = [], []
            key = dict(zip(names, [convert_value(k) for k in p['key']]))
            for r in by_series.get(i, []):
                if r['missing_sessions']:
                    sessions = sessions_by_code[p['code']]
                    lo = bisect.bisect_right(sessions, r['prev_time'])
                    hi = bisect.bisect_left(sessions, r['time'])
                    calendar.extend(sessions[lo:hi])
                if r['gap']:
                    gaps.append(dict(key, method='gap', prev_time=convert_value(r['prev_time']),
                                     time=convert_value(r['time']),
                                     gap_days=int(r['gap_days'])))
            for day in calendar:
                found['missing_days'].append(dict(key, method='calendar', calendar=p['code'], time=convert_value(day)))
            found['missing_days'].extend(gaps)
            sessions_total += len(calendar)
            gaps_total += len(gaps)
        return found, sessions_total, gaps_total

    def judge(self, name, found, sessions_total, gaps_total):
        """The check entry (status, count, rows affected, message) of one check's findings."""
        count = len(found)
        if name == 'duplicates':
            extra = sum(int(g['copies']) - 1 for g in found)
            msg = ('%d duplicate groups, %d extra rows' % (count, extra)) if found else '0 duplicates found'
            return {'name': name, 'status': dq.judge(name, count, critical=True), 'count': count,
                    'affected': extra, 'message': msg}
        if name == 'missing_days':
            msg = '%d missing sessions by exchange calendar, %d gaps > gap_days by the gap method' % (
                sessions_total, gaps_total) if count else '0 gaps found'
        elif name == 'null_prices':
            msg = ('%d rows with NULL prices' % count) if found else '0 NULL prices found'
        elif name == 'ohlc_invariants':
            msg = ('%d rows break low <= open/close <= high or volume >= 0' % count) if found \
                else 'all OHLCV records pass validation'
        else:
            msg = '%d outliers (threshold: %s std dev)' % (count, self.opts['zscore_threshold'])
        return {'name': name, 'status': dq.judge(name, count), 'count': count, 'affected': count, 'message': msg}

    def fix(self, check_mode):
        if check_mode:
            query = dq.duplicate_rows_query(self.opts, delete=False)
            rows = self.rows(query)
            self.queries.append(self.text(dq.duplicate_rows_query(self.opts, delete=True)) + '  -- check mode: not run')
            return rows
        query = dq.duplicate_rows_query(self.opts, delete=True)
        with self.conn.transaction():
            rows = self.rows(query)
        return rows


def run_module():
    module, opts = start_module(argument_spec(), dq.validate_options, errors=(dq.OptionError,))

    result = dict(changed=False, queries=[])
    with pg_session(module, STATEMENT_TIMEOUT) as conn:
        runner = DataQuality(module, conn, opts, psycopg.Error)
        try:
            with conn.cursor() as cur:
                if not (opts['fix'] and not module.check_mode):
                    cur.execute('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY')
            types = runner.columns()
            series = runner.timed('series', lambda: runner.rows(dq.series_query(opts), convert=False))
            scanned = sum(int(s['n']) for s in series)
            plan, scan_series, cum, sessions_by_code = None, None, None, {}
            if 'missing_days' in opts['checks']:
                plan, sessions_by_code, version = runner.timed(
                    'calendars', lambda: runner.plan_missing(series, types))
                cum, layout = dq.calendar_index(sessions_by_code)
                scan_series = runner.scan_series(plan, layout)
                result['missing_days_methods'] = [p['entry'] for p in plan]
                result['exchange_calendars_version'] = version
            rows = runner.timed('scan', lambda: runner.rows(
                dq.scan_query(opts, scan_series, cum), convert=False))
            found, sessions_total, gaps_total = runner.split(rows, plan or [], sessions_by_code)
            checks = []
            lists = {}
            limit = opts['max_findings']
            for name in opts['checks']:
                check = runner.judge(name, found[name], sessions_total, gaps_total)
                checks.append(check)
                lists[name] = found[name][:limit]
            fixed = False
            if opts['fix']:
                dup = [c for c in checks if c['name'] == 'duplicates']
                if dup and dup[0]['count'] == 0:
                    result['removed_rows'] = []
                else:
                    removed = runner.fix(module.check_mode)
                    result['removed_rows'] = removed
                    result['changed'] = bool(removed)
                    fixed = True
                    for c in checks:
                        if c['name'] == 'duplicates' and removed:
                            c['message'] += '; %s %d rows keeping the earliest %s' % (
                                'would remove' if module.check_mode else 'removed', len(removed),
                                opts['created_at_column'])
                            if not module.check_mode:
                                c['status'] = dq.STATUS_OK
                    fixed = fixed and not module.check_mode
        except psycopg.Error as e:
            module.fail_json(msg='Data-quality query failed on %s.%s: %s' % (
                opts['schema'], opts['table'], to_native(e).strip()), queries=runner.queries)

    affected = sum(c['affected'] for c in checks)
    result.update(lists)
    result.update(
        status=dq.worst(c['status'] for c in checks),
        severity=dq.severity(checks, int(scanned), affected, fixed),
        checks=[dict((k, v) for k, v in c.items() if k != 'affected') for c in checks],
        checklist=[dq.checklist_line(c['status'], LABELS[c['name']], c['message']) for c in checks],
        scanned_rows=int(scanned),
        affected_rows=affected,
        range={'since': opts['since'].isoformat() if opts['since'] else None,
               'until': opts['until'].isoformat() if opts['until'] else None},
        timings=runner.timings,
        queries=runner.queries,
    )
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
