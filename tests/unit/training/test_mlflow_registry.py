"""MLflow as the tracking store and model registry: a real embedded sqlite store in a tmp lake.

Every check reads the store back with its own ``MlflowClient`` (not through reviewflow's seam).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from reviewflow import contract
from reviewflow.config import ConfigError, get_settings
from reviewflow.ingest import curate
from reviewflow.layout import dataset_key, model_prefix, snapshot_key
from reviewflow.storage.lake import LocalLake, S3Lake, read_json, write_json, write_parquet
from reviewflow.training import tracking
from reviewflow.training.dataset import assemble
from reviewflow.training.predictor import _entry_point
from reviewflow.training.registry import champion, get_version, promote, register
from reviewflow.training.tasks import evaluate_and_register, run_candidates, run_gate
from tools import sample_data

DT = "2024-03-01"
ROOT = Path(__file__).resolve().parents[3]


def client_for(lake_root: str):
    from mlflow import MlflowClient

    uri = f"sqlite:///{Path(lake_root).resolve()}/mlflow/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> pd.DataFrame:
    raw = sample_data.generate_reviews(900, seed=7, start_index=700_000)
    raw.columns = [contract.snake_case(c) for c in raw.columns]
    frame = assemble(curate.to_curated(raw, "day.csv", "test-run").assign(dt=DT), None)
    path = tmp_path_factory.mktemp("dataset") / "dataset.parquet"
    frame.to_parquet(path, index=False)
    frame.attrs["path"] = str(path)
    return frame


@pytest.fixture(scope="module")
def tfidf_dir(dataset, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("tfidf") / "model"
    _entry_point("tfidf").run(dataset.attrs["path"], str(out), grid="quick")
    return str(out)


def settings_for(lake_root: str):
    return replace(get_settings(), lake=lake_root, min_macro_f1=0.3)


def copy_model(src: str, lake: LocalLake, name: str, version: str) -> None:
    for path in Path(src).iterdir():
        lake.write_bytes(model_prefix(name, version) + path.name, path.read_bytes())


def fake_version(lake: LocalLake, version: str, f1: float, run_id: str, settings=None) -> dict:
    """A registered version without training: register() needs only the entry point's metrics.json."""
    lake.write_bytes(model_prefix("tfidf", version) + "metrics.json", b"{}")
    register(lake, "tfidf", version, "tfidf", {"validation": {"macro_f1": f1}}, evaluation={"macro_f1": f1},
             run_id=run_id, settings=settings)  # fmt: skip
    return get_version(lake, "tfidf", version)


