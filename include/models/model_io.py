"""What the model entry points (tfidf.py, bert.py) share: labels, data in and out, scores.

Plain Python on pandas/numpy (sklearn and boto3 imported where used): no Airflow and no
``reviewflow`` imports, so it runs wherever the entry points run, a subprocess, a Kubernetes pod
or a SageMaker job. It travels with them because every backend ships the whole include/models
folder (the training image copies include/, the SageMaker source dir is include/models), and
each entry point puts its own folder on ``sys.path`` before importing it.

- ``LABELS`` -1/0/1 are class indices 0/1/2 (``CLASS_NAMES``) inside the models; ``to_index``
  maps labels to indices, ``PROBA_COLUMNS`` name the probability columns.
- ``read_dataset`` / ``output_dir``: the dataset parquet and the model dir, each a local path or
  an ``s3://`` URI (the SageMaker input channel and model dir are used when present).
- ``splits``, ``scores``, ``prediction_frame``: train/validation/test parts, macro-F1 and
  per-class scores, the predictions parquet frame.
- ``class_proba`` / ``proba_chunk``: a fitted sklearn model's (n, 3) probabilities; ``proba_chunk``
  is what a scoring worker process runs (it loads the model file once per process).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

LABELS = [-1, 0, 1]
CLASS_NAMES = ["negative", "neutral", "positive"]
PROBA_COLUMNS = ["p_negative", "p_neutral", "p_positive"]


def make_log(prefix: str) -> Callable[[str], None]:
    """A ``log(message)`` printing ``[prefix HH:MM:SS] message``, flushed (it shows in task logs)."""

    def log(message: str) -> None:
        print(f"[{prefix} {time.strftime('%H:%M:%S')}] {message}", flush=True)

    return log


# -- dataset and output locations (local, s3://, SageMaker channel) -------------------------


def s3_client():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``("bucket", "key")``."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def read_bytes(uri: str) -> bytes:
    """A file's bytes: a local path or an ``s3://`` URI."""
    if uri.startswith("s3://"):
        bucket, key = split_s3_uri(uri)
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return Path(uri).read_bytes()


def read_dataset(uri: str) -> pd.DataFrame:
    channel = os.environ.get("SM_CHANNEL_DATASET")  # SageMaker copies the input channel here
    if channel and Path(channel, "dataset.parquet").exists():
        return pd.read_parquet(Path(channel, "dataset.parquet"))
    if uri.startswith("s3://"):
        return pd.read_parquet(io.BytesIO(read_bytes(uri)))
    return pd.read_parquet(uri)


@contextmanager
def output_dir(uri: str, log: Callable[[str], None]):
    """Yield a local folder for the model; upload it afterwards (and ``log`` so) when ``uri`` is s3://.

    For s3:// the folder is a temporary one (SageMaker's ``SM_MODEL_DIR`` when set, which SageMaker
    owns): uploaded only when the body succeeds, and removed whether it succeeds or fails.
    """
    if not uri.startswith("s3://"):
        Path(uri).mkdir(parents=True, exist_ok=True)
        yield Path(uri)
        return
    owned = not os.environ.get("SM_MODEL_DIR")
    local = Path(tempfile.mkdtemp(prefix="reviewflow-model-") if owned else os.environ["SM_MODEL_DIR"])
    try:
        local.mkdir(parents=True, exist_ok=True)
        yield local
        bucket, prefix = split_s3_uri(uri.rstrip("/") + "/")
        client = s3_client()
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            client.upload_file(str(path), bucket, prefix + path.relative_to(local).as_posix())
        log(f"uploaded {local} -> {uri}")
    finally:
        if owned:
            shutil.rmtree(local, ignore_errors=True)


# -- splits, labels, scores, predictions ----------------------------------------------------


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
    """review_id, label, pred (-1/0/1) and one probability column per class."""
    out = pd.DataFrame({"review_id": part["review_id"].to_numpy(), "label": part["label"].astype(int).to_numpy()})
    out["pred"] = np.asarray(LABELS)[probs.argmax(axis=1)]
    for i, column in enumerate(PROBA_COLUMNS):
        out[column] = probs[:, i]
    return out


# -- scoring (also in worker processes: importable as ``model_io``, no reference to an entry point) --


def class_proba(model, x) -> np.ndarray:
    """(n, 3) probabilities in class order 0/1/2 even if a class was missing from training."""
    raw = model.predict_proba(x)
    out = np.zeros((raw.shape[0], 3))
    for j, cls in enumerate(model.classes_):
        out[:, int(cls)] = raw[:, j]
    return out


@lru_cache(maxsize=4)
def load_joblib(path: str):
    """A scikit-learn model file, its TF-IDF vectorizers swapped for the exact faster ones (fast_vectorizers.py)."""
    import joblib
    from fast_vectorizers import accelerate

    return accelerate(joblib.load(path))


def proba_chunk(model_path: str, texts: list[str]) -> np.ndarray:
    """``class_proba`` of the model file at ``model_path`` (loaded once per process) for ``texts``."""
    return class_proba(load_joblib(model_path), texts)
