"""The model registry: MLflow's Model Registry, with its record mirrored as JSON in the lake.

MLflow (training/tracking.py, the one seam to it) holds every training run, every evaluated
version (registered model ``reviewflow-sentiment``, tag ``kind``) with the gate's decision as
version tags, and the champion as the alias ``champion``. mlflow-skinny co-installs with Airflow
3.3 (airflow-core asks only for ``cachetools>=6`` and ``importlib-metadata>=6.5``; the lock
pins cachetools 7 and importlib-metadata 9, below what mlflow-skinny caps). The lake keeps the
same record as plain JSON, so the decision can be read without MLflow (the model report, the
alert, the UI) and scoring still finds its model when MLflow cannot be reached::

    models/<name>/<version>/            model files written by include/models/<kind>.py
        metrics.json params.json ...    (as the entry point wrote them)
        registration.json               the registry entry: kind, uri, metrics, params, data
                                        snapshot, code version, run, evaluation summary, and
                                        ``mlflow`` (tracking URI, registry version, run id)
    models/champion.json                the alias as JSON: {model_name, version, kind, model_uri,
                                        metrics, promoted_at, promoted_by, reason, mlflow, ...}
    models/champion_history/<ts>.json   every promotion (and rollback), with who and why
    models/decisions/<run>.json         every gate decision with its reasons

``champion()`` resolves ``models:/reviewflow-sentiment@champion`` and falls back to
champion.json. Versions are ``YYYYMMDD-<run hash>``: one per model per DAG run (a retry of the
same run rewrites its own version, and maps to the same MLflow registry version).

History and rollback, from a shell with the project's environment (``. scripts/env.sh``)::

    python -m reviewflow.training.registry history
    python -m reviewflow.training.registry promote --model tfidf --version 20240501-abc123 \
        --reason "bert 20240502-... misreads sarcasm"

The gate policy is in training/gate.py, loading a model in training/predictor.py, and what the
training tasks do in training/tasks.py.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime

from reviewflow import layout
from reviewflow.config import PROJECT_ROOT
from reviewflow.layout import decision_key, model_prefix
from reviewflow.storage.lake import Lake, read_json, write_json
from reviewflow.training import tracking

log = logging.getLogger(__name__)

KINDS = ("tfidf", "bert", "ensemble")


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
    settings=None,
    mlflow_run_id: str | None = None,
) -> str:
    """Register the model (its files are already in ``models/<name>/<version>/``) in MLflow and the lake.

    ``mlflow_run_id``: the MLflow run that logged it (training/tracking.py), linked to the version.
    Idempotent: registering the same name and version again rewrites the entry (same MLflow version).
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
    store = tracking.store_for(lake, settings)
    entry["mlflow"] = {
        "tracking_uri": store.recorded_uri,
        "registered_model": tracking.REGISTERED_MODEL,
        "registry_version": tracking.register_version(store, entry, mlflow_run_id),
        "run_id": mlflow_run_id,
    }
    write_json(lake, prefix + layout.REGISTRATION, entry)
    if data_snapshot:
        write_json(lake, prefix + "data_snapshot.json", data_snapshot)
    write_json(lake, prefix + "code_version.json", entry["code_version"])
    log.info("registered %s %s (%s) at %s", model_name, version, kind, entry["model_uri"])
    return version


def _store(lake: Lake, settings, record: dict | None, create: bool = True):
    """The MLflow store: the setting, else the one the record (registration / champion.json) names."""
    recorded = ((record or {}).get("mlflow") or {}).get("tracking_uri")
    return tracking.store_for(lake, settings, recorded, create=create)


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


def champion_record(lake: Lake) -> dict | None:
    """champion.json as the lake holds it (no MLflow), or None before the first promotion."""
    return read_json(lake, layout.CHAMPION_KEY) if lake.exists(layout.CHAMPION_KEY) else None


def champion(lake: Lake, settings=None) -> dict | None:
    """The champion: ``models:/reviewflow-sentiment@champion``, else champion.json; None before the first.

    When the alias was moved in MLflow itself (its UI or API), the alias wins and the entry is
    read from that version's registration. MLflow unreachable: champion.json, with a warning.
    """
    record = champion_record(lake)
    try:
        store = _store(lake, settings, record, create=False)
        alias = tracking.champion_version(store) if store is not None else None
    except Exception as exc:  # noqa: BLE001 - any store failure: scoring keeps the lake's record
        log.warning("MLflow registry not readable (%s: %s): champion from %s", type(exc).__name__, exc,
                    lake.uri(layout.CHAMPION_KEY))  # fmt: skip
        return record
    if alias is None or not alias.get("model_name") or not alias.get("version"):
        return record
    if record and (record["model_name"], str(record["version"])) == (alias["model_name"], alias["version"]):
        return record
    log.warning("the MLflow alias %s@%s points at %s %s, champion.json at %s: following the alias",
                tracking.REGISTERED_MODEL, tracking.ALIAS, alias["model_name"], alias["version"],
                (record or {}).get("version"))  # fmt: skip
    entry = get_version(lake, alias["model_name"], alias["version"])
    return {**_alias_record(entry, None, record), "promoted_by": "the MLflow alias (set outside reviewflow)"}


def _alias_record(entry: dict, decision: dict | None, previous: dict | None) -> dict:
    return {
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
        "previous": {k: previous.get(k) for k in ("model_name", "version", "promoted_at")} if previous else None,
    }


