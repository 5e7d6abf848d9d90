"""Human labels: corrected sentiment coming back from the review queue.

People fill the ``label`` column of ``review_queue/dt=D/review_queue.csv`` (or write any CSV with
the columns ``review_id`` and ``label``; other columns are ignored) and drop it into
``landing/labels/``. :func:`collect_labels` (the ``collect_labels`` task of
``sentiment_batch_scoring``) validates every file there with GX Core and rebuilds
``labels/reviews/labels.parquet`` from scratch each run, so reruns give the same result and a
label file that was removed takes its labels with it. Training prefers these labels over the
rating-derived sentiment.

What a label may be (case and surrounding whitespace ignored):

- ``negative`` / ``neutral`` / ``positive``, or
- the numbers -1 / 0 / 1, also in the forms a spreadsheet writes: a sign and decimal zeros
  (``+1``, ``1.0``, ``-1.00``, ``0.0``; ``-0`` counts as 0).

Anything else (``great``, ``7``, ``0.5``, ``pos``) is quarantined with
``label is not a sentiment (got '7')``; an empty cell with ``label not filled in``.

Row rules (GX suite ``labels_contract``, plus two checks GX cannot express per row):

- ``review_id`` is present and names a curated review (looked up in the ``review_id`` column of
  ``curated/reviews/dt=*/`` parquet, one partition at a time, only for the ids in the files;
  with no curated data every id is unknown);
- ``label`` is filled in and is a sentiment (above);
- a row has as many fields as the header (else the other rules are not applied to it);
- one file giving two different labels to one review: every such row is quarantined
  (``conflicting labels for review_id X in this file``); the same label twice is kept once.

Files are read in the order of their names (``sorted``; name them e.g. ``2024-05-03-anna.csv``):
when two files label one review differently, the later file wins, and each such conflict is
logged as a warning and listed in the summary's ``conflicts``. Rejected rows go to
``quarantine/labels/rows/<file>.parquet`` with ``file``, ``line`` (the 1-based line of the
record in the CSV: the header is line 1, blank lines and line breaks inside quoted fields are
counted), the given ``review_id`` and ``label``, and ``reasons``. A file rejected whole
(unreadable, not UTF-8, no ``review_id``/``label`` columns, no rows, or every row rejected) is
copied to ``quarantine/labels/files/<file>`` with ``<file>.reason.json`` (``{file, reason}``).
``quarantine/labels/`` is rebuilt on each run too. A bad label file never fails the task.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import re

import pandas as pd

from reviewflow import contract, layout
from reviewflow.storage.lake import Lake, LocalLake, write_json, write_parquet

log = logging.getLogger(__name__)

_CURATED_PART = re.compile(rf"^{re.escape(layout.CURATED)}/dt=[^/]+/[^/]+\.parquet$")

_NUMBER = re.compile(r"^[+-]?[01](?:\.0*)?$")  # -1, 0, 1, +1, 1.0, -1.00, 0.0 (then checked to be -1/0/1)
ACCEPTED = "negative, neutral, positive, -1, 0 or 1"

# GX rule names (the suite's meta "rule"); row_failures strings contain them
RULE_ID_PRESENT = "review_id present"
RULE_ID_KNOWN = "review_id is a curated review"
RULE_LABEL_FILLED = "label filled in"
RULE_LABEL_SENTIMENT = "label is a sentiment"

MAX_CONFLICTS_LISTED = 200  # the summary (an XCom) lists this many; all are counted and logged up to it
LABEL_COLUMNS = {"review_id": "string", "label": "int64", "label_file": "string", "label_line": "int64"}  # arrow types


class LabelFileError(ValueError):
    """A label file that cannot be used at all (the reason is for the person who wrote it)."""


def normalize_label(value: str | None) -> int | str | None:
    """-1/0/1 for an accepted label, None for an empty one, else the stripped text as given."""
    text = (value or "").strip()
    if not text:
        return None
    lowered = text.lower()
    if lowered in contract.LABEL_BY_NAME:
        return contract.LABEL_BY_NAME[lowered]
    if _NUMBER.match(lowered):
        number = float(lowered)
        if number in (-1.0, 0.0, 1.0):
            return int(number)
    return text


def labels_suite(known_ids: list[str] | None = None):
    """The label contract as a GX suite; ``known_ids``: the curated review ids among the files' ids."""
    import great_expectations as gx
    from great_expectations import expectations as gxe

    suite = gx.ExpectationSuite(name="labels_contract")
    add = suite.add_expectation
    add(gxe.ExpectColumnValuesToNotBeNull(column="review_id", meta={"rule": RULE_ID_PRESENT}))
    add(gxe.ExpectColumnValuesToBeInSet(column="review_id", value_set=sorted(known_ids or []),
                                        meta={"rule": RULE_ID_KNOWN}))  # fmt: skip
    add(gxe.ExpectColumnValuesToNotBeNull(column="label", meta={"rule": RULE_LABEL_FILLED}))
    add(gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[-1, 0, 1], meta={"rule": RULE_LABEL_SENTIMENT}))
    return suite


