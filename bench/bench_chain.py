"""The nightly chain against a plain-script floor: the same work without Airflow, and `make run`'s chain.

    python bench/bench_chain.py                          # 7 days x 2,000 generated rows a day
    python bench/bench_chain.py --days 2 --rows-per-day 300 --bert-max-train-samples 100
    python bench/bench_chain.py --csv ../shared/data/womens_clothing_reviews_dev.csv --days 7
    python bench/bench_chain.py --no-bert                # TF-IDF only (REVIEWFLOW_TRAIN_BERT=0 for both)
    python bench/bench_chain.py --keep                   # keep the temp dir (both lakes, Airflow home, logs)

Two lakes in one temp dir, each filled as `make run` fills its lake (tools.sample_data with the same
arguments: the days ending with the day the latest nightly run is for), with `make run`'s demo BERT
budget (1,000 samples, 1 epoch, unless overridden):

- **floor**: one Python process (a child of this one), no Airflow: the functions the DAG tasks
  call, in the chain's order: per day ingest (crawl, validate per file, curate) and the bias
  report; training once for the last day (dataset; the TF-IDF, BERT and ensemble entry points as
  subprocesses, as the DAG's `local` GPU backend runs them; evaluate and register each; gate;
  promote; finalize); scoring of every unscored day (labels, plan, drift reference, score, drift,
  realised quality); insights per day. Each DAG's `alerts` task too. Timed per task and per stage;
  the floor's total is the child's wall time (interpreter start and imports included).
- **chain**: scripts/start_airflow.sh (timed: start-up) and tools.run_pipeline (timed: the chain's
  wall time) with their own Airflow home and port, always stopped with scripts/stop.sh. Task
  durations from the metadata DB (task_instance), summed per DAG.

Prints per stage the floor's and the chain's seconds (task time summed, and the chain's busy wall:
seconds with one of the stage's tasks running), the ratio chain wall / floor (issue 14's goal:
<= 1.3x on the dev file over 7 days), where the overhead goes (time no task ran, the tasks Airflow
makes slowest, the shortest task as a task's fixed cost), the curated and scored rows of both lakes
(exit 1 when they differ), and the load average (other work on the cores slows both halves).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]  # reviewflow, tools

INGEST, BIAS, TRAIN, SCORE, INSIGHTS = (
    "reviews_ingest", "reviews_bias_report", "sentiment_training", "sentiment_batch_scoring", "review_insights",
)  # fmt: skip
STAGES = {INGEST: "ingest", BIAS: "bias", TRAIN: "training", SCORE: "scoring", INSIGHTS: "insights"}


def days_of(start: str, days: int) -> list[str]:
    return [(date.fromisoformat(start) + timedelta(days=i)).isoformat() for i in range(days)]


# -- the floor (run in a child process) ----------------------------------------------------------


class Clock:
    """Seconds per (dag_id, task_id), summed over calls, with the number of calls."""

    def __init__(self) -> None:
        self.tasks: dict[tuple[str, str], list] = {}

    @contextmanager
    def __call__(self, dag_id: str, task_id: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            seconds, n = self.tasks.get((dag_id, task_id), (0.0, 0))
            self.tasks[(dag_id, task_id)] = [seconds + time.perf_counter() - t, n + 1]


def publish(dag_id: str, by_date: dict) -> None:
    """What each DAG's `alerts` teardown does with its findings (publish_run_alerts, without the XComs)."""
    from reviewflow.alerts.tasks import publish_dates
    from reviewflow.orchestration.runtime import task_env

    env = task_env()
    if by_date := {d: a for d, a in by_date.items() if d}:
        publish_dates(env.lake, env.settings, dag_id, by_date)


