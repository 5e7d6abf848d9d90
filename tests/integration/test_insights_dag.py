"""review_insights as it runs: `airflow dags test` in a fresh process, a real SMTP server for its digest.

The lake holds two weeks of generated reviews with the generator's planted incident, scored by a
real TF-IDF model (tests/scored_lake.py). The run for an incident day must flag the planted
product with its complaint, write both catalog tables and the report, and send exactly one digest
naming it; a rerun rewrites the date's rows instead of adding to them.
"""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from alert_servers import html_of, smtp_connection, smtp_server
from fresh_process import airflow_dags_test
from scored_lake import train_model, write_scored_day

from reviewflow.storage.lake import LocalLake, read_json
from reviewflow.storage.sql import DuckDBEngine
from tools import sample_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
START, DAYS, ROWS = "2024-04-01", 14, 2000


@pytest.fixture
def incident_lake(lake_root):
    landing = sample_data.write_landing(lake_root, days=DAYS, rows_per_day=ROWS, start=START, seed=4, dirty_share=0.0)
    model = train_model(sample_data.generate_reviews(6000, seed=999))
    lake = LocalLake(lake_root)
    for dt, keys in landing.items():
        frame = pd.concat([pd.read_csv(io.BytesIO(lake.read_bytes(k)), dtype=str, keep_default_na=False) for k in keys])
        write_scored_day(lake_root, dt, frame, model)
    return lake_root, landing.truth["incidents"][0]


def table(root: str, name: str, dt: str) -> pd.DataFrame:
    return DuckDBEngine(root).query(f"SELECT * FROM reviews.{name} WHERE dt = ? ORDER BY level, key", [dt])


def test_an_incident_day_is_flagged_tabled_reported_and_mailed_once(airflow_db, incident_lake):
    root, incident = incident_lake
    product, dt = str(incident["clothing_id"]), incident["dates"][0]
    with smtp_server() as (port, inbox):
        env = {"AIRFLOW_CONN_REVIEWFLOW_SMTP": smtp_connection(port), "REVIEWFLOW_NOTIFIER": "smtp",
               "REVIEWFLOW_NOTIFIER_CONN_ID": "reviewflow_smtp", "REVIEWFLOW_NOTIFIER_TO": "merch@example.com"}  # fmt: skip
        run = airflow_dags_test("review_insights", dt, env=env)
        assert run.ok, run.output[-4000:]
        lake = LocalLake(root)
        report = read_json(lake, f"reports/insights/dt={dt}/insights.json")
        alert = next(a for a in report["alerts"] if a["level"] == "product" and a["key"] == product)
        assert any(term in " ".join(alert["terms"]) for term in incident["terms"]), alert["terms"]
        assert {"dt", "tested", "skipped", "alerts"} <= set(report) and report["skipped"] > 0
        assert set(alert) >= {"level", "key", "reviews", "negative_share", "baseline_negative_share", "q_value",
                              "terms", "examples"}  # fmt: skip
        # the figures, recounted from the lake's parquet (not through the insights SQL)
        preds = pd.read_parquet(f"{root}/predictions/dt={dt}/part-0.parquet")
        curated = pd.read_parquet(f"{root}/curated/reviews/dt={dt}/part-0.parquet")
        mine = preds.merge(curated, on="review_id").query("clothing_id == @incident['clothing_id']")
        assert alert["reviews"] == len(mine)
        assert alert["negative_share"] == pytest.approx((mine["sentiment_pred"] == -1).mean(), abs=1e-4)
        html = lake.read_bytes(f"reports/insights/dt={dt}/insights.html").decode()
        assert alert["label"] in html and "data:image/png;base64," in html

        alerts_table = table(root, "product_alerts", dt)
        row = alerts_table[(alerts_table["level"] == "product") & (alerts_table["key"] == product)].iloc[0]
        assert json.loads(row["terms"]) == alert["terms"]
        daily = table(root, "product_sentiment_daily", dt)
        assert daily.loc[(daily["level"] == "product") & (daily["key"] == product), "alert"].item()
        assert int(daily["tested"].sum()) == report["tested"]

        records = [json.loads(line) for line in lake.read_bytes(f"reports/alerts/dt={dt}/alerts.jsonl").splitlines()]
        assert any(r["kind"] == "product" and product in r["title"] for r in records)
        assert len(inbox.messages) == 1, [m["Subject"] for _, _, m in inbox.messages]
        _, recipients, mail = inbox.messages[0]
        assert recipients == ["merch@example.com"] and "review_insights" in mail["Subject"]
        assert f"product {product}" in html_of(mail)

        again = airflow_dags_test("review_insights", dt, env=env)  # a rerun: the same rows, not twice as many
        assert again.ok, again.output[-4000:]
        pd.testing.assert_frame_equal(table(root, "product_alerts", dt), alerts_table)
        assert len(table(root, "product_sentiment_daily", dt)) == len(daily)
        rerun = [json.loads(line) for line in lake.read_bytes(f"reports/alerts/dt={dt}/alerts.jsonl").splitlines()]
        assert len(rerun) == len(records)
        assert len(inbox.messages) == 2  # one digest per run


def test_a_day_without_predictions_reports_nothing_tested(airflow_db, incident_lake):
    root, _ = incident_lake
    run = airflow_dags_test("review_insights", "2024-03-01")  # before the data: nothing to test, no failure
    assert run.ok, run.output[-4000:]
    report = read_json(LocalLake(root), "reports/insights/dt=2024-03-01/insights.json")
    assert report["tested"] == 0 and report["alerts"] == [] and report["reviews"] == 0
    assert table(root, "product_sentiment_daily", "2024-03-01").empty
