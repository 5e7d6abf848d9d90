"""The sample generator's ground truth: catalogue, product volume, planted incidents and trend, the loader.

What is planted is checked on what lands: the landing CSVs are read back as ingest would read them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from tools import sample_data

START = "2024-01-01"
ROWS = 2000


def read_landing(lake_root: str | Path) -> pd.DataFrame:
    """Every landing CSV of a lake, with its dt, as strings (malformed records, which ingest quarantines, skipped)."""
    frames = []
    for path in sorted(Path(lake_root, "landing", "reviews").glob("dt=*/*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip")
        frames.append(frame.assign(dt=path.parent.name.removeprefix("dt=")))
    return pd.concat(frames, ignore_index=True)


def clean_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with a valid 1-5 rating (dirty rows are quarantined by ingest), rating as int."""
    rating = pd.to_numeric(frame["Rating"], errors="coerce")
    out = frame[rating.isin([1, 2, 3, 4, 5])].copy()
    out["rating"] = pd.to_numeric(out["Rating"]).astype(int)
    out["clothing_id"] = pd.to_numeric(out["Clothing ID"]).astype(int)
    out["negative"] = out["rating"] <= 2
    return out


def alarms(rows: pd.DataFrame, margin: float = 0.25, min_reviews: int = 20) -> pd.DataFrame:
    """Product-days (>= min_reviews) whose 1-2 star share exceeds the product's other days by > margin."""
    day = rows.groupby(["clothing_id", "dt"])["negative"].agg(neg="sum", n="count").reset_index()
    total = day.groupby("clothing_id")[["neg", "n"]].sum().rename(columns={"neg": "neg_all", "n": "n_all"})
    day = day.join(total, on="clothing_id")
    day["share"] = day["neg"] / day["n"]
    day["baseline"] = (day["neg_all"] - day["neg"]) / (day["n_all"] - day["n"]).clip(lower=1)
    return day[(day["n"] >= min_reviews) & (day["share"] > day["baseline"] + margin)]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[str, dict, pd.DataFrame]:
    """9 days of default data (incidents + trend) at 2,000 rows a day, and its truth."""
    lake = str(tmp_path_factory.mktemp("planted") / "lake")
    written = sample_data.write_landing(lake, days=9, rows_per_day=ROWS, start=START, seed=3)
    return lake, written.truth, read_landing(lake)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> pd.DataFrame:
    """14 days of incident-free, trend-free data."""
    lake = str(tmp_path_factory.mktemp("clean") / "lake")
    written = sample_data.write_landing(lake, days=14, rows_per_day=ROWS, start=START, seed=5, incidents=None,
                                        trend=False)  # fmt: skip
    assert written.truth["incidents"] == [] and written.truth["trend"] is None
    return read_landing(lake)


# -- the catalogue ---------------------------------------------------------------------------


def test_catalogue_is_fixed_with_one_class_per_product_and_skewed_volume():
    first = sample_data.catalogue()
    sample_data._catalogue.cache_clear()  # rebuilt from scratch: the same
    pd.testing.assert_frame_equal(first, sample_data.catalogue())
    assert first["clothing_id"].is_unique and 1100 <= len(first) <= 1300
    assert set(first["clothing_id"]) == set(range(len(first)))
    classes = {c for _, (_, cs) in sample_data.DEPARTMENTS.items() for c in cs}
    assert set(first["class_name"]) == classes
    assert 0.02 <= first["weight"].iloc[0] <= 0.045  # the top product: 2-4 % of all rows
    assert first["weight"].sum() == pytest.approx(1.0)

    # generated rows, whatever the seed, follow it: one class (and department) per Clothing ID
    rows = pd.concat([sample_data.generate_reviews(3000, seed=s) for s in (1, 2)], ignore_index=True)
    assert rows.groupby("Clothing ID")["Class Name"].nunique().max() == 1
    by_id = first.set_index("clothing_id")
    assert (rows["Class Name"].to_numpy() == by_id.loc[rows["Clothing ID"].astype(int), "class_name"].to_numpy()).all()
    depts = by_id.loc[rows["Clothing ID"].astype(int), "department_name"].to_numpy()
    assert (rows["Department Name"].to_numpy() == depts).all()


def test_top_products_get_at_least_20_reviews_every_day(planted):
    _, _, landed = planted
    rows = clean_rows(landed)
    top = sample_data.top_products(10)
    counts = rows[rows["clothing_id"].isin(top)].groupby(["clothing_id", "dt"]).size()
    assert len(counts) == 10 * 9  # each top product on each day
    assert counts.min() >= 20, counts.sort_values().head()
    share = rows["clothing_id"].value_counts(normalize=True)
    assert 0.02 <= share.iloc[0] <= 0.045


# -- planted incidents, trend, truth ---------------------------------------------------------