def promote(
    lake: Lake,
    entry: dict,
    decision: dict | None = None,
    run_id: str | None = None,
    settings=None,
    by: str | None = None,
    reason: str | None = None,
) -> dict:
    """Point the champion alias at a registered version: in MLflow, then champion.json + its history.

    ``by``/``reason``: who and why (a DAG run: its id and the gate's first reason; by hand: the CLI's).
    """
    previous = champion_record(lake)
    alias = _alias_record(entry, decision, previous)
    by = by or (f"sentiment_training run {run_id}" if run_id else getpass.getuser())
    # a DAG run's reason: the gate's verdict on performance (its last reason); the rest is in decisions/
    reason = reason or (f"gate passed: {decision['reasons'][-1]}" if (decision or {}).get("reasons") else "promoted")
    store = _store(lake, settings, entry)
    number = tracking.set_champion(store, entry, by, reason)
    alias.update({
        "promoted_by_run": run_id, "promoted_by": by, "reason": reason,
        "mlflow": {"tracking_uri": store.recorded_uri, "registered_model": tracking.REGISTERED_MODEL,
                   "alias": tracking.ALIAS, "registry_version": number},
    })  # fmt: skip
    write_json(lake, layout.CHAMPION_KEY, alias)
    # microseconds in the name: a rollback and a re-promotion within one second are two entries
    stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace(":", "")
    write_json(lake, f"{layout.CHAMPION_HISTORY}/{stamp}-{entry['model_name']}-{entry['version']}.json", alias)
    log.info("champion is now %s %s (by %s: %s)", alias["model_name"], alias["version"], by, reason)
    return alias


def record_decision(lake: Lake, run_id: str, decision: dict, settings=None) -> str:
    """Write ``models/decisions/<run>.json`` and tag the challenger's MLflow version; a later stage rewrites both."""
    record = {**decision, "run_id": run_id, "recorded_at": _now()}
    uri = write_json(lake, decision_key(run_id), record)
    challenger = decision.get("challenger") or {}
    key = model_prefix(challenger.get("model_name", "?"), challenger.get("version", "?")) + layout.REGISTRATION
    registration = read_json(lake, key) if challenger and lake.exists(key) else None
    tracking.tag_decision(_store(lake, settings, registration), record, run_id, uri)
    return uri


def decisions(lake: Lake) -> list[dict]:
    """Every recorded decision, oldest first."""
    records = [read_json(lake, k) for k in lake.list(f"{layout.DECISIONS}/") if k.endswith(".json")]
    return sorted(records, key=lambda r: r.get("recorded_at", ""))


# -- the command line: history and rollback --------------------------------------------------


def history(lake: Lake, settings=None) -> list[dict]:
    """Every version with its gate decision: from MLflow, else (no store yet) from the lake."""
    store = _store(lake, settings, champion_record(lake), create=False)
    rows = tracking.history(store) if store is not None else []
    if rows:
        return rows
    by_version = {}
    for record in decisions(lake):
        challenger = record.get("challenger") or {}
        by_version[(challenger.get("model_name"), challenger.get("version"))] = record
    current = champion_record(lake) or {}
    return [
        {"registry_version": None, "model_name": e["model_name"], "version": e["version"], "kind": e["kind"],
         "test_macro_f1": (e.get("test_evaluation") or {}).get("macro_f1"),
         "gate_status": by_version.get((e["model_name"], e["version"]), {}).get("status", ""),
         "gate_reasons": " | ".join(by_version.get((e["model_name"], e["version"]), {}).get("reasons", [])),
         "champion": (current.get("model_name"), current.get("version")) == (e["model_name"], e["version"])}
        for e in versions(lake)
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from reviewflow.config import ConfigError, load_settings
    from reviewflow.storage.lake import get_lake

    parser = argparse.ArgumentParser(prog="python -m reviewflow.training.registry", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("history", help="every registered version with its gate decision (* = champion)")
    show.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    up = sub.add_parser("promote", help="make a registered version the champion (e.g. a rollback)")
    up.add_argument("--model", required=True, choices=KINDS)
    up.add_argument("--version", required=True, help="the lake version, e.g. 20240501-abc123 (see `history`)")
    up.add_argument("--reason", required=True, help="why: kept in champion_history and on the MLflow version")
    up.add_argument("--by", default=None, help="who (default: the OS user)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        lake = get_lake(settings.lake, settings.aws_conn_id)
        if args.command == "history":
            rows = history(lake, settings)
            if args.json:
                for row in rows:
                    print(json.dumps(row, default=str))
            for row in [] if args.json else rows:
                f1 = row.get("test_macro_f1")
                print(f"{'*' if row['champion'] else ' '} {row['registry_version'] or '-':>4} {row['model_name']:<6} "
                      f"{row['version']:<18} test macro-F1 {float(f1) if f1 not in (None, '') else float('nan'):.4f} "
                      f"{row['gate_status'] or '-':<20} {row.get('promoted_by') or ''} {row.get('promotion_reason') or ''}")  # fmt: skip
            if not rows:
                print(f"no registered versions in {lake.uri(layout.MODELS)}", file=sys.stderr)
            return 0
        key = model_prefix(args.model, args.version) + layout.REGISTRATION
        if not lake.exists(key):
            known = [e["version"] for e in versions(lake, args.model)]
            print(f"error: {args.model} {args.version} is not registered in {lake.uri(layout.MODELS)} "
                  f"(registered {args.model} versions: {', '.join(known) or 'none'})", file=sys.stderr)  # fmt: skip
            return 2
        alias = promote(lake, get_version(lake, args.model, args.version), settings=settings, by=args.by,
                        reason=args.reason)  # fmt: skip
        print(f"champion: {alias['model_name']} {alias['version']} (MLflow {tracking.REGISTERED_MODEL} "
              f"version {alias['mlflow']['registry_version']}; was {(alias['previous'] or {}).get('version')})")  # fmt: skip
        return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