def read_label_csv(data: bytes) -> tuple[pd.DataFrame, list[dict]]:
    """Parse a label file: (rows with ``line``, ``review_id``, ``label_raw``; ragged rows).

    ``line`` is the 1-based line where the record starts (header = line 1). Blank lines, and
    rows whose every field is blank, are skipped (they hold no label). Raises LabelFileError
    when the file as a whole cannot be used.
    """
    try:
        text = data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        raise LabelFileError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as CSV UTF-8") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows, ragged = [], []
    start = 1
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = [f.strip().lower() for f in fields]
                missing = [c for c in ("review_id", "label") if c not in header]
                if missing:
                    hint = " (semicolon-separated? save it comma-separated)" if ";" in ",".join(fields) else ""
                    raise LabelFileError(
                        f"a label file needs columns review_id and label; missing {missing}, found {fields}{hint}"
                    )
                twice = sorted({c for c in ("review_id", "label") if header.count(c) > 1})
                if twice:
                    raise LabelFileError(f"column(s) {twice} appear more than once in the header")
                id_at, label_at = header.index("review_id"), header.index("label")
                continue
            if len(fields) != len(header):
                ragged.append({  # the id is kept when there is one (the rest may be shifted)
                    "line": line, "review_id": fields[id_at].strip() or None if len(fields) > id_at else None,
                    "label": None,
                    "reasons": [f"row has {len(fields)} fields but the header has {len(header)} "
                                "(a stray quote or an unquoted comma?)"],
                })  # fmt: skip
                continue
            rows.append({"line": line, "review_id": fields[id_at].strip() or None, "label_raw": fields[label_at]})
    except csv.Error as exc:
        raise LabelFileError(f"not a readable CSV near line {reader.line_num}: {exc}") from exc
    if header is None:
        raise LabelFileError("empty file: no header (expected columns review_id and label)")
    if not rows and not ragged:
        raise LabelFileError("no label rows below the header")
    return pd.DataFrame(rows, columns=["line", "review_id", "label_raw"]), ragged


def _typed(rows: pd.DataFrame) -> pd.DataFrame:
    typed = rows.reset_index(drop=True).copy()
    typed["label"] = pd.Series([normalize_label(v) for v in typed["label_raw"]], index=typed.index, dtype=object)
    return typed[["line", "review_id", "label", "label_raw"]]


def known_review_ids(lake: Lake, wanted: set[str]) -> set[str]:
    """Which of ``wanted`` are curated reviews: reads only ``review_id``, one partition at a time."""
    if not wanted:
        return set()
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    value_set = pa.array(sorted(wanted), type=pa.string())
    found: set[str] = set()
    for key in lake.list(layout.CURATED + "/"):
        if not _CURATED_PART.match(key):
            continue
        source = lake.path(key) if isinstance(lake, LocalLake) else pa.BufferReader(lake.read_bytes(key))
        ids = pq.read_table(source, columns=["review_id"]).column("review_id").cast(pa.string())
        found.update(ids.filter(pc.is_in(ids, value_set=value_set)).to_pylist())
        if len(found) == len(wanted):
            break
    return found


