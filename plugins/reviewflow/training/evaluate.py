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

``render_report`` turns an evaluation (and optionally the comparison with the champion and the
gate's decision) into a self-contained HTML page with plots (inline PNG), written by
``write_report`` to ``reports/models/<model>/<version>/report.html``.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from reviewflow import contract, layout
from reviewflow.contract import CLASS_NAMES, FACETS, LABELS
from reviewflow.storage.lake import Lake, write_json

BIAS_LABEL_VALUES = (1, -1)
BIAS_METRICS = ("DPPL", "DI", "AD", "RD")
MIN_SUPPORT = 30  # facet values with fewer test rows are reported but marked as low support


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


# -- the HTML model report ------------------------------------------------------------------


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def confusion_plot(evaluation: dict, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(evaluation["confusion_matrix"]["matrix"])
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(3), CLASS_NAMES)
    ax.set_yticks(range(3), CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    limit = matrix.max() / 2 if matrix.size and matrix.max() else 0
    for i in range(3):
        for j in range(3):
            ax.text(
                j, i, str(matrix[i, j]), ha="center", va="center", color="white" if matrix[i, j] > limit else "black"
            )
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _png(fig)


def facet_plot(evaluation: dict, champion: dict | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    facets = [f for f in FACETS if any(r["facet"] == f for r in evaluation["facets"])]
    sizes = [sum(1 for r in evaluation["facets"] if r["facet"] == f) for f in facets]
    fig, axes = plt.subplots(len(facets), 1, figsize=(7.5, 0.32 * sum(sizes) + 1.2 * len(facets)), squeeze=False)
    champ = {(r["facet"], r["facet_value"]): r["macro_f1"] for r in (champion or {}).get("facets", [])}
    for ax, facet in zip(axes[:, 0], facets, strict=True):
        rows = [r for r in evaluation["facets"] if r["facet"] == facet]
        y = np.arange(len(rows))
        height = 0.4 if champ else 0.7
        colors = ["#4c72b0" if r["enough_support"] else "#b8c4d6" for r in rows]
        ax.barh(y, [r["macro_f1"] for r in rows], height=height, color=colors, label="this model")
        if champ:
            ax.barh(y + height, [champ.get((facet, r["facet_value"]), 0) for r in rows], height=height,
                    color="#dd8452", label="champion")  # fmt: skip
        ax.axvline(evaluation["macro_f1"], color="black", linestyle="--", linewidth=1, label="overall macro-F1")
        ax.set_yticks(y + (height / 2 if champ else 0), [f"{r['facet_value']} (n={r['n']})" for r in rows], fontsize=8)
        ax.set_xlim(0, 1)
        ax.invert_yaxis()  # first value on top
        ax.set_title(f"macro-F1 by {facet} (pale: fewer than {evaluation['min_support']} rows)", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def render_report(
    evaluation: dict,
    model_name: str,
    version: str,
    info: dict | None = None,
    champion: dict | None = None,
    decision: dict | None = None,
    dppl_threshold: float | None = None,
) -> str:
    """A self-contained HTML page: metrics, confusion matrix, facet F1, bias, champion comparison."""
    info = info or {}
    per_class = "".join(
        f"<tr><td>{n}</td><td>{_fmt(v['precision'])}</td><td>{_fmt(v['recall'])}</td><td>{_fmt(v['f1'])}</td>"
        f"<td>{v['support']}</td></tr>"
        for n, v in evaluation["per_class"].items()
    )
    meta = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in info.items())
    bias_rows = []
    for r in evaluation["bias"]:
        if r["metric"] not in ("DPPL", "DI", "AD", "RD"):
            continue
        alert = (r["metric"] == "DPPL" and dppl_threshold is not None and r["value"] is not None
                 and abs(r["value"]) > dppl_threshold)  # fmt: skip
        bias_rows.append(
            f"<tr class='{'alert' if alert else ''}'><td>{html.escape(r['facet'])}</td><td>{html.escape(r['facet_value'])}</td>"
            f"<td>{'positive' if r['label_value'] == 1 else 'negative'}</td><td>{r['metric']}</td><td>{_fmt(r['value'])}</td>"
            f"<td>{r['n_a']}</td><td>{r['n_d']}</td><td>{html.escape(r.get('reason', ''))}</td></tr>"
        )
    comparison_html = ""
    if champion is not None:
        cmp_ = compare(evaluation, champion)
        rows = "".join(
            f"<tr><td>{k}</td><td>{_fmt(v['challenger'])}</td><td>{_fmt(v['champion'])}</td>"
            f"<td class='{'up' if v['delta'] > 0 else 'down' if v['delta'] < 0 else ''}'>{v['delta']:+.4f}</td></tr>"
            for k, v in cmp_["overall"].items()
        )
        comparison_html = (
            "<h2>Challenger vs champion (same test split)</h2>"
            f"<p>Champion: {html.escape(str(champion.get('model_name', '')))} {html.escape(str(champion.get('version', '')))}, "
            "re-evaluated on this run's test split.</p>"
            f"<table><tr><th>metric</th><th>challenger</th><th>champion</th><th>delta</th></tr>{rows}</table>"
            f"<img src='{confusion_plot(champion, 'champion confusion matrix')}' alt='champion confusion matrix'>"
        )
    decision_html = ""
    if decision is not None:
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in decision.get("reasons", []))
        verdict = "PROMOTE" if decision.get("promote") else "KEEP CHAMPION"
        decision_html = f"<h2>Gate decision: {verdict}</h2><ul>{reasons}</ul>"
    title = f"Model report: {model_name} {version}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
body{{font-family:sans-serif;margin:2em;max-width:70em}} table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}} .alert{{background:#fdd}}
.up{{color:#1a7f37}} .down{{color:#c62828}} img{{margin:.5em 1em .5em 0;vertical-align:top}} .big{{font-size:1.4em}}
</style></head><body><h1>{html.escape(title)}</h1>
<p class="big">Test macro-F1 <b>{evaluation["macro_f1"]:.4f}</b> · accuracy {evaluation["accuracy"]:.4f} · {evaluation["n"]} test reviews</p>
<table>{meta}</table>
{decision_html}
<h2>Per class</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{per_class}</table>
<img src="{confusion_plot(evaluation, "confusion matrix (test)")}" alt="confusion matrix">
{comparison_html}
<h2>Quality by facet</h2>
<img src="{facet_plot(evaluation, champion)}" alt="macro-F1 by facet">
<h2>Post-training bias (SageMaker Clarify definitions)</h2>
<p>Facet value = group d, all other rows = group a; label value of interest positive and negative.
DPPL = q̂<sub>a</sub> − q̂<sub>d</sub> (predicted share of the label value), DI = q̂<sub>d</sub> / q̂<sub>a</sub>,
AD = accuracy<sub>a</sub> − accuracy<sub>d</sub> and RD = recall<sub>a</sub> − recall<sub>d</sub> of the binarised
label value.{f" Rows with |DPPL| above {dppl_threshold} are highlighted." if dppl_threshold is not None else ""}</p>
<table><tr><th>facet</th><th>value (d)</th><th>label value</th><th>metric</th><th>value</th><th>n_a</th><th>n_d</th><th>note</th></tr>
{"".join(bias_rows)}</table>
<p><small>Generated {datetime.now(UTC).isoformat(timespec="seconds")} by reviewflow.</small></p></body></html>"""


def write_report(
    lake: Lake,
    model_name: str,
    version: str,
    evaluation: dict,
    info: dict | None = None,
    champion: dict | None = None,
    decision: dict | None = None,
    dppl_threshold: float | None = None,
) -> str:
    """Write ``report.html`` and ``evaluation.json`` under reports/models/<model>/<version>/."""
    prefix = layout.model_report_prefix(model_name, version)
    page = render_report(evaluation, model_name, version, info, champion, decision, dppl_threshold)
    uri = lake.write_bytes(prefix + "report.html", page.encode())
    write_json(lake, prefix + "evaluation.json", {"model_name": model_name, "version": version, **evaluation,
                                                  "champion": champion, "decision": decision})  # fmt: skip
    return uri
