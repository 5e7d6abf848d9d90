"""Ensemble: a weighted average of this run's TF-IDF and BERT probabilities, its own registered candidate.

Runs without Airflow, after both members have been trained for the same dataset::

    python include/models/ensemble.py --dataset DATASET.parquet --output MODEL_DIR \
        --members tfidf=TFIDF_MODEL_DIR,bert=BERT_MODEL_DIR

Nothing is re-trained: the members' ``validation_predictions.parquet`` give the weight (the TF-IDF
weight ``w`` in 0, 0.05, ..., 1 with the best validation macro-F1; ties go to the weight nearest
0.5), ``p = w * p_tfidf + (1 - w) * p_bert``; test is only reported, never used to choose. The
two models make different errors (word statistics vs context), which is where an average gains.

The model dir receives ``ensemble.json`` (member kinds, model dirs and weights: the members stay
in their own immutable version folders), ``metrics.json`` (validation and test scores, the weight
search, training seconds = the members' plus this step's), ``params.json``, ``model_meta.json`` and
the ``validation`` / ``test`` prediction parquets like every entry point. Scoring loads each
member with its own entry point (the platform's predictor does, with its S3 sync) and calls
``combine``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # not a package and maybe off sys.path (registry loads us by path): model_io sits here
    sys.path.insert(0, _HERE)

from model_io import (  # noqa: E402
    CLASS_NAMES,
    LABELS,
    PROBA_COLUMNS,
    make_log,
    output_dir,
    prediction_frame,
    read_bytes,
    read_dataset,
    scores,
    splits,
    to_index,
)

ENSEMBLE_FILE = "ensemble.json"
MEMBER_KINDS = ("tfidf", "bert")  # the weight is the first member's
WEIGHT_GRID = [round(w, 2) for w in np.linspace(0.0, 1.0, 21)]

log = make_log("ensemble")


TEMPERATURE_GRID = np.geomspace(0.05, 20.0, 241)


def combine(probs: dict[str, np.ndarray], weights: dict[str, float], temperature: float = 1.0) -> np.ndarray:
    """The weighted average of the members' (n, 3) probabilities (weights sum to 1), at ``temperature``."""
    total = sum(weights.values())
    average = sum(np.asarray(probs[name], dtype="float64") * (w / total) for name, w in weights.items())
    return sharpen(average, temperature)


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the same argmax, so the same labels and macro-F1; only the confidences move."""
    if temperature == 1.0 or len(probs) == 0:
        return probs
    logits = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def choose_temperature(probs: np.ndarray, y_idx: np.ndarray) -> float:
    """The temperature with the least log-loss on these (validation) rows.

    The weight is chosen for macro-F1, which only sees the argmax: a weak member with near-uniform
    probabilities can take most of the weight and leave every row's confidence under the review
    queue's threshold (seen: weight 0.85 on a 1,000-sample BERT, all 1,964 rows of a day queued).
    """
    if len(probs) == 0:
        return 1.0
    rows = np.arange(len(y_idx))
    losses = [-np.log(np.clip(sharpen(probs, t)[rows, y_idx], 1e-12, 1.0)).mean() for t in TEMPERATURE_GRID]
    return round(float(TEMPERATURE_GRID[int(np.argmin(losses))]), 4)


def member_predictions(model_dir: str, split: str) -> pd.DataFrame:
    """A member's ``<split>_predictions.parquet`` (local folder or s3:// prefix)."""
    return pd.read_parquet(io.BytesIO(read_bytes(model_dir.rstrip("/") + f"/{split}_predictions.parquet")))


def aligned(members: dict[str, str], part: pd.DataFrame, split: str) -> dict[str, np.ndarray]:
    """Each member's probabilities for the rows of ``part``, in its order (a missing row is an error)."""
    out = {}
    for name, model_dir in members.items():
        frame = member_predictions(model_dir, split).set_index("review_id")
        missing = set(part["review_id"]) - set(frame.index)
        if missing:
            raise SystemExit(
                f"{name} ({model_dir}) has no {split} prediction for {len(missing)} of this dataset's rows "
                f"(e.g. {sorted(missing)[:3]}): members must be trained on the same dataset"
            )
        out[name] = frame.loc[part["review_id"], PROBA_COLUMNS].to_numpy(dtype="float64")
    return out


