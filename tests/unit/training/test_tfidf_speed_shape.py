"""TF-IDF scoring speed: the leaderboard carries each candidate's throughput; parallel scoring equals serial."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewflow import contract
from reviewflow.ingest import curate
from reviewflow.training.dataset import assemble
from reviewflow.training.predictor import _entry_point, load_predictor
from tools import sample_data


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    raw = sample_data.generate_reviews(900, seed=11, start_index=1_100_000)
    raw.columns = [contract.snake_case(c) for c in raw.columns]
    frame = assemble(curate.to_curated(raw, "day.csv", "test-run").assign(dt="2024-03-01"), None)
    path = tmp_path_factory.mktemp("dataset") / "dataset.parquet"
    frame.to_parquet(path, index=False)
    out = tmp_path_factory.mktemp("tfidf") / "model"
    _entry_point("tfidf").run(str(path), str(out), grid="quick")
    return str(out)


def test_leaderboard_records_scoring_throughput_and_the_choice(model_dir):
    tfidf = _entry_point("tfidf")
    board = json.loads(Path(model_dir, "leaderboard.json").read_text())
    assert all(row["scoring_reviews_per_s"] > 0 for row in board)
    chosen = [row for row in board if row["chosen"]]
    assert len(chosen) == 1
    assert chosen[0]["val_macro_f1"] >= board[0]["val_macro_f1"] - tfidf.SPEED_TOLERANCE
    near = [r for r in board if r["val_macro_f1"] >= board[0]["val_macro_f1"] - tfidf.SPEED_TOLERANCE]
    assert chosen[0]["scoring_reviews_per_s"] == max(r["scoring_reviews_per_s"] for r in near)
    metrics = json.loads(Path(model_dir, "metrics.json").read_text())
    assert metrics["best"]["scoring_reviews_per_s"] == chosen[0]["scoring_reviews_per_s"]
    preds = pd.read_parquet(Path(model_dir, "test_predictions.parquet"))
    assert list(preds.columns) == ["review_id", "label", "pred", "p_negative", "p_neutral", "p_positive"]


def test_choose_prefers_the_fastest_within_tolerance_on_validation():
    tfidf = _entry_point("tfidf")
    board = [
        {"val_macro_f1": 0.700, "scoring_reviews_per_s": 1000.0},
        {"val_macro_f1": 0.696, "scoring_reviews_per_s": 9000.0},
        {"val_macro_f1": 0.690, "scoring_reviews_per_s": 50000.0},
    ]
    assert tfidf.choose(board) is board[1]
    assert tfidf.choose(board, select="best") is board[0]


def test_parallel_scoring_equals_single_process(model_dir):
    tfidf = _entry_point("tfidf")
    texts = [
        f"{t} #{i}"
        for i, t in enumerate(["Love it, fits perfectly.", "Poor quality, returned it.", "It is ok."] * 1000)
    ]
    serial = tfidf.predict_proba(model_dir, texts, n_jobs=1)
    parallel = tfidf.predict_proba(model_dir, texts, n_jobs=2)
    assert parallel.shape == (len(texts), 3)
    np.testing.assert_allclose(parallel, serial, rtol=0, atol=1e-12)
    predict = load_predictor({"kind": "tfidf", "model_uri": model_dir, "model_name": "tfidf", "version": "v1"})
    np.testing.assert_allclose(predict(texts), serial, rtol=0, atol=1e-12)  # the registry's path, default jobs
