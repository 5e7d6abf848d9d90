"""Airflow glue shared by the DAGs: assets, default args and fail-fast errors, the GPU training operators."""
