"""Airflow plugin: reviewflow's reports inside the Airflow UI, behind Airflow's login.

A FastAPI app mounted by the API server at ``/reviewflow`` (reviewflow.ui.app) and two external
views (reviewflow.ui.views): a "reviewflow" page in the navigation and a "reviewflow report" tab
on each DAG run. Every Airflow process imports this file (the plugin manager loads every plugin
module): the app is built only when the API server asks for ``fastapi_apps``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from reviewflow.ui.views import EXTERNAL_VIEWS


class ReviewflowUIPlugin(AirflowPlugin):
    name = "reviewflow_ui"
    external_views = EXTERNAL_VIEWS

    @property
    def fastapi_apps(self) -> list[dict]:  # type: ignore[override]
        from reviewflow.ui.app import app_entry

        return [app_entry()]
