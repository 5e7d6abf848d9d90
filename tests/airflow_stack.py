"""A real Airflow for integration tests: API server, scheduler, dag processor and triggerer.

Started by scripts/start_airflow.sh as `make run` starts it, on a PostgreSQL metadata DB (Airflow
refuses backfills on SQLite under concurrent access), with its own home, lake and free port.

Use it from a test module: ``from airflow_stack import airflow_stack_fixture`` registers the
module-scoped fixture ``airflow_stack``, yielding ``(api, lake_root)``. A module may set
``AIRFLOW_STACK_ENV = {...}``: more environment for every Airflow process (e.g.
``REVIEWFLOW_START_DATE``, ``REVIEWFLOW_TRAIN_BERT``).
"""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import date, timedelta

import pytest

from reviewflow.config import PROJECT_ROOT
from tools.airflow_api import AirflowAPI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", name="airflow_stack")
def airflow_stack_fixture(request, tmp_path_factory, postgres_database):
    """Airflow (API server, scheduler, dag processor, triggerer) as `make run` starts it: (api, lake_root).

    By default the DAGs went live yesterday (REVIEWFLOW_START_DATE), so a nightly DAG's own
    catchup is one run.
    """
    home = tmp_path_factory.mktemp("airflow-home")
    lake = tmp_path_factory.mktemp("lake")
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_PORT": str(port),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres_database,
        "REVIEWFLOW_LAKE": str(lake),
        "REVIEWFLOW_START_DATE": (date.today() - timedelta(days=1)).isoformat(),
        **getattr(request.module, "AIRFLOW_STACK_ENV", {}),
    }
    env.pop("REVIEWFLOW_NO_AIRFLOW_VARIABLES", None)
    subprocess.run(["bash", "scripts/start_airflow.sh"], cwd=PROJECT_ROOT, env=env, check=True, timeout=600)
    try:
        yield AirflowAPI.for_standalone(str(home), f"http://127.0.0.1:{port}"), str(lake)
    finally:
        subprocess.run(["bash", "scripts/stop.sh"], cwd=PROJECT_ROOT, env=env, timeout=120)
