"""What the ``alerts`` task of each DAG and the task-failure callback do.

    publish(lake, settings, source, dt, alerts, context=None) -> {"uri", "alerts", "sent", "digest"}
    publish_run_alerts(lake, settings, context) -> dict     # the final task of each reviewflow DAG
    report_task_failure(context) -> dict | None             # on_failure_callback (via dag_defaults)

A run collects only its own findings (the ingest report written by this run, the bias reports of
this run's dates, this run's gate decision, this run's drift and realised-quality reports), writes them per date under
its DAG id as the source, and sends one digest for the whole run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from reviewflow import layout
from reviewflow.alerts.digest import redact, send_digest
from reviewflow.alerts.record import Alert
from reviewflow.alerts.sources import (
    from_bias_report,
    from_decision,
    from_drift_report,
    from_ingest_report,
    from_realised_quality,
)
from reviewflow.alerts.store import write_alerts
from reviewflow.config import Settings

if TYPE_CHECKING:
    from reviewflow.storage.lake import Lake

log = logging.getLogger(__name__)

STALE_SLACK = timedelta(minutes=5)  # clock skew allowed between a report's writer and the run's start


def publish(
    lake: Lake, settings: Settings, source: str, dt: str, alerts: Iterable[Alert], context: Any | None = None
) -> dict:
    """Write ``alerts`` as ``source``'s part of ``dt`` (replacing it), then send one digest."""
    alerts = list(alerts)
    uri = write_alerts(lake, dt, source, alerts)
    digest = send_digest(settings, source, dt, alerts, context)
    return {"uri": uri, "alerts": len(alerts), "sent": digest["sent"], "digest": digest}


def publish_dates(
    lake: Lake, settings: Settings, source: str, by_date: Mapping[str, list[Alert]], context: Any | None = None
) -> dict:
    """Several dates of one run (a bias or scoring catch-up): one part per date, one digest for the run."""
    dates = sorted(by_date)
    uris = {dt: write_alerts(lake, dt, source, by_date[dt]) for dt in dates}
    label = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]} ({len(dates)} dates)" if dates else "-"
    every = [a for dt in dates for a in by_date[dt]]
    digest = send_digest(settings, source, label, every, context)
    return {"uris": uris, "uri": next(iter(uris.values()), None) if len(uris) == 1 else None,
            "alerts": len(every), "sent": digest["sent"], "digest": digest}  # fmt: skip


# -- what each DAG's run found ----------------------------------------------------------------


def _read_json(lake: Lake, key: str) -> dict | None:
    return json.loads(lake.read_bytes(key)) if lake.exists(key) else None


def ingest_alerts(lake: Lake, settings: Settings, dt: str, run_id: str | None = None) -> list[Alert]:
    """The ingest report of ``dt``, if this run (``run_id``) wrote it."""
    key = layout.ingest_report_key(dt)
    report = _read_json(lake, key)
    if report is None or (run_id is not None and report.get("ingest_run") != run_id):
        log.info("dt=%s: no ingest report of run %s (curate did not finish): no ingest alerts", dt, run_id)
        return []
    return from_ingest_report(report, settings, uri=lake.uri(key))


def _generated_at(report: dict) -> datetime | None:
    try:
        return datetime.fromisoformat(report["generated_at"])
    except (KeyError, TypeError, ValueError):
        return None


def bias_alerts(lake: Lake, settings: Settings, dates: Iterable[str], since: datetime | None = None) -> dict:
    """dt -> alerts of each date's bias report; a report older than ``since`` (an earlier run's) is left out."""
    out = {}
    for dt in sorted(set(dates)):
        json_key, html_key = layout.bias_report_keys(dt)
        report = _read_json(lake, json_key)
        made = _generated_at(report) if report else None
        if report is None or (since is not None and made is not None and made < since - STALE_SLACK):
            log.info("dt=%s: no bias report written by this run: no bias alerts for it", dt)
            continue
        out[dt] = from_bias_report(report, settings, uri=lake.uri(html_key))
    return out


def drift_alerts(summaries: Iterable[dict | None]) -> dict:
    """dt -> alerts from the drift tasks' results (each has dt, alerts, uri, model)."""
    out: dict[str, list[Alert]] = {}
    for s in summaries:
        if s and s.get("dt"):
            out.setdefault(s["dt"], []).extend(from_drift_report({**s, "alerts": s.get("alerts") or []}))
    return out


def realised_quality_alerts(summaries: Iterable[dict | None]) -> dict:
    """dt -> alerts from the realised_quality tasks' results (a decayed date: one critical alert)."""
    out: dict[str, list[Alert]] = {}
    for s in summaries:
        if s and s.get("dt"):
            out.setdefault(s["dt"], []).extend(from_realised_quality(s))
    return out


