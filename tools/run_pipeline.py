"""Drive the whole chain through the running Airflow (REST API), then print a summary.

Called by `make run` after scripts/start_airflow.sh. The scheduler does the work, and every run
shows in the UI:
1. `reviews_ingest` is unpaused and catches up over the sample's dates (earlier runs of those
   dates are cleared and rerun);
2. `reviews_bias_report` follows the curated-reviews asset: one report per date;
3. `sentiment_training` is unpaused: its latest nightly run trains, evaluates and gates;
4. `sentiment_batch_scoring` is unpaused: its latest nightly run scores every unscored partition,
   then any run the `curated_reviews` / `champion_model` assets started is waited for;
5. `review_insights` follows the predictions asset: product-issue alerts and trends per date.
A second `make run` clears and reruns 3 and 4 (the nightly runs already exist). By then scoring is
unpaused, so the reingested dates' curated events rescore them as ingest goes (asset-triggered
runs); the cleared nightly run only fills gaps, and insights are triggered for dates it left alone.
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


def wait_for_reports(
    api: AirflowAPI, dag_id: str, report_key, dates: set[str], since: datetime, timeout: float = 1800
) -> None:
    """The asset-triggered runs of ``dag_id``: wait until each date has a report written after `since`.

    A date whose asset event Airflow has not consumed yet (see bias.unreported_dates) is
    reported by a run triggered with `dt` once no run of the DAG is queued or running.
    """
    lake = get_lake(get_settings().lake)
    deadline, triggered = time.monotonic() + timeout, set()
    # No trigger by hand in the first 10 s: the last upstream run's event may not have reached the
    # scheduler yet (it would look like an event Airflow dropped and start a second run).
    grace = time.monotonic() + 10
    while True:
        fresh = {
            dt for dt in dates
            if lake.exists(report_key(dt))
            and datetime.fromisoformat(read_json(lake, report_key(dt))["generated_at"]) >= since
        }  # fmt: skip
        if fresh == dates:
            print(f"{dag_id}: {len(dates)} reports written")
            return
        runs = [r for r in api.runs(dag_id) if (r.get("queued_at") or "") >= since.isoformat()]
        if failed := [r["dag_run_id"] for r in runs if r["state"] == "failed"]:
            raise RuntimeError(f"{dag_id}: run(s) failed: {failed} (task logs in the UI)")
        active = api.queued_asset_events(dag_id) or [r for r in runs if r["state"] in ("queued", "running")]
        for dt in sorted(dates - fresh - triggered) if not active and time.monotonic() > grace else []:
            api.trigger(dag_id, conf={"dt": dt})
            triggered.add(dt)
            print(f"{dag_id}: triggered for {dt} (its asset event is still queued in Airflow)")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dag_id}: no fresh report for {sorted(dates - fresh)} in {timeout}s")
        time.sleep(api.poll_seconds)


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
            time.sleep(api.poll_seconds)
        run_id = runs[0]["dag_run_id"]
    else:
        # the latest nightly run (asset-triggered runs have no logical date)
        run_id = max((r for r in api.runs(dag_id) if r["logical_date"]), key=lambda r: r["logical_date"])["dag_run_id"]
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
        ("insights reports (product issues, trends)", layout.INSIGHTS_REPORTS),
        ("alerts (every kind, one JSON line each)", layout.ALERTS),
    ]:
        if lake.list(f"{zone}/"):
            print(f"  {label:<44} {lake.uri(zone + '/')}")
    product_alerts_headline(lake, last)
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


def product_alerts_headline(lake, dt: str, top: int = 5) -> None:
    """The summary's last word: today's product alerts, with their complaint terms, and where the report is."""
    key, html = layout.insights_report_keys(dt)
    if not lake.exists(key):
        print(f"\nToday's product alerts ({dt}): no insights report yet")
        return
    report = read_json(lake, key)
    alerts = report["alerts"]
    print(f"\nToday's product alerts ({dt}): {len(alerts)} ({report['tested']} products/classes/departments "
          f"tested, {report['skipped']} skipped for too few reviews)")  # fmt: skip
    for a in alerts[:top]:
        print(f"  - {a['label']}: {a['negative_share']:.0%} negative vs {a['baseline_negative_share']:.0%} baseline "
              f"(q={a['q_value']:.2g}); complaints: {', '.join(a['terms'][:5]) or '(no term stands out)'}")  # fmt: skip
    if len(alerts) > top:
        print(f"  ... and {len(alerts) - top} more")
    print(f"  insights report: {lake.uri(html)}")
    planted_check(lake, Path(os.environ["AIRFLOW_HOME"]) / "planted_truth.json")


def planted_check(lake, truth_path: Path) -> None:
    """Ground truth of the demo: the incidents the generator planted, and the dates the insights flagged them."""
    if not truth_path.exists():
        return
    for incident in json.loads(truth_path.read_text()).get("incidents") or []:
        product = str(incident["clothing_id"])
        flagged = [
            dt for dt in incident["dates"]
            if lake.exists(layout.insights_report_keys(dt)[0])
            and any(a["level"] == "product" and a["key"] == product
                    for a in read_json(lake, layout.insights_report_keys(dt)[0])["alerts"])
        ]  # fmt: skip
        print(f"  planted (ground truth): product {product} ({incident['class_name']}, '{incident['complaint']}') on "
              f"{', '.join(incident['dates'])}; flagged on {len(flagged)} of {len(incident['dates'])} day(s)")  # fmt: skip


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
    for dag_id in ("reviews_bias_report", "review_insights"):
        api.wait_for_dag(dag_id)
        api.set_paused(dag_id, False)
    ingest(api, start, args.days)
    wait_for_reports(api, "reviews_bias_report", lambda dt: layout.bias_report_keys(dt)[0], dates, started)
    run_nightly(api, "sentiment_training")
    scored = datetime.now(UTC).replace(microsecond=0)
    run_nightly(api, "sentiment_batch_scoring")
    # runs the assets started (new curated data, a new champion) finish before insights are awaited
    api.wait_idle("sentiment_batch_scoring", since=scored.isoformat())
    wait_for_reports(api, "review_insights", lambda dt: layout.insights_report_keys(dt)[0], dates, scored)
    summary(start, args.days, base_url)
    Path(os.environ["AIRFLOW_HOME"], "last_run.json").write_text(json.dumps({"start": args.start, "days": args.days}))


if __name__ == "__main__":
    main()
