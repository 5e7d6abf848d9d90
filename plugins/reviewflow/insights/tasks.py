"""What the review_insights task does for date D: SQL in the engine, the tests, terms, trends, outputs.

1. include/sql/insights_daily.sql (DuckDB locally, Athena on AWS): daily counts per product, class
   and department over [D - baseline_days, D]; detect.py tests D against the baseline.
2. For each alert, include/sql/insights_texts.sql fetches that key's reviews; terms.py finds the
   over-represented terms and a few example reviews.
3. include/sql/insights_weekly.sql: weekly shares over the whole history; trends.py the movers.
4. Outputs, each rewritten whole on a rerun (idempotent per date): catalog tables
   ``product_sentiment_daily`` and ``product_alerts`` (partition dt=D), and
   ``reports/insights/dt=D/insights.json`` + ``insights.html``.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from reviewflow import layout
from reviewflow.config import Settings
from reviewflow.insights.detect import LEVEL_NAMES, DetectionSettings, daily_figures, flag_keys, rule_text
from reviewflow.insights.terms import examples, weighted_log_odds
from reviewflow.insights.trends import movers, weekly_shares

if TYPE_CHECKING:
    from reviewflow.storage.catalog import Catalog
    from reviewflow.storage.lake import Lake
    from reviewflow.storage.sql import SqlEngine

log = logging.getLogger(__name__)

DAILY_COLUMNS = {
    "dt": "VARCHAR", "level": "VARCHAR", "key": "VARCHAR", "reviews": "BIGINT", "negatives": "BIGINT",
    "negative_share": "DOUBLE", "mean_rating": "DOUBLE", "baseline_reviews": "BIGINT", "baseline_negatives": "BIGINT",
    "baseline_negative_share": "DOUBLE", "baseline_mean_rating": "DOUBLE", "tested": "BOOLEAN",
    "skip_reason": "VARCHAR", "p_value": "DOUBLE", "q_value": "DOUBLE", "alert": "BOOLEAN",
}  # fmt: skip
ALERT_COLUMNS = {
    "dt": "VARCHAR",
    "level": "VARCHAR",
    "key": "VARCHAR",
    "label": "VARCHAR",
    "reviews": "BIGINT",
    "negatives": "BIGINT",
    "negative_share": "DOUBLE",
    "baseline_negative_share": "DOUBLE",
    "q_value": "DOUBLE",
    "rule": "VARCHAR",
    "terms": "VARCHAR",
    "example_ids": "VARCHAR",
}  # fmt: skip  terms / example_ids: JSON lists (portable between DuckDB and Athena)


def _sql(name: str, engine: SqlEngine) -> str:
    from reviewflow.storage.sql import render_sql

    return render_sql(
        name, database=engine.database, predictions=layout.PREDICTIONS_TABLE, curated=layout.CURATED_TABLE
    )


def window_start(dt: str, baseline_days: int) -> str:
    return (date.fromisoformat(dt) - timedelta(days=baseline_days)).isoformat()


def fetch_daily(engine: SqlEngine, dt: str, start: str) -> pd.DataFrame:
    frame = engine.query(_sql("insights_daily", engine), [start, dt, start, dt])
    frame["dt"] = frame["dt"].astype(str)
    frame["key"] = frame["key"].astype(str)
    for column in ("reviews", "negatives"):
        frame[column] = pd.to_numeric(frame[column]).fillna(0).astype("int64")
    frame["rating_sum"] = pd.to_numeric(frame["rating_sum"]).fillna(0.0)
    return frame


def fetch_texts(engine: SqlEngine, dt: str, start: str, level: str, key: str) -> pd.DataFrame:
    frame = engine.query(_sql("insights_texts", engine), [level, start, dt, start, dt, key])
    frame["dt"] = frame["dt"].astype(str)
    return frame


def label(level: str, key: str, categories: dict[str, str]) -> str:
    """How a person reads the key: "product 1078 (Dresses)", "class Knits"."""
    if level == "product":
        return f"product {key}" + (f" ({categories[key]})" if key in categories else "")
    return f"{LEVEL_NAMES[level]} {key}"


def compute_insights(engine: SqlEngine, dt: str, settings: Settings) -> dict[str, Any]:
    """The insights of D as a dict (the JSON report), plus the two table frames under ``_tables``."""
    from reviewflow.bias.dates import check_date

    dt = check_date(dt)
    detection = DetectionSettings.from_settings(settings)
    start = window_start(dt, detection.baseline_days)
    daily = fetch_daily(engine, dt, start)
    figures = (
        flag_keys(daily_figures(daily, dt), detection) if len(daily) else pd.DataFrame(columns=list(DAILY_COLUMNS))
    )
    figures = figures.assign(dt=dt)
    today = figures[figures["reviews"] > 0] if len(figures) else figures
    product_class = _product_classes(engine, dt, start)
    alerts = []
    for row in today[today["alert"]].to_dict("records") if len(today) else []:
        texts = fetch_texts(engine, dt, start, row["level"], row["key"])
        focus = texts[(texts["dt"] == dt) & (texts["sentiment_pred"] == -1)]
        reference = terms_reference(texts, dt)
        terms = weighted_log_odds(_joined(focus), _joined(reference))
        alerts.append({
            "level": row["level"], "key": row["key"], "label": label(row["level"], row["key"], product_class),
            "reviews": int(row["reviews"]), "negatives": int(row["negatives"]),
            "negative_share": round(float(row["negative_share"]), 4),
            "baseline_negative_share": round(float(row["baseline_negative_share"]), 4),
            "baseline_reviews": int(row["baseline_reviews"]), "q_value": float(row["q_value"]),
            "p_value": float(row["p_value"]), "rule": rule_text(row, detection),
            "terms": [t["term"] for t in terms], "term_scores": terms, "examples": examples(focus, terms),
        })  # fmt: skip
    alerts.sort(key=lambda a: (a["q_value"], -(a["negative_share"] - a["baseline_negative_share"])))
    by_level = {}
    for level in LEVEL_NAMES:
        rows = today[today["level"] == level] if len(today) else today
        reasons = rows.loc[~rows["tested"].astype(bool), "skip_reason"].value_counts().to_dict() if len(rows) else {}
        by_level[level] = {
            "keys": int(len(rows)), "tested": int(rows["tested"].sum()) if len(rows) else 0,
            "skipped": int((~rows["tested"].astype(bool)).sum()) if len(rows) else 0,
            "skip_reasons": {str(k): int(v) for k, v in reasons.items()},
            "alerts": sum(1 for a in alerts if a["level"] == level),
        }  # fmt: skip
    weekly = weekly_shares(engine.query(_sql("insights_weekly", engine), [dt, dt]))
    return {
        "dt": dt,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reviews": int(today.loc[today["level"] == "product", "reviews"].sum()) if len(today) else 0,
        "tested": sum(v["tested"] for v in by_level.values()),
        "skipped": sum(v["skipped"] for v in by_level.values()),
        "by_level": by_level,
        "method": {
            "test": "one-sided beta-binomial test of D's predicted-negative count against the key's own baseline",
            "multiplicity": "Benjamini-Hochberg per level and day",
            "terms": "weighted log-odds, informative Dirichlet prior",
            "window": {"start": start, "end": dt},
            **detection.__dict__,
        },  # fmt: skip
        "alerts": alerts,
        "trends": {"weekly": weekly.to_dict("records"), "movers": movers(weekly)},
        "series": _alert_series(daily, alerts, dt, start),
        "_tables": {"daily": today, "alerts": alerts},
    }


TERMS_GUARD_DAYS = 3  # the days just before D are left out of the terms' reference ...
MIN_REFERENCE_REVIEWS = 30  # ... unless too few reviews would remain


def terms_reference(texts: pd.DataFrame, dt: str) -> pd.DataFrame:
    """The key's baseline reviews to compare D's complaints with, without the last few days.

    An incident that began yesterday is not its own baseline: with its reviews in the reference,
    its complaint terms would look ordinary on the incident's second and third day.
    """
    baseline = texts[texts["dt"] < dt]
    guarded = baseline[baseline["dt"] < window_start(dt, TERMS_GUARD_DAYS)]
    return guarded if len(guarded) >= MIN_REFERENCE_REVIEWS else baseline


def _joined(frame: pd.DataFrame) -> list[str]:
    return [
        " ".join(s for s in (t, r) if isinstance(s, str) and s)
        for t, r in zip(frame["title"], frame["review_text"], strict=True)
    ]


def _product_classes(engine: SqlEngine, dt: str, start: str) -> dict[str, str]:
    """product id -> its class, from the window's curated rows (for readable labels)."""
    sql = (
        f"SELECT CAST(clothing_id AS VARCHAR) AS product, MAX(class_name) AS class_name "
        f"FROM {engine.database}.{layout.CURATED_TABLE} WHERE dt >= ? AND dt <= ? GROUP BY 1"
    )
    frame = engine.query(sql, [start, dt])
    return {str(p): str(c) for p, c in zip(frame["product"], frame["class_name"], strict=True) if c is not None}


