"""Bias and class-imbalance report: exact metric values on a hand-computed fixture, edge cases,
both scopes, the SQL on DuckDB, the HTML, and the DAG end to end in local mode.

Expected numbers are worked out by hand below with plain arithmetic (never by calling
reviewflow.bias.metrics), from this fixture (report date D = 2024-01-03):

    #  department class    division        age band   sentiment dt
    1  Tops       Knits    General          24 <25       1      D1
    2  Tops       Knits    General Petite   25 25-34     1      D1
    3  Tops       Blouses  General Petite   44 35-44     0      D1
    4  Tops       Blouses  General          45 45-54    -1      D
    5  Dresses    Dresses  General          23 <25       1      D
    6  Dresses    Dresses  General          33 25-34    -1      D
    7  Dresses    Dresses  General Petite   64 55-64    -1      D1
    8  Dresses    Dresses  General          65 65+       1      D
    9  Trend      Trend    General          45 45-54     1      D
   10  Tops       Knits    General          29 25-34     1      D
   11  Tops       Knits    General          35 35-44    -1      D3 (after D: in no scope)

cumulative (dt <= D): rows 1-10; partition (dt = D): rows 4, 5, 6, 8, 9, 10.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from reviewflow.bias import dates as bias_dates
from reviewflow.bias import metrics as bias
from reviewflow.bias import tasks as bias_tasks
from reviewflow.config import ConfigError, get_settings
from reviewflow.contract import CURATED_COLUMNS
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.sql import DuckDBEngine, render_sql

D1, D, D3 = "2024-01-02", "2024-01-03", "2024-01-04"
ROWS = [
    ("Tops", "Knits", "General", 24, 1, D1),
    ("Tops", "Knits", "General Petite", 25, 1, D1),
    ("Tops", "Blouses", "General Petite", 44, 0, D1),
    ("Tops", "Blouses", "General", 45, -1, D),
    ("Dresses", "Dresses", "General", 23, 1, D),
    ("Dresses", "Dresses", "General", 33, -1, D),
    ("Dresses", "Dresses", "General Petite", 64, -1, D1),
    ("Dresses", "Dresses", "General", 65, 1, D),
    ("Trend", "Trend", "General", 45, 1, D),
    ("Tops", "Knits", "General", 29, 1, D),
    ("Tops", "Knits", "General", 35, -1, D3),
]
ln = math.log


def write_fixture_lake(root: str, rows: list[tuple] = ROWS) -> None:
    """The fixture as curated parquet partitions, registered in the local DuckDB catalog."""
    frame = pd.DataFrame(rows, columns=["department_name", "class_name", "division_name", "age", "sentiment", "dt"])
    frame["review_id"] = [f"r{i}" for i in range(len(frame))]
    frame["source_row_id"] = range(len(frame))
    frame["clothing_id"] = 1
    frame["title"] = "t"
    frame["review_text"] = "text"
    frame["rating"] = frame["sentiment"].map({-1: 1, 0: 3, 1: 5})
    frame["recommended_ind"] = (frame["sentiment"] > 0).astype(int)
    frame["positive_feedback_count"] = 0
    frame["source_file"] = "fixture.csv"
    frame["ingest_run"] = "test"
    catalog = DuckDBCatalog(root)
    for dt, part in frame.groupby("dt"):
        folder = Path(root) / "curated" / "reviews" / f"dt={dt}"
        folder.mkdir(parents=True)
        part[CURATED_COLUMNS].to_parquet(folder / "part-0.parquet", index=False)
    columns = {c: "BIGINT" if c in ("source_row_id", "clothing_id", "age", "rating", "recommended_ind",
                                    "positive_feedback_count", "sentiment") else "VARCHAR" for c in CURATED_COLUMNS}  # fmt: skip
    catalog.register_table("curated_reviews", f"{root}/curated/reviews", {**columns, "dt": "VARCHAR"}, "parquet")
    for dt in sorted(frame["dt"].unique()):
        catalog.register_partition("curated_reviews", dt)


@pytest.fixture(scope="module")
def fixture_lake(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("bias-lake"))
    write_fixture_lake(root)
    return root


@pytest.fixture(scope="module")
def counts(fixture_lake) -> pd.DataFrame:
    return bias_tasks.fetch_counts(DuckDBEngine(fixture_lake), D)


@pytest.fixture(scope="module")
def report(counts) -> dict:
    return bias.build_report(counts, D)


def metrics_of(report: dict, scope: str, facet: str, value: str, label: int) -> dict[str, dict]:
    found = {
        m["metric"]: m
        for m in report["metrics"]
        if (m["scope"], m["facet"], m["facet_value"], m["label_value"]) == (scope, facet, value, label)
    }
    assert set(found) == set(bias.METRICS), found
    return found


def assert_values(found: dict[str, dict], expected: dict[str, float | None], n_a: int, n_d: int) -> None:
    for metric, value in expected.items():
        record = found[metric]
        assert (record["n_a"], record["n_d"]) == (n_a, n_d), record
        if value is None:
            assert record["value"] is None and record["reason"], record
        else:
            assert record["value"] == pytest.approx(value, abs=1e-12), (metric, record)
            assert "reason" not in record


# -- SQL -----------------------------------------------------------------------------------


def test_blank_and_null_facet_values_count_as_missing(tmp_path):
    write_fixture_lake(str(tmp_path), [*ROWS, ("", None, " ", None, 1, D), (None, "Knits", "General", 30, 0, D)])
    counts = bias_tasks.fetch_counts(DuckDBEngine(str(tmp_path)), D)
    missing = counts[counts["department_name"] == "(missing)"]
    assert missing["n_cumulative"].sum() == 2
    assert set(missing["class_name"]) == {"(missing)", "Knits"} and "(missing)" in set(missing["division_name"])
    assert "" not in set(counts["department_name"]) | set(counts["division_name"])
    assert "(missing)" in set(counts["age_band"])


def test_sql_is_portable_and_parameterised():
    sql = render_sql("bias_counts", database="reviews", table="curated_reviews")
    assert "FROM reviews.curated_reviews" in sql
    assert sql.count("?") == 2  # both scopes from one scan: dt = ? and dt <= ?
    code = "\n".join(line.split("--")[0] for line in sql.splitlines()).upper()
    for duckdb_only in ("::", " FILTER", "ILIKE", "QUALIFY", "EPOCH_MS", "STRFTIME", "LIST_", "STRUCT_PACK"):
        assert duckdb_only not in code, duckdb_only
    assert "GROUP BY" in code and "CASE" in code


def test_counts_come_back_aggregated(counts):
    # the lake never comes back: one row per observed (facets, label) combination
    assert list(counts.columns) == [*bias.FACETS, "label_value", "n_cumulative", "n_partition"]
    assert counts["n_cumulative"].sum() == 10  # row 11 (after D) is in no scope
    assert counts["n_partition"].sum() == 6
    bands = counts.groupby("age_band")["n_cumulative"].sum().to_dict()
    # ages 24,23 | 25,33,29 | 44 | 45,45 | 64 | 65: the band edges fall where the CASE says
    assert bands == {"<25": 2, "25-34": 3, "35-44": 1, "45-54": 2, "55-64": 1, "65+": 1}


def test_counts_rejects_a_bad_date(fixture_lake):
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        bias_tasks.fetch_counts(DuckDBEngine(fixture_lake), "2024-01-03' OR 1=1 --")
    with pytest.raises(ValueError):
        bias_dates.check_date("2024-02-30")


# -- label distribution --------------------------------------------------------------------


def test_label_distribution_both_scopes(report):
    cumulative = report["label_distribution"]["cumulative"]
    assert cumulative["overall"]["n"] == 10
    assert cumulative["overall"]["counts"] == {"-1": 3, "0": 1, "1": 6}
    assert cumulative["overall"]["shares"] == pytest.approx({"-1": 0.3, "0": 0.1, "1": 0.6})
    assert cumulative["overall"]["imbalance_ratio"] == pytest.approx(6 / 1)
    dresses = next(r for r in cumulative["facets"]["department_name"] if r["facet_value"] == "Dresses")
    assert dresses["counts"] == {"-1": 2, "0": 0, "1": 2}
    assert dresses["imbalance_ratio"] is None and "0" in dresses["reason"]
    tops = next(r for r in cumulative["facets"]["department_name"] if r["facet_value"] == "Tops")
    assert tops["counts"] == {"-1": 1, "0": 1, "1": 3} and tops["imbalance_ratio"] == pytest.approx(3 / 1)
    assert [r["facet_value"] for r in cumulative["facets"]["age_band"]] == [
        "<25", "25-34", "35-44", "45-54", "55-64", "65+"]  # fmt: skip

    partition = report["label_distribution"]["partition"]
    assert partition["overall"]["counts"] == {"-1": 2, "0": 0, "1": 4}
    assert partition["overall"]["imbalance_ratio"] is None and "unbounded" in partition["overall"]["reason"]
    assert [r["facet_value"] for r in partition["facets"]["division_name"]] == ["General"]
    assert report["scopes"] == {
        "cumulative": {"filter": f"dt <= {D}", "rows": 10},
        "partition": {"filter": f"dt = {D}", "rows": 6},
    }


# -- every metric, exact -------------------------------------------------------------------


def test_every_metric_dresses_negative_cumulative(report):
    # d = Dresses (rows 5-8): n_d = 4, n_a = 6; y = sentiment -1: y_d = 2 (6, 7), y_a = 1 (4)
    q_a, q_d = 1 / 6, 2 / 4
    p_a, p_d = (5 / 6, 1 / 6), (1 / 2, 1 / 2)
    m = ((5 / 6 + 1 / 2) / 2, (1 / 6 + 1 / 2) / 2)  # = (2/3, 1/3)
    kl_am = 5 / 6 * ln((5 / 6) / m[0]) + 1 / 6 * ln((1 / 6) / m[1])
    kl_dm = 1 / 2 * ln((1 / 2) / m[0]) + 1 / 2 * ln((1 / 2) / m[1])
    # CDDL by age band (n_i, y = -1 rows / Dresses among them, not-y rows / Dresses among them):
    #   <25   n=2  y: none -> A=0     not-y: 1,5 -> D=1/2     2 * (1/2 - 0) =  1
    #   25-34 n=3  y: 6 -> A=1        not-y: 2,10 -> D=0      3 * (0 - 1)   = -3
    #   35-44 n=1  y: none            not-y: 3 -> D=0                          0
    #   45-54 n=2  y: 4 -> A=0        not-y: 9 -> D=0                          0
    #   55-64 n=1  y: 7 -> A=1        not-y: none -> D=0      1 * (0 - 1)   = -1
    #   65+   n=1  y: none -> A=0     not-y: 8 -> D=1         1 * (1 - 0)   =  1
    cddl = (1 - 3 + 0 + 0 - 1 + 1) / 10
    expected = {
        "CI": (6 - 4) / (6 + 4),
        "DPL": q_a - q_d,
        "KL": p_a[0] * ln(p_a[0] / p_d[0]) + p_a[1] * ln(p_a[1] / p_d[1]),
        "JS": 0.5 * (kl_am + kl_dm),
        "LP": math.sqrt((p_a[0] - p_d[0]) ** 2 + (p_a[1] - p_d[1]) ** 2),
        "TVD": 0.5 * (abs(p_a[0] - p_d[0]) + abs(p_a[1] - p_d[1])),
        "KS": max(abs(p_a[0] - p_d[0]), abs(p_a[1] - p_d[1])),
        "CDDL": cddl,
    }
    found = metrics_of(report, "cumulative", "department_name", "Dresses", -1)
    assert_values(found, expected, n_a=6, n_d=4)
    assert found["CDDL"]["group"] == "age_band"
    assert expected["DPL"] == pytest.approx(-1 / 3) and expected["CDDL"] == pytest.approx(-0.2)


def test_one_row_facet_value(report):
    # d = Trend (row 9 only): n_d = 1, n_a = 9; y = sentiment 1: y_d = 1, y_a = 5 (1, 2, 5, 8, 10)
    p_a, p_d = (4 / 9, 5 / 9), (0.0, 1.0)
    m = (2 / 9, 7 / 9)
    js = 0.5 * ((4 / 9) * ln((4 / 9) / m[0]) + (5 / 9) * ln((5 / 9) / m[1]) + 1.0 * ln(1.0 / m[1]))
    # CDDL by age band: only 45-54 (rows 4, 9) has Trend: y = {9} -> A = 1, not-y = {4} -> D = 0
    expected = {
        "CI": (9 - 1) / 10,
        "DPL": 5 / 9 - 1,
        "KL": None,  # P_d(not y) = 0 while P_a(not y) = 4/9: infinite
        "JS": js,
        "LP": math.sqrt(2) * 4 / 9,
        "TVD": 4 / 9,
        "KS": 4 / 9,
        "CDDL": 2 * (0 - 1) / 10,
    }
    found = metrics_of(report, "cumulative", "department_name", "Trend", 1)
    assert_values(found, expected, n_a=9, n_d=1)
    assert "not y" in found["KL"]["reason"] and p_d[0] == 0 < p_a[0]


def test_facet_value_without_rows_of_a_label(report):
    # d = Dresses, y = sentiment 0: Dresses has no neutral rows (q_d = 0); a has row 3 (q_a = 1/6)
    p_a, p_d = (5 / 6, 1 / 6), (1.0, 0.0)
    m = (11 / 12, 1 / 12)
    js = 0.5 * (5 / 6 * ln((5 / 6) / m[0]) + 1 / 6 * ln((1 / 6) / m[1]) + 1.0 * ln(1.0 / m[0]))
    # CDDL: the only neutral row (3, 35-44) is Tops, so every A_i = 0; D_i = Dresses' share of
    # stratum i (all its rows are not-y): <25 1/2, 25-34 1/3, 35-44 0, 45-54 0, 55-64 1, 65+ 1
    cddl = (2 * 1 / 2 + 3 * 1 / 3 + 0 + 0 + 1 * 1 + 1 * 1) / 10
    expected = {"CI": 0.2, "DPL": 1 / 6 - 0, "KL": None, "JS": js, "LP": math.sqrt(2) / 6, "TVD": 1 / 6,
                "KS": 1 / 6, "CDDL": cddl}  # fmt: skip
    found = metrics_of(report, "cumulative", "department_name", "Dresses", 0)
    assert_values(found, expected, n_a=6, n_d=4)
    assert "P_d(y) = 0" in found["KL"]["reason"] and p_d[1] == 0 < p_a[1]


def test_facet_value_equal_to_the_whole_scope(report):
    # partition scope: every row of D is division General, so n_a = 0
    for label in bias.LABEL_VALUES:
        found = metrics_of(report, "partition", "division_name", "General", label)
        assert found["CI"]["value"] == pytest.approx((0 - 6) / (0 + 6))
        for metric in ("DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL"):
            assert found[metric]["value"] is None, found[metric]
            assert "n_a = 0" in found[metric]["reason"]
            assert (found[metric]["n_a"], found[metric]["n_d"]) == (0, 6)


def test_partition_scope_alone(report):
    # partition rows 4, 5, 6, 8, 9, 10. d = Tops (4, 10): n_d = 2, n_a = 4.
    # y = sentiment -1: y_d = 1 (4), y_a = 1 (6) -> q_d = 1/2, q_a = 1/4
    p_a, p_d = (3 / 4, 1 / 4), (1 / 2, 1 / 2)
    m = (5 / 8, 3 / 8)
    kl_am = p_a[0] * ln(p_a[0] / m[0]) + p_a[1] * ln(p_a[1] / m[1])
    kl_dm = p_d[0] * ln(p_d[0] / m[0]) + p_d[1] * ln(p_d[1] / m[1])
    # CDDL by age band: <25 {5} y:-, not-y: 5 -> D=0 | 25-34 {6,10}: y {6} A=0, not-y {10} D=1
    #                   45-54 {4,9}: y {4} A=1, not-y {9} D=0 | 65+ {8}: not-y D=0
    cddl = (1 * 0 + 2 * (1 - 0) + 2 * (0 - 1) + 1 * 0) / 6
    expected = {
        "CI": (4 - 2) / 6,
        "DPL": 1 / 4 - 1 / 2,
        "KL": 3 / 4 * ln((3 / 4) / (1 / 2)) + 1 / 4 * ln((1 / 4) / (1 / 2)),
        "JS": 0.5 * (kl_am + kl_dm),
        "LP": math.sqrt(2) / 4,
        "TVD": 1 / 4,
        "KS": 1 / 4,
        "CDDL": cddl,
    }
    assert_values(metrics_of(report, "partition", "department_name", "Tops", -1), expected, n_a=4, n_d=2)
    # sentiment 0 has no rows on D at all: P_a = P_d = (1, 0), every divergence is 0, and CDDL is
    # the demographic disparity (A_i = 0, D_i = Tops' share): (2 * 1/2 + 2 * 1/2) / 6
    none = {"DPL": 0.0, "KL": 0.0, "JS": 0.0, "LP": 0.0, "TVD": 0.0, "KS": 0.0, "CDDL": 2 / 6}
    assert_values(metrics_of(report, "partition", "department_name", "Tops", 0), none, n_a=4, n_d=2)


def test_cddl_groups_are_configurable(counts):
    # division_name defaults to department strata; by age band instead:
    # d = General Petite (rows 2, 3, 7), y = sentiment -1 (rows 4, 6, 7):
    #   <25 {1,5} no y, not-y D=0 | 25-34 {2,6,10}: y {6} A=0; not-y {2,10} D=1/2 -> 3 * 1/2
    #   35-44 {3}: not-y D=1 -> 1 * 1 | 45-54 {4,9}: y {4} A=0; not-y {9} D=0
    #   55-64 {7}: y {7} A=1; not-y none D=0 -> 1 * (0 - 1) | 65+ {8}: D=0
    default = bias.build_report(counts, D)
    assert metrics_of(default, "cumulative", "division_name", "General Petite", -1)["CDDL"]["group"] == (
        "department_name"
    )
    custom = bias.build_report(counts, D, cddl_groups={"division_name": "age_band"})
    record = metrics_of(custom, "cumulative", "division_name", "General Petite", -1)["CDDL"]
    assert record["group"] == "age_band"
    assert record["value"] == pytest.approx((3 * 1 / 2 + 1 * 1 - 1) / 10)
    with pytest.raises(ConfigError):
        bias.build_report(counts, D, cddl_groups={"division_name": "division_name"})
    with pytest.raises(ConfigError):
        bias.build_report(counts, D, cddl_groups={"rating": "age_band"})


def test_records_follow_the_contract(report):
    values = {scope: {f: len(report["label_distribution"][scope]["facets"][f]) for f in bias.FACETS}
              for scope in bias.SCOPES}  # fmt: skip
    # cumulative: 3 departments, 4 classes, 2 divisions, 6 age bands; partition: 3, 4, 1, 4
    assert values == {
        "cumulative": {"department_name": 3, "class_name": 4, "division_name": 2, "age_band": 6},
        "partition": {"department_name": 3, "class_name": 4, "division_name": 1, "age_band": 4},
    }
    assert len(report["metrics"]) == (15 + 12) * 3 * 8
    for record in report["metrics"]:
        assert {"facet", "facet_value", "label_value", "metric", "value", "n_a", "n_d", "scope"} <= set(record)
        assert record["metric"] in bias.METRICS and record["label_value"] in (-1, 0, 1)
        assert ("group" in record) == (record["metric"] == "CDDL")
        if record["value"] is None:
            assert record["reason"]
        else:
            assert math.isfinite(record["value"])
    json.dumps(report, allow_nan=False)  # no NaN / Infinity sneaks into the JSON


def test_alerts(counts):
    report = bias.build_report(counts, D, dpl_threshold=0.5, ci_threshold=0.75)
    alerts = report["alerts"]
    assert alerts and all(abs(a["value"]) > a["threshold"] for a in alerts)
    dpl = {(a["scope"], a["facet"], a["facet_value"], a["label_value"]) for a in alerts if a["metric"] == "DPL"}
    # Blouses (rows 3, 4) vs the rest, sentiment 1: q_a = 6/8, q_d = 0 -> DPL = 0.75
    assert ("cumulative", "class_name", "Blouses", 1) in dpl
    assert ("cumulative", "department_name", "Dresses", -1) not in dpl  # |DPL| = 1/3 <= 0.5
    ci = [a for a in alerts if a["metric"] == "CI"]
    # CI is reported once per facet value (not per label): Trend has CI = 0.8 in the cumulative scope
    trend = [a for a in ci if (a["scope"], a["facet"], a["facet_value"]) == ("cumulative", "department_name", "Trend")]
    assert len(trend) == 1 and trend[0]["value"] == pytest.approx(0.8) and trend[0]["label_value"] is None
    assert ("partition", "division_name", "General") in {(a["scope"], a["facet"], a["facet_value"]) for a in ci}

    # DPL of a facet value with fewer rows than alert_min_rows is not an alert (Blouses has 2 rows)
    quiet = bias.build_report(counts, D, dpl_threshold=0.5, ci_threshold=0.75, alert_min_rows=3)["alerts"]
    assert ("cumulative", "class_name", "Blouses", 1) not in {
        (a["scope"], a["facet"], a["facet_value"], a["label_value"]) for a in quiet if a["metric"] == "DPL"
    }
    assert all(a["n_d"] >= 3 for a in quiet)  # DPL and CI alike
    # Alerts are ranked (cumulative first, then how far past the threshold) and say their rule in words.
    cumulative = [a for a in alerts if a["scope"] == "cumulative"]
    assert alerts[: len(cumulative)] == cumulative
    assert [a["rank"] for a in cumulative] == sorted((a["rank"] for a in cumulative), reverse=True)
    blouses = next(a for a in alerts if (a["scope"], a["facet_value"], a["label_value"], a["metric"]) ==
                   ("cumulative", "Blouses", 1, "DPL"))  # fmt: skip
    assert blouses["rank"] == pytest.approx(0.75 / 0.5)
    assert blouses["rule"] == (
        "the positive share of class_name='Blouses' (2 rows) is 75.0 points lower than in the rest (8 rows): "
        "|DPL| 0.750 > 0.5"
    )
    assert trend[0]["rule"] == "department_name='Trend' has 1 of the 10 rows in scope (10.0%): |CI| 0.800 > 0.75"


def test_small_facet_values_raise_no_alert_of_any_metric(counts):
    """min_rows applies to CI too: a facet value with n_d below it raises no alert; its records stay."""
    loud = bias.build_report(counts, D, dpl_threshold=0.5, ci_threshold=0.75)
    quiet = bias.build_report(counts, D, dpl_threshold=0.5, ci_threshold=0.75, alert_min_rows=3)
    small_ci = [a for a in loud["alerts"] if a["metric"] == "CI" and a["n_d"] < 3]
    assert small_ci  # e.g. Trend (1 row): CI = 0.8 > 0.75 without the floor
    assert [a for a in quiet["alerts"] if a["n_d"] < 3] == []
    assert [a for a in quiet["alerts"] if a["metric"] == "CI"] == [a | {"rule": a["rule"] + "; facet values need "
        "at least 3 rows to alert"} for a in loud["alerts"] if a["metric"] == "CI" and a["n_d"] >= 3]  # fmt: skip
    assert quiet["metrics"] == loud["metrics"]  # the small groups' records stay in the report
    trend = [
        m for m in quiet["metrics"] if (m["scope"], m["facet_value"], m["metric"]) == ("cumulative", "Trend", "CI")
    ]
    assert trend and all(m["value"] == pytest.approx(0.8) for m in trend)


# -- the report date -------------------------------------------------------------------------


def test_unreported_dates_are_ingested_dates_without_a_report(lake_root):
    from reviewflow.storage.lake import LocalLake, write_json

    lake = LocalLake(lake_root)
    for dt in ("2024-01-01", "2024-01-02", "2024-01-03"):
        write_json(lake, f"reports/ingest/dt={dt}/ingest_report.json", {"dt": dt})
    write_json(lake, "reports/bias/dt=2024-01-02/bias_report.json", {"dt": "2024-01-02"})
    assert bias_dates.unreported_dates(lake) == ["2024-01-01", "2024-01-03"]


def test_report_dates_from_the_context():
    event = SimpleNamespace(extra={"dt": "2024-01-05", "rows": 3}, partition_key=None)
    keyed = SimpleNamespace(extra={}, partition_key="2024-01-04")
    plain = SimpleNamespace(extra={}, partition_key=None)
    events = {"curated_reviews": [event, keyed, plain, event]}
    run = SimpleNamespace(run_after=datetime(2024, 1, 9, 3, 0, tzinfo=UTC))
    # asset events win, one date each, sorted
    assert bias_dates.report_dates({"triggering_asset_events": events, "params": {"dt": D}, "ds": D}) == [
        "2024-01-04", "2024-01-05"]  # fmt: skip
    # then the dt param, then the logical date, then run_after (asset runs have no logical date)
    assert bias_dates.report_dates({"triggering_asset_events": {"x": [plain]}, "params": {"dt": D}, "ds": D3}) == [D]
    assert bias_dates.report_dates({"triggering_asset_events": {}, "params": {"dt": None}, "ds": D3}) == [D3]
    assert bias_dates.report_dates({"params": {}, "dag_run": run}) == ["2024-01-09"]
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        bias_dates.report_dates({"params": {"dt": "yesterday"}})


# -- HTML ----------------------------------------------------------------------------------


def test_html_is_escaped_and_self_contained():
    from reviewflow.bias.report import render_html

    counts = pd.DataFrame(
        [("<script>alert(1)</script>", "Knits", "General", "<25", 1, 3, 1),
         ("Tops & Tees", "Knits", "General", "25-34", -1, 2, 0),
         ("Tops & Tees", "Blouses", "General Petite", "65+", 0, 1, 1)],
        columns=[*bias.FACETS, "label_value", "n_cumulative", "n_partition"],
    )  # fmt: skip
    counts["label_value"] = counts["label_value"].astype("Int64")
    page = render_html(bias.build_report(counts, D), charts=False)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Tops &amp; Tees" in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from elsewhere
    assert "Largest disparities first" in page and "Alerts" in page


# -- the task function and the DAG, local mode -----------------------------------------------


def test_run_bias_report_writes_and_fails_on_alert(lake_root):
    from airflow.sdk.exceptions import AirflowException

    from reviewflow.storage.lake import LocalLake, read_json

    write_fixture_lake(lake_root)
    settings = replace(
        get_settings(), bias_fail_on_alert=True, bias_dpl_threshold=0.7, bias_ci_threshold=0.99, bias_alert_min_rows=0
    )
    with pytest.raises(AirflowException) as failure:
        bias_tasks.run_bias_report(D, settings, LocalLake(lake_root), DuckDBEngine(lake_root))
    message = str(failure.value)
    assert "Blouses" in message and "DPL(sentiment=1) = +0.750" in message
    lake = LocalLake(lake_root)
    saved = read_json(lake, f"reports/bias/dt={D}/bias_report.json")  # written before failing
    assert saved["dt"] == D and saved["alerts"]
    html = lake.read_bytes(f"reports/bias/dt={D}/bias_report.html").decode()
    assert "data:image/png;base64," in html and "Blouses" in html


@pytest.mark.e2e
@pytest.mark.slow  # an Airflow metadata DB and a DAG.test run (~35 s)
def test_dag_end_to_end_local(airflow_db, lake_root):
    from airflow.dag_processing.dagbag import DagBag

    from reviewflow.config import PROJECT_ROOT
    from reviewflow.storage.lake import LocalLake, read_json

    write_fixture_lake(lake_root)
    dag = DagBag(str(PROJECT_ROOT / "dags")).dags["reviews_bias_report"]
    assert "reviewflow" in dag.tags and dag.doc_md
    # the dt param wins over the logical date (D3) when no asset event names a date
    run = dag.test(logical_date=datetime.fromisoformat(D3).replace(tzinfo=UTC), run_conf={"dt": D})
    assert str(run.state) == "success"
    lake = LocalLake(lake_root)
    saved = read_json(lake, f"reports/bias/dt={D}/bias_report.json")
    assert saved["dt"] == D and saved["scopes"]["cumulative"]["rows"] == 10
    assert {"dt", "generated_at", "scopes", "label_distribution", "metrics", "alerts"} <= set(saved)
    dresses = {m["metric"]: m["value"] for m in saved["metrics"] if (m["scope"], m["facet"], m["facet_value"],
               m["label_value"]) == ("cumulative", "department_name", "Dresses", -1)}  # fmt: skip
    assert dresses["DPL"] == pytest.approx(1 / 6 - 1 / 2) and dresses["CDDL"] == pytest.approx(-0.2)
    assert "<html" in lake.read_bytes(f"reports/bias/dt={D}/bias_report.html").decode()
    assert not lake.exists(f"reports/bias/dt={D3}/bias_report.json")


def test_a_date_before_any_data_gives_an_empty_report(fixture_lake):
    from reviewflow.bias.report import render_html

    empty = bias.build_report(bias_tasks.fetch_counts(DuckDBEngine(fixture_lake), "2023-12-31"), "2023-12-31")
    assert empty["scopes"]["cumulative"]["rows"] == 0 and empty["metrics"] == [] and empty["alerts"] == []
    overall = empty["label_distribution"]["cumulative"]["overall"]
    assert overall["n"] == 0 and overall["imbalance_ratio"] is None and overall["reason"] == "no rows"
    assert "nothing to report" in render_html(empty)


# -- deterministic errors fail at once (no retry) ---------------------------------------------


def dag_task(monkeypatch, dag_id: str, task_id: str, context: dict):
    """A DAG task's own function, with ``get_current_context`` answering ``context``."""
    from airflow.dag_processing.dagbag import DagBag

    from reviewflow.config import PROJECT_ROOT

    function = DagBag(str(PROJECT_ROOT / "dags" / f"{dag_id}.py")).dags[dag_id].get_task(task_id).python_callable
    monkeypatch.setitem(function.__globals__, "get_current_context", lambda: context)
    return function


