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

from reviewflow import contract, layout
from reviewflow.ingest.validate import duckdb_session, sql_literal
from reviewflow.layout import dt_prefix
from reviewflow.storage.lake import Lake, read_json, write_json

log = logging.getLogger(__name__)


class AccountingError(RuntimeError):
    """Records in != rows curated + rows quarantined: something was lost or duplicated."""


def review_id(values: list) -> str:
    """The content identity validate computes in SQL (md5 of the identity columns' source text)."""
    import hashlib

    text = "\x1f".join("" if v is None else str(v) for v in values)
    return hashlib.md5(text.encode()).hexdigest()[:16]


def to_curated(valid, source_file: str, ingest_run: str):
    """Curated rows from an already valid, snake_case frame (fixtures, tools): same columns and ids."""
    from reviewflow.ingest.validate import IDENTITY_COLUMNS

    out = valid[contract.REQUIRED_COLUMNS].copy()
    ids = [review_id(row) for row in out[IDENTITY_COLUMNS].itertuples(index=False, name=None)]
    for column in contract.INTEGER_COLUMNS:
        out[column] = out[column].astype("int64")
    for column in contract.TEXT_COLUMNS:
        out[column] = out[column].fillna("").astype(str)
    out.insert(0, "review_id", ids)
    out["sentiment"] = [contract.sentiment_from_rating(int(r)) for r in out["rating"]]
    out["sentiment"] = out["sentiment"].astype("int64")
    out["source_file"] = source_file
    out["ingest_run"] = ingest_run
    out["source_line"] = range(2, len(out) + 2)
    out["source_line"] = out["source_line"].astype("int64")
    return out[[*contract.CURATED_COLUMNS, *contract.LINEAGE_COLUMNS]].reset_index(drop=True)


def curated_columns() -> dict[str, str]:
    types = {c: "VARCHAR" for c in contract.CURATED_COLUMNS}
    types.update({c: "BIGINT" for c in [*contract.INTEGER_COLUMNS, "sentiment", "source_line"]})
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
    own = dt_prefix(layout.CURATED, dt)
    return [k for k in lake.list(f"{layout.CURATED}/") if k.endswith(f"/{layout.PART}") and not k.startswith(own)]


def _sweep(lake: Lake, prefix: str, keep: set[str]) -> int:
    """Delete every key under prefix that is not kept (a key is kept if it or a kept folder holds it)."""
    removed = 0
    for key in lake.list(prefix):
        if key in keep or any(k.endswith("/") and key.startswith(k) for k in keep):
            continue
        lake.delete(key)
        removed += 1
    return removed


def _with_raw_text(lake: Lake, reports: list[dict], dups):
    """Fill the duplicates' ``raw`` from their byte spans in the file's text (kept until staging goes)."""
    import mmap

    if len(dups):
        raws = list(dups["raw"])
        for ord_, rows in dups.groupby("_ord").groups.items():
            key = reports[int(ord_)].get("text_key")
            if not key:
                continue
            with lake.local_path(key) as path, open(path, "rb") as fh:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    for i in rows:
                        s, e = int(dups.at[i, "_start"]), int(dups.at[i, "_end"])
                        if s >= 0:
                            raws[dups.index.get_loc(i)] = mm[s:e].decode("utf-8", errors="replace").rstrip("\r\n")
        dups["raw"] = raws
    return dups.drop(columns=["_ord", "_start", "_end"])


