"""Benchmark: the score task end to end on one large date (default 250,000 reviews) against the bare model.

    .venv/bin/python bench/bench_score_task.py                 # 250,000 generated reviews on one date
    .venv/bin/python bench/bench_score_task.py --rows 50000 --no-airflow

A temporary lake gets a TF-IDF champion trained as sentiment_training trains it (6,000 generated
reviews on day T: build_dataset, include/models/tfidf.py's full grid, evaluate_and_register,
promote) and one curated partition of ``--rows`` other generated reviews on day D (curated by the
ingest code's ``to_curated``). Measured in the same run, in reviews/s:

- floor: the champion's predictor (``load_predictor``, as the score task loads it) on D's texts
  held in memory, in the task's batches: the model alone, no I/O;
- score_partition: the task's function in this process (parquet read in batches, scoring, the
  predictions partition and the review queue with its reasons written, the catalog updated);
- the score task under Airflow: ``airflow dags test sentiment_batch_scoring D`` in a fresh process
  (its own AIRFLOW_HOME); the ``score`` task instance's duration for D from the metadata DB, and
  the whole DAG run's wall time (collect_labels, plan, drift, realised quality, alerts around it).

``REVIEWFLOW_TFIDF_JOBS`` (default 1) applies to all three. The load average is printed: other
work on the cores lowers every figure, the ratios less so.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from reviewflow import contract, layout  # noqa: E402
from reviewflow.ingest import curate  # noqa: E402
from tools import sample_data  # noqa: E402

TRAIN_DT, SCORE_DT = "2024-05-01", "2024-05-02"


def curated_day(lake, catalog, dt: str, rows: int, seed: int, start_index: int) -> int:
    """One curated partition of generated reviews, written and registered as curate_partition does."""
    from reviewflow.storage.lake import replace_partition, write_parquet

    raw = sample_data.generate_reviews(rows, seed=seed, start_index=start_index)
    raw.columns = [contract.snake_case(c) for c in raw.columns]
    frame = curate.to_curated(raw, f"bench-{dt}.csv", "bench").assign(dt=dt)
    replace_partition(lake, layout.dt_prefix(layout.CURATED, dt), {})
    write_parquet(lake, layout.curated_key(dt), frame[list(curate.curated_columns())])
    catalog.register_table(layout.CURATED_TABLE, lake.uri(layout.CURATED), curate.curated_columns(), "parquet")
    catalog.register_partition(layout.CURATED_TABLE, dt)
    return len(frame)


def make_champion(lake, settings) -> dict:
    """sentiment_training's steps for TRAIN_DT, in process: a TF-IDF champion."""
    from reviewflow.storage.sql import get_engine
    from reviewflow.training.dataset import build_dataset
    from reviewflow.training.predictor import _entry_point
    from reviewflow.training.registry import get_version, promote
    from reviewflow.training.tasks import evaluate_and_register

    built = build_dataset(lake, TRAIN_DT, get_engine())
    version = "bench-score-task"
    _entry_point("tfidf").run(built["dataset_uri"], lake.uri(layout.model_prefix("tfidf", version)), grid="full")
    evaluate_and_register(lake, "tfidf", version, TRAIN_DT, "bench", settings)
    return promote(lake, get_version(lake, "tfidf", version))


