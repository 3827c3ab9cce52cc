# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Logic of the ohlcv_data_quality module that needs no database.

Option validation, the SQL of every check (a module_utils/postgres.py Query:
a constant template, identifiers and literals composed by psycopg.sql), exchange-calendar resolution with its fallback, and the
judgement of the findings.  The checks are seed 002's "Data Quality
Management" queries (missing dates, z-score outliers, duplicates, NULL prices,
business logic), bounded to a time range so that TimescaleDB excludes the
chunks outside it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.quantops.platform.plugins.module_utils.postgres import (
    IdentifierError,
    Query,
    TypedArray,
    ValueArray,
    validate_identifier,
)

CHECK_NAMES = ['duplicates', 'missing_days', 'outliers', 'null_prices', 'ohlc_invariants']

# Seed 002 "Data Quality Management": region KR is the platform's home market;
# US stocks are the second region.  Other entries are the usual ISO 10383 MICs.
DEFAULT_CALENDARS = {
    'KR': 'XKRX',
    'US': 'XNYS',
    'JP': 'XTKS',
    'HK': 'XHKG',
    'CN': 'XSHG',
}

STATUS_OK = 'ok'
STATUS_WARNING = 'warning'
STATUS_CRITICAL = 'critical'
_RANK = {STATUS_OK: 0, STATUS_WARNING: 1, STATUS_CRITICAL: 2}
_SYMBOL = {STATUS_OK: '\u2713', STATUS_WARNING: '\u26a0', STATUS_CRITICAL: '\u2717'}

_DATE_RE = re.compile(r'^\d{4}-\d{2}-\d{2}$')


class OptionError(ValueError):
    """Bad module option, reported before anything connects."""


def parse_date(value, what):
    """Parse an ISO date (YYYY-MM-DD); None stays None."""
    if value is None or value == '':
        return None
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    text = str(value).strip()
    if not _DATE_RE.match(text):
        raise OptionError('%s must be an ISO date YYYY-MM-DD, got %r' % (what, value))
    try:
        return datetime.date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
    except ValueError as e:
        raise OptionError('%s is not a valid date (%s): %r' % (what, e, value))


