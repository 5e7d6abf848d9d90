-- Daily predicted-sentiment counts per product, class and department, for the insights of date D.
--
-- One row per (dt, level, key) over the window [D - baseline days, D]: reviews, predicted
-- negatives (sentiment_pred = -1) and the rating sum, from the predictions joined with the curated
-- reviews on (review_id, dt). The test of D against its baseline is done in Python on this table.
--
-- Bound values (qmark, in order): 1. window start  2. D  3. window start  4. D
-- ('YYYY-MM-DD'; dt is a string partition key, so both tables are pruned to the window).
-- Identifiers: {database}.{predictions}, {database}.{curated}; {missing} comes from reviewflow.contract.
-- Common subset of DuckDB and Athena (Trino): CASE sums and CAST, no `::`, no FILTER.
WITH joined AS (
    SELECT
        p.dt,
        CAST(c.clothing_id AS VARCHAR) AS product,
        COALESCE(NULLIF(TRIM(c.class_name), ''), {missing}) AS class_name,
        COALESCE(NULLIF(TRIM(c.department_name), ''), {missing}) AS department_name,
        CASE WHEN p.sentiment_pred = -1 THEN 1 ELSE 0 END AS is_negative,
        CAST(c.rating AS DOUBLE) AS rating
    FROM {database}.{predictions} p
    JOIN {database}.{curated} c ON c.review_id = p.review_id AND c.dt = p.dt
    WHERE p.dt >= ? AND p.dt <= ? AND c.dt >= ? AND c.dt <= ?
      AND c.clothing_id IS NOT NULL
)
SELECT dt, 'product' AS level, product AS key, CAST(COUNT(*) AS BIGINT) AS reviews,
       CAST(SUM(is_negative) AS BIGINT) AS negatives, SUM(rating) AS rating_sum
FROM joined GROUP BY dt, product
UNION ALL
SELECT dt, 'class_name' AS level, class_name AS key, CAST(COUNT(*) AS BIGINT) AS reviews,
       CAST(SUM(is_negative) AS BIGINT) AS negatives, SUM(rating) AS rating_sum
FROM joined GROUP BY dt, class_name
UNION ALL
SELECT dt, 'department_name' AS level, department_name AS key, CAST(COUNT(*) AS BIGINT) AS reviews,
       CAST(SUM(is_negative) AS BIGINT) AS negatives, SUM(rating) AS rating_sum
FROM joined GROUP BY dt, department_name