def _reasons(rules: list[str], row) -> list[str]:
    """GX rule strings -> reasons naming the value that broke them."""
    out = []
    for rule in rules:
        if RULE_ID_PRESENT in rule:
            out.append("review_id missing")
        elif RULE_ID_KNOWN in rule:
            out.append(f"review_id {row.review_id!r} is not a curated review")
        elif RULE_LABEL_FILLED in rule:
            out.append("label not filled in")
        elif RULE_LABEL_SENTIMENT in rule:
            out.append(f"label is not a sentiment (got {row.label_raw!r}); use {ACCEPTED}")
        else:
            out.append(rule)
    return out


def _validate_file(typed: pd.DataFrame, ragged: list[dict], name: str, known: set[str]):
    """(valid rows: review_id, label, label_line; rejected rows with reasons) for one file."""
    from reviewflow.ingest.validate import validate_frame

    reasons: dict[int, list[str]] = {}
    if len(typed):
        ids = set(typed["review_id"].dropna())
        suite = functools.partial(labels_suite, sorted(ids & known))
        outcome = validate_frame(typed[["review_id", "label"]], f"labels-{name}", suite_factory=suite)
        for index, rules in outcome["row_failures"].items():
            reasons[index] = _reasons(rules, typed.loc[index])
        # one review, two different labels in this file: neither row can be trusted
        ok = typed[~typed.index.isin(list(reasons))]
        labelled = ok.groupby("review_id")["label"].nunique()
        for review_id in labelled[labelled > 1].index:
            clash = ok[ok["review_id"] == review_id]
            detail = ", ".join(
                f"line {line}: {raw.strip()!r}" for line, raw in zip(clash["line"], clash["label_raw"], strict=True)
            )
            for index in clash.index:
                reasons.setdefault(index, []).append(
                    f"conflicting labels for review_id {review_id} in this file ({detail})"
                )
    bad = typed.index.isin(list(reasons))
    rejected = typed[bad][["line", "review_id", "label_raw"]].rename(columns={"label_raw": "label"})
    rejected["reasons"] = [reasons[i] for i in typed.index[bad]]
    if ragged:
        rejected = pd.concat([rejected, pd.DataFrame(ragged)], ignore_index=True)
    rejected.insert(0, "file", name)
    rejected = rejected.sort_values("line", kind="stable").reset_index(drop=True)
    valid = typed[~bad].drop_duplicates("review_id")
    valid = pd.DataFrame({"review_id": valid["review_id"], "label": valid["label"].astype("int64"),
                          "label_line": valid["line"].astype("int64")})  # fmt: skip
    return valid, rejected


