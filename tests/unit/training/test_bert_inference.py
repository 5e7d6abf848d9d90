"""BERT scoring: length-sorted dynamic batching and the CPU inference modes (fp32 / int8 / onnx / onnx-int8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewflow import contract
from reviewflow.training.predictor import _entry_point
from tools import sample_data


@pytest.fixture(scope="module")
def bert():
    return _entry_point("bert")


# -- batching (no model) --------------------------------------------------------------------


def test_sorted_dynamic_batches_cover_every_row_once_within_the_limits(bert):
    rng = np.random.default_rng(3)
    lengths = rng.integers(3, 129, size=1000)
    batches = bert.plan_batches(lengths, max_tokens=2048, max_rows=64)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))  # every row exactly once
    for b in batches:
        assert len(b) <= 64 and (len(b) == 1 or lengths[b].max() * len(b) <= 2048)
    assert np.all(np.diff(lengths[rows]) >= 0)  # by ascending length
    assert bert.plan_batches([], 2048, 64) == []


def test_length_sorting_cuts_the_padding(bert):
    lengths = np.random.default_rng(5).integers(5, 129, size=2000)
    unsorted = bert.padding_share(lengths, bert.plan_batches(lengths, 0, 64, sort=False))
    dynamic = bert.padding_share(lengths, bert.plan_batches(lengths, 8192, 128))
    assert unsorted > 0.3 and dynamic < 0.05
    assert bert.padding_share([4, 4], [np.array([0, 1])]) == 0


def test_length_grouped_training_batches_cover_every_row_once_in_a_new_random_order_each_epoch(bert):
    lengths = np.random.default_rng(7).integers(5, 129, size=3000)
    sampler = bert.LengthGroupedBatches(lengths, batch_size=16, seed=13)
    first, second = list(sampler), list(sampler)
    for epoch in (first, second):
        assert len(epoch) == len(sampler) == 188  # ceil(3000 / 16)
        assert sorted(i for b in epoch for i in b) == list(range(3000))  # every row once per epoch
        assert all(len(b) <= 16 for b in epoch)
    assert first != second  # shuffled again each epoch
    grouped = bert.padding_share(lengths, [np.asarray(b) for b in first])
    random = bert.padding_share(
        lengths, bert.plan_batches(np.random.default_rng(1).permutation(lengths), 0, 16, sort=False)
    )
    assert random > 0.3 and grouped < 0.05
    # batch order is random, not by length (a model would otherwise see all long reviews at once)
    means = [lengths[b].mean() for b in first]
    assert abs(np.corrcoef(np.arange(len(means)), means)[0, 1]) < 0.3


def test_an_unknown_inference_mode_is_a_clear_error_and_cuda_keeps_autocast(bert, monkeypatch):
    import torch

    with pytest.raises(ValueError, match="BERT inference mode 'fp8'.*expected one of"):
        bert.resolve_mode("fp8", torch.device("cpu"))
    monkeypatch.setenv("REVIEWFLOW_BERT_INFERENCE", "INT8")
    assert bert.resolve_mode(None, torch.device("cpu")) == "int8"  # the setting when no mode is passed
    assert bert.resolve_mode("onnx", torch.device("cuda")) == "fp32"  # torch + autocast on CUDA
    assert bert.resolve_mode("auto", torch.device("cpu")) == bert.CPU_DEFAULT_MODE


# -- a tiny fine-tuned model in each mode ----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(bert, tmp_path_factory) -> str:
    raw = sample_data.generate_reviews(90, seed=11)
    frame = pd.DataFrame({
        "review_id": [f"r{i}" for i in range(len(raw))], "text": raw["Review Text"].astype(str),
        "label": raw["Rating"].astype(int).map(contract.sentiment_from_rating),
        "split": ["train"] * 60 + ["validation"] * 15 + ["test"] * 15,
    })  # fmt: skip
    root = tmp_path_factory.mktemp("bert-inference")
    frame.to_parquet(root / "dataset.parquet", index=False)
    bert.main(["--dataset", str(root / "dataset.parquet"), "--output", str(root / "model"), "--epochs", "2",
               "--max-length", "48", "--batch-size", "8", "--max-train-samples", "60", "--max-minutes", "2",
               "--device", "cpu", "--lr", "1e-4"])  # fmt: skip
    return str(root / "model")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    raw = sample_data.generate_reviews(40, seed=23)
    return (raw["Title"].fillna("").astype(str) + ". " + raw["Review Text"].astype(str)).tolist() + ["", "ok"]


@pytest.mark.slow  # fine-tunes a MiniLM on CPU (~40 s), then exports it to ONNX
@pytest.mark.parametrize("mode", ["int8", "onnx", "onnx-int8"])
def test_each_cpu_mode_loads_and_predicts_the_fp32_labels(bert, tiny_model, texts, mode, tmp_path_factory, monkeypatch):
    monkeypatch.setenv(bert.ONNX_CACHE_ENV, str(tmp_path_factory.getbasetemp() / "onnx-cache"))
    fp32 = bert.predict_proba(tiny_model, texts, inference="fp32", device="cpu")
    probs = bert.predict_proba(tiny_model, texts, inference=mode, device="cpu")
    assert probs.shape == (len(texts), 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert bert.load_scorer(tiny_model, mode, "cpu")[4] == mode  # that mode really ran
    # a tiny model's probabilities sit near uniform, so its labels flip on noise: compare what it
    # learned instead, the rows' deviations from fp32's mean, which the quantised model must keep
    # (the labels' agreement on a real model is bench/bench_bert_scoring.py's "agree" column)
    assert np.abs(probs - fp32).mean() < 0.05, f"{mode}: mean |p - p_fp32| {np.abs(probs - fp32).mean():.3f}"
    centred = fp32 - fp32.mean(axis=0)
    corr = np.corrcoef(centred.ravel(), (probs - fp32.mean(axis=0)).ravel())[0, 1]
    assert corr > 0.8, f"{mode}: its probabilities follow fp32's with correlation {corr:.2f}"
    if mode == "onnx":  # same fp32 arithmetic, fused: the same probabilities
        assert np.allclose(probs, fp32, atol=1e-4)
    else:
        assert np.abs(probs - fp32).max() < 0.25


@pytest.mark.slow  # uses the fine-tuned tiny model
@pytest.mark.parametrize("mode", ["fp32", "onnx"])
def test_sorted_batching_returns_predictions_in_input_order(
    bert, tiny_model, texts, mode, tmp_path_factory, monkeypatch
):
    monkeypatch.setenv(bert.ONNX_CACHE_ENV, str(tmp_path_factory.getbasetemp() / "onnx-cache"))
    perm = np.random.default_rng(7).permutation(len(texts))
    probs = bert.predict_proba(tiny_model, texts, inference=mode, device="cpu", batch_size=4)
    shuffled = bert.predict_proba(tiny_model, [texts[i] for i in perm], inference=mode, device="cpu", batch_size=4)
    assert np.allclose(shuffled, probs[perm], atol=1e-4)  # row i of the shuffled input is text perm[i]
    one_by_one = np.vstack([bert.predict_proba(tiny_model, [t], inference=mode, device="cpu") for t in texts[:6]])
    assert np.allclose(one_by_one, probs[:6], atol=1e-4)  # no padding at all: the independent reference
    assert bert.predict_proba(tiny_model, [], inference=mode, device="cpu").shape == (0, 3)


_SCORE_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import bert
probs = bert.predict_proba(sys.argv[2], ["a lovely dress", "the zipper broke", "fine"], inference="onnx-int8",
                           device="cpu")
np.save(sys.argv[3], probs)
"""


@pytest.mark.slow  # uses the fine-tuned tiny model
def test_parallel_score_processes_on_a_cold_cache_export_once_and_agree(bert, tiny_model, tmp_path):
    """A new champion's mapped score tasks start at once: one exports and quantises, the others wait."""
    models = Path(bert.__file__).parent
    env = {**os.environ, bert.ONNX_CACHE_ENV: str(tmp_path / "cold-cache")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SCORE_IN_A_FRESH_PROCESS, str(models), tiny_model, str(tmp_path / f"p{i}.npy")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for i in range(3)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(o[-2000:] for o in outputs)
    everything = "\n".join(outputs)
    exports, quantisations = everything.count("] exported "), everything.count("quantised the ONNX model")
    assert (exports, quantisations) == (1, 1), everything[-3000:]
    first = np.load(tmp_path / "p0.npy")
    for i in (1, 2):
        assert np.array_equal(np.load(tmp_path / f"p{i}.npy"), first)
    left = sorted(p.name for p in (tmp_path / "cold-cache").rglob("*") if p.is_file())
    assert [n for n in left if n.endswith(".tmp") or n.startswith(("source-", "raw-"))] == [], left
