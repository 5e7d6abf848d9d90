"""Crawl: find a date's files in landing, copy them to raw, parse them to staging, catalogue them.

Every file under ``landing/reviews/dt=D/`` (subfolders included) is one landed file, named by
its path relative to that folder (``sub/x.csv``) and keyed in the lake by a ``file_id`` (a safe
slug of that path plus a hash), so two files never share outputs, whatever their names. Hidden
and underscore names are ingested like any other; only known non-data files (``_SUCCESS``,
``.DS_Store``, uploads still in progress) are skipped, and listed as skipped with the reason.
Parsing (see ``parse.py``) counts each file's records independently of the parser; a file that
cannot be parsed, or whose columns do not carry the contract, is marked for whole-file
quarantine with the reason. Schema drift (new, missing, renamed columns, changed types) against
the contract and the catalog goes into the date's ingest report.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
import tempfile
import time
from pathlib import PurePosixPath

from reviewflow import contract, layout
from reviewflow.faults import maybe_crash
from reviewflow.ingest.parse import LINE, RECORD, Parsed, UnreadableFile, WrongSchema, file_format, parse_file
from reviewflow.layout import dt_prefix
from reviewflow.storage.catalog import MIXED
from reviewflow.storage.lake import Lake, write_json

log = logging.getLogger(__name__)


# Files that are never review data: job markers, OS litter, uploads still being written.
SKIP_NAMES = {"_SUCCESS": "a job success marker", ".DS_Store": "macOS folder metadata", "Thumbs.db": "Windows thumbnails",
              "desktop.ini": "Windows folder settings"}  # fmt: skip
SKIP_PREFIXES = {
    "_committed_": "a job commit marker",
    "_started_": "a job start marker",
    ".~lock.": "an editor lock file",
}
SKIP_SUFFIXES = {".crc": "a checksum sidecar", ".tmp": "an upload still in progress",
                 ".part": "an upload still in progress", ".crdownload": "a download still in progress"}  # fmt: skip


def relative_name(key: str, dt: str) -> str:
    return key[len(dt_prefix(layout.LANDING, dt)) :]


def file_id(name: str) -> str:
    """A lake-safe, collision-free id for a landed file's relative path (short enough for any FS)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:80] or "file"
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def skip_reason(name: str) -> str | None:
    base = PurePosixPath(name).name
    if base in SKIP_NAMES:
        return SKIP_NAMES[base]
    for prefix, why in SKIP_PREFIXES.items():
        if base.startswith(prefix):
            return why
    for suffix, why in SKIP_SUFFIXES.items():
        if base.lower().endswith(suffix):
            return why
    return None


def list_landing(lake: Lake, dt: str) -> tuple[list[str], list[dict]]:
    """(keys to ingest, [{file, reason}] skipped) for a date."""
    keys, skipped = [], []
    for key in lake.list(dt_prefix(layout.LANDING, dt)):
        name = relative_name(key, dt)
        why = skip_reason(name)
        if why:
            skipped.append({"file": name, "reason": f"skipped: {why}"})
        else:
            keys.append(key)
    return keys, skipped


def staging_prefix(dt: str, fid: str) -> str:
    return f"{dt_prefix(layout.STAGING, dt)}{fid}/"


EXPECTED_TYPES = {c: ("BIGINT" if c in contract.INTEGER_COLUMNS else "VARCHAR") for c in contract.REQUIRED_COLUMNS}


def detect_drift(columns: dict[str, str], reference: dict[str, str]) -> dict:
    """Compare inferred columns with a reference schema: new, missing, renamed, retyped."""
    new = [c for c in columns if c not in reference]
    missing = [c for c in reference if c not in columns]
    renamed = []
    for old in list(missing):
        match = difflib.get_close_matches(old, new, n=1, cutoff=0.75)
        if match:
            renamed.append({"from": old, "to": match[0]})
            missing.remove(old)
            new.remove(match[0])
    retyped = [
        {"column": c, "from": reference[c], "to": t} for c, t in columns.items() if c in reference and reference[c] != t
    ]
    return {"new": new, "missing": missing, "renamed": renamed, "retyped": retyped,
            "drifted": bool(new or missing or renamed or retyped)}  # fmt: skip


def infer_types(rows_paths: list[str], columns: list[str], sample: int = 100_000) -> dict[str, str]:
    """A SQL type per column from a sample of its string values (a few dirty values tolerated)."""
    import duckdb

    if not rows_paths:
        return {c: "VARCHAR" for c in columns}
    checks = ", ".join(
        f"""avg(CASE WHEN regexp_full_match(trim("{c}"), '[+-]?\\d+') THEN 1.0 ELSE 0 END) FILTER (WHERE trim("{c}") <> ''),
            avg(CASE WHEN TRY_CAST(trim("{c}") AS DOUBLE) IS NOT NULL THEN 1.0 ELSE 0 END) FILTER (WHERE trim("{c}") <> '')"""
        for c in columns
    )
    con = duckdb.connect()
    try:
        row = con.execute(
            f"SELECT {checks} FROM (SELECT * FROM read_parquet($p, union_by_name = true) LIMIT {sample})",
            {"p": rows_paths},
        ).fetchone()
    finally:
        con.close()
    types = {}
    for i, c in enumerate(columns):
        ints, nums = row[2 * i], row[2 * i + 1]
        types[c] = "VARCHAR" if nums is None or nums < 0.99 else ("BIGINT" if ints >= 0.99 else "DOUBLE")
    return types


