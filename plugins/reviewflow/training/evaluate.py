"""Evaluate a sentiment model on the test split: quality, quality by facet, post-training bias.

Input: test predictions (``review_id``, ``label``, ``pred`` in -1/0/1 and the three class
probabilities) joined with the dataset's facet columns. Output: a JSON-able dict with

- ``macro_f1`` (the primary metric), ``accuracy``, per-class precision / recall / F1 / support and
  the confusion matrix (rows: true class, columns: predicted class; negative, neutral, positive);
- ``facets``: macro-F1 and accuracy per value of department, class, division and age band, with
  the value's support (values under ``min_support`` rows are marked, not dropped);
- ``bias``: SageMaker Clarify post-training bias per facet value, with Clarify's convention: the
  facet value is the disfavoured group *d*, every other row the group *a*; the label value of
  interest is positive (1) and also negative (-1), the labels binarised as "is that value":

  - DPPL = q̂_a - q̂_d, q̂ the share of rows *predicted* as the label value;
  - DI = q̂_d / q̂_a (null with a reason when q̂_a = 0);
  - AD = ACC_a - ACC_d, the accuracy of the binarised prediction in each group;
  - RD = recall_a - recall_d, recall = TP / (TP + FN) of the label value in each group
    (null with a reason when a group has no true instance of the label value).

The HTML model report of an evaluation (``render_report``, ``write_report``) is in
reviewflow.training.report.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from reviewflow import contract
from reviewflow.config import Settings
from reviewflow.contract import CLASS_NAMES, FACETS, LABELS

BIAS_LABEL_VALUES = (1, -1)
BIAS_METRICS = ("DPPL", "DI", "AD", "RD")
# facet values with fewer test rows are reported but marked as low support: the fairness gate's
# own floor (callers pass settings.fairness_min_support; this is its default)
MIN_SUPPORT = Settings.fairness_min_support


def with_facets(predictions: pd.DataFrame, dataset: pd.DataFrame) -> pd.DataFrame:
    """Test predictions joined with the dataset's facet columns (and ``age_band``) on review_id."""
    facets = dataset[["review_id", "division_name", "department_name", "class_name", "age"]]
    frame = predictions.merge(facets, on="review_id", how="left", validate="one_to_one")
    if frame["department_name"].isna().any():
        missing = frame.loc[frame["department_name"].isna(), "review_id"].head(3).tolist()
        raise ValueError(f"predictions for reviews not in the dataset, e.g. {missing}")
    frame["age_band"] = [contract.age_band(a) for a in frame["age"]]
    return frame


# -- quality --------------------------------------------------------------------------------


def classification_metrics(y_true, y_pred) -> dict:
    """Macro-F1 over the three classes, accuracy, per-class scores, confusion matrix."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=LABELS, zero_division=0)
    return {
        "n": int(len(y_true)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else float("nan"),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(CLASS_NAMES)
        },
        "confusion_matrix": {
            "labels": CLASS_NAMES,
            "matrix": confusion_matrix(y_true, y_pred, labels=LABELS).tolist(),
        },
    }


def facet_quality(frame: pd.DataFrame, facets=FACETS, min_support: int = MIN_SUPPORT) -> list[dict]:
    """Macro-F1 per facet value, over the classes present in that value's rows (true or predicted)."""
    from sklearn.metrics import f1_score

    rows = []
    order = {name: i for i, name in enumerate(contract.AGE_BAND_NAMES)}
    for facet in facets:
        groups = sorted(frame.groupby(facet, sort=True), key=lambda g: (order.get(str(g[0]), -1), str(g[0])))
        for value, part in groups:
            rows.append({
                "facet": facet,
                "facet_value": str(value),
                "n": int(len(part)),
                "macro_f1": float(f1_score(part["label"], part["pred"], average="macro", zero_division=0)),
                "accuracy": float((part["label"] == part["pred"]).mean()),
                "enough_support": bool(len(part) >= min_support),
            })  # fmt: skip
    return rows


# -- post-training bias (Clarify) -----------------------------------------------------------


def _record(facet, value, label_value, metric, result, n_a, n_d) -> dict:
    number, reason = result
    record = {"facet": facet, "facet_value": str(value), "label_value": int(label_value), "metric": metric,
              "value": None if number is None else float(number), "n_a": int(n_a), "n_d": int(n_d)}  # fmt: skip
    if reason:
        record["reason"] = reason
    return record


