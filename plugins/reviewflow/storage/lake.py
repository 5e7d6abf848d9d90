"""The storage seam: one small interface over a local folder or an S3 prefix.

Keys are relative, '/'-separated paths under the lake root (e.g.
``curated/reviews/dt=2024-01-01/part-0.parquet``). Writes are atomic: a temp file then
``os.replace`` locally, a single PUT on S3, so a reader never sees half a file. Local temp files
live in ``<root>/.tmp/`` (same filesystem, short names), never inside a partition, so a process
killed mid-write leaves nothing a partition listing or ``read_parquet('dt=*/*')`` would see.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from reviewflow.faults import maybe_crash
from reviewflow.layout import TMP_DIR

if TYPE_CHECKING:
    import pandas as pd


class Lake(Protocol):
    root: str

    def uri(self, key: str) -> str: ...
    def exists(self, key: str) -> bool: ...
    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> str: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def clean_temp(self, older_than_s: float = 3600) -> int: ...
    def copy(self, src: str, dst: str) -> None: ...
    def put_file(self, local_path: str, key: str) -> str: ...
    def local_path(self, key: str): ...  # context manager: a local file holding the key's bytes


class LocalLake:
    def __init__(self, root: str):
        self.root = str(Path(root).resolve())

    def _temp_path(self) -> Path:
        tmp = Path(self.root) / TMP_DIR
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f"{uuid.uuid4().hex}.tmp"

    def path(self, key: str) -> Path:
        return Path(self.root) / key

    def uri(self, key: str) -> str:
        return str(self.path(key))

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def _commit(self, tmp: Path, key: str) -> str:
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            maybe_crash(f"write:{key}")
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return str(target)

    def write_bytes(self, key: str, data: bytes) -> str:
        tmp = self._temp_path()
        try:
            tmp.write_bytes(data)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._commit(tmp, key)

    def clean_temp(self, older_than_s: float = 3600) -> int:
        """Remove temp files a killed writer left (old enough that no live write owns them)."""
        import time

        tmp, removed = Path(self.root) / TMP_DIR, 0
        for path in tmp.glob("*.tmp") if tmp.exists() else []:
            try:
                if time.time() - path.stat().st_mtime > older_than_s:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass  # its writer just renamed it
        return removed

    def put_file(self, local_path: str, key: str) -> str:
        tmp = self._temp_path()
        try:
            shutil.copyfile(local_path, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._commit(tmp, key)

    def copy(self, src: str, dst: str) -> None:
        self.put_file(str(self.path(src)), dst)

    @contextmanager
    def local_path(self, key: str) -> Generator[str, None, None]:
        yield str(self.path(key))

    def list(self, prefix: str) -> list[str]:
        """Every file under prefix, dot files included (only the lake's own temp area is hidden)."""
        base = self.path(prefix)
        if base.is_file():
            return [prefix]
        if not base.exists():
            return []
        tmp = Path(self.root) / TMP_DIR
        return sorted(
            str(p.relative_to(self.root)).replace(os.sep, "/")
            for p in base.rglob("*")
            if p.is_file() and tmp not in p.parents
        )

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self.path(key).unlink(missing_ok=True)
        return len(keys)


class S3Lake:
    """An S3 prefix; its client comes from the Airflow connection ``aws_conn_id`` (``storage.aws``).

    ``aws_conn_id`` None means the ``aws_conn_id`` setting (read when the client is first needed).
    """

    def __init__(self, root: str, client=None, aws_conn_id: str | None = None):
        if not root.startswith("s3://"):
            raise ValueError(f"not an s3 uri: {root}")
        self.root = root.rstrip("/")
        bucket_prefix = self.root[len("s3://") :]
        self.bucket, _, self.prefix = bucket_prefix.partition("/")
        self._client = client
        self.aws_conn_id = aws_conn_id

    @property
    def client(self):
        if self._client is None:
            from reviewflow.storage import aws

            conn_id = self.aws_conn_id
            if conn_id is None:
                from reviewflow.config import get_settings

                conn_id = get_settings().aws_conn_id
            self._client = aws.session(conn_id).client("s3")
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            # Only "not found" means missing; a 403 (or anything else) must not read as "no such key".
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def read_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def write_bytes(self, key: str, data: bytes) -> str:
        maybe_crash(f"write:{key}")
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return self.uri(key)

    def put_file(self, local_path: str, key: str) -> str:
        maybe_crash(f"write:{key}")
        self.client.upload_file(local_path, self.bucket, self._key(key))  # multipart for big files
        return self.uri(key)

    def copy(self, src: str, dst: str) -> None:
        maybe_crash(f"write:{dst}")
        self.client.copy({"Bucket": self.bucket, "Key": self._key(src)}, self.bucket, self._key(dst))

    def clean_temp(self, older_than_s: float = 3600) -> int:
        return 0  # a PUT is atomic on S3: no temp objects to leave behind

    @contextmanager
    def local_path(self, key: str) -> Generator[str, None, None]:
        with tempfile.TemporaryDirectory(prefix="reviewflow-") as tmp:
            path = os.path.join(tmp, "object")
            self.client.download_file(self.bucket, self._key(key), path)  # streams to disk
            yield path

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str) -> list[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": self._key(k)} for k in chunk]})
        return len(keys)


def get_lake(root: str | None = None, aws_conn_id: str | None = None) -> Lake:
    if root is None:
        from reviewflow.config import get_settings

        settings = get_settings()
        root, aws_conn_id = settings.lake, aws_conn_id or settings.aws_conn_id
    return S3Lake(root, aws_conn_id=aws_conn_id) if root.startswith("s3://") else LocalLake(root)


# -- typed helpers shared by every stage ---------------------------------------------------


def write_json(lake: Lake, key: str, obj) -> str:
    import json

    return lake.write_bytes(key, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def read_json(lake: Lake, key: str):
    import json

    return json.loads(lake.read_bytes(key))


def write_parquet(lake: Lake, key: str, df: pd.DataFrame) -> str:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return lake.write_bytes(key, buf.getvalue())


def read_parquet(lake: Lake, key: str) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(io.BytesIO(lake.read_bytes(key)))


def replace_partition(lake: Lake, prefix: str, files: dict[str, bytes]) -> list[str]:
    """Make ``prefix`` hold exactly ``files`` (name -> bytes): idempotent partition rewrite.

    New files are written first, then stale ones removed, so the partition is never empty
    while a rerun is in flight.
    """
    written = [lake.write_bytes(prefix + name, data) for name, data in files.items()]
    keep = {prefix + name for name in files}
    for key in lake.list(prefix):
        if key not in keep:
            lake.delete(key)
    return written
