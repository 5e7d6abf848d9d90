"""Realised quality: the champion's scores on each scored date, with that date's ratings as the truth.

    realised_quality(lake, catalog, dt, settings, champion) -> summary   # one date
    realised_quality_dates(lake, catalog, dates, settings) -> [summary]  # the scoring DAG's task: oldest first

Reviews come with a star rating, so a scored date has labels the night it is scored: the curated
``sentiment`` (from the rating), overridden by a human label (``labels/reviews/labels.parquet``)
where one exists. For date D this computes, on D's predictions:

- macro-F1 (over the three classes, as training's evaluation does), accuracy, per-class F1, and
  macro-F1 per department, class and age band (training/evaluate.py's helpers, reused);
- a 95% confidence interval of macro-F1 by bootstrap: resampling the rows is resampling the 3x3
  confusion counts from a multinomial, so ``BOOTSTRAP_RESAMPLES`` resamples cost O(resamples x 9)
  whatever the day's size (fixed seed: the same day gives the same interval);
- the trend: the earlier dates' rows of the catalog table against the champion's test macro-F1.

Decay: the CI's upper bound is below ``test macro-F1 - realised_quality_max_drop`` on the last
``realised_quality_decay_days`` scored dates of the same model version (D included; empty days
carry no evidence and are skipped). A decayed date gets a critical ``realised_quality`` alert (the
scoring run's alerts) and a ``model_decay`` asset event (the DAG).

Outputs, rewritten whole on a rerun of D: ``reports/realised_quality/dt=D/realised_quality.json`` +
``.html`` and the partition dt=D of the catalog table ``realised_quality`` (``COLUMNS``). An empty
day writes a row with n 0 and nulls, and raises nothing.
"""

from __future__ import annotations

import io
import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from reviewflow import contract, layout
from reviewflow.contract import CLASS_NAMES, LABELS

if TYPE_CHECKING:
    from reviewflow.config import Settings
    from reviewflow.storage.catalog import Catalog
    from reviewflow.storage.lake import Lake

log = logging.getLogger(__name__)

COLUMNS = {
    "dt": "VARCHAR", "model": "VARCHAR", "version": "VARCHAR", "n": "BIGINT", "macro_f1": "DOUBLE",
    "ci_low": "DOUBLE", "ci_high": "DOUBLE", "accuracy": "DOUBLE", "f1_negative": "DOUBLE", "f1_neutral": "DOUBLE",
    "f1_positive": "DOUBLE", "test_macro_f1": "DOUBLE", "decay": "BOOLEAN",
}  # fmt: skip
FACETS = ("department_name", "class_name", "age_band")
BOOTSTRAP_RESAMPLES = 500
BOOTSTRAP_SEED = 20240401
CI_LEVEL = 0.95
TREND_DATES = 120  # the chart and the JSON's trend show at most this many earlier dates


# -- metrics --------------------------------------------------------------------------------------


def macro_f1_from_counts(counts: np.ndarray) -> np.ndarray:
    """Macro-F1 of confusion counts ``(..., 3, 3)`` (rows true, columns predicted); 0 for an undefined class.

    The same as sklearn's ``f1_score(labels=LABELS, average="macro", zero_division=0)``.
    """
    counts = np.asarray(counts, dtype="float64")
    tp = np.diagonal(counts, axis1=-2, axis2=-1)
    denom = counts.sum(axis=-1) + counts.sum(axis=-2)  # 2tp + fn + fp
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    return f1.mean(axis=-1)


def confusion(y_true, y_pred) -> np.ndarray:
    index = {label: i for i, label in enumerate(LABELS)}
    t = np.array([index[int(v)] for v in y_true], dtype=int)
    p = np.array([index[int(v)] for v in y_pred], dtype=int)
    return np.bincount(t * 3 + p, minlength=9).reshape(3, 3)


