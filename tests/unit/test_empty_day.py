"""An empty day is an empty day, never an error: a date whose curated partition has no rows.

Ingest gives such a date (a landing file with a header and no rows, or only quarantined rows) a
typed empty partition ``curated/reviews/dt=D/part-0.parquet``: the curated schema, zero rows,
registered in the catalog. Here it is built by hand next to normal days, and every stage that
reads it (scoring, drift, the bias report, the training dataset) must treat it as a day with no
reviews. tests/integration/test_empty_day.py runs the same through the DAGs in fresh processes.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reviewflow import contract, layout
from reviewflow.bias import tasks as bias_tasks
from reviewflow.config import get_settings
from reviewflow.ingest import curate
from reviewflow.layout import model_prefix
from reviewflow.scoring import drift
from reviewflow.scoring.score import PREDICTION_COLUMNS, score_partition, unscored_partitions
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.lake import LocalLake, read_json, write_json, write_parquet
from reviewflow.storage.sql import DuckDBEngine
from tools import sample_data

DAYS = ["2024-06-01", "2024-06-02"]
EMPTY = "2024-06-03"
ROWS = 300


def curated_schema() -> pa.Schema:
    """The curated partition's types: review_id and text columns string, the integer columns int64."""
    columns = list(contract.CURATED_COLUMNS)
    if "source_line" not in columns:  # ingest adds it (int64); an older partition may lack it
        columns.append("source_line")
    integers = {*contract.INTEGER_COLUMNS, "sentiment", "source_line"}
    return pa.schema([pa.field(c, pa.int64() if c in integers else pa.string()) for c in columns])


def register(lake_root: str, dt: str) -> None:
    catalog = DuckDBCatalog(lake_root)
    catalog.register_table(layout.CURATED_TABLE, f"{lake_root}/curated/reviews", curate.curated_columns(), "parquet")
    catalog.register_partition(layout.CURATED_TABLE, dt)


def add_empty_partition(lake_root: str, dt: str) -> None:
    """What ingest writes for a date without a single curated row: typed, zero rows, registered."""
    buf = io.BytesIO()
    pq.write_table(curated_schema().empty_table(), buf)
    LocalLake(lake_root).write_bytes(f"{layout.CURATED}/dt={dt}/part-0.parquet", buf.getvalue())
    register(lake_root, dt)


def curated_rows(n: int, seed: int, source_file: str) -> pd.DataFrame:
    """Generated reviews in the curated shape and types (what ingest writes for a clean file)."""
    raw = sample_data.generate_reviews(n, seed=seed, start_index=seed * 100_000)
    raw.columns = [contract.snake_case(c) for c in raw.columns]
    frame = pd.DataFrame({"review_id": [f"{source_file}:{i}" for i in raw["source_row_id"]]})
    for column in contract.REQUIRED_COLUMNS:
        frame[column] = raw[column].astype("int64" if column in contract.INTEGER_COLUMNS else str).to_numpy()
    frame["sentiment"] = frame["rating"].map(contract.sentiment_from_rating).astype("int64")
    frame["source_file"], frame["ingest_run"] = source_file, "test-run"
    frame["source_line"] = np.arange(2, n + 2, dtype="int64")
    return frame[curated_schema().names]


def add_normal_day(lake_root: str, dt: str, seed: int) -> pd.DataFrame:
    frame = curated_rows(ROWS, seed, f"reviews-{dt}.csv")
    write_parquet(LocalLake(lake_root), f"{layout.CURATED}/dt={dt}/part-0.parquet", frame)
    register(lake_root, dt)
    return frame


@pytest.fixture
def lake_with_an_empty_day(lake_root) -> str:
    for i, dt in enumerate(DAYS):
        add_normal_day(lake_root, dt, seed=i + 1)
    add_empty_partition(lake_root, EMPTY)
    return lake_root


def uniform(texts: list[str]) -> np.ndarray:
    """A stand-in model: (n, 3) probabilities; never called with rows on an empty day."""
    return np.tile([0.2, 0.3, 0.5], (len(texts), 1))


def test_the_constructed_partition_is_typed_and_empty(lake_with_an_empty_day):
    path = LocalLake(lake_with_an_empty_day).path(f"curated/reviews/dt={EMPTY}/part-0.parquet")
    assert pq.read_metadata(path).num_rows == 0
    assert pq.read_schema(path).field("review_id").type == pa.string()
    assert pq.read_schema(path).field("rating").type == pa.int64()
    assert EMPTY in DuckDBCatalog(lake_with_an_empty_day).partitions(layout.CURATED_TABLE)


