"""reviewflow: nightly review sentiment on Airflow 3 (the domain package; DAGs stay thin)."""
