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

import numpy as np
import pandas as pd

from reviewflow import schema
from reviewflow.faults import maybe_crash

log = logging.getLogger(__name__)

SUITE_NAME = "reviews_contract"
QUARANTINE = "quarantine/reviews"
QUALITY = "reports/quality"
ID_ROWS = "_id_rows_in_file"  # rows of the file (distinct reviews) sharing this row's source_row_id
IDENTITY_COLUMNS = [c for c in schema.REQUIRED_COLUMNS if c != "positive_feedback_count"]  # counts change on redelivery
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
    add(gxe.ExpectTableColumnsToMatchSet(column_set=schema.REQUIRED_COLUMNS, exact_match=False,
                                         meta=meta("required columns present")))  # fmt: skip
    add(gxe.ExpectColumnValuesToNotBeNull(column="review_text", meta=meta("review text present")))
    for column in schema.INTEGER_COLUMNS:
        add(gxe.ExpectColumnValuesToNotBeNull(column=column, meta=meta(f"{column} is an integer (int64)")))
    add(gxe.ExpectColumnValuesToBeInSet(column="rating", value_set=[1, 2, 3, 4, 5], meta=meta("rating in 1..5")))
    add(gxe.ExpectColumnValuesToBeBetween(column="age", min_value=schema.MIN_AGE, max_value=schema.MAX_AGE,
                                          meta=meta(f"age plausible ({schema.MIN_AGE}..{schema.MAX_AGE})")))  # fmt: skip
    add(
        gxe.ExpectColumnValuesToBeInSet(
            column="recommended_ind", value_set=[0, 1], meta=meta("recommended_ind in {0,1}")
        )
    )
    add(gxe.ExpectColumnValuesToBeBetween(column="positive_feedback_count", min_value=0,
                                          meta=meta("positive_feedback_count >= 0")))  # fmt: skip
    # Uniqueness over the whole file (not one batch): DuckDB counts the rows sharing an id.
    add(gxe.ExpectColumnValuesToBeBetween(column=ID_ROWS, max_value=1, meta=meta("review id unique in file")))
    for column, known in (("division_name", schema.DIVISIONS), ("department_name", schema.DEPARTMENTS),
                          ("class_name", schema.CLASSES)):  # fmt: skip
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
    # An integer (optionally "5.0") that fits int64 (at most 18 digits), else NULL.
    v = f"trim(coalesce(\"{column}\", ''))"
    return f"CASE WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,18}}([.]0*)?') THEN TRY_CAST({v} AS BIGINT) END"


def typed_query(columns: list[str], has_source_id: bool) -> str:
    """SQL over ``src`` (staged strings + _line/_record): typed contract columns, review_id, copies."""
    typed = [f'{_int_expr(c)} AS "t_{c}"' for c in schema.INTEGER_COLUMNS]
    texts = [f"nullif(trim(coalesce(\"{c}\", '')), '') AS \"t_{c}\"" for c in schema.TEXT_COLUMNS]
    if has_source_id:
        identity = "nullif(trim(coalesce(review_id, '')), '')"
    else:  # content identity: the same review redelivered (any file, any day) gets the same id
        parts = ", ".join(f"trim(coalesce(\"{c}\", ''))" for c in IDENTITY_COLUMNS)
        identity = f"substr(md5(concat_ws(chr(31), {parts})), 1, 16)"
    return f"""
    WITH i AS MATERIALIZED (SELECT *, {", ".join(typed + texts)}, {identity} AS _review_id FROM src),
    firsts AS (SELECT _review_id, min(_record) AS _first_record, min(_line) AS _first_line FROM i GROUP BY 1),
    ids AS (
        SELECT t_source_row_id, count(*) AS {ID_ROWS} FROM (SELECT DISTINCT _review_id, t_source_row_id FROM i)
        WHERE t_source_row_id IS NOT NULL GROUP BY 1
    )
    SELECT i.*, (i._record > f._first_record) AS _is_copy, f._first_line,
           coalesce(d.{ID_ROWS}, 1) AS {ID_ROWS}
    FROM i JOIN firsts f USING (_review_id) LEFT JOIN ids d USING (t_source_row_id)
    ORDER BY i._record
    """


def sql_literal(value: str | list[str]) -> str:
    """A string (or list of strings) as a DuckDB literal, for statements that cannot take parameters."""
    if isinstance(value, list):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    return "'" + value.replace("'", "''") + "'"


