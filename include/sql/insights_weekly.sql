-- Weekly predicted-sentiment counts per department and class over the whole history up to D.
--
-- Weeks start on Monday (date_trunc('week', ...) in DuckDB and Trino alike). The market-trend
-- charts and the largest movers of the insights report are computed from this small table.
--
-- Bound values (qmark, in order): 1. D  2. D.
-- Identifiers: {database}.{predictions}, {database}.{curated}; {missing} comes from reviewflow.contract.
WITH joined AS (
    SELECT
        CAST(date_trunc('week', CAST(p.dt AS DATE)) AS VARCHAR) AS week,
        COALESCE(NULLIF(TRIM(c.class_name), ''), {missing}) AS class_name,
        COALESCE(NULLIF(TRIM(c.department_name), ''), {missing}) AS department_name,
        p.sentiment_pred
    FROM {database}.{predictions} p
    JOIN {database}.{curated} c ON c.review_id = p.review_id AND c.dt = p.dt
    WHERE p.dt <= ? AND c.dt <= ?
)
SELECT week, 'department_name' AS level, department_name AS key, CAST(COUNT(*) AS BIGINT) AS reviews,
       CAST(SUM(CASE WHEN sentiment_pred = -1 THEN 1 ELSE 0 END) AS BIGINT) AS negatives,
       CAST(SUM(CASE WHEN sentiment_pred = 0 THEN 1 ELSE 0 END) AS BIGINT) AS neutrals,
       CAST(SUM(CASE WHEN sentiment_pred = 1 THEN 1 ELSE 0 END) AS BIGINT) AS positives
FROM joined GROUP BY week, department_name
UNION ALL
SELECT week, 'class_name' AS level, class_name AS key, CAST(COUNT(*) AS BIGINT) AS reviews,
       CAST(SUM(CASE WHEN sentiment_pred = -1 THEN 1 ELSE 0 END) AS BIGINT) AS negatives,
       CAST(SUM(CASE WHEN sentiment_pred = 0 THEN 1 ELSE 0 END) AS BIGINT) AS neutrals,
       CAST(SUM(CASE WHEN sentiment_pred = 1 THEN 1 ELSE 0 END) AS BIGINT) AS positives
FROM joined GROUP BY week, class_name
ORDER BY level, key, week
