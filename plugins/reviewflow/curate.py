"""Curate: valid rows become the curated partition, with accounting that must balance.

A date's partition is rewritten whole (idempotent reruns and backfills): its valid rows from
every file, snake_case columns, a stable ``review_id``, ``sentiment`` from the rating, the
source file and the ingest run. Then the partition is registered in the catalog.
"""

from __future__ import annotations

import hashlib
import io
import logging

import pandas as pd

from reviewflow import schema
from reviewflow.crawl import STAGING
from reviewflow.lake import Lake, dt_prefix, read_parquet, replace_partition, write_json

log = logging.getLogger(__name__)

CURATED = "curated/reviews"
CURATED_TABLE = "curated_reviews"
INGEST_REPORTS = "reports/ingest"


class AccountingError(RuntimeError):
    """Rows in != rows curated + rows quarantined: something was lost or duplicated."""


def review_ids(source_file: str, source_row_ids: pd.Series) -> list[str]:
    """Stable id: the same source row of the same file always gets the same id."""
    return [hashlib.sha256(f"{source_file}|{rid}".encode()).hexdigest()[:16] for rid in source_row_ids]


def to_curated(valid: pd.DataFrame, source_file: str, ingest_run: str) -> pd.DataFrame:
    out = valid[schema.REQUIRED_COLUMNS].copy()
    for column in schema.INTEGER_COLUMNS:
        out[column] = out[column].astype("int64")
    for column in schema.TEXT_COLUMNS:
        out[column] = out[column].fillna("").astype(str)
    out.insert(0, "review_id", review_ids(source_file, out["source_row_id"]))
    out["sentiment"] = pd.cut(out["rating"], bins=[0, 2, 3, 5], labels=[-1, 0, 1]).astype("int64")
    out["source_file"] = source_file
    out["ingest_run"] = ingest_run
    return out[schema.CURATED_COLUMNS]


def curated_columns() -> dict[str, str]:
    types = {c: "VARCHAR" for c in schema.CURATED_COLUMNS}
    types.update({c: "BIGINT" for c in [*schema.INTEGER_COLUMNS, "sentiment"]})
    return {**types, "dt": "VARCHAR"}


def check_accounting(file_reports: list[dict]) -> None:
    broken = [
        f"{r['file']}: in={r['rows_in']} curated={r['rows_curated']} quarantined={r['rows_quarantined']}"
        for r in file_reports
        if r["rows_in"] is not None and r["rows_in"] != r["rows_curated"] + r["rows_quarantined"]
    ]
    if broken:
        raise AccountingError("rows in != curated + quarantined for " + "; ".join(broken))


def curate_partition(lake: Lake, catalog, dt: str, file_reports: list[dict], ingest_run: str) -> dict:
    """Write curated/reviews/dt=<dt>/ from the validated files, check accounting, register it."""
    frames, reports = [], []
    for report in sorted(file_reports, key=lambda r: r["file"]):
        rows_curated = 0
        if report.get("valid_key"):
            curated = to_curated(read_parquet(lake, report["valid_key"]), report["file"], ingest_run)
            rows_curated = len(curated)
            frames.append(curated)
        reports.append({**report, "rows_curated": rows_curated})
    check_accounting(reports)

    prefix = dt_prefix(CURATED, dt)
    files: dict[str, bytes] = {}
    if frames:
        buf = io.BytesIO()
        pd.concat(frames, ignore_index=True).to_parquet(buf, index=False)
        files["part-0.parquet"] = buf.getvalue()
    replace_partition(lake, prefix, files)
    if files:
        catalog.register_table(CURATED_TABLE, lake.uri(CURATED), curated_columns(), "parquet")
        catalog.register_partition(CURATED_TABLE, dt)
    lake.delete_prefix(dt_prefix(STAGING, dt))

    totals = {k: sum((r.get(k) or 0) for r in reports) for k in ("rows_in", "rows_curated", "rows_quarantined")}
    summary = {
        "dt": dt,
        "ingest_run": ingest_run,
        **totals,
        "files": reports,
        "files_quarantined": [r["file"] for r in reports if r["status"] != "parsed"],
        "curated_uri": lake.uri(prefix),
        "quarantine_uri": lake.uri(dt_prefix("quarantine/reviews", dt)),
    }
    write_json(lake, f"{dt_prefix(INGEST_REPORTS, dt)}ingest_report.json", summary)
    log.info("dt=%s: rows in %s, curated %s, quarantined %s", dt, *totals.values())
    return summary