def choose_weight(probs: dict[str, np.ndarray], y_idx: np.ndarray) -> tuple[float, list[dict]]:
    """The first member's weight with the best macro-F1 on these (validation) rows, and the search."""
    first, second = MEMBER_KINDS
    search = []
    for w in WEIGHT_GRID:
        pred = combine(probs, {first: w, second: 1 - w}).argmax(axis=1)
        search.append({"weight": w, "val_macro_f1": scores(y_idx, pred)["macro_f1"]})
    best = max(search, key=lambda r: (round(r["val_macro_f1"], 6), -abs(r["weight"] - 0.5)))
    return best["weight"], search


def parse_members(text: str) -> dict[str, str]:
    members = dict(part.split("=", 1) for part in text.split(",") if part.strip())
    if set(members) != set(MEMBER_KINDS):
        raise SystemExit(f"--members needs exactly {', '.join(f'{k}=DIR' for k in MEMBER_KINDS)}; got {text!r}")
    return {k: members[k] for k in MEMBER_KINDS}


def run(dataset: str, output: str, members: dict[str, str]) -> dict:
    started = time.monotonic()
    parts = splits(read_dataset(dataset))
    val = aligned(members, parts["validation"], "validation")
    weight, search = choose_weight(val, to_index(parts["validation"]["label"]))
    first, second = MEMBER_KINDS
    weights = {first: float(weight), second: round(1 - float(weight), 2)}
    temperature = choose_temperature(combine(val, weights), to_index(parts["validation"]["label"]))
    log(f"weights {weights} (best validation macro-F1 of {len(search)} weights); temperature {temperature} "
        "(least validation log-loss)")  # fmt: skip
    member_metrics = {name: json.loads(read_bytes(d.rstrip("/") + "/metrics.json")) for name, d in members.items()}
    metrics = {"model": "ensemble", "weights": weights, "temperature": temperature, "weight_search": search,
               "members": {n: {"model_dir": d, "validation_macro_f1": member_metrics[n]["validation"]["macro_f1"],
                               "test_macro_f1": member_metrics[n]["test"]["macro_f1"],
                               "train_seconds": member_metrics[n].get("train_seconds")} for n, d in members.items()}}  # fmt: skip
    preds = {}
    for name, probs in (("validation", val), ("test", aligned(members, parts["test"], "test"))):
        combined = combine(probs, weights, temperature)
        preds[name] = prediction_frame(parts[name], combined)
        metrics[name] = scores(to_index(parts[name]["label"]), combined.argmax(axis=1))
    own = time.monotonic() - started
    metrics["train_seconds"] = round(own + sum(m.get("train_seconds") or 0 for m in member_metrics.values()), 2)
    metrics["ensemble_seconds"] = round(own, 2)
    with output_dir(output, log) as out:
        (out / ENSEMBLE_FILE).write_text(
            json.dumps({"members": members, "weights": weights, "temperature": temperature}, indent=2)
        )
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (out / "params.json").write_text(json.dumps({"members": members, "weight_grid": WEIGHT_GRID}, indent=2))
        meta = {"kind": "ensemble", "labels": LABELS, "classes": CLASS_NAMES, "members": list(members)}
        (out / "model_meta.json").write_text(json.dumps(meta, indent=2))
        for name, pred in preds.items():
            pred.to_parquet(out / f"{name}_predictions.parquet", index=False)
    log(f"validation macro-F1 {metrics['validation']['macro_f1']:.4f}, test macro-F1 {metrics['test']['macro_f1']:.4f} "
        f"(members' test: " + ", ".join(f"{n} {m['test_macro_f1']:.4f}" for n, m in metrics["members"].items()) +
        f"); wrote {output}")  # fmt: skip
    return metrics


def read_ensemble(model_dir: str) -> dict:
    """``ensemble.json`` of a (local) ensemble model dir: members {kind: model dir}, weights, temperature
    (1.0 for ensembles saved before it existed)."""
    return {"temperature": 1.0, **json.loads(Path(model_dir, ENSEMBLE_FILE).read_text())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset parquet: path or s3:// URI")
    parser.add_argument("--output", required=True, help="model dir: path or s3:// URI")
    parser.add_argument("--members", required=True, help="tfidf=MODEL_DIR,bert=MODEL_DIR (paths or s3:// URIs)")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        log(f"ignoring unknown arguments {unknown}")
    run(args.dataset, args.output, parse_members(args.members))
    return 0


if __name__ == "__main__":
    sys.exit(main())