def bootstrap_ci(
    y_true, y_pred, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED, level: float = CI_LEVEL
) -> tuple[float | None, float | None]:
    """A percentile bootstrap CI of macro-F1 (rows resampled with replacement); (None, None) with no rows."""
    counts = confusion(y_true, y_pred).ravel()
    n = int(counts.sum())
    if n == 0:
        return None, None
    rng = np.random.default_rng(seed)
    samples = rng.multinomial(n, counts / n, size=resamples).reshape(resamples, 3, 3)
    scores = macro_f1_from_counts(samples)
    alpha = (1 - level) / 2
    low, high = np.quantile(scores, [alpha, 1 - alpha])
    return float(low), float(high)


def day_metrics(frame: pd.DataFrame, min_support: int) -> dict:
    """Quality of one day's frame (``label``, ``pred`` and the facet columns), the CI included."""
    from reviewflow.training.evaluate import classification_metrics, facet_quality

    metrics = classification_metrics(frame["label"], frame["pred"])
    metrics["ci_low"], metrics["ci_high"] = bootstrap_ci(frame["label"], frame["pred"])
    metrics["facets"] = facet_quality(frame, FACETS, min_support)
    return metrics


# -- decay ----------------------------------------------------------------------------------------


def below_floor(row: dict, test_macro_f1: float | None, max_drop: float) -> bool:
    """The row's CI upper bound is below the test macro-F1 minus the allowed drop."""
    high = row.get("ci_high")
    if test_macro_f1 is None or high is None or (isinstance(high, float) and math.isnan(high)):
        return False
    return float(high) < float(test_macro_f1) - max_drop


def is_decayed(history: list[dict], today: dict, test_macro_f1: float | None, max_drop: float, days: int) -> bool:
    """Decay on ``today``: it and the ``days - 1`` scored dates before it (same model version, n > 0) are all below.

    ``history``: earlier rows (dt < today's) of the table, any order; rows of other versions and empty days
    are left out.
    """
    if not today.get("n") or not below_floor(today, test_macro_f1, max_drop):
        return False
    same = sorted(
        (r for r in history
         if r["dt"] < today["dt"] and r.get("n") and r.get("model") == today.get("model")
         and r.get("version") == today.get("version")),
        key=lambda r: r["dt"],
    )  # fmt: skip
    window = [*same[-(days - 1) :], today] if days > 1 else [today]
    return len(window) >= days and all(below_floor(r, test_macro_f1, max_drop) for r in window)


def decay_rule(test_macro_f1: float | None, max_drop: float, days: int) -> str:
    floor = "?" if test_macro_f1 is None else f"{test_macro_f1 - max_drop:.4f}"
    return (
        f"the 95% CI's upper bound of realised macro-F1 < test macro-F1 {fmt_num(test_macro_f1)} - {max_drop} "
        f"(realised_quality_max_drop) = {floor} on {days} consecutive scored date(s) (realised_quality_decay_days)"
    )


def fmt_num(value) -> str:
    return "–" if value is None else f"{value:.4f}"


# -- reading the day ------------------------------------------------------------------------------


def truth_frame(lake: Lake, dt: str) -> pd.DataFrame:
    """D's predictions joined with their truth (rating sentiment; a human label wins) and facet columns."""
    from reviewflow.storage.lake import read_parquet

    predictions = read_parquet(lake, layout.predictions_key(dt))
    if predictions.empty:
        return pd.DataFrame(columns=["review_id", "pred", "label", "model_name", "model_version", *FACETS])
    curated_key = layout.curated_key(dt)
    if not lake.exists(curated_key):
        raise FileNotFoundError(f"{lake.uri(curated_key)}: {len(predictions)} predictions for {dt} but no curated file")
    curated = read_parquet(lake, curated_key)[["review_id", "sentiment", "department_name", "class_name", "age"]]
    frame = predictions[["review_id", "sentiment_pred", "model_name", "model_version"]].merge(
        curated, on="review_id", how="inner", validate="one_to_one"
    )
    if frame.empty:
        raise ValueError(f"dt={dt}: none of the {len(predictions)} predictions matches a curated review (rescore it)")
    frame["label"] = frame["sentiment"].astype("int64")
    if lake.exists(layout.LABELS_KEY):
        human = read_parquet(lake, layout.LABELS_KEY)[["review_id", "label"]].drop_duplicates("review_id", keep="last")
        human = human.set_index("review_id")["label"]
        hit = frame["review_id"].isin(human.index)
        frame.loc[hit, "label"] = frame.loc[hit, "review_id"].map(human).astype("int64")
        frame.attrs["human_labels"] = int(hit.sum())
    frame["pred"] = frame["sentiment_pred"].astype("int64")
    frame["age_band"] = [contract.age_band(a) for a in frame["age"]]
    for facet in ("department_name", "class_name"):
        frame[facet] = frame[facet].fillna(contract.MISSING).astype(str)
    return frame


