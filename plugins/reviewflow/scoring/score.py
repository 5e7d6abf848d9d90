"""Score: the champion's batch sentiment for curated partitions, written back to the lake.

A partition is read in record batches and predicted batch by batch, so memory stays bounded
whatever the partition's size; the predictions of a date are then written in one atomic PUT /
rename and registered in the catalog table ``predictions``. Rerunning a date rewrites it.

The day's low-confidence rows go to the review queue with ``reasons``: why the model predicted
what it did (``Predictor.explain``, see reviewflow.training.predictor and include/models/explain.py).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from reviewflow import contract, layout
from reviewflow.layout import dt_prefix
from reviewflow.storage.lake import Lake, replace_partition

log = logging.getLogger(__name__)

# DESIGN.md's contract, in its order; `dt` is in the file too, so one file read alone says its date.
PREDICTION_COLUMNS = {
    "review_id": "VARCHAR", "dt": "VARCHAR", "sentiment_pred": "BIGINT", "p_negative": "DOUBLE",
    "p_neutral": "DOUBLE", "p_positive": "DOUBLE", "confidence": "DOUBLE", "model_name": "VARCHAR",
    "model_version": "VARCHAR", "scored_at": "VARCHAR",
}  # fmt: skip
QUEUE_COLUMNS = ["review_id", "review_text", "sentiment_pred", "confidence", "reasons", "model_name", "model_version",
                 "label"]  # fmt: skip
LABELS = np.array(contract.LABELS)  # the probability columns, in order
BATCH_ROWS = 4096

Predictor = Callable[[list[str]], np.ndarray]  # texts -> (n, 3) probabilities (neg, neu, pos)


def review_texts(frame: pd.DataFrame) -> list[str]:
    """The model input: title and text, built as training builds it."""
    return contract.model_text(frame["title"], frame["review_text"])


def predictions_schema():
    """The predictions parquet schema (DESIGN.md's columns and types), for empty and full days alike."""
    import pyarrow as pa

    types = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}
    return pa.schema([pa.field(name, types[kind]) for name, kind in PREDICTION_COLUMNS.items()])


