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


def series_query(opts):
    """Series (key values) with their first and last time and their row count inside the range.

    A grouped aggregate without DISTINCT, so PostgreSQL reads the chunks with parallel workers; the
    row counts add up to the scanned rows (no separate count).
    """
    keys, clauses, literals, idents = _scan(opts)
    template = ('SELECT %s, min({t}) AS first_time, max({t}) AS last_time, count(*) AS n '
                'FROM {tbl} %s GROUP BY %s ORDER BY %s' % (keys, _where(clauses), keys, keys))
    return Query(template, idents, literals)


def _session_counts(sessions, lo, hi):
    """cum[i] = sessions before lo + i days, for i in 0 .. (hi - lo).days + 1 (sessions sorted, inside [lo, hi])."""
    cum, j = [], 0
    for i in range((hi - lo).days + 2):
        day = lo + datetime.timedelta(days=i)
        while j < len(sessions) and sessions[j] < day:
            j += 1
        cum.append(j)
    return cum


def calendar_index(sessions_by_code):
    """Lay every calendar's session counts end to end in one integer array.

    ``sessions_by_code`` maps a code to its sorted sessions (not empty).  Returns (cum, layout) with
    layout[code] = (offset, base, days): the number of sessions of ``code`` before day ``d`` is
    cum[offset + min(max(d - base, 0), days)] (0-based), so the sessions strictly between two bars p and t
    are cum(t) - cum(p + 1): two array subscripts per bar inside the scan, no join with a calendar table.
    """
    cum, layout = [], {}
    for code in sorted(sessions_by_code):
        sessions = sessions_by_code[code]
        lo, hi = sessions[0], sessions[-1]
        layout[code] = (len(cum), lo, (hi - lo).days + 1)
        cum.extend(_session_counts(sessions, lo, hi))
    return cum, layout


def scan_since(opts):
    """First day the scan reads: ``since`` minus the outlier lookback when outliers are checked."""
    if opts['since'] is None:
        return None
    if 'outliers' in opts['checks']:
        return opts['since'] - datetime.timedelta(days=opts['zscore_lookback_days'])
    return opts['since']


def _series_join(opts, series, cum, kjoin, candidate):
    """The LEFT JOIN of the missing-days plan (one row per series) and the columns computed from it."""
    literals = {'cum': TypedArray(cum or [0], 'int4'), 's_idx': ValueArray(range(len(series)))}
    arrays, cols = ['{s_idx}'], ['idx']
    for i in range(len(opts['key_columns'])):
        literals['s_v%d' % i] = ValueArray(s['key'][i] for s in series)
        arrays.append('{s_v%d}' % i)
        cols.append('k%d' % i)
    for name, kind in (('off', 'int4'), ('base', 'date'), ('days', 'int4'), ('gap', 'int4'), ('gap_all', 'bool'),
                       ('f1lo', 'date'), ('f1hi', 'date'), ('f2lo', 'date'), ('f2hi', 'date')):
        literals['s_' + name] = TypedArray([s[name] for s in series], kind)
        arrays.append('{s_%s}' % name)
        cols.append(name)
    join = ('LEFT JOIN unnest(%s) AS s(%s) ON %s AND %s'
            % (', '.join(arrays), ', '.join(cols), candidate, ' AND '.join(kjoin)))
    cnt = '({cum})[s.off + least(greatest(%s - s.base, 0), s.days) + 1]'
    missing = 'CASE WHEN s.off IS NOT NULL THEN %s - %s END' % (cnt % 'r.t::date', cnt % '(r.prev_t::date + 1)')
    gap = ('s.idx IS NOT NULL AND r.t::date - r.prev_t::date > s.gap AND (s.gap_all '
           'OR (r.prev_t::date >= s.f1lo AND r.t::date <= s.f1hi) '
           'OR (r.prev_t::date >= s.f2lo AND r.t::date <= s.f2hi))')
    return join, 's.idx AS series, %s AS missing_sessions, coalesce(%s, FALSE) AS gap' % (missing, gap), literals


