"""crawl / validate / curate on generated fixtures: every dirty kind lands where it should."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from reviewflow import contract
from reviewflow.ingest.crawl import crawl_partition, detect_drift, file_id
from reviewflow.ingest.curate import AccountingError, check_accounting, curate_partition
from reviewflow.ingest.parse import parse_file
from reviewflow.ingest.validate import validate_file
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.lake import LocalLake, read_parquet
from tools import sample_data

DT = "2024-03-01"

# The rule each dirty kind must break (None: the row is valid, only noisy or warned about).
EXPECTED_RULE = {
    "empty_text": "review text present",
    "rating_out_of_range": "rating in 1..5",
    "rating_not_numeric": "rating is an integer",
    "impossible_age": "age plausible",
    "duplicate_id": "review id unique in file",
    "negative_feedback": "positive_feedback_count >= 0",
    "broken_quoting": "malformed CSV record",
    "mojibake": None,
    "unknown_category": None,
}


def land(lake: LocalLake, name: str, data: bytes, dt: str = DT) -> None:
    lake.write_bytes(f"landing/reviews/dt={dt}/{name}", data)


def ingest(lake: LocalLake, dt: str = DT, run: str = "run-1") -> tuple[list[dict], list[dict], dict]:
    catalog = DuckDBCatalog(lake.root)
    manifests = crawl_partition(lake, catalog, dt)
    reports = [validate_file(lake, m) for m in manifests]
    return manifests, reports, curate_partition(lake, catalog, dt, reports, run)


def quarantined_rows(lake: LocalLake, name: str, dt: str = DT) -> pd.DataFrame:
    return read_parquet(lake, f"quarantine/reviews/dt={dt}/rows/{file_id(name)}.parquet")


@pytest.fixture
def dirty_frame():
    frame = sample_data.generate_reviews(600, seed=7, dirty_share=0.3, with_labels=True)
    assert set(EXPECTED_RULE) == set(sample_data.DIRTY_KINDS), "a new dirty kind needs an expectation here"
    return frame


def test_every_dirty_kind_is_quarantined_with_its_rule(lake_root, dirty_frame):
    lake = LocalLake(lake_root)
    data = sample_data.to_csv_bytes(dirty_frame.drop(columns="_dirty_kind"))
    land(lake, "day.csv", data)
    _, reports, summary = ingest(lake)

    import csv

    records = sum(1 for row in csv.reader(io.StringIO(data.decode())) if row) - 1  # counted apart from the parser
    assert summary["rows_in"] == records
    assert summary["rows_in"] == summary["rows_curated"] + summary["rows_quarantined"]
    quarantined = quarantined_rows(lake, "day.csv")
    reasons_by_record = dict(zip(quarantined["source_record"], quarantined["reasons"], strict=True))
    curated = read_parquet(lake, f"curated/reviews/dt={DT}/part-0.parquet")

    kinds = dirty_frame["_dirty_kind"].fillna("").tolist()
    if records == len(kinds):  # record n is generated row n (no generated text split records)
        for record, kind in enumerate(kinds, start=1):
            rule = EXPECTED_RULE.get(kind) if kind else None
            if rule:
                assert record in reasons_by_record, f"record {record} ({kind}) not quarantined"
                assert any(rule in reason for reason in reasons_by_record[record]), (kind, reasons_by_record[record])
    for kind, rule in EXPECTED_RULE.items():
        if rule and kind in kinds:
            assert any(rule in r for reasons in quarantined["reasons"] for r in reasons), kind
    # duplicate ids quarantine both copies; everything else clean must be curated
    clean_rows = sum(1 for k in kinds if not EXPECTED_RULE.get(k))
    assert len(curated) <= clean_rows
    assert len(curated) >= clean_rows - kinds.count("duplicate_id")
    # warning-level rules keep the row but are reported
    if "unknown_category" in kinds:
        assert any("known set" in rule for rule in reports[0]["warnings"])
    assert reports[0]["data_docs"].endswith("index.html")
    assert lake.exists(f"reports/quality/dt={DT}/{file_id('day.csv')}/index.html")


def test_curated_columns_and_sentiment(lake_root):
    lake = LocalLake(lake_root)
    frame = sample_data.generate_reviews(300, seed=1)
    land(lake, "clean.csv", sample_data.to_csv_bytes(frame))
    ingest(lake)
    curated = read_parquet(lake, f"curated/reviews/dt={DT}/part-0.parquet")
    assert list(curated.columns) == [*contract.CURATED_COLUMNS, *contract.LINEAGE_COLUMNS]
    assert len(curated) == 300
    assert curated["review_id"].is_unique
    expected = curated["rating"].map(lambda r: -1 if r <= 2 else 0 if r == 3 else 1)
    assert (curated["sentiment"] == expected).all()
    assert set(curated["source_file"]) == {"clean.csv"}
    # the catalog serves the partition
    catalog = DuckDBCatalog(lake_root)
    assert catalog.partitions("curated_reviews") == [DT]
    assert catalog.table_columns("curated_reviews")["rating"] == "BIGINT"


def test_rerun_rewrites_exactly_the_same_partition(lake_root):
    lake = LocalLake(lake_root)
    land(lake, "a.csv", sample_data.to_csv_bytes(sample_data.generate_reviews(200, seed=3, dirty_share=0.1)))
    ingest(lake, run="run-1")
    first = read_parquet(lake, f"curated/reviews/dt={DT}/part-0.parquet")
    ingest(lake, run="run-1")
    second = read_parquet(lake, f"curated/reviews/dt={DT}/part-0.parquet")
    pd.testing.assert_frame_equal(first, second)
    assert lake.list(f"curated/reviews/dt={DT}/") == [f"curated/reviews/dt={DT}/part-0.parquet"]
    assert lake.list(f"staging/reviews/dt={DT}/") == []


def test_jsonl_and_parquet_files_are_ingested(lake_root):
    lake = LocalLake(lake_root)
    frame = sample_data.generate_reviews(50, seed=5).rename(columns={"": "Unnamed: 0"})
    land(lake, "a.jsonl", frame.to_json(orient="records", lines=True).encode())
    buf = io.BytesIO()
    frame.assign(**{"Unnamed: 0": frame["Unnamed: 0"] + 1000}).to_parquet(buf, index=False)
    land(lake, "b.parquet", buf.getvalue())
    _, _, summary = ingest(lake)
    assert summary["rows_in"] == 100
    assert summary["rows_curated"] == 100


def test_unreadable_and_wrong_schema_files_are_quarantined_whole(lake_root):
    lake = LocalLake(lake_root)
    land(lake, "good.csv", sample_data.to_csv_bytes(sample_data.generate_reviews(20, seed=2)))
    land(lake, "binary.csv", b"\xff\xfe\x00garbage\x00\xc3")
    land(lake, "other.csv", b"order_id,amount\n1,2\n3,4\n")
    _, reports, summary = ingest(lake)
    by_file = {r["file"]: r for r in reports}
    assert by_file["binary.csv"]["status"] == "unreadable"
    assert "UTF-8" in by_file["binary.csv"]["reason"]
    assert by_file["binary.csv"]["rows_in"] is None  # records unknown, and the report says so
    assert summary["rows_in_unknown_files"] == ["binary.csv"]
    assert by_file["other.csv"]["status"] == "wrong_schema"
    assert "missing required columns" in by_file["other.csv"]["reason"]
    assert summary["rows_quarantined"] == 2  # other.csv's two rows; binary.csv has none to count
    assert summary["rows_curated"] == 20
    for name in ("binary.csv", "other.csv"):
        base = f"quarantine/reviews/dt={DT}/files/{file_id(name)}"
        assert lake.read_bytes(base) == lake.read_bytes(f"landing/reviews/dt={DT}/{name}")
        reason = json.loads(lake.read_bytes(f"{base}.reason.json"))
        assert reason["file"] == name and reason["reason"]


def test_broken_quoting_keeps_the_rest_of_the_file(tmp_path):
    data = (
        b",Clothing ID,Age,Title,Review Text,Rating,Recommended IND,Positive Feedback Count,"
        b"Division Name,Department Name,Class Name\n"
        b'0,1,30,Nice,"Fits well,\nlove it",5,1,0,General,Tops,Knits\n'
        b"\n"
        b'1,2,31,Bad, title,"Too small",2,0,0,General,Tops,Knits\n'
        b'2,3,32,Ok,"Fine",3,1,0,General,Dresses,Dresses\n'
    )
    (tmp_path / "x.csv").write_bytes(data)
    parsed, _ = parse_file(str(tmp_path / "x.csv"), "x.csv", str(tmp_path))
    rows = pd.concat([pd.read_parquet(p) for p in parsed.rows_paths]).reset_index(drop=True)
    lines = pd.read_parquet(parsed.lines_path)
    assert parsed.rows_in == 3
    assert list(rows["source_row_id"]) == ["0", "2"]
    assert list(lines["_line"]) == [2, 6]  # physical lines: the blank line counts as a line
    assert list(lines["_record"]) == [1, 3]
    assert rows["review_text"].iloc[0] == "Fits well,\nlove it"
    assert len(parsed.rejects) == 1
    bad = parsed.rejects[0]
    assert bad["_line"] == 5 and bad["_record"] == 2 and "too many columns" in bad["reason"]
    assert bad["raw"].startswith("1,2,31,Bad, title")


def test_schema_drift_detects_new_missing_renamed_and_retyped():
    reference = {"review_text": "VARCHAR", "rating": "BIGINT", "age": "BIGINT", "title": "VARCHAR"}
    seen = {"review_txt": "VARCHAR", "rating": "VARCHAR", "age": "BIGINT", "channel": "VARCHAR"}
    drift = detect_drift(seen, reference)
    assert drift["renamed"] == [{"from": "review_text", "to": "review_txt"}]
    assert drift["missing"] == ["title"]
    assert drift["new"] == ["channel"]
    assert drift["retyped"] == [{"column": "rating", "from": "BIGINT", "to": "VARCHAR"}]
    assert drift["drifted"]
    assert not detect_drift(reference, reference)["drifted"]


def test_drift_against_the_catalog_is_reported(lake_root):
    lake = LocalLake(lake_root)
    land(lake, "a.csv", sample_data.to_csv_bytes(sample_data.generate_reviews(30, seed=1)), dt="2024-03-01")
    ingest(lake, dt="2024-03-01")
    frame = sample_data.generate_reviews(30, seed=2, start_index=100)
    frame["Channel"] = "app"
    land(lake, "b.csv", frame.to_csv(index=False).encode(), dt="2024-03-02")
    manifests, _, summary = ingest(lake, dt="2024-03-02")
    assert manifests[0]["drift_vs_catalog"]["new"] == ["channel"]
    assert summary["rows_curated"] == 30  # an extra column is drift to report, not a reason to reject
    report = json.loads(lake.read_bytes("reports/ingest/dt=2024-03-02/schema_drift.json"))
    assert report["files"][0]["file"] == "b.csv" and report["files"][0]["vs_catalog"]["new"] == ["channel"]


def test_accounting_mismatch_fails_loudly():
    with pytest.raises(AccountingError, match="a.csv"):
        check_accounting([{"file": "a.csv", "rows_in": 10, "rows_curated": 8, "rows_quarantined": 1}])


def test_a_file_whose_validation_breaks_is_quarantined_whole_and_the_others_curate(lake_root, monkeypatch):
    from reviewflow.ingest import validate

    lake = LocalLake(lake_root)
    land(lake, "good.csv", sample_data.to_csv_bytes(sample_data.generate_reviews(30, seed=1)))
    land(lake, "odd.csv", sample_data.to_csv_bytes(sample_data.generate_reviews(20, seed=2, start_index=500)))
    real_run = validate.SuiteRunner.run

    def run(self, typed):
        if "odd" in self.checkpoint.name:
            raise RuntimeError("a value no rule foresaw")
        return real_run(self, typed)

    monkeypatch.setattr(validate.SuiteRunner, "run", run)
    _, reports, summary = ingest(lake)
    by_file = {r["file"]: r for r in reports}
    assert by_file["odd.csv"]["status"] == "validation_failed"
    assert "a value no rule foresaw" in by_file["odd.csv"]["reason"]
    assert summary["rows_curated"] == 30 and summary["rows_quarantined"] == 20
    assert lake.exists(f"quarantine/reviews/dt={DT}/files/{file_id('odd.csv')}.reason.json")


def test_temp_files_of_killed_writers_are_cleaned_and_never_listed(lake_root):
    import os
    import time

    lake = LocalLake(lake_root)
    lake.write_bytes("curated/reviews/dt=2024-03-01/part-0.parquet", b"x")
    tmp = lake.path(".tmp")
    (tmp / "old.tmp").write_bytes(b"killed mid-write")
    (tmp / "live.tmp").write_bytes(b"being written")
    os.utime(tmp / "old.tmp", (time.time() - 7200, time.time() - 7200))
    assert lake.list("curated/") == ["curated/reviews/dt=2024-03-01/part-0.parquet"]
    assert lake.clean_temp() == 1
    assert not (tmp / "old.tmp").exists() and (tmp / "live.tmp").exists()