def _typed_frame(batch: pd.DataFrame) -> pd.DataFrame:
    """The frame GX sees: contract columns typed (Int64 / string with None for blanks)."""
    out = pd.DataFrame(index=batch.index)
    for c in schema.REQUIRED_COLUMNS:
        col = batch[f"t_{c}"]
        out[c] = col.astype("Int64") if c in schema.INTEGER_COLUMNS else col.astype(object).where(col.notna(), None)
    out[ID_ROWS] = batch[ID_ROWS].astype("int64")
    return out


def _publish_dir(lake, local_dir: str, prefix: str) -> None:
    """Copy a local folder (a Data Docs site) under a lake prefix, replacing what was there."""
    lake.delete_prefix(prefix)
    for path in sorted(Path(local_dir).rglob("*")):
        if path.is_file():
            lake.put_file(str(path), prefix + path.relative_to(local_dir).as_posix())


def quarantine_key(dt: str, fid: str) -> str:
    from reviewflow.lake import dt_prefix

    return f"{dt_prefix(QUARANTINE, dt)}rows/{fid}.parquet"


def docs_prefix(dt: str, fid: str) -> str:
    from reviewflow.lake import dt_prefix

    return f"{dt_prefix(QUALITY, dt)}{fid}/"


def valid_key(dt: str, fid: str, part: int) -> str:
    from reviewflow.crawl import staging_prefix

    return f"{staging_prefix(dt, fid)}valid-{part:05d}.parquet"


def _quarantine_whole(lake, manifest: dict) -> dict:
    from reviewflow.lake import dt_prefix, write_json

    dt, fid = manifest["dt"], manifest["file_id"]
    base = f"{dt_prefix(QUARANTINE, dt)}files/{fid}"
    lake.copy(manifest["raw_key"], base)
    rows = manifest.get("rows_in")
    write_json(lake, f"{base}.reason.json", {"file": manifest["file"], "status": manifest["status"],
                                              "reason": manifest["reason"], "rows_in": rows})  # fmt: skip
    return {"rows_valid": 0, "rows_quarantined": rows, "reason": manifest["reason"],
            "quarantined_by_rule": {manifest["reason"].split(":")[0]: rows}, "outputs": [base, f"{base}.reason.json"]}  # fmt: skip


