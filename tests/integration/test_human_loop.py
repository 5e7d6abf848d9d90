"""The human review loop under Airflow, every DAG run in a fresh `airflow dags test` process.

ingest two days -> train -> score (review queue) -> a person fills some labels, disagreeing with
the ratings, and drops the queue in landing/labels/ -> score again (collect_labels merges them)
-> train again: the training dataset carries the human labels for exactly those reviews.
"""

from __future__ import annotations

import csv
import io
import time

import pandas as pd
import pytest
from fresh_process import airflow_dags_test, parse_run

from reviewflow.layout import LABELS_KEY
from reviewflow.storage.lake import LocalLake, read_json, read_parquet
from tools import sample_data

DAYS = ["2024-07-01", "2024-07-02"]
CHEAP_BERT = {
    "REVIEWFLOW_BERT_MAX_TRAIN_SAMPLES": "64",
    "REVIEWFLOW_BERT_EPOCHS": "1",
    "REVIEWFLOW_BERT_MAX_MINUTES": "0.5",
}
TINY_BERT = {"bert_max_train_samples": 64, "bert_max_minutes": 0.5, "bert_epochs": 1, "bert_max_length": 32}
# a generous review queue, so there are rows to label whatever the champion's confidence
ENV = {**CHEAP_BERT, "REVIEWFLOW_REVIEW_CONFIDENCE": "0.95"}
NAMES = {-1: "Negative", 0: " neutral ", 1: "+1"}  # the forms a person types


def run(dag_id: str, dt: str, timings: dict, conf: dict | None = None):
    result = airflow_dags_test(dag_id, dt, env=ENV, conf=conf, timeout=600)
    timings[f"{dag_id} {dt} #{sum(k.startswith(dag_id) for k in timings) + 1}"] = round(result.seconds, 1)
    print(f"airflow dags test {dag_id} {dt}: {result.state} in {result.seconds:.1f} s", flush=True)
    assert result.ok, f"{dag_id} {dt}: rc={result.returncode} state={result.state}\n{result.tail()}"
    return result


def test_parse_run_reads_the_dag_runs_own_state():
    task_lines = (
        "[info] Task instance state updated new_state=success rows_affected=1 ti_id=1\n"
        "[info] Task started previous_state=queued ti_id=2\n"
    )
    finished = (
        "[info] Marking run <DagRun d @ 2024-01-01: manual__x, state:running, queued_at: None. run_type: manual> failed\n"
        "[info] DagRun Finished: dag_id=d, logical_date=2024-01-01 00:00:00+00:00, run_id=manual__x, "
        "run_start_date=2024-01-01, run_end_date=2024-01-01, run_duration=1.0, state=failed, run_type=manual\n"
    )
    assert parse_run(task_lines + finished + task_lines) == ("manual__x", "failed")
    assert parse_run(task_lines) == (None, None)  # killed mid-run: no state, not a task's "success"
    assert parse_run(finished.splitlines()[0]) == (None, "failed")
    assert parse_run("DagRun Finished: dag_id=d, run_id=r1, state=DagRunState.SUCCESS, run_type=manual") == (
        "r1",
        "success",
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_human_labels_flow_from_the_review_queue_into_training(airflow_db, lake_root):
    started, timings = time.monotonic(), {}
    lake = LocalLake(lake_root)
    sample_data.write_landing(lake_root, days=2, rows_per_day=300, start=DAYS[0], seed=5)
    for dt in DAYS:
        run("reviews_ingest", dt, timings)
    run("sentiment_training", DAYS[-1], timings, conf=TINY_BERT)
    first = run("sentiment_batch_scoring", DAYS[-1], timings)
    assert first.task_states()[("collect_labels", -1)] == ("success", 1)
    assert read_parquet(lake, LABELS_KEY).empty  # nothing dropped yet: an empty, typed table

    # a person labels some of the queue, mostly against the rating, and drops the whole file
    queue_bytes = lake.read_bytes(f"review_queue/dt={DAYS[-1]}/review_queue.csv")
    queue = pd.read_csv(io.BytesIO(queue_bytes), dtype=str, keep_default_na=False)
    assert len(queue) >= 30, len(queue)
    curated = pd.concat(read_parquet(lake, f"curated/reviews/dt={dt}/part-0.parquet") for dt in DAYS)
    rating_sentiment = curated.set_index("review_id")["sentiment"].astype(int)
    picked = queue["review_id"].head(24).tolist()
    human = {rid: (rating_sentiment[rid] + 2 + i % 2) % 3 - 1 for i, rid in enumerate(picked[:20])}  # all disagree
    human |= {rid: int(rating_sentiment[rid]) for rid in picked[20:22]}  # two agree
    queue["label"] = [NAMES[human[r]] if r in human else "" for r in queue["review_id"]]
    queue.loc[queue["review_id"] == picked[22], "label"] = "great"
    queue.loc[queue["review_id"] == picked[23], "review_id"] = "no-such-review"
    queue.loc[queue["review_id"] == "no-such-review", "label"] = "1"
    labelled = queue.to_csv(index=False).encode()
    lake.write_bytes("landing/labels/2024-07-03-reviewer.csv", labelled)

    second = run("sentiment_batch_scoring", DAYS[-1], timings)
    assert second.task_states()[("collect_labels", -1)] == ("success", 1)
    merged = read_parquet(lake, LABELS_KEY).set_index("review_id")
    assert merged["label"].to_dict() == human
    assert set(merged["label_file"]) == {"2024-07-03-reviewer.csv"}
    rejected = read_parquet(lake, "quarantine/labels/rows/2024-07-03-reviewer.csv.parquet")
    assert len(rejected) == len(queue) - len(human)  # every other row is accounted for
    reasons = {r: list(x) for r, x in zip(rejected["review_id"], rejected["reasons"], strict=True)}
    assert reasons[picked[22]] == [
        "label is not a sentiment (got 'great'); use negative, neutral, positive, -1, 0 or 1"
    ]
    assert reasons["no-such-review"] == ["review_id 'no-such-review' is not a curated review"]
    assert {tuple(v) for r, v in reasons.items() if r not in (picked[22], "no-such-review")} == {
        ("label not filled in",)
    }
    # the recorded line is the line of the CSV where that record starts (review texts may span lines)
    records = csv.reader(io.StringIO(labelled.decode(), newline=""))
    starts, line = {}, 1
    for fields in records:
        starts[fields[0]], line = line, records.line_num + 1
    assert dict(zip(rejected["review_id"], rejected["line"], strict=True)) == {
        r: starts[r] for r in rejected["review_id"]
    }

    run("sentiment_training", DAYS[-1], timings, conf={"train_bert": False})
    dataset = read_parquet(lake, f"models/datasets/dt={DAYS[-1]}/dataset.parquet").set_index("review_id")
    from_humans = dataset[dataset["label_source"] == "human"]
    assert from_humans["label"].to_dict() == human
    assert (from_humans.loc[picked[:20], "label"] != from_humans.loc[picked[:20], "sentiment"]).all()
    others = dataset[dataset["label_source"] == "rating"]
    assert (others["label"] == others["sentiment"]).all()
    snapshot = read_json(lake, f"models/datasets/dt={DAYS[-1]}/data_snapshot.json")
    assert snapshot["label_sources"]["human"] == len(human)

    timings["total"] = round(time.monotonic() - started, 1)
    print(f"\nhuman loop timings (s): {timings}")
