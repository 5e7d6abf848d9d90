"""Where everything lives in the lake: every zone, table name and key builder, in one place.

The zones are DESIGN.md's contract (other tools read them); stages import their keys from here,
never from each other. Keys are relative to the lake root (a local folder or ``s3://bucket/prefix``).
"""

from __future__ import annotations

import re

# -- zones ---------------------------------------------------------------------------------------
LANDING = "landing/reviews"  # review files as delivered, one folder per date
LANDING_LABELS = "landing/labels/"  # human label files (from the review queue)
RAW = "raw/reviews"  # byte copies of the landed files
STAGING = "staging/reviews"  # per-file parse output between crawl and validate
QUARANTINE = "quarantine/reviews"  # rows/ (with the rules they broke) and files/ (unreadable)
QUARANTINE_LABELS = "quarantine/labels/"
CURATED = "curated/reviews"
LABELS = "labels/reviews"
LABELS_KEY = f"{LABELS}/labels.parquet"  # merged human labels
PREDICTIONS = "predictions"
REVIEW_QUEUE = "review_queue"
MODELS = "models"
DATASETS = f"{MODELS}/datasets"
CATALOG_KEY = "catalog/reviewflow.duckdb"  # the local (DuckDB) catalog file
TMP_DIR = ".tmp"  # local temp files, outside every zone

# -- reports -------------------------------------------------------------------------------------
INGEST_REPORTS = "reports/ingest"
QUALITY_REPORTS = "reports/quality"  # GX Data Docs
BIAS_REPORTS = "reports/bias"
MODEL_REPORTS = "reports/models"
DRIFT_REPORTS = "reports/drift"
INSIGHTS_REPORTS = "reports/insights"
REALISED_QUALITY_REPORTS = "reports/realised_quality"
ALERTS = "reports/alerts"  # alerts.jsonl per date: every kind of alert, one record format
REPORT_ZONES = (
    INGEST_REPORTS, QUALITY_REPORTS, BIAS_REPORTS, MODEL_REPORTS, DRIFT_REPORTS, INSIGHTS_REPORTS, ALERTS,
    REALISED_QUALITY_REPORTS,
)  # fmt: skip

# -- catalog tables ------------------------------------------------------------------------------
RAW_TABLE = "raw_reviews"
CURATED_TABLE = "curated_reviews"
PREDICTIONS_TABLE = "predictions"
PRODUCT_SENTIMENT_TABLE = "product_sentiment_daily"  # dt x level x key: the day's figures and its test
PRODUCT_ALERTS_TABLE = "product_alerts"  # one row per product-issue alert
REALISED_QUALITY_TABLE = "realised_quality"  # dt x model: the champion's macro-F1 on each scored date
REALISED_QUALITY = "quality/realised_quality"  # that table's partitions: quality/realised_quality/dt=D/part-0.parquet
INSIGHTS = "insights"  # the two tables' partitions: insights/<table>/dt=D/part-0.parquet

# -- file names ----------------------------------------------------------------------------------
PART = "part-0.parquet"  # one parquet file per curated / predictions partition
CRAWL_SUMMARY = "crawl.json"  # staging/reviews/dt=D/crawl.json
DUPLICATES = "duplicates"  # quarantine/reviews/dt=D/rows/duplicates.parquet: copies found at curate time
REVIEW_QUEUE_FILE = "review_queue.csv"
DRIFT_REFERENCE = "drift_reference.json"  # cached beside the champion's model files
REGISTRATION = "registration.json"  # beside each registered model version
CHAMPION_KEY = f"{MODELS}/champion.json"
CHAMPION_HISTORY = f"{MODELS}/champion_history"
DECISIONS = f"{MODELS}/decisions"


def dt_prefix(zone: str, dt: str) -> str:
    """``curated/reviews`` + ``2024-01-01`` -> ``curated/reviews/dt=2024-01-01/``."""
    return f"{zone.strip('/')}/dt={dt}/"


def curated_key(dt: str) -> str:
    return dt_prefix(CURATED, dt) + PART


def predictions_key(dt: str) -> str:
    return dt_prefix(PREDICTIONS, dt) + PART


def review_queue_key(dt: str) -> str:
    return dt_prefix(REVIEW_QUEUE, dt) + REVIEW_QUEUE_FILE


def ingest_report_key(dt: str) -> str:
    return dt_prefix(INGEST_REPORTS, dt) + "ingest_report.json"


def bias_report_keys(dt: str) -> tuple[str, str]:
    """(json, html) of the bias report of ``dt``."""
    prefix = dt_prefix(BIAS_REPORTS, dt)
    return prefix + "bias_report.json", prefix + "bias_report.html"


def drift_report_keys(dt: str) -> tuple[str, str]:
    """(json, html) of the drift report of ``dt``."""
    prefix = dt_prefix(DRIFT_REPORTS, dt)
    return prefix + "drift_report.json", prefix + "drift_report.html"


def insights_report_keys(dt: str) -> tuple[str, str]:
    """(json, html) of the insights report of ``dt``."""
    prefix = dt_prefix(INSIGHTS_REPORTS, dt)
    return prefix + "insights.json", prefix + "insights.html"


def realised_quality_keys(dt: str) -> tuple[str, str]:
    """(json, html) of the realised-quality report of ``dt``."""
    prefix = dt_prefix(REALISED_QUALITY_REPORTS, dt)
    return prefix + "realised_quality.json", prefix + "realised_quality.html"


def insights_table_prefix(table: str) -> str:
    return f"{INSIGHTS}/{table}"


def alerts_prefix(dt: str) -> str:
    """``reports/alerts/dt=D/``: ``alerts.jsonl`` (all kinds) and one part per source that wrote alerts for D."""
    return dt_prefix(ALERTS, dt)


def dataset_key(dt: str) -> str:
    return dt_prefix(DATASETS, dt) + "dataset.parquet"


def snapshot_key(dt: str) -> str:
    return dt_prefix(DATASETS, dt) + "data_snapshot.json"


def model_prefix(model_name: str, version: str) -> str:
    """``models/<model>/<version>/``: the model's files and its registration."""
    return f"{MODELS}/{model_name}/{version}/"


def model_report_prefix(model_name: str, version: str) -> str:
    return f"{MODEL_REPORTS}/{model_name}/{version}/"


def decision_key(run_id: str) -> str:
    """``models/decisions/<run>.json``; the run id made safe as a key."""
    return f"{DECISIONS}/{re.sub(r'[^A-Za-z0-9_.-]+', '_', run_id)[:200]}.json"
