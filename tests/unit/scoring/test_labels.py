"""The human-label intake (reviewflow.scoring.labels and the collect_labels task) on hostile label files."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from reviewflow.config import PROJECT_ROOT
from reviewflow.layout import LABELS_KEY
from reviewflow.scoring.labels import collect_labels
from reviewflow.storage.lake import LocalLake, read_json, read_parquet, write_parquet
from reviewflow.training import dataset as training_data

IDS = ["rv-a", "rv-b", "rv-c", "rv-d"]


def curated_ids(lake: LocalLake, ids: list[str], dt: str = "2024-04-01") -> None:
    """A curated partition holding these review ids (the intake only reads the review_id column)."""
    frame = pd.DataFrame({"review_id": ids, "review_text": [f"text {i}" for i in ids], "sentiment": 1})
    write_parquet(lake, f"curated/reviews/dt={dt}/part-0.parquet", frame)


def drop(lake: LocalLake, name: str, text: str | bytes) -> None:
    lake.write_bytes(f"landing/labels/{name}", text.encode() if isinstance(text, str) else text)


def labels_of(lake: LocalLake) -> dict[str, int]:
    return read_parquet(lake, LABELS_KEY).set_index("review_id")["label"].to_dict()


def rejected_rows(lake: LocalLake, name: str) -> pd.DataFrame:
    return read_parquet(lake, f"quarantine/labels/rows/{name}.parquet")


@pytest.fixture
def lake(lake_root) -> LocalLake:
    lake = LocalLake(lake_root)
    curated_ids(lake, IDS[:2], "2024-04-01")
    curated_ids(lake, IDS[2:], "2024-04-02")
    return lake


# 1. a fresh interpreter: no GX context exists before the suite is built


def test_collect_labels_runs_in_a_fresh_process(lake, lake_root):
    drop(lake, "a.csv", "review_id,label\nrv-a,positive\nrv-b,maybe\n")
    code = textwrap.dedent("""
        import json
        from reviewflow.scoring.labels import collect_labels
        from reviewflow.storage.lake import get_lake
        print("SUMMARY=" + json.dumps(collect_labels(get_lake())))
    """)
    env = {**os.environ, "REVIEWFLOW_LAKE": lake_root, "PYTHONPATH": str(PROJECT_ROOT / "plugins")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.split("SUMMARY=", 1)[1])
    assert summary["labels"] == 1 and summary["files"][0]["quarantined"] == 1
    assert labels_of(lake) == {"rv-a": 1}


# 2. what a label may be, and a specific reason for what it may not


@pytest.mark.parametrize(
    ("given", "expected"),
    [("negative", -1), (" Positive ", 1), ("NEUTRAL", 0), ("-1", -1), ("0", 0), ("1", 1), ("+1", 1), ("1.0", 1),
     ("-1.00", -1), (" 0.0 ", 0)],
)  # fmt: skip
def test_accepted_label_forms(lake, given, expected):
    drop(lake, "a.csv", f'review_id,label\nrv-a,"{given}"\n')
    summary = collect_labels(lake)
    assert labels_of(lake) == {"rv-a": expected}, summary


@pytest.mark.parametrize("given", ["great", "7", "0.5", "2", "pos", "1,0", "--1", "yes"])
def test_rejected_label_values_name_the_value(lake, given):
    drop(lake, "a.csv", f'review_id,label\nrv-b,1\nrv-a,"{given}"\n')
    collect_labels(lake)
    assert labels_of(lake) == {"rv-b": 1}
    (reasons,) = rejected_rows(lake, "a.csv")["reasons"]
    assert list(reasons) == [f"label is not a sentiment (got {given!r}); use negative, neutral, positive, -1, 0 or 1"]


def test_an_empty_label_is_not_filled_in_and_nothing_else(lake):
    drop(lake, "a.csv", "review_id,label\nrv-a,  \nrv-b,1\n")
    collect_labels(lake)
    assert [list(r) for r in rejected_rows(lake, "a.csv")["reasons"]] == [["label not filled in"]]


# 3. review ids must name curated reviews


def test_unknown_review_ids_are_rejected(lake, monkeypatch):
    import pyarrow.parquet as pq

    columns_read = []
    real = pq.read_table

    def spy(source, *args, columns=None, **kwargs):
        if "curated" in str(source):
            columns_read.append(columns)
        return real(source, *args, columns=columns, **kwargs)

    monkeypatch.setattr(pq, "read_table", spy)
    drop(lake, "a.csv", "review_id,label\nrv-a,1\nnot-a-review,0\nrv-d,-1\n")
    summary = collect_labels(lake)
    assert labels_of(lake) == {"rv-a": 1, "rv-d": -1}
    rejected = rejected_rows(lake, "a.csv")
    assert rejected[["line", "review_id"]].values.tolist() == [[3, "not-a-review"]]
    assert list(rejected["reasons"][0]) == ["review_id 'not-a-review' is not a curated review"]
    assert summary["files"][0]["quarantined_by_rule"] == {"review_id is not a curated review": 1}
    assert columns_read and all(c == ["review_id"] for c in columns_read)  # only the id column is read


def test_without_curated_data_every_id_is_unknown(lake_root):
    lake = LocalLake(lake_root)
    drop(lake, "a.csv", "review_id,label\nrv-a,1\n")
    summary = collect_labels(lake)
    assert summary["labels"] == 0 and labels_of(lake) == {}
    assert list(rejected_rows(lake, "a.csv")["reasons"][0]) == ["review_id 'rv-a' is not a curated review"]


# 4. conflicting labels


def test_conflicting_labels_in_one_file_reject_both_rows(lake):
    drop(lake, "a.csv", "review_id,label\nrv-a,positive\nrv-b,0\nrv-a,-1\nrv-c,1\nrv-c,positive\n")
    collect_labels(lake)
    assert labels_of(lake) == {"rv-b": 0, "rv-c": 1}  # the same label twice is no conflict
    rejected = rejected_rows(lake, "a.csv")
    assert rejected["line"].tolist() == [2, 4]
    for reasons in rejected["reasons"]:
        assert list(reasons) == [
            "conflicting labels for review_id rv-a in this file (line 2: 'positive', line 4: '-1')"
        ]


def test_a_later_file_wins_and_the_conflict_is_reported(lake, caplog):
    drop(lake, "2024-04-03-bo.csv", "review_id,label\nrv-a,negative\nrv-b,1\n")
    drop(lake, "2024-04-02-al.csv", "review_id,label\nrv-a,positive\nrv-b,positive\n")
    with caplog.at_level(logging.WARNING, logger="reviewflow.scoring.labels"):
        summary = collect_labels(lake)
    assert labels_of(lake) == {"rv-a": -1, "rv-b": 1}
    assert summary["conflicts"] == [
        {
            "review_id": "rv-a",
            "kept": {"file": "2024-04-03-bo.csv", "line": 2, "label": -1},
            "overridden": [{"file": "2024-04-02-al.csv", "line": 2, "label": 1}],
        }
    ]
    assert summary["conflicts_total"] == 1
    assert any("rv-a" in r.getMessage() and "2024-04-03-bo.csv" in r.getMessage() for r in caplog.records)
    table = read_parquet(lake, LABELS_KEY).set_index("review_id")
    assert table.loc["rv-a", "label_file"] == "2024-04-03-bo.csv"


# 5. a file rejected whole has its reason next to its copy


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"review_id,label\nrv-a,n\xe9gatif\n", "not UTF-8"),
        (b"id,sentiment\nrv-a,1\n", "needs columns review_id and label"),
        (b"review_id;label\nrv-a;1\n", "semicolon-separated"),
        (b"", "empty file"),
        (b"review_id,label\n\n", "no label rows"),
        (b"review_id,label\nnope,1\nrv-a,7\n", "every row was rejected"),
    ],
)
def test_wholly_rejected_files_get_a_reason_file(lake, content, reason):
    drop(lake, "bad.csv", content)
    drop(lake, "good.csv", "review_id,label\nrv-b,1\n")
    summary = collect_labels(lake)
    assert labels_of(lake) == {"rv-b": 1}
    assert lake.read_bytes("quarantine/labels/files/bad.csv") == content
    recorded = read_json(lake, "quarantine/labels/files/bad.csv.reason.json")
    assert recorded["file"] == "bad.csv" and reason in recorded["reason"]
    assert reason in {f["file"]: f for f in summary["files"]}["bad.csv"]["reason"]
    assert not lake.exists("quarantine/labels/files/good.csv.reason.json")


# 6. the merged table is rebuilt every run


def test_no_valid_file_leaves_no_stale_labels_and_training_reads_it(lake):
    drop(lake, "a.csv", "review_id,label\nrv-a,-1\n")
    collect_labels(lake)
    assert labels_of(lake) == {"rv-a": -1}
    drop(lake, "a.csv", "review_id,label\nrv-a,sideways\n")  # the file is corrected... badly
    summary = collect_labels(lake)
    assert summary["labels"] == 0
    import pyarrow.parquet as pq

    table = pq.read_table(lake.uri(LABELS_KEY))
    assert table.num_rows == 0
    assert {f.name: str(f.type) for f in table.schema} == {
        "review_id": "string", "label": "int64", "label_file": "string", "label_line": "int64",
    }  # fmt: skip
    labels = training_data.read_labels(lake)
    assert labels is not None and labels.empty
    curated = pd.DataFrame({
        "review_id": IDS, "dt": "2024-04-01", "sentiment": [1, 0, -1, 1], "rating": [5, 3, 1, 4],
        "title": "", "review_text": ["nice", "ok", "bad", "fine"], "clothing_id": 7, "age": 30,
        "division_name": "General", "department_name": "Tops", "class_name": "Knits",
    })  # fmt: skip
    frame = training_data.assemble(curated, labels)
    assert frame["label"].tolist() == [1, 0, -1, 1] and (frame["label_source"] == "rating").all()

    lake.delete_prefix("landing/labels/")  # no label file at all: still no stale table
    drop(lake, "b.csv", "review_id,label\nrv-b,1\n")
    collect_labels(lake)
    lake.delete_prefix("landing/labels/")
    assert collect_labels(lake)["labels"] == 0 and labels_of(lake) == {}
    assert lake.list("quarantine/labels/") == []  # the quarantine is rebuilt too


# 7. quarantined rows carry the file, the CSV line and the reasons


def test_quarantined_rows_carry_file_line_and_reasons(lake):
    # a filled-in review queue: quoted multi-line review text, a blank line, CRLF line ends
    queue = (
        "review_id,review_text,sentiment_pred,confidence,model_name,model_version,label\r\n"  # line 1
        'rv-a,"Runs small,\r\nreturned it",0,0.41,tfidf,v1,negative\r\n'  # lines 2-3
        "\r\n"  # line 4
        'rv-b,"Lovely ""soft"" fabric",1,0.5,tfidf,v1,great\r\n'  # line 5
        ',"no id\r\n\r\nat all",0,0.5,tfidf,v1,1\r\n'  # lines 6-8
        "rv-c,ok,0,0.52,tfidf,v1,\r\n"  # line 9
        "rv-d,one,too,many,fields,here,1,2\r\n"  # line 10
        "rv-d,fine,0,0.53,tfidf,v1,neutral\r\n"  # line 11
    )
    drop(lake, "review_queue.csv", queue)
    summary = collect_labels(lake)
    assert labels_of(lake) == {"rv-a": -1, "rv-d": 0}
    rejected = rejected_rows(lake, "review_queue.csv")
    assert rejected["file"].unique().tolist() == ["review_queue.csv"]
    assert rejected["line"].tolist() == [5, 6, 9, 10]
    assert rejected["review_id"].tolist()[2:] == ["rv-c", "rv-d"]
    reasons = dict(zip(rejected["line"], rejected["reasons"].map(list), strict=True))
    assert reasons[5] == ["label is not a sentiment (got 'great'); use negative, neutral, positive, -1, 0 or 1"]
    assert reasons[6] == ["review_id missing"]
    assert reasons[9] == ["label not filled in"]
    assert reasons[10][0].startswith("row has 8 fields but the header has 7")
    assert summary["files"][0] | {"quarantined_by_rule": None} == {
        "file": "review_queue.csv", "rows_in": 6, "valid": 2, "quarantined": 4, "quarantined_by_rule": None,
    }  # fmt: skip


# 8. deterministic errors are not retried; a bad file never fails the task


def _collect_task_callable():
    spec = importlib.util.spec_from_file_location(
        "scoring_dag_under_test", PROJECT_ROOT / "dags/sentiment_batch_scoring.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.sentiment_batch_scoring().get_task("collect_labels").python_callable


def test_collect_task_fails_fast_on_bugs_and_retries_storage_errors(lake, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    import reviewflow.scoring.labels

    collect_task = _collect_task_callable()
    drop(lake, "junk.bin", bytes(range(256)))
    drop(lake, "a.csv", "review_id,label\nrv-a,1\nrv-a,0\n\n,,\n")
    summary = collect_task()  # bad files: quarantined, the task succeeds
    assert summary["labels"] == 0 and {f["file"] for f in summary["files"]} == {"junk.bin", "a.csv"}

    def broken(lake):
        raise KeyError("row_failures")  # e.g. an incompatible validate_frame: a retry repeats it

    monkeypatch.setattr(reviewflow.scoring.labels, "collect_labels", broken)
    with pytest.raises(AirflowFailException, match="not retried"):
        collect_task()

    def flaky(lake):
        raise ConnectionResetError("lake went away")

    monkeypatch.setattr(reviewflow.scoring.labels, "collect_labels", flaky)
    with pytest.raises(ConnectionResetError):  # transient: left to the task's retry
        collect_task()
