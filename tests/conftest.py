"""Test setup: an Airflow home of the session's own, and a fresh lake per test."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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
