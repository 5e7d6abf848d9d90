"""A DAG run's report date(s): the one place the UI maps a run to the dates its reports are filed under.

``report_dates(facts)`` is pure: it reads only ``RunFacts`` (the run's own data). ``load_facts``
fills them from Airflow's metadata DB through the API server's own SQLAlchemy session factory
(the plugin runs inside the API server, which is configured for that DB): the run's logical date,
``run_after``, ``conf``, the consumed (triggering) asset events' partition keys / ``extra["dt"]``, and
the dates the run chose itself (the return value XCom of its date-choosing task, which adds the
catch-up dates a DAG finds in the lake). Authorisation is checked before this is called (the route
depends on ``requires_access_dag("GET", RUN)``).

Per DAG, as the DAG itself chooses its dates:
- ``reviews_ingest``, ``sentiment_training``: the logical date (``ds``; the data interval start),
  else the run's ``run_after`` date (a manual run without a logical date);
- ``reviews_bias_report``, ``review_insights``: the dates the run chose (XCom), else the triggering
  asset events' dates, else ``conf["dt"]``, else the logical date, else ``run_after``;
- ``sentiment_batch_scoring``: the dates its ``plan`` task chose to score, else the logical date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# DAG id -> the task whose return value lists the dates the run reports on.
DATE_TASKS = {
    "reviews_bias_report": "report_dates",
    "review_insights": "insight_dates",
    "sentiment_batch_scoring": "plan",
}
# DAGs that read the triggering asset events' dates and a `dt` param / conf key.
EVENT_DAGS = ("reviews_bias_report", "review_insights")


@dataclass(frozen=True)
class RunFacts:
    dag_id: str
    run_id: str
    logical_date: datetime | None = None
    run_after: datetime | None = None
    conf: Mapping[str, Any] = field(default_factory=dict)
    event_dates: tuple[str, ...] = ()  # dates carried by the asset events that triggered the run
    chosen_dates: tuple[str, ...] | None = None  # the run's own choice (XCom of DATE_TASKS[dag_id])
    state: str | None = None


def as_date(value: Any) -> str | None:
    """'YYYY-MM-DD' of a datetime (in UTC), a date or a string that starts with a real date; else None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()[:10]
    if not _DATE.match(text):
        return None
    try:
        date.fromisoformat(text)
    except ValueError:
        return None
    return text


def event_date(partition_key: Any, extra: Any) -> str | None:
    """An asset event's date: its partition key when that is a date, else ``extra["dt"]``."""
    found = as_date(partition_key) if partition_key and _DATE.match(str(partition_key)) else None
    if found:
        return found
    return as_date(extra.get("dt")) if isinstance(extra, Mapping) else None


def _dates(values: Iterable[Any]) -> list[str]:
    return sorted({d for d in (as_date(v) for v in values) if d})


def report_dates(facts: RunFacts) -> list[str]:
    """The dates the run's reports are filed under (sorted, distinct; empty when none can be told)."""
    fallback = [d for d in (as_date(facts.logical_date) or as_date(facts.run_after),) if d]
    if facts.dag_id in DATE_TASKS and facts.chosen_dates is not None:
        chosen = _dates(facts.chosen_dates)
        if chosen or facts.dag_id == "sentiment_batch_scoring":
            return chosen  # scoring's plan may choose no date at all (nothing unscored): no drift report
    if facts.dag_id in EVENT_DAGS:
        events = _dates(facts.event_dates)
        if events:
            return events
        conf_dt = as_date((facts.conf or {}).get("dt"))
        if conf_dt:
            return [conf_dt]
    return fallback


def load_facts(dag_id: str, run_id: str) -> RunFacts | None:
    """The run's facts from the metadata DB (blocking: call it in a thread), or None when no such run."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            return None
        events = tuple(d for d in (event_date(e.partition_key, e.extra) for e in run.consumed_asset_events or []) if d)
        chosen = None
        task_id = DATE_TASKS.get(dag_id)
        if task_id:
            row = session.execute(
                select(XComModel.value).where(
                    XComModel.dag_id == dag_id,
                    XComModel.run_id == run_id,
                    XComModel.task_id == task_id,
                    XComModel.key == "return_value",
                    XComModel.map_index == -1,
                )
            ).first()
            if row is not None:
                value = XComModel.deserialize_value(row)
                if isinstance(value, list):
                    chosen = tuple(str(v) for v in value)
        state = run.state.value if hasattr(run.state, "value") else run.state
        return RunFacts(
            dag_id=dag_id,
            run_id=run_id,
            logical_date=run.logical_date,
            run_after=run.run_after,
            conf=dict(run.conf or {}),
            event_dates=events,
            chosen_dates=chosen,
            state=str(state) if state else None,
        )
