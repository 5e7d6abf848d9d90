"""reviews_ingest end to end in local mode: dag.test() over 3 generated days, then a rerun."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from reviewflow.storage.lake import LocalLake, read_json, read_parquet
from tools import sample_data

pytestmark = pytest.mark.e2e
DAYS = ["2024-02-01", "2024-02-02", "2024-02-03"]


def run_ingest(dt: str) -> str:
    from airflow.dag_processing.dagbag import DagBag

    from reviewflow.config import PROJECT_ROOT

    dag = DagBag(str(PROJECT_ROOT / "dags")).dags["reviews_ingest"]
    run = dag.test(logical_date=datetime.fromisoformat(dt).replace(tzinfo=UTC))
    return str(run.state)


def test_ingest_three_days_and_rerun(airflow_db, lake_root):
    written = sample_data.write_landing(lake_root, days=3, rows_per_day=150, start=DAYS[0], seed=4, dirty_share=0.05)
    assert sorted(written) == DAYS
    lake = LocalLake(lake_root)

    for dt in DAYS:
        assert run_ingest(dt) == "success"
        report = read_json(lake, f"reports/ingest/dt={dt}/ingest_report.json")
        assert report["rows_in"] == report["rows_curated"] + report["rows_quarantined"]
        assert report["rows_in"] >= 150  # broken-quoting rows count as rows in, too
        assert report["rows_quarantined"] > 0
        assert lake.list(f"reports/quality/dt={dt}/")

    before = {dt: read_parquet(lake, f"curated/reviews/dt={dt}/part-0.parquet") for dt in DAYS}
    assert run_ingest(DAYS[1]) == "success"
    after = read_parquet(lake, f"curated/reviews/dt={DAYS[1]}/part-0.parquet")
    # The rerun rewrites the partition with the same rows; only the run id differs.
    pd.testing.assert_frame_equal(before[DAYS[1]].drop(columns="ingest_run"), after.drop(columns="ingest_run"))

    from reviewflow.storage.sql import DuckDBEngine

    counts = DuckDBEngine(lake_root).query(
        "SELECT dt, count(*) AS n FROM reviews.curated_reviews GROUP BY dt ORDER BY dt"
    )
    assert counts["dt"].tolist() == DAYS
    assert counts["n"].tolist() == [len(before[dt]) for dt in DAYS]
