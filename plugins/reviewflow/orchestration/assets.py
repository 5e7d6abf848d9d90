"""Airflow Assets that chain the DAGs (data-aware scheduling)."""

from airflow.sdk import Asset

CURATED_REVIEWS = Asset(name="curated_reviews", uri="reviewflow://reviews/curated_reviews", group="reviewflow")
CHAMPION_MODEL = Asset(name="champion_model", uri="reviewflow://models/champion", group="reviewflow")
PREDICTIONS = Asset(name="predictions", uri="reviewflow://reviews/predictions", group="reviewflow")
MODEL_DECAY = Asset(name="model_decay", uri="reviewflow://models/decay", group="reviewflow")
