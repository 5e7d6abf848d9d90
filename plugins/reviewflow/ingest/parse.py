"""Parse one landed file into staging parquet, counting its records independently of the parser.

Output (under a staging prefix, all values as strings): ``rows`` parquet part(s) in source order,
a ``lines`` parquet (``_line``: the physical 1-based line where each row's record starts, header
= line 1; ``_record``: its 1-based record number) aligned row for row with ``rows``, and a
``rejects`` parquet of records that never became a row (``_line``, ``_record``, ``raw``,
``reason``). ``rows_in`` is the independent record count, so rows_in = rows + rejects.

CSV is parsed by DuckDB's reader (explicit all-VARCHAR columns, strict mode, ``store_rejects``).
Its records are counted by a second, independent pass over the bytes (numpy, quote parity at
line ends), which also gives every record its real line number (DuckDB's own line numbers drift
after blank lines and multi-line fields). A multi-line record whose continuation lines look like
records of their own (an unbalanced quote swallowed them) is split into those records and
quarantined before DuckDB sees the file, so no record ever silently absorbs another. If the two
counts still disagree (a stray quote inside an unquoted field can desynchronise the parity),
the file is parsed again with Python's csv module, which yields exact line numbers.

JSON lines are parsed line by line (a bad line is one rejected record); parquet by row group.
gzip (``.gz``) is decompressed to a local temp file first; a non-UTF-8 text file is decoded when
charset-normalizer names its encoding with confidence (cp1252 / latin-1 preferred), else the
file is unreadable with that reason.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import json
import logging
import mmap
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from reviewflow import contract

log = logging.getLogger(__name__)

LINE, RECORD = "_line", "_record"
START, END = "_start", "_end"  # the record's byte span in the parsed text (-1: not known)
FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet"}  # fmt: skip
COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip"}
BLOCK = 64 << 20  # bytes per pass over a file: memory stays bounded for files larger than RAM
BATCH_ROWS = 200_000
PREFERRED_ENCODINGS = ("cp1252", "latin_1", "iso8859_15")
_INT = re.compile(r"\s*[+-]?\d+\s*$")


class UnreadableFile(Exception):
    """The file cannot be parsed at all; it is quarantined whole with this reason."""

    def __init__(self, reason: str, rows_in: int | None = None):
        super().__init__(reason)
        self.rows_in = rows_in


class WrongSchema(UnreadableFile):
    """The file parses but its columns do not carry the contract (missing or ambiguous columns)."""


@dataclass
class Parsed:
    """What parsing one file produced (paths are local files in the caller's work dir)."""

    rows_in: int
    columns: list[str]  # snake_case column names of the rows parquet
    source_columns: list[str]
    rows_paths: list[str] = field(default_factory=list)
    lines_path: str | None = None
    rejects: list[dict] = field(default_factory=list)  # {_line, _record, raw, reason}
    encoding: str = "utf-8"
    parser: str = ""
    text_path: str | None = None  # the decoded, decompressed text that _start/_end point into
    seconds: dict = field(default_factory=dict)  # where parsing spent its time
    notes: list[str] = field(default_factory=list)


def file_format(name: str) -> tuple[str | None, str | None]:
    """(format, compression) from a file name: ``x.csv.gz`` -> ("csv", "gzip")."""
    suffixes = [s.lower() for s in PurePosixPath(name).suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    return (FORMATS.get(suffixes[-1]) if suffixes else None), compression


def normalise_columns(names: list[str]) -> list[str]:
    """snake_case names, unique; two source columns that map to one contract column are an error."""
    out: list[str] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(names):
        raw = str(raw).lstrip("\ufeff")
        name = contract.snake_case(raw) if (raw.strip() or i == 0) else f"column_{i + 1}"
        if name in seen:
            if name in contract.REQUIRED_COLUMNS:
                raise WrongSchema(f"ambiguous columns: {seen[name]!r} and {raw!r} both map to {name!r}")
            name = f"{name}_{i + 1}"
        seen[name] = raw
        out.append(name)
    return out


# -- bytes: decompression, encoding ----------------------------------------------------------


def decompress(path: str, work: str, compression: str | None) -> str:
    if compression != "gzip":
        return path
    out = os.path.join(work, "decompressed")
    try:
        with gzip.open(path, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, BLOCK)
    except (OSError, EOFError) as exc:
        raise UnreadableFile(f"not a readable gzip file: {exc}") from exc
    return out


def scan_bytes(path: str) -> tuple[str, int | None]:
    """One pass: (sha256 of the file, offset of its first invalid UTF-8 byte or None)."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, bad = 0, None
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
            if bad is None:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    bad = offset + exc.start
            offset += len(block)
    if bad is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            bad = offset
    return digest.hexdigest(), bad


def detect_encoding(sample: bytes) -> str | None:
    """An encoding charset-normalizer finds plausible, else None.

    Review exports that are not UTF-8 are, in practice, Windows "ANSI" (cp1252) or latin-1, and
    on short samples charset-normalizer's ranking between code pages is close to a coin toss
    (cp1257 vs cp1250 vs cp1252 differ by a point of "chaos"). So a western code page wins
    whenever it decodes the bytes and is among the plausible candidates.
    """
    import charset_normalizer

    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = sample[: len(sample) // 2 * 2].decode("utf-16")
        except UnicodeDecodeError:
            return None
        printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
        return "utf-16" if len(sample) % 2 == 0 and text and printable / len(text) > 0.95 else None
    if b"\x00" in sample:
        return None  # binary, or UTF-16 without a BOM: not a review file we can trust
    matches = [m for m in charset_normalizer.from_bytes(sample) if m.percent_chaos <= 10]
    if not matches:
        return None
    for wanted in PREFERRED_ENCODINGS:
        try:
            sample.decode(wanted)
        except UnicodeDecodeError:
            continue
        if any(wanted in m.could_be_from_charset for m in matches):
            return wanted
    return matches[0].encoding


def to_utf8(path: str, work: str, bad: int | None) -> tuple[str, str]:
    """(path of a UTF-8 version of the file, the encoding it was read as); ``bad``: see scan_bytes."""
    if bad is None:
        return path, "utf-8"
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
        fh.seek(max(bad - 32_768, 0))
        around = fh.read(65_536)
    encoding = detect_encoding(head + b"\n" + around)
    if encoding is None:
        raise UnreadableFile(
            f"not valid UTF-8 (first invalid byte at offset {bad}) and no other encoding detected with confidence"
        )
    out = os.path.join(work, "utf8")
    with open(path, encoding=encoding, newline="") as src, open(out, "w", encoding="utf-8", newline="") as dst:
        shutil.copyfileobj(src, dst, BLOCK)
    log.warning("%s: decoded as %s (not UTF-8)", path, encoding)
    return out, encoding


# -- CSV: the independent record counter ------------------------------------------------------


@dataclass
class Records:
    """Record spans of a CSV file by quote parity: start byte, end byte (exclusive), first line."""

    start: np.ndarray
    end: np.ndarray
    line: np.ndarray
    n_lines: np.ndarray


def count_records(path: str) -> Records:
    """Split a CSV's bytes into records: a newline ends a record when the quotes before it are even.

    Blank lines are not records. Runs block by block over the bytes (bounded memory).
    """
    size = os.path.getsize(path)
    ends, end_lines = [], []
    quotes = 0  # quotes seen before the current block
    lines = 0  # newlines seen before the current block
    with open(path, "rb") as fh:
        offset = 0
        while block := fh.read(BLOCK):
            data = np.frombuffer(block, dtype=np.uint8)
            qpos = np.flatnonzero(data == 34)
            nl = np.flatnonzero(data == 10)
            even = ((np.searchsorted(qpos, nl) + quotes) & 1) == 0
            ends.append(nl[even] + offset + 1)
            end_lines.append(np.flatnonzero(even) + lines + 1)  # line number each boundary newline ends
            quotes += len(qpos)
            lines += len(nl)
            offset += len(block)
    end = np.concatenate(ends) if ends else np.zeros(0, dtype=np.int64)
    end_line = np.concatenate(end_lines) if end_lines else np.zeros(0, dtype=np.int64)
    if len(end) == 0 or end[-1] != size:  # last record without a final newline (or an unterminated quote)
        end = np.append(end, size)
        end_line = np.append(end_line, lines + 1)
    start = np.concatenate([[0], end[:-1]]).astype(np.int64)
    start_line = np.concatenate([[1], end_line[:-1] + 1]).astype(np.int64)
    keep = end > start
    start, end, start_line, end_line = start[keep], end[keep], start_line[keep], end_line[keep]
    # Blank records: a lone "\n" or "\r\n" (the only records of 1 or 2 bytes that are pure line ends).
    short = np.flatnonzero((end - start) <= 2)
    if len(short):
        with open(path, "rb") as fh:
            blank = []
            for i in short:
                fh.seek(int(start[i]))
                if fh.read(int(end[i] - start[i])).strip(b"\r\n") == b"":
                    blank.append(i)
        if blank:
            mask = np.ones(len(start), dtype=bool)
            mask[blank] = False
            start, end, start_line, end_line = start[mask], end[mask], start_line[mask], end_line[mask]
    return Records(start, end, start_line, end_line - start_line + 1)


def _read_span(fh, start: int, end: int) -> str:
    fh.seek(start)
    return fh.read(end - start).decode("utf-8", errors="replace")


def _looks_like_record(line: str, n_cols: int, int_positions: list[int], leading: int) -> bool:
    """Does a line, read alone, look like the start of a record of this file's layout?"""
    fields = next(csv.reader([line]), [])
    if leading >= 2:  # the file starts with integer columns (index, ids, age in the Kaggle layout)
        ok = len(fields) > leading and all(_INT.match(fields[i] or "x") for i in range(leading))
        return ok and (len(fields) >= n_cols or line.count('"') % 2 == 1)
    return len(fields) == n_cols and all(_INT.match(fields[i] or "x") for i in int_positions)


def find_merged(path: str, recs: Records, header: list[str]) -> dict[int, list[int]]:
    """Multi-line records that swallowed record-looking lines: {record index: [char offsets of absorbed lines]}."""
    names = [contract.snake_case(h) for h in header]
    int_positions = [i for i, n in enumerate(names) if n in contract.INTEGER_COLUMNS]
    leading = 0
    while leading < len(names) and names[leading] in contract.INTEGER_COLUMNS:
        leading += 1
    if not int_positions:
        return {}
    merged: dict[int, list[int]] = {}
    # cheap byte-level filter first: a continuation line that begins like this file's records
    if leading >= 2:
        prefilter = re.compile(rb"\n\s*[+-]?\d+\s*," * 1 + rb"\s*[+-]?\d+\s*,")
    else:
        prefilter = re.compile(rb"\n.*,")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for i in np.flatnonzero(recs.n_lines > 1):
            if i == 0:
                continue  # the header
            span = mm[int(recs.start[i]) : int(recs.end[i])].rstrip(b"\r\n")
            if not prefilter.search(span):
                continue
            text = span.decode("utf-8", errors="replace")
            offsets, pos = [], 0
            for n, line in enumerate(text.splitlines(keepends=True)):
                if n and _looks_like_record(line.rstrip("\r\n"), len(header), int_positions, leading):
                    offsets.append(pos)
                pos += len(line)
            if offsets:
                merged[int(i)] = offsets
    return merged


def parse_csv(path: str, work: str) -> Parsed:
    import time

    started = time.perf_counter()
    recs = count_records(path)
    counted = time.perf_counter()
    if len(recs.start) == 0:
        raise UnreadableFile("empty file: no header", rows_in=0)
    with open(path, "rb") as fh:
        header_text = _read_span(fh, int(recs.start[0]), int(recs.end[0]))
    header = next(csv.reader([header_text.rstrip("\r\n").lstrip("\ufeff")]), [])
    n_records = len(recs.start) - 1
    try:
        columns = normalise_columns(header)
    except WrongSchema as exc:
        raise WrongSchema(str(exc), rows_in=n_records) from exc
    missing = [c for c in contract.REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise WrongSchema(f"wrong schema: missing required columns {missing}; found {header}", rows_in=n_records)

    # Records that absorbed others: split them at the absorbed lines, reject every piece.
    merged = find_merged(path, recs, header)
    rejects: list[dict] = []
    record_no = np.arange(len(recs.start))  # 1-based record numbers after splitting (header = 0)
    if merged:
        extra = np.zeros(len(recs.start), dtype=np.int64)
        for i, offsets in merged.items():
            extra[i] = len(offsets)
        record_no = np.arange(len(recs.start)) + np.concatenate([[0], np.cumsum(extra)[:-1]])
        with open(path, "rb") as fh:
            for i, offsets in merged.items():
                text = _read_span(fh, int(recs.start[i]), int(recs.end[i]))
                cuts = [0, *offsets, len(text)]
                first_line = int(recs.line[i])
                piece_lines = [first_line + text[:c].count("\n") for c in cuts[:-1]]
                for k in range(len(cuts) - 1):
                    if k == 0:
                        at = ", ".join(str(n) for n in piece_lines[1:])
                        why = f"merged records: an unbalanced quote makes this record absorb the record(s) at line(s) {at}"
                    else:
                        why = f"merged records: absorbed into the record at line {first_line} by an unbalanced quote"
                    rejects.append({LINE: piece_lines[k], RECORD: int(record_no[i]) + k,
                                    "raw": text[cuts[k]:cuts[k + 1]].rstrip("\r\n"), "reason": why})  # fmt: skip
        log.warning("%s: %d records absorbed others (unbalanced quotes); quarantined", path, len(merged))
    rows_in = n_records + sum(len(o) for o in merged.values())

    keep = np.ones(len(recs.start), dtype=bool)
    keep[0] = False
    keep[list(merged)] = False
    kept = np.flatnonzero(keep)
    source = path
    if merged:  # DuckDB reads the file without the merged spans
        source = os.path.join(work, "cleaned.csv")
        with open(path, "rb") as src, open(source, "wb") as dst:
            dst.write(src.read(int(recs.end[0])))
            for i in kept:
                src.seek(int(recs.start[i]))
                dst.write(src.read(int(recs.end[i] - recs.start[i])))
    try:
        parsed = _duckdb_csv(source, work, header, columns, recs, kept, record_no)
    except _Disagree as exc:
        log.warning("%s: %s; parsing again with Python's csv module", path, exc)
        parsed = _python_csv(source, work, header, columns)
        parsed.notes.append(f"{exc}; parsed with Python's csv module")
        # csv-module line numbers are in the cleaned file: map them back to the original lines
        if merged:
            _remap_lines(parsed, recs, kept, record_no)
        if parsed.rows_in != len(kept):
            parsed.notes.append(f"record counters disagree: quote parity {len(kept)}, csv module {parsed.rows_in}")
    parsed.rejects = rejects + parsed.rejects
    parsed.rows_in = len(parsed.rejects) + _rows(parsed)
    if parsed.rows_in != rows_in:
        parsed.notes.append(f"independent record count {rows_in}, parsed {parsed.rows_in}")
    parsed.source_columns = header
    parsed.seconds = {"count_records": round(counted - started, 3), "read_csv": round(time.perf_counter() - counted, 3)}
    return parsed


class _Disagree(Exception):
    pass


def _rows(parsed: Parsed) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in parsed.rows_paths)


def _duckdb_csv(source, work, header, columns, recs: Records, kept, record_no) -> Parsed:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Kept records' byte starts in the file DuckDB reads (the cleaned file when spans were cut).
    lengths = recs.end[kept] - recs.start[kept]
    starts = int(recs.end[0]) + np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(kept) else np.zeros(0)
    rows_path = os.path.join(work, "rows.parquet")
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET memory_limit = '512MB'")  # spill, never grow with the file
        con.execute(f"SET temp_directory = '{work}/duckdb-tmp'")
        spec = {f"c{i}": "VARCHAR" for i in range(len(header))}
        select = ", ".join(f'c{i} AS "{name}"' for i, name in enumerate(columns))
        con.execute(
            f"COPY (SELECT {select} FROM read_csv(?, columns = $spec, header = true, auto_detect = false, "
            "delim = ',', quote = '\"', escape = '\"', strict_mode = true, store_rejects = true, "
            "null_padding = false, all_varchar = true, encoding = 'utf-8')) TO "
            f"'{rows_path}' (FORMAT parquet, COMPRESSION lz4_raw)".replace("?", "$path"),
            {"spec": spec, "path": source},
        )
        errors = con.execute(
            "SELECT byte_position, line_byte_position, error_type, column_name, error_message, csv_line "
            "FROM reject_errors ORDER BY byte_position"
        ).fetchall()
    finally:
        con.close()
    n_rows = pq.ParquetFile(rows_path).metadata.num_rows
    rejected: dict[int, dict] = {}
    for byte_pos, _line_pos, kind, column, message, csv_line in errors:
        k = int(np.searchsorted(starts, byte_pos, side="right")) - 1
        if k < 0:
            raise _Disagree(f"a rejected record at byte {byte_pos} lies before the first record")
        entry = rejected.setdefault(k, {"raw": (csv_line or "").strip("\r\n"), "reasons": []})
        where = (
            f" (column {header[int(column[1:])]!r})"
            if column and column[1:].isdigit() and int(column[1:]) < len(header)
            else ""
        )
        entry["reasons"].append(f"malformed CSV record: {kind.lower()}{where}: {message}")
    if n_rows + len(rejected) != len(kept):
        raise _Disagree(f"DuckDB read {n_rows} rows + {len(rejected)} rejected records, the counter {len(kept)}")
    accepted = np.ones(len(kept), dtype=bool)
    if rejected:
        accepted[list(rejected)] = False
    lines_path = os.path.join(work, "lines.parquet")
    pq.write_table(
        pa.table(
            {
                LINE: recs.line[kept][accepted].astype(np.int64),
                RECORD: record_no[kept][accepted].astype(np.int64),
                START: recs.start[kept][accepted].astype(np.int64),
                END: recs.end[kept][accepted].astype(np.int64),
            }
        ),  # fmt: skip
        lines_path,
    )
    rejects = [
        {
            LINE: int(recs.line[kept[k]]),
            RECORD: int(record_no[kept[k]]),
            "raw": e["raw"],
            "reason": "; ".join(e["reasons"]),
        }
        for k, e in sorted(rejected.items())
    ]
    return Parsed(len(kept), columns, header, [rows_path], lines_path, rejects, parser="duckdb")


def _python_csv(source, work, header, columns) -> Parsed:
    """Exact fallback: Python's csv module, with its physical line numbers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows_path, lines_path = os.path.join(work, "rows.parquet"), os.path.join(work, "lines.parquet")
    rows_schema = pa.schema([(c, pa.string()) for c in columns])
    rejects: list[dict] = []
    n = 0
    with (
        open(source, encoding="utf-8", errors="replace", newline="") as fh,
        pq.ParquetWriter(rows_path, rows_schema) as rows_out,
        pq.ParquetWriter(lines_path, pa.schema([(c, pa.int64()) for c in (LINE, RECORD, START, END)])) as lines_out,
    ):
        reader = csv.reader(fh)
        next(reader, None)
        batch: list[list[str]] = []
        nums: list[tuple[int, int]] = []
        last = reader.line_num

        def flush():
            if batch:
                cols = list(zip(*batch, strict=True))
                rows_out.write_table(pa.table(dict(zip(columns, cols, strict=True)), schema=rows_schema))
                lines_out.write_table(pa.table({LINE: [a for a, _ in nums], RECORD: [b for _, b in nums],
                                                START: [-1] * len(nums), END: [-1] * len(nums)}))  # fmt: skip
                batch.clear()
                nums.clear()

        for fields in reader:
            line = last + 1
            last = reader.line_num
            if not fields:
                continue  # a blank line is not a record
            n += 1
            if len(fields) != len(columns):
                rejects.append({LINE: line, RECORD: n, "raw": ",".join(fields),
                                "reason": f"malformed CSV record: expected {len(columns)} fields, found {len(fields)}"})  # fmt: skip
                continue
            batch.append(fields)
            nums.append((line, n))
            if len(batch) >= BATCH_ROWS:
                flush()
        flush()
    return Parsed(n, columns, header, [rows_path], lines_path, rejects, parser="csv-module")


def _remap_lines(parsed: Parsed, recs: Records, kept, record_no) -> None:
    """Line numbers of the cleaned file -> the original file's (only when merged spans were cut)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # The cleaned file holds the header then the kept records back to back (no blank lines).
    cum = int(recs.n_lines[0]) + 1 + np.concatenate([[0], np.cumsum(recs.n_lines[kept])[:-1]])

    def orig(line: int) -> tuple[int, int]:
        k = int(np.searchsorted(cum, line, side="right")) - 1
        k = min(max(k, 0), len(kept) - 1)
        return int(recs.line[kept[k]] + (line - cum[k])), int(record_no[kept[k]])

    table = pq.read_table(parsed.lines_path)
    mapped = [orig(x) for x in table.column(LINE).to_pylist()]
    pq.write_table(pa.table({LINE: [a for a, _ in mapped], RECORD: [b for _, b in mapped],
                             START: [-1] * len(mapped), END: [-1] * len(mapped)}), parsed.lines_path)  # fmt: skip
    for r in parsed.rejects:
        r[LINE], r[RECORD] = orig(r[LINE])


# -- JSON lines, parquet ---------------------------------------------------------------------


def _stringify(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def parse_jsonl(path: str, work: str) -> Parsed:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows_paths, rejects, nums, batch = [], [], [], []
    names: dict[str, str] = {}  # source key -> column
    n = 0

    def flush():
        if not batch:
            return
        cols = list(names.values())
        table = pa.table({c: [r.get(c, "") for r in batch] for c in cols})
        p = os.path.join(work, f"rows-{len(rows_paths):05d}.parquet")
        pq.write_table(table, p)
        rows_paths.append(p)
        batch.clear()

    offset = 0
    with open(path, "rb") as fh:
        for line_no, data in enumerate(fh, start=1):
            start, offset = offset, offset + len(data)
            text = data.decode("utf-8", errors="replace").strip().lstrip("\ufeff")
            if not text:
                continue
            n += 1
            try:
                obj = json.loads(text)
                if not isinstance(obj, dict):
                    raise ValueError(f"a JSON {type(obj).__name__}, not an object")
            except ValueError as exc:
                rejects.append(
                    {LINE: line_no, RECORD: n, "raw": text[:10_000], "reason": f"malformed JSON line: {exc}"}
                )
                continue
            row = {}
            for key, value in obj.items():
                if key not in names:
                    column = normalise_columns([*names.keys(), key])[-1]
                    names[key] = column
                row[names[key]] = _stringify(value)
            batch.append(row)
            nums.append((line_no, n, start, offset))
            if len(batch) >= BATCH_ROWS:
                flush()
    flush()
    columns = list(names.values())
    if n == 0:
        raise UnreadableFile("empty file: no JSON records", rows_in=0)
    missing = [c for c in contract.REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise WrongSchema(f"wrong schema: missing required columns {missing}; found {list(names)}", rows_in=n)
    lines_path = os.path.join(work, "lines.parquet")
    pq.write_table(pa.table(dict(zip((LINE, RECORD, START, END), map(list, zip(*nums, strict=True)), strict=True)))
                   if nums else pa.table({c: pa.array([], pa.int64()) for c in (LINE, RECORD, START, END)}),
                   lines_path)  # fmt: skip
    return Parsed(n, columns, list(names), rows_paths, lines_path, rejects, parser="json")


def parse_parquet(path: str, work: str) -> Parsed:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure: unreadable, with its message
        raise UnreadableFile(f"cannot read as parquet: {type(exc).__name__}: {exc}") from exc
    header = [str(n) for n in source.schema_arrow.names]
    columns = normalise_columns(header)
    missing = [c for c in contract.REQUIRED_COLUMNS if c not in columns]
    n = source.metadata.num_rows
    if missing:
        raise WrongSchema(f"wrong schema: missing required columns {missing}; found {header}", rows_in=n)
    rows_paths = []
    for i, batch in enumerate(source.iter_batches(batch_size=BATCH_ROWS)):
        arrays = []
        for col in batch.columns:
            if pa.types.is_nested(col.type):
                arrays.append(pa.array([_stringify(v) for v in col.to_pylist()], pa.string()))
            else:
                arrays.append(pc.fill_null(pc.cast(col, pa.string()), ""))
        p = os.path.join(work, f"rows-{i:05d}.parquet")
        pq.write_table(pa.table(dict(zip(columns, arrays, strict=True))), p)
        rows_paths.append(p)
    lines_path = os.path.join(work, "lines.parquet")
    numbers = np.arange(1, n + 1, dtype=np.int64)
    none = np.full(n, -1, dtype=np.int64)
    pq.write_table(pa.table({LINE: numbers, RECORD: numbers, START: none, END: none}), lines_path)
    return Parsed(n, columns, header, rows_paths, lines_path, [], parser="parquet")


def parse_file(path: str, name: str, work: str) -> tuple[Parsed, dict]:
    """Parse a local copy of a landed file; (Parsed, facts: format, compression, encoding, sha256)."""
    fmt, compression = file_format(name)
    facts = {"format": fmt, "compression": compression, "bytes": os.path.getsize(path)}
    if fmt is None:
        raise UnreadableFile(f"unsupported file type {''.join(PurePosixPath(name).suffixes)!r}")
    if facts["bytes"] == 0:
        raise UnreadableFile("empty file (0 bytes)", rows_in=0)
    plain = decompress(path, work, compression)
    facts["sha256"], bad = scan_bytes(plain)
    if fmt == "parquet":
        parsed = parse_parquet(plain, work)
    else:
        text, encoding = to_utf8(plain, work, bad)
        facts["encoding"] = encoding
        parsed = parse_csv(text, work) if fmt == "csv" else parse_jsonl(text, work)
        parsed.encoding = encoding
        parsed.text_path = text
    return parsed, facts
