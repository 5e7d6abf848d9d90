"""Validate: the review contract in GX Core 1.x, run per file, failing rows named with their rules.

A file's staged strings are typed in DuckDB (an integer column becomes BIGINT, or null when the
value is not an integer that fits int64, so "rating is an integer" is a not-null expectation),
given a ``review_id`` that survives redelivery (the source's own ``review_id`` column when it
has one, else a hash of the review's content), and read in batches. GX validates each batch
(one context per task, the suite built after the context exists) with COMPLETE results, which
name the failing rows of every expectation; critical rules quarantine those rows, warning-level
ones (unknown categories) only report. Exact copies of a review within the file are kept once,
the others quarantined as duplicates. Data Docs are built once per file, after all batches.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from reviewflow import contract, layout
from reviewflow.faults import maybe_crash
from reviewflow.layout import dt_prefix

log = logging.getLogger(__name__)

SUITE_NAME = "reviews_contract"
ID_ROWS = "_id_rows_in_file"  # rows of the file (distinct reviews) sharing this row's source_row_id
IDENTITY_COLUMNS = [
    c for c in contract.REQUIRED_COLUMNS if c != "positive_feedback_count"
]  # counts change on redelivery
BATCH_ROWS = 250_000
PARSE_REASONS = ("malformed", "merged", "duplicate")
QUARANTINE_COLUMNS = ["source_file", "source_line", "source_record", "reasons", "raw"]


def build_suite():
    """The review contract as a GX suite (critical rules quarantine rows, warnings only report)."""
    import great_expectations as gx
    from great_expectations import expectations as gxe

    def meta(rule: str) -> dict:
        return {"rule": rule}

    suite = gx.ExpectationSuite(name=SUITE_NAME)
    add = suite.add_expectation
    add(gxe.ExpectTableColumnsToMatchSet(column_set=contract.REQUIRED_COLUMNS, exact_match=False,
                                         meta=meta("required columns present")))  # fmt: skip
    add(gxe.ExpectColumnValuesToNotBeNull(column="review_text", meta=meta("review text present")))
    for column in contract.INTEGER_COLUMNS:
        add(gxe.ExpectColumnValuesToNotBeNull(column=column, meta=meta(f"{column} is an integer (int64)")))
    add(gxe.ExpectColumnValuesToBeInSet(column="rating", value_set=[1, 2, 3, 4, 5], meta=meta("rating in 1..5")))
    add(gxe.ExpectColumnValuesToBeBetween(column="age", min_value=contract.MIN_AGE, max_value=contract.MAX_AGE,
                                          meta=meta(f"age plausible ({contract.MIN_AGE}..{contract.MAX_AGE})")))  # fmt: skip
    add(
        gxe.ExpectColumnValuesToBeInSet(
            column="recommended_ind", value_set=[0, 1], meta=meta("recommended_ind in {0,1}")
        )
    )
    add(gxe.ExpectColumnValuesToBeBetween(column="positive_feedback_count", min_value=0,
                                          meta=meta("positive_feedback_count >= 0")))  # fmt: skip
    # Uniqueness over the whole file (not one batch): DuckDB counts the rows sharing an id.
    add(gxe.ExpectColumnValuesToBeBetween(column=ID_ROWS, max_value=1, meta=meta("review id unique in file")))
    for column, known in (("division_name", contract.DIVISIONS), ("department_name", contract.DEPARTMENTS),
                          ("class_name", contract.CLASSES)):  # fmt: skip
        add(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=known, severity="warning",
                                            meta=meta(f"{column} from the known set")))  # fmt: skip
    return suite


def _context(project_dir: str | None):
    """A GX context: file-backed in ``project_dir`` (for Data Docs) or ephemeral. Always made first."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = (
        gx.get_context(mode="file", project_root_dir=project_dir) if project_dir else gx.get_context(mode="ephemeral")
    )
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


class SuiteRunner:
    """One GX context, suite and checkpoint, run over many batches of one file."""

    def __init__(self, name: str, suite_factory=None, project_dir: str | None = None):
        import great_expectations as gx

        self.context = _context(project_dir)
        batch = (
            self.context.data_sources.add_pandas("reviews")
            .add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe("batch")
        )
        suite = self.context.suites.add((suite_factory or build_suite)())  # after the context exists
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        self.checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(
                name=f"{name}-checkpoint",
                validation_definitions=[definition],
                actions=[],
                result_format={"result_format": "COMPLETE", "include_unexpected_rows": False},
            )
        )

    def run(self, typed: pd.DataFrame) -> dict:
        result = self.checkpoint.run(batch_parameters={"dataframe": typed})
        return _outcome(result, typed)

    def build_docs(self, docs_dir: str) -> None:
        self.context.build_data_docs()
        site = Path(self.context.root_directory) / "uncommitted" / "data_docs" / "local_site"
        shutil.copytree(site, docs_dir, dirs_exist_ok=True)


