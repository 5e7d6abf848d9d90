"""The task boundary: settings read once per task, with the lake, catalog and SQL engine they name.

A TaskFlow task starts with ``env = task_env()`` and passes ``env.settings``, ``env.lake``,
``env.catalog`` or ``env.sql`` down; nothing below the task reads settings again. The storage
seams are built on first use, so a task that needs only the lake never opens the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from reviewflow.config import Settings, get_settings

if TYPE_CHECKING:
    from reviewflow.storage.catalog import Catalog
    from reviewflow.storage.lake import Lake
    from reviewflow.storage.sql import SqlEngine


@dataclass
class TaskEnv:
    settings: Settings

    @cached_property
    def lake(self) -> Lake:
        from reviewflow.storage.lake import get_lake

        return get_lake(self.settings.lake, self.settings.aws_conn_id)  # no second settings read for the connection

    @cached_property
    def catalog(self) -> Catalog:
        from reviewflow.storage.catalog import get_catalog

        return get_catalog(self.settings)

    @cached_property
    def sql(self) -> SqlEngine:
        from reviewflow.storage.sql import get_engine

        return get_engine(self.settings)


def task_env(**overrides) -> TaskEnv:
    """Settings for this task (environment + the ``reviewflow`` Variable), with ``overrides`` (e.g. a DAG param)."""
    settings = get_settings()
    return TaskEnv(replace(settings, **overrides) if overrides else settings)
