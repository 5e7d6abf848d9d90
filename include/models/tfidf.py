"""TF-IDF baseline: a small candidate search over sklearn pipelines, best by validation macro-F1.

Runs without Airflow (a subprocess, a container or a SageMaker job)::

    python include/models/tfidf.py --dataset DATASET.parquet --output MODEL_DIR

The dataset is the parquet written by ``reviewflow.training.dataset`` (columns ``review_id``,
``text``, ``label`` in -1/0/1, ``split`` in train/validation/test). ``--dataset`` and ``--output``
may be local paths or ``s3://`` URIs. The model dir receives ``model.joblib`` (a fitted
``Pipeline``), ``leaderboard.json`` (every candidate's validation scores), ``metrics.json``,
``params.json``, ``model_meta.json`` and ``test_predictions.parquet`` / ``validation_predictions.parquet``
(review_id, label, pred, p_negative, p_neutral, p_positive) for evaluation.

Labels -1/0/1 are class indices 0/1/2 (negative/neutral/positive) inside the model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # not a package and maybe off sys.path (registry loads us by path): model_io sits here
    sys.path.insert(0, _HERE)

from model_io import CLASS_NAMES, LABELS, make_log, output_dir, prediction_frame, read_dataset, scores, splits, to_index  # noqa: E402

MODEL_FILE = "model.joblib"

log = make_log("tfidf")


# -- the model ------------------------------------------------------------------------------


def candidates(grid: str) -> list[dict]:
    """The search space: feature set x classifier x regularisation (6 candidates; 2 for quick)."""
    full = [
        {"features": "word", "clf": "logreg", "C": 0.5},
        {"features": "word", "clf": "logreg", "C": 1.0},
        {"features": "word+char", "clf": "logreg", "C": 0.5},
        {"features": "word+char", "clf": "logreg", "C": 1.0},
        {"features": "word+char", "clf": "logreg", "C": 2.0},
        {"features": "word+char", "clf": "svc", "C": 0.1},
    ]
    return full if grid == "full" else [full[1], {"features": "word", "clf": "svc", "C": 0.1}]


def make_features(kind: str, min_df: int):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    word = TfidfVectorizer(
        analyzer="word", ngram_range=(1, 2), min_df=min_df, max_df=0.9, sublinear_tf=True, strip_accents="unicode",
        lowercase=True, token_pattern=r"(?u)\b\w[\w']*\b", max_features=200_000,
    )  # fmt: skip
    parts = [("word", word)]
    if kind == "word+char":
        char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), min_df=min_df, sublinear_tf=True, lowercase=True,
            max_features=300_000,
        )  # fmt: skip
        parts.append(("char", char))
    return FeatureUnion(parts)


def make_classifier(spec: dict, seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if spec["clf"] == "logreg":
        return LogisticRegression(C=spec["C"], class_weight="balanced", max_iter=2000, random_state=seed)
    svc = LinearSVC(C=spec["C"], class_weight="balanced", random_state=seed)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=3)


def full_proba(model, x) -> np.ndarray:
    """(n, 3) probabilities in class order 0/1/2 even if a class was missing from training."""
    raw = model.predict_proba(x)
    out = np.zeros((raw.shape[0], 3))
    for j, cls in enumerate(model.classes_):
        out[:, int(cls)] = raw[:, j]
    return out


def train(frame: pd.DataFrame, grid: str = "full", seed: int = 13, min_df: int = 2) -> tuple[object, list[dict], dict]:
    """Fit every candidate on train, score on validation; return (best pipeline, leaderboard, best spec)."""
    from sklearn.pipeline import Pipeline

    parts = splits(frame)
    y_train, y_val = to_index(parts["train"]["label"]), to_index(parts["validation"]["label"])
    features: dict[str, tuple] = {}
    board, best = [], None
    for spec in candidates(grid):
        started = time.monotonic()
        if spec["features"] not in features:  # vectorise once per feature set
            vec = make_features(spec["features"], min_df)
            x_train = vec.fit_transform(parts["train"]["text"])
            features[spec["features"]] = (vec, x_train, vec.transform(parts["validation"]["text"]))
        vec, x_train, x_val = features[spec["features"]]
        clf = make_classifier(spec, seed).fit(x_train, y_train)
        val = scores(y_val, full_proba(clf, x_val).argmax(axis=1))
        row = {**spec, "n_features": int(x_train.shape[1]), "val_macro_f1": val["macro_f1"],
               "val_accuracy": val["accuracy"], "fit_seconds": round(time.monotonic() - started, 2)}  # fmt: skip
        board.append(row)
        log(f"candidate {spec}: val macro-F1 {val['macro_f1']:.4f} acc {val['accuracy']:.4f} ({row['fit_seconds']}s)")
        if best is None or row["val_macro_f1"] > best[0]["val_macro_f1"]:
            best = (row, Pipeline([("features", vec), ("clf", clf)]))
    board.sort(key=lambda r: -r["val_macro_f1"])
    for rank, row in enumerate(board, 1):
        row["rank"] = rank
    return best[1], board, best[0]


def run(dataset: str, output: str, grid: str = "full", seed: int = 13, min_df: int = 2) -> dict:
    import joblib
    import sklearn

    started = time.monotonic()
    frame = read_dataset(dataset)
    parts = splits(frame)
    log(f"dataset {dataset}: " + ", ".join(f"{k}={len(v)}" for k, v in parts.items()))
    model, board, spec = train(frame, grid, seed, min_df)
    train_seconds = time.monotonic() - started
    log(f"best: {spec}")
    metrics = {"model": "tfidf", "train_seconds": round(train_seconds, 2), "best": spec}
    preds = {}
    for name in ("validation", "test"):
        probs = full_proba(model, parts[name]["text"])
        preds[name] = prediction_frame(parts[name], probs)
        metrics[name] = scores(to_index(parts[name]["label"]), probs.argmax(axis=1))
    metrics["train_rows"] = len(parts["train"])
    params = {"grid": grid, "seed": seed, "min_df": min_df, "best": spec, "dataset": dataset}
    with output_dir(output, log) as out:
        joblib.dump(model, out / MODEL_FILE, compress=3)
        (out / "leaderboard.json").write_text(json.dumps(board, indent=2))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (out / "params.json").write_text(json.dumps(params, indent=2))
        meta = {
            "kind": "tfidf",
            "labels": LABELS,
            "classes": CLASS_NAMES,
            "framework": f"scikit-learn {sklearn.__version__}",
        }
        (out / "model_meta.json").write_text(json.dumps(meta, indent=2))
        for name, pred in preds.items():
            pred.to_parquet(out / f"{name}_predictions.parquet", index=False)
    log(f"test macro-F1 {metrics['test']['macro_f1']:.4f} accuracy {metrics['test']['accuracy']:.4f}; "
        f"{metrics['train_seconds']}s; wrote {output}")  # fmt: skip
    return metrics


# -- scoring --------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def load_model(model_dir: str):
    import joblib

    return joblib.load(Path(model_dir) / MODEL_FILE)


def predict_proba(model_dir: str, texts: list[str]) -> np.ndarray:
    """(n, 3) probabilities (negative, neutral, positive) for ``texts``."""
    if len(texts) == 0:
        return np.zeros((0, 3))
    return full_proba(load_model(str(model_dir)), list(texts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset parquet: path or s3:// URI")
    parser.add_argument("--output", required=True, help="model dir: path or s3:// URI")
    parser.add_argument("--grid", choices=["full", "quick"], default="full")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--min-df", type=int, default=2)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        log(f"ignoring unknown arguments {unknown}")
    run(args.dataset, args.output, args.grid, args.seed, args.min_df)
    return 0


if __name__ == "__main__":
    sys.exit(main())
