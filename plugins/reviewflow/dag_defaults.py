"""Defaults every reviewflow DAG shares (kept import-light: DAG files parse fast)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

DEFAULT_ARGS = {
    "owner": "reviewflow",
    "retries": 1,
    "retry_delay": timedelta(minutes=1),
}


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