def bias_for_group(label: np.ndarray, pred: np.ndarray, is_d: np.ndarray, label_value: int) -> dict[str, tuple]:
    """DPPL, DI, AD, RD for one facet value (d) against the rest (a): metric -> (value, reason)."""
    out: dict[str, tuple] = {}
    groups = {"a": ~is_d, "d": is_d}
    n = {g: int(m.sum()) for g, m in groups.items()}
    if n["a"] == 0 or n["d"] == 0:
        empty = "a" if n["a"] == 0 else "d"
        reason = f"group {empty} is empty ({'every row has' if empty == 'a' else 'no row has'} this facet value)"
        return {m: (None, reason) for m in BIAS_METRICS}
    y = {g: label[m] == label_value for g, m in groups.items()}
    yhat = {g: pred[m] == label_value for g, m in groups.items()}
    q = {g: float(yhat[g].mean()) for g in groups}
    out["DPPL"] = (q["a"] - q["d"], None)
    out["DI"] = (
        (q["d"] / q["a"], None) if q["a"] > 0 else (None, "q_a = 0: no row of group a is predicted as the label value")
    )
    acc = {g: float((y[g] == yhat[g]).mean()) for g in groups}
    out["AD"] = (acc["a"] - acc["d"], None)
    positives = {g: int(y[g].sum()) for g in groups}
    if positives["a"] == 0 or positives["d"] == 0:
        empty = "a" if positives["a"] == 0 else "d"
        out["RD"] = (None, f"group {empty} has no true instance of the label value: recall undefined")
    else:
        recall = {g: float((y[g] & yhat[g]).sum() / positives[g]) for g in groups}
        out["RD"] = (recall["a"] - recall["d"], None)
    return out


def bias_metrics(frame: pd.DataFrame, facets=FACETS, label_values=BIAS_LABEL_VALUES) -> list[dict]:
    label = frame["label"].astype(int).to_numpy()
    pred = frame["pred"].astype(int).to_numpy()
    records = []
    for facet in facets:
        values = frame[facet].astype(str).to_numpy()
        for value in sorted(set(values)):
            is_d = values == value
            n_d = int(is_d.sum())
            for label_value in label_values:
                results = bias_for_group(label, pred, is_d, label_value)
                records.extend(
                    _record(facet, value, label_value, metric, results[metric], len(values) - n_d, n_d)
                    for metric in BIAS_METRICS
                )
    return records


def evaluate_predictions(frame: pd.DataFrame, min_support: int = MIN_SUPPORT, facets=FACETS) -> dict:
    """The whole evaluation of a facet-joined prediction frame (see the module docstring)."""
    result = classification_metrics(frame["label"], frame["pred"])
    result["facets"] = facet_quality(frame, facets, min_support)
    result["bias"] = bias_metrics(frame, facets)
    result["min_support"] = min_support
    result["evaluated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def evaluate_test_predictions(predictions: pd.DataFrame, dataset: pd.DataFrame, min_support: int = MIN_SUPPORT) -> dict:
    """Evaluate a model's test predictions; they must cover exactly the dataset's test split."""
    test_ids = set(dataset.loc[dataset["split"] == "test", "review_id"])
    pred_ids = set(predictions["review_id"])
    if pred_ids != test_ids:
        raise ValueError(
            f"test predictions cover {len(pred_ids)} reviews, the dataset's test split {len(test_ids)} "
            f"({len(pred_ids - test_ids)} extra, {len(test_ids - pred_ids)} missing): not the same test split"
        )
    return evaluate_predictions(with_facets(predictions, dataset), min_support)


def predict_test_split(predict, dataset: pd.DataFrame, batch_rows: int = 2048) -> pd.DataFrame:
    """Predictions of a predictor (texts -> (n, 3) probabilities) on the dataset's test split."""
    test = dataset[dataset["split"] == "test"].reset_index(drop=True)
    probs = np.concatenate(
        [np.asarray(predict(test["text"].iloc[i : i + batch_rows].tolist()), dtype="float64")
         for i in range(0, len(test), batch_rows)] or [np.zeros((0, 3))]
    )  # fmt: skip
    out = pd.DataFrame({"review_id": test["review_id"], "label": test["label"].astype(int)})
    out["pred"] = np.asarray(LABELS)[probs.argmax(axis=1)] if len(probs) else []
    for i, column in enumerate(["p_negative", "p_neutral", "p_positive"]):
        out[column] = probs[:, i]
    return out


def compare(challenger: dict, champion: dict | None) -> dict | None:
    """Challenger vs champion on the same test split: overall and per-facet macro-F1 deltas."""
    if champion is None:
        return None
    overall = {
        m: {"challenger": challenger[m], "champion": champion[m], "delta": challenger[m] - champion[m]}
        for m in ("macro_f1", "accuracy")
    }
    for name in CLASS_NAMES:
        c, h = challenger["per_class"][name]["f1"], champion["per_class"][name]["f1"]
        overall[f"f1_{name}"] = {"challenger": c, "champion": h, "delta": c - h}
    champ_facets = {(r["facet"], r["facet_value"]): r for r in champion["facets"]}
    facets = [
        {"facet": r["facet"], "facet_value": r["facet_value"], "n": r["n"], "challenger": r["macro_f1"],
         "champion": champ_facets[(r["facet"], r["facet_value"])]["macro_f1"],
         "delta": r["macro_f1"] - champ_facets[(r["facet"], r["facet_value"])]["macro_f1"]}
        for r in challenger["facets"] if (r["facet"], r["facet_value"]) in champ_facets
    ]  # fmt: skip
    return {"overall": overall, "facets": facets}
