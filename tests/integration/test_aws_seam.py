"""The aws seam on a moto server: S3 as the lake, the Glue Data Catalog as the catalog.

Every AWS call goes through the Airflow connection ``aws_default``, defined by environment
(``AIRFLOW_CONN_AWS_DEFAULT``: login/password and ``extra.endpoint_url`` = the moto server); boto3
has no AWS_* variables, config files or instance metadata to fall back on (``aws_connection.py``).
"""

from __future__ import annotations

import io
import json
import uuid

import aws_connection
import boto3
import pytest
from aws_connection import LOGIN, PASSWORD, closed_port_url, set_connection
from botocore.exceptions import EndpointConnectionError

from reviewflow.config import get_settings
from reviewflow.ingest.crawl import crawl_partition, file_id
from reviewflow.ingest.curate import curate_partition
from reviewflow.ingest.validate import validate_file
from reviewflow.storage import aws
from reviewflow.storage.catalog import SCHEMA_PARAMETER, GlueCatalog, get_catalog
from reviewflow.storage.lake import S3Lake, get_lake, read_parquet
from tools import sample_data

pytestmark = pytest.mark.aws
aws_conn = aws_connection.aws_conn  # the fixture: AWS only through AIRFLOW_CONN_AWS_DEFAULT
DT = "2024-05-01"
NO_RETRIES = {"retries": {"total_max_attempts": 1}, "connect_timeout": 2}  # a refused endpoint fails at once


def glue_client():
    return aws.session().client("glue")


@pytest.fixture
def s3_lake(aws_conn, monkeypatch) -> S3Lake:
    bucket = f"reviewflow-{uuid.uuid4().hex[:8]}"
    aws.session().client("s3").create_bucket(Bucket=bucket)
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
    glue = glue_client()
    table = glue.get_table(DatabaseName=database, Name="curated_reviews")["Table"]
    assert table["StorageDescriptor"]["Location"].startswith(s3_lake.uri("curated/reviews"))
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
    assert catalog.partitions("curated_reviews") == [DT]
    assert catalog.table_columns("curated_reviews")["rating"] == "BIGINT"
    # raw/ is kept as delivered (any format): a schema record for drift, not a Glue table
    assert "raw_reviews" not in [t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]]
    assert {"rating", "review_text"} <= set(catalog.table_columns("raw_reviews"))
    assert catalog.partitions("raw_reviews") == []

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


# -- the connection is what the seam uses --------------------------------------------------------


def test_session_takes_credentials_region_and_endpoints_from_the_connection(aws_conn):
    session = aws.session()
    credentials = session.get_credentials()
    assert (credentials.access_key, credentials.secret_key) == (LOGIN, PASSWORD)
    assert session.region_name == "us-east-1"
    assert session.client("s3").meta.endpoint_url == aws_conn
    assert session.client("glue").meta.endpoint_url == aws_conn
    assert session.client("athena", endpoint_url="http://explicit:1").meta.endpoint_url == "http://explicit:1"


def test_a_wrong_endpoint_in_the_connection_fails_the_seam(aws_conn, monkeypatch):
    bucket = f"reviewflow-{uuid.uuid4().hex[:8]}"
    aws.session().client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("REVIEWFLOW_LAKE", f"s3://{bucket}/lake")
    monkeypatch.setenv("REVIEWFLOW_CATALOG", "glue")
    monkeypatch.setenv("REVIEWFLOW_DATABASE", f"reviews_{uuid.uuid4().hex[:6]}")
    get_lake().write_bytes("probe.txt", b"1")  # the moto connection works

    set_connection(monkeypatch, {"endpoint_url": closed_port_url(), "config_kwargs": NO_RETRIES})
    with pytest.raises(EndpointConnectionError):
        get_lake().read_bytes("probe.txt")
    with pytest.raises(EndpointConnectionError):
        get_catalog()

    # the setting names another connection: that one is used
    set_connection(monkeypatch, {"endpoint_url": aws_conn}, conn_id="reviewflow_aws")
    monkeypatch.setenv("REVIEWFLOW_AWS_CONN_ID", "reviewflow_aws")
    assert get_lake().read_bytes("probe.txt") == b"1"
    assert isinstance(get_catalog(), GlueCatalog)


def test_service_config_endpoint_wins_per_service(aws_conn, monkeypatch):
    bucket = f"reviewflow-{uuid.uuid4().hex[:8]}"
    aws.session().client("s3").create_bucket(Bucket=bucket)
    set_connection(monkeypatch, {"endpoint_url": closed_port_url(), "config_kwargs": NO_RETRIES,
                                 "service_config": {"s3": {"endpoint_url": aws_conn}}})  # fmt: skip
    lake = get_lake(f"s3://{bucket}/lake")
    lake.write_bytes("a.txt", b"s3 reaches moto")
    assert lake.read_bytes("a.txt") == b"s3 reaches moto"
    with pytest.raises(EndpointConnectionError):  # Glue follows the connection's global (wrong) endpoint
        GlueCatalog(lake.root, f"reviews_{uuid.uuid4().hex[:6]}")


