"""The bias report's dates: which dates a run of reviews_bias_report reports on, and validating them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from reviewflow import layout

if TYPE_CHECKING:
    from reviewflow.storage.lake import Lake

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class InvalidDateError(ValueError):
    """A report date that is not a real YYYY-MM-DD calendar date (or no date at all): retrying cannot help."""


def check_date(value: Any) -> str:
    """A report date as 'YYYY-MM-DD' (a real calendar date), or InvalidDateError (a ValueError)."""
    text = str(value).strip() if value is not None else ""
    if not _DATE.match(text):
        raise InvalidDateError(f"not a YYYY-MM-DD date: {value!r}")
    try:
        date.fromisoformat(text)
    except ValueError as exc:  # 2025-02-30: the right shape, but no such day
        raise InvalidDateError(f"{text!r} is not a calendar date ({exc}): give a real YYYY-MM-DD date") from exc
    return text


def _event_date(event: Any) -> str | None:
    """The partition date an asset event carries: its partition key, else extra['dt']."""
    key = getattr(event, "partition_key", None)
    if key and _DATE.match(str(key)):
        return check_date(key)
    extra = getattr(event, "extra", None) or {}
    if isinstance(extra, Mapping) and extra.get("dt"):
        return check_date(extra["dt"])
    return None


def _as_date(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    return check_date(str(value)[:10])


def report_dates(context: Mapping[str, Any]) -> list[str]:
    """The dates a run reports on, from its Airflow task context.

    1. the partition dates of the triggering asset events (partition key or extra {"dt": ...},
       as the ingest DAG attaches them): one report per distinct date, so an ingest backfill
       that queued several days into one run still gets a report per day;
    2. else the ``dt`` param (trigger form / run conf);
    3. else the logical date's ds; asset-triggered runs have no logical date in Airflow 3,
       so finally the run's ``run_after``.
    """
    dates: set[str] = set()
    events = context.get("triggering_asset_events") or {}
    for key in events:
        for event in events[key]:
            found = _event_date(event)
            if found:
                dates.add(found)
    if dates:
        return sorted(dates)
    params = context.get("params") or {}
    if params.get("dt"):
        try:
            return [check_date(params["dt"])]
        except InvalidDateError as exc:
            raise InvalidDateError(f"the `dt` param: {exc}") from exc
    if context.get("ds"):
        return [check_date(context["ds"])]
    found = _as_date(context.get("logical_date"))
    if found:
        return [found]
    dag_run = context.get("dag_run")
    found = _as_date(getattr(dag_run, "run_after", None))
    if found:
        return [found]
    raise InvalidDateError("no report date: no asset event date, no `dt` param, no logical date and no run_after")


def unreported_dates(lake: Lake) -> list[str]:
    """Ingested dates that have no bias report yet.

    Airflow 3.3 keeps one queue row per asset and DAG: an asset event that arrives while a run of
    this DAG waits to be created (max_active_runs) is not consumed by it and waits for the next
    event. Asset-triggered runs report these dates too, so no ingested date stays unreported.
    """

    def dates(prefix: str, name: str) -> set[str]:
        return {k.split("/dt=")[1].split("/")[0] for k in lake.list(prefix + "/") if k.endswith("/" + name)}

    return sorted(dates(layout.INGEST_REPORTS, "ingest_report.json") - dates(layout.BIAS_REPORTS, "bias_report.json"))
