"""Validate: the review suite in GX Core 1.x, run per file, failing rows named with their rules.

Values arrive as strings; numeric columns are coerced first (a value that is not an integer
becomes null, so "rating must be an integer" is a not-null expectation on the coerced column).
Critical expectations quarantine the rows they flag; warning-level ones (unknown categories)
are reported but keep the row. GX renders Data Docs for every run.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pandas as pd

from reviewflow import schema

log = logging.getLogger(__name__)

SUITE_NAME = "reviews_contract"
QUARANTINE = "quarantine/reviews"
QUALITY = "reports/quality"


def coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed view of a parsed (all-string) frame: integers as Int64 (null if not an integer)."""
    typed = frame.copy()
    for column in schema.INTEGER_COLUMNS:
        numbers = pd.to_numeric(frame[column].str.strip(), errors="coerce")
        typed[column] = numbers.where(numbers % 1 == 0).astype("Int64")
    for column in schema.TEXT_COLUMNS:
        text = frame[column]
        typed[column] = text.where(text.str.strip() != "")  # blank text counts as missing
    return typed


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
        add(gxe.ExpectColumnValuesToNotBeNull(column=column, meta=meta(f"{column} is an integer")))
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
    add(gxe.ExpectColumnValuesToBeUnique(column="source_row_id", meta=meta("review id unique in file")))
    for column, known in (("division_name", schema.DIVISIONS), ("department_name", schema.DEPARTMENTS),
                          ("class_name", schema.CLASSES)):  # fmt: skip
        add(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=known, severity="warning",
                                            meta=meta(f"{column} from the known set")))  # fmt: skip
    return suite


def _context(project_dir: str):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="file", project_root_dir=project_dir)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def validate_frame(typed: pd.DataFrame, name: str, docs_dir: str | None = None, suite=None) -> dict:
    """Run a suite (default: the review contract) on one file's typed frame.

    Returns ``{"row_failures": {index: [rules]}, "warnings": {rule: count}, "expectations": [...],
    "docs_dir": path}``; with ``docs_dir`` the Data Docs site is copied there.
    """
    import shutil

    import great_expectations as gx

    with tempfile.TemporaryDirectory(prefix="gx-") as project_dir:
        context = _context(project_dir)
        batch = (
            context.data_sources.add_pandas("reviews")
            .add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe("file")
        )
        suite = context.suites.add(suite or build_suite())
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{name}-checkpoint",
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if docs_dir else [],
                result_format={"result_format": "COMPLETE", "include_unexpected_rows": False},
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": typed})
        if docs_dir:
            site = Path(project_dir) / "gx" / "uncommitted" / "data_docs" / "local_site"
            shutil.copytree(site, docs_dir, dirs_exist_ok=True)

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
                warnings_[rule] = len(unexpected)
                continue
            column = config.kwargs.get("column")
            label = f"{config.type}({column}): {rule}" if column else rule
            if not column:  # a table-level rule (columns) failed: no row can pass
                unexpected = list(typed.index)
            for index in unexpected:
                row_failures.setdefault(int(index), []).append(label)
    return {"row_failures": row_failures, "warnings": warnings_, "expectations": expectations,
            "success": not row_failures}  # fmt: skip


def _publish_dir(lake, local_dir: str, prefix: str) -> None:
    """Copy a local folder (a Data Docs site) under a lake prefix, replacing what was there."""
    lake.delete_prefix(prefix)
    for path in sorted(Path(local_dir).rglob("*")):
        if path.is_file():
            lake.write_bytes(prefix + path.relative_to(local_dir).as_posix(), path.read_bytes())


def validate_file(lake, manifest: dict) -> dict:
    """Validate one crawled file; write its quarantined rows and its valid rows (staging).

    Returns the file's accounting: rows_in, rows_valid, rows_quarantined, the failures per rule.
    """
    from reviewflow.crawl import ROW_NUMBER
    from reviewflow.lake import dt_prefix, read_parquet, write_json, write_parquet

    dt, name = manifest["dt"], manifest["file"]
    quarantine = dt_prefix(QUARANTINE, dt)
    report = {"file": name, "dt": dt, "status": manifest["status"], "rows_in": manifest.get("rows_in")}
    if manifest["status"] != "parsed":
        # Unreadable or wrong schema: the whole file goes to quarantine with its reason.
        lake.write_bytes(f"{quarantine}files/{name}", lake.read_bytes(manifest["raw_key"]))
        write_json(lake, f"{quarantine}files/{name}.reason.json", {"file": name, "reason": manifest["reason"]})
        rows = manifest.get("rows_in") or 0
        return {**report, "rows_valid": 0, "rows_quarantined": rows, "reason": manifest["reason"]}

    parsed = read_parquet(lake, manifest["staging_key"])
    typed = coerce(parsed)
    stem = name.rsplit(".", 1)[0]
    with tempfile.TemporaryDirectory(prefix="docs-") as docs:
        outcome = validate_frame(typed, stem, docs_dir=docs)
        _publish_dir(lake, docs, f"{dt_prefix(QUALITY, dt)}{stem}/")

    failures = outcome["row_failures"]
    bad_index = parsed.index.isin(list(failures))
    rejected = parsed[bad_index].copy()
    rejected["reasons"] = [failures[i] for i in rejected.index]
    if manifest.get("bad_lines_key"):
        bad_lines = read_parquet(lake, manifest["bad_lines_key"]).rename(columns={"row_number": ROW_NUMBER})
        bad_lines["reasons"] = bad_lines.pop("reason").map(lambda r: [r])
        rejected = pd.concat([rejected, bad_lines], ignore_index=True)
    rejected.insert(0, "source_file", name)
    for number, reasons in zip(rejected[ROW_NUMBER].head(5), rejected["reasons"].head(5), strict=True):
        log.warning("%s row %s quarantined: %s", name, number, "; ".join(reasons))
    if len(rejected):
        write_parquet(lake, f"{quarantine}rows/{stem}.parquet", rejected.sort_values(ROW_NUMBER))

    valid = typed[~bad_index]
    write_parquet(lake, manifest["staging_key"].replace(".parquet", ".valid.parquet"), valid)
    by_rule: dict[str, int] = {}
    for reasons in rejected["reasons"]:
        for reason in reasons:
            by_rule[reason] = by_rule.get(reason, 0) + 1
    return {
        **report,
        "rows_valid": int(len(valid)),
        "rows_quarantined": int(len(rejected)),
        "quarantined_by_rule": by_rule,
        "warnings": outcome["warnings"],
        "expectations": outcome["expectations"],
        "data_docs": lake.uri(f"{dt_prefix(QUALITY, dt)}{stem}/index.html"),
        "valid_key": manifest["staging_key"].replace(".parquet", ".valid.parquet"),
    }