def test_aws_endpoint_url_s3_still_applies_below_the_connection(aws_conn, monkeypatch):
    bucket = f"reviewflow-{uuid.uuid4().hex[:8]}"
    aws.session().client("s3").create_bucket(Bucket=bucket)
    # no endpoint in the connection: botocore's AWS_ENDPOINT_URL_S3 (compose's MinIO variable) applies
    set_connection(monkeypatch, {})
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_conn)
    get_lake(f"s3://{bucket}/lake").write_bytes("a.txt", b"1")
    # an endpoint in the connection wins over the variable
    set_connection(monkeypatch, {"endpoint_url": aws_conn})
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", closed_port_url())
    assert get_lake(f"s3://{bucket}/lake").read_bytes("a.txt") == b"1"


# -- every Glue table is one Athena can read --------------------------------------------------------

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_SERDES = {  # SerDe -> the format of text it parses
    "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe": "csv", "org.apache.hadoop.hive.serde2.OpenCSVSerde": "csv",
    "org.openx.data.jsonserde.JsonSerDe": "jsonl", "org.apache.hive.hcatalog.data.JsonSerDe": "jsonl",
}  # fmt: skip


def sniff(data: bytes) -> str:
    """A file's real format from its bytes, whatever its name says."""
    if data[:4] == b"PAR1" and data[-4:] == b"PAR1":
        return "parquet"
    first = data.split(b"\n", 1)[0]
    try:
        if isinstance(json.loads(first), dict):
            return "jsonl"
    except ValueError:
        pass
    return "csv"


def declared_format(descriptor: dict) -> str:
    serde, input_format = descriptor["SerdeInfo"]["SerializationLibrary"], descriptor["InputFormat"]
    if serde == PARQUET_SERDE:
        assert input_format == PARQUET_INPUT, descriptor
        return "parquet"
    assert serde in TEXT_SERDES and input_format == TEXT_INPUT, descriptor
    return TEXT_SERDES[serde]


def mismatches(lake: S3Lake, database: str) -> tuple[list[str], int]:
    """(files whose bytes do not match their Glue table's or partition's SerDe, files checked)."""
    glue, wrong, checked = glue_client(), [], 0
    for table in glue.get_tables(DatabaseName=database)["TableList"]:
        descriptors = [table["StorageDescriptor"]]
        descriptors += [p["StorageDescriptor"] for p in
                        glue.get_partitions(DatabaseName=database, TableName=table["Name"])["Partitions"]]  # fmt: skip
        for descriptor in descriptors:
            expected = declared_format(descriptor)
            location = descriptor["Location"].rstrip("/") + "/"
            assert location.startswith(lake.root + "/"), location
            for key in lake.list(location[len(lake.root) + 1 :]):
                checked += 1
                if sniff(lake.read_bytes(key)) != expected:
                    wrong.append(f"{table['Name']}: {key} is not {expected}")
    return wrong, checked


def test_glue_tables_match_the_files_under_them_with_mixed_raw_formats(s3_lake):
    sample_data.write_landing(s3_lake.root, days=1, rows_per_day=80, start=DT, formats=("csv", "jsonl", "parquet"),
                              incidents=None, trend=False)  # fmt: skip
    landed = s3_lake.list(f"landing/reviews/dt={DT}/")
    assert {sniff(s3_lake.read_bytes(k)) for k in landed} == {"csv", "jsonl", "parquet"}
    catalog = get_catalog()
    manifests = crawl_partition(s3_lake, catalog, DT)
    assert {m["format"] for m in manifests if m["status"] == "parsed"} == {"csv", "jsonl", "parquet"}
    summary = curate_partition(s3_lake, catalog, DT, [validate_file(s3_lake, m) for m in manifests], "run-mixed")
    assert summary["rows_curated"] > 0

    database = get_settings().database
    wrong, checked = mismatches(s3_lake, database)
    assert not wrong and checked >= 2  # curated_reviews: its table and its partition hold the parquet part
    tables = [t["Name"] for t in glue_client().get_tables(DatabaseName=database)["TableList"]]
    assert tables == ["curated_reviews"]
    # the raw schema is still catalogued (a database parameter), so the next crawl sees drift against it
    record = json.loads(glue_client().get_database(Name=database)["Database"]["Parameters"][SCHEMA_PARAMETER +
                                                                                          "raw_reviews"])  # fmt: skip
    parsed = [m for m in manifests if m["status"] == "parsed"]
    assert record == {"location": s3_lake.uri("raw/reviews"), "columns": parsed[0]["columns"]}
    again = crawl_partition(s3_lake, catalog, DT)
    assert all(m["drift_vs_catalog"] is not None for m in again if m["status"] == "parsed")


def test_a_raw_table_declared_csv_by_an_older_version_is_dropped(s3_lake):
    import awswrangler as wr

    catalog = get_catalog()
    session, database = aws.session(), get_settings().database
    wr.catalog.create_csv_table(database, "raw_reviews", s3_lake.uri("raw/reviews") + "/", {"rating": "bigint"},
                                partitions_types={"dt": "string"}, boto3_session=session)  # fmt: skip
    buf = io.BytesIO()
    sample_data.generate_reviews(40, seed=3).astype(str).to_parquet(buf, index=False)
    s3_lake.write_bytes(f"landing/reviews/dt={DT}/day.parquet", buf.getvalue())
    crawl_partition(s3_lake, catalog, DT)
    assert s3_lake.exists(f"raw/reviews/dt={DT}/day.parquet")
    assert not wr.catalog.does_table_exist(database, "raw_reviews", boto3_session=session)
    assert mismatches(s3_lake, database) == ([], 0)  # the parquet copy under a CSV table is gone with the table
    assert "rating" in catalog.table_columns("raw_reviews")
