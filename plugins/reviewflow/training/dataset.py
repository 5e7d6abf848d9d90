"""The training dataset of a run date: curated reviews up to D, labelled and split.

One parquet file per date, ``models/datasets/dt=D/dataset.parquet``, holds every curated review
with ``dt <= D`` (the latest copy of a review wins), its label (a human-corrected one from
``labels/reviews/`` when present, else the rating-derived sentiment), the model input ``text``
(title + ". " + review text, as scoring builds it), the facet columns used by evaluation, and
``split``: train / validation / test from a hash of ``review_id``, so the same review always
lands in the same split whatever day it is trained on (a champion is never tested on rows it
learned from). ``data_snapshot.json`` beside it records what went in: partitions and their
row counts, label sources, split and class counts, and a content hash.
"""

from __future__ import annotations

import hashlib
import io
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from reviewflow import contract, layout
from reviewflow.storage.lake import Lake, read_parquet, write_json

if TYPE_CHECKING:
    from reviewflow.storage.sql import SqlEngine

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
# hash bucket (0-99) upper bounds: 80 % train, 10 % validation, 10 % test
SPLIT_BOUNDS = {"train": 80, "validation": 90, "test": 100}
FACET_COLUMNS = ["division_name", "department_name", "class_name", "age"]
DATASET_COLUMNS = [
    "review_id", "text", "label", "label_source", "split", "rating", "sentiment", "clothing_id",
    *FACET_COLUMNS, "dt",
]  # fmt: skip


class EmptyDatasetError(RuntimeError):
    """No curated rows up to the run date: nothing to train on."""


def hash_bucket(review_id: str) -> int:
    """A stable bucket 0-99 for a review: sha256 of its id, mod 100."""
    return int(hashlib.sha256(str(review_id).encode()).hexdigest(), 16) % 100


def assign_split(review_id: str) -> str:
    bucket = hash_bucket(review_id)
    for name in SPLITS:
        if bucket < SPLIT_BOUNDS[name]:
            return name
    raise AssertionError("unreachable")


def read_labels(lake: Lake) -> pd.DataFrame | None:
    """Human-corrected labels (review_id, label in -1/0/1), or None when there are none yet."""
    keys = [k for k in lake.list(layout.LABELS + "/") if k.endswith(".parquet")]
    if not keys:
        return None
    frames = [read_parquet(lake, k)[["review_id", "label"]] for k in sorted(keys)]
    labels = pd.concat(frames, ignore_index=True).dropna()
    labels = labels.drop_duplicates("review_id", keep="last")
    labels["label"] = labels["label"].astype("int64")
    bad = ~labels["label"].isin([-1, 0, 1])
    if bad.any():
        raise ValueError(
            f"{layout.LABELS}/: {int(bad.sum())} labels outside -1/0/1, e.g. {labels[bad].head(3).to_dict('records')}"
        )
    return labels


def query_curated(dt: str, engine: SqlEngine) -> pd.DataFrame:
    """Curated rows with dt <= ``dt`` through the SQL seam (DuckDB locally, Athena on AWS)."""
    from reviewflow.storage.sql import render_sql

    sql = render_sql("training_data", database=engine.database, table=layout.CURATED_TABLE)
    return engine.query(sql, [dt])


def assemble(curated: pd.DataFrame, labels: pd.DataFrame | None) -> pd.DataFrame:
    """Curated rows -> dataset rows (dedup, labels, text, split), in a stable order."""
    frame = curated.sort_values(["dt", "review_id"], kind="stable").drop_duplicates("review_id", keep="last")
    frame = frame.reset_index(drop=True)
    frame["sentiment"] = frame["sentiment"].astype("int64")
    frame["label"] = frame["sentiment"]
    frame["label_source"] = "rating"
    if labels is not None and len(labels):
        human = frame["review_id"].map(labels.set_index("review_id")["label"])
        has = human.notna()
        frame.loc[has, "label"] = human[has].astype("int64")
        frame.loc[has, "label_source"] = "human"
    frame["label"] = frame["label"].astype("int64")
    frame["text"] = contract.model_text(frame["title"], frame["review_text"])
    frame["split"] = [assign_split(r) for r in frame["review_id"]]
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce").astype("Int64")
    for column in ("division_name", "department_name", "class_name"):
        frame[column] = frame[column].fillna("").astype(str)
    empty = frame["text"].str.strip() == ""
    if empty.any():
        log.warning("%d rows without any text are left out of the dataset", int(empty.sum()))
        frame = frame[~empty]
    return frame[DATASET_COLUMNS].sort_values("review_id", kind="stable").reset_index(drop=True)