def _write_labels(lake: Lake, records: list[dict]) -> None:
    """The merged table with a fixed schema, also when it is empty (never a stale table)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.type_for_alias(kind)) for name, kind in LABEL_COLUMNS.items()])
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records, schema=schema), buf)
    lake.write_bytes(layout.LABELS_KEY, buf.getvalue())


def _rule_counts(rejected: pd.DataFrame) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reasons in rejected["reasons"]:
        for reason in reasons:
            if reason.startswith("conflicting labels"):
                key = "conflicting labels in this file"
            elif reason.startswith("row has"):
                key = "row has the wrong number of fields"
            else:
                key = re.sub(r"^review_id '.*' is", "review_id is", reason.split(" (", 1)[0])
            counts[key] = counts.get(key, 0) + 1
    return counts


def collect_labels(lake: Lake) -> dict:
    """Validate every label file and rebuild the merged labels table (and quarantine/labels/)."""
    keys = sorted(k for k in lake.list(layout.LANDING_LABELS) if not k.endswith("/"))
    written: set[str] = set()
    files, parsed = [], []

    def reject_file(key: str, name: str, reason: str, data: bytes) -> None:
        copy_key = f"{layout.QUARANTINE_LABELS}files/{name}"
        lake.write_bytes(copy_key, data)
        write_json(lake, f"{copy_key}.reason.json", {"file": name, "reason": reason})
        written.update({copy_key, f"{copy_key}.reason.json"})
        log.error("%s: label file quarantined whole: %s", key, reason)

    for key in keys:
        name = key[len(layout.LANDING_LABELS) :]
        data = lake.read_bytes(key)
        try:
            rows, ragged = read_label_csv(data)
        except LabelFileError as exc:
            reject_file(key, name, str(exc), data)
            files.append({"file": name, "rows_in": None, "valid": 0, "quarantined": None, "reason": str(exc)})
            continue
        parsed.append((key, name, data, _typed(rows), ragged))

    wanted = {i for _, _, _, typed, _ in parsed for i in typed["review_id"].dropna()}
    known = known_review_ids(lake, wanted)

    merged: dict[str, dict] = {}  # review_id -> {label, label_file, label_line}
    overridden: dict[str, list[dict]] = {}
    for key, name, data, typed, ragged in parsed:
        valid, rejected = _validate_file(typed, ragged, name, known)
        rows_in = len(typed) + len(ragged)
        entry = {"file": name, "rows_in": rows_in, "valid": int(len(valid)), "quarantined": int(len(rejected))}
        if len(rejected):
            rows_key = f"{layout.QUARANTINE_LABELS}rows/{name}.parquet"
            write_parquet(lake, rows_key, rejected)
            written.add(rows_key)
            entry["quarantined_by_rule"] = _rule_counts(rejected)
            for line, reasons in zip(rejected["line"].head(5), rejected["reasons"].head(5), strict=True):
                log.warning("%s line %s quarantined: %s", name, line, "; ".join(reasons))
            log.warning("%s: %d of %d label rows quarantined %s", name, len(rejected), rows_in,
                        entry["quarantined_by_rule"])  # fmt: skip
        if valid.empty:
            reason = f"every row was rejected ({len(rejected)} rows: {entry['quarantined_by_rule']})"
            reject_file(key, name, reason, data)
            entry["reason"] = reason
        for row in valid.itertuples(index=False):
            before = merged.get(row.review_id)
            if before is not None and before["label"] != row.label:
                overridden.setdefault(row.review_id, []).append(before)
            merged[row.review_id] = {"label": int(row.label), "label_file": name, "label_line": int(row.label_line)}
        files.append(entry)

    conflicts = [
        {"review_id": rid, "kept": {"file": merged[rid]["label_file"], "line": merged[rid]["label_line"],
                                    "label": merged[rid]["label"]},
         "overridden": [{"file": o["label_file"], "line": o["label_line"], "label": o["label"]} for o in older]}
        for rid, older in sorted(overridden.items())
    ]  # fmt: skip
    for conflict in conflicts[:MAX_CONFLICTS_LISTED]:
        kept, older = conflict["kept"], conflict["overridden"]
        log.warning("review_id %s: label %s from %s line %s wins over %s (later file wins)", conflict["review_id"],
                    kept["label"], kept["file"], kept["line"],
                    ", ".join(f"{o['label']} from {o['file']} line {o['line']}" for o in older))  # fmt: skip
    if len(conflicts) > MAX_CONFLICTS_LISTED:
        log.warning("%d label conflicts across files in all (%d listed)", len(conflicts), MAX_CONFLICTS_LISTED)

    _write_labels(lake, [{"review_id": rid, **v} for rid, v in sorted(merged.items())])  # rebuilt every run
    # quarantine/labels/ holds exactly this run's rejections (a fixed file leaves no stale entry)
    for stale in lake.list(layout.QUARANTINE_LABELS):
        if stale not in written:
            lake.delete_prefix(stale)
    summary = {
        "labels": len(merged),
        "files": files,
        "conflicts": conflicts[:MAX_CONFLICTS_LISTED],
        "conflicts_total": len(conflicts),
        "rows_in": sum(f["rows_in"] or 0 for f in files),
        "rows_valid": sum(f["valid"] for f in files),
        "rows_quarantined": sum(f["quarantined"] or 0 for f in files),
        "uri": lake.uri(layout.LABELS_KEY),
    }
    log.info("labels: %d from %d files (%d rows valid, %d quarantined, %d conflicts across files) -> %s",
             summary["labels"], len(files), summary["rows_valid"], summary["rows_quarantined"], len(conflicts),
             summary["uri"])  # fmt: skip
    return summary


TRANSIENT_CLIENT_ERRORS = {"Throttling", "ThrottlingException", "SlowDown", "RequestTimeout", "InternalError",
                           "ServiceUnavailable", "503"}  # fmt: skip


def is_transient(exc: BaseException) -> bool:
    """Whether a retry could help: storage and network hiccups, not bugs or bad configuration."""
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return True
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in TRANSIENT_CLIENT_ERRORS
