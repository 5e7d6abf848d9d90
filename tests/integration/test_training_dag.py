"""sentiment_training end to end in local mode: dag.test() over a tmp lake of synthetic curated rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reviewflow import contract
from reviewflow.ingest import curate
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.lake import LocalLake, read_json, read_parquet, write_parquet
from tools import sample_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DAYS = ["2024-03-01", "2024-03-02"]
TINY_BERT = {"bert_max_train_samples": 40, "bert_max_minutes": 0.5, "bert_epochs": 1, "bert_max_length": 32}


def curate_days(lake_root: str, rows_per_day: int) -> None:
    catalog = DuckDBCatalog(lake_root)
    for i, dt in enumerate(DAYS):
        raw = sample_data.generate_reviews(rows_per_day, seed=20 + i, start_index=i * 100_000)
        raw.columns = [contract.snake_case(c) for c in raw.columns]
        write_parquet(
            LocalLake(lake_root), f"curated/reviews/dt={dt}/part-0.parquet", curate.to_curated(raw, f"{dt}.csv", "r")
        )
        catalog.register_table("curated_reviews", f"{lake_root}/curated/reviews", curate.curated_columns(), "parquet")
        catalog.register_partition("curated_reviews", dt)


def run_training(dt: str, conf: dict) -> tuple[str, dict]:
    from airflow.dag_processing.dagbag import DagBag

    from reviewflow.config import PROJECT_ROOT

    dag = DagBag(str(PROJECT_ROOT / "dags")).dags["sentiment_training"]
    run = dag.test(logical_date=datetime.fromisoformat(dt).replace(tzinfo=UTC), run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return str(run.state), states


def test_training_dag_promotes_a_first_champion_then_gates_the_next(airflow_db, lake_root, monkeypatch):
    # 600 rows of the generator's (deliberately hard) text give TF-IDF about 0.5 macro-F1: this test is about
    # the promotion mechanics, so the quality floor (its own unit tests in tests/unit/training) is lowered here.
    monkeypatch.setenv("REVIEWFLOW_MIN_MACRO_F1", "0.3")
    curate_days(lake_root, rows_per_day=300)
    lake = LocalLake(lake_root)

    state, tasks = run_training(DAYS[0], TINY_BERT)
    assert state == "success", tasks
    assert tasks["train_bert"] == "success" and tasks["approval"] == "skipped" and tasks["promote"] == "success"
    assert tasks["train_ensemble"] == "success" and tasks["evaluate_ensemble"] == "success"
    champion = read_json(lake, "models/champion.json")
    assert champion["model_name"] in ("tfidf", "bert", "ensemble") and champion["model_uri"].startswith(lake_root)
    (decision_key,) = lake.list("models/decisions/")
    first = read_json(lake, decision_key)
    assert first["status"] == "promoted" and any("no champion yet" in r for r in first["reasons"])
    assert read_json(lake, "models/datasets/dt=2024-03-01/data_snapshot.json")["partitions"] == {DAYS[0]: 300}
    for model in ("tfidf", "bert", "ensemble"):
        version = first["challenger"]["version"]
        assert lake.exists(f"models/{model}/{version}/registration.json")
        assert lake.exists(f"reports/models/{model}/{version}/report.html")
    assert_ensemble_scores_as_its_members(lake, first["challenger"]["version"])

    # the next night, TF-IDF only: gated against the champion re-evaluated on the same test split
    state, tasks = run_training(DAYS[1], {**TINY_BERT, "train_bert": False})
    assert state == "success", tasks
    assert tasks["train_bert"] == "skipped" and tasks["evaluate_bert"] == "skipped" and tasks["gate"] == "success"
    assert tasks["train_ensemble"] == "skipped" and tasks["evaluate_ensemble"] == "skipped"
    second = [read_json(lake, k) for k in lake.list("models/decisions/") if k != decision_key][0]
    assert second["status"] in ("promoted", "refused")
    assert second["champion"]["version"] == champion["version"]
    assert second["champion"]["macro_f1"] is not None
    assert any("bert: no evaluated model in this run" in r for r in second["candidates"])
    assert any("ensemble: no evaluated model in this run" in r for r in second["candidates"])
    final = read_json(lake, "models/champion.json")
    assert final["version"] == (
        second["challenger"]["version"] if second["status"] == "promoted" else champion["version"]
    )
    assert_mlflow_holds_the_runs(lake_root, first, second, final)


def assert_ensemble_scores_as_its_members(lake: LocalLake, version: str) -> None:
    """The registered ensemble scores new texts as its weights say, from its members' own predictors."""
    import numpy as np

    from reviewflow.training.predictor import load_predictor
    from reviewflow.training.registry import get_version

    spec = read_json(lake, f"models/ensemble/{version}/ensemble.json")
    assert set(spec["members"]) == {"tfidf", "bert"}
    assert abs(sum(spec["weights"].values()) - 1) < 1e-9
    texts = ["The zipper broke after one wash.", "Lovely soft fabric, fits perfectly!", "It is ok I guess."]
    members = {kind: load_predictor(get_version(lake, kind, version))(texts) for kind in ("tfidf", "bert")}
    from reviewflow.training.predictor import _entry_point

    sharpen = _entry_point("ensemble").sharpen  # the validation-fitted temperature, argmax kept
    expected = sharpen(sum(spec["weights"][kind] * members[kind] for kind in members), spec["temperature"])
    ensemble = load_predictor(get_version(lake, "ensemble", version))
    np.testing.assert_allclose(ensemble(texts), expected, atol=1e-6)
    assert len(ensemble.explain(texts, expected.argmax(axis=1))) == 3
    # its test predictions (what the gate decided on) are the same average of the members' test predictions
    frames = {
        k: read_parquet(lake, f"models/{k}/{version}/test_predictions.parquet") for k in ("tfidf", "bert", "ensemble")
    }
    proba = ["p_negative", "p_neutral", "p_positive"]
    combined = sum(spec["weights"][k] * frames[k].set_index("review_id")[proba] for k in ("tfidf", "bert"))
    got = frames["ensemble"].set_index("review_id")[proba]
    np.testing.assert_allclose(
        got.to_numpy(), sharpen(combined.loc[got.index].to_numpy(), spec["temperature"]), atol=1e-9
    )


