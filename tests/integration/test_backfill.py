"""A real scheduler backfills history: 10 days of reviews_ingest, then 3 days of scoring; twice.

As in production, the DAGs went live recently (start_date yesterday, so the scheduler's own
catchup is one run) and are unpaused; the backfills cover dates long before that. The metadata
DB is PostgreSQL: Airflow refuses backfills on SQLite under concurrent access (and a scheduler
next to a half-created backfill on SQLite was seen to crash).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from airflow_stack import airflow_stack_fixture  # noqa: F401 - registers the `airflow_stack` fixture

from reviewflow.config import get_settings
from reviewflow.layout import insights_report_keys, model_prefix
from reviewflow.storage.lake import LocalLake, read_parquet
from reviewflow.storage.sql import get_engine
from reviewflow.training.registry import get_version, promote
from reviewflow.training.tasks import evaluate_and_register
from tools import sample_data
from tools.run_pipeline import wait_for_reports

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.services]
# 10 days and 3 scored: enough dates for the backfill's queueing and idempotency (30 + 7 took ~35 min of CI)
START, DAYS = date(2024, 1, 1), 10
SCORED_DAYS = 3  # the scoring backfill covers the last days of that range


def curated_fingerprint(lake: LocalLake) -> dict[str, str]:
    """A hash of each day's curated rows (ingest_run names the run, so it is left out)."""
    out = {}
    for day in range(DAYS):
        dt = (START + timedelta(days=day)).isoformat()
        frame = read_parquet(lake, f"curated/reviews/dt={dt}/part-0.parquet").drop(columns="ingest_run")
        out[dt] = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    return out


def test_backfill_days_twice_is_idempotent(airflow_stack):
    api, lake_root = airflow_stack
    sample_data.write_landing(lake_root, days=DAYS, rows_per_day=40, start=START.isoformat(), seed=3, dirty_share=0.05)
    lake = LocalLake(lake_root)
    dates = {(START + timedelta(days=d)).isoformat() for d in range(DAYS)}
    end = (START + timedelta(days=DAYS - 1)).isoformat()
    api.wait_for_dag("reviews_ingest")
    api.set_paused("reviews_ingest", False)  # backfill runs of a paused DAG wait for it to be unpaused

    api.backfill("reviews_ingest", START.isoformat(), end, reprocess="none")
    api.wait_for_dates("reviews_ingest", dates, timeout=1500)
    first = curated_fingerprint(lake)

    # runs queued after this moment: the last run of the first pass must not count as rerun already
    since = datetime.now(UTC).isoformat()
    api.backfill("reviews_ingest", START.isoformat(), end, reprocess="completed")
    api.wait_for_dates("reviews_ingest", dates, since=since, timeout=1500)
    assert curated_fingerprint(lake) == first
    for dt in sorted(dates):
        assert lake.list(f"curated/reviews/dt={dt}/") == [f"curated/reviews/dt={dt}/part-0.parquet"]


def make_champion(lake: LocalLake, dt: str) -> dict:
    """A TF-IDF champion trained on the backfilled data (sentiment_training's steps, in process)."""
    from reviewflow.training.dataset import build_dataset
    from reviewflow.training.predictor import _entry_point

    built = build_dataset(lake, dt, get_engine())
    version = "backfill-test"
    _entry_point("tfidf").run(built["dataset_uri"], lake.uri(model_prefix("tfidf", version)), grid="quick")
    evaluate_and_register(lake, "tfidf", version, dt, "test", get_settings())
    return promote(lake, get_version(lake, "tfidf", version))


def predictions_fingerprint(lake: LocalLake, dates: list[str]) -> dict[str, str]:
    out = {}
    for dt in dates:
        frame = read_parquet(lake, f"predictions/dt={dt}/part-0.parquet").drop(columns="scored_at")
        out[dt] = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    return out


def test_scoring_backfill_twice_is_idempotent(airflow_stack, monkeypatch):
    """Runs after the ingest backfill (same module stack and lake): the last days scored, twice."""
    api, lake_root = airflow_stack
    monkeypatch.setenv("REVIEWFLOW_LAKE", lake_root)  # make_champion runs here, on the stack's lake
    lake = LocalLake(lake_root)
    end = START + timedelta(days=DAYS - 1)
    first_day = end - timedelta(days=SCORED_DAYS - 1)
    dates = [(first_day + timedelta(days=d)).isoformat() for d in range(SCORED_DAYS)]
    champion = make_champion(lake, end.isoformat())
    api.wait_for_dag("sentiment_batch_scoring")
    api.set_paused("sentiment_batch_scoring", False)
    api.wait_for_dag("review_insights")
    api.set_paused("review_insights", False)  # follows the predictions asset the backfill runs emit
    started = datetime.now(UTC).replace(microsecond=0)

    api.backfill("sentiment_batch_scoring", first_day.isoformat(), end.isoformat(), reprocess="none")
    api.wait_for_dates("sentiment_batch_scoring", set(dates), timeout=1500)
    # every backfilled date gets its insights through the asset chain (events or the catch-up of unreported dates)
    wait_for_reports(api, "review_insights", lambda dt: insights_report_keys(dt)[0], set(dates), started, timeout=900)
    first = predictions_fingerprint(lake, dates)
    for dt in dates:
        frame = read_parquet(lake, f"predictions/dt={dt}/part-0.parquet")
        curated = read_parquet(lake, f"curated/reviews/dt={dt}/part-0.parquet")
        assert sorted(frame["review_id"]) == sorted(curated["review_id"])
        assert (frame["model_version"] == champion["version"]).all()
        assert lake.exists(f"reports/drift/dt={dt}/drift_report.json")

    since = datetime.now(UTC).isoformat()  # (not the first pass's last queued_at: that run counted as rerun at once)
    api.backfill("sentiment_batch_scoring", first_day.isoformat(), end.isoformat(), reprocess="completed")
    api.wait_for_dates("sentiment_batch_scoring", set(dates), since=since, timeout=1500)
    assert predictions_fingerprint(lake, dates) == first