def test_scoring_an_empty_day_writes_typed_empty_predictions_and_an_empty_queue(lake_with_an_empty_day):
    root = lake_with_an_empty_day
    lake, catalog = LocalLake(root), DuckDBCatalog(root)
    assert unscored_partitions(catalog, EMPTY) == [*DAYS, EMPTY]  # the empty day is planned like any other
    model = {"model_name": "tfidf", "version": "v1"}
    full = score_partition(lake, catalog, DAYS[0], uniform, model, queue_threshold=0.6)
    summary = score_partition(lake, catalog, EMPTY, uniform, model, queue_threshold=0.6)

    assert summary["rows"] == 0 and summary["queued_for_review"] == 0 and summary["predicted_shares"] == {}
    key = f"predictions/dt={EMPTY}/part-0.parquet"
    assert lake.list(f"predictions/dt={EMPTY}/") == [key]
    written = pq.read_schema(lake.path(key))
    full_schema = pq.read_schema(lake.path(f"predictions/dt={DAYS[0]}/part-0.parquet"))
    assert written.names == list(PREDICTION_COLUMNS)
    expected = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}
    assert {f.name: f.type for f in written} == {c: expected[t] for c, t in PREDICTION_COLUMNS.items()}
    assert written.remove_metadata().equals(full_schema.remove_metadata())  # same types as a normal day
    assert pq.read_metadata(lake.path(key)).num_rows == 0

    queue = pd.read_csv(lake.path(f"review_queue/dt={EMPTY}/review_queue.csv"))
    assert queue.empty and {"review_id", "review_text", "label"} <= set(queue.columns)
    assert catalog.partitions("predictions") == [DAYS[0], EMPTY]
    counts = DuckDBEngine(root).query("SELECT dt, count(*) AS n FROM reviews.predictions GROUP BY dt ORDER BY dt")
    assert counts["dt"].tolist() == [DAYS[0]] and counts["n"].tolist() == [full["rows"]]
    # a rerun of the empty day rewrites the same empty outputs
    score_partition(lake, catalog, EMPTY, uniform, model, queue_threshold=0.6)
    assert lake.list(f"predictions/dt={EMPTY}/") == [key]


def test_drift_of_an_empty_day_says_no_reviews_without_psi_or_alerts(lake_with_an_empty_day):
    root = lake_with_an_empty_day
    lake, catalog = LocalLake(root), DuckDBCatalog(root)
    champion = {"model_name": "tfidf", "version": "v1", "kind": "tfidf"}
    write_json(lake, "models/champion.json", champion)
    # the champion's reference, cached as the drift_reference task leaves it
    base = sample_data.generate_reviews(1000, seed=42)
    reference = drift.reference_profile(
        base["Review Text"], base["Rating"].astype(int).map(contract.sentiment_from_rating), base["Department Name"]
    )
    write_json(lake, model_prefix("tfidf", "v1") + layout.DRIFT_REFERENCE, reference)
    score_partition(lake, catalog, EMPTY, uniform, champion, queue_threshold=0.6)

    report = drift.drift_report(lake, EMPTY, get_settings())
    assert report["alerts"] == [] and report["checks"] == [] and report["rows"] == 0
    assert "no reviews" in report["message"]
    saved = read_json(lake, f"reports/drift/dt={EMPTY}/drift_report.json")
    assert saved["alerts"] == [] and saved["no_reviews"] is True and "no reviews" in saved["message"]
    assert "no reviews on " + EMPTY in lake.read_bytes(f"reports/drift/dt={EMPTY}/drift_report.html").decode()


def test_bias_report_of_an_empty_day_says_no_reviews_and_keeps_the_cumulative_part(lake_with_an_empty_day):
    root = lake_with_an_empty_day
    summary = bias_tasks.run_bias_report(EMPTY, get_settings(), LocalLake(root), DuckDBEngine(root))
    assert summary["rows"] == {"cumulative": 2 * ROWS, "partition": 0}
    report = read_json(LocalLake(root), f"reports/bias/dt={EMPTY}/bias_report.json")
    assert report["scopes"]["partition"]["rows"] == 0
    assert report["scopes"]["partition"]["message"] == f"no reviews on {EMPTY}"
    assert "message" not in report["scopes"]["cumulative"]
    scopes = {m["scope"] for m in report["metrics"]}
    assert scopes == {"cumulative"}  # no metric on an empty day, every metric on the history
    assert report["label_distribution"]["cumulative"]["overall"]["n"] == 2 * ROWS
    assert all(a["scope"] == "cumulative" for a in report["alerts"])
    page = LocalLake(root).read_bytes(f"reports/bias/dt={EMPTY}/bias_report.html").decode()
    assert f"No reviews on {EMPTY}" in page and "data:image/png;base64," in page


def test_training_dataset_with_an_empty_latest_day_is_the_history(lake_with_an_empty_day):
    from reviewflow.training.dataset import build_dataset

    built = build_dataset(LocalLake(lake_with_an_empty_day), EMPTY, DuckDBEngine(lake_with_an_empty_day))
    snapshot = built["snapshot"]
    assert snapshot["dt"] == EMPTY and snapshot["rows"] == 2 * ROWS
    assert snapshot["partitions"] == dict.fromkeys(DAYS, ROWS)
    assert set(snapshot["splits"]) == {"train", "validation", "test"}