def _alert_series(daily: pd.DataFrame, alerts: list[dict], dt: str, start: str) -> list[dict]:
    """Per alerted key: its daily reviews and negative share over the window (the small multiples)."""
    out = []
    for alert in alerts:
        rows = daily[(daily["level"] == alert["level"]) & (daily["key"] == alert["key"])].sort_values("dt")
        out.append({
            "level": alert["level"], "key": alert["key"], "label": alert["label"],
            "baseline_negative_share": alert["baseline_negative_share"],
            "days": [{"dt": d, "reviews": int(n), "negative_share": round(float(x) / n, 4) if n else None}
                     for d, n, x in zip(rows["dt"], rows["reviews"], rows["negatives"], strict=True)],
        })  # fmt: skip
    return out


def _parquet(frame: pd.DataFrame, columns: dict[str, str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_()}
    schema = pa.schema([pa.field(name, types[kind]) for name, kind in columns.items()])
    frame = frame.reindex(columns=list(columns))
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def write_tables(lake: Lake, catalog: Catalog, dt: str, daily: pd.DataFrame, alerts: list[dict]) -> dict[str, str]:
    """Both catalog tables' partition dt=D, rewritten whole (an empty day writes typed, empty files)."""
    from reviewflow.storage.lake import replace_partition

    rows = pd.DataFrame(
        [
            {**{k: a[k] for k in ALERT_COLUMNS if k in a}, "dt": dt, "terms": json.dumps(a["terms"]),
             "example_ids": json.dumps([e["review_id"] for e in a["examples"]])}
            for a in alerts
        ],
        columns=list(ALERT_COLUMNS),
    )  # fmt: skip
    daily = daily.assign(dt=dt) if len(daily) else pd.DataFrame(columns=list(DAILY_COLUMNS))
    if len(daily):
        daily = daily.assign(tested=daily["tested"].astype(bool), alert=daily["alert"].astype(bool))
    out = {}
    for table, frame, columns in (
        (layout.PRODUCT_SENTIMENT_TABLE, daily, DAILY_COLUMNS),
        (layout.PRODUCT_ALERTS_TABLE, rows, ALERT_COLUMNS),
    ):
        prefix = layout.insights_table_prefix(table)
        replace_partition(lake, layout.dt_prefix(prefix, dt), {layout.PART: _parquet(frame, columns)})
        catalog.register_table(table, lake.uri(prefix), columns, "parquet")
        catalog.register_partition(table, dt)
        out[table] = lake.uri(layout.dt_prefix(prefix, dt))
    return out


def run_insights(dt: str, settings: Settings, lake: Lake, catalog: Catalog, engine: SqlEngine) -> dict[str, Any]:
    """Compute, write the tables and both report files for D; a small summary (for XCom and the alerts)."""
    from reviewflow.insights.report import render_html
    from reviewflow.storage.lake import write_json

    report = compute_insights(engine, dt, settings)
    tables = report.pop("_tables")
    report["tables"] = write_tables(lake, catalog, report["dt"], tables["daily"], tables["alerts"])
    json_key, html_key = layout.insights_report_keys(report["dt"])
    report["uri"] = lake.uri(html_key)
    write_json(lake, json_key, report)
    lake.write_bytes(html_key, render_html(report).encode("utf-8"))
    for alert in report["alerts"]:
        log.warning(
            "PRODUCT ISSUE dt=%s %s: %s; terms: %s", dt, alert["label"], alert["rule"], ", ".join(alert["terms"])
        )
    log.info("dt=%s: %d keys tested, %d skipped, %d alert(s)", dt, report["tested"], report["skipped"],
             len(report["alerts"]))  # fmt: skip
    return {
        "dt": report["dt"], "tested": report["tested"], "skipped": report["skipped"],
        "alerts": [{k: a[k] for k in ("level", "key", "label", "negative_share", "baseline_negative_share",
                                      "q_value", "rule", "terms", "reviews")} for a in report["alerts"]],
        "uri": report["uri"], "json_uri": lake.uri(json_key),
    }  # fmt: skip


def uninsighted_dates(catalog: Catalog, lake: Lake) -> list[str]:
    """Scored dates with no insights report yet (asset events Airflow did not hand to a run; see bias.dates)."""
    if not catalog.table_columns(layout.PREDICTIONS_TABLE):
        return []
    done = {
        k.split("/dt=")[1].split("/")[0]
        for k in lake.list(layout.INSIGHTS_REPORTS + "/")
        if k.endswith("/insights.json")
    }
    return sorted(set(catalog.partitions(layout.PREDICTIONS_TABLE)) - done)


def product_alerts(summary: dict) -> list:
    """The day's product-issue alerts as alert records (critical when far past the rule, else warning)."""
    from reviewflow.alerts.record import Alert

    out = []
    for a in summary["alerts"]:
        rise = a["negative_share"] - a["baseline_negative_share"]
        out.append(Alert(
            kind="product", severity="critical" if a["q_value"] <= 1e-4 and rise >= 0.25 else "warning",
            dt=summary["dt"], title=f"{a['label']}: {a['negative_share']:.0%} negative on {summary['dt']} "
            f"(baseline {a['baseline_negative_share']:.0%})",
            detail="complaint terms: " + (", ".join(a["terms"]) or "(none stand out)"),
            uri=summary["uri"], rank=rise, rule=a["rule"],
        ))  # fmt: skip
    return out


def publish_product_alerts(lake: Lake, settings: Settings, results: list[dict], context=None) -> dict:
    """Each date's product alerts into reports/alerts/dt=D/ and one digest for the run."""
    from reviewflow.alerts.tasks import publish_dates

    by_date = {r["dt"]: product_alerts(r) for r in results if r}
    if not by_date:
        return {"alerts": 0, "sent": False}
    return publish_dates(lake, settings, "review_insights", by_date, context)
