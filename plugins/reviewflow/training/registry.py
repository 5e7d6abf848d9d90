"""A small model registry in the lake: versions, their registration, the champion alias, decisions.

Layout under the lake root::

    models/<name>/<version>/            model files written by include/models/<kind>.py
        metrics.json params.json ...    (as the entry point wrote them)
        registration.json               the registry entry: kind, uri, metrics, params, data
                                        snapshot, code version, run, evaluation summary
    models/champion.json                the alias: {model_name, version, kind, model_uri, metrics,
                                        promoted_at, ...}; what scoring loads
    models/champion_history/<ts>.json   every promotion, for audit and rollback
    models/decisions/<run>.json         every gate decision with its reasons

MLflow is not used (yet): the lake registry keeps its ideas (versions, an alias, lineage) in
plain JSON next to the data, on local disk or S3 alike, with no tracking server to run.

Versions are ``YYYYMMDD-<run hash>``: one per model per DAG run (a retry of the same run
rewrites its own version), sortable by date.

The gate policy is in training/gate.py, loading a model in training/predictor.py, and what the
training tasks do in training/tasks.py.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from datetime import UTC, datetime

from reviewflow import layout
from reviewflow.config import PROJECT_ROOT
from reviewflow.layout import decision_key, model_prefix
from reviewflow.storage.lake import Lake, read_json, write_json

log = logging.getLogger(__name__)

KINDS = ("tfidf", "bert")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def version_for(dt: str, run_id: str) -> str:
    """``20240401-1a2b3c``: the run date and a hash of the run id."""
    return f"{dt.replace('-', '')}-{hashlib.sha256(run_id.encode()).hexdigest()[:6]}"


def code_version() -> dict:
    """The code that trained a model: git describe/commit when there is a checkout, else the package version."""
    import tomllib

    out = {}
    try:
        out["package"] = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, ValueError):
        out["package"] = "unknown"
    if (PROJECT_ROOT / ".git").exists():
        for key, cmd in (("git_describe", ["git", "describe", "--always", "--dirty", "--tags"]),
                         ("git_commit", ["git", "rev-parse", "HEAD"])):  # fmt: skip
            try:
                out[key] = subprocess.run(
                    cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True
                ).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                pass
    return out


def register(
    lake: Lake,
    model_name: str,
    version: str,
    kind: str,
    metrics: dict,
    params: dict | None = None,
    data_snapshot: dict | None = None,
    evaluation: dict | None = None,
    run_id: str | None = None,
    dt: str | None = None,
    dataset_uri: str | None = None,
    report_uri: str | None = None,
) -> str:
    """Record the model in ``models/<name>/<version>/`` (its files are already there); return the version.

    Idempotent: registering the same name and version again rewrites the entry.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}: expected one of {KINDS}")
    prefix = model_prefix(model_name, version)
    if not lake.list(prefix + "metrics.json"):
        raise FileNotFoundError(f"{lake.uri(prefix)} has no metrics.json: train the model before registering it")
    summary = None
    if evaluation is not None:
        summary = {k: evaluation[k] for k in ("n", "macro_f1", "accuracy", "per_class") if k in evaluation}
    entry = {
        "model_name": model_name,
        "version": version,
        "kind": kind,
        "model_uri": lake.uri(prefix),
        "metrics": metrics,
        "test_evaluation": summary,
        "params": params or {},
        "data_snapshot": data_snapshot or {},
        "dataset_uri": dataset_uri,
        "code_version": code_version(),
        "run_id": run_id,
        "dt": dt,
        "report_uri": report_uri,
        "registered_at": _now(),
    }
    write_json(lake, prefix + layout.REGISTRATION, entry)
    if data_snapshot:
        write_json(lake, prefix + "data_snapshot.json", data_snapshot)
    write_json(lake, prefix + "code_version.json", entry["code_version"])
    log.info("registered %s %s (%s) at %s", model_name, version, kind, entry["model_uri"])
    return version


def get_version(lake: Lake, model_name: str, version: str) -> dict:
    return read_json(lake, model_prefix(model_name, version) + layout.REGISTRATION)


def versions(lake: Lake, model_name: str | None = None) -> list[dict]:
    """Every registered version (of one model or all), oldest first."""
    keys = [
        k
        for k in lake.list(f"{layout.MODELS}/{model_name}/" if model_name else f"{layout.MODELS}/")
        if k.endswith("/" + layout.REGISTRATION)
    ]
    entries = [read_json(lake, k) for k in keys]
    return sorted(entries, key=lambda e: (e.get("registered_at", ""), e["version"]))


def champion(lake: Lake) -> dict | None:
    """The champion alias, or None before the first promotion."""
    return read_json(lake, layout.CHAMPION_KEY) if lake.exists(layout.CHAMPION_KEY) else None


def promote(lake: Lake, entry: dict, decision: dict | None = None, run_id: str | None = None) -> dict:
    """Point the champion alias at a registered version (and keep the history)."""
    previous = champion(lake)
    alias = {
        "model_name": entry["model_name"],
        "version": entry["version"],
        "kind": entry["kind"],
        "model_uri": entry["model_uri"],
        "metrics": {
            "test_macro_f1": (decision or {}).get("challenger", {}).get("macro_f1")
            or (entry.get("test_evaluation") or {}).get("macro_f1"),
            "test_accuracy": (entry.get("test_evaluation") or {}).get("accuracy"),
            "validation_macro_f1": entry["metrics"].get("validation", {}).get("macro_f1"),
        },
        "dataset_uri": entry.get("dataset_uri"),
        "data_snapshot": {k: entry.get("data_snapshot", {}).get(k) for k in ("dt", "rows", "sha256", "splits")},
        "report_uri": entry.get("report_uri"),
        "promoted_at": _now(),
        "promoted_by_run": run_id,
        "previous": {k: previous[k] for k in ("model_name", "version", "promoted_at")} if previous else None,
    }
    write_json(lake, layout.CHAMPION_KEY, alias)
    write_json(
        lake,
        f"{layout.CHAMPION_HISTORY}/{alias['promoted_at'].replace(':', '')}-{entry['model_name']}-{entry['version']}.json",
        alias,
    )
    log.info("champion is now %s %s", alias["model_name"], alias["version"])
    return alias


def record_decision(lake: Lake, run_id: str, decision: dict) -> str:
    """Write ``models/decisions/<run>.json``; a later stage of the same run rewrites it."""
    record = {**decision, "run_id": run_id, "recorded_at": _now()}
    return write_json(lake, decision_key(run_id), record)


def decisions(lake: Lake) -> list[dict]:
    """Every recorded decision, oldest first."""
    records = [read_json(lake, k) for k in lake.list(f"{layout.DECISIONS}/") if k.endswith(".json")]
    return sorted(records, key=lambda r: r.get("recorded_at", ""))
