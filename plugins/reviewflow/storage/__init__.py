"""Storage seams, one per concern: the lake (local folder or S3), the catalog (DuckDB or Glue), the SQL engine (DuckDB or Athena)."""
