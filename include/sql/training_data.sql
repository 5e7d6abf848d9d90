-- Training rows for a run date: every curated review in partitions up to and including it.
-- Portable between DuckDB and Athena/Trino; the date is bound as a qmark parameter.
SELECT
    review_id,
    clothing_id,
    age,
    title,
    review_text,
    rating,
    sentiment,
    division_name,
    department_name,
    class_name,
    dt
FROM {database}.{table}
WHERE dt <= ?
ORDER BY dt, review_id
