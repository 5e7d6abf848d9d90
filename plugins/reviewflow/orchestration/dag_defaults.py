"""Defaults every reviewflow DAG shares (kept import-light: DAG files parse fast)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


def with_run_date(context):
    """The task context with ``ds`` set to the run's date D when Airflow gave it none.

    Asset-triggered runs have no logical date, so no ``ds``; the alert records of a run (its
    digest, a task failure) belong to the date the run is for (see ``run_date``), not to the day
    the event came. Leaves the context as it is when D cannot be told (a bad ``dt``).
    """
    if not context.get("ds"):
        from reviewflow.orchestration.run_date import run_date

        try:
            context["ds"] = run_date(context)
        except ValueError:
            pass  # the alert falls back to the run's own dates; the bad dt fails its task anyway
    return context


def on_task_failure(context) -> None:
    """on_failure_callback: record a ``task_failure`` alert for the run's date and send its digest.

    Never raises: a broken notifier or lake must not mask the task's own error (logged, swallowed).
    Everything heavy is imported here, when a task has failed, never at DAG parse time.
    """
    try:
        from reviewflow.alerts.tasks import report_task_failure

        report_task_failure(with_run_date(context))
    except Exception:  # noqa: BLE001 - see the docstring
        import logging

        logging.getLogger(__name__).exception("reviewflow: could not record or send the task-failure alert")


DEFAULT_ARGS = {
    "owner": "reviewflow",
    "retries": 1,
    "retry_delay": timedelta(minutes=1),
    "on_failure_callback": on_task_failure,  # after the last try only (retries call on_retry_callback)
}


def dt_param(description: str):
    """The optional ``dt`` param (YYYY-MM-DD) every DAG takes for a run no asset event dates: orchestration/run_date.py reads it."""
    from airflow.sdk import Param

    return Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}-\d{2}$", description=description)


def start_date() -> datetime:
    """First logical date of the scheduled DAGs (REVIEWFLOW_START_DATE, default 2024-01-01).

    Catchup runs from here, so `make run` sets it to the first day of the sample data.
    """
    value = os.environ.get("REVIEWFLOW_START_DATE", "2024-01-01")
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


GPU_QUEUE = "gpu"  # served by Celery workers on GPU hosts


def gpu_queue() -> str:
    """Celery queue for GPU work: `gpu` when REVIEWFLOW_GPU_BACKEND=celery, else the default."""
    from reviewflow.config import get_settings

    return GPU_QUEUE if get_settings().gpu_backend == "celery" else "default"


# -- fail fast on deterministic errors -------------------------------------------------------


def deterministic_errors() -> tuple[type[BaseException], ...]:
    """Errors a retry cannot fix: the same settings and the same input fail the same way.

    Bad settings (``ConfigError``), a bad report date, an empty training dataset, and inputs that
    cannot be read (a missing file, a corrupt parquet or JSON file, a table that does not exist).
    Imported when an error is being mapped, never at DAG parse time.
    """
    import json

    import duckdb
    import pyarrow

    from reviewflow.bias.dates import InvalidDateError
    from reviewflow.config import ConfigError
    from reviewflow.training.dataset import EmptyDatasetError

    return (
        ConfigError,
        InvalidDateError,
        EmptyDatasetError,
        FileNotFoundError,
        json.JSONDecodeError,
        UnicodeDecodeError,
        pyarrow.ArrowInvalid,  # not a parquet file, or a broken one
        duckdb.InvalidInputException,  # the same, read through the SQL engine
        duckdb.CatalogException,  # the table or view the query reads does not exist
    )


@contextmanager
def fail_fast(what: str = "task"):
    """Turn deterministic errors into ``AirflowFailException``: the task fails at once, without retries.

    Use it around a task body (``with fail_fast("build the dataset"):``) or as a decorator; any
    other error (a lost connection, a killed worker) still propagates as it is and is retried.
    """
    try:
        yield
    except Exception as exc:
        from airflow.sdk.exceptions import AirflowFailException

        if isinstance(exc, AirflowFailException) or not isinstance(exc, deterministic_errors()):
            raise
        raise AirflowFailException(
            f"{what} failed: {type(exc).__name__}: {exc} (not retried: the same settings and input fail the same way)"
        ) from exc


def alerts_teardown():
    """The last task of a DAG: this run's findings -> reports/alerts/dt=.../ and one digest.

    A teardown, so it runs after a failed task too, and Airflow leaves it out of the run's state
    (a failed upstream still fails the run). Call it inside the DAG body: ``work >> alerts_teardown()``.
    """
    from airflow.sdk import get_current_context, task

    @task(task_id="alerts", multiple_outputs=False)
    def alerts() -> dict:
        from reviewflow.alerts.tasks import publish_run_alerts
        from reviewflow.orchestration.runtime import task_env

        env = task_env()
        return publish_run_alerts(env.lake, env.settings, with_run_date(get_current_context()))

    return alerts().as_teardown()