def history_rows(lake: Lake, before: str, limit: int | None = None) -> list[dict]:
    """The table's rows of dates before ``before`` (one small file per date), oldest first."""
    from reviewflow.storage.lake import read_parquet

    keys = sorted(k for k in lake.list(layout.REALISED_QUALITY + "/") if k.endswith("/" + layout.PART))
    dated = [(k.split("/dt=")[1].split("/")[0], k) for k in keys]
    dated = [(d, k) for d, k in dated if d < before]
    if limit is not None:
        dated = dated[-limit:]
    rows = []
    for _, key in dated:
        for r in read_parquet(lake, key).to_dict("records"):
            rows.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
    return rows


def model_test_score(lake: Lake, champion: dict, model: str, version: str) -> float | None:
    """The test macro-F1 of the model that scored the day (the champion's; else its registration's)."""
    if champion and champion.get("model_name") == model and str(champion.get("version")) == version:
        value = (champion.get("metrics") or {}).get("test_macro_f1")
        return None if value is None else float(value)
    from reviewflow.training.registry import get_version

    try:
        value = (get_version(lake, model, version).get("test_evaluation") or {}).get("macro_f1")
    except (FileNotFoundError, OSError, KeyError, ValueError):
        value = None
    if value is None and champion:  # the day was scored by another version: the champion's score as a fallback
        value = (champion.get("metrics") or {}).get("test_macro_f1")
    return None if value is None else float(value)


# -- outputs --------------------------------------------------------------------------------------