def airflow_score_task(lake_root: str, home: str) -> tuple[float, float, int]:
    """(score task seconds for SCORE_DT, DAG run wall seconds, return code) of `airflow dags test`."""
    env = {**os.environ, "AIRFLOW_HOME": home, "REVIEWFLOW_LAKE": lake_root, "REVIEWFLOW_START_DATE": TRAIN_DT}
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "--conf", json.dumps({"dt": SCORE_DT}),
         "sentiment_batch_scoring", SCORE_DT],
        env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    wall = time.monotonic() - started
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
    with sqlite3.connect(Path(home, "airflow.db")) as db:
        rows = db.execute(
            "select duration, state, rendered_map_index from task_instance "
            "where dag_id = 'sentiment_batch_scoring' and task_id = 'score'"
        ).fetchall()
    seconds = [d for d, state, shown in rows if shown == SCORE_DT and state == "success" and d]
    return (seconds[0] if seconds else float("nan")), wall, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=250_000, help="generated reviews on the scored date")
    parser.add_argument("--train-rows", type=int, default=6000)
    parser.add_argument("--no-airflow", action="store_true", help="skip the `airflow dags test` measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="reviewflow-bench-score-task-") as tmp:
        lake_root = str(Path(tmp, "lake"))
        os.environ["REVIEWFLOW_LAKE"] = lake_root  # before the settings are first read
        from reviewflow.config import get_settings
        from reviewflow.scoring.score import BATCH_ROWS, curated_batches, review_texts, score_partition
        from reviewflow.storage.catalog import get_catalog
        from reviewflow.storage.lake import get_lake, read_parquet
        from reviewflow.training.predictor import load_predictor
        from reviewflow.training.registry import champion

        settings = get_settings()
        lake, catalog = get_lake(settings.lake), get_catalog(settings)
        print(f"cpus {len(os.sched_getaffinity(0))}, REVIEWFLOW_TFIDF_JOBS {os.environ.get('REVIEWFLOW_TFIDF_JOBS', 1)}, "
              f"load average at start {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        curated_day(lake, catalog, TRAIN_DT, args.train_rows, seed=5, start_index=0)
        make_champion(lake, settings)
        started = time.monotonic()
        rows = curated_day(lake, catalog, SCORE_DT, args.rows, seed=77, start_index=10_000_000)
        print(f"{rows} curated reviews on {SCORE_DT} written in {time.monotonic() - started:.0f}s", flush=True)
        entry = champion(lake)
        print(f"champion: {entry['model_name']} {entry['version']} ({entry['kind']})", flush=True)
        # T scored first: the DAG run below then scores D alone (a manual run scores unscored dates too)
        score_partition(lake, catalog, TRAIN_DT, load_predictor(entry), entry, settings.review_confidence_threshold)

        predict = load_predictor(entry)
        texts = [t for batch in curated_batches(lake, SCORE_DT, ["title", "review_text"]) for t in review_texts(batch)]
        predict(texts[:BATCH_ROWS])  # loaded once, as in the task
        started = time.monotonic()
        for i in range(0, len(texts), BATCH_ROWS):
            predict(texts[i : i + BATCH_ROWS])
        floor = len(texts) / (time.monotonic() - started)
        print(f"  floor (model on texts in memory): {floor:.0f}/s", flush=True)

        started = time.monotonic()
        summary = score_partition(
            lake, catalog, SCORE_DT, load_predictor(entry), entry, settings.review_confidence_threshold
        )
        in_process = time.monotonic() - started
        written = len(read_parquet(lake, layout.dt_prefix(layout.PREDICTIONS, SCORE_DT) + layout.PART))
        assert written == rows == summary["rows"], (written, rows, summary["rows"])
        print(f"  score_partition in process: {rows / in_process:.0f}/s ({summary['queued_for_review']} queued)",
              flush=True)  # fmt: skip

        results = [("floor: predictor on texts in memory", len(texts) / floor),
                   ("score_partition (this process)", in_process)]  # fmt: skip
        if not args.no_airflow:
            task, wall, code = airflow_score_task(lake_root, str(Path(tmp, "airflow_home")))
            written = len(read_parquet(lake, layout.dt_prefix(layout.PREDICTIONS, SCORE_DT) + layout.PART))
            assert code == 0 and written == rows, (code, written, rows)
            results += [("score task under `airflow dags test`", task), ("the DAG run (dags test wall)", wall)]

    print(f"\n=== bench_score_task ({rows} reviews on one date, batches of {BATCH_ROWS}; "
          f"load average now {os.getloadavg()[0]:.2f}) ===")  # fmt: skip
    print(f"{'measurement':<42}{'seconds':>9}{'reviews/s':>11}{'x floor':>9}")
    for label, seconds in results:
        rate = rows / seconds
        print(f"{label:<42}{seconds:>9.1f}{rate:>11.0f}{rate / floor:>9.2f}")


if __name__ == "__main__":
    main()