def _outcome(result, typed: pd.DataFrame) -> dict:
    row_failures: dict[int, list[str]] = {}
    warnings_: dict[str, int] = {}
    expectations = []
    for run_result in result.run_results.values():
        for er in run_result.results:
            config = er.expectation_config
            rule = (config.meta or {}).get("rule", config.type)
            severity = str(getattr(config.severity, "value", config.severity))
            unexpected = er.result.get("unexpected_index_list") or []
            expectations.append({
                "rule": rule, "expectation": config.type, "column": config.kwargs.get("column"),
                "severity": severity, "success": bool(er.success),
                "unexpected_count": er.result.get("unexpected_count", 0 if er.success else None),
            })  # fmt: skip
            if er.success:
                continue
            if severity != "critical":
                warnings_[rule] = warnings_.get(rule, 0) + len(unexpected)
                continue
            column = config.kwargs.get("column")
            label = f"{config.type}({column}): {rule}" if column else rule
            if not column:  # a table-level rule (columns) failed: no row can pass
                unexpected = list(typed.index)
            for index in unexpected:
                row_failures.setdefault(int(index), []).append(label)
    return {"row_failures": row_failures, "warnings": warnings_, "expectations": expectations,
            "success": not row_failures}  # fmt: skip


def validate_frame(typed: pd.DataFrame, name: str, docs_dir: str | None = None, suite_factory=None) -> dict:
    """Run a suite (default: the review contract) on one frame.

    ``suite_factory`` builds the suite; it is called only after the GX context exists (building
    an ExpectationSuite in a fresh process without a context raises DataContextRequiredError).
    Returns ``{"row_failures": {index: [rules]}, "warnings": {rule: count}, "expectations": [...]}``;
    with ``docs_dir`` the Data Docs site is copied there.
    """
    with tempfile.TemporaryDirectory(prefix="gx-") as project_dir:
        runner = SuiteRunner(name, suite_factory, project_dir if docs_dir else None)
        outcome = runner.run(typed)
        if docs_dir:
            runner.build_docs(docs_dir)
    return outcome


# -- typing and identity in DuckDB -----------------------------------------------------------


def _int_expr(column: str) -> str:
    # An integer (optionally "5.0") that fits int64 (at most 18 digits), else NULL. TRY_CAST alone is
    # too lenient ("5.5" -> 6, "0x10" -> 16, "1_000" -> 1000), hence the pattern first.
    return (f"CASE WHEN regexp_full_match(\"{column}\", '\\s*[+-]?[0-9]{{1,18}}([.]0*)?\\s*') "
            f"THEN TRY_CAST(\"{column}\" AS BIGINT) END")  # fmt: skip


def typed_query(columns: list[str], has_source_id: bool) -> str:
    """SQL over ``src`` (staged strings + _line/_record): typed contract columns and the review_id.

    One streaming pass (no sort, no window), so memory stays flat for files larger than RAM.
    """
    typed = [f'{_int_expr(c)} AS "t_{c}"' for c in contract.INTEGER_COLUMNS]
    # Text stays as it came (no copy of the strings); only "is the review text blank" is computed.
    texts = ["NOT regexp_matches(coalesce(review_text, ''), '\\S') AS _no_text"]
    if has_source_id:
        identity = "nullif(trim(review_id), '')"
    else:  # content identity: the same review redelivered (any file, any day) gets the same id
        parts = ", ".join(f"coalesce(\"{c}\", '')" for c in IDENTITY_COLUMNS)
        identity = f"substr(md5(concat_ws(chr(31), {parts})), 1, 16)"
    return f"SELECT *, {', '.join(typed + texts)}, {identity} AS _review_id FROM src"


SMALL_TABLES = """
CREATE TABLE firsts AS SELECT _review_id, min(_record) AS first_record, min(_line) AS first_line
    FROM read_parquet({typed}) GROUP BY 1;
CREATE TABLE copies AS SELECT t._record, f.first_line FROM read_parquet({typed}) t JOIN firsts f USING (_review_id)
    WHERE t._record > f.first_record;
CREATE TABLE ids AS SELECT t_source_row_id, count(DISTINCT _review_id) AS n FROM read_parquet({typed})
    WHERE t_source_row_id IS NOT NULL GROUP BY 1 HAVING count(DISTINCT _review_id) > 1;
"""


