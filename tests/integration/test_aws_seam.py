"""The aws seam on a moto server: S3 as the lake, the Glue Data Catalog as the catalog."""

from __future__ import annotations

import uuid

import boto3
import pytest

from reviewflow.config import get_settings
from reviewflow.ingest.crawl import crawl_partition, file_id
from reviewflow.ingest.curate import curate_partition
from reviewflow.ingest.validate import validate_file
from reviewflow.storage.catalog import GlueCatalog, get_catalog
from reviewflow.storage.lake import S3Lake, get_lake, read_parquet
from tools import sample_data

pytestmark = pytest.mark.aws
DT = "2024-05-01"


@pytest.fixture
def s3_lake(aws_env, monkeypatch) -> S3Lake:
    bucket = f"reviewflow-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("REVIEWFLOW_LAKE", f"s3://{bucket}/lake")
    monkeypatch.setenv("REVIEWFLOW_CATALOG", "glue")
    monkeypatch.setenv("REVIEWFLOW_DATABASE", f"reviews_{uuid.uuid4().hex[:6]}")
    lake = get_lake()
    assert isinstance(lake, S3Lake)
    return lake


def test_lake_roundtrip_and_partition_replace(s3_lake):
    s3_lake.write_bytes("a/dt=1/x.txt", b"1")
    s3_lake.write_bytes("a/dt=1/y.txt", b"2")
    assert s3_lake.list("a/") == ["a/dt=1/x.txt", "a/dt=1/y.txt"]
    assert s3_lake.read_bytes("a/dt=1/y.txt") == b"2"
    assert s3_lake.delete_prefix("a/dt=1/") == 2
    assert not s3_lake.exists("a/dt=1/x.txt")


def test_replace_partition_deletes_exactly_the_stale_keys(s3_lake):
    from reviewflow.storage.lake import replace_partition

    # "part-0" is stale; "part-0.parquet" (sharing its prefix) is kept: a prefix delete would take both
    s3_lake.write_bytes("c/dt=1/part-0", b"old")
    s3_lake.write_bytes("c/dt=1/part-0.parquet.bak", b"stale too")
    replace_partition(s3_lake, "c/dt=1/", {"part-0.parquet": b"new"})
    assert s3_lake.list("c/dt=1/") == ["c/dt=1/part-0.parquet"]
    assert s3_lake.read_bytes("c/dt=1/part-0.parquet") == b"new"


def test_exists_is_false_only_for_missing_keys():
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    lake = S3Lake("s3://bucket/lake", client=client)
    with Stubber(client) as stub:
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
        assert lake.exists("models/champion.json") is False
        stub.add_client_error("head_object", service_error_code="403", http_status_code=403)
        with pytest.raises(ClientError):  # access denied is not "no champion yet"
            lake.exists("models/champion.json")


def test_big_local_file_streams_through_put_and_local_path(s3_lake, tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (20 << 20))  # above boto3's multipart threshold
    s3_lake.put_file(str(big), "landing/reviews/dt=1/big.csv")
    s3_lake.copy("landing/reviews/dt=1/big.csv", "raw/reviews/dt=1/big.csv")
    with s3_lake.local_path("raw/reviews/dt=1/big.csv") as path:
        assert open(path, "rb").read() == big.read_bytes()


def test_ingest_on_s3_and_glue(s3_lake):
    frame = sample_data.generate_reviews(120, seed=11, dirty_share=0.1)
    s3_lake.write_bytes(f"landing/reviews/dt={DT}/day.csv", sample_data.to_csv_bytes(frame))
    catalog = get_catalog()
    assert isinstance(catalog, GlueCatalog)

    manifests = crawl_partition(s3_lake, catalog, DT)
    reports = [validate_file(s3_lake, m) for m in manifests]
    summary = curate_partition(s3_lake, catalog, DT, reports, "run-aws")

    assert summary["rows_in"] == 120 == summary["rows_curated"] + summary["rows_quarantined"]
    assert summary["curated_uri"].startswith("s3://")
    curated = read_parquet(s3_lake, f"curated/reviews/dt={DT}/part-0.parquet")
    assert len(curated) == summary["rows_curated"]
    assert s3_lake.exists(f"reports/quality/dt={DT}/{file_id('day.csv')}/index.html")
    assert s3_lake.exists(f"raw/reviews/dt={DT}/day.csv")

    database = get_settings().database
    glue = boto3.client("glue")
    table = glue.get_table(DatabaseName=database, Name="curated_reviews")["Table"]
    assert table["StorageDescriptor"]["Location"].startswith(s3_lake.uri("curated/reviews"))
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
    assert catalog.partitions("curated_reviews") == [DT]
    assert catalog.partitions("raw_reviews") == [DT]
    assert catalog.table_columns("curated_reviews")["rating"] == "BIGINT"

    # idempotent: a rerun leaves one partition and the same rows
    reports = [validate_file(s3_lake, m) for m in crawl_partition(s3_lake, catalog, DT)]
    again = curate_partition(s3_lake, catalog, DT, reports, "run-aws")
    assert again["rows_curated"] == summary["rows_curated"]
    assert catalog.partitions("curated_reviews") == [DT]
    assert s3_lake.list(f"curated/reviews/dt={DT}/") == [f"curated/reviews/dt={DT}/part-0.parquet"]

    # a second day adds a partition and keeps the first
    later = "2024-05-02"
    s3_lake.write_bytes(f"landing/reviews/dt={later}/day.csv", sample_data.to_csv_bytes(frame))
    reports = [validate_file(s3_lake, m) for m in crawl_partition(s3_lake, catalog, later)]
    curate_partition(s3_lake, catalog, later, reports, "run-aws-2")
    assert catalog.partitions("curated_reviews") == [DT, later]