def test_incident_schedule_is_deterministic_late_and_on_top_products():
    assert sample_data.incident_schedule(START, 2) == []
    top20 = set(sample_data.top_products(20))
    for days in (3, 7, 30, 60):
        for seed in range(6):
            schedule = sample_data.incident_schedule(START, days, seed)
            assert schedule == sample_data.incident_schedule(START, days, seed)
            assert 1 <= len(schedule) <= 2
            assert len({i["clothing_id"] for i in schedule}) == len(schedule)
            dates = sample_data._days(START, days)
            for incident in schedule:
                assert incident["clothing_id"] in top20
                assert 2 <= len(incident["dates"]) <= 3
                first = dates.index(incident["dates"][0])
                assert incident["dates"] == dates[first : first + len(incident["dates"])]
                assert first >= days - max(days // 3, 2)  # the last third (or the last 2 days)
                assert incident["terms"] == sample_data.COMPLAINTS[incident["complaint"]]["terms"]
                assert incident["negative_share"] == pytest.approx(0.6)
                cat = sample_data.catalogue().set_index("clothing_id").loc[incident["clothing_id"]]
                assert incident["class_name"] == cat["class_name"]
                assert incident["department_name"] == cat["department_name"]


def test_incident_product_days_are_low_rated_and_name_the_complaint(planted):
    _, truth, landed = planted
    rows = clean_rows(landed)
    assert [{k: v for k, v in i.items() if k != "observed"} for i in truth["incidents"]] == (
        sample_data.incident_schedule(START, 9, 3)
    )
    assert truth["incidents"], "the default plants at least one incident"
    for incident in truth["incidents"]:
        for dt in incident["dates"]:
            mine = rows[(rows["clothing_id"] == incident["clothing_id"]) & (rows["dt"] == dt)]
            assert len(mine) >= 20
            assert mine["negative"].mean() >= 0.45, (dt, mine["negative"].mean())
            negative = mine.loc[mine["negative"], "Review Text"].str.lower()
            assert negative.str.contains(incident["terms"][0], regex=False).mean() >= 0.5
            # the truth counts clean rows; a dirty row (~2 %) may still have a valid rating
            assert 0 <= len(mine) - incident["observed"][dt]["reviews"] <= 3
            assert 0 <= int(mine["negative"].sum()) - incident["observed"][dt]["negative"] <= 3
        # on the product's other days: the normal mix, and the complaint is (nearly) never named
        other = rows[(rows["clothing_id"] == incident["clothing_id"]) & ~rows["dt"].isin(incident["dates"])]
        assert other["negative"].mean() < 0.25
        assert other["Review Text"].str.lower().str.contains(incident["terms"][0], regex=False).mean() < 0.05
    # the alarm check below flags exactly the planted product-days here (so it can fail)
    flagged = {(int(r.clothing_id), r.dt) for r in alarms(rows).itertuples()}
    expected = {(i["clothing_id"], dt) for i in truth["incidents"] for dt in i["dates"]}
    assert flagged == expected


def test_incident_free_data_has_no_product_day_far_above_its_baseline(clean):
    rows = clean_rows(clean)
    busy = rows.groupby(["clothing_id", "dt"]).size()
    assert (busy >= 20).sum() >= 100  # there are plenty of product-days to judge
    found = alarms(rows)
    assert found.empty, found
    for complaint in sample_data.COMPLAINTS.values():  # only rare background mentions
        assert rows["Review Text"].str.lower().str.contains(complaint["terms"][0], regex=False).mean() < 0.01


def test_trend_class_negative_share_rises_and_others_do_not(planted, clean):
    _, truth, landed = planted
    trend = truth["trend"]
    assert trend["class_name"] == sample_data.DEFAULT_TREND["class_name"]
    assert trend["negative_share_end"] - trend["negative_share_start"] == pytest.approx(0.15, abs=1e-3)
    assert trend["dates"] == [START, "2024-01-09"]

    def rise(rows: pd.DataFrame, class_name: str) -> float:
        part = rows[rows["Class Name"] == class_name]
        days = sorted(part["dt"].unique())
        share = part.groupby("dt")["negative"].mean()
        return float(share[days[-3:]].mean() - share[days[:3]].mean())

    planted_rows, clean_rows_ = clean_rows(landed), clean_rows(clean)
    assert rise(planted_rows, trend["class_name"]) >= 0.06
    assert abs(rise(clean_rows_, trend["class_name"])) < 0.06
    assert abs(rise(planted_rows[planted_rows["Department Name"] == "Dresses"], "Dresses")) < 0.06


def test_truth_goes_only_where_asked_never_under_landing(tmp_path, capsys):
    lake, truth = tmp_path / "lake", tmp_path / "truth" / "truth.json"
    sample_data.main(["generate", "--lake", str(lake), "--days", "4", "--rows-per-day", "300", "--truth", str(truth)])
    assert "truth:" in capsys.readouterr().out
    data = json.loads(truth.read_text())
    assert set(data) >= {"incidents", "trend", "rows"} and data["trend"]["class_name"] == "Sweaters"
    assert data["rows"] == {f"2024-01-0{d}": 300 for d in range(1, 5)} and len(data["incidents"]) >= 1
    assert {p.suffix for p in (lake / "landing").rglob("*") if p.is_file()} == {".csv"}
    assert not list(lake.rglob("*.json"))

    with pytest.raises(ValueError, match="landing"):
        sample_data.write_landing(str(lake), 1, 50, truth_path=str(lake / "landing" / "reviews" / "truth.json"))
    assert not list(lake.rglob("*.json"))

    quiet = tmp_path / "quiet.json"
    sample_data.main(["generate", "--lake", str(tmp_path / "lake2"), "--days", "4", "--rows-per-day", "100",
                      "--no-incidents", "--truth", str(quiet)])  # fmt: skip
    data = json.loads(quiet.read_text())
    assert data["incidents"] == [] and data["trend"] is None
    assert sample_data.planted_truth(4, 100, incidents=None, trend=False) == data


# -- planting in a user's CSV ----------------------------------------------------------------


def csv_records(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


def test_load_with_a_planted_incident_keeps_every_row(tmp_path):
    source = tmp_path / "shop_reviews.csv"
    source.write_bytes(sample_data.to_csv_bytes(sample_data.generate_reviews(3000, seed=8)))
    original = pd.read_csv(source, dtype=str, keep_default_na=False)
    lake, truth_path = tmp_path / "lake", tmp_path / "truth.json"

    plain = sample_data.load_csv_to_landing(str(source), str(lake / "plain"), days=10, start=START)
    assert plain.truth is None and len(plain) == 10

    written = sample_data.load_csv_to_landing(str(source), str(lake / "planted"), days=10, start=START,
                                              plant_incident=True, seed=1, truth_path=str(truth_path))  # fmt: skip
    files = [lake / "planted" / key for keys in written.values() for key in keys]
    assert sum(len(csv_records(f)) for f in files) == len(csv_records(source)) == 3000  # counted independently

    truth = json.loads(truth_path.read_text())
    assert truth == written.truth
    (incident,) = truth["incidents"]
    assert incident["clothing_id"] == int(original["Clothing ID"].value_counts().index[0])  # the busiest product
    dates = sample_data._days(START, 10)
    first = dates.index(incident["dates"][0])
    assert incident["dates"] == dates[first : first + 3] and first >= 10 - 10 // 3
    assert sum(incident["planted_rows"].values()) == len(incident["source_row_ids"]) == 25

    landed = read_landing(lake / "planted")
    assert sorted(landed["Unnamed: 0"]) == sorted(original["Unnamed: 0"])  # every row exactly once
    assert truth["rows"] == landed.groupby("dt").size().to_dict()
    moved = set(incident["source_row_ids"])
    before = original.set_index("Unnamed: 0")
    after = landed.set_index("Unnamed: 0")
    columns = [c for c in original.columns if c != "Unnamed: 0"]
    kept = before.index.difference(list(moved))
    pd.testing.assert_frame_equal(after.loc[kept, columns], before.loc[kept, columns])  # others as they were
    planted_rows = after.loc[list(moved)]
    assert set(planted_rows["dt"]) == set(incident["dates"])
    assert (planted_rows["Clothing ID"] == str(incident["clothing_id"])).all()
    assert (planted_rows["Class Name"] == incident["class_name"]).all()
    assert set(before.loc[list(moved), "Rating"]) <= {"1", "2"}
    assert (before.loc[list(moved), "Clothing ID"] != str(incident["clothing_id"])).all()
    assert planted_rows["Review Text"].str.lower().str.contains(incident["terms"][0]).all()
    for mid, row in planted_rows.iterrows():
        assert row["Review Text"].startswith(before.loc[mid, "Review Text"].rstrip())

    # the product's incident days now stand out from its other days
    rows = clean_rows(landed)
    mine = rows[rows["clothing_id"] == incident["clothing_id"]]
    share = mine.groupby(mine["dt"].isin(incident["dates"]))["negative"].mean()
    assert share[True] >= share[False] + 0.25


def test_plant_needs_three_days(tmp_path):
    source = tmp_path / "r.csv"
    source.write_bytes(sample_data.to_csv_bytes(sample_data.generate_reviews(200, seed=1)))
    with pytest.raises(ValueError, match="3 days"):
        sample_data.load_csv_to_landing(str(source), str(tmp_path / "lake"), days=2, plant_incident=True)
