"""A small model registry in the lake, the champion alias, and the champion/challenger gate.

Layout under the lake root::

    models/<name>/<version>/            model files written by include/models/<kind>.py
        metrics.json params.json ...    (as the entry point wrote them)
        registration.json               the registry entry: kind, uri, metrics, params, data
                                        snapshot, code version, run, evaluation summary
    models/champion.json                the alias: {model_name, version, kind, model_uri, metrics,
                                        promoted_at, ...}; what scoring loads
    models/champion_history/<ts>.json   every promotion, for audit and rollback
    models/decisions/<run>.json         every gate decision with its reasons

Why not MLflow: ``pip install --dry-run mlflow==3.18.0 -c constraints.txt`` does not resolve
(``mlflow-skinny==3.18.0`` is not published on this project's package index), and the newest
that is, mlflow 3.17.2, conflicts with the lock: mlflow-skinny 3.17.2 needs ``cachetools<8``
while constraints.txt pins ``cachetools==8.0.2`` for apache-airflow 3.3.2. A tracking server
and its database would be one more service, too. The lake registry keeps MLflow's ideas
(versions, an alias, lineage) in plain JSON next to the data, on local disk or S3 alike.

Versions are ``YYYYMMDD-<run hash>``: one per model per DAG run (a retry of the same run
rewrites its own version), sortable by date.

Gate: a challenger replaces the champion only when its test macro-F1 beats the champion's,
re-evaluated on the *same* test split, by ``promote_margin`` and it passes the fairness gate
(per-facet macro-F1 drop vs overall ≤ ``fairness_max_f1_drop`` for facet values with enough
support, |DPPL| ≤ ``fairness_max_abs_dppl``). With no champion, a challenger that passes the
fairness gate is promoted. Every decision is recorded with its reasons.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from reviewflow import layout
from reviewflow.config import MODELS_DIR, PROJECT_ROOT, Settings, get_settings
from reviewflow.layout import decision_key, model_prefix
from reviewflow.storage.lake import Lake, get_lake, read_json, write_json

log = logging.getLogger(__name__)

KINDS = ("tfidf", "bert")
FAIRNESS_LABEL_VALUES = (1, -1)


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


# -- registry -------------------------------------------------------------------------------


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


def champion(lake: Lake | None = None) -> dict | None:
    """The champion alias, or None before the first promotion."""
    lake = lake or get_lake()
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


# -- loading a model for scoring ------------------------------------------------------------


def _entry_point(kind: str):
    """include/models/<kind>.py as a module (loaded by path: it is not a package)."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    name = f"reviewflow_model_{kind}"
    import sys

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, MODELS_DIR / f"{kind}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def local_model_dir(model_uri: str) -> str:
    """A local folder holding the model: the uri itself, or an S3 prefix synced to a cache."""
    if not model_uri.startswith("s3://"):
        return model_uri
    from reviewflow.storage.lake import S3Lake

    bucket, _, prefix = model_uri[len("s3://") :].partition("/")
    prefix = prefix.rstrip("/") + "/"
    source = S3Lake(f"s3://{bucket}")
    cache = Path(tempfile.gettempdir(), "reviewflow-models", bucket, prefix)
    for key in source.list(prefix):
        target = cache / key[len(prefix) :]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes(key))
    return str(cache)


def load_predictor(entry: dict) -> Callable[[list[str]], np.ndarray]:
    """A callable texts -> (n, 3) probabilities (negative, neutral, positive) for a registry entry."""
    module = _entry_point(entry["kind"])
    model_dir = local_model_dir(entry["model_uri"])

    def predict(texts: list[str]) -> np.ndarray:
        return module.predict_proba(model_dir, list(texts))

    predict.model = f"{entry['model_name']}:{entry['version']}"  # type: ignore[attr-defined]
    return predict


# -- the gate -------------------------------------------------------------------------------