def curate_partition(lake: Lake, catalog, dt: str, file_reports: list[dict], ingest_run: str) -> dict:
    """Write curated/reviews/dt=<dt>/ from the validated files, check accounting, register it."""
    reports = sorted(file_reports, key=lambda r: r["file"])
    out_cols = [*contract.CURATED_COLUMNS, *contract.LINEAGE_COLUMNS]
    with ExitStack() as stack:
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="curate-"))
        con = duckdb_session(work)
        stack.callback(con.close)
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
                f"CREATE VIEW today AS SELECT v.* EXCLUDE (filename), f.ord AS _ord "
                f"FROM read_parquet({sql_literal(paths)}, filename = true) v JOIN files f ON v.filename = f.path"
            )
        else:
            con.execute(
                f"CREATE VIEW today AS SELECT {typed_empty}, -1::BIGINT AS _start, -1::BIGINT AS _end, 0 AS _ord LIMIT 0"
            )
        # Identity work on four small columns only; the wide rows are streamed once, at the COPY.
        con.execute("CREATE TABLE keys AS SELECT review_id, _ord, source_line, source_file FROM today")
        prior = [stack.enter_context(lake.local_path(key)) for key in _prior_partitions(lake, dt)]
        if prior:
            con.execute(
                "CREATE TABLE prior AS SELECT review_id, min(regexp_extract(filename, 'dt=([0-9-]+)', 1)) AS prior_dt "
                f"FROM read_parquet({sql_literal(prior)}, filename = true) "
                "WHERE review_id IN (SELECT review_id FROM keys) GROUP BY 1"
            )
        else:
            con.execute("CREATE TABLE prior (review_id VARCHAR, prior_dt VARCHAR)")
        con.execute(
            """CREATE TABLE dupkeys AS
               SELECT r._ord, r.source_line, CASE WHEN p.prior_dt IS NOT NULL
                          THEN 'duplicate review: already curated on dt=' || p.prior_dt
                          ELSE 'duplicate review: same review as ' || r.first_file || ' line ' || r.first_line END AS reason
               FROM (SELECT *, row_number() OVER w AS n, first_value(source_file) OVER w AS first_file,
                            first_value(source_line) OVER w AS first_line
                     FROM keys WINDOW w AS (PARTITION BY review_id ORDER BY _ord, source_line)) r
               LEFT JOIN prior p USING (review_id)
               WHERE r.n > 1 OR p.prior_dt IS NOT NULL"""
        )
        select = ", ".join(f'"{c}"' if c != "ingest_run" else "CAST($run AS VARCHAR) AS ingest_run" for c in out_cols)
        local = os.path.join(work, layout.PART)
        con.execute(
            f"COPY (SELECT {select} FROM today t WHERE NOT EXISTS "
            "(SELECT 1 FROM dupkeys d WHERE d._ord = t._ord AND d.source_line = t.source_line) "
            f"ORDER BY _ord, source_line) TO {sql_literal(local)} (FORMAT parquet)",
            {"run": ingest_run},
        )
        dups = con.execute(
            f"""SELECT source_file, source_line, NULL::BIGINT AS source_record, [d.reason] AS reasons, '' AS raw,
                   {", ".join(f'CAST(t."{c}" AS VARCHAR) AS "{c}"' for c in contract.REQUIRED_COLUMNS)}, review_id,
                   _ord, _start, _end
               FROM today t JOIN dupkeys d USING (_ord, source_line) ORDER BY _ord, source_line"""
        ).df()
        dups = _with_raw_text(lake, reports, dups)
        curated_by_file = dict(
            con.execute(f"SELECT source_file, count(*) FROM read_parquet({sql_literal(local)}) GROUP BY 1").fetchall()
        )
        rows_curated = sum(curated_by_file.values())
        lake.put_file(local, dt_prefix(layout.CURATED, dt) + layout.PART)

    prefix = dt_prefix(layout.CURATED, dt)
    _sweep(lake, prefix, {prefix + layout.PART})  # stale parts (and any stray temp file of an old writer)
    quarantine = dt_prefix(layout.QUARANTINE, dt)
    keep_quarantine: set[str] = set()
    dup_key = f"{quarantine}rows/{layout.DUPLICATES}.parquet"
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
        lake,
        dt_prefix(layout.QUALITY_REPORTS, dt),
        {o for r in reports for o in (r.get("outputs") or []) if o.startswith(layout.QUALITY_REPORTS)},
    )
    crawl = (
        read_json(lake, dt_prefix(layout.STAGING, dt) + layout.CRAWL_SUMMARY)
        if lake.exists(dt_prefix(layout.STAGING, dt) + layout.CRAWL_SUMMARY)
        else {}
    )
    _sweep(lake, dt_prefix(layout.RAW, dt), {m["raw_key"] for m in crawl.get("files", [])})
    catalog.register_table(layout.CURATED_TABLE, lake.uri(layout.CURATED), curated_columns(), "parquet")
    catalog.register_partition(layout.CURATED_TABLE, dt)

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
    reports_prefix = dt_prefix(layout.INGEST_REPORTS, dt)
    write_json(lake, layout.ingest_report_key(dt), summary)
    write_json(lake, f"{reports_prefix}schema_drift.json", {"dt": dt, "files": drift})
    _sweep(lake, reports_prefix, {layout.ingest_report_key(dt), f"{reports_prefix}schema_drift.json"})
    lake.delete_prefix(dt_prefix(layout.STAGING, dt))
    if unknown:
        log.warning("dt=%s: records of %s unknown (unreadable files, quarantined whole)", dt, unknown)
    log.info("dt=%s: records in %s, curated %s, quarantined %s (%s duplicates)", dt, summary["rows_in"],
             summary["rows_curated"], summary["rows_quarantined"], summary["rows_duplicate"])  # fmt: skip
    return summary
