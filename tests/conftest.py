"""Test setup: an Airflow home of the session's own, and a fresh lake per test."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Before anything imports airflow: a throwaway AIRFLOW_HOME (SQLite) for dag.test().
_HOME = tempfile.mkdtemp(prefix="reviewflow-airflow-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "True"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["REVIEWFLOW_NO_AIRFLOW_VARIABLES"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Migrate the session's Airflow metadata DB once (for dag.test)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return _HOME


@pytest.fixture
def lake_root(tmp_path, monkeypatch) -> str:
    root = tmp_path / "lake"
    root.mkdir()
    monkeypatch.setenv("REVIEWFLOW_LAKE", str(root))
    monkeypatch.setenv("REVIEWFLOW_CATALOG", "duckdb")
    monkeypatch.setenv("REVIEWFLOW_SQL", "duckdb")
    return str(root)


@pytest.fixture(scope="session")
def moto_server():
    """A moto server on 127.0.0.1 standing in for S3, Glue and Athena (no AWS account here)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch):
    """Point boto3 / awswrangler at the moto server with dummy credentials."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.setup_default_session()
    yield moto_server
    boto3.setup_default_session()


POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def postgres_admin(sql: str) -> None:
    """Run one statement as the local PostgreSQL superuser (trust auth), outside a transaction."""
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", connect_timeout=5, **POSTGRES)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def postgres_database():
    """A fresh PostgreSQL database (SQLAlchemy URL) for an Airflow metadata DB, dropped afterwards.

    Skips when no PostgreSQL answers on 127.0.0.1:5432.
    """
    name = f"reviewflow_test_{uuid.uuid4().hex[:10]}"
    try:
        postgres_admin(f"CREATE DATABASE {name}")
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means: skip
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not usable ({type(exc).__name__}: {exc})".strip())
    yield f"postgresql+psycopg2://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{name}"
    postgres_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
