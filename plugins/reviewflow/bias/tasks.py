"""What the reviews_bias_report task does: the SQL aggregate in the engine, the metrics, both report files.

The engine (DuckDB locally, Athena on AWS) runs include/sql/bias_counts.sql; only its small count
table comes back, and bias/metrics.py computes every metric from it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reviewflow import contract, layout
from reviewflow.bias.dates import check_date
from reviewflow.bias.metrics import FACETS, build_report
from reviewflow.config import Settings

if TYPE_CHECKING:
    import pandas as pd

    from reviewflow.storage.lake import Lake
    from reviewflow.storage.sql import SqlEngine

log = logging.getLogger(__name__)

SQL_NAME = "bias_counts"
TABLE = layout.CURATED_TABLE


def counts_sql(database: str, table: str = TABLE) -> str:
    from reviewflow.storage.sql import render_sql

    return render_sql(SQL_NAME, database=database, table=table)


def fetch_counts(engine: SqlEngine, dt: str, table: str = TABLE) -> pd.DataFrame:
    """Run the aggregate in the engine; the (small) count table, with tidy dtypes."""
    import pandas as pd

    dt = check_date(dt)
    frame = engine.query(counts_sql(engine.database, table), [dt, dt])
    expected = [*FACETS, "label_value", "n_cumulative", "n_partition"]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise ValueError(f"{SQL_NAME}.sql result lacks columns {missing}: got {list(frame.columns)}")
    frame = frame[expected].copy()
    for column in FACETS:
        frame[column] = frame[column].astype("string").fillna(contract.MISSING).astype(object)
    frame["label_value"] = pd.to_numeric(frame["label_value"], errors="coerce").astype("Int64")
    for column in ("n_cumulative", "n_partition"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64")
    return frame


def compute_bias_report(
    engine: SqlEngine, dt: str, settings: Settings, cddl_groups: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """SQL aggregate in the engine, then the metrics in Python: the report dict."""
    counts = fetch_counts(engine, dt)
    return build_report(
        counts, dt, cddl_groups, settings.bias_dpl_threshold, settings.bias_ci_threshold, settings.bias_alert_min_rows
    )


def report_keys(dt: str) -> tuple[str, str]:
    return layout.bias_report_keys(check_date(dt))


def write_report(lake: Lake, report: dict[str, Any]) -> dict[str, str]:
    """bias_report.json and bias_report.html under reports/bias/dt=D/ (each an atomic write)."""
    from reviewflow.bias.report import render_html
    from reviewflow.storage.lake import write_json

    json_key, html_key = report_keys(report["dt"])
    return {
        "json": write_json(lake, json_key, report),
        "html": lake.write_bytes(html_key, render_html(report).encode("utf-8")),
    }


def run_bias_report(
    dt: str,
    settings: Settings,
    lake: Lake,
    engine: SqlEngine,
    cddl_groups: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The DAG task: compute, write both files, log alerts at WARNING, fail on alerts if asked."""
    report = compute_bias_report(engine, dt, settings, cddl_groups)
    written = write_report(lake, report)
    log.info("bias report for %s: %s rows (cumulative), %s rows (partition); %s, %s", report["dt"],
             report["scopes"]["cumulative"]["rows"], report["scopes"]["partition"]["rows"],
             written["json"], written["html"])  # fmt: skip
    for scope, info in report["scopes"].items():
        if info.get("message"):
            log.info("bias report for %s, scope %s: %s", report["dt"], scope, info["message"])
    for alert in report["alerts"]:
        log.warning("bias alert: %s", alert["message"])
    if report["alerts"] and settings.bias_fail_on_alert:
        # AirflowFailException (an AirflowException): the same data would fail again, so no retry
        from airflow.sdk.exceptions import AirflowFailException

        listed = "\n".join(f"- {a['message']}" for a in report["alerts"])
        raise AirflowFailException(
            f"{len(report['alerts'])} bias alert(s) for {report['dt']} (report written to {written['html']}):\n{listed}"
        )
    return {
        "dt": report["dt"],
        "rows": {scope: info["rows"] for scope, info in report["scopes"].items()},
        "messages": {scope: info["message"] for scope, info in report["scopes"].items() if info.get("message")},
        "metrics": len(report["metrics"]),
        "alerts": len(report["alerts"]),
        **written,
    }
