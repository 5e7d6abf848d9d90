"""The bias report on the aws seam: AthenaEngine (awswrangler) against a moto server, S3 as the lake.

AWS is reached only through the Airflow connection ``aws_default`` defined by environment
(``AIRFLOW_CONN_AWS_DEFAULT`` with the moto endpoint; no AWS_* variables: ``aws_connection.py``).

moto does not execute SQL: it answers a query with the next canned result queued through its
API (POST /moto-api/static/athena/query-results) and writes it as CSV to the query's S3 output
location, which awswrangler then reads. So these tests check that the bias SQL is submitted
as rendered, with the report date bound as execution parameters, and that the aggregate rows
coming back flow through result handling and the metric formulas to the report on S3.

Canned aggregate (what bias_counts.sql would return), report date D = 2024-01-03:

    department class    division        age band  label  n_cumulative  n_partition
    Tops       Knits    General         25-34      1        30            10
    Tops       Knits    General         25-34     -1        10             2
    Tops       Blouses  General Petite  45-54      0        10             0
    Dresses    Dresses  General         25-34      1        20             5
    Dresses    Dresses  General         45-54     -1        20             3
    Jackets    Jackets  General         65+        1        10             0
"""

from __future__ import annotations

import json
import math
import urllib.request
import uuid

import aws_connection
import pytest
from aws_connection import closed_port_url, set_connection
from botocore.exceptions import EndpointConnectionError

from reviewflow.bias import metrics as bias
from reviewflow.bias import tasks as bias_tasks
from reviewflow.config import get_settings
from reviewflow.storage import aws
from reviewflow.storage.lake import get_lake, read_json
from reviewflow.storage.sql import AthenaEngine, get_engine, render_sql

pytestmark = pytest.mark.aws
aws_conn = aws_connection.aws_conn  # the fixture
D = "2024-01-03"
COLUMNS = [("department_name", "varchar"), ("class_name", "varchar"), ("division_name", "varchar"),
           ("age_band", "varchar"), ("label_value", "integer"), ("n_cumulative", "bigint"),
           ("n_partition", "bigint")]  # fmt: skip
CANNED = [
    ("Tops", "Knits", "General", "25-34", 1, 30, 10),
    ("Tops", "Knits", "General", "25-34", -1, 10, 2),
    ("Tops", "Blouses", "General Petite", "45-54", 0, 10, 0),
    ("Dresses", "Dresses", "General", "25-34", 1, 20, 5),
    ("Dresses", "Dresses", "General", "45-54", -1, 20, 3),
    ("Jackets", "Jackets", "General", "65+", 1, 10, 0),
]
ln = math.log