def test_an_impossible_date_is_refused_clearly():
    with pytest.raises(bias_dates.InvalidDateError, match="'2025-02-30' is not a calendar date"):
        bias_dates.check_date("2025-02-30")
    with pytest.raises(ValueError, match="the `dt` param: '2025-02-30' is not a calendar date"):
        bias_dates.report_dates({"params": {"dt": "2025-02-30"}})


def test_an_impossible_date_fails_the_dag_task_without_retry(monkeypatch, lake_root):
    from airflow.sdk.exceptions import AirflowFailException

    report_dates = dag_task(monkeypatch, "reviews_bias_report", "report_dates", {"params": {"dt": "2025-02-30"}})
    with pytest.raises(AirflowFailException, match="2025-02-30' is not a calendar date") as failure:
        report_dates()
    assert "not retried" in str(failure.value)


def test_bad_cddl_groups_fail_the_report_task_without_retry(monkeypatch, lake_root):
    from airflow.sdk.exceptions import AirflowFailException

    write_fixture_lake(lake_root)
    context = {"params": {"cddl_groups": {"department_name": "colour"}}}
    bias_report = dag_task(monkeypatch, "reviews_bias_report", "bias_report", context)
    with pytest.raises(AirflowFailException, match="ConfigError: cddl group 'department_name' -> 'colour'"):
        bias_report(D)
