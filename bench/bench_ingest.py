"""Ingest throughput and peak memory: crawl + validate + curate, without Airflow's overhead.

    python bench/bench_ingest.py                       # 1,000,000 generated rows in one day
    python bench/bench_ingest.py --rows 200000 --days 2
    python bench/bench_ingest.py --csv ../shared/data/womens_clothing_reviews_dev.csv --days 7

Prints rows/s per stage and the process's peak RSS (each day is processed in turn, as the DAG does).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from reviewflow import sample_data  # noqa: E402
from reviewflow.catalog import DuckDBCatalog  # noqa: E402
from reviewflow.crawl import crawl_partition  # noqa: E402
from reviewflow.curate import curate_partition  # noqa: E402
from reviewflow.lake import LocalLake  # noqa: E402
from reviewflow.validate import validate_file  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", help="a CSV in the Kaggle schema (else generated rows)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="generated rows in all")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--dirty-share", type=float, default=0.02)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as root:
        t0 = time.perf_counter()
        if args.csv:
            written = sample_data.load_csv_to_landing(args.csv, root, days=args.days, start="2024-01-01")
        else:
            written = sample_data.write_landing(
                root, days=args.days, rows_per_day=args.rows // args.days, start="2024-01-01",
                seed=0, dirty_share=args.dirty_share,
            )  # fmt: skip
        print(f"landing written in {time.perf_counter() - t0:.1f}s ({len(written)} days)")

        lake, catalog = LocalLake(root), DuckDBCatalog(root)
        stages = {"crawl": 0.0, "validate": 0.0, "curate": 0.0}
        rows = {"in": 0, "curated": 0, "quarantined": 0}
        for dt in sorted(written):
            t = time.perf_counter()
            manifests = crawl_partition(lake, catalog, dt)
            stages["crawl"] += time.perf_counter() - t
            t = time.perf_counter()
            reports = [validate_file(lake, m) for m in manifests]
            stages["validate"] += time.perf_counter() - t
            t = time.perf_counter()
            summary = curate_partition(lake, catalog, dt, reports, "bench")
            stages["curate"] += time.perf_counter() - t
            for key in rows:
                rows[key] += summary[f"rows_{key}"]

        total = sum(stages.values())
        print(f"rows in {rows['in']:,}: curated {rows['curated']:,}, quarantined {rows['quarantined']:,}")
        for stage, seconds in stages.items():
            print(f"  {stage:<9} {seconds:7.1f}s  {rows['in'] / seconds:>10,.0f} rows/s")
        print(f"  {'total':<9} {total:7.1f}s  {rows['in'] / total:>10,.0f} rows/s")
        print(f"peak RSS {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
