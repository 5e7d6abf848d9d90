"""A scored lake for the insights tests: generated reviews as curated partitions and a real model's predictions.

The rows skip ingest (its own tests cover it) but are written and catalogued exactly as curate and
score write them (parquet partitions + DuckDB catalog views), and the predictions come from a real
TF-IDF + logistic regression model trained on other generated days, so the detector sees a model's
errors, not the ratings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reviewflow import contract, layout
from reviewflow.storage.catalog import DuckDBCatalog
from reviewflow.storage.lake import LocalLake, replace_partition, write_parquet

KAGGLE = {"Clothing ID": "clothing_id", "Age": "age", "Title": "title", "Review Text": "review_text",
          "Rating": "rating", "Recommended IND": "recommended_ind", "Positive Feedback Count": "positive_feedback_count",
          "Division Name": "division_name", "Department Name": "department_name", "Class Name": "class_name"}  # fmt: skip
CURATED = {"review_id": "VARCHAR", "clothing_id": "BIGINT", "age": "BIGINT", "title": "VARCHAR",
           "review_text": "VARCHAR", "rating": "BIGINT", "department_name": "VARCHAR", "class_name": "VARCHAR",
           "division_name": "VARCHAR", "sentiment": "BIGINT"}  # fmt: skip


def curated_frame(kaggle: pd.DataFrame, dt: str) -> pd.DataFrame:
    frame = kaggle.rename(columns=KAGGLE)
    frame = frame[pd.to_numeric(frame["rating"], errors="coerce").between(1, 5)].copy()
    frame["review_id"] = [f"{dt}-{i}" for i in range(len(frame))]
    for column in ("clothing_id", "age", "rating"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("int64")
    frame["sentiment"] = frame["rating"].map(contract.sentiment_from_rating).astype("int64")
    for column in ("title", "review_text", "department_name", "class_name", "division_name"):
        frame[column] = frame[column].astype(str)
    return frame[list(CURATED)].reset_index(drop=True)


def train_model(kaggle: pd.DataFrame):
    """A real TF-IDF + logistic regression sentiment model (the shape of the project's baseline)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    frame = curated_frame(kaggle, "train")
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                          LogisticRegression(max_iter=1000, class_weight="balanced"))  # fmt: skip
    model.fit(contract.model_text(frame["title"], frame["review_text"]), frame["sentiment"])
    return model


def write_scored_day(lake_root: str, dt: str, kaggle: pd.DataFrame, model) -> pd.DataFrame:
    """curated/reviews/dt=D and predictions/dt=D for one day of Kaggle-schema rows; the curated frame."""
    lake, catalog = LocalLake(lake_root), DuckDBCatalog(lake_root)
    curated = curated_frame(kaggle, dt)
    replace_partition(lake, layout.dt_prefix(layout.CURATED, dt), {})
    write_parquet(lake, layout.curated_key(dt), curated)
    catalog.register_table(layout.CURATED_TABLE, lake.uri(layout.CURATED), CURATED, "parquet")
    catalog.register_partition(layout.CURATED_TABLE, dt)
    probs = model.predict_proba(contract.model_text(curated["title"], curated["review_text"]))
    classes = np.asarray(model.classes_)
    order = [int(np.flatnonzero(classes == label)[0]) for label in contract.LABELS]
    probs = probs[:, order]
    predictions = pd.DataFrame({
        "review_id": curated["review_id"], "dt": dt, "sentiment_pred": np.asarray(contract.LABELS)[probs.argmax(1)],
        "p_negative": probs[:, 0], "p_neutral": probs[:, 1], "p_positive": probs[:, 2], "confidence": probs.max(1),
        "model_name": "tfidf", "model_version": "test", "scored_at": "2024-01-01T00:00:00+00:00",
    })  # fmt: skip
    write_parquet(lake, layout.predictions_key(dt), predictions)
    from reviewflow.scoring.score import PREDICTION_COLUMNS

    catalog.register_table(layout.PREDICTIONS_TABLE, lake.uri(layout.PREDICTIONS), PREDICTION_COLUMNS, "parquet")
    catalog.register_partition(layout.PREDICTIONS_TABLE, dt)
    return curated