def test_training_run_child_runs_versions_gate_tags_and_champion_alias(lake_root, dataset, tfidf_dir):
    lake, settings = LocalLake(lake_root), settings_for(lake_root)
    write_parquet(lake, dataset_key(DT), dataset)
    snapshot = {"dt": DT, "rows": len(dataset), "sha256": "ab" * 32, "splits": {"train": 720, "test": 90}}
    write_json(lake, snapshot_key(DT), snapshot)
    copy_model(tfidf_dir, lake, "tfidf", "20240301-aaaaaa")
    summary = evaluate_and_register(lake, "tfidf", "20240301-aaaaaa", DT, "manual__run-1", settings)

    client = client_for(lake_root)
    experiment = client.get_experiment_by_name("reviewflow")
    assert experiment is not None and experiment.artifact_location.startswith(str(Path(lake_root).resolve()))
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`reviewflow.level` = 'training_run'")
    tags = parent.data.tags
    assert tags["reviewflow.dag_run_id"] == "manual__run-1" and tags["dataset.sha256"] == "ab" * 32
    assert tags["dataset.rows"] == str(len(dataset)) and json.loads(tags["dataset.splits"])["test"] == 90
    assert tags["code.package"] and tags["mlflow.source.git.commit"]
    (model_run,) = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert model_run.info.run_name == "tfidf" and model_run.data.params["grid"] == "quick"
    assert model_run.data.metrics["test_macro_f1"] == pytest.approx(summary["test_macro_f1"])
    assert {"val_macro_f1", "test_f1_neutral", "val_recall_negative"} <= set(model_run.data.metrics)
    artifacts = {
        f.path for d in ("report", "evaluation", "model") for f in client.list_artifacts(model_run.info.run_id, d)
    }
    assert {"report/report.html", "evaluation/evaluation.json", "model/leaderboard.json"} <= artifacts
    board = read_json(lake, model_prefix("tfidf", "20240301-aaaaaa") + "leaderboard.json")
    candidates = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{model_run.info.run_id}'"
    )
    assert len(candidates) == len(board) >= 2
    chosen = [c for c in candidates if c.data.tags["chosen"] == "True"]
    assert len(chosen) == 1 and chosen[0].data.metrics["val_macro_f1"] == pytest.approx(
        next(r for r in board if r["chosen"])["val_macro_f1"]
    )

    (mv,) = client.search_model_versions("name = 'reviewflow-sentiment'")
    assert mv.tags["kind"] == "tfidf" and mv.tags["reviewflow.version"] == "20240301-aaaaaa"
    assert mv.run_id == model_run.info.run_id and mv.source == lake.uri(model_prefix("tfidf", "20240301-aaaaaa"))

    # a retry of the task: the same runs and the same registry version, nothing duplicated
    evaluate_and_register(lake, "tfidf", "20240301-aaaaaa", DT, "manual__run-1", settings)
    assert len(client.search_runs([experiment.experiment_id], "")) == 2 + len(board)
    assert len(client.search_model_versions("name = 'reviewflow-sentiment'")) == 1

    decision = run_gate(lake, run_candidates(lake, "20240301-aaaaaa"), dataset, "manual__run-1", settings)
    assert decision["promote"], decision["reasons"]
    mv = client.get_model_version("reviewflow-sentiment", mv.version)
    assert mv.tags["gate.status"] == "promote" and "no champion yet" in mv.tags["gate.reasons"]
    promote(lake, get_version(lake, "tfidf", "20240301-aaaaaa"), decision, "manual__run-1", settings)
    alias = client.get_model_version_by_alias("reviewflow-sentiment", "champion")
    assert alias.version == mv.version and alias.tags["promoted_by"] == "sentiment_training run manual__run-1"
    current = champion(lake)
    assert current["version"] == "20240301-aaaaaa" and current["mlflow"]["registry_version"] == str(mv.version)
    assert read_json(lake, "models/champion.json")["version"] == "20240301-aaaaaa"


def test_the_alias_wins_over_champion_json_and_champion_json_is_the_fallback(lake_root):
    lake = LocalLake(lake_root)
    first, second = fake_version(lake, "v1", 0.6, "r1"), fake_version(lake, "v2", 0.7, "r2")
    promote(lake, first, by="test", reason="first")
    assert champion(lake)["version"] == "v1"
    # someone moves the alias in MLflow's own UI / API: scoring follows it
    client_for(lake_root).set_registered_model_alias(
        "reviewflow-sentiment", "champion", second["mlflow"]["registry_version"]
    )
    moved = champion(lake)
    assert moved["version"] == "v2" and moved["model_uri"] == second["model_uri"]
    # the store is unreadable: champion.json still names a model
    Path(lake_root, "mlflow", "mlflow.db").write_bytes(b"not a database" * 100)
    assert champion(lake)["version"] == "v1"


def test_reading_the_champion_never_creates_a_store(lake_root):
    lake = LocalLake(lake_root)
    assert champion(lake) is None
    assert not Path(lake_root, "mlflow").exists()


def test_an_s3_lake_needs_a_tracking_server_setting():
    lake = S3Lake("s3://reviewflow-test-bucket/lake")
    with pytest.raises(ConfigError, match="REVIEWFLOW_MLFLOW_TRACKING_URI"):
        tracking.store_for(lake, get_settings())
    assert tracking.store_for(lake, None, create=False) is None  # reading: champion.json is the answer
    server = tracking.store_for(lake, replace(get_settings(), mlflow_tracking_uri="http://mlflow:5000"))
    assert server.tracking_uri == "http://mlflow:5000" and server.lock_path is None