def validate_options(params):
    """Validate every option that does not need the database; return a normalised dict.

    Raises OptionError with a message naming the option and what to do.
    """
    opts = {}
    try:
        opts['schema'] = validate_identifier(params['schema'], 'schema')
        opts['table'] = validate_identifier(params['table'], 'table')
        keys = params['key_columns']
        if not keys:
            raise OptionError('key_columns must name at least one column (the series key, e.g. [ticker, region])')
        opts['key_columns'] = [validate_identifier(c, 'key_columns entry') for c in keys]
        opts['time_column'] = validate_identifier(params['time_column'], 'time_column')
        prices = params['price_columns']
        for name in ('open', 'high', 'low', 'close'):
            if not prices.get(name):
                raise OptionError('price_columns.%s is required (the column holding the %s price)' % (name, name))
        opts['price_columns'] = dict((k, validate_identifier(prices[k], 'price_columns.%s' % k))
                                     for k in ('open', 'high', 'low', 'close'))
        opts['volume_column'] = (validate_identifier(params['volume_column'], 'volume_column')
                                 if params.get('volume_column') else None)
        opts['created_at_column'] = (validate_identifier(params['created_at_column'], 'created_at_column')
                                     if params.get('created_at_column') else None)
        opts['region_column'] = (validate_identifier(params['region_column'], 'region_column')
                                 if params.get('region_column') else None)
    except IdentifierError as e:
        raise OptionError(str(e))
    if opts['region_column'] and opts['region_column'] not in opts['key_columns']:
        raise OptionError('region_column %r must be one of key_columns %r (a series belongs to one region)'
                          % (opts['region_column'], opts['key_columns']))
    if len(set(opts['key_columns'] + [opts['time_column']])) != len(opts['key_columns']) + 1:
        raise OptionError('key_columns and time_column must be distinct columns')
    if params['fix'] and not opts['created_at_column']:
        raise OptionError('fix=true needs created_at_column: duplicates are removed keeping the earliest created_at')

    opts['since'] = parse_date(params.get('since'), 'since')
    opts['until'] = parse_date(params.get('until'), 'until')
    if opts['since'] and opts['until'] and opts['since'] >= opts['until']:
        raise OptionError('since (%s) must be before until (%s); the range is since <= time < until'
                          % (opts['since'], opts['until']))

    z = params['zscore_threshold']
    if z is None or z <= 0:
        raise OptionError('zscore_threshold must be > 0 (seed 002 uses 3.0), got %r' % (z,))
    opts['zscore_threshold'] = float(z)
    for name, minimum in (('gap_days', 1), ('zscore_lookback_days', 0), ('max_findings', 1),
                          ('min_returns', 2)):
        value = params[name]
        if value is None or value < minimum:
            raise OptionError('%s must be an integer >= %d, got %r' % (name, minimum, value))
        opts[name] = int(value)
    overrides = {}
    for region, days in (params.get('gap_days_by_region') or {}).items():
        try:
            days = int(days)
        except (TypeError, ValueError):
            raise OptionError('gap_days_by_region.%s must be an integer number of days, got %r' % (region, days))
        if days < 1:
            raise OptionError('gap_days_by_region.%s must be >= 1, got %d' % (region, days))
        overrides[str(region)] = days
    opts['gap_days_by_region'] = overrides

    calendars = dict(DEFAULT_CALENDARS) if params.get('calendars') is None else {}
    for region, code in (params.get('calendars') or {}).items():
        if code in (None, ''):
            calendars[str(region)] = None
            continue
        if not isinstance(code, str) or not re.match(r'^[A-Za-z0-9_/\-]{2,32}$', code):
            raise OptionError('calendars.%s must be an exchange_calendars code such as XKRX or XNYS, got %r'
                              % (region, code))
        calendars[str(region)] = code
    opts['calendars'] = calendars
    opts['default_calendar'] = params.get('default_calendar') or None
    opts['regions'] = [str(r) for r in (params.get('regions') or [])]
    if opts['regions'] and not opts['region_column']:
        raise OptionError('regions needs region_column (the column whose values are filtered)')
    opts['checks'] = [c for c in CHECK_NAMES if c in params['checks']]
    if 'missing_days' in opts['checks'] and not opts['key_columns']:
        raise OptionError('missing_days needs key_columns')
    if 'ohlc_invariants' in opts['checks'] and not opts['volume_column']:
        opts['volume_column'] = None
    opts['fix'] = bool(params['fix'])
    return opts


# --- SQL (composed by module_utils/postgres.py Query: identifiers and literals, never interpolated) ---

def _key_list(alias, keys):
    """'{alias}.{k0}, {alias}.{k1}' placeholders for the key columns and their ident map."""
    idents = {}
    parts = []
    for i, dummy in enumerate(keys):
        idents['k%d' % i] = keys[i]
        parts.append('%s{k%d}' % (alias + '.' if alias else '', i))
    return ', '.join(parts), idents


def _range_clause(opts, alias='', since=None):
    """WHERE pieces bounding the time column (constants, so chunks are excluded at plan time)."""
    col = (alias + '.' if alias else '') + '{t}'
    clauses, literals = [], {}
    start = since if since is not None else opts['since']
    if start is not None:
        clauses.append('%s >= {since}' % col)
        literals['since'] = start
    if opts['until'] is not None:
        clauses.append('%s < {until}' % col)
        literals['until'] = opts['until']
    if opts['regions']:
        clauses.append('%s{rg} = ANY({regions})' % (alias + '.' if alias else ''))
        literals['regions'] = TypedArray(opts['regions'], 'text')
    return clauses, literals


