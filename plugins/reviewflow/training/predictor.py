"""Load a registered model for scoring: a callable texts -> (n, 3) class probabilities.

The entry points (include/models/<kind>.py) own their model files; this loads one by path and,
for a model in S3, syncs its folder to a local cache first. The callable also carries
``explain(texts, predicted, top, max_rows) -> list[str]``: each text's reasons for its predicted
class index, formatted by include/models/explain.py (TF-IDF: exact term contributions for every
text; BERT: integrated-gradients word attributions for the first ``max_rows`` texts, "" after).
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
    return _models_module(kind)


def explain_module():
    """include/models/explain.py (the model-side explanations), loaded by path like the entry points."""
    return _models_module("explain")


def _models_module(kind: str):
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
    if entry["kind"] == "ensemble":
        return _ensemble_predictor(entry, module, model_dir)
    from reviewflow.config import get_settings

    # BERT's CPU inference mode (fp32 / int8 / onnx / onnx-int8 / auto) is a setting; TF-IDF has none
    options = {"inference": get_settings().bert_inference} if entry["kind"] == "bert" else {}

    def predict(texts: list[str]) -> np.ndarray:
        return module.predict_proba(model_dir, list(texts), **options)

    predict.explain = _explainer(entry["kind"], module, model_dir)  # type: ignore[attr-defined]
    predict.model = f"{entry['model_name']}:{entry['version']}"  # type: ignore[attr-defined]
    return predict


def _ensemble_predictor(entry: dict, module, model_dir: str) -> Callable[[list[str]], np.ndarray]:
    """The members' predictors (each loaded as its own entry, S3 synced) combined with the saved weights.

    Its reasons are the TF-IDF member's exact term contributions (the member that can explain every row).
    """
    spec = module.read_ensemble(model_dir)
    members = {kind: load_predictor({**entry, "kind": kind, "model_uri": uri}) for kind, uri in spec["members"].items()}

    def predict(texts: list[str]) -> np.ndarray:
        texts = list(texts)
        probs = {kind: member(texts) for kind, member in members.items()}
        return module.combine(probs, spec["weights"], spec["temperature"])

    predict.explain = members["tfidf"].explain  # type: ignore[attr-defined]
    predict.model = f"{entry['model_name']}:{entry['version']}"  # type: ignore[attr-defined]
    return predict


def _explainer(kind: str, module, model_dir: str) -> Callable[..., list[str]]:
    """texts, predicted class indices, top, max_rows, before -> one reasons string per text.

    ``top`` / ``max_rows`` left None are the settings ``explain_top_terms`` / ``explain_max_bert_rows``
    (read when first needed, inside the task); ``before``: rows of the same queue passed in earlier
    calls, which count towards BERT's ``max_rows``. Models load lazily (cached by the entry points).
    """
    explain = explain_module()
    defaults: list[int] = []  # (top, max_rows) from the settings, read once

    def reasons(
        texts: list[str], predicted, top: int | None = None, max_rows: int | None = None, before: int = 0
    ) -> list[str]:
        if (top is None or max_rows is None) and not defaults:
            from reviewflow.config import get_settings

            settings = get_settings()
            defaults.extend([settings.explain_top_terms, settings.explain_max_bert_rows])
        top = defaults[0] if top is None else top
        max_rows = defaults[1] if max_rows is None else max_rows
        texts = list(texts)
        if kind == "tfidf":  # exact and cheap: every text, whatever max_rows
            found = explain.tfidf_reasons(module.load_model(model_dir), texts, predicted, top)
        elif kind == "bert":
            tokenizer, model, _, max_length = module.load_model(model_dir)
            limit = max(0, max_rows - before)  # `before` rows of the same queue were explained already
            found = explain.bert_reasons(model, tokenizer, texts, predicted, top, limit, max_length)
        else:  # a kind without an explainer: the column stays empty
            found = [None] * len(texts)
        return [explain.format_reasons(r) for r in found]

    return reasons
