"""The catalog seam: tables, partitions and schemas, in DuckDB locally or AWS Glue on AWS.

Both keep, per table: a location (lake prefix holding ``dt=YYYY-MM-DD/`` partitions), a column
schema (name -> type string), and the partitions registered. Locally the catalog is a DuckDB
file in the lake (``catalog/reviewflow.duckdb``): metadata tables plus one view per table over
its parquet files, so the DuckDB SQL engine queries ``reviews.curated_reviews`` like Athena does.

Formats: ``parquet`` (a queryable table), ``csv`` (a queryable table over CSV files with one header
line), and ``mixed``: files kept as delivered, CSV, JSON lines and parquet side by side in one
partition folder (``raw/reviews/dt=D/``). Athena reads every file under a table's (or partition's)
location with the table's one SerDe, so no Glue table over such a folder is queryable: a ``mixed``
table is a schema record only (for schema drift), in the DuckDB metadata table locally and in a
parameter of the Glue database on AWS, never a Glue table.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Protocol

from reviewflow.config import Settings, get_settings, validate_identifier
from reviewflow.layout import CATALOG_KEY

# DuckDB types (from pandas/arrow) -> Glue/Hive types, for the Glue seam.
_GLUE_TYPES = {
    "BIGINT": "bigint", "INTEGER": "int", "DOUBLE": "double", "FLOAT": "float", "VARCHAR": "string",
    "BOOLEAN": "boolean", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp",
    "DATE": "date", "SMALLINT": "smallint", "TINYINT": "tinyint",
}  # fmt: skip

FORMATS = ("parquet", "csv", "mixed")
MIXED = "mixed"  # files as delivered, formats side by side: a schema record, not a queryable table
SCHEMA_PARAMETER = "reviewflow_schema_"  # + table name: a mixed table's record among the Glue database's parameters


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return fmt


class Catalog(Protocol):
    database: str

    def register_table(self, table: str, location: str, columns: dict[str, str], fmt: str) -> None: ...
    def register_partition(self, table: str, dt: str) -> None: ...
    def table_columns(self, table: str) -> dict[str, str] | None: ...
    def partitions(self, table: str) -> list[str]: ...


@contextmanager
def duckdb_connect(path: str, read_only: bool = False, attempts: int = 60):
    """Open the catalog file, waiting while another process holds its write lock."""
    import duckdb

    for attempt in range(attempts):
        try:
            con = duckdb.connect(path, read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.5)
    try:
        yield con
    finally:
        con.close()


class DuckDBCatalog:
    def __init__(self, lake_root: str, database: str = "reviews"):
        from pathlib import Path

        self.lake_root = lake_root
        self.path = str(Path(lake_root) / CATALOG_KEY)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.database = validate_identifier(database)
        with duckdb_connect(self.path) as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {self.database}")
            con.execute(
                "CREATE TABLE IF NOT EXISTS main.catalog_tables (database VARCHAR, name VARCHAR, "
                "location VARCHAR, format VARCHAR, columns VARCHAR, updated_at TIMESTAMP, "
                "PRIMARY KEY (database, name))"
            )
            con.execute(
                "CREATE TABLE IF NOT EXISTS main.catalog_partitions (database VARCHAR, name VARCHAR, "
                "dt VARCHAR, registered_at TIMESTAMP, PRIMARY KEY (database, name, dt))"
            )

    def register_table(self, table: str, location: str, columns: dict[str, str], fmt: str = "parquet") -> None:
        table, fmt = validate_identifier(table), check_format(fmt)
        with duckdb_connect(self.path) as con:
            con.execute(
                "INSERT OR REPLACE INTO main.catalog_tables VALUES (?, ?, ?, ?, ?, now())",
                [self.database, table, location, fmt, json.dumps(columns)],
            )
            self._refresh_view(con, table, location, fmt)

    def _refresh_view(self, con, table: str, location: str, fmt: str) -> None:
        from pathlib import Path

        if fmt != "parquet":
            return  # raw files are catalogued for lineage and drift, queried through curated
        if not any(Path(location).glob("dt=*/*.parquet")):
            return  # an empty glob is an error in DuckDB: create the view with the first partition
        glob = str(Path(location) / "dt=*" / "*.parquet").replace("'", "''")
        con.execute(
            f"CREATE OR REPLACE VIEW {self.database}.{table} AS SELECT * FROM read_parquet('{glob}', "
            "hive_partitioning = true, hive_types = {'dt': VARCHAR}, union_by_name = true)"
        )

    def register_partition(self, table: str, dt: str) -> None:
        table = validate_identifier(table)
        with duckdb_connect(self.path) as con:
            con.execute(
                "INSERT OR REPLACE INTO main.catalog_partitions VALUES (?, ?, ?, now())",
                [self.database, table, dt],
            )
            row = con.execute(
                "SELECT location, format FROM main.catalog_tables WHERE database = ? AND name = ?",
                [self.database, table],
            ).fetchone()
            if row:
                self._refresh_view(con, table, row[0], row[1])

    def table_columns(self, table: str) -> dict[str, str] | None:
        with duckdb_connect(self.path, read_only=True) as con:
            row = con.execute(
                "SELECT columns FROM main.catalog_tables WHERE database = ? AND name = ?",
                [self.database, table],
            ).fetchone()
        return json.loads(row[0]) if row else None

    def partitions(self, table: str) -> list[str]:
        with duckdb_connect(self.path, read_only=True) as con:
            rows = con.execute(
                "SELECT dt FROM main.catalog_partitions WHERE database = ? AND name = ? ORDER BY dt",
                [self.database, table],
            ).fetchall()
        return [r[0] for r in rows]


class GlueCatalog:
    """AWS Glue Data Catalog through awswrangler, on a boto3 session from the Airflow connection (``storage.aws``)."""

    def __init__(self, lake_root: str, database: str = "reviews", boto3_session=None, aws_conn_id: str = "aws_default"):
        import awswrangler as wr

        from reviewflow.storage import aws

        self.lake_root = lake_root
        self.database = validate_identifier(database)
        self.session = boto3_session if boto3_session is not None else aws.session(aws_conn_id)
        if self.database not in wr.catalog.databases(boto3_session=self.session)["Database"].values:
            wr.catalog.create_database(self.database, exist_ok=True, boto3_session=self.session)

    @property
    def _glue(self):
        return self.session.client("glue")

    def _schema_records(self) -> dict[str, dict]:
        """The mixed tables' records (``{table: {location, columns}}``) kept in the database's parameters."""
        params = self._glue.get_database(Name=self.database)["Database"].get("Parameters") or {}
        return {k[len(SCHEMA_PARAMETER) :]: json.loads(v) for k, v in params.items() if k.startswith(SCHEMA_PARAMETER)}

    def _record_schema(self, table: str, location: str, columns: dict[str, str]) -> None:
        glue = self._glue
        current = glue.get_database(Name=self.database)["Database"]
        params = dict(current.get("Parameters") or {})
        params[SCHEMA_PARAMETER + table] = json.dumps({"location": location, "columns": columns}, sort_keys=True)
        # UpdateDatabase replaces the whole input: carry the fields it would otherwise clear
        keep = ("Description", "LocationUri", "CreateTableDefaultPermissions", "TargetDatabase")
        glue.update_database(
            Name=self.database,
            DatabaseInput={
                "Name": self.database,
                **{k: current[k] for k in keep if k in current},
                "Parameters": params,
            },
        )

    def register_table(self, table: str, location: str, columns: dict[str, str], fmt: str = "parquet") -> None:
        import awswrangler as wr

        table, fmt = validate_identifier(table), check_format(fmt)
        if fmt == MIXED:
            self._record_schema(table, location, columns)
            # an older reviewflow declared this table CSV over mixed files: Athena misreads it, so it goes
            if wr.catalog.does_table_exist(self.database, table, boto3_session=self.session):
                wr.catalog.delete_table_if_exists(database=self.database, table=table, boto3_session=self.session)
            return
        types = {name: _GLUE_TYPES.get(t.upper(), "string") for name, t in columns.items() if name != "dt"}
        kwargs = dict(
            database=self.database, table=table, path=location.rstrip("/") + "/",
            columns_types=types, partitions_types={"dt": "string"}, mode="update",  # keeps partitions
            parameters={"reviewflow_columns": json.dumps(columns)}, boto3_session=self.session,
        )  # fmt: skip
        if fmt == "parquet":
            wr.catalog.create_parquet_table(**kwargs)
        else:
            wr.catalog.create_csv_table(**kwargs, skip_header_line_count=1)

    def register_partition(self, table: str, dt: str) -> None:
        import awswrangler as wr

        table = validate_identifier(table)
        if not wr.catalog.does_table_exist(self.database, table, boto3_session=self.session):
            if table in self._schema_records():
                return  # a mixed table: no Glue table, so no partitions Athena could read
            raise ValueError(f"Glue table {self.database}.{table} is not registered: register_table first")
        location = wr.catalog.get_table_location(self.database, table, boto3_session=self.session)
        fmt = (wr.catalog.get_table_parameters(self.database, table, boto3_session=self.session) or {}).get(
            "classification", "parquet"
        )
        values = {f"{location.rstrip('/')}/dt={dt}/": [dt]}
        if fmt == "csv":
            wr.catalog.add_csv_partitions(self.database, table, values, boto3_session=self.session)
        else:
            wr.catalog.add_parquet_partitions(self.database, table, values, boto3_session=self.session)

    def table_columns(self, table: str) -> dict[str, str] | None:
        import awswrangler as wr

        if not wr.catalog.does_table_exist(self.database, table, boto3_session=self.session):
            record = self._schema_records().get(table)
            return dict(record["columns"]) if record else None
        params = wr.catalog.get_table_parameters(self.database, table, boto3_session=self.session)
        if "reviewflow_columns" in params:
            return json.loads(params["reviewflow_columns"])
        return dict(wr.catalog.get_table_types(self.database, table, boto3_session=self.session) or {})

    def partitions(self, table: str) -> list[str]:
        import awswrangler as wr

        if not wr.catalog.does_table_exist(self.database, table, boto3_session=self.session):
            return []  # not a Glue table (or a mixed table's record only): nothing registered
        parts = wr.catalog.get_partitions(self.database, table, boto3_session=self.session)
        return sorted(values[0] for values in parts.values())


def get_catalog(settings: Settings | None = None) -> Catalog:
    settings = settings or get_settings()
    if settings.catalog == "glue":
        from reviewflow.storage import aws

        return GlueCatalog(settings.lake, settings.database, aws.session(settings.aws_conn_id, settings.aws_region))
    if settings.is_s3:
        raise ValueError("the duckdb catalog needs a local lake; use REVIEWFLOW_CATALOG=glue with s3://")
    return DuckDBCatalog(settings.lake, settings.database)