def _base(opts):
    idents = {'tbl': (opts['schema'], opts['table']), 't': opts['time_column']}
    if opts['regions']:
        idents['rg'] = opts['region_column']
    return idents


def _scan(opts, since=None):
    """What every check over the table starts from: the key column list, the range clauses with their
    literals, and the identifiers (table, time, region and key columns)."""
    keys, kid = _key_list('', opts['key_columns'])
    clauses, literals = _range_clause(opts, since=since)
    idents = _base(opts)
    idents.update(kid)
    return keys, clauses, literals, idents


def _where(clauses):
    return ('WHERE ' + ' AND '.join(clauses)) if clauses else ''


def duplicates_query(opts):
    keys, clauses, literals, idents = _scan(opts)
    created = ''
    if opts['created_at_column']:
        idents['ca'] = opts['created_at_column']
        created = ', min({ca}) AS earliest_created_at, max({ca}) AS latest_created_at'
    template = ('SELECT %s, {t} AS time, count(*) AS copies%s FROM {tbl} %s GROUP BY %s, {t} '
                'HAVING count(*) > 1 ORDER BY count(*) DESC, %s, {t}'
                % (keys, created, _where(clauses), keys, keys))
    return Query(template, idents, literals)


def duplicate_rows_query(opts, delete=False):
    """Rows beyond the earliest created_at of each (key, time) group; DELETE ... RETURNING them with delete."""
    keys, clauses, literals, idents = _scan(opts)
    okeys, dummy = _key_list('o', opts['key_columns'])
    idents['ca'] = opts['created_at_column']
    cols = [opts['price_columns'][k] for k in ('open', 'high', 'low', 'close')]
    if opts['volume_column']:
        cols.append(opts['volume_column'])
    for i, c in enumerate(cols):
        idents['c%d' % i] = c
    ocols = ', '.join('o.{c%d}' % i for i in range(len(cols)))
    ranked = ('WITH ranked AS (SELECT tableoid AS toid, ctid AS row_ctid, row_number() OVER '
              '(PARTITION BY %s, {t} ORDER BY {ca}, ctid) AS rn FROM {tbl} %s) '
              % (keys, _where(clauses)))
    if delete:
        template = (ranked + 'DELETE FROM {tbl} AS o USING ranked r WHERE o.tableoid = r.toid '
                    'AND o.ctid = r.row_ctid AND r.rn > 1 '
                    'RETURNING %s, o.{t} AS time, o.{ca} AS created_at, %s' % (okeys, ocols))
    else:
        template = (ranked + 'SELECT %s, o.{t} AS time, o.{ca} AS created_at, %s FROM {tbl} AS o '
                    'JOIN ranked r ON o.tableoid = r.toid AND o.ctid = r.row_ctid WHERE r.rn > 1 %s '
                    'ORDER BY %s, o.{t}, o.{ca}'
                    % (okeys, ocols, ('AND ' + ' AND '.join(_range_clause(opts, 'o')[0])) if clauses else '',
                       okeys))
    return Query(template, idents, literals)


def null_prices_query(opts):
    keys, clauses, literals, idents = _scan(opts)
    names = ['open', 'high', 'low', 'close']
    for n in names:
        idents['p_' + n] = opts['price_columns'][n]
    nulls = ' OR '.join('{p_%s} IS NULL' % n for n in names)
    which = ', '.join("CASE WHEN {p_%s} IS NULL THEN '%s' END" % (n, n) for n in names)
    template = ('SELECT %s, {t} AS time, array_remove(ARRAY[%s], NULL) AS null_columns FROM {tbl} %s '
                'ORDER BY %s, {t}' % (keys, which, _where(clauses + ['(%s)' % nulls]), keys))
    return Query(template, idents, literals)


