"""AWS through an Airflow connection defined by environment (``AIRFLOW_CONN_AWS_DEFAULT``), on moto.

Unlike ``aws_env`` (conftest), nothing reaches boto3 from its own environment: no AWS_* keys, no
endpoint variables, no shared config files, no instance metadata. Whatever finds the moto server
found it through the connection.
"""

from __future__ import annotations

import json
import socket

import pytest

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_GLUE", "AWS_ENDPOINT_URL_ATHENA", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SAGEMAKER",
)  # fmt: skip
LOGIN, PASSWORD = "conn-key-id", "conn-secret-key"


def closed_port_url() -> str:
    """An endpoint where nothing listens (a port just released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def set_connection(monkeypatch, extra: dict, conn_id: str = "aws_default") -> None:
    conn = {"conn_type": "aws", "login": LOGIN, "password": PASSWORD,
            "extra": {"region_name": "us-east-1", **extra}}  # fmt: skip
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def clear_aws_environment(monkeypatch, tmp_path) -> None:
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("REVIEWFLOW_AWS_CONN_ID", raising=False)
    monkeypatch.delenv("REVIEWFLOW_AWS_REGION", raising=False)


@pytest.fixture
def aws_conn(moto_server, monkeypatch, tmp_path) -> str:
    """``aws_default`` = moto (login/password, extra endpoint_url); returns the moto endpoint.

    Import it into a test module as ``aws_conn = aws_connection.aws_conn``.
    """
    clear_aws_environment(monkeypatch, tmp_path)
    set_connection(monkeypatch, {"endpoint_url": moto_server})
    return moto_server
