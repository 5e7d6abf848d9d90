"""The SQL seam: run the same include/sql files on DuckDB (local) or Athena (aws).

SQL files keep to the common subset of DuckDB and Trino. Identifiers (database, table) are
rendered from config after validation; values are bound as qmark (``?``) parameters by the
engine, never pasted into the text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from reviewflow import contract
from reviewflow.config import SQL_DIR, Settings, get_settings, validate_identifier

if TYPE_CHECKING:
    import pandas as pd


def contract_fragments() -> dict[str, str]:
    """SQL built from the data contract (never from settings or data), so SQL and Python agree."""
    return {"missing": f"'{contract.MISSING}'", "age_band": contract.age_band_sql("age")}


def render_sql(name: str, **identifiers: str) -> str:
    """Load include/sql/<name>.sql; fill its ``{identifier}`` slots with validated names, the rest from the contract."""
    text = (SQL_DIR / f"{name}.sql").read_text()
    return text.format(
        **contract_fragments(), **{key: validate_identifier(value) for key, value in identifiers.items()}
    )


class SqlEngine(Protocol):
    database: str

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame: ...


class DuckDBEngine:
    """Reads the local catalog file (views over the lake's parquet) read-only."""

    def __init__(self, lake_root: str, database: str = "reviews"):
        from pathlib import Path

        from reviewflow.layout import CATALOG_KEY

        self.path = str(Path(lake_root) / CATALOG_KEY)
        self.database = validate_identifier(database)

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        from reviewflow.storage.catalog import duckdb_connect

        with duckdb_connect(self.path, read_only=True) as con:
            return con.execute(sql, params or []).df()


class AthenaEngine:
    """Athena through awswrangler, with execution parameters (qmark) for bound values.

    Its boto3 session comes from the Airflow connection ``aws_conn_id`` (``storage.aws``).
    """

    def __init__(
        self, database: str, workgroup: str = "primary", s3_output: str | None = None, boto3_session=None,
        aws_conn_id: str = "aws_default",
    ):  # fmt: skip
        from reviewflow.storage import aws

        self.database = validate_identifier(database)
        self.workgroup = workgroup
        self.s3_output = s3_output or None
        self.session = boto3_session if boto3_session is not None else aws.session(aws_conn_id)

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        import awswrangler as wr

        return wr.athena.read_sql_query(
            sql,
            database=self.database,
            params=[_athena_literal(p) for p in params] if params else None,
            paramstyle="qmark",
            workgroup=self.workgroup,
            s3_output=self.s3_output,
            ctas_approach=False,
            boto3_session=self.session,
        )


def _athena_literal(value) -> str:
    # Athena execution parameters are passed as SQL literals.
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def get_engine(settings: Settings | None = None) -> SqlEngine:
    settings = settings or get_settings()
    if settings.sql == "athena":
        from reviewflow.storage import aws

        session = aws.session(settings.aws_conn_id, settings.aws_region)
        return AthenaEngine(settings.database, settings.athena_workgroup, settings.athena_output, session)
    return DuckDBEngine(settings.lake, settings.database)
