"""Ingest speed and memory against a DuckDB-only floor, measured in the same run.

    python bench/bench_ingest.py                      # 1,000,000 generated rows in one landing file
    python bench/bench_ingest.py --rows 200000
    python bench/bench_ingest.py --csv ../shared/data/womens_clothing_reviews_dev.csv
    python bench/bench_ingest.py --skip-airflow       # only the floor and the in-process stages

Three measurements, each in its own process (peak RSS is per process):
- **floor**: DuckDB alone: read_csv (the same reader options), the contract's row rules in SQL,
  curated + quarantine parquet. No record counting, no GX, no Data Docs, no catalog.
- **stages**: reviewflow's crawl, validate (GX) and curate functions called in one process.
- **airflow**: ``airflow dags test reviews_ingest D`` in a fresh process with its own metadata DB;
  the figure is the sum of the task instances' durations (what the UI shows), plus wall time.
Prints seconds, rows/s, peak RSS, and the ratios to the floor (the issue's goal: <= 3x time,
<= 1.5x peak).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]  # reviewflow, tools
DT = "2024-01-01"

FLOOR_SQL = """
COPY (SELECT * FROM read_csv($path, columns = $spec, header = true, auto_detect = false, delim = ',',
      quote = '"', escape = '"', strict_mode = true, store_rejects = true, null_padding = false))
TO '{out}/typed.parquet' (FORMAT parquet);
CREATE TABLE checked AS SELECT *, list_filter([
    CASE WHEN nullif(trim(c4), '') IS NULL THEN 'review text present' END,
    CASE WHEN TRY_CAST(c5 AS BIGINT) IS NULL OR TRY_CAST(c5 AS BIGINT) NOT BETWEEN 1 AND 5 THEN 'rating in 1..5' END,
    CASE WHEN TRY_CAST(c2 AS BIGINT) IS NULL OR TRY_CAST(c2 AS BIGINT) NOT BETWEEN 13 AND 110 THEN 'age plausible' END,
    CASE WHEN TRY_CAST(c6 AS BIGINT) IS NULL OR TRY_CAST(c6 AS BIGINT) NOT IN (0, 1) THEN 'recommended_ind' END,
    CASE WHEN TRY_CAST(c7 AS BIGINT) IS NULL OR TRY_CAST(c7 AS BIGINT) < 0 THEN 'feedback >= 0' END,
    CASE WHEN TRY_CAST(c0 AS BIGINT) IS NULL OR TRY_CAST(c1 AS BIGINT) IS NULL THEN 'ids are integers' END,
    CASE WHEN count(*) OVER (PARTITION BY c0) > 1 THEN 'review id unique in file' END
  ], lambda x: x IS NOT NULL) AS reasons
FROM read_parquet('{out}/typed.parquet');
COPY (SELECT * EXCLUDE (reasons) FROM checked WHERE len(reasons) = 0) TO '{out}/curated.parquet' (FORMAT parquet);
COPY (SELECT * FROM checked WHERE len(reasons) > 0) TO '{out}/quarantine.parquet' (FORMAT parquet);
"""


def peak_mib() -> float:
    """This process's peak RSS (VmHWM: reset at exec, unlike ru_maxrss, which keeps the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def floor(csv_path: str) -> None:
    """The DuckDB-only floor (run in a child process)."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="floor-") as out:
        t = time.perf_counter()
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        for statement in FLOOR_SQL.format(out=out).split(";"):
            if statement.strip():
                params = {"path": csv_path, "spec": {f"c{i}": "VARCHAR" for i in range(11)}}
                con.execute(statement, params if "$path" in statement else None)
        curated = con.execute(f"SELECT count(*) FROM '{out}/curated.parquet'").fetchone()[0]
        quarantined = con.execute(f"SELECT count(*) FROM '{out}/quarantine.parquet'").fetchone()[0]
        rejects = con.execute("SELECT count(DISTINCT line_byte_position) FROM reject_errors").fetchone()[0]
        seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "curated": curated, "quarantined": quarantined + rejects,
                      "peak_mib": peak_mib()}))  # fmt: skip


def stages(csv_path: str) -> None:
    """reviewflow's crawl / validate / curate in one process (run in a child process)."""
    import great_expectations  # noqa: F401 - imported up front: its import time is not ingest work

    from reviewflow.ingest.crawl import crawl_partition
    from reviewflow.ingest.curate import curate_partition
    from reviewflow.ingest.validate import validate_file
    from reviewflow.storage.catalog import DuckDBCatalog
    from reviewflow.storage.lake import LocalLake

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as root:
        lake, catalog = LocalLake(root), DuckDBCatalog(root)
        lake.put_file(csv_path, f"landing/reviews/dt={DT}/reviews.csv")
        times = {}
        t = time.perf_counter()
        manifests = crawl_partition(lake, catalog, DT)
        times["crawl"] = time.perf_counter() - t
        t = time.perf_counter()
        reports = [validate_file(lake, m) for m in manifests]
        times["validate"] = time.perf_counter() - t
        t = time.perf_counter()
        summary = curate_partition(lake, catalog, DT, reports, "bench")
        times["curate"] = time.perf_counter() - t
    print(json.dumps({"seconds": times, "rows_in": summary["rows_in"], "curated": summary["rows_curated"],
                      "quarantined": summary["rows_quarantined"],
                      "peak_mib": peak_mib()}))  # fmt: skip


