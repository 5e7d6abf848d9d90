"""The view registry: where reviewflow's pages appear in the Airflow UI (pure data, cheap to import).

Airflow 3.1+ ``external_views`` with a ``url_route`` render ``href`` in an iframe of the UI. The
hrefs are relative (no leading slash): the UI's ``<base href>`` is the API server's base URL, so
they resolve under any base URL or reverse-proxy prefix. One ``dag_run`` view serves every
reviewflow DAG (the app picks the page by ``{DAG_ID}``; the UI shows the tab on every DAG's runs).
"""

from __future__ import annotations

URL_PREFIX = "/reviewflow"  # where the API server mounts the app
APP_NAME = "reviewflow"

EXTERNAL_VIEWS = [
    {
        "name": "reviewflow",
        "href": f"{URL_PREFIX.lstrip('/')}/",
        "destination": "nav",
        "url_route": "reviewflow",
    },
    {
        "name": "reviewflow report",
        "href": f"{URL_PREFIX.lstrip('/')}/runs/{{DAG_ID}}/{{RUN_ID}}",
        "destination": "dag_run",
        "url_route": "reviewflow-run",
    },
]


def run_href(dag_id: str, run_id: str) -> str:
    """The app path (under URL_PREFIX) of a run's view, as the UI fills the template in."""
    from urllib.parse import quote

    return f"{URL_PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"
