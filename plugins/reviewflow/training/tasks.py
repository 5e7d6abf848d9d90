"""What the sentiment_training tasks do, each a call: evaluate and register, gate, finalize.

Each evaluated model is logged to MLflow (training/tracking.py: a child run of the DAG run's run,
the TF-IDF leaderboard as its children) and registered (MLflow registry + the lake's JSON).
Each function reads and writes the lake through the registry (training/registry.py), evaluates
with training/evaluate.py, renders the model report, and applies the gate policy (training/gate.py).
"""

from __future__ import annotations

import logging

from reviewflow import layout
from reviewflow.config import Settings
from reviewflow.layout import model_prefix
from reviewflow.storage.lake import Lake, read_json, write_json
from reviewflow.training import tracking
from reviewflow.training.gate import choose_challenger, gate
from reviewflow.training.predictor import load_predictor
from reviewflow.training.registry import KINDS, champion, code_version, record_decision, register

log = logging.getLogger(__name__)


def run_gate(
    lake: Lake,
    candidates: list[tuple[dict, dict]],
    dataset,
    run_id: str,
    settings: Settings,
) -> dict:
    """Choose this run's challenger, re-evaluate the champion on the same test split, decide, record.

    Writes the challenger's report again with the champion comparison and the decision, and
    ``models/decisions/<run>.json`` (status ``promote`` or ``refused``; the DAG finalises it).
    """
    from reviewflow.training.evaluate import evaluate_test_predictions, predict_test_split
    from reviewflow.training.report import describe_model, write_report

    entry, evaluation, choice = choose_challenger(candidates, settings)
    current = champion(lake, settings)
    champion_eval = None
    if current is not None:
        log.info("re-evaluating champion %s %s on this run's test split", current["model_name"], current["version"])
        predictions = predict_test_split(load_predictor(current), dataset)
        champion_eval = evaluate_test_predictions(predictions, dataset, settings.fairness_min_support)
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
        info={"kind": entry["kind"], "model": describe_model(entry["metrics"]), "run": run_id,
              "dataset": entry.get("dataset_uri"),
              "validation macro-F1": entry["metrics"].get("validation", {}).get("macro_f1")},
        champion=champion_eval, decision=decision, dppl_threshold=settings.fairness_max_abs_dppl,
    )  # fmt: skip
    record_decision(lake, run_id, decision, settings)
    # the challenger's MLflow run gets the report as it now reads (with the champion and the decision)
    mlflow_run = (entry.get("mlflow") or {}).get("run_id")
    if mlflow_run:
        report_prefix = layout.model_report_prefix(entry["model_name"], entry["version"])
        tracking.log_artifacts(tracking.store_for(lake, settings, entry["mlflow"].get("tracking_uri")), lake, mlflow_run,
                               [("report", report_prefix + "report.html"), ("report", report_prefix + "evaluation.json")])  # fmt: skip
    return decision


def evaluate_and_register(lake: Lake, model_name: str, version: str, dt: str, run_id: str, settings: Settings) -> dict:
    """Evaluate a freshly trained model dir on the test split, write its report, register it.

    Reads ``models/<name>/<version>/`` (test predictions, metrics, params, written by the entry
    point) and the run's dataset; writes ``evaluation.json`` beside the model and the HTML
    report under ``reports/models/<name>/<version>/``. Returns a small summary for XCom.
    """
    from reviewflow.storage.lake import read_parquet
    from reviewflow.training.evaluate import evaluate_test_predictions
    from reviewflow.training.report import describe_model, write_report

    prefix = model_prefix(model_name, version)
    dataset = read_parquet(lake, layout.dataset_key(dt))
    metrics = read_json(lake, prefix + "metrics.json")
    params = read_json(lake, prefix + "params.json") if lake.exists(prefix + "params.json") else {}
    kind = (
        read_json(lake, prefix + "model_meta.json").get("kind", model_name)
        if lake.exists(prefix + "model_meta.json")
        else model_name
    )
    evaluation = evaluate_test_predictions(
        read_parquet(lake, prefix + "test_predictions.parquet"), dataset, settings.fairness_min_support
    )
    write_json(lake, prefix + "evaluation.json", evaluation)
    info = {"kind": kind, "model": describe_model(metrics), "run": run_id, "dataset": lake.uri(layout.dataset_key(dt)),
            "validation macro-F1": metrics.get("validation", {}).get("macro_f1"),
            "train seconds": metrics.get("train_seconds"), "device": metrics.get("device", "cpu")}  # fmt: skip
    report = write_report(
        lake, model_name, version, evaluation, info=info, dppl_threshold=settings.fairness_max_abs_dppl
    )
    snapshot = read_json(lake, layout.snapshot_key(dt)) if lake.exists(layout.snapshot_key(dt)) else None
    leaderboard = read_json(lake, prefix + "leaderboard.json") if lake.exists(prefix + "leaderboard.json") else None
    report_prefix = layout.model_report_prefix(model_name, version)
    runs = tracking.log_model_run(
        tracking.store_for(lake, settings), lake, dag_run_id=run_id, dt=dt, model_name=model_name, version=version,
        kind=kind, metrics=metrics, params=params, evaluation=evaluation, snapshot=snapshot,
        dataset_uri=lake.uri(layout.dataset_key(dt)), code=code_version(), leaderboard=leaderboard,
        artifacts=[("report", report_prefix + "report.html"), ("evaluation", prefix + "evaluation.json")]
        + [("model", prefix + name) for name in ("metrics.json", "params.json", "model_meta.json", "leaderboard.json")],
    )  # fmt: skip
    register(
        lake, model_name, version, kind, metrics, params, snapshot, evaluation,
        run_id=run_id, dt=dt, dataset_uri=lake.uri(layout.dataset_key(dt)), report_uri=report,
        settings=settings, mlflow_run_id=runs["model_run_id"],
    )  # fmt: skip
    return {"model_name": model_name, "version": version, "kind": kind, "test_macro_f1": evaluation["macro_f1"],
            "test_accuracy": evaluation["accuracy"], "report_uri": report, "mlflow_run_id": runs["run_id"]}  # fmt: skip


def run_candidates(lake: Lake, version: str, model_names=KINDS) -> list[tuple[dict, dict]]:
    """This run's registered models with their test evaluations (a model that was not trained is absent)."""
    out = []
    for name in model_names:
        prefix = model_prefix(name, version)
        if lake.exists(prefix + layout.REGISTRATION) and lake.exists(prefix + "evaluation.json"):
            out.append((read_json(lake, prefix + layout.REGISTRATION), read_json(lake, prefix + "evaluation.json")))
    return out


def finalize_decision(
    lake: Lake, run_id: str, decision: dict, promoted: dict | None, approval: dict | None, settings=None
) -> dict:
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
    record_decision(lake, run_id, final, settings)
    return final
