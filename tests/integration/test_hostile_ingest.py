"""Hostile input through the real `reviews_ingest` DAG, each date in a fresh `airflow dags test` process.

The corpus and its ground truth come from tests/hostile_corpus.py (built by code, never from real
data). After one run per date, every landed record must be accounted for in the outputs (read
here with pandas / json, not with reviewflow's code): curated rows, quarantined rows (file, line,
a reason naming the rule, raw text), files quarantined whole (a copy + reason), the ingest report.
A rerun after fixing a file and a rerun after a SIGKILL at a fault point must leave exactly what a
clean run leaves.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from fresh_process import airflow_dags_test
from hostile_corpus import (
    D_FORMATS,
    D_REDELIVERY,
    D_RERUN,
    D_STRUCTURE,
    DUPLICATE,
    INTEGER_COLUMNS,
    VALUE_COLUMNS,
    Case,
    corpus,
    land,
    rerun_inputs,
    sentiment,
)

pytestmark = pytest.mark.e2e

DAG_ID = "reviews_ingest"
CURATED_COLUMNS = [
    "review_id", *VALUE_COLUMNS, "sentiment", "source_file", "source_line", "ingest_run",
]  # fmt: skip
REPORT_KEYS = [
    "dt",
    "rows_in",
    "rows_curated",
    "rows_quarantined",
    "rows_duplicate",
    "files",
    "skipped",
    "schema_drift",
]
FILE_KEYS = ["file", "file_id", "status", "format", "rows_in", "rows_curated", "rows_quarantined", "rows_duplicate"]
STATUSES = {"parsed", "unreadable", "wrong_schema", "empty"}
WHOLE = {"unreadable", "wrong_schema"}
RUN_SECONDS: dict[str, float] = {}
MAX_PROBLEMS = 200


# -- running ------------------------------------------------------------------------------------


def run_ingest(dt: str, label: str, env: dict | None = None, timeout: int = 600):
    import subprocess

    started = time.monotonic()
    try:
        result = airflow_dags_test(DAG_ID, dt, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"airflow dags test {DAG_ID} {dt} [{label}] still running after {timeout} s (a hung dag run?)")
    RUN_SECONDS[label] = round(time.monotonic() - started, 1)
    print(f"airflow dags test {DAG_ID} {dt} [{label}]: rc={result.returncode} state={result.state} "
          f"in {RUN_SECONDS[label]} s")  # fmt: skip
    return result


def lake_env(root: str | Path) -> dict:
    return {"REVIEWFLOW_LAKE": str(root), "REVIEWFLOW_CATALOG": "duckdb", "REVIEWFLOW_SQL": "duckdb"}


def tail(output: str, n: int = 1500) -> str:
    """The distinct error lines of a run's output (every failed task's), then its last characters."""
    import re

    errors = []
    for line in output.splitlines():
        if re.match(r"^\s*[\w.]*(Error|Exception|Exit)\b.*:", line) and line.strip() not in errors:
            errors.append(line.strip())
    return "errors: " + " | ".join(errors[:12]) + "\n... " + output[-n:]


# -- reading the outputs (pandas / json only) -----------------------------------------------


def part(root: Path, zone: str, dt: str) -> Path:
    return root / zone / f"dt={dt}"


def read_frames(paths: list[Path]) -> pd.DataFrame | None:
    frames = [pd.read_parquet(p) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else None


def curated_frame(root: Path, dt: str) -> pd.DataFrame | None:
    return read_frames(sorted(part(root, "curated/reviews", dt).glob("*.parquet")))


def quarantine_frame(root: Path, dt: str) -> pd.DataFrame | None:
    return read_frames(sorted((part(root, "quarantine/reviews", dt) / "rows").rglob("*.parquet")))


def line_column(frame: pd.DataFrame) -> str | None:
    return next((c for c in ("source_line", "line") if c in frame.columns), None)


def as_reasons(value) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in list(value)]


def norm_reason(text: str) -> str:
    return text.lower().replace("_", " ")


def names_rule(reasons: list[str], rules: tuple[str, ...]) -> bool:
    return bool(reasons) and any(r in norm_reason(reason) for reason in reasons for r in rules)


def norm_text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).replace("\r\n", "\n")


def all_files(root: Path, under: str = "") -> list[Path]:
    """Every file, dotfiles included (Path.rglob finds them; lake listings may hide them)."""
    base = root / under if under else root
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


LEFTOVER_ZONES = ("curated/", "quarantine/", "raw/", "reports/")


def leftovers(root: Path) -> list[str]:
    """Temp files under the output zones (a lake-level scratch folder is the implementation's own)."""
    rels = (str(p.relative_to(root)) for p in all_files(root) if p.name.endswith(".tmp"))
    return [rel for rel in rels if rel.startswith(LEFTOVER_ZONES)]


# -- the checks ------------------------------------------------------------------------------


class Problems(list):
    def add(self, message: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append(message)
        elif len(self) == MAX_PROBLEMS:
            self.append("... more problems left out")


def value_diffs(expected: dict, row: dict, loose_text: bool = False) -> list[str]:
    diffs = []
    for column in VALUE_COLUMNS:
        if column not in row:
            continue  # reported once as a missing column
        want, got = expected[column], row[column]
        if column in INTEGER_COLUMNS:
            ok = got is not None and not (isinstance(got, float) and math.isnan(got)) and int(got) == int(want)
        else:
            w, g = norm_text(want), norm_text(got)
            ok = (w.strip('"') == g.strip('"')) if loose_text else (w == g)
        if not ok:
            diffs.append(f"{column}: want {want!r}, got {got!r}")
    if "sentiment" in row and row["sentiment"] != sentiment(int(expected["rating"])):
        diffs.append(f"sentiment: want {sentiment(int(expected['rating']))}, got {row['sentiment']!r}")
    return diffs


def check_date(root: str | Path, dt: str, cases: list[Case], result=None) -> Problems:
    """Everything the output contract promises for one date, as a list of problems (empty = pass)."""
    root = Path(root)
    p = Problems()
    if result is not None and not result.ok:
        p.add(
            f"dag run for {dt} did not succeed (rc={result.returncode}, state={result.state}):\n{tail(result.output)}"
        )

    # the ingest report
    report_path = root / f"reports/ingest/dt={dt}/ingest_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    if report is None:
        p.add(f"no ingest report at {report_path.relative_to(root)}")
        report = {}
    missing = [k for k in REPORT_KEYS if k not in report]
    if report and missing:
        p.add(f"ingest report lacks keys {missing}")
    if report and report.get("dt") != dt:
        p.add(f"ingest report dt={report.get('dt')!r}, want {dt}")
    entries: dict[str, dict] = {}
    for entry in report.get("files") or []:
        absent = [k for k in FILE_KEYS if k not in entry]
        if absent:
            p.add(f"report entry {entry.get('file')!r} lacks keys {absent}")
        if entry.get("file") in entries:
            p.add(f"report lists {entry.get('file')!r} twice")
        entries[entry.get("file")] = entry
    skipped = {s.get("file"): s for s in (report.get("skipped") or [])}
    file_ids = [e.get("file_id") for e in entries.values()]
    if len(set(file_ids)) != len(file_ids):
        p.add(f"file_id not unique in report: {file_ids}")
    truth_names = {c.name for c in cases}
    for name in set(entries) - truth_names:
        p.add(f"report lists a file that was not landed (relative path expected): {name!r}")
    for name, entry in skipped.items():
        case = next((c for c in cases if c.name == name), None)
        if case is None:
            p.add(f"report skips a file that was not landed: {name!r}")
        elif not case.truth.optional:
            p.add(f"report skips {name!r}, which must be ingested: {entry.get('reason')!r}")
        if not entry.get("reason"):
            p.add(f"skipped file {name!r} has no reason")
    if report:
        for key in ("rows_in", "rows_curated", "rows_quarantined", "rows_duplicate"):
            total = sum(e.get(key) or 0 for e in entries.values())
            if report.get(key) != total:
                p.add(f"report {key}={report.get(key)} but its files sum to {total}")
        if report.get("rows_in") != (report.get("rows_curated") or 0) + (report.get("rows_quarantined") or 0):
            p.add(f"report rows_in={report.get('rows_in')} != curated {report.get('rows_curated')} "
                  f"+ quarantined {report.get('rows_quarantined')}")  # fmt: skip
        drift = json.dumps(report.get("schema_drift"), default=str).lower()
        for case in cases:
            for column in case.truth.drift_columns:
                if column not in drift:
                    p.add(f"schema_drift does not mention new column {column!r} of {case.name!r}")

    # curated rows
    curated = curated_frame(root, dt)
    cur_index: dict[tuple, list[dict]] = defaultdict(list)
    cur_by_file: dict[str, int] = defaultdict(int)
    if curated is None:
        p.add(f"no curated parquet under curated/reviews/dt={dt}/")
        curated = pd.DataFrame(columns=CURATED_COLUMNS)
    else:
        absent = [c for c in CURATED_COLUMNS if c not in curated.columns]
        if absent:
            p.add(f"curated lacks columns {absent} (has {list(curated.columns)})")
        if "source_line" in curated.columns and str(curated["source_line"].dtype) != "int64":
            p.add(f"curated source_line is {curated['source_line'].dtype}, want int64")
        if "review_id" in curated.columns and curated["review_id"].duplicated().any():
            p.add(
                f"review_id repeated in dt={dt}: {curated['review_id'][curated['review_id'].duplicated()].head(5).tolist()}"
            )
        if report and report.get("rows_curated") != len(curated):
            p.add(f"report rows_curated={report.get('rows_curated')} but curated has {len(curated)} rows")
    if "source_file" in curated.columns:
        cur_by_file.update(curated["source_file"].value_counts().to_dict())
        if "source_line" in curated.columns:
            for row in curated.to_dict("records"):
                cur_index[(row["source_file"], int(row["source_line"]))].append(row)
        for name in set(cur_by_file) - truth_names:
            p.add(f"curated rows name an unknown source_file {name!r} ({cur_by_file[name]} rows)")

    # quarantined rows
    quarantine = quarantine_frame(root, dt)
    q_index: dict[tuple, list[dict]] = defaultdict(list)
    q_by_file: dict[str, int] = defaultdict(int)
    if quarantine is not None:
        qline = line_column(quarantine)
        absent = [c for c in ("source_file", "reasons", "raw") if c not in quarantine.columns]
        if qline is None:
            absent.append("source_line (or line)")
        if absent:
            p.add(f"quarantine rows lack columns {absent} (have {list(quarantine.columns)})")
        if "source_file" in quarantine.columns:
            q_by_file.update(quarantine["source_file"].value_counts().to_dict())
            for name in set(q_by_file) - truth_names:
                p.add(f"quarantine rows name an unknown source_file {name!r} ({q_by_file[name]} rows)")
            if qline:
                for row in quarantine.to_dict("records"):
                    if row[qline] is None or (isinstance(row[qline], float) and math.isnan(row[qline])):
                        p.add(f"quarantine row of {row['source_file']!r} without a line: {row.get('reasons')}")
                        continue
                    q_index[(row["source_file"], int(row[qline]))].append(row)
    matchable = "source_line" in curated.columns  # quarantine rows without a line column were reported above
    matched_q: set[tuple] = set()
    groups: dict[str, list[tuple]] = defaultdict(list)

    for case in cases:
        name, truth = case.name, case.truth
        entry, skip = entries.get(name), skipped.get(name)
        ours = cur_by_file.get(name, 0) + q_by_file.get(name, 0)
        if skip is not None and truth.optional:
            if ours:
                p.add(f"{name!r} is reported skipped but has {ours} output rows")
            continue
        if entry is None:
            p.add(f"{name!r} ({truth.kind}) is neither in the report's files nor in skipped")
            continue
        status = entry.get("status")
        if status not in STATUSES:
            p.add(f"{name!r}: status {status!r} is not one of {sorted(STATUSES)}")
        if status not in truth.statuses and not (truth.whole_ok and status in WHOLE):
            p.add(f"{name!r} ({truth.kind}): status {status!r}, want one of {truth.statuses}"
                  f"{' (or quarantined whole)' if truth.whole_ok else ''}; reason {entry.get('reason')!r}")  # fmt: skip
        rows_in = entry.get("rows_in")
        if rows_in is not None and rows_in != (entry.get("rows_curated") or 0) + (entry.get("rows_quarantined") or 0):
            p.add(
                f"{name!r}: rows_in {rows_in} != curated {entry.get('rows_curated')} + quarantined {entry.get('rows_quarantined')}"
            )
        if truth.countable and rows_in != truth.rows_in:
            p.add(f"{name!r} ({truth.kind}): report rows_in={rows_in}, {truth.rows_in} records were put in")

        if status in WHOLE:
            file_id = entry.get("file_id")  # without one (reported above) its quarantined copy cannot be found
            qdir = part(root, "quarantine/reviews", dt) / "files"
            copy, reason_file = qdir / str(file_id), qdir / f"{file_id}.reason.json"
            if file_id and (not copy.is_file() or copy.read_bytes() != case.data):
                p.add(f"{name!r} quarantined whole but files/{file_id} is not a copy of it")
            if file_id and not reason_file.is_file():
                p.add(f"{name!r} quarantined whole but files/{file_id}.reason.json is missing")
            elif file_id:
                why = json.loads(reason_file.read_text())
                if why.get("file") != name or not why.get("reason"):
                    p.add(f"{name!r}: reason file says {why}")
                elif not names_rule([why["reason"]], truth.whole_rules):
                    p.add(f"{name!r}: whole-file reason {why['reason']!r} names none of {truth.whole_rules}")
            if cur_by_file.get(name):
                p.add(f"{name!r} quarantined whole yet {cur_by_file[name]} of its rows were curated")
            if rows_in is not None and entry.get("rows_quarantined") != rows_in:
                p.add(
                    f"{name!r} quarantined whole: rows_quarantined={entry.get('rows_quarantined')} != rows_in={rows_in}"
                )
            continue
        if status == "empty":
            if ours:
                p.add(f"{name!r} reported empty but has {ours} output rows")
            continue

        # parsed: every record accounted for at its line
        if ours != truth.rows_in:
            p.add(f"{name!r} ({truth.kind}): {truth.rows_in} records put in, but {cur_by_file.get(name, 0)} curated "
                  f"+ {q_by_file.get(name, 0)} quarantined rows name it")  # fmt: skip
        if entry.get("rows_curated") != cur_by_file.get(name, 0):
            p.add(f"{name!r}: report rows_curated={entry.get('rows_curated')}, curated has {cur_by_file.get(name, 0)}")
        if entry.get("rows_quarantined") != q_by_file.get(name, 0):
            p.add(
                f"{name!r}: report rows_quarantined={entry.get('rows_quarantined')}, quarantine has {q_by_file.get(name, 0)}"
            )
        if truth.control and cur_by_file.get(name, 0) != truth.rows_in:
            p.add(f"control file {name!r}: {cur_by_file.get(name, 0)} of {truth.rows_in} records curated")
        if not matchable:
            continue
        dup_rows = 0
        file_problems = 0
        for rec in truth.records:
            key = (name, rec.line)
            c, q = cur_index.get(key, []), q_index.get(key, [])
            matched_q.add(key)
            dup_rows += sum(names_rule(as_reasons(r.get("reasons")), DUPLICATE) for r in q)
            found: list[str] = []
            if len(c) + len(q) != 1:
                found.append(f"{len(c)} curated and {len(q)} quarantined rows at this line, want exactly 1")
            elif rec.outcome == "duplicate":
                groups[rec.group].append((name, rec, c, q))
            elif rec.outcome == "curated" and not c:
                found.append(f"quarantined, want curated: {as_reasons(q[0].get('reasons'))}")
            elif rec.outcome == "quarantined" and not q:
                found.append("curated, want quarantined")
            if len(c) == 1 and rec.outcome != "duplicate":
                diffs = value_diffs(rec.values, c[0], loose_text=rec.outcome == "either")
                if diffs:
                    found.append(f"curated values differ: {diffs}")
            if len(q) == 1 and rec.outcome in ("quarantined", "either"):
                found.extend(quarantine_row_diffs(rec, q[0]))
            for message in found:
                file_problems += 1
                if file_problems <= 8:
                    p.add(f"{name!r} ({truth.kind}) line {rec.line} [{rec.outcome}]: {message}")
        if file_problems > 8:
            p.add(f"{name!r}: {file_problems - 8} more record problems left out")
        if "rows_duplicate" in entry and entry.get("rows_duplicate") != dup_rows:
            p.add(
                f"{name!r}: report rows_duplicate={entry.get('rows_duplicate')}, quarantine has {dup_rows} duplicate rows"
            )

    for group, members in groups.items():
        curated_copies = [m for m in members if m[2]]
        if len(curated_copies) != 1:
            p.add(
                f"review {group}: {len(curated_copies)} curated copies among {[(m[0], m[1].line) for m in members]}, want 1"
            )
        for name, rec, c, q in members:
            if c:
                diffs = value_diffs(rec.values, c[0])
                if diffs:
                    p.add(f"{name!r} line {rec.line}: curated values differ: {diffs}")
            elif q and not names_rule(as_reasons(q[0].get("reasons")), DUPLICATE):
                p.add(f"{name!r} line {rec.line}: duplicate copy quarantined without a 'duplicate' reason: "
                      f"{as_reasons(q[0].get('reasons'))}")  # fmt: skip
    if matchable:
        for key in sorted(set(q_index) - matched_q, key=str):
            if key[0] in truth_names:
                p.add(
                    f"quarantine row at {key} matches no record put in: {[as_reasons(r.get('reasons')) for r in q_index[key]]}"
                )
        for key in sorted(set(cur_index) - {(c.name, r.line) for c in cases for r in c.truth.records}, key=str):
            if key[0] in truth_names:
                p.add(f"curated row at {key} matches no record put in (merged or shifted record?)")
    for path in leftovers(root):
        p.add(f"leftover temp file {path}")
    return p


def quarantine_row_diffs(rec, row: dict) -> list[str]:
    found = []
    reasons = as_reasons(row.get("reasons"))
    if not reasons or not all(r.strip() for r in reasons):
        found.append(f"quarantined without a reason: {reasons}")
    elif not names_rule(reasons, rec.rules):
        found.append(f"reasons {reasons} name none of {rec.rules}")
    if "raw" in row and norm_text(rec.raw).strip() not in norm_text(row.get("raw")):
        found.append(f"raw {norm_text(row.get('raw'))[:120]!r} does not hold the record's text {rec.raw[:120]!r}")
    if rec.check_strings:
        for column, want in rec.source_strings.items():
            if column not in row:
                found.append(f"quarantine row lacks source column {column!r}")
            elif norm_text(row[column]) != want:
                found.append(f"quarantine row {column}={row[column]!r}, want the source string {want!r}")
    return found


def assert_clean(problems: list[str], what: str) -> None:
    assert not problems, f"{what}: {len(problems)} problem(s)\n" + "\n".join(f"- {m}" for m in problems)


def review_id_repeats(root: Path) -> list[str]:
    ids = read_frames(sorted((root / "curated/reviews").glob("dt=*/*.parquet")))
    if ids is None or "review_id" not in ids.columns:
        return []
    counts = ids["review_id"].value_counts()
    return [f"review_id {rid} curated {n} times across partitions" for rid, n in counts[counts > 1].head(10).items()]


# -- the corpus, one run per date --------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile():
    return corpus()


def test_corpus_truth_is_self_consistent(hostile):
    """The generator's own books balance: unique names per date, lines increase, well-formed files
    parse with Python's csv module into exactly the records the truth lists."""
    import csv
    import gzip
    import io

    for dt, cases in hostile.items():
        assert len({c.name for c in cases}) == len(cases), dt
        for case in cases:
            lines = [r.line for r in case.truth.records]
            assert lines == sorted(set(lines)), case.name
            if case.truth.kind in ("clean", "crlf", "multiline_texts", "gzip_csv", "blank_lines", "bad_values"):
                data = gzip.decompress(case.data) if case.name.endswith(".gz") else case.data
                reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
                next(reader)
                starts, rows = [], []
                while True:
                    start = reader.line_num + 1
                    try:
                        row = next(reader)
                    except StopIteration:
                        break
                    if row:
                        starts.append(start)
                        rows.append(row)
                assert starts == lines, case.name
                assert [r[4] for r in rows] == [str(r.values["review_text"]) for r in case.truth.records], case.name
            if case.name.endswith((".jsonl", ".jsonl.gz")):
                data = gzip.decompress(case.data) if case.name.endswith(".gz") else case.data
                lines = data.decode("utf-8").split("\n")
                assert lines[-1] == "" and len(lines) - 1 == len(case.truth.records), case.name
                for rec in case.truth.records:
                    assert lines[rec.line - 1] == rec.raw, case.name
                    if rec.outcome == "curated":
                        obj = json.loads(rec.raw)
                        assert [obj[k] for k in obj] == [rec.values[c] for c in VALUE_COLUMNS], case.name


def write_contract_outputs(root: Path, dt: str, cases: list[Case], seen: set | None = None) -> None:
    """What an ingest that meets the contract leaves for these cases, written straight from the truth.

    Only for checking the checks (no DAG runs): check_date must accept it and catch its mutations.
    """
    seen = set() if seen is None else seen  # review ids curated so far (earlier dates included)
    curated, quarantined, entries, skipped = [], [], [], []
    for case in cases:
        truth, file_id = case.truth, hashlib.sha256(case.name.encode()).hexdigest()[:16]
        if truth.optional:
            skipped.append({"file": case.name, "reason": "hidden name (leading '_' or '.')"})
            continue
        entry = {"file": case.name, "file_id": file_id, "format": "csv", "rows_in": truth.rows_in, "rows_curated": 0,
                 "rows_quarantined": 0, "rows_duplicate": 0}  # fmt: skip
        if "parsed" not in truth.statuses:
            entry["status"] = truth.statuses[0]
            entry["rows_quarantined"] = truth.rows_in
            if entry["status"] in WHOLE:
                entry["reason"] = "cannot parse"
                qdir = part(root, "quarantine/reviews", dt) / "files"
                qdir.mkdir(parents=True, exist_ok=True)
                (qdir / file_id).write_bytes(case.data)
                (qdir / f"{file_id}.reason.json").write_text(json.dumps({"file": case.name, "reason": "cannot parse"}))
            entries.append(entry)
            continue
        entry["status"] = "parsed"
        for rec in truth.records:
            rid = hashlib.sha256(json.dumps(rec.values, sort_keys=True, default=str).encode()).hexdigest()[:16]
            duplicate = rec.outcome == "duplicate" and rid in seen
            if rec.outcome in ("curated", "either") or (rec.outcome == "duplicate" and not duplicate):
                seen.add(rid)
                row = {"review_id": rid, **{c: rec.values[c] for c in VALUE_COLUMNS}}
                row.update(sentiment=sentiment(int(rec.values["rating"])), source_file=case.name, source_line=rec.line,
                           ingest_run="run")  # fmt: skip
                curated.append(row)
                entry["rows_curated"] += 1
            else:
                reasons = ["duplicate of an earlier review"] if rec.outcome == "duplicate" else [f"{rec.rules[0]} rule"]
                quarantined.append({"source_file": case.name, "source_line": rec.line, "reasons": reasons,
                                    "raw": rec.raw, **rec.source_strings})  # fmt: skip
                entry["rows_quarantined"] += 1
                entry["rows_duplicate"] += int("duplicate" in reasons[0])
        entries.append(entry)
    totals = {k: sum(e[k] for e in entries) for k in ("rows_in", "rows_curated", "rows_quarantined", "rows_duplicate")}
    report = {"dt": dt, **totals, "files": entries, "skipped": skipped, "schema_drift": {"new": ["size"]}}
    (root / f"reports/ingest/dt={dt}").mkdir(parents=True, exist_ok=True)
    (root / f"reports/ingest/dt={dt}/ingest_report.json").write_text(json.dumps(report))
    part(root, "curated/reviews", dt).mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(curated, columns=CURATED_COLUMNS)
    frame.astype({c: "int64" for c in [*INTEGER_COLUMNS, "sentiment", "source_line"]}).to_parquet(
        part(root, "curated/reviews", dt) / "part-0.parquet", index=False
    )
    if quarantined:
        (part(root, "quarantine/reviews", dt) / "rows").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(quarantined).to_parquet(part(root, "quarantine/reviews", dt) / "rows/all.parquet", index=False)


def test_the_checks_accept_the_contract_and_catch_breaches(hostile, tmp_path):
    """No DAG: outputs written from the truth pass check_date; small breaches of the contract do not."""
    root = tmp_path / "lake"
    seen: set = set()
    for dt, cases in hostile.items():
        write_contract_outputs(root, dt, cases, seen)
        assert_clean(check_date(root, dt, cases), f"contract outputs for {dt}")
    assert not review_id_repeats(root)
    assert not snapshot_diffs(snapshot(root, D_STRUCTURE), snapshot(root, D_STRUCTURE))

    cases = hostile[D_STRUCTURE]
    curated_path = part(root, "curated/reviews", D_STRUCTURE) / "part-0.parquet"
    rows_path = part(root, "quarantine/reviews", D_STRUCTURE) / "rows/all.parquet"
    curated, rows = pd.read_parquet(curated_path), pd.read_parquet(rows_path)
    breaches = {
        "a curated row lost": lambda: curated.iloc[1:].to_parquet(curated_path, index=False),
        "a line off by one": lambda: curated.assign(source_line=curated["source_line"] + (curated.index == 3))
        .to_parquet(curated_path, index=False),
        "a value changed": lambda: curated.assign(age=curated["age"] + (curated.index == 5))
        .to_parquet(curated_path, index=False),
        "a reason naming another rule": lambda: rows.assign(reasons=[["some rule"]] * len(rows))
        .to_parquet(rows_path, index=False),
        "a temp file left": lambda: (curated_path.parent / ".part-0.parquet.x.tmp").write_bytes(b""),
    }  # fmt: skip
    for what, breach in breaches.items():
        breach()
        assert check_date(root, D_STRUCTURE, cases), f"check_date missed: {what}"
        curated.to_parquet(curated_path, index=False)
        rows.to_parquet(rows_path, index=False)
        (curated_path.parent / ".part-0.parquet.x.tmp").unlink(missing_ok=True)
        assert not check_date(root, D_STRUCTURE, cases), f"restoring after {what!r} left problems"


def run_and_check(root: str, dt: str, cases: list[Case]) -> list[str]:
    land(root, dt, cases)
    result = run_ingest(dt, dt)
    return [f"[dt={dt}] {m}" for m in check_date(root, dt, cases, result)]


def test_formats_and_encodings(airflow_db, lake_root, hostile):
    """BOM, CRLF, reordered/extra columns, multi-line texts, hostile names, cp1252, gzip, JSON lines
    with a bad line, a 20,000-row file."""
    assert_clean(run_and_check(lake_root, D_FORMATS, hostile[D_FORMATS]), "formats and encodings")


def test_structure_names_and_duplicates(airflow_db, lake_root, hostile):
    """Bad values, empty / header-only / random / truncated files, blank lines, an unbalanced quote,
    colliding column names, an int64 overflow, an extra field in the first row; a 240-character name,
    x.csv / sub/x.csv / x.jsonl, _x.csv and .x.csv; the same reviews in two files of the date. Then
    the next date redelivers some of them: one review_id each, the copies reported as duplicates,
    the first date's outputs untouched."""
    problems = run_and_check(lake_root, D_STRUCTURE, hostile[D_STRUCTURE])
    before = snapshot(lake_root, D_STRUCTURE)
    problems += run_and_check(lake_root, D_REDELIVERY, hostile[D_REDELIVERY])
    changed = snapshot_diffs(snapshot(lake_root, D_STRUCTURE), before)
    problems += [f"[dt={D_STRUCTURE}, changed by the run for {D_REDELIVERY}] {m}" for m in changed]
    problems += review_id_repeats(Path(lake_root))
    assert_clean(problems, "structure, names and duplicates")


# -- rerun and crash: the outputs must equal a clean run's -----------------------------------


def snapshot(root: str | Path, dt: str, whole_lake: bool = False) -> dict:
    """What a run for dt leaves, minus what legitimately differs between runs (run ids, times).

    Files: those of dt's partitions in every zone (or of the whole lake), but landing, the catalog
    and the Data Docs (whose page names hold run times; they are counted instead)."""
    root = Path(root)
    curated = curated_frame(root, dt)
    if curated is not None:
        curated = curated.drop(columns=[c for c in ("ingest_run", "dt") if c in curated.columns])
        order = [c for c in ("source_file", "source_line", "review_id") if c in curated.columns]
        curated = curated.sort_values(order).reset_index(drop=True)
    quarantine = quarantine_frame(root, dt)
    if quarantine is not None:
        keep = [c for c in quarantine.columns if "run" not in c and not c.endswith(("_at", "_time"))]
        quarantine = quarantine[keep].copy()
        if "reasons" in quarantine.columns:
            quarantine["reasons"] = quarantine["reasons"].map(lambda r: tuple(as_reasons(r)))
        order = [c for c in ("source_file", line_column(quarantine) or "") if c in quarantine.columns]
        quarantine = quarantine.sort_values(order).reset_index(drop=True) if order else quarantine
    files = {}
    for path in all_files(root):
        rel = str(path.relative_to(root))
        if rel.startswith(("landing/", "catalog/", "reports/quality/")) or (not whole_lake and f"/dt={dt}/" not in rel):
            continue
        byte_exact = rel.startswith("raw/") or ("/files/" in rel and not rel.endswith(".json"))
        files[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if byte_exact else "-"
    report_path = root / f"reports/ingest/dt={dt}/ingest_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    report_view = {
        "totals": {k: report.get(k) for k in ("rows_in", "rows_curated", "rows_quarantined", "rows_duplicate")},
        "files": sorted(
            (
                e.get("file"),
                e.get("status"),
                e.get("rows_in"),
                e.get("rows_curated"),
                e.get("rows_quarantined"),
                e.get("rows_duplicate"),
            )
            for e in report.get("files") or []
        ),  # fmt: skip
        "skipped": sorted(str(s.get("file")) for s in report.get("skipped") or []),
    }
    docs = len(all_files(root, f"reports/quality/dt={dt}"))
    return {"curated": curated, "quarantine": quarantine, "files": files, "report": report_view, "docs": docs}


def snapshot_diffs(got: dict, want: dict) -> list[str]:
    diffs = []
    for key in ("curated", "quarantine"):
        a, b = got[key], want[key]
        if (a is None) != (b is None):
            diffs.append(
                f"{key}: {'missing' if a is None else 'present'} here, {'missing' if b is None else 'present'} in a clean run"
            )
            continue
        if a is not None:
            try:
                pd.testing.assert_frame_equal(a, b, check_like=True)
            except AssertionError as exc:
                diffs.append(f"{key} rows differ from a clean run's: {str(exc)[:1500]}")
    extra = sorted(set(got["files"]) - set(want["files"]))
    lacking = sorted(set(want["files"]) - set(got["files"]))
    changed = sorted(k for k in set(got["files"]) & set(want["files"]) if got["files"][k] != want["files"][k])
    if extra:
        diffs.append(f"files a clean run does not leave (leftovers): {extra[:20]}")
    if lacking:
        diffs.append(f"files a clean run leaves that are missing: {lacking[:20]}")
    if changed:
        diffs.append(f"files whose bytes differ from a clean run's: {changed[:20]}")
    if got["report"] != want["report"]:
        diffs.append(f"ingest report differs from a clean run's:\n  got  {got['report']}\n  want {want['report']}")
    if got["docs"] != want["docs"]:
        diffs.append(f"Data Docs: {got['docs']} files under reports/quality/dt=.../, a clean run leaves {want['docs']} "
                     f"(old runs' pages left behind?)")  # fmt: skip
    return diffs


@pytest.fixture(scope="module")
def clean_reference(airflow_db, tmp_path_factory):
    """One clean run of the fixed rerun inputs in a lake of its own: what every rerun must equal."""
    root = tmp_path_factory.mktemp("clean-reference") / "lake"
    root.mkdir()
    cases = rerun_inputs(fixed=True)
    land(root, D_RERUN, cases)
    result = run_ingest(D_RERUN, "clean reference", env=lake_env(root))
    problems = [f"[clean run] {m}" for m in check_date(root, D_RERUN, cases, result)]
    return {"root": root, "cases": cases, "snapshot": snapshot(root, D_RERUN), "problems": problems}


def test_rerun_after_fixing_files_equals_a_clean_run(airflow_db, lake_root, clean_reference):
    """A date ran with a bad file and a garbage file; both are replaced by good versions and the date
    rerun: their old quarantine rows, whole-file copies and Data Docs are gone, outputs equal a clean run."""
    root = Path(lake_root)
    before = rerun_inputs(fixed=False)
    land(root, D_RERUN, before)
    problems = [f"[first run] {m}" for m in check_date(root, D_RERUN, before, run_ingest(D_RERUN, "rerun: first"))]
    old_swap = next(c for c in before if c.name == "swap.csv").data

    after = rerun_inputs(fixed=True)
    land(root, D_RERUN, after)  # same names: to_fix.csv fixed, swap.csv now a good CSV
    result = run_ingest(D_RERUN, "rerun: after fix")
    problems += [f"[rerun] {m}" for m in check_date(root, D_RERUN, after, result)]
    quarantine = quarantine_frame(root, D_RERUN)
    if quarantine is not None and "source_file" in quarantine.columns:
        stale = quarantine[quarantine["source_file"].isin(["to_fix.csv", "swap.csv"])]
        if len(stale):
            problems.append(f"[rerun] {len(stale)} stale quarantine rows of fixed files remain")
    for path in all_files(root, f"quarantine/reviews/dt={D_RERUN}/files"):
        if path.read_bytes() == old_swap or "swap" in path.name:
            problems.append(f"[rerun] stale whole-file quarantine of swap.csv remains: {path.relative_to(root)}")
    problems += [f"[rerun vs clean] {m}" for m in snapshot_diffs(snapshot(root, D_RERUN), clean_reference["snapshot"])]
    assert_clean(clean_reference["problems"] + problems, "rerun after fixing files")


CRASH_POINTS = ["crawl", "validate", "write:curated/reviews/"]


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_rerun_after_a_kill_equals_a_clean_run(airflow_db, lake_root, clean_reference, point):
    """SIGKILL at a fault point (REVIEWFLOW_CRASH_AT), then a plain rerun: a clean run's outputs, no
    temp files, nothing left over."""
    root = Path(lake_root)
    cases = rerun_inputs(fixed=True)
    land(root, D_RERUN, cases)
    crashed = run_ingest(D_RERUN, f"kill at {point}", env={"REVIEWFLOW_CRASH_AT": point})
    assert not crashed.ok and crashed.returncode != 0, (
        f"REVIEWFLOW_CRASH_AT={point} did not kill the run (rc={crashed.returncode}, state={crashed.state}); "
        "is the fault hook wired in?"
    )
    result = run_ingest(D_RERUN, f"rerun after kill at {point}", timeout=300)
    problems = [f"[rerun after kill at {point}] {m}" for m in check_date(root, D_RERUN, cases, result)]
    problems += [f"[vs clean] {m}" for m in snapshot_diffs(snapshot(root, D_RERUN), clean_reference["snapshot"])]
    assert_clean(clean_reference["problems"] + problems, f"rerun after a kill at {point}")
