"""Load a registered model for scoring: a callable texts -> (n, 3) class probabilities.

The entry points (include/models/<kind>.py) own their model files; this loads one by path and,
for a model in S3, syncs its folder to a local cache first.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from reviewflow.config import MODELS_DIR
from reviewflow.training.registry import KINDS


def _entry_point(kind: str):
    """include/models/<kind>.py as a module (loaded by path: it is not a package)."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    name = f"reviewflow_model_{kind}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, MODELS_DIR / f"{kind}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def local_model_dir(model_uri: str) -> str:
    """A local folder holding the model: the uri itself, or an S3 prefix synced to a cache."""
    if not model_uri.startswith("s3://"):
        return model_uri
    from reviewflow.storage.lake import S3Lake

    bucket, _, prefix = model_uri[len("s3://") :].partition("/")
    prefix = prefix.rstrip("/") + "/"
    source = S3Lake(f"s3://{bucket}")
    cache = Path(tempfile.gettempdir(), "reviewflow-models", bucket, prefix)
    for key in source.list(prefix):
        target = cache / key[len(prefix) :]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes(key))
    return str(cache)


def load_predictor(entry: dict) -> Callable[[list[str]], np.ndarray]:
    """A callable texts -> (n, 3) probabilities (negative, neutral, positive) for a registry entry."""
    module = _entry_point(entry["kind"])
    model_dir = local_model_dir(entry["model_uri"])

    def predict(texts: list[str]) -> np.ndarray:
        return module.predict_proba(model_dir, list(texts))

    predict.model = f"{entry['model_name']}:{entry['version']}"  # type: ignore[attr-defined]
    return predict
