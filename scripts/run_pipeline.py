"""Drive the pipeline through the running Airflow (REST API), then print a summary.

Called by `make run` after scripts/start_airflow.sh. The scheduler does the work: unpausing
`reviews_ingest` makes it catch up over the sample's dates (a backfill reprocesses them when
they already ran); downstream DAGs follow their assets.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from reviewflow.airflow_api import AirflowAPI
from reviewflow.config import get_settings
from reviewflow.lake import get_lake, read_json


def ingest(api: AirflowAPI, start: date, days: int) -> None:
    dates = {(start + timedelta(days=i)).isoformat() for i in range(days)}
    api.wait_for_dag("reviews_ingest")
    already = {(r["logical_date"] or "")[:10] for r in api.runs("reviews_ingest") if r["state"] == "success"}
    since = None
    if dates <= already:
        # Same dates as an earlier `make run`: reprocess them so new landing files count.
        since = datetime.now(UTC).isoformat()
        api.backfill("reviews_ingest", start.isoformat(), (start + timedelta(days=days - 1)).isoformat())
        print(f"reviews_ingest: backfill of {days} days from {start} created")
    else:
        print(f"reviews_ingest: unpaused, the scheduler catches up {days} days from {start}")
    api.set_paused("reviews_ingest", False)
    api.wait_for_dates("reviews_ingest", dates, since=since)


def summary(start: date, days: int, base_url: str) -> None:
    settings = get_settings()
    lake = get_lake(settings.lake)
    print("\n=== reviewflow summary ===")
    print(f"{'date':<12}{'rows in':>10}{'curated':>10}{'quarantined':>13}  files quarantined")
    totals = [0, 0, 0]
    for i in range(days):
        dt = (start + timedelta(days=i)).isoformat()
        key = f"reports/ingest/dt={dt}/ingest_report.json"
        if not lake.exists(key):
            print(f"{dt:<12}{'(no ingest report)':>33}")
            continue
        r = read_json(lake, key)
        totals = [t + r[k] for t, k in zip(totals, ("rows_in", "rows_curated", "rows_quarantined"), strict=True)]
        print(f"{dt:<12}{r['rows_in']:>10}{r['rows_curated']:>10}{r['rows_quarantined']:>13}  {r['files_quarantined']}")
    print(f"{'total':<12}{totals[0]:>10}{totals[1]:>10}{totals[2]:>13}")
    print(f"\nWhere things are (lake: {settings.lake})")
    for label, key in [
        ("curated parquet", "curated/reviews/"),
        ("quarantine (rows and files, with reasons)", "quarantine/reviews/"),
        ("GX Data Docs", "reports/quality/"),
        ("ingest reports (accounting)", "reports/ingest/"),
        ("bias reports", "reports/bias/"),
        ("model reports", "reports/models/"),
        ("predictions", "predictions/"),
        ("drift reports", "reports/drift/"),
    ]:
        if lake.list(key):
            print(f"  {label:<44} {lake.uri(key)}")
    home = os.environ["AIRFLOW_HOME"]
    print(f"\nAirflow UI: {base_url}  (user admin; password: "
          f"python -c \"import json;print(json.load(open('{home}/simple_auth_manager_passwords.json.generated'))['admin'])\")")  # fmt: skip
    print("Stop it with: make stop")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--start", required=True)
    args = parser.parse_args()
    start = date.fromisoformat(args.start)
    base_url = f"http://127.0.0.1:{os.environ.get('AIRFLOW__API__PORT', '8080')}"
    api = AirflowAPI.for_standalone(os.environ["AIRFLOW_HOME"], base_url)
    ingest(api, start, args.days)
    summary(start, args.days, base_url)
    Path(os.environ["AIRFLOW_HOME"], "last_run.json").write_text(json.dumps({"start": args.start, "days": args.days}))


if __name__ == "__main__":
    main()
