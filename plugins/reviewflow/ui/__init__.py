"""The Airflow UI plugin's web app: lake reports behind Airflow's login (views, run dates, offline Data Docs assets)."""
