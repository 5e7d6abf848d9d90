"""Drive the whole chain through the running Airflow (REST API), then print a summary.

Called by `make run` after scripts/start_airflow.sh. The scheduler does the work, and every run
shows in the UI:
1. `reviews_ingest` is unpaused and catches up over the sample's dates (earlier runs of those
   dates are cleared and rerun);
2. `reviews_bias_report` follows the curated-reviews asset: one report per date;
3. `sentiment_training` is unpaused: its latest nightly run trains, evaluates and gates;
4. `sentiment_batch_scoring` is unpaused: its latest nightly run scores every unscored partition.
A second `make run` clears and reruns 3 and 4 (the nightly runs already exist).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from reviewflow import layout
from reviewflow.config import get_settings
from reviewflow.storage.lake import get_lake, read_json, read_parquet
from tools.airflow_api import AirflowAPI


def ingest(api: AirflowAPI, start: date, days: int) -> None:
    dates = {(start + timedelta(days=i)).isoformat() for i in range(days)}
    api.wait_for_dag("reviews_ingest")
    done = {(r["logical_date"] or "")[:10]: r["dag_run_id"] for r in api.runs("reviews_ingest")}
    rerun = sorted(dates & set(done))
    since = datetime.now(UTC).isoformat()
    # Dates an earlier `make run` ingested are rerun (the UI's Clear) so new landing files count;
    # the others are the scheduler's catchup. (Not a backfill: Airflow refuses those on SQLite
    # while the scheduler writes.)
    for dt in rerun:
        api.clear_run("reviews_ingest", done[dt])
    print(f"reviews_ingest: unpaused; {len(dates) - len(rerun)} new day(s) caught up, {len(rerun)} rerun, from {start}")
    api.set_paused("reviews_ingest", False)
    api.wait_for_dates("reviews_ingest", dates, since=since)


def wait_for_bias_reports(api: AirflowAPI, dates: set[str], since: datetime, timeout: float = 1800) -> None:
    """The asset-triggered bias runs: wait until each date has a report written after `since`.

    A date whose asset event Airflow has not consumed yet (see bias.unreported_dates) is
    reported by a run triggered with `dt` once no bias run is queued or running.
    """
    lake = get_lake(get_settings().lake)
    deadline, triggered = time.monotonic() + timeout, set()
    time.sleep(10)  # let the last ingest run's event reach the scheduler
    while True:
        fresh = {
            dt for dt in dates
            if lake.exists(layout.bias_report_keys(dt)[0])
            and datetime.fromisoformat(read_json(lake, layout.bias_report_keys(dt)[0])["generated_at"]) >= since
        }  # fmt: skip
        if fresh == dates:
            print(f"reviews_bias_report: {len(dates)} reports written")
            return
        runs = [r for r in api.runs("reviews_bias_report") if (r.get("queued_at") or "") >= since.isoformat()]
        if failed := [r["dag_run_id"] for r in runs if r["state"] == "failed"]:
            raise RuntimeError(f"reviews_bias_report: run(s) failed: {failed} (task logs in the UI)")
        active = api.queued_asset_events("reviews_bias_report") or [
            r for r in runs if r["state"] in ("queued", "running")
        ]
        for dt in sorted(dates - fresh - triggered) if not active else []:
            api.trigger("reviews_bias_report", conf={"dt": dt})
            triggered.add(dt)
            print(f"reviews_bias_report: triggered for {dt} (its asset event is still queued in Airflow)")
        if time.monotonic() > deadline:
            raise TimeoutError(f"reviews_bias_report: no fresh report for {sorted(dates - fresh)} in {timeout}s")
        time.sleep(5)


def run_nightly(api: AirflowAPI, dag_id: str) -> dict:
    """Unpause a nightly DAG and wait for its latest scheduled run (cleared and rerun if it already ran)."""
    api.wait_for_dag(dag_id)
    dag = api.get(f"/api/v2/dags/{dag_id}")
    due = dag.get("next_dagrun_run_after")
    api.set_paused(dag_id, False)
    if due and datetime.fromisoformat(due) <= datetime.now(UTC):
        # catchup=False: the scheduler creates exactly this run once the DAG is unpaused
        logical = datetime.fromisoformat(dag["next_dagrun_logical_date"])
        deadline = time.monotonic() + 300
        while not (runs := [r for r in api.runs(dag_id) if datetime.fromisoformat(r["logical_date"]) == logical]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id}: the scheduler created no run for {logical}")
            time.sleep(3)
        run_id = runs[0]["dag_run_id"]
    else:
        run_id = max(api.runs(dag_id), key=lambda r: r["logical_date"])["dag_run_id"]
        api.clear_run(dag_id, run_id)
    print(f"{dag_id}: run {run_id} started")
    run = api.wait_for_run(dag_id, run_id)
    print(f"{dag_id}: run {run_id} succeeded")
    return run


def summary(start: date, days: int, base_url: str) -> None:
    settings = get_settings()
    lake = get_lake(settings.lake)
    print("\n=== reviewflow summary ===")
    print(f"{'date':<12}{'rows in':>10}{'curated':>10}{'quarantined':>13}  files quarantined")
    totals = [0, 0, 0]
    for i in range(days):
        dt = (start + timedelta(days=i)).isoformat()
        key = layout.ingest_report_key(dt)
        if not lake.exists(key):
            print(f"{dt:<12}{'(no ingest report)':>33}")
            continue
        r = read_json(lake, key)
        totals = [t + r[k] for t, k in zip(totals, ("rows_in", "rows_curated", "rows_quarantined"), strict=True)]
        print(f"{dt:<12}{r['rows_in']:>10}{r['rows_curated']:>10}{r['rows_quarantined']:>13}  {r['files_quarantined']}")
    print(f"{'total':<12}{totals[0]:>10}{totals[1]:>10}{totals[2]:>13}")
    last = (start + timedelta(days=days - 1)).isoformat()
    bias_headline(lake, last)
    champion_headline(lake)
    print(
        f"\n{'date':<12}{'predictions':>12}{'negative':>10}{'neutral':>9}{'positive':>10}{'to review':>11}  drift alerts"
    )
    for i in range(days):
        dt = (start + timedelta(days=i)).isoformat()
        print(prediction_line(lake, dt))
    print(f"\nWhere things are (lake: {settings.lake})")
    for label, zone in [
        ("curated parquet", layout.CURATED),
        ("quarantine (rows and files, with reasons)", layout.QUARANTINE),
        ("GX Data Docs", layout.QUALITY_REPORTS),
        ("ingest reports (accounting)", layout.INGEST_REPORTS),
        ("bias reports", layout.BIAS_REPORTS),
        ("model reports", layout.MODEL_REPORTS),
        ("predictions", layout.PREDICTIONS),
        ("drift reports", layout.DRIFT_REPORTS),
    ]:
        if lake.list(f"{zone}/"):
            print(f"  {label:<44} {lake.uri(zone + '/')}")
    home = os.environ["AIRFLOW_HOME"]
    print(f"\nAirflow UI: {base_url}  (user admin; password: "
          f"python -c \"import json;print(json.load(open('{home}/simple_auth_manager_passwords.json.generated'))['admin'])\")")  # fmt: skip
    print("Stop it with: make stop")


def bias_headline(lake, dt: str) -> None:
    key = layout.bias_report_keys(dt)[0]
    if not lake.exists(key):
        print("\nBias: no report yet")
        return
    report = read_json(lake, key)
    overall = report["label_distribution"]["cumulative"]["overall"]
    shares = ", ".join(f"{k}: {v:.1%}" for k, v in overall["shares"].items())
    ratio = overall["imbalance_ratio"]
    ratio = f"{ratio:.2f}" if ratio is not None else f"undefined ({overall.get('reason')})"
    print(f"\nBias (all curated reviews up to {dt}): labels {shares}; imbalance ratio {ratio}")
    alerts = [a for a in report["alerts"] if a["scope"] == "cumulative"]
    print(f"  {len(alerts)} alert(s) past the DPL/CI thresholds; the largest:")
    for alert in alerts[:3]:
        print(f"  - {alert['message']}")


def champion_headline(lake) -> None:
    from reviewflow.training.registry import champion, decisions

    alias = champion(lake)
    if alias is None:
        print("\nModel: no champion (training refused every candidate)")
        return
    metrics = alias["metrics"]
    print(f"\nChampion: {alias['model_name']} {alias['version']} (test macro-F1 {metrics['test_macro_f1']:.4f}, "
          f"accuracy {metrics['test_accuracy']:.4f})")  # fmt: skip
    last = decisions(lake)[-1] if decisions(lake) else None
    if last:
        print(f"  last decision: {last['status']}: " + "; ".join(last.get("reasons", [])[:3]))


def prediction_line(lake, dt: str) -> str:
    key = layout.predictions_key(dt)
    if not lake.exists(key):
        return f"{dt:<12}{'(not scored)':>12}"
    pred = read_parquet(lake, key)
    shares = pred["sentiment_pred"].value_counts(normalize=True)
    queue = layout.review_queue_key(dt)
    queued = len(pd.read_csv(io.BytesIO(lake.read_bytes(queue)))) if lake.exists(queue) else 0
    drift = layout.drift_report_keys(dt)[0]
    alerts = ", ".join(a["check"] for a in read_json(lake, drift)["alerts"]) if lake.exists(drift) else "(no report)"
    return (f"{dt:<12}{len(pred):>12}{shares.get(-1, 0):>10.1%}{shares.get(0, 0):>9.1%}{shares.get(1, 0):>10.1%}"
            f"{queued:>11}  {alerts or 'none'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--start", required=True)
    args = parser.parse_args()
    start = date.fromisoformat(args.start)
    base_url = f"http://127.0.0.1:{os.environ.get('AIRFLOW__API__PORT', '8080')}"
    api = AirflowAPI.for_standalone(os.environ["AIRFLOW_HOME"], base_url)
    started = datetime.now(UTC).replace(microsecond=0)
    dates = {(start + timedelta(days=i)).isoformat() for i in range(args.days)}
    # Unpaused first: asset events only queue runs of DAGs that are not paused.
    api.wait_for_dag("reviews_bias_report")
    api.set_paused("reviews_bias_report", False)
    ingest(api, start, args.days)
    wait_for_bias_reports(api, dates, started)
    run_nightly(api, "sentiment_training")
    run_nightly(api, "sentiment_batch_scoring")
    summary(start, args.days, base_url)
    Path(os.environ["AIRFLOW_HOME"], "last_run.json").write_text(json.dumps({"start": args.start, "days": args.days}))


if __name__ == "__main__":
    main()
