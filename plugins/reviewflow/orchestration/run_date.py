"""Which date a DAG run is for, whatever started it (cron, asset event, trigger form, backfill).

Airflow 3 gives asset-triggered runs no logical date and no data interval, so ``context["ds"]``
is missing there: the date comes from the triggering events instead. Every task that needs the
run's date D asks :func:`run_date`; the scoring DAG's plan asks :func:`scoring_dates` which dates
that kind of run covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from reviewflow.bias.dates import InvalidDateError, check_date


def _event_dt(event: Any) -> str | None:
    """The date an asset event names: its partition key, else ``extra["dt"]`` (what our producers attach)."""
    key = getattr(event, "partition_key", None)
    if key:
        try:
            return check_date(key)
        except InvalidDateError:
            pass  # a partition key that is not a date (another producer's scheme): look at extra
    extra = getattr(event, "extra", None) or {}
    if isinstance(extra, Mapping) and extra.get("dt"):
        try:
            return check_date(extra["dt"])
        except InvalidDateError as exc:
            raise InvalidDateError(f"asset event {getattr(event, 'asset', '?')}: extra dt: {exc}") from exc
    return None


def _asset_name(key: Any) -> str | None:
    return getattr(key, "name", None) or (key if isinstance(key, str) else None)


def event_dates(context: Mapping[str, Any], asset_names: Iterable[str] | None = None) -> list[str]:
    """The distinct dates the run's triggering asset events name (only those of ``asset_names`` if given)."""
    wanted = set(asset_names) if asset_names is not None else None
    events = context.get("triggering_asset_events") or {}
    found = set()
    for key in events:
        if wanted is not None and _asset_name(key) not in wanted:
            continue
        found.update(d for d in (_event_dt(e) for e in events[key]) if d)
    return sorted(found)


def _day(value: Any) -> str | None:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return None


def run_date(context: Mapping[str, Any]) -> str:
    """The date D this run is for, as YYYY-MM-DD.

    1. the latest date its triggering asset events name (``extra["dt"]`` or a partition key):
       a ``model_decay`` event names the decayed date, a ``curated_reviews`` event the curated one;
    2. else the ``dt`` param / run conf (trigger form, ``airflow dags trigger -c '{"dt": ...}'``);
    3. else the logical date's ds (scheduled, manual ``dags test`` and backfill runs);
    4. else the day of ``run_after`` (an asset-triggered run whose events name no date).

    A ``dt`` that is not a real calendar date raises ``InvalidDateError`` (a ValueError).
    """
    dates = event_dates(context)
    if dates:
        return dates[-1]
    run = context.get("dag_run")
    for source, conf in (("param", context.get("params") or {}), ("run conf", getattr(run, "conf", None) or {})):
        if isinstance(conf, Mapping) and conf.get("dt"):
            try:
                return check_date(conf["dt"])
            except InvalidDateError as exc:
                raise InvalidDateError(f"the `dt` {source}: {exc}") from exc
    if context.get("ds"):
        return check_date(context["ds"])
    for value in (context.get("logical_date"), getattr(run, "logical_date", None), getattr(run, "run_after", None)):
        if found := _day(value):
            return found
    raise InvalidDateError("no run date: no dated asset event, no `dt` param, no logical date and no run_after")


def scoring_dates(catalog, dt: str, run_type: str, rewritten: Iterable[str] = ()) -> list[str]:
    """The dates a run of ``sentiment_batch_scoring`` for ``dt`` scores.

    - backfill: ``dt`` alone (a backfill rewrites exactly its dates);
    - every other kind (manual: trigger form, ``airflow dags test``): every unscored curated date
      up to ``dt``, and ``dt`` itself again (a person asked for it);
    - scheduled and asset-triggered: only the curated dates up to ``dt`` that have no predictions,
      plus the ``rewritten`` dates (curated again: their ``curated_reviews`` events triggered the
      run), so a repeated trigger for a date already scored is a no-op (no rows, no event).
    """
    if run_type == "backfill":
        return [dt]
    from reviewflow import layout
    from reviewflow.scoring.score import unscored_partitions

    dates = set(unscored_partitions(catalog, dt))  # the unscored ones, plus dt when it is curated
    if run_type in ("scheduled", "asset_triggered"):  # any other kind (manual, CLI dags test) rescores dt
        has_predictions = catalog.table_columns(layout.PREDICTIONS_TABLE)
        dates -= set(catalog.partitions(layout.PREDICTIONS_TABLE)) if has_predictions else set()
        curated = set(catalog.partitions(layout.CURATED_TABLE))
        dates |= {d for d in rewritten if d in curated and d <= dt}
    return sorted(dates)