def predictions_parquet(predictions: pd.DataFrame) -> bytes:
    """The day's predictions as parquet bytes, typed by the contract even with no rows (no null-typed columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(
        predictions[list(PREDICTION_COLUMNS)], schema=predictions_schema(), preserve_index=False
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def curated_batches(lake: Lake, dt: str, columns: list[str], batch_rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    for key in lake.list(dt_prefix(layout.CURATED, dt)):
        parquet = pq.ParquetFile(io.BytesIO(lake.read_bytes(key)))
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            if batch.num_rows:  # an empty day's file has no rows: nothing to predict
                yield batch.to_pandas()


def score_partition(
    lake: Lake,
    catalog,
    dt: str,
    predict: Predictor,
    model: dict,
    queue_threshold: float,
    explain_top: int | None = None,
    explain_max_rows: int | None = None,
) -> dict:
    """Score curated/reviews/dt=<dt>/ into predictions/dt=<dt>/ and the day's review queue.

    The queue's ``reasons`` come from ``predict.explain`` when the predictor has one (the
    registry's predictors do): ``explain_top`` terms per row; a BERT model explains only the
    ``explain_max_rows`` least confident rows (integrated gradients cost ~n_steps passes a row).
    Left None, the predictor uses the settings ``explain_top_terms`` / ``explain_max_bert_rows``.
    """
    scored_at = datetime.now(UTC).isoformat(timespec="seconds")
    parts, queue = [], []
    for batch in curated_batches(lake, dt, ["review_id", "title", "review_text", "department_name"]):
        texts = review_texts(batch)
        probs = np.asarray(predict(texts), dtype="float64")
        out = pd.DataFrame(
            {
                "review_id": batch["review_id"].to_numpy(),
                "dt": dt,
                "sentiment_pred": LABELS[probs.argmax(axis=1)],
                "p_negative": probs[:, 0],
                "p_neutral": probs[:, 1],
                "p_positive": probs[:, 2],
                "confidence": probs.max(axis=1),
                "model_name": model["model_name"],
                "model_version": str(model["version"]),
                "scored_at": scored_at,
            }
        )
        parts.append(out)
        low = out["confidence"] < queue_threshold
        if low.any():
            queue.append(out[low].assign(review_text=np.asarray(texts, dtype=object)[low.to_numpy()]))
    # An empty day (no curated rows) still gets its partition: zero rows, the contract's types.
    predictions = pd.concat(parts, ignore_index=True) if parts else predictions_schema().empty_table().to_pandas()
    replace_partition(lake, dt_prefix(layout.PREDICTIONS, dt), {layout.PART: predictions_parquet(predictions)})
    catalog.register_table(layout.PREDICTIONS_TABLE, lake.uri(layout.PREDICTIONS), PREDICTION_COLUMNS, "parquet")
    catalog.register_partition(layout.PREDICTIONS_TABLE, dt)
    low = pd.concat(queue, ignore_index=True) if queue else None
    if low is not None:
        low = with_reasons(low.sort_values("confidence", kind="stable"), predict, explain_top, explain_max_rows)
    queued = write_review_queue(lake, dt, low)
    shares = predictions["sentiment_pred"].value_counts(normalize=True).to_dict() if len(predictions) else {}
    if predictions.empty:
        log.info("dt=%s: no reviews on %s: an empty predictions partition and an empty review queue", dt, dt)
    else:
        log.info("dt=%s: %d predictions, %d queued for human review", dt, len(predictions), queued)
    return {
        "dt": dt,
        "rows": int(len(predictions)),
        "queued_for_review": queued,
        "predicted_shares": {str(k): round(v, 4) for k, v in shares.items()},
        "model": f"{model['model_name']}:{model['version']}",
        "uri": lake.uri(dt_prefix(layout.PREDICTIONS, dt)),
    }


def with_reasons(low: pd.DataFrame, predict: Predictor, top: int | None, max_rows: int | None) -> pd.DataFrame:
    """``low`` with a ``reasons`` column: ``predict.explain`` for its rows in order ("" without one).

    ``top`` / ``max_rows`` None: the predictor's own defaults (the settings).
    """
    explain = getattr(predict, "explain", None)
    if explain is None or low.empty:
        return low.assign(reasons="")
    if (top is not None and top < 1) or (max_rows is not None and max_rows < 0):
        raise ValueError(f"explain_top must be >= 1 and explain_max_bert_rows >= 0 (got {top}, {max_rows})")
    index = np.searchsorted(LABELS, low["sentiment_pred"].to_numpy())  # -1/0/1 -> the class index 0/1/2
    reasons: list[str] = []
    for start in range(0, len(low), BATCH_ROWS):  # batches: the vectorised text stays bounded
        part = slice(start, start + BATCH_ROWS)
        # `start` rows came before: BERT's max_rows cap counts the whole queue, not each batch
        reasons.extend(explain(low["review_text"].iloc[part].tolist(), index[part], top, max_rows, start))
    return low.assign(reasons=reasons)


def write_review_queue(lake: Lake, dt: str, low: pd.DataFrame | None) -> int:
    """Low-confidence predictions, with their text, the model's reasons and an empty `label` to fill in.

    Columns: ``QUEUE_COLUMNS``, least confident first. ``reasons`` lists the terms (TF-IDF: words,
    word pairs and quoted character n-grams; BERT: words) that weighed most on the predicted class,
    as signed contributions to that class's score (logit): ``runs small (-0.41); love (+0.12)``;
    ``+`` pushed towards the predicted class, ``-`` away from it (why the model hesitated). Empty
    for a model without an explainer and for BERT rows past ``explain_max_bert_rows``.

    A person fills `label` (negative / neutral / positive or -1 / 0 / 1) and drops the file
    into landing/labels/ (the intake reads only `review_id` and `label`); the next training run
    prefers those labels. A day with nothing to review (or no reviews at all) gets the file too,
    with the header and no rows.
    """
    prefix = dt_prefix(layout.REVIEW_QUEUE, dt)
    if low is None or low.empty:
        queue = pd.DataFrame(columns=QUEUE_COLUMNS)
    else:
        if "reasons" not in low:
            low = low.assign(reasons="")
        queue = low[QUEUE_COLUMNS[:-1]].sort_values("confidence", kind="stable").assign(label="")
    replace_partition(lake, prefix, {layout.REVIEW_QUEUE_FILE: queue.to_csv(index=False).encode()})
    return int(len(queue))


def unscored_partitions(catalog, dt: str) -> list[str]:
    """Curated partitions up to ``dt`` with no predictions yet, plus ``dt`` itself."""

    scored = (
        set(catalog.partitions(layout.PREDICTIONS_TABLE)) if catalog.table_columns(layout.PREDICTIONS_TABLE) else set()
    )
    curated = [d for d in catalog.partitions(layout.CURATED_TABLE) if d <= dt]
    return sorted({d for d in curated if d not in scored} | ({dt} if dt in curated else set()))
