"""The detector on the generator's ground truth: planted incidents found, few false alarms, the planted complaint named.

Generated days (tools/sample_data with its planted incidents, or incident-free) are scored by a
real TF-IDF model trained on other generated reviews, then `compute_insights` runs per date on
DuckDB exactly as the review_insights task does. Truth comes from the generator's plan, never
from the detector's own counts.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pandas as pd
import pytest
from scored_lake import train_model, write_scored_day

from reviewflow.config import load_settings
from reviewflow.insights.tasks import compute_insights
from reviewflow.storage.lake import LocalLake
from reviewflow.storage.sql import DuckDBEngine
from tools import sample_data

pytestmark = pytest.mark.slow
START, DAYS, ROWS = "2024-03-01", 21, 2000


@pytest.fixture(scope="module")
def model():
    return train_model(sample_data.generate_reviews(6000, seed=999))


def scored_lake(root: str, model, seed: int, **plan) -> dict:
    """Generate DAYS days into the landing zone, then score each day's file; the generator's truth."""
    landing = sample_data.write_landing(root, days=DAYS, rows_per_day=ROWS, start=START, seed=seed,
                                        dirty_share=0.0, **plan)  # fmt: skip
    lake = LocalLake(root)
    for dt, keys in landing.items():
        frame = pd.concat([pd.read_csv(io.BytesIO(lake.read_bytes(k)), dtype=str, keep_default_na=False) for k in keys])
        write_scored_day(root, dt, frame, model)
    return landing.truth


def insights(root: str, dt: str) -> dict:
    return compute_insights(DuckDBEngine(root), dt, load_settings({"REVIEWFLOW_LAKE": root}))


def test_planted_incidents_are_found_with_their_complaint(tmp_path, model):
    found, planted, term_hits, extra_alerts, tested = 0, 0, 0, 0, 0
    misses = []
    for seed in (0, 1, 2):
        root = str(tmp_path / f"lake-{seed}")
        truth = scored_lake(root, model, seed)
        assert truth["incidents"], "the default plan plants at least one incident"
        incident_days = {(str(i["clothing_id"]), d): i for i in truth["incidents"] for d in i["dates"]}
        for dt in sorted({d for _, d in incident_days}):
            report = insights(root, dt)
            alerted = {a["key"]: a for a in report["alerts"] if a["level"] == "product"}
            tested += report["by_level"]["product"]["tested"]
            for (product, day), incident in incident_days.items():
                if day != dt:
                    continue
                planted += 1
                if product in alerted:
                    found += 1
                    terms = " ".join(alerted[product]["terms"])
                    term_hits += any(t in terms for t in incident["terms"])
                else:
                    misses.append((seed, dt, product))
            extra_alerts += sum(1 for k in alerted if (k, dt) not in incident_days)
    assert planted >= 6
    assert found / planted >= 0.9, f"recall {found}/{planted}; missed {misses}"
    assert term_hits == found, f"the planted complaint is among the top terms in {term_hits} of {found} alerts"
    assert extra_alerts <= max(1, tested // 100), (extra_alerts, tested)


def test_incident_free_data_raises_at_most_one_alarm_per_100_tested_product_days(tmp_path, model):
    root = str(tmp_path / "lake")
    truth = scored_lake(root, model, seed=5, incidents=None, trend=False)
    assert truth["incidents"] == [] and truth["trend"] is None
    tested = alarms = 0
    first = date.fromisoformat(START)
    for day in range(7, DAYS):  # a week of baseline first
        report = insights(root, (first + timedelta(days=day)).isoformat())
        tested += report["by_level"]["product"]["tested"]
        alarms += report["by_level"]["product"]["alerts"]
    assert tested >= 100, tested
    assert alarms <= tested / 100, f"{alarms} false alarms over {tested} tested product-days"
