-- Derive factor_scores rows that are not there yet (playbooks/lab/load_market_data.yml)
-- Factors are defined in trading days, so only daily series are scored (a
-- series is daily when the median gap between its bars is at most 4
-- calendar days: BTCUSD's monthly bars are left out).
-- momentum_12_1  = close 21 bars ago / close 252 bars ago - 1
-- volatility_60d = sample stddev of the last 60 daily log returns * sqrt(252)
-- score is the raw value; percentile is percent_rank() of the score
-- (ascending) among the tickers of the same region on the same date.
WITH bars AS (
    SELECT DISTINCT ON (ticker, region, date) ticker, region, date, close
    FROM ohlcv_data
    ORDER BY ticker, region, date, created_at
),
daily AS (
    SELECT ticker, region
    FROM (
        SELECT ticker, region,
               date - lag(date) OVER (PARTITION BY ticker, region ORDER BY date) AS gap
        FROM bars
    ) AS gaps
    GROUP BY ticker, region
    HAVING percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) <= 4
),
returns AS (
    SELECT b.ticker, b.region, b.date,
           row_number() OVER w AS n,
           lag(b.close, 21) OVER w AS close_21,
           lag(b.close, 252) OVER w AS close_252,
           CASE WHEN b.close > 0 AND lag(b.close) OVER w > 0
                THEN ln(b.close / lag(b.close) OVER w) END AS log_return
    FROM bars AS b
    JOIN daily USING (ticker, region)
    WINDOW w AS (PARTITION BY b.ticker, b.region ORDER BY b.date)
),
raw AS (
    SELECT ticker, region, date, 'momentum_12_1'::text AS factor_name,
           close_21 / nullif(close_252, 0) - 1 AS score
    FROM returns
    WHERE n > 252
    UNION ALL
    SELECT ticker, region, date, 'volatility_60d', volatility
    FROM (
        SELECT ticker, region, date, n,
               stddev_samp(log_return) OVER (
                   PARTITION BY ticker, region ORDER BY date
                   ROWS BETWEEN 59 PRECEDING AND CURRENT ROW
               ) * sqrt(252::numeric) AS volatility
        FROM returns
    ) AS v
    WHERE n > 60
),
scored AS (
    SELECT ticker, region, date, factor_name, score,
           percent_rank() OVER (PARTITION BY region, date, factor_name ORDER BY score) AS percentile
    FROM raw
    WHERE score IS NOT NULL
)
INSERT INTO factor_scores (ticker, region, date, factor_name, score, percentile)
SELECT s.ticker, s.region, s.date, s.factor_name, s.score, s.percentile
FROM scored AS s
WHERE NOT EXISTS (
    SELECT 1 FROM factor_scores AS f
    WHERE f.ticker = s.ticker AND f.region = s.region
      AND f.date = s.date AND f.factor_name = s.factor_name
)
ORDER BY s.ticker, s.region, s.date, s.factor_name
