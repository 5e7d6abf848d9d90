"""A real scheduler backfills history: 30 days of reviews_ingest, then a week of scoring; twice.

As in production, the DAGs went live recently (start_date yesterday, so the scheduler's own
catchup is one run) and are unpaused; the backfills cover dates long before that.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from datetime import date, timedelta

import pandas as pd
import pytest

from reviewflow import sample_data
from reviewflow.airflow_api import AirflowAPI
from reviewflow.config import PROJECT_ROOT
from reviewflow.lake import LocalLake, read_parquet

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
START, DAYS = date(2024, 1, 1), 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def airflow_stack(tmp_path_factory):
    """Airflow (API server, scheduler, dag processor, triggerer) as `make run` starts it."""
    home = tmp_path_factory.mktemp("airflow-home")
    lake = tmp_path_factory.mktemp("lake")
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_PORT": str(port),
        "REVIEWFLOW_LAKE": str(lake),
        "REVIEWFLOW_START_DATE": (date.today() - timedelta(days=1)).isoformat(),
    }
    env.pop("REVIEWFLOW_NO_AIRFLOW_VARIABLES", None)
    subprocess.run(["bash", "scripts/start_airflow.sh"], cwd=PROJECT_ROOT, env=env, check=True, timeout=600)
    try:
        yield AirflowAPI.for_standalone(str(home), f"http://127.0.0.1:{port}"), str(lake)
    finally:
        subprocess.run(["bash", "scripts/stop.sh"], cwd=PROJECT_ROOT, env=env, timeout=120)


def curated_fingerprint(lake: LocalLake) -> dict[str, str]:
    """A hash of each day's curated rows (ingest_run names the run, so it is left out)."""
    out = {}
    for day in range(DAYS):
        dt = (START + timedelta(days=day)).isoformat()
        frame = read_parquet(lake, f"curated/reviews/dt={dt}/part-0.parquet").drop(columns="ingest_run")
        out[dt] = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    return out


def test_backfill_30_days_twice_is_idempotent(airflow_stack):
    api, lake_root = airflow_stack
    sample_data.write_landing(lake_root, days=DAYS, rows_per_day=40, start=START.isoformat(), seed=3, dirty_share=0.05)
    lake = LocalLake(lake_root)
    dates = {(START + timedelta(days=d)).isoformat() for d in range(DAYS)}
    end = (START + timedelta(days=DAYS - 1)).isoformat()
    api.wait_for_dag("reviews_ingest")
    api.set_paused("reviews_ingest", False)  # backfill runs of a paused DAG wait for it to be unpaused

    api.backfill("reviews_ingest", START.isoformat(), end, reprocess="none")
    first_runs = api.wait_for_dates("reviews_ingest", dates, timeout=1500)
    first = curated_fingerprint(lake)

    api.backfill("reviews_ingest", START.isoformat(), end, reprocess="completed")
    since = max(r["queued_at"] for r in first_runs)
    api.wait_for_dates("reviews_ingest", dates, since=since, timeout=1500)
    assert curated_fingerprint(lake) == first
    for dt in sorted(dates):
        assert lake.list(f"curated/reviews/dt={dt}/") == [f"curated/reviews/dt={dt}/part-0.parquet"]