def airflow(csv_path: str) -> dict:
    """`airflow dags test reviews_ingest` in a fresh process; task durations from its metadata DB."""
    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as home:
        lake = Path(home) / "lake"
        target = lake / f"landing/reviews/dt={DT}/reviews.csv"
        target.parent.mkdir(parents=True)
        os.link(csv_path, target) if os.stat(csv_path).st_dev == os.stat(home).st_dev else target.write_bytes(
            Path(csv_path).read_bytes()
        )
        env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
               "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "REVIEWFLOW_LAKE": str(lake), "REVIEWFLOW_NO_AIRFLOW_VARIABLES": "1", "GX_ANALYTICS_ENABLED": "false",
               "PYTHONPATH": str(ROOT / "plugins")}  # fmt: skip
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
        t = time.perf_counter()
        # GNU time reports the peak RSS of the airflow process itself (one process runs every task)
        proc = subprocess.run(["/usr/bin/time", "-f", "PEAK_KIB %M", sys.executable, "-m", "airflow", "dags", "test",
                               "reviews_ingest", DT], env=env, capture_output=True, text=True)  # fmt: skip
        wall = time.perf_counter() - t
        peak = int(proc.stderr.rsplit("PEAK_KIB", 1)[1].split()[0]) if "PEAK_KIB" in proc.stderr else 0
        if proc.returncode:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            raise SystemExit("airflow dags test failed")
        con = sqlite3.connect(Path(home) / "airflow.db")
        durations = con.execute(
            "SELECT task_id, map_index, (julianday(end_date) - julianday(start_date)) * 86400 FROM task_instance"
        ).fetchall()
        report = json.loads((lake / f"reports/ingest/dt={DT}/ingest_report.json").read_text())
    return {"tasks": durations, "wall": wall, "peak_mib": peak / 1024, "rows_in": report["rows_in"],
            "curated": report["rows_curated"], "quarantined": report["rows_quarantined"]}  # fmt: skip


def generated_csv(rows: int) -> str:
    from tools import sample_data

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"generated-{rows}.csv"
    if not path.exists():
        t = time.perf_counter()
        frame = sample_data.generate_reviews(rows, seed=0, dirty_share=0.02, start_index=0)
        path.write_bytes(sample_data.to_csv_bytes(frame))
        print(f"generated {rows:,} rows in {time.perf_counter() - t:.0f}s -> {path} (cached)")
    return str(path)


def child(kind: str, csv_path: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, f"--child-{kind}", csv_path], capture_output=True, text=True)
    if proc.returncode:
        print(proc.stderr[-3000:])
        raise SystemExit(f"{kind} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", help="a CSV in the Kaggle schema (else generated rows)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-airflow", action="store_true")
    parser.add_argument("--child-floor")
    parser.add_argument("--child-stages")
    args = parser.parse_args()
    if args.child_floor:
        return floor(args.child_floor)
    if args.child_stages:
        return stages(args.child_stages)

    csv_path = os.path.abspath(args.csv) if args.csv else generated_csv(args.rows)
    base = child("floor", csv_path)
    ours = child("stages", csv_path)
    n = ours["rows_in"]
    print(f"input: {csv_path} ({os.path.getsize(csv_path) / 2**20:,.0f} MiB, {n:,} records)")
    print(f"floor (DuckDB only)     {base['seconds']:7.2f}s  {n / base['seconds']:>10,.0f} rows/s  "
          f"peak {base['peak_mib']:6,.0f} MiB  curated {base['curated']:,}")  # fmt: skip
    total = sum(ours["seconds"].values())
    detail = ", ".join(f"{k} {v:.2f}s" for k, v in ours["seconds"].items())
    print(f"reviewflow stages       {total:7.2f}s  {n / total:>10,.0f} rows/s  peak {ours['peak_mib']:6,.0f} MiB  "
          f"curated {ours['curated']:,} quarantined {ours['quarantined']:,} ({detail})")  # fmt: skip
    print(f"  ratio to floor: time {total / base['seconds']:.2f}x, peak {ours['peak_mib'] / base['peak_mib']:.2f}x")
    if not args.skip_airflow:
        run = airflow(csv_path)
        task_seconds = sum(d for _, _, d in run["tasks"])
        detail = ", ".join(f"{t}{'' if m < 0 else f'[{m}]'} {d:.2f}s" for t, m, d in run["tasks"])
        print(f"airflow dags test       {task_seconds:7.2f}s task time ({run['wall']:.1f}s wall)  "
              f"peak {run['peak_mib']:6,.0f} MiB  curated {run['curated']:,} ({detail})")  # fmt: skip
        print(f"  ratio to floor: task time {task_seconds / base['seconds']:.2f}x, "
              f"peak {run['peak_mib'] / base['peak_mib']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
