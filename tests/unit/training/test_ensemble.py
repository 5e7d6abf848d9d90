"""The ensemble entry point: its weight is chosen on validation only, and its predictions are the weighted average.

Members here are model dirs holding only what the ensemble reads (predictions and metrics), with
probabilities built so that the right weight is known; the real members (a trained TF-IDF and BERT)
are combined and scored in tests/integration/test_training_dag.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from reviewflow.config import MODELS_DIR
from reviewflow.training.predictor import _entry_point

PROBA = ["p_negative", "p_neutral", "p_positive"]


def dataset(tmp_path, n: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({
        "review_id": [f"r{i:03d}" for i in range(n)],
        "text": [f"review {i}" for i in range(n)],
        "label": rng.integers(-1, 2, n),
        "split": np.array(["train", "validation", "test"])[np.arange(n) % 3],
    })  # fmt: skip
    frame.to_parquet(tmp_path / "dataset.parquet", index=False)
    return frame


def member(tmp_path, name: str, frame: pd.DataFrame, probs: np.ndarray, drop: int = 0) -> str:
    folder = tmp_path / name
    folder.mkdir()
    for split in ("validation", "test"):
        rows = (frame["split"] == split).to_numpy()
        part = frame[rows].reset_index(drop=True).iloc[drop:]
        out = pd.DataFrame({"review_id": part["review_id"], "label": part["label"]})
        out[PROBA] = probs[rows][drop:]
        out["pred"] = np.array([-1, 0, 1])[probs[rows][drop:].argmax(axis=1)]
        out.to_parquet(folder / f"{split}_predictions.parquet", index=False)
    (folder / "metrics.json").write_text(json.dumps({"validation": {"macro_f1": 0.5}, "test": {"macro_f1": 0.5},
                                                     "train_seconds": 10}))  # fmt: skip
    return str(folder)


def run_ensemble(tmp_path, members: dict[str, str]) -> subprocess.CompletedProcess:
    spec = ",".join(f"{k}={v}" for k, v in members.items())
    return subprocess.run(
        [sys.executable, str(MODELS_DIR / "ensemble.py"), "--dataset", str(tmp_path / "dataset.parquet"),
         "--output", str(tmp_path / "out"), "--members", spec],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def one_hot(labels, n) -> np.ndarray:
    out = np.full((n, 3), 0.1)
    out[np.arange(n), np.asarray(labels) + 1] = 0.8
    return out


def test_weight_comes_from_validation_and_predictions_are_the_weighted_average(tmp_path):
    frame = dataset(tmp_path)
    n = len(frame)
    truth = frame["label"].to_numpy()
    wrong = (truth + 2) % 3 - 1  # always another class
    is_val = (frame["split"] == "validation").to_numpy()
    # on validation TF-IDF is right and BERT wrong; on test the opposite: a weight tuned on test would go to BERT
    tfidf = np.where(is_val[:, None], one_hot(truth, n), one_hot(wrong, n))
    bert = np.where(is_val[:, None], one_hot(wrong, n), one_hot(truth, n))
    members = {"tfidf": member(tmp_path, "tfidf", frame, tfidf), "bert": member(tmp_path, "bert", frame, bert)}
    done = run_ensemble(tmp_path, members)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "out"
    spec = json.loads((out / "ensemble.json").read_text())
    assert spec["members"] == members
    w = spec["weights"]["tfidf"]
    assert w > 0.5 and spec["weights"]["bert"] == pytest.approx(1 - w)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation"]["macro_f1"] == pytest.approx(1.0)
    assert metrics["test"]["macro_f1"] < 0.5  # reported as it is, not chosen on
    assert metrics["train_seconds"] >= 20  # the members' training counts
    test = pd.read_parquet(out / "test_predictions.parquet")
    rows = (frame["split"] == "test").to_numpy()
    module = _entry_point("ensemble")
    average = w * tfidf[rows] + (1 - w) * bert[rows]
    expected = module.sharpen(average, spec["temperature"])  # the average at the validation-fitted temperature
    np.testing.assert_allclose(test[PROBA].to_numpy(), expected)
    assert (test[PROBA].to_numpy().argmax(axis=1) == average.argmax(axis=1)).all()  # the labels are the average's
    assert (test["review_id"] == frame.loc[rows, "review_id"].to_numpy()).all()
    assert json.loads((out / "model_meta.json").read_text())["kind"] == "ensemble"
    # combine() is what scoring uses: the same weighted average, at the same temperature
    np.testing.assert_allclose(module.combine({"tfidf": tfidf, "bert": bert}, spec["weights"], spec["temperature"]),
                               module.sharpen(w * tfidf + (1 - w) * bert, spec["temperature"]))  # fmt: skip


def test_a_near_uniform_member_leaves_the_ensemble_confidences_calibrated(tmp_path):
    """Seen in make run: weight 0.85 on a weak BERT whose probabilities are near uniform (right argmax,
    tiny margins); every review fell under the review queue's 0.55 confidence. The temperature fixes it."""
    frame = dataset(tmp_path, n=300)
    n = len(frame)
    truth = frame["label"].to_numpy()
    rng = np.random.default_rng(3)
    right = rng.random(n) < 0.9  # both members agree on the label, right 90 % of the time
    label = np.where(right, truth, (truth + 2) % 3 - 1)
    tfidf = one_hot(label, n)
    bert = np.full((n, 3), 0.33)
    bert[np.arange(n), label + 1] = 0.34  # near uniform: the same argmax by a hair
    members = {"tfidf": member(tmp_path, "tfidf", frame, tfidf), "bert": member(tmp_path, "bert", frame, bert)}
    done = run_ensemble(tmp_path, members)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "out"
    spec = json.loads((out / "ensemble.json").read_text())
    assert spec["weights"]["tfidf"] == 0.5  # macro-F1 ties over every weight: the nearest to 0.5
    for split in ("validation", "test"):
        got = pd.read_parquet(out / f"{split}_predictions.parquet")
        confidence = got[PROBA].to_numpy().max(axis=1)
        rows = (frame["split"] == split).to_numpy()
        accuracy = (got["pred"].to_numpy() == truth[rows]).mean()
        # calibrated: the mean confidence near the accuracy (about 0.9), not the average's 0.57
        assert abs(confidence.mean() - accuracy) < 0.06, (split, confidence.mean(), accuracy)
        assert (got[PROBA].to_numpy().argmax(axis=1) == label[rows] + 1).all()  # the labels are unchanged
    assert spec["temperature"] < 1


