"""The one seam to MLflow: training runs, the model registry and the ``champion`` alias.

Where the store is (``store_for``):
- ``REVIEWFLOW_MLFLOW_TRACKING_URI`` when set: a tracking server (``http://mlflow:5000`` in the
  compose stack), a SageMaker managed tracking server ARN (with the ``sagemaker-mlflow`` plugin), ...
- else, on a local lake, the embedded store: ``sqlite:///<lake>/mlflow/mlflow.db`` with artifacts
  under ``<lake>/mlflow/artifacts`` (no server to start; MLflow's UI reads it:
  ``mlflow ui --backend-store-uri sqlite:///lake/mlflow/mlflow.db`` with full ``mlflow``);
- an S3 lake without the setting is a ``ConfigError``: an sqlite file cannot live in S3.

What is logged: one MLflow run per training DAG run (experiment ``REVIEWFLOW_MLFLOW_EXPERIMENT``),
tagged with the DAG run id, the dataset snapshot and the code version; under it one child run per
evaluated model (params, validation/test metrics, the model report and evaluation as artifacts),
and under the TF-IDF child one run per leaderboard candidate. Every evaluated version is a version
of ONE registered model, ``reviewflow-sentiment``, with a ``kind`` tag (tfidf / bert / ensemble): the gate
compares the kinds with each other on the same test split, so they are versions of one product,
and the champion is then one alias (``models:/reviewflow-sentiment@champion``) with no second
pointer to keep in step. The gate's decision and reasons are version tags.

Writes to the embedded sqlite store are serialised across processes with a file lock beside it
(two evaluate tasks may write at once; sqlite's own busy timeout is 5 s and a first open runs the
schema migrations, which must not run twice at once). A server store handles its own concurrency.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

log = logging.getLogger(__name__)

REGISTERED_MODEL = "reviewflow-sentiment"
ALIAS = "champion"
EMBEDDED = ""  # the recorded tracking URI of the embedded store: "the one inside this lake"
STORE_DIR = "mlflow"
TAG_VALUE_MAX = 5000  # MLflow's limit for model version tag values
LOCK_TIMEOUT_S = 300


class TrackingError(RuntimeError):
    """MLflow could not record or resolve something (the lake JSON still holds the record)."""


@dataclass
class Store:
    """An MLflow tracking + registry store and how to write to it safely."""

    tracking_uri: str
    recorded_uri: str  # what registration.json / champion.json keep: EMBEDDED or the setting
    experiment: str = "reviewflow"
    artifact_location: str | None = None  # embedded: the lake folder; a server picks its own
    lock_path: str | None = None
    _experiment_id: str | None = field(default=None, repr=False)

    @property
    def embedded(self) -> bool:
        return self.recorded_uri == EMBEDDED

    @cached_property
    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @cached_property
    def _lock(self):
        from filelock import FileLock

        Path(self.lock_path).parent.mkdir(parents=True, exist_ok=True)
        return FileLock(self.lock_path, timeout=LOCK_TIMEOUT_S)  # reentrant: one per store

    @contextmanager
    def writing(self) -> Generator[None, None, None]:
        if self.lock_path is None:
            yield
            return
        with self._lock:
            yield

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            from mlflow.exceptions import MlflowException

            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.experiment, artifact_location=self.artifact_location
                    )
                except MlflowException:  # another process created it first
                    self._experiment_id = self.client.get_experiment_by_name(self.experiment).experiment_id
            else:
                self._experiment_id = found.experiment_id
        return self._experiment_id


def _local_root(lake) -> str | None:
    root = getattr(lake, "root", "")
    return None if str(root).startswith("s3://") else str(root)


def store_for(lake, settings=None, recorded_uri: str | None = None, create: bool = True) -> Store | None:
    """The store for this lake: the setting, else the URI a record names, else the embedded one.

    ``create=False`` (read paths): None when the embedded store does not exist yet, so reading a
    champion never creates an empty database. An S3 lake with no URI anywhere: ConfigError when
    writing, None when reading (the lake JSON is the fallback).
    """
    from reviewflow.config import ConfigError

    uri = (getattr(settings, "mlflow_tracking_uri", "") or "").strip() or (recorded_uri or "").strip()
    experiment = getattr(settings, "mlflow_experiment", "") or "reviewflow"
    if uri:
        return Store(uri, uri, experiment)
    root = _local_root(lake)
    if root is None:
        if create:
            raise ConfigError(
                "an s3:// lake needs REVIEWFLOW_MLFLOW_TRACKING_URI: an MLflow tracking server "
                "(http://host:5000) or a SageMaker managed MLflow tracking server ARN (docs/aws-deployment.md)"
            )
        return None
    folder = Path(root, STORE_DIR)
    db = folder / "mlflow.db"
    if not create and not db.exists():
        return None
    return Store(
        f"sqlite:///{db}", EMBEDDED, experiment, artifact_location=str(folder / "artifacts"),
        lock_path=str(folder / ".write.lock"),
    )  # fmt: skip


def _flat(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value if isinstance(value, str) else json.dumps(value)
    return out


def _metrics_of(scores: dict | None, prefix: str) -> dict[str, float]:
    """macro-F1, accuracy and per-class precision/recall/F1 of one split as MLflow metrics."""
    out = {}
    if not scores:
        return out
    for key in ("macro_f1", "accuracy"):
        if scores.get(key) is not None:
            out[f"{prefix}_{key}"] = float(scores[key])
    for name, row in (scores.get("per_class") or {}).items():
        for key in ("f1", "precision", "recall"):
            if row.get(key) is not None:
                out[f"{prefix}_{key}_{name}"] = float(row[key])
    return out


def _log(client, run_id: str, metrics: dict | None = None, params: dict | None = None, tags: dict | None = None):
    import time

    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    existing = client.get_run(run_id).data.params
    # params are write-once in MLflow: a retry logs the same values again; a changed one goes to a tag
    fresh = {k: str(v)[:6000] for k, v in (params or {}).items()}
    changed = {f"param.{k}": v for k, v in fresh.items() if k in existing and existing[k] != v}
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
        params=[Param(k, v) for k, v in fresh.items() if k not in existing],
        tags=[RunTag(k, str(v)[:TAG_VALUE_MAX]) for k, v in {**(tags or {}), **changed}.items()],
    )


def _find_or_create_run(store: Store, match: dict, name: str, parent_id: str | None = None, tags=None) -> str:
    """The run tagged with ``match`` (a retry of a task finds its own run), else a new one."""
    clauses = [f"tags.`{k}` = '{v}'" for k, v in match.items()]
    if parent_id:
        clauses.append(f"tags.`mlflow.parentRunId` = '{parent_id}'")
    found = store.client.search_runs([store.experiment_id()], " and ".join(clauses), max_results=10,
                                     order_by=["attributes.start_time ASC"])  # fmt: skip
    if found:
        return found[0].info.run_id
    all_tags = {**match, **(tags or {}), "mlflow.runName": name}
    if parent_id:
        all_tags["mlflow.parentRunId"] = parent_id
    return store.client.create_run(store.experiment_id(), tags=all_tags, run_name=name).info.run_id


def training_run_id(store: Store, dag_run_id: str, tags: dict | None = None) -> str:
    """The MLflow run of one training DAG run (created by whichever evaluate task comes first)."""
    return _find_or_create_run(store, {"reviewflow.dag_run_id": dag_run_id, "reviewflow.level": "training_run"},
                               f"sentiment_training {dag_run_id}", tags=tags)  # fmt: skip


def snapshot_tags(snapshot: dict | None, dataset_uri: str | None, code: dict) -> dict:
    snapshot = snapshot or {}
    tags = {
        "dataset.uri": dataset_uri or "",
        "dataset.dt": snapshot.get("dt", ""),
        "dataset.rows": snapshot.get("rows", ""),
        "dataset.sha256": snapshot.get("sha256", ""),
        "dataset.splits": json.dumps(snapshot.get("splits") or {}, sort_keys=True),
        "dataset.label_sources": json.dumps(snapshot.get("label_sources") or {}, sort_keys=True),
        "code.package": code.get("package", ""),
        "code.git_describe": code.get("git_describe", ""),
    }
    if code.get("git_commit"):
        tags["mlflow.source.git.commit"] = code["git_commit"]
    return tags


def log_model_run(
    store: Store,
    lake,
    *,
    dag_run_id: str,
    dt: str,
    model_name: str,
    version: str,
    kind: str,
    metrics: dict,
    params: dict,
    evaluation: dict,
    snapshot: dict | None,
    dataset_uri: str | None,
    code: dict,
    artifacts: list[tuple[str, str]],
    leaderboard: list[dict] | None = None,
) -> dict:
    """Log one evaluated model under its DAG run's MLflow run; return the run ids.

    ``artifacts``: (artifact folder, lake key) pairs (the report HTML, evaluation.json, ...). Idempotent:
    a retry finds the same runs by their tags and logs into them again.
    """
    from mlflow.entities import RunStatus

    common = {**snapshot_tags(snapshot, dataset_uri, code), "reviewflow.dt": dt, "reviewflow.lake_version": version}
    with store.writing():
        parent = training_run_id(store, dag_run_id, tags=common)
        _log(store.client, parent, tags=common)
        child = _find_or_create_run(
            store, {"reviewflow.dag_run_id": dag_run_id, "reviewflow.model": model_name}, model_name, parent,
            tags={"reviewflow.level": "model", "reviewflow.kind": kind},
        )  # fmt: skip
        values = {**_metrics_of(metrics.get("validation"), "val"), **_metrics_of(evaluation, "test")}
        for key in ("train_seconds", "train_rows"):
            if isinstance(metrics.get(key), int | float):
                values[key] = metrics[key]
        _log(store.client, child, values, _flat("", params, {}), {**common, "reviewflow.kind": kind})
        log_artifacts(store, lake, child, artifacts)
        candidate_ids = []
        for row in leaderboard or []:
            rank = int(row.get("rank", len(candidate_ids) + 1))
            spec = {k: v for k, v in row.items() if not isinstance(v, int | float) or isinstance(v, bool)}
            spec.update({k: row[k] for k in ("C", "n_features") if k in row})
            run = _find_or_create_run(
                store, {"reviewflow.dag_run_id": dag_run_id, "reviewflow.candidate": f"{model_name}-{rank}"},
                f"{model_name} candidate {rank}", child, tags={"reviewflow.level": "candidate"},
            )  # fmt: skip
            scores = {k: row[k] for k in ("val_macro_f1", "val_accuracy", "fit_seconds", "scoring_reviews_per_s")
                      if isinstance(row.get(k), int | float)}  # fmt: skip
            _log(store.client, run, {**scores, "rank": rank}, _flat("", spec, {}), {"chosen": bool(row.get("chosen"))})
            store.client.set_terminated(run, RunStatus.to_string(RunStatus.FINISHED))
            candidate_ids.append(run)
        store.client.set_terminated(child, RunStatus.to_string(RunStatus.FINISHED))
    return {"run_id": parent, "model_run_id": child, "candidate_run_ids": candidate_ids}


def log_artifacts(store: Store, lake, run_id: str, artifacts: list[tuple[str, str]]) -> None:
    """Copy lake files (local or S3) into the run's artifacts, under their lake file names."""
    for folder, key in artifacts:
        if lake.exists(key):
            with tempfile.TemporaryDirectory(prefix="reviewflow-mlflow-") as tmp:
                path = Path(tmp, Path(key).name)
                path.write_bytes(lake.read_bytes(key))
                with store.writing():
                    store.client.log_artifact(run_id, str(path), folder)


