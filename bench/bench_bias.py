"""Bias report timings: the SQL aggregate in DuckDB vs the metric formulas (and HTML) in Python.

    python bench/bench_bias.py                                  # 1,000,000 generated rows, 10 days
    python bench/bench_bias.py --rows 200000 --days 5
    python bench/bench_bias.py ../shared/data/womens_clothing_reviews_dev.csv --days 7

Writes curated-like parquet partitions (snake_case columns, sentiment from rating) to a temp
lake, registers them in the local DuckDB catalog, then times reviewflow.bias.metrics for the last day:
SQL = bias_counts.sql on the engine (both scopes in one scan), Python = every metric from the
returned count table, HTML = the report page with its charts. Best and median of --repeat runs.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "plugins"), str(Path(__file__).resolve().parents[1])]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reviewflow.bias import metrics as bias  # noqa: E402
from reviewflow.bias import tasks as bias_tasks  # noqa: E402
from reviewflow.bias.report import render_html  # noqa: E402
from reviewflow.contract import CURATED_COLUMNS, INTEGER_COLUMNS, snake_case  # noqa: E402
from reviewflow.storage.catalog import DuckDBCatalog  # noqa: E402
from reviewflow.storage.sql import DuckDBEngine  # noqa: E402


def to_curated(source: pd.DataFrame, dt: str, source_file: str) -> pd.DataFrame:
    """Kaggle-schema rows -> the curated columns (no validation: the bench wants clean input)."""
    frame = source.rename(columns=lambda c: snake_case(str(c)))
    for column in INTEGER_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    frame = frame[frame["rating"].between(1, 5)].copy()
    frame["sentiment"] = np.select([frame["rating"] <= 2, frame["rating"] == 3], [-1, 0], 1).astype("int64")
    frame["review_id"] = [f"{dt}-{i}" for i in frame["source_row_id"].astype(str)]
    frame["source_file"] = source_file
    frame["ingest_run"] = "bench"
    for column in ("title", "review_text", "division_name", "department_name", "class_name"):
        frame[column] = frame[column].astype("string")
    return frame[CURATED_COLUMNS]


def days(n: int, start: str = "2024-01-01") -> list[str]:
    first = date.fromisoformat(start)
    return [(first + timedelta(days=i)).isoformat() for i in range(n)]


def write_partition(root: str, dt: str, frame: pd.DataFrame) -> None:
    folder = Path(root) / "curated" / "reviews" / f"dt={dt}"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "part-0.parquet", index=False)


def load_csv(root: str, csv_path: str, n_days: int) -> tuple[list[str], int]:
    source = pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_values=[""])
    dates = days(n_days)
    rows = 0
    for dt, index in zip(dates, np.array_split(np.arange(len(source)), n_days), strict=True):
        curated = to_curated(source.iloc[index], dt, Path(csv_path).name)
        write_partition(root, dt, curated)
        rows += len(curated)
    return dates, rows


def generate(root: str, n_rows: int, n_days: int) -> tuple[list[str], int]:
    """Generated reviews (tools.sample_data: real category mixes, ratings that vary by
    department and age), one day at a time so memory stays bounded; numpy if it is missing."""
    try:
        from tools.sample_data import generate_reviews
    except ImportError:  # pragma: no cover - the module ships with reviewflow
        generate_reviews = None
    dates = days(n_days)
    rows = 0
    for i, (dt, n) in enumerate(zip(dates, [len(c) for c in np.array_split(np.arange(n_rows), n_days)], strict=True)):
        if generate_reviews is not None:
            source = generate_reviews(n, seed=i, start_index=rows)
        else:
            source = _numpy_reviews(n, seed=i, start_index=rows)
        write_partition(root, dt, to_curated(source, dt, f"generated-{dt}.csv"))
        rows += n
    return dates, rows


def _numpy_reviews(n: int, seed: int, start_index: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    classes = {"Tops": ["Knits", "Blouses", "Sweaters"], "Dresses": ["Dresses"], "Bottoms": ["Pants", "Jeans"],
               "Intimate": ["Lounge", "Sleep"], "Jackets": ["Jackets"], "Trend": ["Trend"]}  # fmt: skip
    dept = rng.choice(list(classes), size=n, p=[0.45, 0.27, 0.16, 0.075, 0.043, 0.002])
    return pd.DataFrame({
        "": np.arange(start_index, start_index + n), "Clothing ID": rng.integers(0, 1206, n),
        "Age": np.clip(rng.normal(43, 12, n).round(), 18, 99).astype(int), "Title": "", "Review Text": "text",
        "Rating": rng.choice([1, 2, 3, 4, 5], size=n, p=[0.04, 0.07, 0.12, 0.22, 0.55]),
        "Recommended IND": 1, "Positive Feedback Count": 0,
        "Division Name": np.where(dept == "Intimate", "Initmates", "General"), "Department Name": dept,
        "Class Name": [classes[d][k % len(classes[d])] for k, d in enumerate(dept)],
    })  # fmt: skip


def register(root: str, dates: list[str]) -> None:
    catalog = DuckDBCatalog(root)
    columns = {c: ("BIGINT" if c in INTEGER_COLUMNS or c == "sentiment" else "VARCHAR") for c in CURATED_COLUMNS}
    catalog.register_table("curated_reviews", f"{root}/curated/reviews", {**columns, "dt": "VARCHAR"}, "parquet")
    for dt in dates:
        catalog.register_partition("curated_reviews", dt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="?", help="a CSV in the Kaggle schema (else generated rows)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="generated rows in all")
    parser.add_argument("--days", type=int, default=None, help="partitions (default: 7 for a CSV, 10 generated)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-html", action="store_true", help="skip the HTML timing")
    args = parser.parse_args()
    n_days = args.days or (7 if args.csv else 10)

    with tempfile.TemporaryDirectory(prefix="bench-bias-") as root:
        t = time.perf_counter()
        dates, rows = load_csv(root, args.csv, n_days) if args.csv else generate(root, args.rows, n_days)
        register(root, dates)
        source = args.csv or f"{rows:,} generated rows"
        print(f"data: {source}; {rows:,} curated rows in {len(dates)} partitions, written in "
              f"{time.perf_counter() - t:.1f}s")  # fmt: skip

        engine, dt = DuckDBEngine(root), dates[-1]
        timings: dict[str, list[float]] = {"sql": [], "python": [], "html": []}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            counts = bias_tasks.fetch_counts(engine, dt)
            t1 = time.perf_counter()
            report = bias.build_report(counts, dt)
            t2 = time.perf_counter()
            if not args.no_html:
                page = render_html(report)
            t3 = time.perf_counter()
            timings["sql"].append(t1 - t0)
            timings["python"].append(t2 - t1)
            timings["html"].append(t3 - t2)

        print(f"report date {dt}: cumulative {report['scopes']['cumulative']['rows']:,} rows, "
              f"partition {report['scopes']['partition']['rows']:,} rows")  # fmt: skip
        print(f"aggregate returned by SQL: {len(counts):,} rows x {len(counts.columns)} columns; "
              f"{len(report['metrics']):,} metric records, {len(report['alerts'])} alerts")  # fmt: skip
        for name, label in (("sql", "SQL (DuckDB, both scopes, one scan)"), ("python", "Python (metric formulas)"),
                            ("html", "HTML (charts + page)")):  # fmt: skip
            if name == "html" and args.no_html:
                continue
            values = timings[name]
            print(f"  {label:<38} best {min(values):7.3f}s   median {statistics.median(values):7.3f}s")
        if not args.no_html:
            print(f"  HTML size {len(page) / 1024:.0f} KiB")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
