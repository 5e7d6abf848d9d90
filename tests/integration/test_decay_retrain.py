"""Scheduling by data, under a real scheduler: new curated data -> scoring -> decay -> retraining.

The lake holds a TF-IDF champion and four curated days whose last two have shuffled truth (the
planted decay of test_realised_quality_dag). Nothing runs by the clock (the DAGs went live today,
so neither nightly cron is due): a `curated_reviews` event, as an upstream producer sends it,
must start `sentiment_batch_scoring`; its realised quality must flag the decay and emit
`model_decay`; that event must start an `asset_triggered` run of `sentiment_training` for the
decayed date. A repeated trigger (a `champion_model` event) then scores nothing and emits no
second `predictions` event.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from airflow_stack import airflow_stack_fixture  # noqa: F401 - registers the `airflow_stack` fixture
from scored_lake import CURATED, curated_frame
from test_realised_quality_dag import DATES, ROWS, SHUFFLED, champion_in_registry

from reviewflow import layout
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.lake import LocalLake, read_json, read_parquet, write_parquet
from reviewflow.training.registry import version_for
from tools import sample_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.services]
DECAYED = DATES[-1]
# No cron run today (the first nightly intervals end tomorrow): every run here comes from an
# asset event. No BERT fine-tune in a decay-triggered run (it takes the DAG's param defaults).
AIRFLOW_STACK_ENV = {"REVIEWFLOW_START_DATE": datetime.now(UTC).date().isoformat(), "REVIEWFLOW_TRAIN_BERT": "0"}


def plant_decay(root: str) -> dict:
    lake, catalog = LocalLake(root), DuckDBCatalog(root)
    champion = champion_in_registry(lake)
    rng = np.random.default_rng(5)
    for i, dt in enumerate(DATES):
        frame = curated_frame(sample_data.generate_reviews(ROWS, seed=40 + i, start_index=(40 + i) * 10_000), dt)
        if dt in SHUFFLED:  # the ratings no longer say what the text says
            frame["sentiment"] = rng.permutation(frame["sentiment"].to_numpy())
        write_parquet(lake, layout.curated_key(dt), frame)
        catalog.register_table(layout.CURATED_TABLE, lake.uri(layout.CURATED), CURATED, "parquet")
        catalog.register_partition(layout.CURATED_TABLE, dt)
    return champion


def wait_for_new_runs(api, dag_id: str, before: list[dict], timeout: float = 900) -> list[dict]:
    """Wait until the DAG has a run that is not in `before` and none is queued or running: the new runs.

    Fails at once when one failed.
    """
    known = {r["dag_run_id"] for r in before}
    deadline = time.monotonic() + timeout
    while True:
        runs = api.runs(dag_id)
        if failed := [r["dag_run_id"] for r in runs if r["state"] == "failed"]:
            raise AssertionError(f"{dag_id}: run(s) failed: {failed}")
        new = [r for r in runs if r["dag_run_id"] not in known]
        if new and all(r["state"] == "success" for r in new) and not api.queued_asset_events(dag_id):
            return sorted(new, key=lambda r: r["queued_at"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dag_id}: {[(r['dag_run_id'], r['state']) for r in runs]} after {timeout}s")
        time.sleep(5)


def extra_of(event: dict) -> dict:
    extra = event.get("extra") or {}
    return extra if isinstance(extra, dict) else json.loads(extra)


def test_a_decay_found_by_scoring_triggers_retraining_for_the_decayed_date(airflow_stack, monkeypatch):
    api, root = airflow_stack
    monkeypatch.setenv("REVIEWFLOW_LAKE", root)
    lake = LocalLake(root)
    champion = plant_decay(root)
    for dag_id in ("sentiment_training", "sentiment_batch_scoring"):
        api.wait_for_dag(dag_id)
        api.set_paused(dag_id, False)  # asset events only queue runs of unpaused DAGs
    assert api.runs("sentiment_batch_scoring") == [] and api.runs("sentiment_training") == []

    # 1. new curated data (as reviews_ingest announces it) -> scoring, by the asset alone
    api.emit_asset_event("curated_reviews", {"dt": DECAYED, "rows": ROWS})
    (scoring,) = wait_for_new_runs(api, "sentiment_batch_scoring", [])
    assert scoring["run_type"] == "asset_triggered" and scoring["logical_date"] is None, scoring
    for dt in DATES:  # plan: every unscored curated date up to the event's date
        frame = read_parquet(lake, layout.predictions_key(dt))
        assert len(frame) == ROWS and set(frame["model_version"]) == {champion["version"]}, dt
    records = [json.loads(x) for x in lake.read_bytes(f"reports/alerts/dt={DECAYED}/alerts.jsonl").splitlines()]
    assert [r["severity"] for r in records if r["kind"] == "realised_quality"] == ["critical"], records
    decay_events = api.asset_events("model_decay")
    assert len(decay_events) == 1 and extra_of(decay_events[0])["dt"] == DECAYED, decay_events
    predictions_events = len(api.asset_events("predictions"))
    assert predictions_events == len(DATES)  # one per scored date (drift's outlet)

    # 2. the model_decay event -> an asset-triggered training run for the decayed date
    (training,) = wait_for_new_runs(api, "sentiment_training", [], timeout=1200)
    assert training["run_type"] == "asset_triggered" and training["logical_date"] is None, training
    consumed = api.triggering_events("sentiment_training", training["dag_run_id"])
    assert [(e["name"], extra_of(e)["dt"]) for e in consumed] == [("model_decay", DECAYED)], consumed
    snapshot = read_json(lake, f"models/datasets/dt={DECAYED}/data_snapshot.json")
    assert snapshot["dt"] == DECAYED and snapshot["rows"] == ROWS * len(DATES), snapshot  # curated dt <= D
    version = version_for(DECAYED, training["dag_run_id"])
    assert lake.exists(layout.model_prefix("tfidf", version) + "model.joblib"), lake.list("models/tfidf/")
    # its decision alerts belong to D too (Airflow gave the run no ds: dag_defaults.with_run_date)
    assert lake.exists(f"reports/alerts/dt={DECAYED}/sentiment_training.jsonl"), lake.list("reports/alerts/")
    ti = {t["task_id"]: t["state"] for t in api.task_instances("sentiment_training", training["dag_run_id"])}
    assert ti["train_tfidf"] == "success" and ti["train_bert"] == "skipped", ti  # REVIEWFLOW_TRAIN_BERT=0

    # 3. a repeated trigger for dates already scored (a champion_model event) is a no-op
    scored_at = {dt: read_parquet(lake, layout.predictions_key(dt))["scored_at"].max() for dt in DATES}
    api.wait_idle("sentiment_batch_scoring")  # a run the retrain's promotion (if any) started
    before = api.runs("sentiment_batch_scoring")
    api.emit_asset_event("champion_model", {})
    for run in [r for r in before if r["dag_run_id"] != scoring["dag_run_id"]] + wait_for_new_runs(
        api, "sentiment_batch_scoring", before
    ):
        assert run["run_type"] == "asset_triggered", run
        states = {(t["task_id"], t.get("map_index", -1)): t["state"]
                  for t in api.task_instances("sentiment_batch_scoring", run["dag_run_id"])}  # fmt: skip
        assert not [k for k, s in states.items() if k[0] == "score" and s == "success"], states
    assert len(api.asset_events("predictions")) == predictions_events
    assert {dt: read_parquet(lake, layout.predictions_key(dt))["scored_at"].max() for dt in DATES} == scored_at