def fairness_violations(evaluation: dict, settings: Settings, min_support: int | None = None) -> list[str]:
    """Why an evaluation fails the fairness gate (empty: it passes).

    Facet values with fewer test rows than ``settings.fairness_min_support`` are left out: a
    3-class macro-F1 on a few dozen rows swings by more than the allowed drop by chance alone.
    """
    min_support = settings.fairness_min_support if min_support is None else min_support
    problems = []
    overall = evaluation["macro_f1"]
    for row in evaluation["facets"]:
        if row["n"] < min_support:
            continue
        drop = overall - row["macro_f1"]
        if drop > settings.fairness_max_f1_drop:
            problems.append(
                f"{row['facet']}={row['facet_value']} (n={row['n']}): macro-F1 {row['macro_f1']:.3f} is {drop:.3f} "
                f"below overall {overall:.3f} (max drop {settings.fairness_max_f1_drop})"
            )
    for rec in evaluation["bias"]:
        if rec["metric"] != "DPPL" or rec["value"] is None or rec["n_d"] < min_support:
            continue
        if rec["label_value"] in FAIRNESS_LABEL_VALUES and abs(rec["value"]) > settings.fairness_max_abs_dppl:
            label = "positive" if rec["label_value"] == 1 else "negative"
            problems.append(
                f"{rec['facet']}={rec['facet_value']} (n={rec['n_d']}): |DPPL| for {label} = {abs(rec['value']):.3f} "
                f"> {settings.fairness_max_abs_dppl}"
            )
    return problems


def gate(
    challenger: dict,
    challenger_eval: dict,
    champion_entry: dict | None,
    champion_eval: dict | None,
    settings: Settings,
    min_support: int | None = None,
) -> dict:
    """Decide whether ``challenger`` replaces the champion; both evaluated on the same test split."""
    reasons, checks = [], []
    min_support = settings.fairness_min_support if min_support is None else min_support
    unfair = fairness_violations(challenger_eval, settings, min_support)
    checks.append({"check": "fairness", "passed": not unfair, "violations": unfair})
    if unfair:
        reasons.append(f"fairness gate failed ({len(unfair)} violation(s)): " + "; ".join(unfair))
    else:
        reasons.append(
            f"fairness gate passed (facet values with ≥{min_support} test rows: macro-F1 drop ≤ "
            f"{settings.fairness_max_f1_drop}, |DPPL| ≤ {settings.fairness_max_abs_dppl})"
        )
    f1 = challenger_eval["macro_f1"]
    # A floor on quality: a model that says "positive" to everyone is "fair" by DPPL, yet useless.
    good_enough = f1 >= settings.min_macro_f1
    checks.append({"check": "quality floor", "passed": good_enough, "macro_f1": f1, "floor": settings.min_macro_f1})
    if not good_enough:
        reasons.append(f"test macro-F1 {f1:.4f} is below the floor {settings.min_macro_f1} (REVIEWFLOW_MIN_MACRO_F1)")
    if champion_entry is None:
        checks.append({"check": "performance", "passed": True, "detail": "no champion yet"})
        reasons.append(
            f"no champion yet: {challenger['model_name']} {challenger['version']} (test macro-F1 {f1:.4f}) is the first candidate"
        )
    else:
        champ_f1 = champion_eval["macro_f1"]
        gain = f1 - champ_f1
        beats = gain > settings.promote_margin
        checks.append({"check": "performance", "passed": beats, "challenger_macro_f1": f1, "champion_macro_f1": champ_f1,
                       "gain": gain, "margin": settings.promote_margin})  # fmt: skip
        verb = "beats" if beats else "does not beat"
        reasons.append(
            f"challenger {challenger['model_name']} {challenger['version']} test macro-F1 {f1:.4f} {verb} champion "
            f"{champion_entry['model_name']} {champion_entry['version']} {champ_f1:.4f} (re-evaluated on the same test split) "
            f"by more than the margin {settings.promote_margin} (gain {gain:+.4f})"
        )
    promote_it = all(c["passed"] for c in checks)
    return {
        "promote": promote_it,
        "status": "promote" if promote_it else "refused",
        "challenger": {
            "model_name": challenger["model_name"],
            "version": challenger["version"],
            "kind": challenger["kind"],
            "macro_f1": f1,
            "accuracy": challenger_eval["accuracy"],
        },
        "champion": None
        if champion_entry is None
        else {
            "model_name": champion_entry["model_name"],
            "version": champion_entry["version"],
            "macro_f1": champion_eval["macro_f1"],
            "accuracy": champion_eval["accuracy"],
            "macro_f1_at_promotion": (champion_entry.get("metrics") or {}).get("test_macro_f1"),
        },
        "checks": checks,
        "reasons": reasons,
        "thresholds": {
            "promote_margin": settings.promote_margin,
            "fairness_max_f1_drop": settings.fairness_max_f1_drop,
            "fairness_max_abs_dppl": settings.fairness_max_abs_dppl,
            "fairness_min_support": min_support,
            "min_macro_f1": settings.min_macro_f1,
        },
    }