def validate_file(lake, manifest: dict) -> dict:
    """Validate one crawled file; write its quarantined rows and its valid rows (staging).

    Returns the file's accounting: rows_in, rows_valid, rows_quarantined, the failures per rule.
    """
    dt, name, fid = manifest["dt"], manifest["file"], manifest["file_id"]
    report = {"file": name, "file_id": fid, "dt": dt, "status": manifest["status"], "rows_in": manifest.get("rows_in"),
              "format": manifest.get("format")}  # fmt: skip
    if manifest["status"] != "parsed":
        return {**report, **_quarantine_whole(lake, manifest)}

    import duckdb

    staging = manifest["staging"]
    quarantined: list[pd.DataFrame] = []
    warnings_: dict[str, int] = {}
    expectations: dict[str, dict] = {}
    valid_parts: list[str] = []
    rows_valid = 0
    with ExitStack() as stack:
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="validate-"))
        rows = [stack.enter_context(lake.local_path(k)) for k in staging["rows"]]
        lines = stack.enter_context(lake.local_path(staging["lines"]))
        if staging.get("rejects"):
            rejects = pd.read_parquet(stack.enter_context(lake.local_path(staging["rejects"])))
            quarantined.append(pd.DataFrame({"source_line": rejects["_line"], "source_record": rejects["_record"],
                                             "reasons": rejects["reason"].map(lambda r: [r]), "raw": rejects["raw"]}))  # fmt: skip
        columns = list(manifest["columns"])  # the staged (snake_case) columns, in source order
        runner = SuiteRunner(f"reviews-{fid}", project_dir=os.path.join(work, "gx"))
        con = stack.enter_context(duckdb.connect())
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET temp_directory = '{work}/duckdb-tmp'")
        con.execute(
            f"CREATE VIEW src AS SELECT * FROM read_parquet({sql_literal(rows)}, union_by_name = true) r "
            f"POSITIONAL JOIN read_parquet({sql_literal(lines)}) l"
        )
        reader = con.sql(typed_query(columns, "review_id" in columns)).to_arrow_reader(BATCH_ROWS)
        for part, record_batch in enumerate(reader):
            batch = record_batch.to_pandas()
            copies = batch["_is_copy"].astype(bool)
            dup = batch[copies]
            if len(dup):
                quarantined.append(_quarantine_rows(dup, columns, [[f"duplicate review: same review as line {n} of this file"]
                                                                   for n in dup["_first_line"]]))  # fmt: skip
            batch = batch[~copies].reset_index(drop=True)
            typed = _typed_frame(batch)
            outcome = runner.run(typed)
            for rule, n in outcome["warnings"].items():
                warnings_[rule] = warnings_.get(rule, 0) + n
            for e in outcome["expectations"]:
                agg = expectations.setdefault(e["rule"], {**e, "unexpected_count": 0})
                agg["success"] = agg["success"] and e["success"]
                agg["unexpected_count"] += e["unexpected_count"] or 0
            failures = outcome["row_failures"]
            bad = batch.index.isin(list(failures))
            if bad.any():
                quarantined.append(_quarantine_rows(batch[bad], columns, [failures[i] for i in batch.index[bad]]))
            good = batch[~bad]
            rows_valid += len(good)
            local = os.path.join(work, f"valid-{part:05d}.parquet")
            _curated_rows(good, name).to_parquet(local, index=False)
            valid_parts.append(valid_key(dt, fid, part))
            lake.put_file(local, valid_parts[-1])
        rejected = (
            pd.concat(quarantined, ignore_index=True) if quarantined else pd.DataFrame(columns=QUARANTINE_COLUMNS)
        )
        rejected["source_file"] = name
        rejected = rejected.sort_values("source_line", kind="stable")
        outputs = [docs_prefix(dt, fid)]
        if len(rejected):
            local = os.path.join(work, "quarantine.parquet")
            rejected[[*QUARANTINE_COLUMNS, *[c for c in rejected.columns if c not in QUARANTINE_COLUMNS]]].to_parquet(
                local, index=False
            )
            lake.put_file(local, quarantine_key(dt, fid))
            outputs.append(quarantine_key(dt, fid))
        maybe_crash("validate")
        docs = os.path.join(work, "docs")
        runner.build_docs(docs)
        _publish_dir(lake, docs, docs_prefix(dt, fid))

    for number, reasons in zip(rejected["source_line"].head(5), rejected["reasons"].head(5), strict=True):
        log.warning("%s line %s quarantined: %s", name, number, "; ".join(reasons))
    by_rule: dict[str, int] = {}
    for reasons in rejected["reasons"]:
        for reason in reasons:
            # parse-level reasons carry details after the colon; GX labels are the rule itself
            rule = reason.split(":")[0] if reason.startswith(PARSE_REASONS) else reason
            by_rule[rule] = by_rule.get(rule, 0) + 1
    return {
        **report,
        "rows_valid": int(rows_valid),
        "rows_quarantined": int(len(rejected)),
        "quarantined_by_rule": by_rule,
        "warnings": warnings_,
        "expectations": list(expectations.values()),
        "data_docs": lake.uri(f"{docs_prefix(dt, fid)}index.html"),
        "valid_keys": valid_parts,
        "outputs": outputs,
        "notes": manifest.get("notes", []),
    }


def _quarantine_rows(batch: pd.DataFrame, columns: list[str], reasons: list[list[str]]) -> pd.DataFrame:
    out = batch[columns].fillna("").astype(str)
    out.insert(0, "raw", "")
    out.insert(0, "reasons", reasons)
    out.insert(0, "source_record", batch["_record"].astype("int64").to_numpy())
    out.insert(0, "source_line", batch["_line"].astype("int64").to_numpy())
    return out.reset_index(drop=True)


def _curated_rows(good: pd.DataFrame, source_file: str) -> pd.DataFrame:
    """Valid rows in the curated shape (ingest_run and dt are added by curate)."""
    out = pd.DataFrame({"review_id": good["_review_id"].astype(str)})
    for c in schema.REQUIRED_COLUMNS:
        col = good[f"t_{c}"]
        out[c] = col.astype("int64") if c in schema.INTEGER_COLUMNS else col.fillna("").astype(str)
    rating = out["rating"].to_numpy()
    out["sentiment"] = np.where(rating <= 2, -1, np.where(rating == 3, 0, 1)).astype("int64")  # DESIGN.md
    out["source_file"] = source_file
    out["source_line"] = good["_line"].astype("int64").to_numpy()
    return out
