"""The model report for people: one self-contained HTML page per model version.

    render_report(evaluation, model_name, version, info, champion, decision, dppl_threshold) -> str
    write_report(lake, model_name, version, evaluation, ...) -> uri   # report.html + evaluation.json

Sections: headline metrics and run info, the gate's decision, per-class scores and the confusion
matrix, the comparison with the champion (same test split), macro-F1 by facet, the
post-training bias table, and the global importance: for a TF-IDF model the terms with the
largest weight per class (``global_importance``, from include/models/explain.py); a BERT model
has no global weights (its reasons are per review, in the review queue). The page is templates/model_report.html.j2 of reviewflow.reports, the
plots matplotlib's Figure API (reviewflow.reports.render: no pyplot, no global state).
"""

from __future__ import annotations

import io

from reviewflow import layout
from reviewflow.contract import CLASS_NAMES, FACETS
from reviewflow.reports.render import figure, png_data_uri, render
from reviewflow.storage.lake import Lake, read_json, write_json
from reviewflow.training.evaluate import BIAS_METRICS, compare

DPI = 110
GLOBAL_TOP_TERMS = 15  # per class in the report
BERT_NOTE = ("A fine-tuned transformer has no global term weights: its reasons are per review "
             "(integrated-gradients word attributions, the review queue's reasons column).")  # fmt: skip


def global_importance(lake: Lake, model_name: str, version: str, top: int = GLOBAL_TOP_TERMS) -> dict:
    """``{kind, terms: {class: [{term, weight}]} | None, note}`` for models/<model>/<version>/.

    TF-IDF: the classifier's largest positive coefficients per class (read from ``model.joblib``).
    Other kinds, or a model dir without its file: ``terms`` None and a note saying why.
    """
    import joblib

    from reviewflow.training.predictor import _entry_point, explain_module

    prefix = layout.model_prefix(model_name, version)
    meta = prefix + "model_meta.json"
    kind = read_json(lake, meta).get("kind", model_name) if lake.exists(meta) else model_name
    if kind == "bert":
        return {"kind": kind, "terms": None, "note": BERT_NOTE}
    if kind != "tfidf":
        return {"kind": kind, "terms": None, "note": f"no global importance for a {kind} model"}
    key = prefix + _entry_point("tfidf").MODEL_FILE
    if not lake.exists(key):
        return {"kind": kind, "terms": None, "note": f"no model file at {lake.uri(key)}"}
    pipeline = joblib.load(io.BytesIO(lake.read_bytes(key)))
    terms = explain_module().tfidf_global_terms(pipeline, top)
    return {
        "kind": kind,
        "terms": {c: [{"term": t, "weight": round(w, 4)} for t, w in rows] for c, rows in terms.items()},
        "note": "Largest logistic-regression (or mean calibrated linear SVM) coefficients per class; quoted "
        "terms are character n-grams, their spaces the word boundaries.",
    }


def importance_plot(importance: dict) -> str:
    """The top terms per class as horizontal bars (one panel per class), a PNG data URI; "" without terms."""
    terms = importance.get("terms") or {}
    if not any(terms.values()):
        return ""
    fig = figure(figsize=(3.6 * len(terms), 0.26 * max(len(v) for v in terms.values()) + 1.0))
    axes = fig.subplots(1, len(terms), squeeze=False)[0]
    colors = {"negative": "#c44e52", "neutral": "#8c8c8c", "positive": "#55a868"}
    for ax, (name, rows) in zip(axes, terms.items(), strict=True):
        ax.barh(range(len(rows)), [r["weight"] for r in rows], color=colors.get(name, "#4c72b0"))
        ax.set_yticks(range(len(rows)), [r["term"] for r in rows], fontsize=8)
        ax.invert_yaxis()  # largest on top
        ax.set_title(f"{name}: top terms", fontsize=9)
        ax.set_xlabel("coefficient", fontsize=8)
    fig.tight_layout()
    return png_data_uri(fig, dpi=DPI)


def confusion_plot(evaluation: dict, title: str) -> str:
    """The confusion matrix (rows: true class, columns: predicted class) as a PNG data URI."""
    import numpy as np

    matrix = np.asarray(evaluation["confusion_matrix"]["matrix"])
    fig = figure(figsize=(4.2, 3.6))
    ax = fig.subplots()
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
    return png_data_uri(fig, dpi=DPI)


