"""reviews_ingest on the aws seam, as a user runs it (`airflow dags test` in a fresh process): S3 lake
and Glue catalog on moto, reached only through the Airflow connection ``aws_default`` defined by
``AIRFLOW_CONN_AWS_DEFAULT`` (no AWS_* variables in the task process)."""

from __future__ import annotations

import uuid

import aws_connection
import pytest
from fresh_process import airflow_dags_test

from reviewflow.storage import aws
from reviewflow.storage.lake import S3Lake, read_json
from tools import sample_data

pytestmark = [pytest.mark.aws, pytest.mark.e2e]
aws_conn = aws_connection.aws_conn  # the fixture
DT = "2024-06-03"


def test_ingest_dag_runs_on_s3_and_glue_through_the_connection(airflow_db, aws_conn, monkeypatch):
    bucket, database = f"reviewflow-dag-{uuid.uuid4().hex[:8]}", f"reviews_{uuid.uuid4().hex[:6]}"
    aws.session().client("s3").create_bucket(Bucket=bucket)
    root = f"s3://{bucket}/lake"
    for name, value in {"REVIEWFLOW_LAKE": root, "REVIEWFLOW_CATALOG": "glue", "REVIEWFLOW_SQL": "athena",
                        "REVIEWFLOW_DATABASE": database}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    sample_data.write_landing(root, days=1, rows_per_day=60, start=DT, formats=("csv", "jsonl"), incidents=None,
                              trend=False)  # fmt: skip

    result = airflow_dags_test("reviews_ingest", DT)

    assert result.ok, result.tail()
    assert "credentials retrieved from login and password" in result.output  # the connection's keys, in the task
    lake = S3Lake(root)
    report = read_json(lake, f"reports/ingest/dt={DT}/ingest_report.json")
    assert report["rows_in"] == report["rows_curated"] + report["rows_quarantined"] > 0
    glue = aws.session().client("glue")
    assert [t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]] == ["curated_reviews"]
    partitions = glue.get_partitions(DatabaseName=database, TableName="curated_reviews")["Partitions"]
    assert [p["Values"] for p in partitions] == [[DT]]
