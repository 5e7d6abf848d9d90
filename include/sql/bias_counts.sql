-- Class-imbalance and bias counts for the bias report (reviewflow.bias.metrics).
--
-- One row per observed combination of the facet columns (department, class, division, age
-- band) and the sentiment label, with its row count in the two report scopes:
--   n_cumulative: rows with dt <= D (the curated table as of the report date)
--   n_partition:  rows with dt = D  (that date's partition alone)
-- Only this small table leaves the engine; every metric is computed from its marginals.
--
-- Bound values (qmark, in order): 1. D  2. D   ('YYYY-MM-DD'; dt is a string partition key)
-- Identifiers: {{database}}.{{table}}; {{missing}} and {{age_band}} come from reviewflow.contract.
--
-- Kept to the common subset of DuckDB and Athena (Trino): CASE sums and CAST, no `::`,
-- no FILTER, no DuckDB-only functions. NULL or blank facet values form their own missing value.
WITH scoped AS (
    SELECT
        COALESCE(NULLIF(TRIM(department_name), ''), {missing}) AS department_name,
        COALESCE(NULLIF(TRIM(class_name), ''), {missing}) AS class_name,
        COALESCE(NULLIF(TRIM(division_name), ''), {missing}) AS division_name,
        {age_band} AS age_band,
        CAST(sentiment AS INTEGER) AS label_value,
        CASE WHEN dt = ? THEN 1 ELSE 0 END AS in_partition
    FROM {database}.{table}
    WHERE dt <= ?
)
SELECT
    department_name,
    class_name,
    division_name,
    age_band,
    label_value,
    CAST(COUNT(*) AS BIGINT) AS n_cumulative,
    CAST(SUM(in_partition) AS BIGINT) AS n_partition
FROM scoped
GROUP BY department_name, class_name, division_name, age_band, label_value
ORDER BY department_name, class_name, division_name, age_band, label_value
