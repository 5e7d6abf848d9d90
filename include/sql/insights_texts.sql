-- The reviews of one alerted key (a product, class or department) over D's window, for its terms.
--
-- D's predicted-negative reviews are compared with the key's baseline reviews (weighted log-odds,
-- reviewflow.insights.terms); only the alerted keys' text leaves the engine, at most 20,000 rows
-- (the newest first), so a big class costs a bounded read.
--
-- Bound values (qmark, in order): 1. level (product | class_name | department_name)
-- 2. window start  3. D  4. window start  5. D  6. key.
-- Identifiers: {database}.{predictions}, {database}.{curated}; {missing} comes from reviewflow.contract.
SELECT review_id, dt, title, review_text, sentiment_pred, p_negative
FROM (
    SELECT
        p.review_id,
        p.dt,
        c.title,
        c.review_text,
        p.sentiment_pred,
        p.p_negative,
        CASE ?
            WHEN 'product' THEN CAST(c.clothing_id AS VARCHAR)
            WHEN 'class_name' THEN COALESCE(NULLIF(TRIM(c.class_name), ''), {missing})
            ELSE COALESCE(NULLIF(TRIM(c.department_name), ''), {missing})
        END AS key
    FROM {database}.{predictions} p
    JOIN {database}.{curated} c ON c.review_id = p.review_id AND c.dt = p.dt
    WHERE p.dt >= ? AND p.dt <= ? AND c.dt >= ? AND c.dt <= ?
) scoped
WHERE key = ?
ORDER BY dt DESC, review_id
LIMIT 20000