def floor(start: str, days: int) -> None:
    """The chain's work in this process, no Airflow; prints the task timings as JSON (last line)."""
    from reviewflow.alerts.tasks import (
        bias_alerts,
        decision_alerts,
        drift_alerts,
        ingest_alerts,
        realised_quality_alerts,
    )
    from reviewflow.bias.dates import unreported_dates
    from reviewflow.bias.tasks import run_bias_report
    from reviewflow.ingest.crawl import crawl_partition
    from reviewflow.ingest.curate import curate_partition
    from reviewflow.ingest.validate import validate_file
    from reviewflow.insights.tasks import publish_product_alerts, run_insights, uninsighted_dates
    from reviewflow.layout import dataset_key, model_prefix
    from reviewflow.orchestration.gpu_training import run_entry_point
    from reviewflow.orchestration.run_date import scoring_dates
    from reviewflow.orchestration.runtime import task_env
    from reviewflow.scoring.drift import champion_reference, drift_report
    from reviewflow.scoring.labels import collect_labels
    from reviewflow.scoring.quality import realised_quality_dates
    from reviewflow.scoring.score import score_partition
    from reviewflow.storage.lake import read_parquet
    from reviewflow.training.dataset import build_dataset
    from reviewflow.training.predictor import load_predictor
    from reviewflow.training.registry import champion, get_version, promote, version_for
    from reviewflow.training.tasks import evaluate_and_register, finalize_decision, run_candidates, run_gate

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")  # as a task logs
    clock, dates, settings = Clock(), days_of(start, days), task_env().settings
    if settings.require_approval:
        raise SystemExit("REVIEWFLOW_REQUIRE_APPROVAL is on: the chain would wait for a human; turn it off")

    for dt in dates:  # reviews_ingest's catchup, each curated day followed by its bias report
        run_id = f"floor__{INGEST}__{dt}"  # curate records it; the alerts task looks for it
        with clock(INGEST, "crawl"):
            env = task_env()
            manifests = crawl_partition(env.lake, env.catalog, dt)
        reports = []
        for manifest in manifests:
            with clock(INGEST, "validate"):
                reports.append(validate_file(task_env().lake, manifest))
        with clock(INGEST, "curate"):
            env = task_env()
            curate_partition(env.lake, env.catalog, dt, reports, run_id)
        with clock(INGEST, "alerts"):
            env = task_env()
            publish(INGEST, {dt: ingest_alerts(env.lake, env.settings, dt, run_id)})

        with clock(BIAS, "report_dates"):  # the event's date, plus any ingested date still unreported
            report_for = sorted({dt} | set(unreported_dates(task_env().lake)))
        for d in report_for:
            with clock(BIAS, "bias_report"):
                env = task_env()
                run_bias_report(d, env.settings, env.lake, env.sql)
        with clock(BIAS, "alerts"):
            env = task_env()
            publish(BIAS, bias_alerts(env.lake, env.settings, report_for))

    last = dates[-1]  # the nightly training and scoring runs are for the last day
    run_id = f"floor__{TRAIN}__{last}"
    with clock(TRAIN, "build_dataset"):
        env = task_env()
        dataset_uri = build_dataset(env.lake, last, env.sql)["dataset_uri"]
        version = version_for(last, run_id)
        outputs = {m: env.lake.uri(model_prefix(m, version)) for m in ("tfidf", "bert", "ensemble")}
    with clock(TRAIN, "train_tfidf"):
        run_entry_point("tfidf", dataset_uri, outputs["tfidf"])
    trained = ["tfidf"]
    if settings.train_bert:  # the DAG's want_bert; its params default to these settings
        bert_params = {"model_name_or_path": settings.bert_model, "max_train_samples": settings.bert_max_train_samples,
                       "max_minutes": settings.bert_max_minutes, "epochs": settings.bert_epochs, "max_length": settings.bert_max_length}  # fmt: skip
        with clock(TRAIN, "train_bert"):
            run_entry_point("bert", dataset_uri, outputs["bert"], bert_params)
        members = ",".join(f"{m}={outputs[m]}" for m in ("tfidf", "bert"))
        with clock(TRAIN, "train_ensemble"):
            run_entry_point("ensemble", dataset_uri, outputs["ensemble"], {"members": members})
        trained += ["bert", "ensemble"]
    for model in trained:
        with clock(TRAIN, f"evaluate_{model}"):
            env = task_env()
            evaluate_and_register(env.lake, model, version, last, run_id, env.settings)
    with clock(TRAIN, "gate"):
        env = task_env(promote_margin=float(settings.promote_margin))  # the DAG passes its param's default
        candidates = run_candidates(env.lake, version)
        decision = run_gate(env.lake, candidates, read_parquet(env.lake, dataset_key(last)), run_id, env.settings)
    promoted = None
    if decision["promote"]:
        with clock(TRAIN, "promote"):
            lake = task_env().lake
            entry = get_version(lake, decision["challenger"]["model_name"], decision["challenger"]["version"])
            promoted = promote(lake, entry, decision, run_id)
    with clock(TRAIN, "finalize"):
        final = finalize_decision(task_env().lake, run_id, decision, promoted, None)
    with clock(TRAIN, "alerts"):
        publish(TRAIN, {last: decision_alerts(task_env().lake, last, run_id, final)})

    with clock(SCORE, "collect_labels"):
        collect_labels(task_env().lake)
    with clock(SCORE, "plan"):  # what the nightly (scheduled) run scores: every unscored curated date
        env = task_env()
        if champion(env.lake) is None:
            raise SystemExit("floor: no champion after training (the chain would skip scoring)")
        to_score = scoring_dates(env.catalog, last, "scheduled", [])
    with clock(SCORE, "drift_reference"):
        lake = task_env().lake
        champion_reference(lake, champion(lake))
    scored, drifts = [], []
    for d in to_score:
        with clock(SCORE, "score"):  # each mapped task loads the champion itself
            env = task_env()
            entry = champion(env.lake)
            threshold = env.settings.review_confidence_threshold
            scored.append(score_partition(env.lake, env.catalog, d, load_predictor(entry), entry, threshold))
    for s in scored:
        with clock(SCORE, "drift"):
            env = task_env()
            report = drift_report(env.lake, s["dt"], env.settings)
            drifts.append({k: report.get(k) for k in ("dt", "model", "alerts", "uri", "skipped", "message")})
    with clock(SCORE, "realised_quality"):
        env = task_env()
        quality = realised_quality_dates(env.lake, env.catalog, [s["dt"] for s in scored], env.settings)
    with clock(SCORE, "model_decay"):
        decayed = [q["dt"] for q in quality if q.get("decay")]
    with clock(SCORE, "alerts"):
        by_date = drift_alerts(drifts)
        for d, found in realised_quality_alerts(quality).items():
            by_date.setdefault(d, []).extend(found)
        publish(SCORE, by_date)

    with clock(INSIGHTS, "insight_dates"):  # one run for every scored date
        env = task_env()
        insight_for = sorted({s["dt"] for s in scored} | set(uninsighted_dates(env.catalog, env.lake)))
    results = []
    for d in insight_for:
        with clock(INSIGHTS, "insights"):
            env = task_env()
            results.append(run_insights(d, env.settings, env.lake, env.catalog, env.sql))
    with clock(INSIGHTS, "alerts"):
        env = task_env()
        publish_product_alerts(env.lake, env.settings, results)

    runs = {INGEST: days, BIAS: days, TRAIN: 1, SCORE: 1, INSIGHTS: 1}
    print(json.dumps({"tasks": [[*k, *v] for k, v in clock.tasks.items()], "runs": runs, "decayed": decayed}))


