"""Alerts: one record for every kind (record), one JSON-lines file per date (store), the findings of
each stage turned into alerts (sources), one digest per DAG run through an Airflow notifier (digest),
and the task-side entry points the DAGs and the failure callback call (tasks)."""