def _publish_staging(lake: Lake, dt: str, fid: str, parsed: Parsed, source_path: str) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    prefix = staging_prefix(dt, fid)
    rows = []
    for i, path in enumerate(parsed.rows_paths):
        rows.append(f"{prefix}rows-{i:05d}.parquet")
        lake.put_file(path, rows[-1])
    lines = f"{prefix}lines.parquet"
    lake.put_file(parsed.lines_path, lines)
    keys = {"rows": rows, "lines": lines}
    if parsed.text_path:  # record spans point into this text: the raw copy itself, or its decoded form
        if os.path.samefile(parsed.text_path, source_path):
            keys["text"] = None
        else:
            keys["text"] = f"{prefix}source.txt"
            lake.put_file(parsed.text_path, keys["text"])
    if parsed.rejects:
        with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
            table = pa.table({
                LINE: [r[LINE] for r in parsed.rejects], RECORD: [r[RECORD] for r in parsed.rejects],
                "raw": [r["raw"] for r in parsed.rejects], "reason": [r["reason"] for r in parsed.rejects],
            })  # fmt: skip
            pq.write_table(table, tmp.name)
            keys["rejects"] = f"{prefix}rejects.parquet"
            lake.put_file(tmp.name, keys["rejects"])
    return keys


def crawl_file(lake: Lake, dt: str, key: str, catalog_columns: dict[str, str] | None) -> dict:
    """Copy one landed file to raw, parse it to staging, and describe it (the file manifest)."""
    name = relative_name(key, dt)
    fid = file_id(name)
    raw_key = dt_prefix(layout.RAW, dt) + name
    fmt, compression = file_format(name)
    manifest = {"dt": dt, "file": name, "file_id": fid, "landing_key": key, "raw_key": raw_key, "format": fmt,
                "compression": compression}  # fmt: skip
    started = time.perf_counter()
    lake.copy(key, raw_key)
    maybe_crash("crawl")
    seconds = {"raw_copy": round(time.perf_counter() - started, 3)}
    try:
        with tempfile.TemporaryDirectory(prefix="crawl-") as work, lake.local_path(key) as local:
            t = time.perf_counter()
            parsed, facts = parse_file(local, name, work)
            seconds["parse"] = round(time.perf_counter() - t, 3)
            manifest.update(facts)
            t = time.perf_counter()
            columns = infer_types(parsed.rows_paths, parsed.columns)
            seconds["infer_types"] = round(time.perf_counter() - t, 3)
            manifest.update(
                status="parsed", rows_in=parsed.rows_in, columns=columns, source_columns=parsed.source_columns,
                encoding=parsed.encoding, parser=parsed.parser, notes=parsed.notes, rejected=len(parsed.rejects),
                drift_vs_contract=detect_drift(columns, EXPECTED_TYPES),
                drift_vs_catalog=detect_drift(columns, catalog_columns) if catalog_columns else None,
            )  # fmt: skip
            t = time.perf_counter()
            manifest["staging"] = _publish_staging(lake, dt, fid, parsed, local)
            seconds["publish"] = round(time.perf_counter() - t, 3)
            manifest["seconds"] = {**seconds, **parsed.seconds}
            log.info("%s: crawl seconds %s", name, manifest["seconds"])
    except WrongSchema as exc:
        log.error("%s: wrong schema, quarantined whole: %s", key, exc)
        return {**manifest, "status": "wrong_schema", "reason": str(exc), "rows_in": exc.rows_in}
    except UnreadableFile as exc:
        status = "empty" if exc.rows_in == 0 else "unreadable"
        log.error("%s: %s, quarantined whole: %s", key, status, exc)
        return {**manifest, "status": status, "reason": str(exc), "rows_in": exc.rows_in}
    except Exception as exc:  # noqa: BLE001 - one file's surprise never fails the other files of its date
        log.exception("%s: could not be parsed", key)
        return {**manifest, "status": "unreadable", "reason": f"cannot parse: {type(exc).__name__}: {exc}",
                "rows_in": None}  # fmt: skip
    for kind in ("drift_vs_contract", "drift_vs_catalog"):
        if manifest[kind] and manifest[kind]["drifted"]:
            log.warning("%s: schema drift (%s): %s", key, kind, manifest[kind])
    return manifest


def crawl_partition(lake: Lake, catalog, dt: str) -> list[dict]:
    """Crawl every file landed for ``dt``; register the raw table and partition."""
    keys, skipped = list_landing(lake, dt)
    if not keys:
        log.warning("no files in %s", lake.uri(dt_prefix(layout.LANDING, dt)))
    for s in skipped:
        log.warning("%s: %s", s["file"], s["reason"])
    lake.delete_prefix(dt_prefix(layout.STAGING, dt))  # a rerun starts from a clean staging area
    lake.clean_temp()  # temp files of writers killed more than an hour ago
    catalog_columns = catalog.table_columns(layout.RAW_TABLE)
    manifests = [crawl_file(lake, dt, key, catalog_columns) for key in keys]
    parsed = [m for m in manifests if m["status"] == "parsed"]
    if parsed:
        # The catalogued raw schema follows the contract columns seen today (drift was reported). raw/
        # holds each file as delivered (CSV, JSON lines, parquet side by side per date): "mixed", a schema
        # record for drift, not a table Athena could read (see storage/catalog.py).
        catalog.register_table(layout.RAW_TABLE, lake.uri(layout.RAW), dict(parsed[0]["columns"]), MIXED)
        catalog.register_partition(layout.RAW_TABLE, dt)
    write_json(
        lake, dt_prefix(layout.STAGING, dt) + layout.CRAWL_SUMMARY, {"dt": dt, "skipped": skipped, "files": manifests}
    )
    for m in manifests:
        log.info("crawled %s: %s, %s records", m["file"], m["status"], m.get("rows_in"))
    return manifests
