# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The query types of seed 002's "Query Performance Targets" table, as statements on the platform schema.

The seed names the query types (single ticker 250 days / 1 year / 10 years, backtest 5 years x 50
tickers, portfolio optimization) but not their SQL; the statements below are this collection's
definition of each, written from the seed's text:

* single ticker, 250 days: the last 250 daily bars (trading days) of one ticker, newest first,
  the OHLCV columns (``ORDER BY date DESC LIMIT 250``);
* single ticker, 1 year / 10 years: one ticker's OHLCV bars of the calendar window ending on the
  end date, oldest first (the seed's own ``EXPLAIN ANALYZE`` example: ticker, region, a date range,
  ``ORDER BY date``);
* backtest (5 years, 50 tickers): what a daily backtest reads - for each of 50 tickers of one region,
  5 years of close and volume, the daily return (window function) and the technical indicators of
  the same day (``technical_analysis``: SMA 20/50/200, RSI 14; the window is repeated on that table so
  that its chunks outside it are excluded), ordered by ticker and date;
* portfolio optimization: the inputs of a mean-variance optimisation of a universe of tickers of one
  region - the mean daily return of each ticker and the covariance of daily returns of every pair
  (``covar_samp`` over a self-join on date), with each ticker's latest factor scores
  (``factor_scores``) of the window.

Every statement only reads (the module runs them in a read-only session).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import math

QUERY_NAMES = ('single_ticker_250d', 'single_ticker_1y', 'single_ticker_10y', 'backtest', 'portfolio_optimization')

TITLES = {
    'single_ticker_250d': 'Single ticker, 250 days',
    'single_ticker_1y': 'Single ticker, 1 year',
    'single_ticker_10y': 'Single ticker, 10 years',
    'backtest': 'Backtest (5 years, 50 tickers)',
    'portfolio_optimization': 'Portfolio optimization',
}

OHLCV_COLUMNS = 'date, open, high, low, close, volume'

SINGLE_LAST_DAYS_SQL = (
    'SELECT ' + OHLCV_COLUMNS + ' FROM {ohlcv} '
    'WHERE ticker = {ticker} AND region = {region} AND date <= {end} '
    'ORDER BY date DESC LIMIT {days}')

SINGLE_RANGE_SQL = (
    'SELECT ' + OHLCV_COLUMNS + ' FROM {ohlcv} '
    'WHERE ticker = {ticker} AND region = {region} AND date > {start} AND date <= {end} '
    'ORDER BY date')

BACKTEST_SQL = (
    'SELECT o.ticker, o.date, o.close, o.volume, '
    'o.close / NULLIF(lag(o.close) OVER w, 0) - 1 AS daily_return, '
    't.sma_20, t.sma_50, t.sma_200, t.rsi_14 '
    'FROM {ohlcv} o '
    'LEFT JOIN {technical} t ON t.ticker = o.ticker AND t.region = o.region AND t.date = o.date '
    # The window again on t: PostgreSQL does not carry ranges across the join's equalities, and
    # TimescaleDB excludes chunks (and the index narrows rows) only from constraints on t itself.
    'AND t.region = {region} AND t.ticker = ANY({tickers}) AND t.date > {start} AND t.date <= {end} '
    'WHERE o.region = {region} AND o.ticker = ANY({tickers}) AND o.date > {start} AND o.date <= {end} '
    'WINDOW w AS (PARTITION BY o.ticker ORDER BY o.date) '
    'ORDER BY o.ticker, o.date')