def sql_literal(value: str | list[str]) -> str:
    """A string (or list of strings) as a DuckDB literal, for statements that cannot take parameters."""
    if isinstance(value, list):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    return "'" + value.replace("'", "''") + "'"


GX_COLUMNS = [f"t_{c}" if c in contract.INTEGER_COLUMNS else c for c in contract.REQUIRED_COLUMNS] + ["_no_text"]


def _gx_frame(batch: pd.DataFrame) -> pd.DataFrame:
    """The frame GX sees: contract names; integers as float64 (NaN = not an integer) for vectorised checks."""
    out = pd.DataFrame(index=batch.index)
    for c in contract.REQUIRED_COLUMNS:
        if c in contract.INTEGER_COLUMNS:
            out[c] = batch[f"t_{c}"].astype("float64")
        else:
            out[c] = batch[c].mask(batch["_no_text"]) if c == "review_text" else batch[c]
    out[ID_ROWS] = batch[ID_ROWS].astype("int64")
    return out


def _publish_dir(lake, local_dir: str, prefix: str) -> None:
    """Copy a local folder (a Data Docs site) under a lake prefix, replacing what was there."""
    lake.delete_prefix(prefix)
    for path in sorted(Path(local_dir).rglob("*")):
        if path.is_file():
            lake.put_file(str(path), prefix + path.relative_to(local_dir).as_posix())


def quarantine_key(dt: str, fid: str) -> str:

    return f"{dt_prefix(layout.QUARANTINE, dt)}rows/{fid}.parquet"


def docs_prefix(dt: str, fid: str) -> str:

    return f"{dt_prefix(layout.QUALITY_REPORTS, dt)}{fid}/"


def valid_key(dt: str, fid: str) -> str:
    from reviewflow.ingest.crawl import staging_prefix

    return f"{staging_prefix(dt, fid)}valid.parquet"


def _quarantine_whole(lake, manifest: dict) -> dict:
    from reviewflow.storage.lake import write_json

    dt, fid = manifest["dt"], manifest["file_id"]
    base = f"{dt_prefix(layout.QUARANTINE, dt)}files/{fid}"
    lake.copy(manifest["raw_key"], base)
    rows = manifest.get("rows_in")
    write_json(lake, f"{base}.reason.json", {"file": manifest["file"], "status": manifest["status"],
                                              "reason": manifest["reason"], "rows_in": rows})  # fmt: skip
    return {"rows_valid": 0, "rows_quarantined": rows, "reason": manifest["reason"],
            "quarantined_by_rule": {manifest["reason"].split(":")[0]: rows}, "outputs": [base, f"{base}.reason.json"]}  # fmt: skip


