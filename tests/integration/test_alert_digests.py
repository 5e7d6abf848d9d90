"""Alerts end to end in fresh processes (`airflow dags test`), with a real SMTP server receiving the digests.

1. A task that fails for good (an impossible report date) sends its own task-failure digest and
   leaves a ``task_failure`` record in alerts.jsonl; the DAG's final ``alerts`` task (a teardown)
   still runs, and the run stays failed.
2. A clean run of the same DAG sends exactly one digest for all its bias alerts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from alert_servers import smtp_connection, smtp_server
from fresh_process import airflow_dags_test

from reviewflow.alerts.store import merged_key
from reviewflow.contract import CURATED_COLUMNS
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.lake import LocalLake

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # two DAG runs in fresh processes (~40 s)
DT = "2024-01-03"
DAG = "reviews_bias_report"


@pytest.fixture
def smtp_inbox(monkeypatch):
    """A plain SMTP server on 127.0.0.1 and the settings + connection that point the notifier at it."""
    with smtp_server() as (port, inbox):
        monkeypatch.setenv("AIRFLOW_CONN_REVIEWFLOW_SMTP", smtp_connection(port))
        monkeypatch.setenv("REVIEWFLOW_NOTIFIER", "smtp")
        monkeypatch.setenv("REVIEWFLOW_NOTIFIER_CONN_ID", "reviewflow_smtp")
        monkeypatch.setenv("REVIEWFLOW_NOTIFIER_TO", "ops@example.com")
        yield Messages(inbox)


class Messages:
    """The inbox's parsed messages (what the tests read)."""

    def __init__(self, inbox):
        self.inbox = inbox

    @property
    def messages(self):
        return [message for _, _, message in self.inbox.messages]


def write_curated(root: str) -> None:
    """Eight curated reviews on DT, registered in the local catalog (two departments, skewed sentiment)."""
    rows = [("Tops", "Knits", "General", 30, 1)] * 5 + [("Dresses", "Dresses", "General", 40, -1)] * 3
    frame = pd.DataFrame(rows, columns=["department_name", "class_name", "division_name", "age", "sentiment"])
    frame["review_id"] = [f"r{i}" for i in range(len(frame))]
    frame["source_row_id"] = range(len(frame))
    frame["clothing_id"] = 1
    frame["title"], frame["review_text"] = "t", "text"
    frame["rating"] = frame["sentiment"].map({-1: 1, 0: 3, 1: 5})
    frame["recommended_ind"] = (frame["sentiment"] > 0).astype(int)
    frame["positive_feedback_count"] = 0
    frame["source_file"], frame["ingest_run"] = "fixture.csv", "test"
    folder = Path(root) / "curated" / "reviews" / f"dt={DT}"
    folder.mkdir(parents=True)
    frame[CURATED_COLUMNS].to_parquet(folder / "part-0.parquet", index=False)
    ints = ("source_row_id", "clothing_id", "age", "rating", "recommended_ind", "positive_feedback_count", "sentiment")
    columns = {c: "BIGINT" if c in ints else "VARCHAR" for c in CURATED_COLUMNS}
    catalog = DuckDBCatalog(root)
    catalog.register_table("curated_reviews", f"{root}/curated/reviews", {**columns, "dt": "VARCHAR"}, "parquet")
    catalog.register_partition("curated_reviews", DT)


def records(lake: LocalLake) -> list[dict]:
    return [json.loads(line) for line in lake.read_bytes(merged_key(DT)).decode().splitlines()]


