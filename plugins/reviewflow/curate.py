"""Curate: valid rows become the curated partition, with accounting that must balance.

A date's partition is rewritten whole (idempotent reruns and backfills): the valid rows of every
file, snake_case columns, ``review_id``, ``sentiment`` from the rating, the source file, line and
ingest run. A review is curated once: a later copy of it (another file of the date, or a review
already curated on another date) is quarantined as a duplicate with where the first copy is.
Accounting is per file and independent of the parser: records counted in the bytes = rows in
the curated partition + rows in quarantine. Every output of the date that this run did not write
(quarantine, Data Docs, raw copies of files that are gone or fixed) is removed, so a rerun leaves
exactly the outputs of a clean run. An empty day is a typed, empty partition.
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import ExitStack

from reviewflow import schema
from reviewflow.crawl import CRAWL_SUMMARY, RAW, STAGING
from reviewflow.lake import Lake, dt_prefix, read_json, write_json
from reviewflow.validate import QUALITY, QUARANTINE

log = logging.getLogger(__name__)

CURATED = "curated/reviews"
CURATED_TABLE = "curated_reviews"
INGEST_REPORTS = "reports/ingest"
PART = "part-0.parquet"
DUPLICATES = "duplicates"  # quarantine/reviews/dt=D/rows/duplicates.parquet: copies found at curate time


class AccountingError(RuntimeError):
    """Records in != rows curated + rows quarantined: something was lost or duplicated."""


def curated_columns() -> dict[str, str]:
    types = {c: "VARCHAR" for c in schema.CURATED_COLUMNS}
    types.update({c: "BIGINT" for c in [*schema.INTEGER_COLUMNS, "sentiment", "source_line"]})
    return {**types, "dt": "VARCHAR"}


def check_accounting(file_reports: list[dict]) -> None:
    broken = [
        f"{r['file']}: in={r['rows_in']} curated={r['rows_curated']} quarantined={r['rows_quarantined']}"
        for r in file_reports
        if r["rows_in"] is not None and r["rows_in"] != r["rows_curated"] + (r["rows_quarantined"] or 0)
    ]
    if broken:
        raise AccountingError("records in != curated + quarantined for " + "; ".join(broken))


def _sql_type(column: str) -> str:
    return curated_columns()[column]


def _prior_partitions(lake: Lake, dt: str) -> list[str]:
    """Curated partition files of every other date (where an earlier copy of a review may live)."""
    own = dt_prefix(CURATED, dt)
    return [k for k in lake.list(f"{CURATED}/") if k.endswith(f"/{PART}") and not k.startswith(own)]


def _sweep(lake: Lake, prefix: str, keep: set[str]) -> int:
    """Delete every key under prefix that is not kept (a key is kept if it or a kept folder holds it)."""
    removed = 0
    for key in lake.list(prefix):
        if key in keep or any(k.endswith("/") and key.startswith(k) for k in keep):
            continue
        lake.delete(key)
        removed += 1
    return removed


def curate_partition(lake: Lake, catalog, dt: str, file_reports: list[dict], ingest_run: str) -> dict:
    """Write curated/reviews/dt=<dt>/ from the validated files, check accounting, register it."""
    import duckdb

    reports = sorted(file_reports, key=lambda r: r["file"])
    out_cols = [*schema.CURATED_COLUMNS, *schema.LINEAGE_COLUMNS]
    with ExitStack() as stack:
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="curate-"))
        con = stack.enter_context(duckdb.connect())
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET temp_directory = '{work}/duckdb-tmp'")
        paths, order = [], []
        for n, report in enumerate(reports):
            for key in report.get("valid_keys") or []:
                paths.append(stack.enter_context(lake.local_path(key)))
                order.append(n)
        typed_empty = ", ".join(f'CAST(NULL AS {_sql_type(c)}) AS "{c}"' for c in out_cols if c != "ingest_run")
        if paths:
            con.execute("CREATE TABLE files (path VARCHAR, ord INTEGER)")
            con.executemany("INSERT INTO files VALUES (?, ?)", list(zip(paths, order, strict=True)))
            con.execute(
                "CREATE TABLE today AS SELECT v.*, f.ord AS _ord FROM read_parquet($p, filename = true) v "
                "JOIN files f ON v.filename = f.path",
                {"p": paths},
            )
        else:
            con.execute(f"CREATE TABLE today AS SELECT {typed_empty}, 0 AS _ord, '' AS filename LIMIT 0")
        prior = []
        for key in _prior_partitions(lake, dt):
            prior.append(stack.enter_context(lake.local_path(key)))
        if prior:
            con.execute(
                "CREATE TABLE prior AS SELECT DISTINCT review_id, "
                "regexp_extract(filename, 'dt=([0-9-]+)', 1) AS prior_dt FROM read_parquet($p, filename = true) "
                "WHERE review_id IN (SELECT review_id FROM today)",
                {"p": prior},
            )
            # a review curated on several other dates points at the earliest
            con.execute("CREATE TABLE prior1 AS SELECT review_id, min(prior_dt) AS prior_dt FROM prior GROUP BY 1")
        else:
            con.execute("CREATE TABLE prior1 (review_id VARCHAR, prior_dt VARCHAR)")
        con.execute(
            """CREATE TABLE ranked AS SELECT t.*, p.prior_dt,
                   row_number() OVER (PARTITION BY t.review_id ORDER BY t._ord, t.source_line) AS _copy,
                   first_value(t.source_file) OVER (PARTITION BY t.review_id ORDER BY t._ord, t.source_line) AS _first_file,
                   first_value(t.source_line) OVER (PARTITION BY t.review_id ORDER BY t._ord, t.source_line) AS _first_line
               FROM today t LEFT JOIN prior1 p USING (review_id)"""
        )
        select = ", ".join(f'"{c}"' if c != "ingest_run" else "CAST($run AS VARCHAR) AS ingest_run" for c in out_cols)
        local = os.path.join(work, PART)
        con.execute(
            f"COPY (SELECT {select} FROM ranked WHERE _copy = 1 AND prior_dt IS NULL ORDER BY _ord, source_line) "
            f"TO '{local}' (FORMAT parquet)",
            {"run": ingest_run},
        )
        dups = con.execute(
            f"""SELECT source_file, source_line, NULL::BIGINT AS source_record,
                   [CASE WHEN prior_dt IS NOT NULL
                         THEN 'duplicate review: already curated on dt=' || prior_dt
                         ELSE 'duplicate review: same review as ' || _first_file || ' line ' || _first_line END] AS reasons,
                   '' AS raw, {", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in schema.REQUIRED_COLUMNS)}, review_id
               FROM ranked WHERE NOT (_copy = 1 AND prior_dt IS NULL) ORDER BY _ord, source_line"""
        ).df()
        curated_by_file = dict(
            con.execute(f"SELECT source_file, count(*) FROM read_parquet('{local}') GROUP BY 1").fetchall()
        )
        rows_curated = con.execute(f"SELECT count(*) FROM read_parquet('{local}')").fetchone()[0]
        lake.put_file(local, dt_prefix(CURATED, dt) + PART)

    prefix = dt_prefix(CURATED, dt)
    _sweep(lake, prefix, {prefix + PART})  # stale parts (and any stray temp file of an old writer)
    quarantine = dt_prefix(QUARANTINE, dt)
    keep_quarantine: set[str] = set()
    dup_key = f"{quarantine}rows/{DUPLICATES}.parquet"
    if len(dups):
        with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
            dups.to_parquet(tmp.name, index=False)
            lake.put_file(tmp.name, dup_key)
        keep_quarantine.add(dup_key)
        log.warning("dt=%s: %d duplicate reviews quarantined (redelivered)", dt, len(dups))
    dup_by_file = dups.groupby("source_file").size().to_dict() if len(dups) else {}

    files = []
    for report in reports:
        name = report["file"]
        n_dup = int(dup_by_file.get(name, 0))
        in_file = report.get("quarantined_by_rule", {})
        quarantined = None if report["rows_quarantined"] is None else report["rows_quarantined"] + n_dup
        by_rule = dict(in_file)
        if n_dup:
            by_rule["duplicate review"] = by_rule.get("duplicate review", 0) + n_dup
        files.append({**{k: v for k, v in report.items() if k not in ("valid_keys", "outputs")},
                      "rows_curated": int(curated_by_file.get(name, 0)), "rows_quarantined": quarantined,
                      "rows_duplicate": n_dup + in_file.get("duplicate review", 0), "quarantined_by_rule": by_rule})  # fmt: skip
        keep_quarantine.update(report.get("outputs") or [])
    check_accounting(files)

    # Whatever this run did not write for D goes: a fixed or removed file leaves nothing behind.
    _sweep(lake, quarantine, keep_quarantine)
    _sweep(
        lake, dt_prefix(QUALITY, dt), {o for r in reports for o in (r.get("outputs") or []) if o.startswith(QUALITY)}
    )
    crawl = (
        read_json(lake, dt_prefix(STAGING, dt) + CRAWL_SUMMARY)
        if lake.exists(dt_prefix(STAGING, dt) + CRAWL_SUMMARY)
        else {}
    )
    _sweep(lake, dt_prefix(RAW, dt), {m["raw_key"] for m in crawl.get("files", [])})
    catalog.register_table(CURATED_TABLE, lake.uri(CURATED), curated_columns(), "parquet")
    catalog.register_partition(CURATED_TABLE, dt)

    drift = [
        {"file": m["file"], "vs_contract": m.get("drift_vs_contract"), "vs_catalog": m.get("drift_vs_catalog")}
        for m in crawl.get("files", [])
        if (m.get("drift_vs_contract") or {}).get("drifted") or (m.get("drift_vs_catalog") or {}).get("drifted")
    ]
    unknown = [f["file"] for f in files if f["rows_in"] is None]
    summary = {
        "dt": dt,
        "ingest_run": ingest_run,
        "rows_in": sum(f["rows_in"] or 0 for f in files),
        "rows_in_unknown_files": unknown,
        "rows_curated": int(rows_curated),
        "rows_quarantined": sum(f["rows_quarantined"] or 0 for f in files),
        "rows_duplicate": sum(f["rows_duplicate"] for f in files),
        "files": files,
        "skipped": crawl.get("skipped", []),
        "files_quarantined": [f["file"] for f in files if f["status"] != "parsed"],
        "schema_drift": drift,
        "curated_uri": lake.uri(prefix),
        "quarantine_uri": lake.uri(quarantine),
        "empty": rows_curated == 0,
    }
    reports_prefix = dt_prefix(INGEST_REPORTS, dt)
    write_json(lake, f"{reports_prefix}ingest_report.json", summary)
    write_json(lake, f"{reports_prefix}schema_drift.json", {"dt": dt, "files": drift})
    _sweep(lake, reports_prefix, {f"{reports_prefix}ingest_report.json", f"{reports_prefix}schema_drift.json"})
    lake.delete_prefix(dt_prefix(STAGING, dt))
    if unknown:
        log.warning("dt=%s: records of %s unknown (unreadable files, quarantined whole)", dt, unknown)
    log.info("dt=%s: records in %s, curated %s, quarantined %s (%s duplicates)", dt, summary["rows_in"],
             summary["rows_curated"], summary["rows_quarantined"], summary["rows_duplicate"])  # fmt: skip
    return summary