def duckdb_session(work: str, memory: str = "512MB"):
    """A DuckDB connection that spills to ``work`` instead of growing past ``memory``."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET temp_directory = {sql_literal(os.path.join(work, 'duckdb-tmp'))}")
    con.execute(f"SET memory_limit = '{memory}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def _raw_texts(lake, manifest: dict, con, typed_path: str, records: list[int]) -> pd.DataFrame:
    """The source text of the given records (for quarantine rows), read from their byte spans."""
    import mmap

    empty = pd.DataFrame({"_record": pd.Series([], dtype="int64"), "raw": pd.Series([], dtype="str")})
    staging = manifest["staging"]
    if not records or "text" not in staging:
        return empty
    wanted = pd.DataFrame({"_record": pd.Series(records, dtype="int64")})
    con.register("wanted", wanted)
    spans = con.execute(
        f"SELECT _record, _start, _end FROM read_parquet({sql_literal(typed_path)}) "
        "WHERE _start >= 0 AND _record IN (SELECT _record FROM wanted)"
    ).fetchall()
    con.unregister("wanted")
    if not spans:
        return empty
    key = staging["text"] or manifest["raw_key"]
    with lake.local_path(key) as path, open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        raws = [mm[s:e].decode("utf-8", errors="replace").rstrip("\r\n").lstrip("\ufeff") for _, s, e in spans]
    return pd.DataFrame({"_record": [r for r, _, _ in spans], "raw": raws})


class _Clock:
    """Seconds per phase, logged and kept in the file report (where a slow file's time went)."""

    def __init__(self):
        import time

        self._now = time.perf_counter
        self._last = self._now()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = self._now()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def validate_file(lake, manifest: dict) -> dict:
    """Validate one crawled file; write its quarantined rows and its valid rows (staging).

    Returns the file's accounting: rows_in, rows_valid, rows_quarantined, the failures per rule.
    A file whose validation itself fails (a bug, a value no rule foresaw) is quarantined whole
    with that reason, so the other files of its date still curate; storage errors propagate
    (a retry can help them).
    """
    try:
        return _validate_file(lake, manifest)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - one file's surprise never fails the other files of its date
        log.exception("%s: validation failed; the file is quarantined whole", manifest["file"])
        reason = f"validation failed: {type(exc).__name__}: {exc}"
        failed = {**manifest, "status": "unreadable", "reason": reason}
        report = {"file": manifest["file"], "file_id": manifest["file_id"], "dt": manifest["dt"],
                  "status": "validation_failed", "rows_in": manifest.get("rows_in"), "format": manifest.get("format")}  # fmt: skip
        return {**report, **_quarantine_whole(lake, failed)}


def _validate_file(lake, manifest: dict) -> dict:
    import pyarrow.parquet as pq

    dt, name, fid = manifest["dt"], manifest["file"], manifest["file_id"]
    report = {"file": name, "file_id": fid, "dt": dt, "status": manifest["status"], "rows_in": manifest.get("rows_in"),
              "format": manifest.get("format")}  # fmt: skip
    if manifest["status"] != "parsed":
        return {**report, **_quarantine_whole(lake, manifest)}

    staging = manifest["staging"]
    columns = list(manifest["columns"])  # the staged (snake_case) columns, in source order
    warnings_: dict[str, int] = {}
    expectations: dict[str, dict] = {}
    failed_records: list[int] = []
    failed_reasons: list[list[str]] = []
    with ExitStack() as stack:
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="validate-"))
        rows = [stack.enter_context(lake.local_path(k)) for k in staging["rows"]]
        lines = stack.enter_context(lake.local_path(staging["lines"]))
        rejects = stack.enter_context(lake.local_path(staging["rejects"])) if staging.get("rejects") else None
        runner = SuiteRunner(f"reviews-{fid}", project_dir=os.path.join(work, "gx"))
        con = duckdb_session(work)
        stack.callback(con.close)
        con.execute(
            f"CREATE VIEW src AS SELECT * FROM read_parquet({sql_literal(rows)}, union_by_name = true) r "
            f"POSITIONAL JOIN read_parquet({sql_literal(lines)}) l"
        )
        typed_path = os.path.join(work, "typed.parquet")
        clock = _Clock()
        con.execute(
            f"COPY ({typed_query(columns, 'review_id' in columns)}) TO {sql_literal(typed_path)} (FORMAT parquet, COMPRESSION lz4_raw)"
        )
        for statement in SMALL_TABLES.format(typed=sql_literal(typed_path)).split(";"):
            if statement.strip():
                con.execute(statement)
        copies = {r for (r,) in con.execute("SELECT _record FROM copies").fetchall()}  # exact copies in this file
        shared_ids = dict(con.execute("SELECT t_source_row_id, n FROM ids").fetchall())  # ids of >1 distinct review

        clock.lap("typing")
        # GX on the typed contract columns, batch by batch; failing rows are named by their record.
        typed = pq.ParquetFile(typed_path)
        for record_batch in typed.iter_batches(BATCH_ROWS, columns=[*GX_COLUMNS, "_record"]):
            batch = record_batch.to_pandas()
            if copies:
                batch = batch[~batch["_record"].isin(copies)].reset_index(drop=True)
            sid = batch["t_source_row_id"]
            batch[ID_ROWS] = sid.map(shared_ids).fillna(1).astype("int64") if shared_ids else 1
            if not len(batch):
                continue
            outcome = runner.run(_gx_frame(batch))
            for rule, n in outcome["warnings"].items():
                warnings_[rule] = warnings_.get(rule, 0) + n
            for e in outcome["expectations"]:
                agg = expectations.setdefault(e["rule"], {**e, "unexpected_count": 0})
                agg["success"] = agg["success"] and e["success"]
                agg["unexpected_count"] += e["unexpected_count"] or 0
            records = batch["_record"].to_numpy()
            for index, reasons in outcome["row_failures"].items():
                failed_records.append(int(records[index]))
                failed_reasons.append(reasons)

        clock.lap("gx")
        failures = pd.DataFrame({"_record": pd.Series(failed_records, dtype="int64"), "reasons": failed_reasons})
        con.register("failures", failures)
        con.register("raws", _raw_texts(lake, manifest, con, typed_path, [*failed_records, *copies]))
        local_valid = os.path.join(work, "valid.parquet")
        curated = ", ".join(
            [
                '_review_id AS review_id',
                *[f'"t_{c}" AS "{c}"' if c in contract.INTEGER_COLUMNS else f'coalesce("{c}", \'\') AS "{c}"'
                  for c in contract.REQUIRED_COLUMNS],
                f"({contract.sentiment_sql('t_rating')})::BIGINT AS sentiment",
                f"{sql_literal(name)} AS source_file",
                "_line AS source_line",
                "_start",
                "_end",  # the record's byte span, for quarantining it later with its text
            ]
        )  # fmt: skip
        con.execute(
            f"COPY (SELECT {curated} FROM read_parquet({sql_literal(typed_path)}) t "
            "WHERE NOT EXISTS (SELECT 1 FROM failures f WHERE f._record = t._record) "
            "AND NOT EXISTS (SELECT 1 FROM copies c WHERE c._record = t._record) "
            f") TO {sql_literal(local_valid)} (FORMAT parquet, COMPRESSION lz4_raw)"
        )
        rows_valid = pq.ParquetFile(local_valid).metadata.num_rows
        lake.put_file(local_valid, valid_key(dt, fid))

        # Quarantine: parse rejects, rule failures, exact copies; every record with line and reasons.
        values = ", ".join(f'coalesce("{c}", \'\') AS "{c}"' for c in columns)
        parts = [
            f"SELECT _line AS source_line, _record AS source_record, f.reasons::VARCHAR[] AS reasons, "
            f"coalesce(w.raw, '') AS raw, {values} "
            f"FROM read_parquet({sql_literal(typed_path)}) t JOIN failures f USING (_record) LEFT JOIN raws w USING (_record)",
            f"SELECT _line, _record, ['duplicate review: same review as line ' || c.first_line || ' of this file'], "
            f"coalesce(w.raw, ''), {values} FROM read_parquet({sql_literal(typed_path)}) t JOIN copies c USING (_record) "
            "LEFT JOIN raws w USING (_record)",
        ]
        if rejects:
            nulls = ", ".join(f"'' AS \"{c}\"" for c in columns)
            parts.append(f"SELECT _line, _record, [reason], raw, {nulls} FROM read_parquet({sql_literal(rejects)})")
        quarantine_sql = (
            f"SELECT {sql_literal(name)} AS source_file, * FROM ({' UNION ALL '.join(parts)}) ORDER BY source_line"
        )
        local_q = os.path.join(work, "quarantine.parquet")
        con.execute(f"COPY ({quarantine_sql}) TO {sql_literal(local_q)} (FORMAT parquet)")
        rows_quarantined = pq.ParquetFile(local_q).metadata.num_rows
        by_rule: dict[str, int] = {}
        # parse-level reasons carry details after the colon; GX labels are the rule itself
        for reason, n in con.execute(
            f"SELECT CASE WHEN r LIKE 'malformed%' OR r LIKE 'merged%' OR r LIKE 'duplicate%' THEN split_part(r, ':', 1) "
            f"ELSE r END, count(*) FROM (SELECT unnest(reasons) AS r FROM read_parquet({sql_literal(local_q)})) GROUP BY 1"
        ).fetchall():
            by_rule[reason] = int(n)
        sample = con.execute(
            f"SELECT source_line, reasons FROM read_parquet({sql_literal(local_q)}) LIMIT 5"
        ).fetchall()
        outputs = [docs_prefix(dt, fid)]
        if rows_quarantined:
            lake.put_file(local_q, quarantine_key(dt, fid))
            outputs.append(quarantine_key(dt, fid))
        clock.lap("write")
        maybe_crash("validate")
        docs = os.path.join(work, "docs")
        runner.build_docs(docs)
        _publish_dir(lake, docs, docs_prefix(dt, fid))
        clock.lap("data_docs")
    log.info("%s: validate seconds %s", name, clock.laps)

    for number, reasons in sample:
        log.warning("%s line %s quarantined: %s", name, number, "; ".join(reasons))
    return {
        **report,
        "rows_valid": int(rows_valid),
        "rows_quarantined": int(rows_quarantined),
        "quarantined_by_rule": by_rule,
        "warnings": warnings_,
        "expectations": list(expectations.values()),
        "data_docs": lake.uri(f"{docs_prefix(dt, fid)}index.html"),
        "valid_keys": [valid_key(dt, fid)],
        "text_key": (staging.get("text") or manifest["raw_key"]) if "text" in staging else None,
        "outputs": outputs,
        "notes": manifest.get("notes", []),
        "seconds": clock.laps,
    }