def table_parquet(row: dict) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_()}
    schema = pa.schema([pa.field(name, types[kind]) for name, kind in COLUMNS.items()])
    table = pa.Table.from_pylist([{k: row.get(k) for k in COLUMNS}], schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def trend_chart(report: dict) -> str | None:
    """Realised macro-F1 per date with its CI, against the test score and its allowed-drop band (a PNG URI)."""
    from reviewflow.reports.render import figure, png_data_uri

    points = [p for p in report["trend"] if p.get("n")]
    if not points:
        return None
    fig = figure(figsize=(8, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(points))
    f1 = np.array([p["macro_f1"] for p in points], dtype=float)
    low = np.array([p["ci_low"] for p in points], dtype=float)
    high = np.array([p["ci_high"] for p in points], dtype=float)
    test, drop = report["test_macro_f1"], report["rule"]["max_drop"]
    if test is not None:
        ax.axhspan(test - drop, test, color="#cfe3cf", label=f"test macro-F1 {test:.3f} - allowed drop {drop}")
        ax.axhline(test, color="#3a7d3a", lw=1)
    ax.fill_between(x, low, high, color="#c6d4ee", label="95% CI")
    colours = ["#d0473a" if p.get("decay") else "#2f5fb3" for p in points]
    ax.plot(x, f1, color="#2f5fb3", lw=1.2)
    ax.scatter(x, f1, c=colours, s=14, zorder=3, label="realised macro-F1 (red: decay)")
    step = max(1, len(points) // 10)
    ax.set_xticks(x[::step], [p["dt"] for p in points][::step], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("macro-F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower left")
    return png_data_uri(fig)


def render_html(report: dict) -> str:
    from reviewflow.reports.render import render

    return render("realised_quality.html.j2", r=report, chart=trend_chart(report), classes=CLASS_NAMES)


def realised_quality(lake: Lake, catalog: Catalog, dt: str, settings: Settings, champion: dict | None) -> dict:
    """Compute and write D's realised quality (report + table partition); a summary for XCom, alerts, the asset."""
    from reviewflow.storage.lake import replace_partition, write_json

    frame = truth_frame(lake, dt) if lake.list(layout.dt_prefix(layout.PREDICTIONS, dt)) else None
    if frame is not None and len(frame):
        model, version = str(frame["model_name"].iloc[0]), str(frame["model_version"].iloc[0])
    else:
        model = (champion or {}).get("model_name")
        version = None if champion is None else str(champion.get("version"))
    test = model_test_score(lake, champion or {}, model, version) if model else None
    max_drop, days = settings.realised_quality_max_drop, settings.realised_quality_decay_days
    row: dict = {"dt": dt, "model": model, "version": version, "n": 0, "test_macro_f1": test, "decay": False}
    metrics = None
    if frame is not None and len(frame):
        metrics = day_metrics(frame, settings.fairness_min_support)
        row.update(n=metrics["n"], macro_f1=metrics["macro_f1"], accuracy=metrics["accuracy"],
                   ci_low=metrics["ci_low"], ci_high=metrics["ci_high"],
                   **{f"f1_{name}": metrics["per_class"][name]["f1"] for name in CLASS_NAMES})  # fmt: skip
    history = history_rows(lake, dt)
    row["decay"] = is_decayed(history, row, test, max_drop, days)
    prefix = layout.dt_prefix(layout.REALISED_QUALITY, dt)
    replace_partition(lake, prefix, {layout.PART: table_parquet(row)})
    catalog.register_table(layout.REALISED_QUALITY_TABLE, lake.uri(layout.REALISED_QUALITY), COLUMNS, "parquet")
    catalog.register_partition(layout.REALISED_QUALITY_TABLE, dt)
    json_key, html_key = layout.realised_quality_keys(dt)
    trend = [{k: r.get(k) for k in COLUMNS} for r in history[-TREND_DATES:]] + [{k: row.get(k) for k in COLUMNS}]
    report = {
        "dt": dt, "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: row.get(k) for k in COLUMNS if k != "dt"},
        "truth": "curated sentiment (from the rating); a human label wins where one exists",
        "human_labels": int(frame.attrs.get("human_labels", 0)) if frame is not None else 0,
        "per_class": metrics["per_class"] if metrics else None,
        "confusion_matrix": metrics["confusion_matrix"] if metrics else None,
        "facets": metrics["facets"] if metrics else [],
        "ci": {"method": "percentile bootstrap (multinomial resampling of the confusion counts)",
               "level": CI_LEVEL, "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED},
        "rule": {"max_drop": max_drop, "days": days, "text": decay_rule(test, max_drop, days),
                 "below_floor_today": below_floor(row, test, max_drop)},
        "trend": trend,
        "message": None if row["n"] else f"no scored reviews on {dt}: nothing to measure (no alert)",
    }  # fmt: skip
    report["uri"], report["json_uri"] = lake.uri(html_key), lake.uri(json_key)
    write_json(lake, json_key, report)
    lake.write_bytes(html_key, render_html(report).encode("utf-8"))
    if row["decay"]:
        log.warning("MODEL DECAY dt=%s %s:%s: realised macro-F1 %.4f (CI %.4f-%.4f) vs test %.4f", dt, model,
                    version, row["macro_f1"], row["ci_low"], row["ci_high"], test)  # fmt: skip
    else:
        log.info("dt=%s: realised macro-F1 %s (n=%d), test %s", dt, fmt_num(row.get("macro_f1")), row["n"],
                 fmt_num(test))  # fmt: skip
    return {k: report.get(k) for k in ("dt", "model", "version", "n", "macro_f1", "ci_low", "ci_high", "accuracy",
                                       "test_macro_f1", "decay", "uri", "json_uri", "rule")}  # fmt: skip


def realised_quality_dates(lake: Lake, catalog: Catalog, dates: list[str], settings: Settings) -> list[dict]:
    """:func:`realised_quality` of each date, oldest first, for the current champion (the DAG's task)."""
    from reviewflow.training.registry import champion

    entry = champion(lake)
    return [realised_quality(lake, catalog, dt, settings, entry) for dt in sorted(set(dates))]
