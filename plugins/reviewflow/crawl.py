"""Crawl: find a date's files in landing, parse them, infer their schema, catalogue them.

Every landed file is copied to ``raw/`` (immutable copy of what was ingested) and parsed into
an all-string frame in ``staging/`` for validation, keeping each record's row number. Records
the parser cannot split into the expected fields (broken quoting) are kept as bad lines with
their text. Schema drift (new, missing, renamed columns, changed types) is reported against the
review contract and against the schema catalogued for earlier partitions.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import pandas as pd

from reviewflow import schema
from reviewflow.lake import Lake, dt_prefix, write_parquet

log = logging.getLogger(__name__)

LANDING = "landing/reviews"
RAW = "raw/reviews"
STAGING = "staging/reviews"
RAW_TABLE = "raw_reviews"
ROW_NUMBER = "_row_number"  # 1-based record number in the source file (header excluded)
SUPPORTED = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class UnreadableFile(Exception):
    """The file cannot be parsed at all; it is quarantined whole with this reason."""


@dataclass
class ParsedFile:
    frame: pd.DataFrame  # all values as strings, snake_case columns, plus ROW_NUMBER
    bad_lines: list[dict] = field(default_factory=list)  # {row_number, line, reason}
    source_columns: list[str] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        return len(self.frame) + len(self.bad_lines)


def file_format(key: str) -> str | None:
    return SUPPORTED.get(PurePosixPath(key).suffix.lower())


def _skipped_line_numbers(caught: list[warnings.WarningMessage]) -> list[tuple[int, str]]:
    # pandas' C parser reports "Skipping line 7: expected 11 fields, saw 12" for each bad record.
    found = []
    for w in caught:
        for match in re.finditer(r"Skipping line (\d+): ([^\n]+)", str(w.message)):
            found.append((int(match.group(1)), match.group(2).strip()))
    return found


def _record_texts(data: bytes, wanted: set[int]) -> dict[int, str]:
    """The source text of the wanted records (1-based, header excluded).

    Quoted fields may span physical lines: a line starts a new record when the number of
    quotes before it is even.
    """
    texts: dict[int, list[str]] = {}
    record, quotes = -1, 0  # the header is record 0
    for line in data.decode("utf-8", errors="replace").splitlines():
        if quotes % 2 == 0:
            record += 1
        if record in wanted:
            texts.setdefault(record, []).append(line)
        quotes += line.count('"')
    return {n: "\n".join(lines) for n, lines in texts.items()}


def _parse_csv(data: bytes) -> tuple[pd.DataFrame, list[dict]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8",
            on_bad_lines="warn",
        )
    # pandas counts records as "lines" with the header as line 1, so record = line - 1.
    skipped = {line - 1: why for line, why in _skipped_line_numbers(caught)}
    texts = _record_texts(data, set(skipped)) if skipped else {}
    bad_lines = [
        {"row_number": n, "line": texts.get(n, ""), "reason": f"malformed CSV record: {why}"}
        for n, why in sorted(skipped.items())
    ]
    return frame, bad_lines


def read_review_file(data: bytes, key: str) -> ParsedFile:
    """Parse one landed file into strings; raise UnreadableFile with a reason if impossible."""
    fmt = file_format(key)
    try:
        if fmt == "csv":
            frame, bad_lines = _parse_csv(data)
        elif fmt == "jsonl":
            frame, bad_lines = pd.read_json(io.BytesIO(data), lines=True, dtype=False), []
        elif fmt == "parquet":
            frame, bad_lines = pd.read_parquet(io.BytesIO(data)), []
        else:
            raise UnreadableFile(f"unsupported file type {PurePosixPath(key).suffix!r}")
    except UnreadableFile:
        raise
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not valid UTF-8: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any parser failure quarantines the file with its message
        raise UnreadableFile(f"cannot parse as {fmt}: {type(exc).__name__}: {exc}") from exc

    source_columns = [str(c) for c in frame.columns]
    frame = frame.rename(columns={c: schema.snake_case(c) for c in frame.columns})
    frame = frame.astype(object).where(frame.notna(), "").astype(str)
    # Number the parsed records by their place among all records, bad ones included.
    bad = {b["row_number"] for b in bad_lines}
    numbers = [n for n in range(1, len(frame) + len(bad) + 1) if n not in bad] if bad else range(1, len(frame) + 1)
    frame[ROW_NUMBER] = pd.Series(numbers, dtype="int64", index=frame.index)
    return ParsedFile(frame=frame, bad_lines=bad_lines, source_columns=source_columns)


def infer_types(frame: pd.DataFrame) -> dict[str, str]:
    """Infer a SQL type per column from the string values (empty strings ignored)."""
    types = {}
    for column in frame.columns:
        if column == ROW_NUMBER:
            continue
        values = frame[column][frame[column].str.strip() != ""]
        numeric = pd.to_numeric(values, errors="coerce")
        if len(values) == 0 or numeric.isna().mean() > 0.01:
            types[column] = "VARCHAR"  # tolerate a few dirty values before calling it text
        elif (numeric.dropna() % 1 == 0).all():
            types[column] = "BIGINT"
        else:
            types[column] = "DOUBLE"
    return types


EXPECTED_TYPES = {c: ("BIGINT" if c in schema.INTEGER_COLUMNS else "VARCHAR") for c in schema.REQUIRED_COLUMNS}


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


def list_landing(lake: Lake, dt: str) -> list[str]:
    return [k for k in lake.list(dt_prefix(LANDING, dt)) if not PurePosixPath(k).name.startswith(("_", "."))]


def staging_key(dt: str, name: str) -> str:
    return f"{dt_prefix(STAGING, dt)}{name}.parquet"


def crawl_file(lake: Lake, dt: str, key: str, catalog_columns: dict[str, str] | None) -> dict:
    """Copy one landed file to raw, parse it to staging, and describe it (the file manifest)."""
    name = PurePosixPath(key).name
    data = lake.read_bytes(key)
    raw_key = dt_prefix(RAW, dt) + name
    lake.write_bytes(raw_key, data)
    manifest = {
        "dt": dt, "file": name, "landing_key": key, "raw_key": raw_key, "format": file_format(key),
        "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
    }  # fmt: skip
    try:
        parsed = read_review_file(data, key)
    except UnreadableFile as exc:
        log.error("%s: unreadable, quarantined whole: %s", key, exc)
        return {**manifest, "status": "unreadable", "reason": str(exc), "rows_in": None}

    columns = infer_types(parsed.frame)
    missing = [c for c in schema.REQUIRED_COLUMNS if c not in columns]
    manifest.update(
        rows_in=parsed.rows_in,
        columns=columns,
        source_columns=parsed.source_columns,
        drift_vs_contract=detect_drift(columns, EXPECTED_TYPES),
        drift_vs_catalog=detect_drift(columns, catalog_columns) if catalog_columns else None,
        bad_lines=len(parsed.bad_lines),
    )
    for kind in ("drift_vs_contract", "drift_vs_catalog"):
        if manifest[kind] and manifest[kind]["drifted"]:
            log.warning("%s: schema drift (%s): %s", key, kind, manifest[kind])
    if missing:
        reason = f"wrong schema: missing required columns {missing}; found {parsed.source_columns}"
        log.error("%s: %s", key, reason)
        return {**manifest, "status": "wrong_schema", "reason": reason}

    manifest["staging_key"] = staging_key(dt, name)
    write_parquet(lake, manifest["staging_key"], parsed.frame)
    if parsed.bad_lines:
        manifest["bad_lines_key"] = dt_prefix(STAGING, dt) + f"{name}.bad_lines.parquet"
        write_parquet(lake, manifest["bad_lines_key"], pd.DataFrame(parsed.bad_lines))
    return {**manifest, "status": "parsed"}


def crawl_partition(lake: Lake, catalog, dt: str) -> list[dict]:
    """Crawl every file landed for ``dt``; register the raw table and partition."""
    keys = list_landing(lake, dt)
    if not keys:
        log.warning("no files in %s", lake.uri(dt_prefix(LANDING, dt)))
    lake.delete_prefix(dt_prefix(STAGING, dt))  # a rerun starts from a clean staging area
    catalog_columns = catalog.table_columns(RAW_TABLE)
    manifests = [crawl_file(lake, dt, key, catalog_columns) for key in keys]
    parsed = [m for m in manifests if m["status"] == "parsed"]
    if parsed:
        # The catalogued raw schema follows the contract columns seen today (drift was reported).
        columns = {c: t for c, t in parsed[0]["columns"].items()}
        catalog.register_table(RAW_TABLE, lake.uri(RAW), columns, "csv")
        catalog.register_partition(RAW_TABLE, dt)
    for m in manifests:
        log.info("crawled %s: %s, %s rows", m["file"], m["status"], m.get("rows_in"))
    return manifests