def _version_source(store: Store, model_uri: str, run_id: str | None) -> str:
    """Where the version's files are: the lake URI; a server refuses a local path outside its artifacts."""
    local = not model_uri.startswith(("s3://", "gs://", "wasbs://", "abfss://", "hdfs://"))
    if local and not store.embedded and run_id:
        return store.client.get_run(run_id).info.artifact_uri.rstrip("/") + "/model"
    return model_uri


def find_version(store: Store, model_name: str, version: str):
    """The registry's ModelVersion of a lake version (kind + version), or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = store.client.search_model_versions(
            f"name = '{REGISTERED_MODEL}' and tags.`reviewflow.model` = '{model_name}' "
            f"and tags.`reviewflow.version` = '{version}'"
        )
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")):
            return None
        raise
    return max(found, key=lambda mv: int(mv.version)) if found else None


def register_version(store: Store, entry: dict, run_id: str | None = None) -> str:
    """Register a lake registry entry as a version of ``reviewflow-sentiment``; return its number.

    Idempotent: the same model name and lake version give the same registry version (its tags refreshed).
    """
    from mlflow.exceptions import MlflowException

    evaluation = entry.get("test_evaluation") or {}
    tags = {
        "reviewflow.model": entry["model_name"],
        "reviewflow.version": entry["version"],
        "kind": entry["kind"],
        "model_uri": entry["model_uri"],
        "dag_run_id": entry.get("run_id") or "",
        "dt": entry.get("dt") or "",
        "test_macro_f1": evaluation.get("macro_f1", ""),
        "validation_macro_f1": (entry.get("metrics") or {}).get("validation", {}).get("macro_f1", ""),
        "report_uri": entry.get("report_uri") or "",
    }
    tags = {k: str(v)[:TAG_VALUE_MAX] for k, v in tags.items()}
    with store.writing():
        try:
            store.client.create_registered_model(
                REGISTERED_MODEL,
                description="reviewflow review sentiment (negative/neutral/positive); tag kind = tfidf|bert|ensemble",
            )
        except MlflowException:
            pass  # it exists (RESOURCE_ALREADY_EXISTS)
        existing = find_version(store, entry["model_name"], entry["version"])
        if existing is None:
            mv = store.client.create_model_version(
                REGISTERED_MODEL, _version_source(store, entry["model_uri"], run_id), run_id=run_id, tags=tags,
                description=f"{entry['model_name']} {entry['version']}",
            )  # fmt: skip
            number = str(mv.version)
        else:
            number = str(existing.version)
            for k, v in tags.items():
                store.client.set_model_version_tag(REGISTERED_MODEL, number, k, v)
    log.info("MLflow: %s %s is %s version %s", entry["model_name"], entry["version"], REGISTERED_MODEL, number)
    return number


def tag_decision(store: Store, decision: dict, dag_run_id: str, decision_uri: str | None = None) -> None:
    """The gate's decision and reasons as tags on the challenger's version (and the DAG run's MLflow run)."""
    challenger = decision.get("challenger") or {}
    reasons = " | ".join(decision.get("reasons") or [])
    with store.writing():
        mv = find_version(store, challenger.get("model_name", ""), challenger.get("version", ""))
        tags = {
            "gate.status": decision.get("status", ""),
            "gate.promote": str(bool(decision.get("promote"))).lower(),
            "gate.reasons": reasons,
            "gate.dag_run_id": dag_run_id,
            "gate.decision_uri": decision_uri or "",
        }
        if reasons and len(reasons) > TAG_VALUE_MAX:
            tags["gate.reasons"] = reasons[: TAG_VALUE_MAX - 40] + f" ... (full text: {decision_uri})"
        if mv is not None:
            for k, v in tags.items():
                store.client.set_model_version_tag(REGISTERED_MODEL, mv.version, k, str(v)[:TAG_VALUE_MAX])
        # this run's other versions were not chosen: say so (unless a later run already tagged them)
        for other in store.client.search_model_versions(
            f"name = '{REGISTERED_MODEL}' and tags.`reviewflow.version` = '{challenger.get('version', '')}'"
        ):
            if mv is not None and other.version == mv.version:
                continue
            if other.tags.get("gate.status") in (None, "", "not_chosen"):
                store.client.set_model_version_tag(REGISTERED_MODEL, other.version, "gate.status", "not_chosen")
                store.client.set_model_version_tag(
                    REGISTERED_MODEL, other.version, "gate.reasons",
                    " | ".join(decision.get("candidates") or [])[:TAG_VALUE_MAX],
                )  # fmt: skip
        runs = store.client.search_runs(
            [store.experiment_id()],
            f"tags.`reviewflow.dag_run_id` = '{dag_run_id}' and tags.`reviewflow.level` = 'training_run'",
        )
        for run in runs:
            metrics = {"challenger_test_macro_f1": challenger.get("macro_f1")}
            if decision.get("champion"):
                metrics["champion_test_macro_f1"] = decision["champion"].get("macro_f1")
            _log(store.client, run.info.run_id, {k: v for k, v in metrics.items() if v is not None}, tags=tags)
            store.client.log_dict(run.info.run_id, decision, "decision.json")


def set_champion(store: Store, entry: dict, by: str, reason: str) -> str:
    """Move the ``champion`` alias to the entry's version (registering it first if it is not there)."""
    number = register_version(store, entry)
    with store.writing():
        store.client.set_registered_model_alias(REGISTERED_MODEL, ALIAS, number)
        for k, v in {"promoted_by": by, "promotion_reason": reason}.items():
            store.client.set_model_version_tag(REGISTERED_MODEL, number, k, str(v)[:TAG_VALUE_MAX])
    log.info("MLflow: models:/%s@%s -> version %s (%s %s)", REGISTERED_MODEL, ALIAS, number,
             entry["model_name"], entry["version"])  # fmt: skip
    return number


def champion_version(store: Store) -> dict | None:
    """``models:/reviewflow-sentiment@champion``: {registry_version, model_name, version, kind, model_uri}."""
    from mlflow.exceptions import MlflowException

    try:
        mv = store.client.get_model_version_by_alias(REGISTERED_MODEL, ALIAS)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            return None  # no such model or no alias yet
        raise
    return {
        "registry_version": str(mv.version),
        "model_name": mv.tags.get("reviewflow.model"),
        "version": mv.tags.get("reviewflow.version"),
        "kind": mv.tags.get("kind"),
        "model_uri": mv.tags.get("model_uri") or mv.source,
    }


def history(store: Store) -> list[dict]:
    """Every registered version, oldest first, with its gate decision and whether it is the champion."""
    from mlflow.exceptions import MlflowException

    try:
        found = store.client.search_model_versions(f"name = '{REGISTERED_MODEL}'")
    except MlflowException:
        return []
    current = (champion_version(store) or {}).get("registry_version")  # search results carry no aliases
    return [
        {
            "registry_version": int(mv.version),
            "model_name": mv.tags.get("reviewflow.model"),
            "version": mv.tags.get("reviewflow.version"),
            "kind": mv.tags.get("kind"),
            "test_macro_f1": mv.tags.get("test_macro_f1"),
            "gate_status": mv.tags.get("gate.status", ""),
            "gate_reasons": mv.tags.get("gate.reasons", ""),
            "champion": str(mv.version) == current,
            "promoted_by": mv.tags.get("promoted_by", ""),
            "promotion_reason": mv.tags.get("promotion_reason", ""),
            "run_id": mv.run_id,
        }
        for mv in sorted(found, key=lambda mv: int(mv.version))
    ]