def snapshot(frame: pd.DataFrame, dt: str, data: bytes) -> dict:
    counts = lambda s: {str(k): int(v) for k, v in s.value_counts().sort_index().items()}  # noqa: E731
    return {
        "dt": dt,
        "rows": int(len(frame)),
        "partitions": counts(frame["dt"]),
        "label_sources": counts(frame["label_source"]),
        "splits": counts(frame["split"]),
        "classes": {split: counts(part["label"]) for split, part in frame.groupby("split")},
        "split_rule": "sha256(review_id) mod 100: <80 train, <90 validation, else test",
        "sha256": hashlib.sha256(data).hexdigest(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def build_dataset(lake: Lake, dt: str, engine: SqlEngine | None, curated: pd.DataFrame | None = None) -> dict:
    """Write ``models/datasets/dt=<dt>/dataset.parquet`` + its snapshot; return the summary.

    ``curated`` skips the SQL query (benchmarks, tests; ``engine`` may then be None); otherwise
    the curated table is queried through ``engine``, the SQL seam. Rerunning a date rewrites both files.
    """
    if curated is None:
        if engine is None:
            raise ValueError("build_dataset needs the SQL engine (or the curated rows)")
        curated = query_curated(dt, engine)
    if curated.empty:
        raise EmptyDatasetError(f"no curated reviews with dt <= {dt}: run reviews_ingest first")
    frame = assemble(curated, read_labels(lake))
    missing = [s for s in SPLITS if not (frame["split"] == s).any()]
    if missing:
        raise EmptyDatasetError(f"dt <= {dt}: {len(frame)} rows leave the {missing} split(s) empty; need more data")
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    data = buf.getvalue()
    uri = lake.write_bytes(layout.dataset_key(dt), data)
    snap = snapshot(frame, dt, data)
    snap["uri"] = uri
    write_json(lake, layout.snapshot_key(dt), snap)
    log.info(
        "dataset dt<=%s: %d rows %s, labels %s -> %s", dt, snap["rows"], snap["splits"], snap["label_sources"], uri
    )
    return {"dataset_uri": uri, "snapshot_uri": lake.uri(layout.snapshot_key(dt)), "snapshot": snap}


def load_dataset(lake: Lake, dt: str) -> pd.DataFrame:
    return read_parquet(lake, layout.dataset_key(dt))


def read_dataset_uri(uri: str) -> pd.DataFrame:
    """A dataset parquet by URI (local path or s3://)."""
    if uri.startswith("s3://"):
        from reviewflow.storage.lake import S3Lake

        bucket_key = uri[len("s3://") :]
        bucket, _, key = bucket_key.partition("/")
        return pd.read_parquet(io.BytesIO(S3Lake(f"s3://{bucket}").read_bytes(key)))
    return pd.read_parquet(uri)


def from_source_csv(path: str, dt: str = "2024-01-01") -> pd.DataFrame:
    """A Kaggle-schema CSV as curated-like rows (for benchmarks; never copied into the lake)."""
    raw = pd.read_csv(path)
    raw.columns = [contract.snake_case(c) for c in raw.columns]
    raw = raw.dropna(subset=["rating"])
    raw = raw[raw["review_text"].notna() | raw["title"].notna()].copy()
    raw["review_id"] = [
        hashlib.sha256(f"{path.rsplit('/', 1)[-1]}|{r}".encode()).hexdigest()[:16] for r in raw["source_row_id"]
    ]
    raw["sentiment"] = [contract.sentiment_from_rating(int(r)) for r in raw["rating"]]
    raw["dt"] = dt
    return raw
