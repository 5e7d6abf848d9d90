"""Drift: compare a day's inputs and predictions with the champion's training reference.

A profile summarises a set of scored reviews: predicted-label shares, text-length bins
(edges fixed by the reference's quantiles), department mix, and the share of tokens outside
the reference vocabulary. Distribution shifts are measured with PSI; the OOV share by its rise.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter

import numpy as np
import pandas as pd

from reviewflow import layout
from reviewflow.config import Settings
from reviewflow.layout import dt_prefix

log = logging.getLogger(__name__)

TOKEN = re.compile(r"[a-z']+")
EPS = 1e-4  # floor for empty bins, so PSI stays finite (the usual convention)
LENGTH_BINS = 10
VOCAB_SIZE = 20000


def tokens(text: str) -> list[str]:
    return TOKEN.findall(str(text).lower())


def shares(values: pd.Series, categories: list) -> dict[str, float]:
    counts = values.value_counts()
    total = max(int(counts.sum()), 1)
    return {str(c): float(counts.get(c, 0)) / total for c in categories}


def psi(expected: dict[str, float], actual: dict[str, float]) -> float:
    """Population stability index: sum (a - e) ln(a / e), bins floored at EPS."""
    total = 0.0
    for key in set(expected) | set(actual):
        e = max(expected.get(key, 0.0), EPS)
        a = max(actual.get(key, 0.0), EPS)
        total += (a - e) * math.log(a / e)
    return total


def reference_profile(texts: pd.Series, predictions: pd.Series, departments: pd.Series) -> dict:
    """The champion's reference, from texts it was trained on (validation split) and its predictions."""
    lengths = texts.fillna("").str.len()
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, LENGTH_BINS + 1))[1:-1]).tolist()
    counter: Counter[str] = Counter()
    for text in texts.fillna(""):
        counter.update(tokens(text))
    profile = {
        "length_edges": edges,
        "vocabulary": [w for w, _ in counter.most_common(VOCAB_SIZE)],
        "departments": sorted(departments.dropna().unique().tolist()),
    }
    profile.update(profile_of(texts, predictions, departments, profile))
    return profile


def profile_of(texts: pd.Series, predictions: pd.Series, departments: pd.Series, reference: dict) -> dict:
    lengths = texts.fillna("").str.len()
    bins = np.digitize(lengths, reference["length_edges"])
    vocabulary = set(reference["vocabulary"])
    n_tokens = n_oov = 0
    for text in texts.fillna(""):
        words = tokens(text)
        n_tokens += len(words)
        n_oov += sum(1 for w in words if w not in vocabulary)
    categories = [*reference["departments"], "(other)"]
    mapped = departments.where(departments.isin(reference["departments"]), "(other)")
    return {
        "rows": int(len(texts)),
        "predicted": shares(predictions.astype(int), [-1, 0, 1]),
        "length": shares(pd.Series(bins), list(range(len(reference["length_edges"]) + 1))),
        "department": shares(mapped, categories),
        "oov_share": n_oov / n_tokens if n_tokens else 0.0,
    }


def compare(
    reference: dict, current: dict, psi_threshold: float, oov_threshold: float = Settings.drift_oov_threshold
) -> dict:
    checks = []
    for name in ("predicted", "length", "department"):
        value = psi(reference[name], current[name])
        checks.append({"check": f"{name} distribution", "metric": "PSI", "value": round(value, 4),
                       "threshold": psi_threshold, "alert": value > psi_threshold})  # fmt: skip
    rise = current["oov_share"] - reference["oov_share"]
    checks.append({"check": "out-of-vocabulary share", "metric": "rise", "value": round(rise, 4),
                   "threshold": oov_threshold, "alert": rise > oov_threshold})  # fmt: skip
    return {"checks": checks, "alerts": [c for c in checks if c["alert"]]}


def concept_shares(predicted: pd.Series, realised: pd.Series) -> dict:
    """Concept drift, measurable because ratings arrive with the reviews: predicted vs realised label shares.

    ``realised`` is the rating sentiment (scoring/quality.py also lets human labels win; this is the
    cheap view). Informational: the alert on the model's quality is realised quality's decay rule.
    """
    pred, real = shares(predicted.astype(int), [-1, 0, 1]), shares(realised.dropna().astype(int), [-1, 0, 1])
    return {"predicted": pred, "realised": real, "psi": round(psi(real, pred), 4),
            "gap": {k: round(pred[k] - real[k], 4) for k in pred}}  # fmt: skip


def render_html(dt: str, model: str, reference: dict, current: dict, result: dict, concept: dict | None = None) -> str:
    """A self-contained page: the checks, predicted vs realised label shares (concept drift), then
    reference vs today for each distribution."""
    from reviewflow.reports.render import render

    distributions = [
        ("Predicted sentiment (-1 negative, 0 neutral, 1 positive)", "predicted"),
        ("Review length (character bins, reference deciles)", "length"),
        ("Department mix", "department"),
    ]
    return render("drift_report.html.j2", empty=False, dt=dt, model=model, reference=reference, current=current,
                  result=result, distributions=distributions, concept=concept,
                  label_names={"-1": "negative", "0": "neutral", "1": "positive"})  # fmt: skip


