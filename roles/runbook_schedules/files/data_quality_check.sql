-- Installed by quantops.platform.runbook_schedules; run by quantops-data-quality.service.
-- Seed 002 "PostgreSQL Operations Guide" > Data Quality Management: the seed's
-- duplicate-record and price-anomaly queries, read-only.  Prints what it finds
-- (to the journal) and ends with an error - so the unit fails - when a duplicate
-- (ticker, region, date) or an OHLC invariant violation exists.  The deeper
-- checks (missing trading days against exchange calendars, z-score outliers)
-- are the ohlcv_data_quality module's, run from the controller.
\set ON_ERROR_STOP 1
\echo 'Duplicate records (seed 002 "Duplicate Record Detection")'
SELECT ticker, region, date, count(*) AS duplicates
FROM ohlcv_data
GROUP BY ticker, region, date
HAVING count(*) > 1
ORDER BY duplicates DESC, ticker, region, date
LIMIT 50;

\echo 'OHLC invariant violations (seed 002 "Price Anomaly Detection": high < low, close outside [low, high], volume < 0)'
SELECT ticker, region, date, open, high, low, close, volume
FROM ohlcv_data
WHERE high < low OR close > high OR close < low OR open > high OR open < low OR volume < 0
ORDER BY date DESC
LIMIT 50;

DO $$
DECLARE
    dup bigint;
    bad bigint;
BEGIN
    SELECT count(*) INTO dup FROM (
        SELECT 1 FROM ohlcv_data GROUP BY ticker, region, date HAVING count(*) > 1
    ) AS d;
    SELECT count(*) INTO bad FROM ohlcv_data
    WHERE high < low OR close > high OR close < low OR open > high OR open < low OR volume < 0;
    IF dup > 0 OR bad > 0 THEN
        RAISE EXCEPTION 'data quality check failed: % duplicated (ticker, region, date), % OHLC invariant violations', dup, bad;
    END IF;
    RAISE NOTICE 'data quality check passed: no duplicates, no OHLC invariant violations';
END
$$;