def assert_mlflow_holds_the_runs(lake_root: str, first: dict, second: dict, final: dict) -> None:
    """The embedded MLflow store, read with its own client: runs, child runs, versions, gate tags, the alias."""
    from pathlib import Path

    from mlflow import MlflowClient

    uri = f"sqlite:///{Path(lake_root).resolve()}/mlflow/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("reviewflow")
    parents = client.search_runs([experiment.experiment_id], "tags.`reviewflow.level` = 'training_run'")
    assert sorted(r.data.tags["reviewflow.dag_run_id"] for r in parents) == sorted([first["run_id"], second["run_id"]])
    by_run = {r.data.tags["reviewflow.dag_run_id"]: r for r in parents}
    assert by_run[first["run_id"]].data.tags["gate.status"] == "promoted"
    assert by_run[first["run_id"]].data.tags["dataset.rows"] == "300"
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{by_run[first['run_id']].info.run_id}'"
    )
    assert sorted(r.info.run_name for r in children) == ["bert", "ensemble", "tfidf"]
    assert all("test_macro_f1" in r.data.metrics and "val_macro_f1" in r.data.metrics for r in children)
    tfidf_run = next(r for r in children if r.info.run_name == "tfidf")
    board = read_json(LocalLake(lake_root), f"models/tfidf/{first['challenger']['version']}/leaderboard.json")
    candidates = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{tfidf_run.info.run_id}'"
    )
    assert len(candidates) == len(board) > 1
    # the model reports say what was trained: the leaderboard's chosen row, the ensemble's weights
    lake = LocalLake(lake_root)
    version = first["challenger"]["version"]
    row = next(r for r in board if r["chosen"])
    page = lake.read_bytes(f"reports/models/tfidf/{version}/report.html").decode()
    assert f"{row['features']} {row['clf']} C={row['C']}" in page
    weights = read_json(lake, f"models/ensemble/{version}/ensemble.json")["weights"]
    page = lake.read_bytes(f"reports/models/ensemble/{version}/report.html").decode()
    assert "weights " + " / ".join(f"{k} {v}" for k, v in weights.items()) in page
    versions = client.search_model_versions("name = 'reviewflow-sentiment'")
    tags = {(v.tags["reviewflow.model"], v.tags["reviewflow.version"]): v.tags for v in versions}
    assert len(tags) == 4  # tfidf + bert + ensemble of the first night, tfidf of the second
    chosen = first["challenger"]
    assert tags[(chosen["model_name"], chosen["version"])]["gate.status"] == "promoted"
    for other in {"tfidf", "bert", "ensemble"} - {chosen["model_name"]}:
        assert tags[(other, chosen["version"])]["gate.status"] == "not_chosen"
    assert tags[("tfidf", second["challenger"]["version"])]["gate.status"] == second["status"]
    alias = client.get_model_version_by_alias("reviewflow-sentiment", "champion")
    assert (alias.tags["reviewflow.model"], alias.tags["reviewflow.version"]) == (final["model_name"], final["version"])
