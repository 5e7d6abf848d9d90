"""Which lake keys the UI may serve, and who may read them: report zones and review-queue CSVs only.

A key comes from a URL, so it is hostile until checked: ``safe_key`` refuses ``..`` and ``.``
segments (also when percent-encoded once more), absolute paths, backslashes, NUL and control
characters, empty segments, and anything outside ``layout.REPORT_ZONES`` plus
``review_queue/dt=YYYY-MM-DD/review_queue.csv``. On a local lake the resolved path must stay inside
the lake root (a symlink out of the lake is refused). Raw, curated, quarantined data, models,
predictions and the catalog are never served.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from reviewflow import layout

REVIEW_QUEUE_KEY = re.compile(
    rf"^{re.escape(layout.REVIEW_QUEUE)}/dt=\d{{4}}-\d{{2}}-\d{{2}}/{re.escape(layout.REVIEW_QUEUE_FILE)}$"
)
DOCS_SITE_DEPTH = layout.QUALITY_REPORTS.count("/") + 3  # slashes in "reports/quality/dt=D/<file_id>/"
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")

# The DAG whose readers may read a zone (Airflow's DAG permissions decide; alerts: any reviewflow reader).
ZONE_DAGS = {
    layout.INGEST_REPORTS: "reviews_ingest",
    layout.QUALITY_REPORTS: "reviews_ingest",
    layout.BIAS_REPORTS: "reviews_bias_report",
    layout.MODEL_REPORTS: "sentiment_training",
    layout.DRIFT_REPORTS: "sentiment_batch_scoring",
    layout.INSIGHTS_REPORTS: "review_insights",
    layout.REALISED_QUALITY_REPORTS: "sentiment_batch_scoring",
    layout.ALERTS: None,
    layout.REVIEW_QUEUE: "sentiment_batch_scoring",
}


class RefusedKey(ValueError):
    """A key the UI will not serve (outside the report zones, or a traversal attempt)."""


def safe_key(raw: str) -> str:
    """``raw`` as a served lake key, or RefusedKey saying why."""
    key = raw
    for _ in range(3):  # the router decoded once; refuse what decodes to something else again
        decoded = unquote(key)
        if decoded == key:
            break
        key = decoded
    else:
        raise RefusedKey("too many levels of percent-encoding")
    if key != raw:
        raise RefusedKey("percent-encoded characters in a report path")
    if _BAD_CHARS.search(key):
        raise RefusedKey("backslash or control character in a report path")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key) or "://" in key:
        raise RefusedKey("absolute path")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise RefusedKey("empty, '.' or '..' segment in a report path")
    if zone_of(key) is None:
        raise RefusedKey("not a report: only reports/… and review_queue/dt=…/review_queue.csv are served")
    return key


def zone_of(key: str) -> str | None:
    """The zone a key lies in (one of ZONE_DAGS), or None."""
    for zone in layout.REPORT_ZONES:
        if key.startswith(zone + "/"):
            return zone
    if REVIEW_QUEUE_KEY.match(key):
        return layout.REVIEW_QUEUE
    return None


def owning_dag(key: str) -> str | None:
    return ZONE_DAGS.get(zone_of(key) or "")


def inside_zone(lake, key: str) -> bool:
    """False when a local lake's path for ``key`` resolves (symlinks followed) outside the key's own zone
    of the lake: a link out of the lake, or to raw data inside it. S3 keys are names, not paths: True."""
    path_of = getattr(lake, "path", None)
    if path_of is None:
        return True
    root = Path(lake.root).resolve()
    resolved = Path(path_of(key)).resolve()
    if not resolved.is_relative_to(root):
        return False
    return zone_of(resolved.relative_to(root).as_posix()) == zone_of(key)


def ups(key: str) -> str:
    """The relative path from the page at ``files/<key>`` back to the app's root (``../`` per level)."""
    return "../" * (key.count("/") + 1)