def test_a_failed_task_and_a_clean_run_each_send_one_digest(airflow_db, lake_root, smtp_inbox):
    lake = LocalLake(lake_root)
    # 1. dt=2025-02-30 fails report_dates at once (no retry): its failure callback mails one digest.
    failed = airflow_dags_test(DAG, DT, conf={"dt": "2025-02-30"})
    assert failed.state == "failed", failed.tail()
    states = failed.task_states()
    assert states[("report_dates", -1)][0] == "failed"
    assert states[("alerts", -1)][0] == "success", states  # the teardown ran, and did not make the run a success
    assert len(smtp_inbox.messages) == 1, [m["Subject"] for m in smtp_inbox.messages]
    mail = smtp_inbox.messages[0]
    assert mail["Subject"] == f"reviewflow: 1 alert for {DT} from task_failures_{DAG}_report_dates"
    body = mail.get_body(preferencelist=("html",)).get_content()
    assert f"{DAG}.report_dates failed" in body and "2025-02-30" in body and "/dags/reviews_bias_report/runs/" in body
    (failure,) = records(lake)
    assert failure["kind"] == "task_failure" and failure["severity"] == "critical"
    assert failure["source"] == f"task_failures_{DAG}_report_dates" and "AirflowFailException" in failure["title"]

    # 2. A clean run with data: its bias alerts go out as one digest, beside the earlier failure.
    write_curated(lake_root)
    clean = airflow_dags_test(
        DAG, DT, env={"REVIEWFLOW_BIAS_ALERT_MIN_ROWS": "0", "REVIEWFLOW_BIAS_DPL_THRESHOLD": "0.3"}
    )
    assert clean.ok, clean.tail()
    assert len(smtp_inbox.messages) == 2, [m["Subject"] for m in smtp_inbox.messages]
    digest = smtp_inbox.messages[1]
    bias = [r for r in records(lake) if r["kind"] == "bias"]
    assert bias and all(r["source"] == DAG and r["rule"] and r["uri"].endswith("bias_report.html") for r in bias)
    assert digest["Subject"] == f"reviewflow: {len(bias)} alerts for {DT} from {DAG}"
    body = digest.get_body(preferencelist=("html",)).get_content()
    assert all(r["title"].replace("'", "&#x27;") in body for r in bias)
    assert {r["kind"] for r in records(lake)} == {"task_failure", "bias"}


def test_every_dag_run_ends_with_its_alerts_and_at_most_one_digest(airflow_db, lake_root, smtp_inbox, monkeypatch):
    """ingest -> bias -> training (TF-IDF only) -> scoring for one day: each run's alerts task writes its part
    and sends one digest when it found something at or above the floor (~65 s)."""
    from tools import sample_data

    day = "2024-06-01"
    monkeypatch.setenv("REVIEWFLOW_ALERT_MIN_SEVERITY", "info")
    env = {"REVIEWFLOW_MIN_MACRO_F1": "0", "REVIEWFLOW_INGEST_ALERT_QUARANTINE_SHARE": "0.01"}
    sample_data.write_landing(lake_root, days=1, rows_per_day=300, start=day, seed=4, dirty_share=0.05)
    lake = LocalLake(lake_root)
    kinds, total = {}, 0
    for dag_id, conf in (("reviews_ingest", None), ("reviews_bias_report", None),
                         ("sentiment_training", {"train_bert": False}), ("sentiment_batch_scoring", None)):  # fmt: skip
        before = len(smtp_inbox.messages)
        result = airflow_dags_test(dag_id, day, env=env, conf=conf)
        assert result.ok, result.tail()
        assert result.task_states()[("alerts", -1)][0] == "success", result.tail(20000)
        part = [json.loads(line) for line in lake.read_bytes(f"reports/alerts/dt={day}/{dag_id}.jsonl").splitlines()]
        kinds[dag_id], total = {a["kind"] for a in part}, total + len(part)
        subjects = [m["Subject"] for m in smtp_inbox.messages[before:]]
        assert subjects == ([f"reviewflow: {len(part)} alert{'s' if len(part) > 1 else ''} for {day} from {dag_id}"]
                            if part else []), (dag_id, subjects)  # fmt: skip
    # 5% of the generated rows are dirty (> 1%); 300 rows make no bias group of 30 with a large disparity;
    # the first model is promoted (info); one day's department mix drifts from the training split's.
    assert kinds["reviews_ingest"] == {"ingest"} and kinds["sentiment_training"] == {"gate"}
    assert kinds["reviews_bias_report"] <= {"bias"} and kinds["sentiment_batch_scoring"] <= {"drift"}
    merged = [json.loads(line) for line in lake.read_bytes(merged_key(day)).splitlines()]
    assert len(merged) == total  # every part is in the merged file
    assert {a["source"] for a in merged} == {d for d in kinds if kinds[d]}