def choose_challenger(candidates: list[tuple[dict, dict]], settings: Settings) -> tuple[dict, dict, list[str]]:
    """The best of this run's models: fair ones first, then by validation macro-F1 (test decides only at the gate).

    ``candidates``: (registry entry, test evaluation) pairs. Returns (entry, evaluation, reasons).
    """
    if not candidates:
        raise ValueError("no trained and evaluated challenger in this run: see the train_* / evaluate_* tasks")

    def key(pair):
        entry, evaluation = pair
        fair = not fairness_violations(evaluation, settings)
        val = (entry.get("metrics") or {}).get("validation", {}).get("macro_f1", float("-inf"))
        return (fair, val, evaluation["macro_f1"])

    ranked = sorted(candidates, key=key, reverse=True)
    reasons = [
        f"{e['model_name']} {e['version']}: validation macro-F1 {key((e, ev))[1]:.4f}, test macro-F1 {ev['macro_f1']:.4f}, "
        f"fairness {'ok' if key((e, ev))[0] else 'failed'}"
        for e, ev in ranked
    ]
    best = ranked[0]
    reasons.insert(
        0, f"challenger: {best[0]['model_name']} {best[0]['version']} (best validation macro-F1 among fair models)"
    )
    return best[0], best[1], reasons


def run_gate(
    lake: Lake,
    candidates: list[tuple[dict, dict]],
    dataset,
    run_id: str,
    settings: Settings | None = None,
) -> dict:
    """Choose this run's challenger, re-evaluate the champion on the same test split, decide, record.

    Writes the challenger's report again with the champion comparison and the decision, and
    ``models/decisions/<run>.json`` (status ``promote`` or ``refused``; the DAG finalises it).
    """
    from reviewflow.training.evaluate import evaluate_test_predictions, predict_test_split, write_report

    settings = settings or get_settings()
    entry, evaluation, choice = choose_challenger(candidates, settings)
    current = champion(lake)
    champion_eval = None
    if current is not None:
        log.info("re-evaluating champion %s %s on this run's test split", current["model_name"], current["version"])
        predictions = predict_test_split(load_predictor(current), dataset)
        champion_eval = evaluate_test_predictions(predictions, dataset)
        champion_eval.update({"model_name": current["model_name"], "version": current["version"]})
    decision = gate(entry, evaluation, current, champion_eval, settings)
    trained = {e["model_name"] for e, _ in candidates}
    choice += [
        f"{name}: no evaluated model in this run (not trained, skipped or failed)"
        for name in KINDS
        if name not in trained
    ]
    decision["candidates"] = choice
    decision["reasons"] = choice[:1] + decision["reasons"]
    decision["report_uri"] = write_report(
        lake, entry["model_name"], entry["version"], evaluation,
        info={"kind": entry["kind"], "run": run_id, "dataset": entry.get("dataset_uri"),
              "validation macro-F1": entry["metrics"].get("validation", {}).get("macro_f1")},
        champion=champion_eval, decision=decision, dppl_threshold=settings.fairness_max_abs_dppl,
    )  # fmt: skip
    record_decision(lake, run_id, decision)
    return decision