# -- the driver ----------------------------------------------------------------------------------


def sh(args: list[str], env: dict, log: Path, check: bool = True) -> float:
    """Run ``args`` in the project root after scripts/env.sh (what `make run` runs its commands in); seconds."""
    t = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(args)}\n")
        out.flush()
        code = subprocess.run(["bash", "-c", '. scripts/env.sh && exec "$@"', "bash", *args], cwd=ROOT, env=env,
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode  # fmt: skip
    if code and check:
        print("".join(log.read_text().splitlines(keepends=True)[-40:]), file=sys.stderr)
        raise SystemExit(f"{' '.join(args)} failed (exit {code}; log {log})")
    return time.perf_counter() - t


def fill(lake: Path, home: Path, args, start: str, env: dict, log: Path) -> None:
    """The landing zone `make run` (scripts/run.sh) builds."""
    if args.csv:
        cmd = ["load", "--csv", os.path.abspath(args.csv)]
    else:
        cmd = ["generate", "--rows-per-day", str(args.rows_per_day), "--dirty-share", "0.02",
               "--truth", str(home / "planted_truth.json")]  # fmt: skip
    sh(["python", "-m", "tools.sample_data", *cmd, "--lake", str(lake), "--days", str(args.days), "--start", start],
       env, log)  # fmt: skip


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            if (port := s.getsockname()[1]) != 8080:  # 8080: `make run`'s own Airflow
                return port


def when(value: str | None) -> float | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def task_instances(db: Path) -> tuple[list[dict], dict]:
    """Every task instance that ran (dag_id, task_id, start, end, seconds, operator), and the runs per DAG."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute(
        "SELECT dag_id, task_id, start_date, end_date, duration, operator, try_number FROM task_instance"
    ).fetchall()
    runs = dict(con.execute("SELECT dag_id, count(*) FROM dag_run GROUP BY dag_id").fetchall())
    con.close()
    out = []
    for dag_id, task_id, started, ended, duration, operator, tries in rows:
        a, b = when(started), when(ended)
        if a is None or b is None or not tries:
            continue  # never ran (try 0: skipped by the scheduler after a branch or a short circuit)
        out.append({"dag": dag_id, "task": task_id, "start": a, "end": b,
                    "seconds": duration if duration is not None else b - a, "operator": operator})  # fmt: skip
    return out, runs


def gone(pgid: int | None, timeout: float = 30) -> None:
    """Wait until Airflow's process group has left (stop.sh ends it; its zombies take a moment to be reaped)."""
    deadline = time.monotonic() + timeout
    while pgid and time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(1)
    if pgid:
        print(f"warning: Airflow's process group {pgid} is still there after scripts/stop.sh", file=sys.stderr)


def failed_tasks(home: Path) -> None:
    """Any task instance that failed (or waits for a retry), with the tail of its log: the temp dir goes away."""
    db = home / "airflow.db"
    if not db.exists():
        return
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    query = (
        "SELECT dag_id, run_id, task_id, map_index, state FROM task_instance WHERE state IN ('failed', 'up_for_retry')"
    )
    for dag_id, run_id, task_id, map_index, state in con.execute(query).fetchall():
        folder = home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        folder = folder / f"map_index={map_index}" if map_index >= 0 else folder
        logs = sorted(folder.rglob("attempt=*.log"), key=lambda p: p.stat().st_mtime)
        print(f"chain: {dag_id}.{task_id}[{map_index}] {state}; {logs[-1] if logs else '(no log)'}:", file=sys.stderr)
        if logs:  # the lines with the exception (JSON lines carry it as error_detail), else the tail
            lines = logs[-1].read_text(errors="replace").splitlines()
            print("\n".join([line for line in lines if "error_detail" in line] or lines[-15:]), file=sys.stderr)
    con.close()


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Seconds in which at least one of ``intervals`` was open (tasks run up to 3 at a time)."""
    total, reach = 0.0, None
    for a, b in sorted(intervals):
        if reach is None or a > reach:
            total, reach = total + b - a, b
        elif b > reach:
            total, reach = total + b - reach, b
    return total


def rows_per_date(lake: Path, zone: str) -> dict[str, int]:
    import pyarrow.parquet as pq

    out: dict[str, int] = {}
    for part in sorted(lake.glob(f"{zone}/dt=*/*.parquet")):
        dt = part.parent.name.removeprefix("dt=")
        out[dt] = out.get(dt, 0) + pq.ParquetFile(part).metadata.num_rows
    return out


def champion_name(lake: Path) -> str:
    path = lake / "models" / "champion.json"
    return json.loads(path.read_text())["model_name"] if path.exists() else "(none)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", help="a CSV in the Kaggle schema, spread over the days (default: generated rows)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rows-per-day", type=int, default=2000, help="generated rows per day (without --csv)")
    parser.add_argument(
        "--bert-max-train-samples", type=int, help="default: $REVIEWFLOW_BERT_MAX_TRAIN_SAMPLES or 1000"
    )
    parser.add_argument("--bert-epochs", type=int, help="default: $REVIEWFLOW_BERT_EPOCHS or 1")
    parser.add_argument("--no-bert", action="store_true", help="REVIEWFLOW_TRAIN_BERT=0 for both halves")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (lakes, Airflow home, logs)")
    parser.add_argument("--child-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_floor:
        return floor(args.start, args.days)

    from reviewflow import layout

    bench_started, load_start = time.perf_counter(), os.getloadavg()
    # run.sh's START: DAYS days ending with the day the latest nightly run (03:00 UTC scoring) is for
    start = ((datetime.now(UTC) - timedelta(hours=3)).date() - timedelta(days=args.days)).isoformat()
    budget = {
        "REVIEWFLOW_BERT_MAX_TRAIN_SAMPLES": str(args.bert_max_train_samples or os.environ.get("REVIEWFLOW_BERT_MAX_TRAIN_SAMPLES") or 1000),
        "REVIEWFLOW_BERT_EPOCHS": str(args.bert_epochs or os.environ.get("REVIEWFLOW_BERT_EPOCHS") or 1),
    }  # fmt: skip
    if args.no_bert:
        budget["REVIEWFLOW_TRAIN_BERT"] = "0"
    tmp = Path(tempfile.mkdtemp(prefix="bench-chain-"))
    data = args.csv or f"generated, {args.rows_per_day} rows a day"
    samples, epochs = budget["REVIEWFLOW_BERT_MAX_TRAIN_SAMPLES"], budget["REVIEWFLOW_BERT_EPOCHS"]
    print(f"data: {data}; {args.days} days from {start}; BERT: "
          f"{'off' if args.no_bert else f'{samples} samples x {epochs} epoch(s)'}; "
          f"cores {len(os.sched_getaffinity(0))}, load average at start {load_start[0]:.2f} / {load_start[1]:.2f} / "
          f"{load_start[2]:.2f}; temp dir {tmp}", flush=True)  # fmt: skip
    try:
        halves = {}
        for half in ("floor", "chain"):
            lake, home = tmp / half / "lake", tmp / half / "airflow_home"
            home.mkdir(parents=True)
            # each half exports BERT's ONNX files into its own cache (cold, as on a fresh host; removed with tmp)
            env = {**os.environ, **budget, "AIRFLOW_HOME": str(home), "REVIEWFLOW_LAKE": str(lake),
                   "REVIEWFLOW_START_DATE": start, "REVIEWFLOW_ONNX_CACHE": str(tmp / half / "onnx")}  # fmt: skip
            halves[half] = (lake, home, env, tmp / half / f"{half}.log")
            fill(lake, home, args, start, env, halves[half][3])

        lake, home, env, log = halves["floor"]
        print("floor: running (no Airflow, one process) ...", flush=True)
        t = time.perf_counter()
        with (tmp / "floor" / "floor.json").open("w") as out, log.open("a") as err:
            code = subprocess.run(["bash", "-c", '. scripts/env.sh && exec "$@"', "bash", "python", str(Path(__file__).resolve()),
                                   "--child-floor", "--start", start, "--days", str(args.days)],
                                  cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL).returncode  # fmt: skip
        floor_wall = time.perf_counter() - t
        if code:
            print("".join(log.read_text().splitlines(keepends=True)[-40:]), file=sys.stderr)
            raise SystemExit(f"floor failed (exit {code}; log {log})")
        result = json.loads((tmp / "floor" / "floor.json").read_text().strip().splitlines()[-1])
        floor_tasks = {(d, k): (s, n) for d, k, s, n in result["tasks"]}
        print(f"floor: {floor_wall:.0f}s", flush=True)

        lake, home, env, log = halves["chain"]
        port = free_port()
        env = {**env, "AIRFLOW_PORT": str(port)}
        (home / "start_date").write_text(start + "\n")
        print(f"chain: starting Airflow on 127.0.0.1:{port} ...", flush=True)
        try:
            startup = sh(["bash", "scripts/start_airflow.sh"], env, log)
            print(f"chain: Airflow up in {startup:.0f}s; running tools.run_pipeline ...", flush=True)
            chain_wall = sh(
                ["python", "-m", "tools.run_pipeline", "--days", str(args.days), "--start", start], env, log
            )
            chain_end = time.time()
        finally:
            pgid_file = home / "standalone.pgid"
            pgid = int(pgid_file.read_text()) if pgid_file.exists() else None
            sh(["bash", "scripts/stop.sh"], env, log, check=False)
            gone(pgid)
            failed_tasks(home)
        instances, chain_runs = task_instances(home / "airflow.db")
        print(f"chain: {chain_wall:.0f}s (Airflow stopped)", flush=True)

        # -- the figures
        chain_tasks: dict[tuple[str, str], list] = {}
        for ti in instances:
            entry = chain_tasks.setdefault((ti["dag"], ti["task"]), [0.0, 0])
            entry[0] += ti["seconds"]
            entry[1] += 1
        floor_total = sum(s for s, _ in floor_tasks.values())
        chain_total = sum(ti["seconds"] for ti in instances)
        print(f"\n=== bench_chain ({args.days} days; {data}) ===")
        print(
            f"{'stage':<22}{'floor s':>9}{'chain s':>9}{'x floor':>9}{'runs floor/chain':>18}{'tasks floor/chain':>19}"
            f"{'chain busy s':>14}"
        )
        for dag_id, stage in STAGES.items():
            f = sum(s for (d, _), (s, _) in floor_tasks.items() if d == dag_id)
            c = sum(s for (d, _), (s, _) in chain_tasks.items() if d == dag_id)
            fn = sum(n for (d, _), (_, n) in floor_tasks.items() if d == dag_id)
            cn = sum(n for (d, _), (_, n) in chain_tasks.items() if d == dag_id)
            runs = f"{result['runs'][dag_id]}/{chain_runs.get(dag_id, 0)}"
            busy = busy_seconds([(ti["start"], ti["end"]) for ti in instances if ti["dag"] == dag_id])
            print(f"{stage:<22}{f:>9.1f}{c:>9.1f}{c / f if f else float('nan'):>9.2f}{runs:>18}{f'{fn}/{cn}':>19}"
                  f"{busy:>14.1f}")  # fmt: skip
        print(f"{'sum of tasks':<22}{floor_total:>9.1f}{chain_total:>9.1f}{chain_total / floor_total:>9.2f}")
        print(f"{'floor process (wall)':<22}{floor_wall:>9.1f}   (+{floor_wall - floor_total:.1f}s over its tasks: "
              "interpreter start and the imports, once)")  # fmt: skip
        print(f"{'chain wall':<22}{'':>9}{chain_wall:>9.1f}{chain_wall / floor_wall:>9.2f}   (tools.run_pipeline)")
        print(f"{'chain start-up':<22}{'':>9}{startup:>9.1f}   (scripts/start_airflow.sh)")
        print(f"ratio chain wall / floor: {chain_wall / floor_wall:.2f}x; with start-up: "
              f"{(chain_wall + startup) / floor_wall:.2f}x (issue 14's goal: <= 1.3x on the dev file over 7 days)")  # fmt: skip

        print("\nwhere the overhead is:")
        busy = busy_seconds([(ti["start"], ti["end"]) for ti in instances])
        pipeline_start = chain_end - chain_wall
        first = min((ti["start"] for ti in instances), default=pipeline_start)
        print(f"  chain wall {chain_wall:.1f}s = {busy:.1f}s with a task running + {chain_wall - busy:.1f}s with none "
              f"(scheduling gaps, task process start-up and DAG parsing, the driver's polling; "
              f"{first - pipeline_start:.1f}s before the first task started)")  # fmt: skip
        trainings = {
            ti["task"]: ti for ti in instances if ti["dag"] == TRAIN and ti["task"] in ("train_tfidf", "train_bert")
        }
        if len(trainings) == 2:  # REVIEWFLOW_TRAIN_IN_TURN: BERT starts when TF-IDF is done
            gap = trainings["train_bert"]["start"] - trainings["train_tfidf"]["end"]
            print(f"  train_bert started {gap:.1f}s after train_tfidf ended" if gap >= 0 else
                  f"  train_bert ran beside train_tfidf for {-gap:.1f}s")  # fmt: skip
        print(f"  task time {chain_total:.1f}s in {len(instances)} task instances vs the floor's {floor_total:.1f}s "
              f"in {sum(n for _, n in floor_tasks.values())} calls")  # fmt: skip
        excess = sorted(((c[0] - floor_tasks.get(k, (0.0, 0))[0], k, c) for k, c in chain_tasks.items()), reverse=True)[
            :5
        ]
        print(
            f"  the 5 tasks Airflow makes slowest:{'':<10}{'chain s':>8}{'n':>4}{'floor s':>9}{'n':>4}{'excess s':>10}"
        )
        for extra, (dag_id, task_id), (seconds, n) in excess:
            fs, fn = floor_tasks.get((dag_id, task_id), (0.0, 0))
            print(f"    {dag_id + '.' + task_id:<42}{seconds:>8.1f}{n:>4}{fs:>9.1f}{fn:>4}{extra:>10.1f}")
        worked = [ti for ti in instances if ti["operator"] != "EmptyOperator" and ti["seconds"] > 0]
        if worked:
            least = min(worked, key=lambda ti: ti["seconds"])
            print(f"  shortest task: {least['dag']}.{least['task']} {least['seconds']:.2f}s: about a task's fixed cost "
                  f"inside its duration; x {len(worked)} task instances = {least['seconds'] * len(worked):.1f}s")  # fmt: skip
        if result["decayed"]:
            print(f"  note: realised quality decayed on {result['decayed']}: the chain may have retrained on it")

        # -- the same work?
        counts = {half: (rows_per_date(halves[half][0], layout.CURATED), rows_per_date(halves[half][0], layout.PREDICTIONS))
                  for half in halves}  # fmt: skip
        print(f"\n{'date':<12}{'curated floor':>14}{'chain':>8}{'scored floor':>14}{'chain':>8}")
        for dt in sorted(set().union(*(c for pair in counts.values() for c in pair))):
            print(f"{dt:<12}{counts['floor'][0].get(dt, 0):>14}{counts['chain'][0].get(dt, 0):>8}"
                  f"{counts['floor'][1].get(dt, 0):>14}{counts['chain'][1].get(dt, 0):>8}")  # fmt: skip
        print(f"champion: floor {champion_name(halves['floor'][0])}, chain {champion_name(halves['chain'][0])}")
        load_end = os.getloadavg()
        print(f"load average at end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f}; "
              f"bench wall {time.perf_counter() - bench_started:.0f}s")  # fmt: skip
        if counts["floor"] != counts["chain"] or not counts["floor"][0] or not counts["floor"][1]:
            raise SystemExit("the two halves did not do the same work: curated or scored rows differ (or are none)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
