"""The alerts of a date in the lake: one part per writer, one merged, ranked file.

    reports/alerts/dt=D/<source>.jsonl   what one source (a DAG id, a failed task) found for D
    reports/alerts/dt=D/alerts.jsonl     every part merged, most severe first

``write_alerts`` is idempotent per (dt, source): it replaces that source's part (an empty list
writes an empty part, so a rerun that now finds nothing clears what it found before) and then
rebuilds the merged file from every part. Only the lake interface is used (``write_bytes`` is
atomic: a temp file and a rename locally, one PUT on S3), so it works the same on S3.

Race: two sources writing for the same date at once both rebuild ``alerts.jsonl``; the one that
lists the parts first and writes last can leave out the other's new part until the next write.
No part is ever lost, only the merged copy can lag: ``read_alerts`` merges the parts themselves,
and ``rebuild`` (every writer calls it) brings the merged file up to date.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from reviewflow.alerts.record import Alert, from_json_lines, ranked, to_json_lines
from reviewflow.layout import alerts_prefix

if TYPE_CHECKING:
    from collections.abc import Iterable

    from reviewflow.storage.lake import Lake

MERGED = "alerts.jsonl"
PART_SUFFIX = ".jsonl"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def source_name(source: str) -> str:
    """The source as a file name: letters, digits, ``_ . -`` (anything else becomes ``_``)."""
    name = _UNSAFE.sub("_", source or "").strip("._")[:150]
    if not name or name + PART_SUFFIX == MERGED:
        raise ValueError(f"not a usable alert source name: {source!r}")
    return name


def part_key(dt: str, source: str) -> str:
    return alerts_prefix(dt) + source_name(source) + PART_SUFFIX


def merged_key(dt: str) -> str:
    return alerts_prefix(dt) + MERGED


def part_keys(lake: Lake, dt: str) -> list[str]:
    merged = merged_key(dt)
    return [k for k in lake.list(alerts_prefix(dt)) if k.endswith(PART_SUFFIX) and k != merged]


def read_part(lake: Lake, dt: str, source: str) -> list[Alert]:
    key = part_key(dt, source)
    return from_json_lines(lake.read_bytes(key)) if lake.exists(key) else []


def read_alerts(lake: Lake, dt: str) -> list[Alert]:
    """Every alert of ``dt``, merged from the parts (the truth; alerts.jsonl is their ranked copy)."""
    return ranked(a for key in part_keys(lake, dt) for a in from_json_lines(lake.read_bytes(key)))


def rebuild(lake: Lake, dt: str) -> str:
    """Rewrite ``alerts.jsonl`` of ``dt`` from its parts; its URI."""
    return lake.write_bytes(merged_key(dt), to_json_lines(read_alerts(lake, dt)))


def write_alerts(lake: Lake, dt: str, source: str, alerts: Iterable[Alert]) -> str:
    """Replace ``source``'s part of ``dt`` with ``alerts`` and rebuild the merged file; its URI."""
    name = source_name(source)
    alerts = [a.with_source(name) for a in alerts]
    stray = sorted({a.dt for a in alerts if a.dt != dt})
    if stray:
        raise ValueError(f"alerts for {', '.join(stray)} cannot be written under dt={dt}")
    lake.write_bytes(part_key(dt, name), to_json_lines(ranked(alerts)))
    return rebuild(lake, dt)
