"""An empty day through every DAG, each run in a fresh `airflow dags test` process.

Two generated days are ingested by the real `reviews_ingest` DAG; then a third date gets what
ingest writes for a day without a single curated row (a landing file with a header and no rows,
or only quarantined rows): a typed, empty `curated/reviews/dt=D/part-0.parquet`, registered in the
catalog. The bias report, training and scoring DAGs then run for that date and must succeed, and
their outputs must say "no reviews" for it while the history is still reported, trained on and
scored. Outputs are read here with pandas / pyarrow / json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fresh_process import airflow_dags_test

from tools import sample_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAYS = ["2024-06-01", "2024-06-02"]
EMPTY = "2024-06-03"
ROWS_PER_DAY = 300
# Cheap training: a 64-sample, 1-epoch BERT on CPU; a quality floor of 0 so that a champion is
# promoted from these few rows and scoring has a model to run (the gate is tested elsewhere).
TRAINING_ENV = {
    "REVIEWFLOW_BERT_MAX_TRAIN_SAMPLES": "64",
    "REVIEWFLOW_BERT_EPOCHS": "1",
    "REVIEWFLOW_BERT_MAX_MINUTES": "2",
    "REVIEWFLOW_MIN_MACRO_F1": "0",
}
INTEGER_COLUMNS = ["source_row_id", "clothing_id", "age", "rating", "recommended_ind", "positive_feedback_count"]
CURATED_TYPES = {
    "review_id": pa.string(), **dict.fromkeys(INTEGER_COLUMNS, pa.int64()), "title": pa.string(),
    "review_text": pa.string(), "division_name": pa.string(), "department_name": pa.string(),
    "class_name": pa.string(), "sentiment": pa.int64(), "source_file": pa.string(), "source_line": pa.int64(),
    "ingest_run": pa.string(),
}  # fmt: skip
PREDICTION_TYPES = {
    "review_id": pa.string(), "dt": pa.string(), "sentiment_pred": pa.int64(), "p_negative": pa.float64(),
    "p_neutral": pa.float64(), "p_positive": pa.float64(), "confidence": pa.float64(), "model_name": pa.string(),
    "model_version": pa.string(), "scored_at": pa.string(),
}  # fmt: skip
SECONDS: dict[str, float] = {}


def run(dag_id: str, dt: str, env: dict | None = None) -> None:
    started = time.monotonic()
    result = airflow_dags_test(dag_id, dt, env=env)
    SECONDS[f"{dag_id} {dt}"] = round(time.monotonic() - started, 1)
    assert result.ok, f"{dag_id} {dt}: rc={result.returncode} state={result.state}\n{result.output[-6000:]}"


def add_empty_day(lake_root: str, dt: str) -> None:
    """The typed empty partition ingest writes for a day without reviews, registered like curate does."""
    from reviewflow.ingest.curate import curated_columns
    from reviewflow.layout import CURATED_TABLE
    from reviewflow.storage.catalog import get_catalog

    folder = Path(lake_root, "curated", "reviews", f"dt={dt}")
    folder.mkdir(parents=True)
    ingested = pq.read_schema(Path(lake_root, "curated", "reviews", f"dt={DAYS[0]}", "part-0.parquet"))
    # the same columns, in the same order, as a partition ingest wrote (and the contract's types)
    empty = pa.schema([pa.field(name, CURATED_TYPES.get(name, ingested.field(name).type)) for name in ingested.names])
    pq.write_table(empty.empty_table(), folder / "part-0.parquet")
    catalog = get_catalog()
    catalog.register_table(CURATED_TABLE, str(Path(lake_root, "curated", "reviews")), curated_columns(), "parquet")
    catalog.register_partition(CURATED_TABLE, dt)


def read_json(lake_root: str, key: str) -> dict:
    return json.loads(Path(lake_root, key).read_text())


def test_an_empty_day_flows_through_bias_training_and_scoring(airflow_db, lake_root):
    sample_data.write_landing(lake_root, days=2, rows_per_day=ROWS_PER_DAY, start=DAYS[0], seed=21, dirty_share=0.02)
    for dt in DAYS:
        run("reviews_ingest", dt)
    curated = {dt: pd.read_parquet(Path(lake_root, f"curated/reviews/dt={dt}/part-0.parquet")) for dt in DAYS}
    history = sum(len(frame) for frame in curated.values())
    assert all(len(frame) > 0 for frame in curated.values())
    add_empty_day(lake_root, EMPTY)
    empty_file = Path(lake_root, f"curated/reviews/dt={EMPTY}/part-0.parquet")
    assert pq.read_metadata(empty_file).num_rows == 0
    assert pq.read_schema(empty_file).field("review_id").type == pa.string()

    # bias: "no reviews on D" for the day alone, the whole history in the cumulative scope
    run("reviews_bias_report", EMPTY)
    report = read_json(lake_root, f"reports/bias/dt={EMPTY}/bias_report.json")
    assert report["dt"] == EMPTY
    assert report["scopes"]["partition"]["rows"] == 0
    assert report["scopes"]["partition"]["message"] == f"no reviews on {EMPTY}"
    assert report["scopes"]["cumulative"]["rows"] == history
    assert report["metrics"] and {m["scope"] for m in report["metrics"]} == {"cumulative"}
    assert f"No reviews on {EMPTY}" in Path(lake_root, f"reports/bias/dt={EMPTY}/bias_report.html").read_text()

    # training for the empty date: the dataset is the history, and a champion comes out of it
    run("sentiment_training", EMPTY, env=TRAINING_ENV)
    snapshot = read_json(lake_root, f"models/datasets/dt={EMPTY}/data_snapshot.json")
    assert snapshot["dt"] == EMPTY and snapshot["rows"] == history
    assert snapshot["partitions"] == {dt: len(curated[dt]) for dt in DAYS}
    champion = read_json(lake_root, "models/champion.json")
    assert champion["data_snapshot"]["dt"] == EMPTY

    # scoring: the history is scored as usual; the empty date gets empty, typed outputs
    run("sentiment_batch_scoring", EMPTY)
    predictions_file = Path(lake_root, f"predictions/dt={EMPTY}/part-0.parquet")
    written = pq.read_schema(predictions_file)
    assert {f.name: f.type for f in written} == PREDICTION_TYPES and written.names == list(PREDICTION_TYPES)
    assert pq.read_metadata(predictions_file).num_rows == 0
    queue = pd.read_csv(Path(lake_root, f"review_queue/dt={EMPTY}/review_queue.csv"))
    assert queue.empty and {"review_id", "review_text", "label"} <= set(queue.columns)
    drift = read_json(lake_root, f"reports/drift/dt={EMPTY}/drift_report.json")
    assert drift["alerts"] == [] and drift["checks"] == [] and "no reviews" in drift["message"]
    assert "no reviews" in Path(lake_root, f"reports/drift/dt={EMPTY}/drift_report.html").read_text()
    for dt in DAYS:
        scored_file = Path(lake_root, f"predictions/dt={dt}/part-0.parquet")
        assert sorted(pd.read_parquet(scored_file)["review_id"]) == sorted(curated[dt]["review_id"])
        assert pq.read_schema(scored_file).remove_metadata().equals(written.remove_metadata())  # same types
        checks = read_json(lake_root, f"reports/drift/dt={dt}/drift_report.json")["checks"]
        assert {c["check"] for c in checks} >= {"predicted distribution", "out-of-vocabulary share"}
    # the catalog's predictions view reads the empty partition beside the others
    from reviewflow.storage.sql import DuckDBEngine

    counts = DuckDBEngine(lake_root).query("SELECT dt, count(*) AS n FROM reviews.predictions GROUP BY dt ORDER BY dt")
    assert counts["dt"].tolist() == DAYS and counts["n"].tolist() == [len(curated[dt]) for dt in DAYS]
    print("seconds per run:", SECONDS)
