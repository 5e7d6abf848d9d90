"""Realised quality: its metrics against sklearn, the bootstrap CI, the decay rule, outputs and alerts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from reviewflow import layout
from reviewflow.alerts.sources import from_realised_quality
from reviewflow.alerts.tasks import realised_quality_alerts
from reviewflow.config import Settings
from reviewflow.contract import LABELS
from reviewflow.scoring import quality
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.lake import LocalLake, read_json, read_parquet, write_parquet


def noisy(n: int, accuracy: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(LABELS, size=n, p=[0.2, 0.15, 0.65])
    wrong = rng.random(n) > accuracy
    pred = np.where(wrong, rng.choice(LABELS, size=n), y)
    return y, pred


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_from_counts_is_sklearns(seed):
    y, pred = noisy(300, 0.7, seed)
    if seed == 4:  # a class never predicted nor true: sklearn's zero_division=0 convention
        keep = y != 0
        y, pred = y[keep], np.where(pred[keep] == 0, 1, pred[keep])
    expected = f1_score(y, pred, labels=LABELS, average="macro", zero_division=0)
    assert quality.macro_f1_from_counts(quality.confusion(y, pred)) == pytest.approx(expected, abs=1e-12)


def test_day_metrics_match_sklearn_overall_per_class_and_per_facet():
    y, pred = noisy(600, 0.75, 7)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"label": y, "pred": pred, "department_name": rng.choice(["Tops", "Dresses"], 600),
                          "class_name": rng.choice(["Knits", "Blouses", "Jeans"], 600),
                          "age_band": rng.choice(["25-34", "35-44"], 600)})  # fmt: skip
    m = quality.day_metrics(frame, min_support=50)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, labels=LABELS, average="macro", zero_division=0))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    per_class = f1_score(y, pred, labels=LABELS, average=None, zero_division=0)
    assert [m["per_class"][c]["f1"] for c in ("negative", "neutral", "positive")] == pytest.approx(list(per_class))
    tops = frame[frame["department_name"] == "Tops"]
    row = next(f for f in m["facets"] if f["facet"] == "department_name" and f["facet_value"] == "Tops")
    assert row["n"] == len(tops)
    assert row["macro_f1"] == pytest.approx(f1_score(tops["label"], tops["pred"], average="macro", zero_division=0))
    assert {f["facet"] for f in m["facets"]} == set(quality.FACETS)


def test_ci_contains_the_point_estimate_is_reproducible_and_narrows_with_n():
    widths = []
    for n in (100, 1000, 10000):
        y, pred = noisy(n, 0.7, n)
        low, high = quality.bootstrap_ci(y, pred)
        point = f1_score(y, pred, labels=LABELS, average="macro", zero_division=0)
        assert low <= point <= high
        assert quality.bootstrap_ci(y, pred) == (low, high)  # fixed seed
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < 0.05
    assert quality.bootstrap_ci([], []) == (None, None)


def row(dt, ci_high, n=500, version="v1"):
    return {"dt": dt, "model": "tfidf", "version": version, "n": n, "ci_high": ci_high}


@pytest.mark.parametrize(
    ("history", "today", "expected"),
    [
        ([row("2024-04-01", 0.40)], row("2024-04-02", 0.40), True),  # 2 consecutive below 0.75 - 0.25
        ([row("2024-04-01", 0.60)], row("2024-04-02", 0.40), False),  # yesterday within the band
        ([], row("2024-04-02", 0.40), False),  # one day is not enough
        ([row("2024-04-01", 0.40)], row("2024-04-02", 0.60), False),  # today within
        ([row("2024-04-01", 0.40)], row("2024-04-02", 0.49), True),  # strictly below 0.5
        ([row("2024-04-01", 0.40)], row("2024-04-02", 0.50), False),  # at the floor is not below it
        ([row("2024-04-01", 0.40), row("2024-04-02", None, n=0)], row("2024-04-03", 0.40), True),  # empty day skipped
        ([row("2024-04-01", 0.40, version="v0")], row("2024-04-02", 0.40), False),  # another version's row
        ([row("2024-04-01", 0.40)], row("2024-04-02", None, n=0), False),  # an empty day never decays
        ([row("2024-04-03", 0.40)], row("2024-04-02", 0.40), False),  # a later date is not history
    ],
)
def test_decay_rule_on_a_synthetic_history(history, today, expected):
    assert quality.is_decayed(history, today, 0.75, 0.25, 2) is expected  # the floor: 0.5, exact in binary


def test_decay_days_one_and_three():
    assert quality.is_decayed([], row("2024-04-02", 0.6), 0.7, 0.05, 1)
    two = [row("2024-04-01", 0.6), row("2024-04-02", 0.6)]
    assert quality.is_decayed(two, row("2024-04-03", 0.6), 0.7, 0.05, 3)
    assert not quality.is_decayed(two[1:], row("2024-04-03", 0.6), 0.7, 0.05, 3)
    assert not quality.is_decayed(two, row("2024-04-03", 0.6), None, 0.05, 3)  # no test score: no rule


# -- the task function on a small lake ----------------------------------------------------------


def write_day(lake, catalog, dt, n, accuracy, seed, labels=None):
    y, pred = noisy(n, accuracy, seed)
    ids = [f"{dt}-{i}" for i in range(n)]
    curated = pd.DataFrame({"review_id": ids, "sentiment": y, "department_name": "Tops", "class_name": "Knits",
                            "age": 30, "title": "", "review_text": "x"})  # fmt: skip
    write_parquet(lake, layout.curated_key(dt), curated)
    preds = pd.DataFrame({"review_id": ids, "dt": dt, "sentiment_pred": pred, "model_name": "tfidf",
                          "model_version": "v1"})  # fmt: skip
    write_parquet(lake, layout.predictions_key(dt), preds)
    return y, pred


CHAMPION = {"model_name": "tfidf", "version": "v1", "metrics": {"test_macro_f1": 0.80}}


def test_outputs_decay_alert_and_idempotence(tmp_path):
    lake, catalog = LocalLake(str(tmp_path)), DuckDBCatalog(str(tmp_path))
    settings = Settings(realised_quality_max_drop=0.05, realised_quality_decay_days=2)
    write_day(lake, catalog, "2024-04-01", 800, 0.95, 1)  # healthy
    write_day(lake, catalog, "2024-04-02", 800, 0.4, 2)  # decayed, first day
    write_day(lake, catalog, "2024-04-03", 800, 0.4, 3)  # decayed, second day: the alert
    out = {dt: quality.realised_quality(lake, catalog, dt, settings, CHAMPION)
           for dt in ("2024-04-01", "2024-04-02", "2024-04-03")}  # fmt: skip
    assert [out[d]["decay"] for d in sorted(out)] == [False, False, True]
    y, pred = noisy(800, 0.4, 3)
    assert out["2024-04-03"]["macro_f1"] == pytest.approx(f1_score(y, pred, labels=LABELS, average="macro"))
    report = read_json(lake, "reports/realised_quality/dt=2024-04-03/realised_quality.json")
    assert [p["dt"] for p in report["trend"]] == ["2024-04-01", "2024-04-02", "2024-04-03"]
    html = lake.read_bytes("reports/realised_quality/dt=2024-04-03/realised_quality.html").decode()
    assert "Model decay" in html and "data:image/png;base64," in html
    table = read_parquet(lake, "quality/realised_quality/dt=2024-04-03/part-0.parquet")
    assert list(table.columns) == list(quality.COLUMNS) and bool(table["decay"].item())
    assert catalog.partitions(layout.REALISED_QUALITY_TABLE) == ["2024-04-01", "2024-04-02", "2024-04-03"]

    alerts = realised_quality_alerts([out["2024-04-01"], out["2024-04-03"], None])
    assert list(alerts) == ["2024-04-01", "2024-04-03"] and alerts["2024-04-01"] == []
    (alert,) = alerts["2024-04-03"]
    assert alert.kind == "realised_quality" and alert.severity == "critical" and "decay" in alert.title

    again = quality.realised_quality(lake, catalog, "2024-04-03", settings, CHAMPION)  # a rerun: same row, once
    assert {k: again[k] for k in ("macro_f1", "ci_low", "ci_high", "decay")} == {
        k: out["2024-04-03"][k] for k in ("macro_f1", "ci_low", "ci_high", "decay")
    }
    assert len(lake.list("quality/realised_quality/dt=2024-04-03/")) == 1


def test_human_labels_win_over_ratings(tmp_path):
    lake, catalog = LocalLake(str(tmp_path)), DuckDBCatalog(str(tmp_path))
    y, pred = write_day(lake, catalog, "2024-04-01", 200, 0.5, 4)
    # a person corrected every wrong row: the realised truth now equals the predictions
    ids = [f"2024-04-01-{i}" for i in range(200) if y[i] != pred[i]]
    fixes = pd.DataFrame({"review_id": ids, "label": [int(pred[int(i.rsplit("-", 1)[1])]) for i in ids],
                          "label_file": "f.csv", "label_line": 2})  # fmt: skip
    write_parquet(lake, layout.LABELS_KEY, fixes)
    out = quality.realised_quality(lake, catalog, "2024-04-01", Settings(), CHAMPION)
    assert out["macro_f1"] == pytest.approx(1.0) and out["accuracy"] == pytest.approx(1.0)
    assert read_json(lake, "reports/realised_quality/dt=2024-04-01/realised_quality.json")["human_labels"] == len(ids)


def test_an_empty_day_is_a_typed_row_with_nulls_and_no_alert(tmp_path):
    from reviewflow.scoring.score import predictions_schema

    lake, catalog = LocalLake(str(tmp_path)), DuckDBCatalog(str(tmp_path))
    write_parquet(lake, layout.predictions_key("2024-04-05"), predictions_schema().empty_table().to_pandas())
    out = quality.realised_quality(lake, catalog, "2024-04-05", Settings(), CHAMPION)
    assert out["n"] == 0 and out["macro_f1"] is None and out["decay"] is False
    assert from_realised_quality(out) == []
    table = read_parquet(lake, "quality/realised_quality/dt=2024-04-05/part-0.parquet")
    assert table["n"].item() == 0 and table["macro_f1"].isna().item() and str(table["macro_f1"].dtype) == "float64"
    assert (
        "no scored reviews" in lake.read_bytes("reports/realised_quality/dt=2024-04-05/realised_quality.html").decode()
    )
    assert quality.realised_quality(lake, catalog, "2024-04-06", Settings(), CHAMPION)["n"] == 0  # no predictions


def test_drift_concept_shares_compare_predicted_with_realised_labels():
    from reviewflow.scoring.drift import concept_shares

    same = concept_shares(pd.Series([-1, 0, 1, 1]), pd.Series([-1, 0, 1, 1]))
    assert same["psi"] == 0 and same["realised"] == {"-1": 0.25, "0": 0.25, "1": 0.5}
    shifted = concept_shares(pd.Series([1, 1, 1, 1]), pd.Series([-1, -1, 1, 1]))
    assert shifted["gap"] == {"-1": -0.5, "0": 0.0, "1": 0.5} and shifted["psi"] > 0.2


def test_drift_html_shows_predicted_vs_realised_shares():
    from reviewflow.scoring.drift import concept_shares, render_html

    reference = {"rows": 4, "predicted": {"-1": 0.25, "0": 0.25, "1": 0.5}, "length": {}, "department": {},
                 "oov_share": 0.0}  # fmt: skip
    current = {**reference, "rows": 4}
    concept = concept_shares(pd.Series([1, 1, 1, 1]), pd.Series([-1, -1, 1, 1]))
    html = render_html("2024-04-06", "tfidf v1", reference, current, {"checks": [], "alerts": []}, concept)
    assert "Concept drift" in html
    section = html.split("Concept drift", 1)[1]
    assert "negative" in section and "-50.0 pt" in section and "+50.0 pt" in section  # the gaps, per label
    assert "Concept drift" not in render_html(
        "2024-04-06", "tfidf v1", reference, current, {"checks": [], "alerts": []}
    )