def queue_athena_result(endpoint: str, rows: list[tuple]) -> None:
    """Queue one canned Athena result (header row first, as Athena's GetQueryResults has it)."""

    def row(values):
        return {"Data": [{} if v is None else {"VarCharValue": str(v)} for v in values]}

    body = {
        "region": "us-east-1",
        "results": [{
            "rows": [row([name for name, _ in COLUMNS]), *(row(r) for r in rows)],
            "column_info": [{"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
                             "Type": kind, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": False}
                            for name, kind in COLUMNS],
        }],
    }  # fmt: skip
    request = urllib.request.Request(
        f"{endpoint}/moto-api/static/athena/query-results",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


@pytest.fixture
def athena_env(aws_conn, monkeypatch) -> str:
    bucket = f"reviewflow-bias-{uuid.uuid4().hex[:8]}"
    aws.session().client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("REVIEWFLOW_LAKE", f"s3://{bucket}/lake")
    monkeypatch.setenv("REVIEWFLOW_CATALOG", "glue")
    monkeypatch.setenv("REVIEWFLOW_SQL", "athena")
    monkeypatch.setenv("REVIEWFLOW_ATHENA_OUTPUT", f"s3://{bucket}/athena-results/")
    monkeypatch.setenv("REVIEWFLOW_DATABASE", f"reviews_{uuid.uuid4().hex[:6]}")
    return aws_conn


def last_execution() -> dict:
    athena = aws.session().client("athena")
    ids = athena.list_query_executions()["QueryExecutionIds"]
    return athena.get_query_execution(QueryExecutionId=ids[-1])["QueryExecution"]


def test_athena_engine_submits_the_bias_sql_and_reads_the_counts(athena_env):
    settings = get_settings()
    engine = get_engine(settings)
    assert isinstance(engine, AthenaEngine)
    queue_athena_result(athena_env, CANNED)

    counts = bias_tasks.fetch_counts(engine, D)

    execution = last_execution()
    assert execution["Query"] == render_sql("bias_counts", database=settings.database, table="curated_reviews")
    assert execution["ExecutionParameters"] == [f"'{D}'", f"'{D}'"]  # bound values, never pasted in
    assert execution["QueryExecutionContext"]["Database"] == settings.database
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(settings.athena_output)
    assert len(counts) == len(CANNED)
    assert counts["n_cumulative"].tolist() == [r[5] for r in CANNED]
    assert counts["n_partition"].tolist() == [r[6] for r in CANNED]
    assert counts["label_value"].tolist() == [r[4] for r in CANNED]
    assert counts["age_band"].tolist() == [r[3] for r in CANNED]


def test_nulls_from_athena_become_their_own_facet_value(athena_env):
    queue_athena_result(athena_env, [("Tops", "Knits", None, "(missing)", 1, 4, 1), ("Tops", "Knits", "General",
                                                                                      "25-34", 0, 2, 0)])  # fmt: skip
    counts = bias_tasks.fetch_counts(get_engine(), D)
    assert counts["division_name"].tolist() == ["(missing)", "General"]
    report = bias.build_report(counts, D)
    divisions = report["label_distribution"]["cumulative"]["facets"]["division_name"]
    assert [(r["facet_value"], r["n"]) for r in divisions] == [("(missing)", 4), ("General", 2)]


def test_bias_report_end_to_end_on_athena_and_s3(athena_env):
    queue_athena_result(athena_env, CANNED)

    summary = bias_tasks.run_bias_report(D, get_settings(), get_lake(), get_engine())

    assert summary["json"].startswith("s3://") and summary["html"].startswith("s3://")
    lake = get_lake()
    report = read_json(lake, f"reports/bias/dt={D}/bias_report.json")
    html = lake.read_bytes(f"reports/bias/dt={D}/bias_report.html").decode()
    assert "data:image/png;base64," in html and "Largest disparities first" in html

    assert report["scopes"]["cumulative"]["rows"] == 100 and report["scopes"]["partition"]["rows"] == 20
    overall = report["label_distribution"]["cumulative"]["overall"]
    assert overall["counts"] == {"-1": 30, "0": 10, "1": 60} and overall["imbalance_ratio"] == pytest.approx(6.0)
    partition_departments = report["label_distribution"]["partition"]["facets"]["department_name"]
    assert [r["facet_value"] for r in partition_departments] == ["Dresses", "Tops"]  # no Jackets on D

    def metrics(scope, value, label):
        return {m["metric"]: m for m in report["metrics"]
                if (m["scope"], m["facet"], m["facet_value"], m["label_value"]) == (scope, "department_name", value,
                                                                                    label)}  # fmt: skip

    # cumulative, d = Dresses (n_d = 40, n_a = 60), y = sentiment 1: y_d = 20, y_a = 40
    p_a, p_d = (1 / 3, 2 / 3), (1 / 2, 1 / 2)
    m = ((p_a[0] + p_d[0]) / 2, (p_a[1] + p_d[1]) / 2)
    # CDDL by age band: 25-34 (n 60): y 50, Dresses 20 -> A = 0.4; not-y 10, Dresses 0 -> D = 0
    #                   45-54 (n 30): y 0 -> A = 0; not-y 30, Dresses 20 -> D = 2/3
    #                   65+   (n 10): y 10, Dresses 0 -> A = 0; no not-y -> D = 0
    expected = {
        "CI": (60 - 40) / 100,
        "DPL": 40 / 60 - 20 / 40,
        "KL": p_a[0] * ln(p_a[0] / p_d[0]) + p_a[1] * ln(p_a[1] / p_d[1]),
        "JS": 0.5 * (p_a[0] * ln(p_a[0] / m[0]) + p_a[1] * ln(p_a[1] / m[1])
                     + p_d[0] * ln(p_d[0] / m[0]) + p_d[1] * ln(p_d[1] / m[1])),
        "LP": math.sqrt(2 * (1 / 6) ** 2),
        "TVD": 1 / 6,
        "KS": 1 / 6,
        "CDDL": (60 * (0 - 0.4) + 30 * (2 / 3 - 0) + 10 * 0) / 100,
    }  # fmt: skip
    found = metrics("cumulative", "Dresses", 1)
    for metric, value in expected.items():
        assert found[metric]["value"] == pytest.approx(value, abs=1e-12), metric
        assert (found[metric]["n_a"], found[metric]["n_d"]) == (60, 40)
    assert found["CDDL"]["group"] == "age_band"

    # partition, d = Dresses (n_d = 8, n_a = 12), y = sentiment 1: y_d = 5, y_a = 10
    # CDDL: 25-34 (n 17): y 15, Dresses 5 -> A = 1/3, not-y 2 (Tops) -> D = 0; 45-54 (n 3): D = 1
    found = metrics("partition", "Dresses", 1)
    p_a, p_d = (2 / 12, 10 / 12), (3 / 8, 5 / 8)
    assert found["CI"]["value"] == pytest.approx((12 - 8) / 20)
    assert found["DPL"]["value"] == pytest.approx(10 / 12 - 5 / 8)
    assert found["KL"]["value"] == pytest.approx(p_a[0] * ln(p_a[0] / p_d[0]) + p_a[1] * ln(p_a[1] / p_d[1]))
    assert found["CDDL"]["value"] == pytest.approx((17 * (0 - 1 / 3) + 3 * (1 - 0)) / 20)
    # Tops has every neutral row: for d = Dresses, sentiment 0, P_d(y) = 0 < P_a(y) -> KL undefined
    kl = metrics("cumulative", "Dresses", 0)["KL"]
    assert kl["value"] is None and "P_d(y) = 0" in kl["reason"]


def test_athena_goes_where_the_connection_points(athena_env, monkeypatch):
    queue_athena_result(athena_env, CANNED)
    assert len(bias_tasks.fetch_counts(get_engine(), D)) == len(CANNED)
    # the same engine settings, a connection to nowhere: the query never reaches moto
    set_connection(monkeypatch, {"endpoint_url": closed_port_url(),
                                 "config_kwargs": {"retries": {"total_max_attempts": 1}, "connect_timeout": 2}})  # fmt: skip
    before = len(query_execution_ids(athena_env))
    with pytest.raises(EndpointConnectionError):
        bias_tasks.fetch_counts(get_engine(), D)
    assert len(query_execution_ids(athena_env)) == before


def query_execution_ids(endpoint: str) -> list[str]:
    """The query executions moto holds, read with a client of our own (not through the seam)."""
    import boto3

    client = boto3.client("athena", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # fmt: skip
    return client.list_query_executions()["QueryExecutionIds"]
