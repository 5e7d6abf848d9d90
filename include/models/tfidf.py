"""TF-IDF baseline: a small candidate search over sklearn pipelines, best by validation macro-F1.

Runs without Airflow (a subprocess, a container or a SageMaker job)::

    python include/models/tfidf.py --dataset DATASET.parquet --output MODEL_DIR

The dataset is the parquet written by ``reviewflow.training_data`` (columns ``review_id``,
``text``, ``label`` in -1/0/1, ``split`` in train/validation/test). ``--dataset`` and ``--output``
may be local paths or ``s3://`` URIs. The model dir receives ``model.joblib`` (a fitted
``Pipeline``), ``leaderboard.json`` (every candidate's validation scores), ``metrics.json``,
``params.json``, ``model_meta.json`` and ``test_predictions.parquet`` / ``validation_predictions.parquet``
(review_id, label, pred, p_negative, p_neutral, p_positive) for evaluation.

Labels -1/0/1 are class indices 0/1/2 (negative/neutral/positive) inside the model.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

LABELS = [-1, 0, 1]
CLASS_NAMES = ["negative", "neutral", "positive"]
PROBA_COLUMNS = ["p_negative", "p_neutral", "p_positive"]
MODEL_FILE = "model.joblib"


def log(message: str) -> None:
    print(f"[tfidf {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- dataset and output locations (local, s3://, SageMaker channel) -------------------------


def _s3_client():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None)


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def read_dataset(uri: str) -> pd.DataFrame:
    channel = os.environ.get("SM_CHANNEL_DATASET")  # SageMaker copies the input channel here
    if channel and Path(channel, "dataset.parquet").exists():
        return pd.read_parquet(Path(channel, "dataset.parquet"))
    if uri.startswith("s3://"):
        bucket, key = _split_s3(uri)
        return pd.read_parquet(io.BytesIO(_s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()))
    return pd.read_parquet(uri)


@contextmanager
def output_dir(uri: str):
    """Yield a local folder for the model; upload it afterwards when ``uri`` is s3://."""
    if not uri.startswith("s3://"):
        Path(uri).mkdir(parents=True, exist_ok=True)
        yield Path(uri)
        return
    local = Path(os.environ.get("SM_MODEL_DIR") or tempfile.mkdtemp(prefix="reviewflow-model-"))
    local.mkdir(parents=True, exist_ok=True)
    yield local
    bucket, prefix = _split_s3(uri.rstrip("/") + "/")
    client = _s3_client()
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, prefix + path.relative_to(local).as_posix())
    log(f"uploaded {local} -> {uri}")
    if not os.environ.get("SM_MODEL_DIR"):
        shutil.rmtree(local, ignore_errors=True)


def splits(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    missing = {"review_id", "text", "label", "split"} - set(frame.columns)
    if missing:
        raise SystemExit(f"dataset lacks columns {sorted(missing)}")
    parts = {name: frame[frame["split"] == name].reset_index(drop=True) for name in ("train", "validation", "test")}
    empty = [name for name, part in parts.items() if part.empty]
    if empty:
        raise SystemExit(f"dataset has empty split(s): {empty}")
    return parts


def to_index(labels) -> np.ndarray:
    return np.asarray(labels, dtype=int) + 1  # -1/0/1 -> 0/1/2


def scores(y_true_idx: np.ndarray, pred_idx: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y_true_idx, pred_idx, labels=[0, 1, 2], zero_division=0)
    return {
        "macro_f1": float(f1_score(y_true_idx, pred_idx, labels=[0, 1, 2], average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true_idx, pred_idx)),
        "n": int(len(y_true_idx)),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(CLASS_NAMES)
        },
    }


def prediction_frame(part: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    out = pd.DataFrame({"review_id": part["review_id"].to_numpy(), "label": part["label"].astype(int).to_numpy()})
    out["pred"] = np.asarray(LABELS)[probs.argmax(axis=1)]
    for i, column in enumerate(PROBA_COLUMNS):
        out[column] = probs[:, i]
    return out


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
    with output_dir(output) as out:
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