PORTFOLIO_SQL = (
    'WITH r AS ('
    'SELECT ticker, date, close / NULLIF(lag(close) OVER (PARTITION BY ticker ORDER BY date), 0) - 1 AS ret '
    'FROM {ohlcv} WHERE region = {region} AND ticker = ANY({tickers}) AND date > {start} AND date <= {end}), '
    'm AS (SELECT ticker, avg(ret) AS mean_return FROM r GROUP BY ticker), '
    'c AS (SELECT a.ticker AS ticker_a, b.ticker AS ticker_b, covar_samp(a.ret, b.ret) AS covariance '
    'FROM r a JOIN r b ON b.date = a.date AND b.ticker >= a.ticker GROUP BY a.ticker, b.ticker), '
    'f AS (SELECT ticker, jsonb_object_agg(factor_name, score) AS factors FROM ('
    'SELECT DISTINCT ON (ticker, factor_name) ticker, factor_name, score FROM {factors} '
    'WHERE region = {region} AND ticker = ANY({tickers}) AND date > {start} AND date <= {end} '
    'ORDER BY ticker, factor_name, date DESC) latest GROUP BY ticker) '
    'SELECT c.ticker_a, c.ticker_b, c.covariance, ma.mean_return AS mean_return_a, '
    'mb.mean_return AS mean_return_b, f.factors AS factors_a '
    'FROM c JOIN m ma ON ma.ticker = c.ticker_a JOIN m mb ON mb.ticker = c.ticker_b '
    'LEFT JOIN f ON f.ticker = c.ticker_a '
    'ORDER BY c.ticker_a, c.ticker_b')

# Tickers per region with their number of bars in the longest window: the single ticker (most bars)
# and the backtest/portfolio universes (most bars first, then by name) are chosen from it.
UNIVERSE_SQL = (
    'SELECT region, ticker, count(*) AS bars FROM {ohlcv} '
    'WHERE date > {start} AND date <= {end} GROUP BY region, ticker '
    'ORDER BY bars DESC, region, ticker')

END_DATE_SQL = 'SELECT max(date) AS end_date FROM {ohlcv}'


def years_before(day, years):
    """The same calendar day ``years`` earlier (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def parse_date(text, what='end_date'):
    """A datetime.date from YYYY-MM-DD; ValueError naming the option otherwise."""
    if isinstance(text, datetime.date):
        return text
    try:
        return datetime.datetime.strptime(str(text).strip(), '%Y-%m-%d').date()
    except ValueError:
        raise ValueError('%s must be a date as YYYY-MM-DD, got %r' % (what, text))


def percentile(values, fraction):
    """Percentile by linear interpolation between closest ranks (numpy's default, type 7).

    ``percentile([10, 20, 30, 40], 0.5) == 25.0``; one value is its own every percentile.
    """
    if not values:
        raise ValueError('no values')
    if not 0 <= fraction <= 1:
        raise ValueError('fraction must be within 0 and 1, got %r' % (fraction,))
    ordered = sorted(float(v) for v in values)
    position = (len(ordered) - 1) * fraction
    low = int(math.floor(position))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(times_ms):
    """p50, p95, min, max and mean of the measured runs, in milliseconds rounded to 0.01."""
    return {
        'p50_ms': round(percentile(times_ms, 0.5), 2),
        'p95_ms': round(percentile(times_ms, 0.95), 2),
        'min_ms': round(min(times_ms), 2),
        'max_ms': round(max(times_ms), 2),
        'mean_ms': round(sum(times_ms) / len(times_ms), 2),
    }


def choose_universe(rows, ticker=None, region=None, count=50):
    """From UNIVERSE_SQL's rows: (region, single ticker, first ``count`` tickers of that region).

    Without ``ticker`` the ticker with the most bars (of ``region`` when given) is the single ticker;
    the universe is the tickers of its region with the most bars, ties by name. Raises ValueError when
    nothing matches.
    """
    candidates = [r for r in rows if not region or r['region'] == region]
    if ticker:
        candidates = [r for r in candidates if r['ticker'] == ticker]
        if not candidates:
            raise ValueError('ticker %r%s has no rows in the benchmark window'
                             % (ticker, ' in region %r' % region if region else ''))
    if not candidates:
        raise ValueError('no OHLCV rows%s in the benchmark window' % (' in region %r' % region if region else ''))
    chosen = candidates[0]
    same_region = [r['ticker'] for r in rows if r['region'] == chosen['region']]
    return chosen['region'], chosen['ticker'], same_region[:count]
