"""Every DAG file imports without errors, stays light at parse time, and follows the house rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAG_FILES = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
HEAVY_MODULES = ["torch", "transformers", "great_expectations", "sklearn", "awswrangler", "duckdb", "matplotlib"]
EXPECTED_DAGS = {"reviews_ingest", "reviews_bias_report", "sentiment_training", "sentiment_batch_scoring"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags_present(dagbag):
    assert EXPECTED_DAGS <= set(dagbag.dag_ids)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags and "reviewflow" in dag.tags
    assert dag.doc_md, "a DAG explains itself in the UI"
    for task in dag.tasks:
        assert task.owner == "reviewflow", task.task_id
        assert task.retries >= 1, task.task_id


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_without_heavy_imports(path):
    """Heavy libraries load inside tasks, never at parse time (the DAG processor re-parses often)."""
    code = (
        "import json, runpy, sys\n"
        f"runpy.run_path({str(path)!r})\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(
    ("dag_id", "cron", "assets"),
    [
        ("sentiment_training", "0 2 * * *", {"model_decay"}),
        ("sentiment_batch_scoring", "0 3 * * *", {"curated_reviews", "champion_model"}),
    ],
)
def test_data_driven_dags_keep_a_nightly_timetable(dagbag, dag_id, cron, assets):
    """Asset events start them; the cron stays as the safety net and what `airflow backfill create` needs."""
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.timetables.assets import AssetOrTimeSchedule

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags[dag_id]))
    timetable = serialized.timetable  # as the scheduler sees it
    assert isinstance(timetable, AssetOrTimeSchedule), timetable
    assert timetable.periodic and timetable.timetable._expression == cron
    assert {asset.name for _, asset in timetable.asset_condition.iter_assets()} == assets
    assert not dagbag.dags[dag_id].catchup  # a missed night is caught up by the run itself


@pytest.mark.parametrize(
    ("env", "in_turn"),
    [({}, True), ({"REVIEWFLOW_TRAIN_IN_TURN": "0"}, False), ({"REVIEWFLOW_GPU_BACKEND": "celery"}, False)],
    ids=["local", "asked-side-by-side", "bert-elsewhere"],
)
def test_bert_waits_for_tfidf_only_when_both_train_on_the_local_cores(env, in_turn):
    """Parsed in a fresh process with exactly these settings (the DAG reads them at parse time)."""
    code = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"task = DagBag({str(ROOT / 'dags')!r}).dags['sentiment_training'].get_task('train_bert')\n"
        "print(json.dumps([sorted(task.upstream_task_ids), getattr(task.trigger_rule, 'value', task.trigger_rule)]))\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("REVIEWFLOW_TRAIN_IN_TURN", "REVIEWFLOW_GPU_BACKEND")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**base, **env})
    upstream, rule = json.loads(out.stdout.strip().splitlines()[-1])
    assert "build_dataset" in upstream and "want_bert" in upstream
    if in_turn:  # a failed TF-IDF still lets BERT train
        assert "train_tfidf" in upstream and rule == "all_done_min_one_success"
    else:
        assert "train_tfidf" not in upstream and rule == "all_success"