def scan_query(opts, series=None, cum=None):
    """Every check in one pass over the range: one order (key, time DESC, created_at), window functions on it.

    ``series`` (the missing-days plan, one dict per series: ``key``; ``off``, ``base``, ``days`` into ``cum``
    for its calendar, see calendar_index; ``gap``, ``gap_all`` and the fallback ranges ``f1lo``..``f2hi`` of
    the gap method) adds the missing-day columns; without it they are NULL.

    Levels, all on the one order (the seed's index (ticker, region, date DESC) provides it, so the planner
    may merge the chunks' index scans instead of sorting the range): ``r1`` reads the range (with the
    outlier statistics' lookback) and marks the rows with a NULL price or a broken OHLC rule, carrying
    their other prices only for those; ``r2`` finds the first (earliest created_at) copy of each bar and
    counts the copies; ``r3`` takes, from each first copy, the previous bar's first copy ``copies`` rows
    further (time, close, the return in double precision); ``r4`` the series' return statistics (a window
    over the whole partition).  The outer query keeps only the findings, ordered by key and time.
    """
    o = opts
    names = o['key_columns']
    idents = _base(o)
    clauses, literals = _range_clause(o, since=scan_since(o))
    idents.update({'close': o['price_columns']['close'], 'p_open': o['price_columns']['open'],
                   'p_high': o['price_columns']['high'], 'p_low': o['price_columns']['low']})
    keysel, kout, kjoin, korder = [], [], [], []
    for i, col in enumerate(names):
        idents['k%d' % i] = col
        keysel.append('{k%d} AS k%d' % (i, i))
        kout.append('r.k%d AS {k%d}' % (i, i))
        kjoin.append('r.k%d = s.k%d' % (i, i))
        korder.append('{k%d}' % i)
    kcols = ', '.join('k%d' % i for i in range(len(names)))
    # the OHLC rules, over the table's columns (once per row, in r1) and over r1's (for the findings only)
    rules = [('%(low)s > %(open)s', 'low > open'), ('%(low)s > %(close)s', 'low > close'),
             ('%(open)s > %(high)s', 'open > high'), ('%(close)s > %(high)s', 'close > high'),
             ('%(low)s > %(high)s', 'low > high')]
    vol_sel, vol_out = '', ''
    if o['volume_column']:
        idents['vol'] = o['volume_column']
        rules.append(('%(volume)s < 0', 'volume < 0'))
        vol_sel, vol_out = ', {vol} AS volume', ', r.volume'
    table_cols = {'open': '{p_open}', 'high': '{p_high}', 'low': '{p_low}', 'close': '{close}', 'volume': '{vol}'}
    row_cols = dict((k, 'r.' + k) for k in table_cols)
    any_null = ' OR '.join('%s IS NULL' % table_cols[n] for n in ('open', 'high', 'low', 'close'))
    any_rule = ' OR '.join('(%s)' % (cond % table_cols) for cond, dummy in rules)
    null_cols = ', '.join("CASE WHEN %s IS NULL THEN '%s' END" % (row_cols[n], n) for n in ('open', 'high', 'low', 'close'))
    violations = ', '.join("CASE WHEN %s THEN '%s' END" % (cond % row_cols, label) for cond, label in rules)
    ca_sel, ca_order, dup_ca = 'NULL::timestamptz AS ca', '', ''
    if o['created_at_column']:
        idents['ca'] = o['created_at_column']
        ca_sel, ca_order = '{ca} AS ca', ', ca'
        dup_ca = ', r.first_ca AS earliest_created_at, r.last_ca AS latest_created_at'
    literals.update({'z': o['zscore_threshold'], 'min_returns': o['min_returns']})
    report = 'TRUE'
    candidate = 'r.first_copy AND r.t::date - r.prev_t::date > 1'
    if o['since'] is not None:
        report = 'r.t >= {report_since}'
        candidate += ' AND r.prev_t >= {report_since}'
        literals['report_since'] = o['since']
    r1 = ('SELECT %s, {t} AS t, %s, {close} AS close, {close}::float8 AS closef, {p_open} AS open, '
          '{p_high} AS high, {p_low} AS low%s, (%s) OR coalesce(%s, FALSE) AS bad FROM {tbl} %s'
          % (', '.join(keysel), ca_sel, vol_sel, any_null, any_rule, _where(clauses)))
    # The order of every window: (key, time DESC, created_at), the seed's index (ticker, region, date DESC),
    # so the planner may read the chunks in index order instead of sorting the range.
    order = 'PARTITION BY %s ORDER BY t DESC%s' % (kcols, ca_order)
    r2 = ('SELECT r1.*, (lag(t) OVER w) IS DISTINCT FROM t AS first_copy, count(*) OVER p AS copies, '
          'min(ca) OVER p AS first_ca, max(ca) OVER p AS last_ca FROM r1 '
          'WINDOW w AS (%s), p AS (PARTITION BY %s ORDER BY t DESC RANGE BETWEEN CURRENT ROW AND CURRENT ROW)'
          % (order, kcols))
    # From the first copy of a bar, the previous bar's first copy is ``copies`` rows further.
    r3 = ('SELECT r2.*, CASE WHEN first_copy THEN lead(t, copies::int) OVER w END AS prev_t, '
          'CASE WHEN first_copy THEN lead(close, copies::int) OVER w END AS prev_close, '
          'CASE WHEN first_copy THEN (closef - lead(closef, copies::int) OVER w) '
          '/ NULLIF(lead(closef, copies::int) OVER w, 0) END AS daily_return FROM r2 WINDOW w AS (%s)' % order)
    r4 = ('SELECT r3.*, avg(daily_return) OVER s AS mean_return, stddev(daily_return) OVER s AS std_return, '
          'count(daily_return) OVER s AS returns FROM r3 WINDOW s AS (PARTITION BY %s)' % kcols)
    zexpr = '(r.daily_return - r.mean_return) / NULLIF(r.std_return, 0)'
    # the reported return in the column's own type (numeric), computed for the findings only
    exact = 'CASE WHEN r.first_copy THEN (r.close - r.prev_close) / NULLIF(r.prev_close, 0) END'
    outlier = 'r.returns >= {min_returns} AND abs(%s) > {z}' % zexpr
    if series is not None:
        join, series_cols, more = _series_join(o, series, cum, kjoin, candidate)
        literals.update(more)
    else:
        join, series_cols = '', 'NULL::int AS series, NULL::int AS missing_sessions, FALSE AS gap'
    template = (
        'WITH r1 AS (%s), r2 AS (%s), r3 AS (%s), r4 AS (%s) '
        'SELECT * FROM (SELECT %s, r.t AS time, r.first_copy AND r.copies > 1 AS duplicate, r.copies%s, '
        'r.bad AND cardinality(array_remove(ARRAY[%s], NULL)) > 0 AS null_price, '
        'r.bad AND cardinality(array_remove(ARRAY[%s], NULL)) > 0 AS ohlc_invalid, '
        'CASE WHEN r.bad THEN array_remove(ARRAY[%s], NULL) END AS null_columns, '
        'CASE WHEN r.bad THEN array_remove(ARRAY[%s], NULL) END AS violations, r.open, r.high, r.low, r.close%s, '
        'coalesce(%s, FALSE) AS outlier, r.close AS bar_close, %s AS daily_return, '
        'round((%s)::numeric, 2) AS z_score, abs(%s) AS z_abs, r.prev_t AS prev_time, '
        'r.t::date - r.prev_t::date AS gap_days, %s '
        'FROM r4 r %s WHERE %s AND (r.bad OR (r.first_copy AND r.copies > 1) OR (%s) OR (%s))) f '
        'WHERE duplicate OR null_price OR ohlc_invalid OR outlier OR missing_sessions > 0 OR gap '
        'ORDER BY %s, time'
        % (r1, r2, r3, r4, ', '.join(kout), dup_ca, null_cols, violations, null_cols, violations, vol_out, outlier, exact, zexpr, zexpr, series_cols, join,
           report, outlier, candidate, ', '.join(korder)))
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
    try:
        # The common case, one construction over the range (XKRX builds in about 0.5 s per few years,
        # its default twenty-year calendar in 1.2 s): the range lies inside the calendar's bounds.
        return _sessions_of(xcals.get_calendar(code, start=first.isoformat(), end=max(last, first).isoformat()),
                            first, last, [])
    except ValueError:
        pass  # outside bound_min/bound_max (or an unknown code, raised again below): clip to the bounds
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
    return _sessions_of(xcals.get_calendar(code, start=lo.isoformat(), end=max(hi, lo).isoformat()), lo, hi, notes)


def _sessions_of(cal, lo, hi, notes):
    """calendar_sessions' result from a calendar built over [lo, hi], clipped to its first and last session."""
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