def invariants_query(opts):
    """Rows breaking low <= open, close <= high (so low <= high) or volume >= 0 (NULLs are the NULL check's)."""
    keys, clauses, literals, idents = _scan(opts)
    for n in ('open', 'high', 'low', 'close'):
        idents['p_' + n] = opts['price_columns'][n]
    rules = [("{p_low} > {p_open}", 'low > open'), ("{p_low} > {p_close}", 'low > close'),
             ("{p_open} > {p_high}", 'open > high'), ("{p_close} > {p_high}", 'close > high'),
             ("{p_low} > {p_high}", 'low > high')]
    vol = ''
    if opts['volume_column']:
        idents['vol'] = opts['volume_column']
        rules.append(("{vol} < 0", 'volume < 0'))
        vol = ', {vol} AS volume'
    broken = ', '.join("CASE WHEN %s THEN '%s' END" % (cond, label) for cond, label in rules)
    any_broken = ' OR '.join('(%s)' % cond for cond, dummy in rules)
    template = ('SELECT %s, {t} AS time, {p_open} AS open, {p_high} AS high, {p_low} AS low, {p_close} AS close%s, '
                'array_remove(ARRAY[%s], NULL) AS violations FROM {tbl} %s ORDER BY %s, {t}'
                % (keys, vol, broken, _where(clauses + ['(%s)' % any_broken]), keys))
    return Query(template, idents, literals)


def outliers_query(opts):
    """Seed 002 z-score query: daily return vs the series' mean and stddev, |z| > threshold.

    One row per (key, time) (the earliest created_at when duplicated) so duplicates do not
    add zero returns.  Statistics use zscore_lookback_days before ``since`` as well; only
    rows inside the range are reported.
    """
    dkeys, dummy = _key_list('d', opts['key_columns'])
    stat_since = None
    if opts['since'] is not None:
        stat_since = opts['since'] - datetime.timedelta(days=opts['zscore_lookback_days'])
    keys, clauses, literals, idents = _scan(opts, since=stat_since)
    idents['close'] = opts['price_columns']['close']
    order = ''
    if opts['created_at_column']:
        idents['ca'] = opts['created_at_column']
        order = ', {ca}'
    report = ''
    if opts['since'] is not None:
        report = 'AND d.time >= {report_since}'
        literals['report_since'] = opts['since']
    literals['z'] = opts['zscore_threshold']
    literals['min_returns'] = opts['min_returns']
    template = (
        'WITH bars AS (SELECT DISTINCT ON (%(keys)s, {t}) %(keys)s, {t} AS time, {close} AS close '
        'FROM {tbl} %(where)s ORDER BY %(keys)s, {t}%(order)s), '
        'daily AS (SELECT %(keys)s, time, close, '
        '(close - lag(close) OVER w) / NULLIF(lag(close) OVER w, 0) AS daily_return '
        'FROM bars WINDOW w AS (PARTITION BY %(keys)s ORDER BY time)), '
        'stats AS (SELECT %(keys)s, avg(daily_return) AS mean_return, stddev(daily_return) AS std_return, '
        'count(daily_return) AS returns FROM daily WHERE daily_return IS NOT NULL GROUP BY %(keys)s) '
        'SELECT %(dkeys)s, d.time, d.close, d.daily_return, '
        'round(((d.daily_return - s.mean_return) / NULLIF(s.std_return, 0))::numeric, 2) AS z_score '
        'FROM daily d JOIN stats s USING (%(keys)s) '
        'WHERE s.returns >= {min_returns} AND abs((d.daily_return - s.mean_return) / NULLIF(s.std_return, 0)) > {z} '
        '%(report)s ORDER BY abs((d.daily_return - s.mean_return) / NULLIF(s.std_return, 0)) DESC, %(dkeys)s, d.time'
        % {'keys': keys, 'dkeys': dkeys, 'where': _where(clauses), 'order': order, 'report': report})
    return Query(template, idents, literals)


def count_query(opts):
    """Rows inside the range (and regions): the denominator of the affected share."""
    clauses, literals = _range_clause(opts)
    return Query('SELECT count(*) AS n FROM {tbl} %s' % _where(clauses), _base(opts), literals)