def run_cli(lake_root: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REVIEWFLOW_LAKE": lake_root, "PYTHONPATH": str(ROOT / "plugins")}
    return subprocess.run([sys.executable, "-m", "reviewflow.training.registry", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_rollback_and_history_from_the_command_line(lake_root):
    lake = LocalLake(lake_root)
    old, new = fake_version(lake, "20240501-abc123", 0.6, "r1"), fake_version(lake, "20240502-def456", 0.7, "r2")
    promote(lake, old, by="test", reason="first")
    promote(lake, new, by="test", reason="better")

    done = run_cli(lake_root, "promote", "--model", "tfidf", "--version", "20240501-abc123",
                   "--reason", "the new one misreads sarcasm", "--by", "alice")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "champion: tfidf 20240501-abc123" in done.stdout and "was 20240502-def456" in done.stdout
    alias = client_for(lake_root).get_model_version_by_alias("reviewflow-sentiment", "champion")
    assert alias.tags["reviewflow.version"] == "20240501-abc123" and alias.tags["promoted_by"] == "alice"
    assert alias.tags["promotion_reason"] == "the new one misreads sarcasm"
    record = read_json(lake, "models/champion.json")
    assert (record["version"], record["promoted_by"], record["reason"]) == (
        "20240501-abc123",
        "alice",
        "the new one misreads sarcasm",
    )
    assert record["previous"]["version"] == "20240502-def456"
    assert len(lake.list("models/champion_history/")) == 3
    assert champion(lake)["version"] == "20240501-abc123"

    shown = run_cli(lake_root, "history")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("*") and "20240501-abc123" in lines[0] and "alice" in lines[0]
    assert not lines[1].startswith("*") and "20240502-def456" in lines[1]

    bad = run_cli(lake_root, "promote", "--model", "tfidf", "--version", "20990101-nope00", "--reason", "x")
    assert bad.returncode == 2 and "20990101-nope00 is not registered" in bad.stderr
    assert "20240501-abc123, 20240502-def456" in bad.stderr
    assert champion(lake)["version"] == "20240501-abc123"


WRITER = textwrap.dedent(
    """
    import sys, time
    from reviewflow.storage.lake import LocalLake
    from reviewflow.training import tracking
    from reviewflow.training.registry import register
    lake, name, start = LocalLake(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    lake.write_bytes(f"models/{name}/v1/metrics.json", b"{}")
    time.sleep(max(0.0, start - time.time()))  # both processes hit the fresh store at the same moment
    store = tracking.store_for(lake)
    runs = tracking.log_model_run(store, lake, dag_run_id="run-1", dt="2024-03-01", model_name=name, version="v1",
        kind=name, metrics={"validation": {"macro_f1": 0.5}}, params={"p": 1}, evaluation={"macro_f1": 0.5},
        snapshot=None, dataset_uri=None, code={}, artifacts=[],
        leaderboard=[{"rank": i, "val_macro_f1": 0.5} for i in range(1, 6)])
    register(lake, name, "v1", name, {"validation": {"macro_f1": 0.5}}, mlflow_run_id=runs["model_run_id"])
    """
)


def test_two_evaluate_tasks_writing_a_fresh_store_at_once(lake_root):
    import time

    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    start = time.time() + 8  # after both interpreters imported mlflow
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, lake_root, name, str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for name in ("tfidf", "bert")
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    client = client_for(lake_root)
    experiment = client.get_experiment_by_name("reviewflow")
    parents = client.search_runs([experiment.experiment_id], "tags.`reviewflow.level` = 'training_run'")
    assert len(parents) == 1  # one DAG run, one MLflow run, whichever task came first
    models = client.search_runs([experiment.experiment_id], "tags.`reviewflow.level` = 'model'")
    assert sorted(r.info.run_name for r in models) == ["bert", "tfidf"]
    assert {r.data.tags["mlflow.parentRunId"] for r in models} == {parents[0].info.run_id}
    assert len(client.search_model_versions("name = 'reviewflow-sentiment'")) == 2
