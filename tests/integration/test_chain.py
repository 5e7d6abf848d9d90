"""The whole chain in local mode over 3 generated days: ingest -> bias report -> training -> scoring.

Each DAG runs with dag.test(); a second scoring run must leave identical predictions.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from reviewflow.scoring.score import PREDICTION_COLUMNS
from reviewflow.storage.lake import LocalLake, read_json, read_parquet
from tools import sample_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DAYS = ["2024-05-01", "2024-05-02", "2024-05-03"]
TINY_BERT = {"bert_max_train_samples": 40, "bert_max_minutes": 0.5, "bert_epochs": 1, "bert_max_length": 32}


def run_dag(dag_id: str, dt: str, conf: dict | None = None):
    from airflow.dag_processing.dagbag import DagBag

    from reviewflow.config import PROJECT_ROOT

    dag = DagBag(str(PROJECT_ROOT / "dags")).dags[dag_id]
    run = dag.test(logical_date=datetime.fromisoformat(dt).replace(tzinfo=UTC), run_conf=conf)
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", (dag_id, dt, states)
    return states


def predictions(lake: LocalLake) -> dict[str, pd.DataFrame]:
    return {dt: read_parquet(lake, f"predictions/dt={dt}/part-0.parquet") for dt in DAYS}


def counts_by_product(predictions: pd.DataFrame, lake: LocalLake) -> dict[str, int]:
    """Reviews per product on a day, counted from the parquet files (not through the insights SQL)."""
    dt = predictions["dt"].iloc[0]
    curated = read_parquet(lake, f"curated/reviews/dt={dt}/part-0.parquet")
    joined = predictions.merge(curated[["review_id", "clothing_id"]], on="review_id")
    return {str(k): int(v) for k, v in joined["clothing_id"].value_counts().items()}


def test_whole_chain_over_three_days_and_an_identical_rerun(airflow_db, lake_root):
    sample_data.write_landing(lake_root, days=3, rows_per_day=400, start=DAYS[0], seed=11, dirty_share=0.03)
    lake = LocalLake(lake_root)
    for dt in DAYS:
        run_dag("reviews_ingest", dt)
        run_dag("reviews_bias_report", dt, {"dt": dt})
        bias = read_json(lake, f"reports/bias/dt={dt}/bias_report.json")
        assert (
            bias["scopes"]["partition"]["rows"]
            == read_json(lake, f"reports/ingest/dt={dt}/ingest_report.json")["rows_curated"]
        )

    # no champion yet: scoring skips instead of failing
    states = run_dag("sentiment_batch_scoring", DAYS[-1])
    assert states[("plan", -1)] == "skipped"

    run_dag("sentiment_training", DAYS[-1], TINY_BERT)
    champion = read_json(lake, "models/champion.json")
    assert champion["data_snapshot"]["dt"] == DAYS[-1]

    states = run_dag("sentiment_batch_scoring", DAYS[-1])
    assert sorted(m for (task, m), s in states.items() if task == "score" and s == "success") == [0, 1, 2]
    first = predictions(lake)
    for dt, frame in first.items():
        curated = read_parquet(lake, f"curated/reviews/dt={dt}/part-0.parquet")
        assert list(frame.columns) == list(PREDICTION_COLUMNS)
        assert sorted(frame["review_id"]) == sorted(curated["review_id"])  # every curated row scored once
        assert set(frame["sentiment_pred"]) <= {-1, 0, 1}
        assert (frame["model_version"] == champion["version"]).all()
        probs = frame[["p_negative", "p_neutral", "p_positive"]].sum(axis=1)
        assert probs.between(0.999, 1.001).all()
        drift = read_json(lake, f"reports/drift/dt={dt}/drift_report.json")
        assert drift["model"] == f"{champion['model_name']}:{champion['version']}"
        assert {c["check"] for c in drift["checks"]} >= {"predicted distribution", "out-of-vocabulary share"}
        assert lake.exists(f"reports/drift/dt={dt}/drift_report.html")
    # the catalog knows the predictions table and its partitions
    from reviewflow.storage.sql import DuckDBEngine

    counts = DuckDBEngine(lake_root).query("SELECT dt, count(*) AS n FROM reviews.predictions GROUP BY dt ORDER BY dt")
    assert counts["dt"].tolist() == DAYS and counts["n"].tolist() == [len(first[dt]) for dt in DAYS]

    # the predictions' consumer: insights for the last day (3 x 400 rows: most keys are too small to test)
    run_dag("review_insights", DAYS[-1])
    insights = read_json(lake, f"reports/insights/dt={DAYS[-1]}/insights.json")
    products = counts_by_product(first[DAYS[-1]], lake)
    assert insights["by_level"]["product"]["keys"] == len(products)  # every product of the day, counted once
    assert insights["tested"] + insights["skipped"] == sum(v["keys"] for v in insights["by_level"].values())
    assert lake.exists(f"reports/insights/dt={DAYS[-1]}/insights.html")
    daily = DuckDBEngine(lake_root).query(
        "SELECT level, key, reviews FROM reviews.product_sentiment_daily WHERE dt = ? AND level = 'product'", [DAYS[-1]]
    )
    assert dict(zip(daily["key"], daily["reviews"], strict=True)) == products

    # a rerun rewrites the date with the same predictions (only the scoring time differs)
    run_dag("sentiment_batch_scoring", DAYS[-1])
    again = predictions(lake)
    for dt in DAYS:
        pd.testing.assert_frame_equal(first[dt].drop(columns="scored_at"), again[dt].drop(columns="scored_at"))
        assert lake.list(f"predictions/dt={dt}/") == [f"predictions/dt={dt}/part-0.parquet"]

    # kill -9 in the middle of the predictions write (temp file written, not yet renamed), then a
    # plain rerun, both as `airflow dags test` in fresh processes: the same predictions, no leftovers
    from fresh_process import airflow_dags_test

    crashed = airflow_dags_test(
        "sentiment_batch_scoring", DAYS[-1], env={"REVIEWFLOW_CRASH_AT": f"write:predictions/dt={DAYS[-1]}/"}
    )
    assert crashed.returncode == -9, crashed.output[-2000:]  # SIGKILL, mid-write
    rerun = airflow_dags_test("sentiment_batch_scoring", DAYS[-1])
    assert rerun.ok, rerun.output[-3000:]
    after_kill = predictions(lake)
    for dt in DAYS:
        pd.testing.assert_frame_equal(first[dt].drop(columns="scored_at"), after_kill[dt].drop(columns="scored_at"))
        assert lake.list(f"predictions/dt={dt}/") == [f"predictions/dt={dt}/part-0.parquet"]
    leftovers = [k for k in lake.list("") if k.endswith(".tmp") and not k.startswith(".tmp/")]
    assert leftovers == []