def series_query(opts):
    """Series (key values) with their first/last time and row count inside the range."""
    keys, clauses, literals, idents = _scan(opts)
    template = ('SELECT %s, min({t}) AS first_time, max({t}) AS last_time, count(DISTINCT {t}) AS days '
                'FROM {tbl} %s GROUP BY %s ORDER BY %s' % (keys, _where(clauses), keys, keys))
    return Query(template, idents, literals)


def missing_sessions_query(opts, key_values, ranges, sessions):
    """Sessions of one exchange calendar with no row, for many series in one anti-join.

    ``key_values`` is a list of key tuples (one per series, in key_columns order), ``ranges`` the
    (first, last) dates each series is judged over (inclusive), ``sessions`` the calendar's
    sessions over the union of the ranges (sorted, not empty).  One statement per calendar
    instead of one per series: the hypertable is planned once, and the first and last session
    as constant bounds let TimescaleDB exclude every chunk outside them at plan time.  Returns ``series`` (the index
    into ``key_values``) and ``time`` (the missing session), ordered by both.
    """
    idents = {'tbl': (opts['schema'], opts['table']), 't': opts['time_column']}
    literals = {'sessions': TypedArray(sessions, 'date'), 'lo': sessions[0], 'hi': sessions[-1],
                'idx': ValueArray(range(len(key_values))), 'first': TypedArray([r[0] for r in ranges], 'date'),
                'last': TypedArray([r[1] for r in ranges], 'date')}
    conds, arrays, names = [], [], []
    for i, col in enumerate(opts['key_columns']):
        idents['k%d' % i] = col
        literals['v%d' % i] = ValueArray(k[i] for k in key_values)
        arrays.append('{v%d}' % i)
        names.append('k%d' % i)
        conds.append('o.{k%d} = s.k%d' % (i, i))
    template = ('SELECT s.idx AS series, x.session AS time '
                'FROM unnest({idx}, %s, {first}, {last}) AS s(idx, %s, first_day, last_day) '
                'JOIN unnest({sessions}) AS x(session) ON x.session BETWEEN s.first_day AND s.last_day '
                'WHERE NOT EXISTS (SELECT 1 FROM {tbl} o WHERE %s AND o.{t} = x.session '
                'AND o.{t} >= {lo} AND o.{t} <= {hi}) ORDER BY 1, 2'
                % (', '.join(arrays), ', '.join(names), ' AND '.join(conds)))
    return Query(template, idents, literals)


def gaps_query(opts, key_values, gap_days, start=None, end=None):
    """Seed 002 missing-date query for one series: consecutive rows more than gap_days apart.

    ``start``/``end`` (inclusive) bound the part of the series judged this way (outside an
    exchange calendar's range).
    """
    idents = {'tbl': (opts['schema'], opts['table']), 't': opts['time_column']}
    conds = []
    literals = {'gap': gap_days}
    for i, (col, value) in enumerate(zip(opts['key_columns'], key_values)):
        idents['k%d' % i] = col
        literals['v%d' % i] = value
        conds.append('{k%d} = {v%d}' % (i, i))
    lo = start if start is not None else opts['since']
    if lo is not None:
        conds.append('{t} >= {lo}')
        literals['lo'] = lo
    if end is not None:
        conds.append('{t} <= {hi}')
        literals['hi'] = end
    elif opts['until'] is not None:
        conds.append('{t} < {hi}')
        literals['hi'] = opts['until']
    template = ('SELECT prev_time, time, (time::date - prev_time::date) AS gap_days FROM ('
                'SELECT {t} AS time, lag({t}) OVER (ORDER BY {t}) AS prev_time FROM '
                '(SELECT DISTINCT {t} FROM {tbl} WHERE %s) x) y '
                'WHERE time::date - prev_time::date > {gap} ORDER BY prev_time' % ' AND '.join(conds))
    return Query(template, idents, literals)


# --- exchange calendars ---------------------------------------------------------------------