def champion_reference(lake, champion: dict) -> dict:
    """The champion's reference profile: its validation split and its own predictions on it.

    Computed once per champion and cached in its model folder.
    """
    from reviewflow.scoring.score import LABELS
    from reviewflow.storage.lake import read_json, write_json
    from reviewflow.training.dataset import read_dataset_uri
    from reviewflow.training.predictor import load_predictor

    key = layout.model_prefix(champion["model_name"], champion["version"]) + layout.DRIFT_REFERENCE
    if lake.exists(key):
        return read_json(lake, key)
    dataset = read_dataset_uri(champion["dataset_uri"])
    validation = dataset[dataset["split"] == "validation"]
    probabilities = load_predictor(champion)(validation["text"].tolist())
    predicted = pd.Series(LABELS[np.asarray(probabilities).argmax(axis=1)])
    profile = reference_profile(
        validation["text"].reset_index(drop=True), predicted, validation["department_name"].reset_index(drop=True)
    )
    write_json(lake, key, profile)
    return profile


def drift_report(lake, dt: str, settings: Settings) -> dict:
    """reports/drift/dt=<dt>/drift_report.json + .html: the day's scored reviews vs the champion's reference."""
    from reviewflow.scoring.score import review_texts
    from reviewflow.storage.lake import read_parquet, replace_partition
    from reviewflow.training.registry import champion as current_champion

    champion = current_champion(lake)
    prefix = dt_prefix(layout.DRIFT_REPORTS, dt)
    if champion is None or not lake.list(dt_prefix(layout.PREDICTIONS, dt)):
        log.info("dt=%s: no champion or no predictions, no drift report", dt)
        return {"dt": dt, "skipped": "no champion or no predictions for the date"}
    model = f"{champion['model_name']}:{champion['version']}"
    # Per-day frames are one partition each: bounded by the day's size, not the lake's.
    predictions = read_parquet(lake, layout.predictions_key(dt))
    if predictions.empty:
        return write_empty_report(lake, dt, model)
    curated_key = layout.curated_key(dt)
    if not lake.exists(curated_key):
        raise FileNotFoundError(f"{lake.uri(curated_key)}: {len(predictions)} predictions for {dt} but no curated file")
    curated = read_parquet(lake, curated_key)
    truth = ["sentiment"] if "sentiment" in curated.columns else []
    day = curated[["review_id", "title", "review_text", "department_name", *truth]].merge(
        predictions[["review_id", "sentiment_pred"]], on="review_id", how="inner"
    )
    if day.empty:
        raise ValueError(
            f"dt={dt}: none of the {len(predictions)} predictions matches a curated review of the date "
            "(rescore the date: its predictions are stale)"
        )
    reference = champion_reference(lake, champion)
    current = profile_of(
        pd.Series(review_texts(day), dtype=object), day["sentiment_pred"], day["department_name"], reference
    )
    result = compare(reference, current, settings.drift_psi_threshold, settings.drift_oov_threshold)
    report = {"dt": dt, "model": model, "reference_rows": reference["rows"], "current": current, **result}
    if truth:
        report["concept"] = concept_shares(day["sentiment_pred"], day["sentiment"])
    for alert in result["alerts"]:
        log.warning(
            "DRIFT dt=%s %s: %s %.4f > %s", dt, alert["check"], alert["metric"], alert["value"], alert["threshold"]
        )
    replace_partition(
        lake,
        prefix,
        {
            "drift_report.json": json.dumps(report, indent=2).encode(),
            "drift_report.html": render_html(dt, model, reference, current, result, report.get("concept")).encode(),
        },
    )
    report["uri"] = lake.uri(prefix + "drift_report.html")
    return report


def no_reviews_message(dt: str) -> str:
    return f"no reviews on {dt}: nothing to compare with the reference (no PSI on empty data, no alert)"


def render_empty_html(dt: str, model: str) -> str:
    from reviewflow.reports.render import render

    return render("drift_report.html.j2", empty=True, dt=dt, model=model, message=no_reviews_message(dt))


def write_empty_report(lake, dt: str, model: str) -> dict:
    """An empty day's drift report: it says "no reviews", computes no PSI and raises no alert."""
    from reviewflow.storage.lake import replace_partition

    prefix = dt_prefix(layout.DRIFT_REPORTS, dt)
    report = {"dt": dt, "model": model, "rows": 0, "no_reviews": True, "message": no_reviews_message(dt),
              "checks": [], "alerts": []}  # fmt: skip
    log.info("dt=%s: %s", dt, report["message"])
    replace_partition(
        lake,
        prefix,
        {
            "drift_report.json": json.dumps(report, indent=2).encode(),
            "drift_report.html": render_empty_html(dt, model).encode(),
        },
    )
    report["uri"] = lake.uri(prefix + "drift_report.html")
    return report