def decision_alerts(lake: Lake, dt: str, run_id: str, decision: dict | None = None) -> list[Alert]:
    """The run's final gate decision (finalize's result, else what the gate recorded)."""
    decision = decision or _read_json(lake, layout.decision_key(run_id))
    return from_decision(decision, dt) if decision else []


def _as_list(value) -> list:
    """xcom_pull of a mapped task: None, one value (one map index) or a list of them."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return [v for v in value if v is not None]


def run_date(context: Mapping) -> str | None:
    """The run's date: its logical date, else the day of its ``run_after`` (asset-triggered runs)."""
    if context.get("ds"):
        return str(context["ds"])
    run = context.get("dag_run")
    when = getattr(run, "logical_date", None) or getattr(run, "run_after", None)
    return when.date().isoformat() if when else None


def publish_run_alerts(lake: Lake, settings: Settings, context: Mapping) -> dict:
    """The final task of a reviewflow DAG: this run's findings, written per date, one digest."""
    ti, run = context["ti"], context.get("dag_run")
    dag_id, run_id, dt = ti.dag_id, context.get("run_id") or ti.run_id, run_date(context)
    if dag_id == "reviews_ingest":
        by_date = {dt: ingest_alerts(lake, settings, dt, run_id)}
    elif dag_id == "reviews_bias_report":
        dates = _as_list(ti.xcom_pull(task_ids="report_dates"))
        dates = dates[0] if dates and isinstance(dates[0], list) else dates
        by_date = bias_alerts(lake, settings, dates, since=getattr(run, "start_date", None))
    elif dag_id == "sentiment_training":
        by_date = {dt: decision_alerts(lake, dt, run_id, ti.xcom_pull(task_ids="finalize"))}
    elif dag_id == "sentiment_batch_scoring":
        by_date = drift_alerts(_as_list(ti.xcom_pull(task_ids="drift")))
        for d, found in realised_quality_alerts(_as_list(ti.xcom_pull(task_ids="realised_quality"))).items():
            by_date.setdefault(d, []).extend(found)
    else:
        raise ValueError(f"no alert collector for DAG {dag_id!r}")
    by_date = {d: a for d, a in by_date.items() if d}
    if not by_date:
        log.info("%s run %s: nothing to report on (no dates finished)", dag_id, run_id)
        return {"uris": {}, "alerts": 0, "sent": False}
    return publish_dates(lake, settings, dag_id, by_date, context)


# -- a task failed ------------------------------------------------------------------------------


def _failure_settings() -> Settings:
    """Settings for the callback: with the Variable if it loads, else the environment alone."""
    from reviewflow.config import ConfigError, get_settings, load_settings

    try:
        return get_settings()
    except ConfigError as exc:  # the task may have failed for exactly this reason
        log.warning("settings with the Airflow Variable do not load (%s): using the environment alone", exc)
        return load_settings()


def failure_alert(context: Mapping) -> Alert:
    """One task_failure alert from a failed task's context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id, task_id = getattr(ti, "dag_id", "?"), getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    map_index = -1 if map_index is None else int(map_index)
    exc = context.get("exception")
    first = (str(exc).strip().splitlines() or [""])[0] if exc is not None else ""
    error = redact(f"{type(exc).__name__}: {first}" if exc is not None else "unknown error")[:300]
    try:
        log_url = str(ti.log_url)
    except Exception:  # noqa: BLE001 - a URL is a courtesy; the alert goes out without it
        log_url = ""
    where = f"{dag_id}.{task_id}" + (f"[{map_index}]" if map_index >= 0 else "")
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    return Alert(
        kind="task_failure", severity="critical", dt=run_date(context) or "unknown", title=f"{where} failed: {error}",
        rule="a task failed for good (no retries left, or an error a retry cannot fix)",
        detail=f"dag {dag_id}, task {task_id}, map index {map_index}, run {run_id}, "
               f"try {getattr(ti, 'try_number', '?')}",
        uri=log_url,
    )  # fmt: skip


def failure_source(alert_context: Mapping) -> str:
    ti = alert_context.get("ti") or alert_context.get("task_instance")
    map_index = getattr(ti, "map_index", -1)
    suffix = f"_{map_index}" if map_index is not None and map_index >= 0 else ""
    return f"task_failures_{getattr(ti, 'dag_id', 'unknown')}_{getattr(ti, 'task_id', 'unknown')}{suffix}"


def report_task_failure(context: Mapping) -> dict:
    """Write the failure as an alert of its date and send its own one-alert digest (may raise: see dag_defaults)."""
    from reviewflow.storage.lake import get_lake

    settings = _failure_settings()
    alert = failure_alert(context)
    source = failure_source(context)
    result = publish(get_lake(settings.lake), settings, source, alert.dt, [alert], context)
    log.info("task failure recorded in %s (digest sent: %s)", result["uri"], result["sent"])
    return result