def import_calendars():
    """Return (module, version, error) for exchange_calendars."""
    try:
        import exchange_calendars  # pylint: disable=import-outside-toplevel
    except Exception as e:  # ImportError, or a broken pandas/numpy underneath
        return None, None, '%s: %s' % (type(e).__name__, e)
    return exchange_calendars, getattr(exchange_calendars, '__version__', 'unknown'), None


def _to_date(ts):
    if ts is None:
        return None
    if hasattr(ts, 'date') and callable(ts.date):
        return ts.date()
    return ts


def calendar_sessions(xcals, code, first, last):
    """Sessions of calendar ``code`` between ``first`` and ``last`` (dates, inclusive).

    Returns dict(sessions=[dates], covered=(lo, hi) or None, note=str).  The calendar is
    built over the needed range only, clipped to its bounds (``bound_min``/``bound_max``,
    e.g. XKRX from 1956) and to its last session (about a year ahead): parts of the range
    outside ``covered`` must be judged with the gap fallback.
    """
    default = xcals.get_calendar(code)  # raises InvalidCalendarName for an unknown code
    lo, hi = first, last
    notes = []
    bmin = _to_date(default.bound_min()) if hasattr(default, 'bound_min') else None
    bmax = _to_date(default.bound_max()) if hasattr(default, 'bound_max') else None
    if bmin is not None and lo < bmin:
        notes.append('%s holidays are recorded from %s only' % (code, bmin))
        lo = bmin
    if bmax is not None and hi > bmax:
        notes.append('%s holidays are recorded until %s only' % (code, bmax))
        hi = bmax
    if lo > hi:
        return {'sessions': [], 'covered': None, 'note': '; '.join(notes)}
    cal = xcals.get_calendar(code, start=lo.isoformat(), end=max(hi, lo).isoformat())
    cal_first, cal_last = _to_date(cal.first_session), _to_date(cal.last_session)
    lo, hi = max(lo, cal_first), min(hi, cal_last)
    if lo > hi:
        return {'sessions': [], 'covered': None, 'note': '; '.join(notes)}
    sessions = [_to_date(s) for s in cal.sessions_in_range(lo.isoformat(), hi.isoformat())]
    return {'sessions': sessions, 'covered': (lo, hi), 'note': '; '.join(notes)}


def uncovered_ranges(first, last, covered):
    """Parts of [first, last] outside ``covered`` (both inclusive date pairs)."""
    if covered is None:
        return [(first, last)]
    parts = []
    lo, hi = covered
    if first < lo:
        parts.append((first, lo - datetime.timedelta(days=1)))
    if last > hi:
        parts.append((hi + datetime.timedelta(days=1), last))
    return parts


# --- judgement ------------------------------------------------------------------------------

def judge(name, count, critical=False):
    if not count:
        return STATUS_OK
    return STATUS_CRITICAL if critical else STATUS_WARNING


def worst(statuses):
    best = STATUS_OK
    for s in statuses:
        if _RANK[s] > _RANK[best]:
            best = s
    return best


def checklist_line(status, label, message):
    return '%s %s: %s' % (_SYMBOL[status], label, message)


def severity(result_checks, scanned_rows, affected_rows, fixed):
    """Seed 002 Incident Severity Levels applied to a data-quality run.

    P1 - data quality issues affecting > 10 % of the scanned rows, or duplicates left unfixed
    (the seed's DuplicateRecordsDetected is a critical alert); P2 - any other (non-critical)
    data-quality finding; P3 - nothing found, or only what the run fixed (informational).
    """
    found = [c for c in result_checks if c['count']]
    if not found:
        return 'P3'
    if scanned_rows and affected_rows * 100.0 / scanned_rows > 10.0:
        return 'P1'
    for c in found:
        if c['name'] == 'duplicates' and not fixed:
            return 'P1'
    only_fixed = all(c['name'] == 'duplicates' for c in found) and fixed
    return 'P3' if only_fixed else 'P2'