def test_members_trained_on_another_dataset_are_refused(tmp_path):
    frame = dataset(tmp_path)
    probs = one_hot(frame["label"], len(frame))
    members = {"tfidf": member(tmp_path, "tfidf", frame, probs), "bert": member(tmp_path, "bert", frame, probs, drop=2)}
    done = run_ensemble(tmp_path, members)
    assert done.returncode != 0
    assert "bert" in done.stderr and "no validation prediction for 2" in done.stderr
    assert not (tmp_path / "out" / "ensemble.json").exists()


def test_members_must_be_tfidf_and_bert(tmp_path):
    dataset(tmp_path)
    done = run_ensemble(tmp_path, {"tfidf": str(tmp_path / "a")})
    assert done.returncode != 0 and "--members needs exactly tfidf=DIR, bert=DIR" in done.stderr


def test_the_report_names_the_weights_in_member_order_whatever_the_json_order():
    """The gate re-renders the report from the registry entry (JSON with sorted keys), evaluation from
    metrics.json (member order): both pages must read the same."""
    from reviewflow.training.report import describe_model

    as_saved = {"weights": {"tfidf": 0.3, "bert": 0.7}, "temperature": 0.21}
    as_registered = json.loads(json.dumps(as_saved, sort_keys=True))
    assert list(as_registered["weights"]) == ["bert", "tfidf"]
    assert describe_model(as_saved) == describe_model(as_registered)
    assert describe_model(as_registered).startswith("weights tfidf 0.3 / bert 0.7, temperature 0.21")