def facet_plot(evaluation: dict, champion: dict | None = None) -> str:
    """Macro-F1 per facet value (and the champion's, when given) as a PNG data URI."""
    import numpy as np

    facets = [f for f in FACETS if any(r["facet"] == f for r in evaluation["facets"])]
    sizes = [sum(1 for r in evaluation["facets"] if r["facet"] == f) for f in facets]
    fig = figure(figsize=(7.5, 0.32 * sum(sizes) + 1.2 * len(facets)))
    axes = fig.subplots(len(facets), 1, squeeze=False)
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
    return png_data_uri(fig, dpi=DPI)


def _bias_rows(evaluation: dict, dppl_threshold: float | None) -> list[dict]:
    """The bias table's rows; |DPPL| above the threshold is an alert (highlighted)."""
    rows = []
    for r in evaluation["bias"]:
        if r["metric"] not in BIAS_METRICS:
            continue
        alert = (r["metric"] == "DPPL" and dppl_threshold is not None and r["value"] is not None
                 and abs(r["value"]) > dppl_threshold)  # fmt: skip
        rows.append({**r, "label": "positive" if r["label_value"] == 1 else "negative", "alert": alert,
                     "reason": r.get("reason", "")})  # fmt: skip
    return rows


def describe_model(metrics: dict) -> str | None:
    """One line on what was trained, from a model's metrics.json: the TF-IDF candidate the search
    chose, the ensemble's weights and temperature, BERT's rows and epochs (None when unknown)."""
    best = metrics.get("best")
    if isinstance(best, dict) and "clf" in best:
        return f"{best.get('features')} {best.get('clf')} C={best.get('C')} (best of the leaderboard on validation)"
    if isinstance(metrics.get("weights"), dict):
        from reviewflow.training.predictor import _entry_point

        # in the ensemble's member order: the registry's JSON sorts keys, metrics.json keeps the order
        weights = " / ".join(f"{k} {metrics['weights'][k]}" for k in _entry_point("ensemble").MEMBER_KINDS
                             if k in metrics["weights"])  # fmt: skip
        return f"weights {weights}, temperature {metrics.get('temperature', 1.0)} (chosen on validation)"
    if metrics.get("epochs_run") is not None:
        return f"{metrics.get('train_rows')} training rows, {metrics['epochs_run']} epochs ({metrics.get('stop_reason', '')})"
    return None


def render_report(
    evaluation: dict,
    model_name: str,
    version: str,
    info: dict | None = None,
    champion: dict | None = None,
    decision: dict | None = None,
    dppl_threshold: float | None = None,
    importance: dict | None = None,
) -> str:
    """A self-contained HTML page: metrics, confusion matrix, facet F1, bias, champion comparison,
    and ``importance`` (``global_importance``) when given."""
    return render(
        "model_report.html.j2",
        title=f"Model report: {model_name} {version}",
        evaluation=evaluation,
        info=info or {},
        per_class=evaluation["per_class"],
        decision=decision,
        verdict="PROMOTE" if (decision or {}).get("promote") else "KEEP CHAMPION",
        champion=champion,
        comparison=compare(evaluation, champion),
        champion_confusion=confusion_plot(champion, "champion confusion matrix") if champion is not None else "",
        confusion=confusion_plot(evaluation, "confusion matrix (test)"),
        facets=facet_plot(evaluation, champion),
        bias_rows=_bias_rows(evaluation, dppl_threshold),
        dppl_threshold=dppl_threshold,
        importance=importance,
        importance_chart=importance_plot(importance) if importance else "",
    )


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
    """Write ``report.html`` and ``evaluation.json`` under reports/models/<model>/<version>/.

    The global importance is read from the model's files (models/<model>/<version>/) and kept
    in ``evaluation.json`` too (``global_importance``).
    """
    prefix = layout.model_report_prefix(model_name, version)
    importance = global_importance(lake, model_name, version)
    page = render_report(evaluation, model_name, version, info, champion, decision, dppl_threshold, importance)
    uri = lake.write_bytes(prefix + "report.html", page.encode())
    write_json(lake, prefix + "evaluation.json", {"model_name": model_name, "version": version, **evaluation,
                                                  "champion": champion, "decision": decision,
                                                  "global_importance": importance})  # fmt: skip
    return uri