def evaluate_and_register(
    lake: Lake, model_name: str, version: str, dt: str, run_id: str, settings: Settings | None = None
) -> dict:
    """Evaluate a freshly trained model dir on the test split, write its report, register it.

    Reads ``models/<name>/<version>/`` (test predictions, metrics, params, written by the entry
    point) and the run's dataset; writes ``evaluation.json`` beside the model and the HTML
    report under ``reports/models/<name>/<version>/``. Returns a small summary for XCom.
    """
    from reviewflow.storage.lake import read_parquet
    from reviewflow.training.evaluate import evaluate_test_predictions, write_report

    settings = settings or get_settings()
    prefix = model_prefix(model_name, version)
    dataset = read_parquet(lake, layout.dataset_key(dt))
    metrics = read_json(lake, prefix + "metrics.json")
    params = read_json(lake, prefix + "params.json") if lake.exists(prefix + "params.json") else {}
    kind = (
        read_json(lake, prefix + "model_meta.json").get("kind", model_name)
        if lake.exists(prefix + "model_meta.json")
        else model_name
    )
    evaluation = evaluate_test_predictions(read_parquet(lake, prefix + "test_predictions.parquet"), dataset)
    write_json(lake, prefix + "evaluation.json", evaluation)
    info = {"kind": kind, "run": run_id, "dataset": lake.uri(layout.dataset_key(dt)),
            "validation macro-F1": metrics.get("validation", {}).get("macro_f1"),
            "train seconds": metrics.get("train_seconds"), "device": metrics.get("device", "cpu")}  # fmt: skip
    report = write_report(
        lake, model_name, version, evaluation, info=info, dppl_threshold=settings.fairness_max_abs_dppl
    )
    snapshot = read_json(lake, layout.snapshot_key(dt)) if lake.exists(layout.snapshot_key(dt)) else None
    register(
        lake, model_name, version, kind, metrics, params, snapshot, evaluation,
        run_id=run_id, dt=dt, dataset_uri=lake.uri(layout.dataset_key(dt)), report_uri=report,
    )  # fmt: skip
    return {"model_name": model_name, "version": version, "kind": kind, "test_macro_f1": evaluation["macro_f1"],
            "test_accuracy": evaluation["accuracy"], "report_uri": report}  # fmt: skip


def run_candidates(lake: Lake, version: str, model_names=KINDS) -> list[tuple[dict, dict]]:
    """This run's registered models with their test evaluations (a model that was not trained is absent)."""
    out = []
    for name in model_names:
        prefix = model_prefix(name, version)
        if lake.exists(prefix + layout.REGISTRATION) and lake.exists(prefix + "evaluation.json"):
            out.append((read_json(lake, prefix + layout.REGISTRATION), read_json(lake, prefix + "evaluation.json")))
    return out


def finalize_decision(lake: Lake, run_id: str, decision: dict, promoted: dict | None, approval: dict | None) -> dict:
    """The run's final word: promoted, refused by the gate, or rejected by the reviewer."""
    final = dict(decision)
    reasons = list(decision.get("reasons", []))
    if approval is not None:
        chosen = (approval.get("chosen_options") or [None])[0]
        final["approval"] = {
            "chosen": chosen,
            "by": approval.get("responded_by_user"),
            "at": str(approval.get("responded_at")),
        }
        reasons.append(f"human approval: {chosen} by {approval.get('responded_by_user')}")
    if promoted is not None:
        final["status"] = "promoted"
        final["champion_after"] = {k: promoted[k] for k in ("model_name", "version", "promoted_at")}
    elif decision.get("promote"):
        final["status"] = "rejected_by_reviewer" if approval is not None else "not_promoted"
        if approval is None:
            reasons.append("the gate passed but the promote step did not run")
    else:
        final["status"] = "refused"
    final["reasons"] = reasons
    final["promote"] = promoted is not None
    record_decision(lake, run_id, final)
    return final
