-- Derive technical_analysis rows that are not there yet (playbooks/lab/load_market_data.yml)
-- Indicators per bar, in bar order per (ticker, region), from the 20th bar
-- on (SMA 20, Bollinger, RSI 14 and ATR 14 all defined; SMA 50/200 stay
-- NULL until 50/200 bars exist).  RSI 14 is the simple-moving-average
-- variant (Cutler's RSI): average gain and average loss over the last 14
-- close-to-close changes, not Wilder's exponential smoothing; it is 50
-- when there was no change at all.  Bollinger bands: SMA 20 +/- 2
-- population standard deviations of the last 20 closes.  ATR 14: simple
-- average of the last 14 true ranges (the first bar's true range is its
-- high - low).  Duplicate ohlcv rows, if any, count once.
WITH bars AS (
    SELECT DISTINCT ON (ticker, region, date) ticker, region, date, high, low, close
    FROM ohlcv_data
    ORDER BY ticker, region, date, created_at
),
moves AS (
    SELECT ticker, region, date, close,
           row_number() OVER w AS n,
           close - lag(close) OVER w AS change,
           greatest(high - low,
                    abs(high - lag(close) OVER w),
                    abs(low - lag(close) OVER w)) AS true_range
    FROM bars
    WINDOW w AS (PARTITION BY ticker, region ORDER BY date)
),
windows AS (
    SELECT ticker, region, date, n,
           avg(close) OVER (w ROWS BETWEEN 19 PRECEDING AND CURRENT ROW) AS sma_20,
           stddev_pop(close) OVER (w ROWS BETWEEN 19 PRECEDING AND CURRENT ROW) AS sd_20,
           avg(close) OVER (w ROWS BETWEEN 49 PRECEDING AND CURRENT ROW) AS sma_50,
           avg(close) OVER (w ROWS BETWEEN 199 PRECEDING AND CURRENT ROW) AS sma_200,
           avg(greatest(change, 0)) OVER (w ROWS BETWEEN 13 PRECEDING AND CURRENT ROW) AS avg_gain_14,
           avg(greatest(-change, 0)) OVER (w ROWS BETWEEN 13 PRECEDING AND CURRENT ROW) AS avg_loss_14,
           avg(true_range) OVER (w ROWS BETWEEN 13 PRECEDING AND CURRENT ROW) AS atr_14
    FROM moves
    WINDOW w AS (PARTITION BY ticker, region ORDER BY date)
)
INSERT INTO technical_analysis
    (ticker, region, date, sma_20, sma_50, sma_200, rsi_14, bb_upper, bb_middle, bb_lower, atr_14)
SELECT c.ticker, c.region, c.date,
       c.sma_20,
       CASE WHEN c.n >= 50 THEN c.sma_50 END,
       CASE WHEN c.n >= 200 THEN c.sma_200 END,
       CASE WHEN c.avg_gain_14 + c.avg_loss_14 = 0 THEN 50
            ELSE 100 * c.avg_gain_14 / (c.avg_gain_14 + c.avg_loss_14) END,
       c.sma_20 + 2 * c.sd_20,
       c.sma_20,
       c.sma_20 - 2 * c.sd_20,
       c.atr_14
FROM windows AS c
WHERE c.n >= 20
  AND NOT EXISTS (
      SELECT 1 FROM technical_analysis AS t
      WHERE t.ticker = c.ticker AND t.region = c.region AND t.date = c.date
  )
ORDER BY c.ticker, c.region, c.date
