"""Realised quality as it runs: `sentiment_batch_scoring` in a fresh process, with a planted decay.

A real TF-IDF champion (trained on other generated days, registered and promoted in the lake
registry) scores four curated days; on the last two the truth (the rating sentiment) is shuffled,
as if the world had stopped agreeing with the model. The run must write the table and report of
every date, flag decay on the last date only (two consecutive dates below the floor: the default
``realised_quality_decay_days``), raise one critical ``realised_quality`` alert for it and emit a
``model_decay`` asset event whose extra names the date and the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from fresh_process import airflow_dags_test
from scored_lake import CURATED, curated_frame

from reviewflow import contract, layout
from reviewflow.scoring import drift
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.lake import LocalLake, read_json, write_json, write_parquet
from reviewflow.storage.sql import DuckDBEngine
from reviewflow.training import registry
from tools import sample_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DATES = ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"]
SHUFFLED = {"2024-05-03", "2024-05-04"}
ROWS = 600


def champion_in_registry(lake: LocalLake) -> dict:
    """A TF-IDF + logistic regression model in the lake registry, promoted, with its test macro-F1 and drift reference."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline

    train = curated_frame(sample_data.generate_reviews(3000, seed=999), "train")
    test = curated_frame(sample_data.generate_reviews(1000, seed=998), "test")
    texts = contract.model_text(train["title"], train["review_text"])
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                          LogisticRegression(max_iter=1000, class_weight="balanced"))  # fmt: skip
    model.fit(texts, train["sentiment"] + 1)  # include/models/tfidf.py's class order: 0/1/2
    pred = model.predict(contract.model_text(test["title"], test["review_text"])) - 1
    test_f1 = float(f1_score(test["sentiment"], pred, labels=contract.LABELS, average="macro", zero_division=0))
    prefix = layout.model_prefix("tfidf", "v1")
    Path(lake.path(prefix)).mkdir(parents=True, exist_ok=True)
    joblib.dump(model, lake.path(prefix + "model.joblib"))
    write_json(lake, prefix + "metrics.json", {"test": {"macro_f1": test_f1}})
    predicted = pd.Series(model.predict(texts[:1000]) - 1)
    write_json(lake, prefix + layout.DRIFT_REFERENCE,
               drift.reference_profile(pd.Series(texts[:1000]), predicted, train["department_name"][:1000]))  # fmt: skip
    registry.register(lake, "tfidf", "v1", "tfidf", {"test": {"macro_f1": test_f1}},
                      evaluation={"n": len(test), "macro_f1": test_f1, "accuracy": None, "per_class": {}})  # fmt: skip
    return registry.promote(lake, registry.get_version(lake, "tfidf", "v1"))


@pytest.fixture
def curated_lake(lake_root):
    lake, catalog = LocalLake(lake_root), DuckDBCatalog(lake_root)
    champion = champion_in_registry(lake)
    rng = np.random.default_rng(5)
    for i, dt in enumerate(DATES):
        frame = curated_frame(sample_data.generate_reviews(ROWS, seed=40 + i, start_index=(40 + i) * 10_000), dt)
        if dt in SHUFFLED:  # the planted decay: the ratings no longer say what the text says
            frame["sentiment"] = rng.permutation(frame["sentiment"].to_numpy())
        write_parquet(lake, layout.curated_key(dt), frame)
        catalog.register_table(layout.CURATED_TABLE, lake.uri(layout.CURATED), CURATED, "parquet")
        catalog.register_partition(layout.CURATED_TABLE, dt)
    return lake_root, champion


def model_decay_events() -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "model_decay")
        ).all()  # fmt: skip
    return [r[0] for r in rows]


def test_a_planted_decay_is_measured_alerted_and_emitted(airflow_db, curated_lake):
    root, champion = curated_lake
    before = model_decay_events()
    run = airflow_dags_test("sentiment_batch_scoring", DATES[-1])  # plan: every unscored curated date up to D
    assert run.ok, run.tail()
    lake = LocalLake(root)
    table = DuckDBEngine(root).query("SELECT * FROM reviews.realised_quality ORDER BY dt")
    assert list(table["dt"]) == DATES
    assert set(table["model"]) == {"tfidf"} and set(table["version"]) == {"v1"}
    assert table["test_macro_f1"].tolist() == pytest.approx([champion["metrics"]["test_macro_f1"]] * 4)
    clean, shuffled = table[~table["dt"].isin(SHUFFLED)], table[table["dt"].isin(SHUFFLED)]
    assert (clean["ci_high"] >= clean["test_macro_f1"] - 0.05).all(), clean.to_dict("records")
    assert (shuffled["ci_high"] < shuffled["test_macro_f1"] - 0.05).all(), shuffled.to_dict("records")
    assert table["decay"].tolist() == [False, False, False, True]  # two consecutive dates below: the second one

    report = read_json(lake, f"reports/realised_quality/dt={DATES[-1]}/realised_quality.json")
    assert report["decay"] and [p["dt"] for p in report["trend"]] == DATES
    assert {f["facet"] for f in report["facets"]} == {"department_name", "class_name", "age_band"}
    html = lake.read_bytes(f"reports/realised_quality/dt={DATES[-1]}/realised_quality.html").decode()
    assert "Model decay" in html and "data:image/png;base64," in html

    concept = read_json(lake, f"reports/drift/dt={DATES[-1]}/drift_report.json")["concept"]  # concept drift
    assert set(concept) >= {"predicted", "realised", "psi"} and sum(concept["realised"].values()) == pytest.approx(1)
    drift_html = lake.read_bytes(f"reports/drift/dt={DATES[-1]}/drift_report.html").decode()
    assert "Concept drift: predicted vs realised labels" in drift_html

    records = [json.loads(x) for x in lake.read_bytes(f"reports/alerts/dt={DATES[-1]}/alerts.jsonl").splitlines()]
    decay = [r for r in records if r["kind"] == "realised_quality"]
    assert len(decay) == 1 and decay[0]["severity"] == "critical", records
    for dt in DATES[:-1]:
        key = f"reports/alerts/dt={dt}/alerts.jsonl"
        earlier = [json.loads(x) for x in lake.read_bytes(key).splitlines()] if lake.exists(key) else []
        assert not [r for r in earlier if r["kind"] == "realised_quality"], (dt, earlier)

    events = model_decay_events()[len(before) :]
    assert len(events) == 1, events
    extra = events[0] if isinstance(events[0], dict) else json.loads(events[0])
    assert {k: extra[k] for k in ("dt", "model", "version")} == {"dt": DATES[-1], "model": "tfidf", "version": "v1"}
    assert extra["macro_f1"] == pytest.approx(table["macro_f1"].iloc[-1])
