"""Scoring, the review queue, human labels and drift, on generated curated partitions."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from reviewflow.ingest.crawl import crawl_partition
from reviewflow.ingest.curate import curate_partition
from reviewflow.ingest.validate import validate_file
from reviewflow.layout import LABELS_KEY
from reviewflow.scoring import drift
from reviewflow.scoring.labels import collect_labels
from reviewflow.scoring.score import PREDICTION_COLUMNS, review_texts, score_partition, unscored_partitions
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.lake import LocalLake, read_parquet, write_parquet
from reviewflow.training.predictor import _entry_point, explain_module, load_predictor
from tools import sample_data

DT = "2024-04-01"


def curate_day(lake: LocalLake, dt: str, rows: int, seed: int) -> pd.DataFrame:
    frame = sample_data.generate_reviews(rows, seed=seed, start_index=seed * 100_000)
    lake.write_bytes(f"landing/reviews/dt={dt}/day.csv", sample_data.to_csv_bytes(frame))
    catalog = DuckDBCatalog(lake.root)
    reports = [validate_file(lake, m) for m in crawl_partition(lake, catalog, dt)]
    curate_partition(lake, catalog, dt, reports, "run")
    return read_parquet(lake, f"curated/reviews/dt={dt}/part-0.parquet")


@pytest.fixture
def model():
    """A real (small) sklearn sentiment model trained on generated reviews."""
    train = sample_data.generate_reviews(1500, seed=99)
    train = train.rename(columns={"Title": "title", "Review Text": "review_text"})
    labels = train["Rating"].astype(int).map(lambda r: -1 if r <= 2 else 0 if r == 3 else 1)
    pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2), LogisticRegression(max_iter=500))
    pipeline.fit(review_texts(train), labels)
    return pipeline


def test_score_partition_writes_contract_columns_and_queue(lake_root, model):
    lake = LocalLake(lake_root)
    curated = curate_day(lake, DT, 400, seed=1)
    catalog = DuckDBCatalog(lake_root)
    entry = {"model_name": "tfidf", "version": "v1"}
    summary = score_partition(lake, catalog, DT, model.predict_proba, entry, queue_threshold=0.6)

    predictions = read_parquet(lake, f"predictions/dt={DT}/part-0.parquet")
    assert summary["rows"] == len(curated) == len(predictions)
    assert list(predictions.columns) == list(PREDICTION_COLUMNS)
    assert set(predictions["review_id"]) == set(curated["review_id"])
    assert set(predictions["sentiment_pred"]) <= {-1, 0, 1}
    probs = predictions[["p_negative", "p_neutral", "p_positive"]].sum(axis=1)
    assert probs.round(6).eq(1).all()
    assert (predictions["confidence"] == predictions[["p_negative", "p_neutral", "p_positive"]].max(axis=1)).all()
    assert catalog.partitions("predictions") == [DT]

    queue = pd.read_csv(lake.path(f"review_queue/dt={DT}/review_queue.csv"))
    assert summary["queued_for_review"] == len(queue) == int((predictions["confidence"] < 0.6).sum())
    assert {"review_id", "review_text", "label"} <= set(queue.columns)

    # a rerun rewrites the date: same rows, same predictions
    score_partition(lake, catalog, DT, model.predict_proba, entry, queue_threshold=0.6)
    again = read_parquet(lake, f"predictions/dt={DT}/part-0.parquet")
    pd.testing.assert_frame_equal(predictions.drop(columns="scored_at"), again.drop(columns="scored_at"))
    assert unscored_partitions(catalog, DT) == [DT]


@pytest.fixture(scope="module")
def tfidf_entry(tmp_path_factory) -> dict:
    """A registry entry for a model trained by include/models/tfidf.py (quick grid) on other generated days."""
    from reviewflow import contract
    from reviewflow.ingest import curate
    from reviewflow.training.dataset import assemble

    raw = sample_data.generate_reviews(1200, seed=41, start_index=4_100_000)
    raw.columns = [contract.snake_case(c) for c in raw.columns]
    frame = assemble(curate.to_curated(raw, "day.csv", "test-run").assign(dt="2024-03-01"), None)
    path = tmp_path_factory.mktemp("dataset") / "dataset.parquet"
    frame.to_parquet(path, index=False)
    out = tmp_path_factory.mktemp("tfidf") / "model"
    _entry_point("tfidf").run(str(path), str(out), grid="quick")
    return {"kind": "tfidf", "model_uri": str(out), "model_name": "tfidf", "version": "v1"}


REASON = re.compile(r"^(?P<term>.+) \((?P<value>[+-]\d+\.\d{2})\)$")


def test_the_review_queue_carries_the_reasons_and_round_trips_into_labels(lake_root, tfidf_entry):
    lake = LocalLake(lake_root)
    curated = curate_day(lake, DT, 400, seed=3)
    catalog = DuckDBCatalog(lake_root)
    predict = load_predictor(tfidf_entry)
    summary = score_partition(lake, catalog, DT, predict, tfidf_entry, queue_threshold=0.6, explain_top=3)
    raw = lake.read_bytes(f"review_queue/dt={DT}/review_queue.csv")
    queue = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    assert summary["queued_for_review"] == len(queue) >= 20
    assert list(queue.columns) == ["review_id", "review_text", "sentiment_pred", "confidence", "reasons",
                                   "model_name", "model_version", "label"]  # fmt: skip
    assert (queue["reasons"] != "").all()
    # the same reasons as explain.py gives for that row's text and predicted class
    pipeline = _entry_point("tfidf").load_model(tfidf_entry["model_uri"])
    classes = queue["sentiment_pred"].astype(int).map({-1: 0, 0: 1, 1: 2})
    expected = explain_module().tfidf_reasons(pipeline, queue["review_text"].tolist(), classes.tolist(), top=3)
    for row, want in zip(queue.itertuples(), expected, strict=True):
        parts = [REASON.match(p) for p in row.reasons.split("; ")]
        assert all(parts) and len(parts) == len(want) <= 3, row.reasons
        assert [(p["term"], float(p["value"])) for p in parts] == [(t, round(v, 2)) for t, v in want]
        words = set(re.findall(r"\w[\w']*", row.review_text.lower()))
        for p in parts:  # a term is words of the review (or a quoted character n-gram of it)
            term = p["term"]
            assert set(term.split()) <= words or (term.startswith("'") and term.strip("'").strip() in
                                                    row.review_text.lower()), (term, row.review_text)  # fmt: skip

    # a person fills `label` in the file as written (reasons and all) and drops it into landing/labels/
    names = ["negative", "neutral", "positive"]
    labelled = queue.assign(label=[names[i % 3] if i < 12 else "" for i in range(len(queue))])
    lake.write_bytes("landing/labels/2024-04-02-reviewer.csv", labelled.to_csv(index=False).encode())
    collected = collect_labels(lake)
    merged = read_parquet(lake, LABELS_KEY).set_index("review_id")["label"].to_dict()
    assert merged == {rid: (i % 3) - 1 for i, rid in enumerate(queue["review_id"].head(12))}
    assert collected["rows_valid"] == 12 and collected["rows_quarantined"] == len(queue) - 12
    rejected = read_parquet(lake, "quarantine/labels/rows/2024-04-02-reviewer.csv.parquet")
    assert {tuple(r) for r in rejected["reasons"]} == {("label not filled in",)}  # nothing about the extra column
    assert set(merged) <= set(curated["review_id"])


def test_a_predictor_without_explain_leaves_reasons_empty(lake_root, model):
    lake = LocalLake(lake_root)
    curate_day(lake, DT, 200, seed=4)
    score_partition(lake, DuckDBCatalog(lake_root), DT, model.predict_proba, {"model_name": "m", "version": 1}, 0.6)
    queue = pd.read_csv(lake.path(f"review_queue/dt={DT}/review_queue.csv"), dtype=str, keep_default_na=False)
    assert len(queue) and "reasons" in queue.columns and (queue["reasons"] == "").all()


def test_the_explain_settings_apply_and_bad_ones_fail_clearly(lake_root, tfidf_entry, monkeypatch):
    lake = LocalLake(lake_root)
    curate_day(lake, DT, 100, seed=5)
    catalog = DuckDBCatalog(lake_root)
    monkeypatch.setenv("REVIEWFLOW_EXPLAIN_TOP_TERMS", "2")
    score_partition(lake, catalog, DT, load_predictor(tfidf_entry), tfidf_entry, 0.9)  # as the DAG calls it
    queue = pd.read_csv(lake.path(f"review_queue/dt={DT}/review_queue.csv"), dtype=str, keep_default_na=False)
    assert len(queue) and {r.count("; ") for r in queue["reasons"]} == {1}  # two terms a row
    with pytest.raises(ValueError, match="explain_top must be >= 1"):
        score_partition(lake, catalog, DT, load_predictor(tfidf_entry), tfidf_entry, 0.9, explain_top=0)
    monkeypatch.setenv("REVIEWFLOW_EXPLAIN_TOP_TERMS", "0")
    with pytest.raises(ValueError, match="top must be at least 1, got 0"):
        score_partition(lake, catalog, DT, load_predictor(tfidf_entry), tfidf_entry, 0.9)


def test_unscored_partitions_lists_the_backlog(lake_root, model):
    lake = LocalLake(lake_root)
    for i, dt in enumerate(["2024-04-01", "2024-04-02", "2024-04-03"]):
        curate_day(lake, dt, 30, seed=i + 10)
    catalog = DuckDBCatalog(lake_root)
    assert unscored_partitions(catalog, "2024-04-02") == ["2024-04-01", "2024-04-02"]
    score_partition(lake, catalog, "2024-04-01", model.predict_proba, {"model_name": "m", "version": 1}, 0.5)
    assert unscored_partitions(catalog, "2024-04-03") == ["2024-04-02", "2024-04-03"]


def test_labels_are_validated_and_merged(lake_root):
    lake = LocalLake(lake_root)
    # labels must name curated reviews
    write_parquet(lake, "curated/reviews/dt=2024-04-01/part-0.parquet", pd.DataFrame({"review_id": ["r1", "r2", "r3"]}))
    lake.write_bytes("landing/labels/2024-04-02.csv", b"review_id,label\nr1,positive\nr2,-1\nr3,maybe\n,0\n")
    lake.write_bytes("landing/labels/2024-04-03.csv", b"review_id,label\nr1,neutral\n")
    lake.write_bytes("landing/labels/broken.csv", b"id,sentiment\nr9,1\n")
    summary = collect_labels(lake)
    labels = read_parquet(lake, LABELS_KEY).set_index("review_id")["label"].to_dict()
    assert labels == {"r1": 0, "r2": -1}  # the later file wins for r1
    rejected = read_parquet(lake, "quarantine/labels/rows/2024-04-02.csv.parquet")
    assert sorted(rejected["line"]) == [4, 5]  # physical lines, header = line 1
    assert any("label" in r for reasons in rejected["reasons"] for r in reasons)
    assert lake.exists("quarantine/labels/files/broken.csv")
    assert {f["file"]: f["valid"] for f in summary["files"]}["2024-04-02.csv"] == 2


def test_drift_alerts_on_a_shifted_day_and_stays_quiet_otherwise():
    base = sample_data.generate_reviews(3000, seed=1)
    texts, depts = base["Review Text"], base["Department Name"]
    preds = base["Rating"].astype(int).map(lambda r: -1 if r <= 2 else 0 if r == 3 else 1)
    reference = drift.reference_profile(texts, preds, depts)

    same = sample_data.generate_reviews(2000, seed=2)
    same_preds = same["Rating"].astype(int).map(lambda r: -1 if r <= 2 else 0 if r == 3 else 1)
    quiet = drift.compare(
        reference, drift.profile_of(same["Review Text"], same_preds, same["Department Name"], reference), 0.2
    )
    assert quiet["alerts"] == []

    shifted = same.copy()
    shifted["Review Text"] = "Zmorf qwixl blarg " * 40  # long, unknown words
    shifted_depts = pd.Series(["Trend"] * len(shifted))
    shifted_preds = pd.Series([-1] * len(shifted))
    loud = drift.compare(
        reference, drift.profile_of(shifted["Review Text"], shifted_preds, shifted_depts, reference), 0.2
    )
    assert {a["check"] for a in loud["alerts"]} == {
        "predicted distribution", "length distribution", "department distribution", "out-of-vocabulary share",
    }  # fmt: skip
    page = drift.render_html(
        "2024-04-01",
        "tfidf:v1",
        reference,
        drift.profile_of(shifted["Review Text"], shifted_preds, shifted_depts, reference),
        loud,
    )
    assert "ALERT" in page


def test_psi_known_value():
    # (0.5, 0.5) -> (0.25, 0.75): (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.25 ln 2 + 0.25 ln 1.5
    import math

    assert drift.psi({"a": 0.5, "b": 0.5}, {"a": 0.25, "b": 0.75}) == pytest.approx(
        0.25 * math.log(2) + 0.25 * math.log(1.5)
    )
    assert drift.psi({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0


# -- deterministic errors fail at once (no retry) ---------------------------------------------


def dag_task(monkeypatch, task_id: str, context: dict):
    """A scoring DAG task's own function, with ``get_current_context`` answering ``context``."""
    from airflow.dag_processing.dagbag import DagBag

    from reviewflow.config import PROJECT_ROOT

    dag = DagBag(str(PROJECT_ROOT / "dags" / "sentiment_batch_scoring.py")).dags["sentiment_batch_scoring"]
    function = dag.get_task(task_id).python_callable
    monkeypatch.setitem(function.__globals__, "get_current_context", lambda: context)
    return function


def test_an_unreadable_partition_fails_the_score_task_without_retry(monkeypatch, lake_root):
    from airflow.sdk.exceptions import AirflowFailException

    from reviewflow.storage.lake import write_json

    lake = LocalLake(lake_root)
    write_json(lake, "models/champion.json", {"model_name": "tfidf", "version": "v1", "kind": "tfidf",
                                              "model_uri": lake.uri("models/tfidf/v1/")})  # fmt: skip
    lake.write_bytes(f"curated/reviews/dt={DT}/part-0.parquet", b"not a parquet file")
    score = dag_task(monkeypatch, "score", {})
    with pytest.raises(AirflowFailException, match=f"scoring {DT} failed: ArrowInvalid") as failure:
        score(DT)
    assert "not retried" in str(failure.value)


def test_a_bad_setting_fails_the_plan_task_without_retry(monkeypatch, lake_root):
    from airflow.sdk.exceptions import AirflowFailException

    plan = dag_task(monkeypatch, "plan", {"ds": DT})
    monkeypatch.setenv("REVIEWFLOW_CATALOG", "postgres")  # after parsing: settings are read in the task
    with pytest.raises(AirflowFailException, match="ConfigError: REVIEWFLOW_CATALOG='postgres'"):
        plan()
