"""Training data, the TF-IDF and BERT entry points, evaluation, the registry and the gate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewflow import contract
from reviewflow.config import get_settings
from reviewflow.ingest import curate
from reviewflow.layout import dataset_key, model_prefix, snapshot_key
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.lake import LocalLake, read_json, write_parquet
from reviewflow.storage.sql import get_engine
from reviewflow.training.dataset import assemble, assign_split, build_dataset, hash_bucket
from reviewflow.training.evaluate import (
    bias_metrics,
    classification_metrics,
    evaluate_predictions,
    evaluate_test_predictions,
    facet_quality,
)
from reviewflow.training.gate import fairness_violations, gate
from reviewflow.training.predictor import _entry_point, load_predictor
from reviewflow.training.registry import champion, decisions, promote, record_decision, register, version_for, versions
from reviewflow.training.report import render_report
from reviewflow.training.tasks import evaluate_and_register, run_candidates, run_gate
from tools import sample_data

DT1, DT2 = "2024-03-01", "2024-03-02"


def curated_frame(n: int, seed: int, source: str = "day.csv") -> pd.DataFrame:
    raw = sample_data.generate_reviews(n, seed=seed, start_index=seed * 100_000)
    raw.columns = [contract.snake_case(c) for c in raw.columns]
    return curate.to_curated(raw, source, "test-run")


def add_partition(lake_root: str, dt: str, frame: pd.DataFrame) -> None:
    write_parquet(LocalLake(lake_root), f"curated/reviews/dt={dt}/part-0.parquet", frame)
    catalog = DuckDBCatalog(lake_root)
    catalog.register_table("curated_reviews", f"{lake_root}/curated/reviews", curate.curated_columns(), "parquet")
    catalog.register_partition("curated_reviews", dt)


# -- training data --------------------------------------------------------------------------


def test_split_hashing_is_stable_and_80_10_10():
    ids = [f"review-{i}" for i in range(6000)]
    splits = pd.Series([assign_split(r) for r in ids])
    assert [assign_split(r) for r in ids[:50]] == splits[:50].tolist()  # deterministic
    shares = splits.value_counts(normalize=True)
    assert abs(shares["train"] - 0.8) < 0.02 and abs(shares["validation"] - 0.1) < 0.015
    assert abs(shares["test"] - 0.1) < 0.015
    # a fixed value: sha256("abc") ends ...15ad -> its int mod 100
    assert hash_bucket("abc") == int("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 16) % 100

    # the same review lands in the same split whatever else is in the dataset
    frame = curated_frame(300, seed=1).assign(dt=DT1)
    whole = assemble(frame, None).set_index("review_id")["split"]
    part = assemble(frame.iloc[::3], None).set_index("review_id")["split"]
    assert (whole.loc[part.index] == part).all()


def test_build_dataset_reads_curated_up_to_d_and_prefers_human_labels(lake_root):
    lake = LocalLake(lake_root)
    day1, day2 = curated_frame(200, seed=2, source="a.csv"), curated_frame(150, seed=3, source="b.csv")
    add_partition(lake_root, DT1, day1)
    add_partition(lake_root, DT2, day2)
    corrected = day1.iloc[:5][["review_id"]].assign(label=[0, 0, -1, 1, 0])
    write_parquet(lake, "labels/reviews/labels.parquet", corrected)

    summary = build_dataset(lake, DT1, get_engine())
    data = pd.read_parquet(summary["dataset_uri"])
    assert set(data["review_id"]) == set(day1["review_id"]) - set(day1.loc[day1["review_id"].isna(), "review_id"])
    assert set(data["dt"]) == {DT1}  # dt <= D only
    labels = data.set_index("review_id")
    for rid, label in zip(corrected["review_id"], corrected["label"], strict=True):
        assert labels.loc[rid, "label"] == label and labels.loc[rid, "label_source"] == "human"
    rest = data[data["label_source"] == "rating"]
    assert (rest["label"] == rest["sentiment"]).all()
    row = day1.iloc[10]
    expected = f"{row['title'].strip()}. {row['review_text'].strip()}" if row["title"].strip() else row["review_text"]
    assert labels.loc[row["review_id"], "text"] == expected
    assert {"department_name", "class_name", "division_name", "age"} <= set(data.columns)

    snap = read_json(lake, snapshot_key(DT1))
    assert snap["partitions"] == {DT1: len(day1)} and snap["rows"] == len(data)
    assert snap["label_sources"] == {"human": 5, "rating": len(data) - 5}
    assert sum(snap["splits"].values()) == len(data)

    both = pd.read_parquet(build_dataset(lake, DT2, get_engine())["dataset_uri"])
    assert len(both) == len(day1) + len(day2)
    merged = both.set_index("review_id")["split"]
    assert (merged.loc[data["review_id"]].to_numpy() == data["split"].to_numpy()).all()  # splits never move


# -- entry points ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_dataset(tmp_path_factory) -> pd.DataFrame:
    frame = assemble(curated_frame(900, seed=7).assign(dt=DT1), None)
    path = tmp_path_factory.mktemp("dataset") / "dataset.parquet"
    frame.to_parquet(path, index=False)
    frame.attrs["path"] = str(path)
    return frame


@pytest.fixture(scope="module")
def tfidf_dir(synthetic_dataset, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("tfidf") / "model"
    _entry_point("tfidf").run(synthetic_dataset.attrs["path"], str(out), grid="quick")
    return str(out)


def test_tfidf_trains_and_beats_chance(tfidf_dir, synthetic_dataset):
    metrics = json.loads(Path(tfidf_dir, "metrics.json").read_text())
    assert metrics["test"]["macro_f1"] > 0.5  # chance for 3 classes is ~0.33
    board = json.loads(Path(tfidf_dir, "leaderboard.json").read_text())
    assert len(board) == 2 and board[0]["rank"] == 1 and board[0]["val_macro_f1"] >= board[1]["val_macro_f1"]
    preds = pd.read_parquet(Path(tfidf_dir, "test_predictions.parquet"))
    assert list(preds.columns) == ["review_id", "label", "pred", "p_negative", "p_neutral", "p_positive"]
    assert set(preds["review_id"]) == set(synthetic_dataset.loc[synthetic_dataset["split"] == "test", "review_id"])
    probs = _entry_point("tfidf").predict_proba(
        tfidf_dir,
        ["I love this dress! Fits perfectly, true to size.", "Very disappointed. Poor quality, it fell apart.", ""],
    )
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1)
    assert probs[0].argmax() == 2 and probs[1].argmax() == 0


@pytest.mark.slow  # a real BERT fine-tune on CPU (~35 s)
def test_bert_tiny_finetune_on_cpu_writes_model_and_metrics(synthetic_dataset, tmp_path):
    tiny = pd.concat(
        [synthetic_dataset[synthetic_dataset["split"] == s].groupby("label").head(k) for s, k in
         [("train", 12), ("validation", 4), ("test", 4)]]
    )  # fmt: skip
    path = tmp_path / "tiny.parquet"
    tiny.to_parquet(path, index=False)
    out = tmp_path / "bert"
    bert = _entry_point("bert")
    bert.main(["--dataset", str(path), "--output", str(out), "--epochs", "1", "--max-length", "32",
               "--batch-size", "8", "--max-train-samples", "30", "--max-minutes", "1", "--device", "cpu"])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["device"] == "cpu" and metrics["train_rows"] == 30 and metrics["budget"]["applied"]
    assert 0 <= metrics["test"]["macro_f1"] <= 1 and metrics["steps"] >= 1
    assert (out / "config.json").exists() and (out / "tokenizer_config.json").exists()
    assert json.loads((out / "model_meta.json").read_text())["max_length"] == 32
    assert len(pd.read_parquet(out / "test_predictions.parquet")) == int((tiny["split"] == "test").sum())
    probs = bert.predict_proba(str(out), ["great dress", "terrible", "ok I guess"])
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


# -- evaluation -----------------------------------------------------------------------------


@pytest.fixture
def hand_made() -> pd.DataFrame:
    return pd.DataFrame({
        "review_id": [f"r{i}" for i in range(1, 9)],
        "department_name": ["A", "A", "A", "A", "B", "B", "B", "B"],
        "age_band": ["<25", "<25", "<25", "25-34", "25-34", "25-34", "25-34", "25-34"],
        "label": [1, 1, 0, -1, 1, 1, 0, -1],
        "pred": [1, 1, 1, -1, 0, 1, 0, 1],
    })  # fmt: skip


def test_classification_metrics_exact(hand_made):
    m = classification_metrics(hand_made["label"], hand_made["pred"])
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["per_class"]["negative"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["per_class"]["neutral"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["positive"] == pytest.approx({"precision": 0.6, "recall": 0.75, "f1": 2 / 3, "support": 4})
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 2 / 3) / 3)
    assert m["confusion_matrix"]["matrix"] == [[1, 0, 1], [0, 1, 1], [0, 1, 3]]
    facets = {(r["facet"], r["facet_value"]): r for r in facet_quality(hand_made, ["department_name"], min_support=5)}
    assert facets[("department_name", "A")]["macro_f1"] == pytest.approx((1 + 0 + 0.8) / 3)
    assert facets[("department_name", "A")]["enough_support"] is False


def test_post_training_bias_exact(hand_made):
    records = bias_metrics(hand_made, ["department_name", "age_band"])
    value = {(r["facet"], r["facet_value"], r["label_value"], r["metric"]): r for r in records}

    def v(*key):
        return value[key]["value"]

    # d = department A, a = B; label value positive
    assert v("department_name", "A", 1, "DPPL") == pytest.approx(0.5 - 0.75)
    assert v("department_name", "A", 1, "DI") == pytest.approx(0.75 / 0.5)
    assert v("department_name", "A", 1, "AD") == pytest.approx(0.5 - 0.75)
    assert v("department_name", "A", 1, "RD") == pytest.approx(0.5 - 1.0)
    assert (
        value[("department_name", "A", 1, "DPPL")]["n_a"] == 4
        and value[("department_name", "A", 1, "DPPL")]["n_d"] == 4
    )
    assert v("department_name", "B", 1, "DPPL") == pytest.approx(0.25)
    assert v("department_name", "B", 1, "DI") == pytest.approx(0.5 / 0.75)
    # label value negative: nobody in B is predicted negative -> DI undefined
    assert v("department_name", "A", -1, "DPPL") == pytest.approx(0.0 - 0.25)
    assert (
        v("department_name", "A", -1, "DI") is None and "q_a = 0" in value[("department_name", "A", -1, "DI")]["reason"]
    )
    assert v("department_name", "A", -1, "AD") == pytest.approx(0.75 - 1.0)
    assert v("department_name", "A", -1, "RD") == pytest.approx(0.0 - 1.0)
    # the <25 band has no truly negative review -> RD undefined; DI = 0 / 0.2
    assert v("age_band", "<25", -1, "DPPL") == pytest.approx(0.2)
    assert v("age_band", "<25", -1, "DI") == pytest.approx(0.0)
    assert (
        v("age_band", "<25", -1, "RD") is None and "recall undefined" in value[("age_band", "<25", -1, "RD")]["reason"]
    )

    evaluation = evaluate_predictions(hand_made, min_support=1, facets=["department_name", "age_band"])
    page = render_report(evaluation, "tfidf", "v1", champion=evaluation, decision={"promote": False, "reasons": ["x"]})
    assert "data:image/png;base64," in page and "Challenger vs champion" in page and "KEEP CHAMPION" in page


def test_evaluation_refuses_predictions_of_another_split(synthetic_dataset):
    test = synthetic_dataset[synthetic_dataset["split"] == "test"]
    preds = pd.DataFrame({"review_id": test["review_id"], "label": test["label"], "pred": test["label"]})
    assert evaluate_test_predictions(preds, synthetic_dataset)["macro_f1"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not the same test split"):
        evaluate_test_predictions(preds.iloc[1:], synthetic_dataset)


# -- gate -----------------------------------------------------------------------------------


def fake_eval(f1: float, facets=(), dppl=()) -> dict:
    return {
        "macro_f1": f1, "accuracy": 0.8,
        "facets": [{"facet": "department_name", "facet_value": v, "n": n, "macro_f1": s} for v, n, s in facets],
        "bias": [{"facet": "age_band", "facet_value": v, "label_value": lv, "metric": "DPPL", "value": x, "n_a": 500, "n_d": n}
                 for v, lv, x, n in dppl],
    }  # fmt: skip


SETTINGS = replace(
    get_settings(), promote_margin=0.01, fairness_max_f1_drop=0.15, fairness_max_abs_dppl=0.25, fairness_min_support=50
)
CHALLENGER = {"model_name": "bert", "version": "v2", "kind": "bert", "metrics": {"validation": {"macro_f1": 0.7}}}
CHAMPION = {"model_name": "tfidf", "version": "v1", "kind": "tfidf", "metrics": {"test_macro_f1": 0.66}}


def test_gate_first_model_is_promoted_when_fair():
    decision = gate(CHALLENGER, fake_eval(0.7, facets=[("Tops", 400, 0.66)]), None, None, SETTINGS)
    assert decision["promote"] and decision["status"] == "promote"
    assert any("no champion yet" in r for r in decision["reasons"])


def test_gate_refuses_a_fair_but_useless_first_model():
    decision = gate(CHALLENGER, fake_eval(0.3, facets=[("Tops", 400, 0.3)]), None, None, SETTINGS)
    assert not decision["promote"] and decision["status"] == "refused"
    assert any("below the floor 0.5" in r for r in decision["reasons"])


def test_gate_refuses_an_unfair_first_model_with_reasons():
    unfair = fake_eval(0.7, facets=[("Jackets", 80, 0.50), ("Trend", 10, 0.1)], dppl=[("<25", 1, 0.31, 120)])
    decision = gate(CHALLENGER, unfair, None, None, SETTINGS)
    assert not decision["promote"]
    text = " ".join(decision["reasons"])
    assert "department_name=Jackets" in text and "|DPPL| for positive = 0.310" in text
    assert "Trend" not in text  # 10 rows: too few to gate on
    assert len(fairness_violations(unfair, SETTINGS)) == 2


def test_gate_needs_the_margin_over_the_champion_on_the_same_split():
    close = gate(CHALLENGER, fake_eval(0.665), CHAMPION, fake_eval(0.66), SETTINGS)
    assert not close["promote"] and "does not beat" in " ".join(close["reasons"])
    performance = next(c for c in close["checks"] if c["check"] == "performance")
    assert close["champion"]["macro_f1"] == 0.66 and performance["gain"] == pytest.approx(0.005)
    better = gate(CHALLENGER, fake_eval(0.69), CHAMPION, fake_eval(0.66), SETTINGS)
    assert better["promote"] and "beats champion tfidf v1" in " ".join(better["reasons"])
    unfair_better = gate(CHALLENGER, fake_eval(0.69, dppl=[("65+", -1, -0.4, 80)]), CHAMPION, fake_eval(0.6), SETTINGS)
    assert not unfair_better["promote"] and "fairness gate failed" in " ".join(unfair_better["reasons"])


# -- registry -------------------------------------------------------------------------------


def _copy_model(src: str, lake: LocalLake, name: str, version: str) -> None:
    for path in Path(src).iterdir():
        lake.write_bytes(model_prefix(name, version) + path.name, path.read_bytes())


def test_registry_champion_alias_decisions_and_predictor(lake_root, tfidf_dir, synthetic_dataset):
    lake = LocalLake(lake_root)
    write_parquet(lake, dataset_key(DT1), synthetic_dataset)
    assert champion(lake) is None
    v1 = version_for(DT1, "scheduled__2024-03-01")
    assert v1.startswith("20240301-") and v1 == version_for(DT1, "scheduled__2024-03-01")
    _copy_model(tfidf_dir, lake, "tfidf", v1)
    summary = evaluate_and_register(lake, "tfidf", v1, DT1, "run-1", SETTINGS)
    assert summary["version"] == v1 and lake.exists(f"reports/models/tfidf/{v1}/report.html")
    entry = versions(lake, "tfidf")[0]
    assert entry["kind"] == "tfidf" and entry["model_uri"] == lake.uri(model_prefix("tfidf", v1))
    assert entry["code_version"]["package"] and entry["dataset_uri"].endswith("dataset.parquet")

    # first run: no champion -> promoted if fair
    first = run_gate(lake, run_candidates(lake, v1), synthetic_dataset, "run-1", SETTINGS)
    assert first["promote"], first["reasons"]
    alias = promote(lake, entry, first, "run-1")
    current = champion(lake)
    assert current == alias
    assert {"model_name", "version", "kind", "model_uri", "metrics", "promoted_at"} <= set(current)
    assert current["metrics"]["test_macro_f1"] == pytest.approx(summary["test_macro_f1"])

    # a challenger identical to the champion gains nothing on the same split: refused
    _copy_model(tfidf_dir, lake, "tfidf", "v2")
    evaluate_and_register(lake, "tfidf", "v2", DT1, "run-2", SETTINGS)
    second = run_gate(lake, run_candidates(lake, "v2"), synthetic_dataset, "run-2", SETTINGS)
    assert not second["promote"]
    assert second["champion"]["macro_f1"] == pytest.approx(second["challenger"]["macro_f1"])
    assert any("does not beat" in r for r in second["reasons"])
    assert champion(lake)["version"] == v1
    record_decision(lake, "run-3", {"promote": False, "reasons": ["manual"]})
    assert [d["run_id"] for d in decisions(lake)] == ["run-1", "run-2", "run-3"]

    predict = load_predictor(champion(lake))
    probs = predict(
        ["I love this top! Great quality for the price.", "Disappointed. The fabric is thin and cheap looking."]
    )
    assert probs.shape == (2, 3) and probs[0].argmax() == 2


def test_the_model_report_shows_global_importance(lake_root, tfidf_dir, synthetic_dataset):
    from markupsafe import escape

    from reviewflow.training.predictor import explain_module
    from reviewflow.training.report import BERT_NOTE, global_importance

    lake = LocalLake(lake_root)
    write_parquet(lake, dataset_key(DT1), synthetic_dataset)
    _copy_model(tfidf_dir, lake, "tfidf", "v1")
    evaluate_and_register(lake, "tfidf", "v1", DT1, "run-1", SETTINGS)
    page = lake.read_bytes("reports/models/tfidf/v1/report.html").decode()
    assert "What the model looks at (global importance)" in page and 'alt="top terms per class"' in page
    saved = read_json(lake, "reports/models/tfidf/v1/evaluation.json")["global_importance"]
    expected = explain_module().tfidf_global_terms(_entry_point("tfidf").load_model(tfidf_dir), 15)
    assert list(saved["terms"]) == ["negative", "neutral", "positive"]
    for name, rows in expected.items():
        assert [r["term"] for r in saved["terms"][name]] == [t for t, _ in rows]
        assert str(escape(rows[0][0])) in page  # the strongest term of each class is in the table
    # a BERT model has no global weights: the report says where its reasons are
    lake.write_bytes(model_prefix("bert", "v1") + "model_meta.json", json.dumps({"kind": "bert"}).encode())
    bert = global_importance(lake, "bert", "v1")
    assert bert == {"kind": "bert", "terms": None, "note": BERT_NOTE}
    evaluation = read_json(lake, "reports/models/tfidf/v1/evaluation.json")
    assert str(escape(BERT_NOTE)) in render_report(evaluation, "bert", "v1", importance=bert)


def test_register_needs_a_trained_model_dir(lake_root):
    lake = LocalLake(lake_root)
    with pytest.raises(ValueError, match="unknown model kind"):
        register(lake, "xgb", "v9", "xgboost", {})
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        register(lake, "tfidf", "v9", "tfidf", {})
    lake.write_bytes(model_prefix("tfidf", "v9") + "metrics.json", b"{}")
    assert register(lake, "tfidf", "v9", "tfidf", {"validation": {"macro_f1": 0.5}}, run_id="r") == "v9"
    assert [(e["model_name"], e["version"], e["run_id"]) for e in versions(lake)] == [("tfidf", "v9", "r")]
    assert read_json(lake, model_prefix("tfidf", "v9") + "code_version.json")["package"]


# -- deterministic errors fail at once (no retry) ---------------------------------------------


def test_fail_fast_maps_deterministic_errors_and_lets_the_rest_retry():
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from reviewflow.config import ConfigError
    from reviewflow.orchestration.dag_defaults import fail_fast
    from reviewflow.training.dataset import EmptyDatasetError

    for error in (ConfigError("REVIEWFLOW_X='y'"), EmptyDatasetError("no rows"), FileNotFoundError("gone.parquet")):
        with pytest.raises(AirflowFailException, match="the step failed: .*not retried") as failure:
            with fail_fast("the step"):
                raise error
        assert failure.value.__cause__ is error
    for error in (ConnectionError("S3 hiccup"), TimeoutError(), AirflowSkipException("nothing to do")):
        with pytest.raises(type(error)):
            with fail_fast("the step"):
                raise error


def test_an_empty_dataset_fails_the_build_task_without_retry(monkeypatch, lake_root):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowFailException

    from reviewflow.config import PROJECT_ROOT

    # the only curated day is an empty one: nothing to train on, however often it is retried
    types = {"BIGINT": pa.int64(), "VARCHAR": pa.string()}
    columns = {c: t for c, t in curate.curated_columns().items() if c != "dt"}
    buf = io.BytesIO()
    pq.write_table(pa.schema([(c, types[t]) for c, t in columns.items()]).empty_table(), buf)
    LocalLake(lake_root).write_bytes(f"curated/reviews/dt={DT1}/part-0.parquet", buf.getvalue())
    catalog = DuckDBCatalog(lake_root)
    catalog.register_table("curated_reviews", f"{lake_root}/curated/reviews", curate.curated_columns(), "parquet")
    catalog.register_partition("curated_reviews", DT1)

    dag = DagBag(str(PROJECT_ROOT / "dags" / "sentiment_training.py")).dags["sentiment_training"]
    build = dag.get_task("build_dataset").python_callable
    monkeypatch.setitem(build.__globals__, "get_current_context", lambda: {"ds": DT1, "run_id": "manual__1"})
    with pytest.raises(AirflowFailException, match=f"EmptyDatasetError: no curated reviews with dt <= {DT1}"):
        build()


# -- the model entry points clean up after a failure ---------------------------------------


def test_an_s3_output_dir_is_removed_on_failure_and_never_uploaded(monkeypatch, tmp_path):
    _entry_point("bert")  # puts include/models on sys.path
    import model_io

    uploads = []
    monkeypatch.delenv("SM_MODEL_DIR", raising=False)
    monkeypatch.setattr(model_io.tempfile, "mkdtemp", lambda prefix="": str(tmp_path / f"{prefix}x"))
    monkeypatch.setattr(model_io, "s3_client", lambda: type("C", (), {"upload_file": lambda *a: uploads.append(a)})())
    with pytest.raises(RuntimeError, match="training blew up"):
        with model_io.output_dir("s3://bucket/models/bert/v1", print) as out:
            (out / "config.json").write_text("{}")
            raise RuntimeError("training blew up")
    assert not out.exists() and uploads == []
    with model_io.output_dir("s3://bucket/models/bert/v2", print) as out:
        (out / "config.json").write_text("{}")
    assert not out.exists() and [(b, k) for _, _, b, k in uploads] == [("bucket", "models/bert/v2/config.json")]


@pytest.mark.slow  # fine-tunes BERT on CPU before the evaluation fails (~12 s with the torch import)
def test_bert_training_exits_its_output_dir_when_it_fails(monkeypatch, tmp_path):
    from contextlib import contextmanager

    raw = sample_data.generate_reviews(60, seed=4)
    dataset = pd.DataFrame({
        "review_id": [f"r{i}" for i in range(len(raw))], "text": raw["Review Text"].astype(str),
        "label": raw["Rating"].astype(int).map(contract.sentiment_from_rating),
        "split": ["train"] * 40 + ["validation"] * 10 + ["test"] * 10,
    })  # fmt: skip
    dataset.to_parquet(tmp_path / "dataset.parquet", index=False)
    seen = []

    @contextmanager
    def recording_output_dir(uri, log):
        seen.append("entered")
        try:
            yield Path(uri)
        except BaseException as exc:
            seen.append(f"exited with {type(exc).__name__}")
            raise
        seen.append("exited")

    def failing_eval(*args, **kwargs):
        raise RuntimeError("evaluation blew up")

    bert = _entry_point("bert")
    monkeypatch.setattr(bert, "output_dir", recording_output_dir)
    monkeypatch.setattr(bert, "batched_proba", failing_eval)
    with pytest.raises(RuntimeError, match="evaluation blew up"):
        bert.main(["--dataset", str(tmp_path / "dataset.parquet"), "--output", str(tmp_path / "bert"),
                   "--epochs", "1", "--max-length", "16", "--batch-size", "8", "--max-train-samples", "8",
                   "--device", "cpu"])  # fmt: skip
    assert seen == ["entered", "exited with RuntimeError"]


# -- generated sample data -----------------------------------------------------------------


def test_a_generated_csv_holds_one_record_per_row_by_pythons_csv_module():
    import csv
    import io

    frame = sample_data.generate_reviews(3000, seed=5, dirty_share=0.9, with_labels=True)
    kinds = frame.pop("_dirty_kind")
    texts = frame["Review Text"].astype(str)
    broken = (kinds == "broken_quoting").to_numpy()
    multiline = texts.str.contains("\n").to_numpy()
    # what used to split in two: a broken-quoting row whose multi-line text has no comma or quote
    assert (broken & multiline & ~texts.str.contains('[,"]').to_numpy()).any()
    assert (~broken & multiline).any()

    records = list(csv.reader(io.StringIO(sample_data.to_csv_bytes(frame).decode("utf-8"), newline="")))
    assert records[0] == sample_data.COLUMNS
    rows = records[1:]
    assert len(rows) == len(frame)  # N rows, N records: every multi-line text is quoted
    # a broken-quoting row is one record of 12 fields (its unquoted title splits in two); every other has 11
    assert [len(r) for r in rows] == [12 if b else 11 for b in broken]
    assert [r[0] for r in rows] == [str(v) for v in frame[""]]
    assert [r[5] if b else r[4] for r, b in zip(rows, broken, strict=True)] == texts.tolist()
