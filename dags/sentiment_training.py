"""sentiment_training: nightly TF-IDF and BERT retraining, evaluation and champion/challenger gate."""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable, Param, dag, get_current_context, task

from reviewflow.config import BERT_MAX_LENGTH_RANGE, get_settings
from reviewflow.orchestration.assets import CHAMPION_MODEL, MODEL_DECAY
from reviewflow.orchestration.dag_defaults import DEFAULT_ARGS, alerts_teardown, dt_param, fail_fast, start_date
from reviewflow.orchestration.gpu_training import gpu_training_task

SETTINGS = get_settings()  # env only at parse time: cheap, no Airflow Variables, no heavy imports

DOC = """
### Nightly retraining, and retraining on model decay
Runs nightly at 02:00 UTC for the day before, **or** as soon as `sentiment_batch_scoring` emits the
`model_decay` asset (the champion's realised macro-F1 fell below its test score for
`realised_quality_decay_days` scored dates): that run is `asset_triggered`, has no logical date,
and trains for the decayed date its event names (`extra.dt`).

**The run's date D**: the latest date its triggering asset events name (`extra.dt`), else the `dt`
param (trigger form / run conf), else the logical date (nightly runs, `airflow dags test
sentiment_training 2024-01-03`, backfills). Each run gets its own model version (D + a hash of the
run id), so a decay-triggered run and the nightly run of the same D never overwrite each other.
`train_bert`'s default is `REVIEWFLOW_TRAIN_BERT` (a scheduler-started run uses the defaults).

For D (after `reviews_ingest` has curated D):
1. **build_dataset**: curated reviews with `dt <= D` (human labels from `labels/reviews/` win over
   rating-derived sentiment), text = title + ". " + review text, split 80/10/10 by a hash of
   `review_id` (a review always lands in the same split) ->
   `models/datasets/dt=D/dataset.parquet` + `data_snapshot.json`.
2. **train_tfidf** (here, CPU) and **train_bert** (where `REVIEWFLOW_GPU_BACKEND` says: local
   subprocess, Celery `gpu` queue, Kubernetes pod with `nvidia.com/gpu`, or a SageMaker job;
   on CPU within the budget params; on the local backend it starts when train_tfidf is done, as two
   trainings on the same cores only slow each other: `REVIEWFLOW_TRAIN_IN_TURN=0` runs them side by
   side). Both write `models/<model>/<version>/`; **train_ensemble**
   then weighs their probabilities on validation (no BERT run: skipped) into a third candidate.
3. **evaluate_***: test macro-F1, per-class scores, confusion matrix, macro-F1 per facet and
   Clarify post-training bias (DPPL, DI, AD, RD); HTML report in `reports/models/<model>/<version>/`;
   the version is registered.
4. **gate**: the best challenger (validation macro-F1, fair models first) against the champion
   re-evaluated on the same test split: promoted only if it wins by `promote_margin` and passes
   the fairness gate. The decision and its reasons go to `models/decisions/<run>.json`.
5. **approval** (only when `require_approval`): a human approves or rejects in the UI.
6. **promote** moves the `champion` alias (emits the `champion_model` asset); **finalize**
   records the final decision.

An empty latest day (no curated reviews on D) trains on the history up to D. No curated rows at
all, bad settings or unreadable inputs fail the task at once, without retries.

**alerts** (last, a teardown: it also runs when a task failed, and the run keeps its state) writes this
run's findings to `reports/alerts/dt=D/sentiment_training.jsonl` + `alerts.jsonl` and sends one digest
through `REVIEWFLOW_NOTIFIER`; a task that fails for good sends its own task-failure alert.
"""


@dag(
    dag_id="sentiment_training",
    # nightly: the run for D starts at D+1 02:00, once ingest (midnight) has curated D; or at once
    # on a model_decay event (the cron timetable also keeps backfills possible)
    schedule=AssetOrTimeSchedule(timetable=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"), assets=MODEL_DECAY),
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=6),
    tags=["reviewflow", "training"],
    doc_md=DOC,
    params={
        "dt": dt_param("Train for this date YYYY-MM-DD (when no asset event names one; default: the logical date)."),
        "train_bert": Param(SETTINGS.train_bert, type="boolean", description="Train the BERT model too (GPU backend)."),
        "bert_max_train_samples": Param(
            SETTINGS.bert_max_train_samples,
            type="integer",
            minimum=0,
            description="CPU budget: stratified training subsample (0: all).",
        ),
        "bert_max_minutes": Param(
            SETTINGS.bert_max_minutes,
            type="number",
            minimum=0,
            description="CPU budget: training minutes, then stop and keep the best checkpoint.",
        ),
        "bert_epochs": Param(SETTINGS.bert_epochs, type="integer", minimum=1),
        "bert_max_length": Param(
            SETTINGS.bert_max_length,
            type="integer",
            minimum=BERT_MAX_LENGTH_RANGE[0],
            maximum=BERT_MAX_LENGTH_RANGE[1],
            description="Tokens per review.",
        ),
        "promote_margin": Param(
            SETTINGS.promote_margin,
            type="number",
            description="Test macro-F1 a challenger must gain over the champion.",
        ),
        "require_approval": Param(
            SETTINGS.require_approval, type="boolean", description="Ask a human (HITL approval) before promoting."
        ),
    },
)
def sentiment_training():
    @task(multiple_outputs=True)  # its keys are XComArgs too: built["dataset_uri"]
    def build_dataset() -> dict:
        from reviewflow.layout import model_prefix
        from reviewflow.orchestration.run_date import run_date
        from reviewflow.orchestration.runtime import task_env
        from reviewflow.training.dataset import build_dataset as build
        from reviewflow.training.registry import version_for

        context = get_current_context()
        with fail_fast("choosing the run's date"):  # a bad dt param / event date: no retry
            dt = run_date(context)
        with fail_fast(f"building the dataset of {dt}"):  # no curated rows, bad settings: no retry
            env = task_env()
            lake = env.lake
            summary = build(lake, dt, env.sql)
        version = version_for(dt, context["run_id"])
        return {
            "dt": dt,
            "version": version,
            "dataset_uri": summary["dataset_uri"],
            "rows": summary["snapshot"]["rows"],
            "splits": summary["snapshot"]["splits"],
            "outputs": {m: lake.uri(model_prefix(m, version)) for m in ("tfidf", "bert", "ensemble")},
            "bert_output": lake.uri(model_prefix("bert", version)),
        }

    @task(multiple_outputs=False)
    def train_tfidf(built: dict) -> dict:
        from reviewflow.orchestration.gpu_training import run_entry_point

        with fail_fast("training tfidf"):
            return run_entry_point("tfidf", built["dataset_uri"], built["outputs"]["tfidf"])

    @task(multiple_outputs=False)
    def train_ensemble(built: dict) -> dict:
        from reviewflow.orchestration.gpu_training import run_entry_point

        members = ",".join(f"{m}={built['outputs'][m]}" for m in ("tfidf", "bert"))
        with fail_fast("combining the tfidf and bert models"):  # missing member predictions: no retry
            return run_entry_point("ensemble", built["dataset_uri"], built["outputs"]["ensemble"], {"members": members})

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def want_bert() -> bool:
        return bool(get_current_context()["params"]["train_bert"])

    @task(multiple_outputs=False)
    def evaluate(model_name: str, built: dict) -> dict:
        from reviewflow.orchestration.runtime import task_env
        from reviewflow.training.tasks import evaluate_and_register

        with fail_fast(f"evaluating {model_name}"):
            env = task_env()
            run_id = get_current_context()["run_id"]
            return evaluate_and_register(env.lake, model_name, built["version"], built["dt"], run_id, env.settings)

    @task(multiple_outputs=False, trigger_rule="all_done")  # a failed BERT run still lets the TF-IDF challenger through
    def gate(built: dict) -> dict:
        from reviewflow.layout import dataset_key
        from reviewflow.orchestration.runtime import task_env
        from reviewflow.storage.lake import read_parquet
        from reviewflow.training.tasks import run_candidates, run_gate

        context = get_current_context()
        with fail_fast("the champion/challenger gate"):
            env = task_env(promote_margin=float(context["params"]["promote_margin"]))
            candidates = run_candidates(env.lake, built["version"])
            dataset = read_parquet(env.lake, dataset_key(built["dt"]))
            return run_gate(env.lake, candidates, dataset, context["run_id"], env.settings)

    @task.branch
    def route(decision: dict) -> list[str]:
        if not decision["promote"]:
            return ["finalize"]
        needs_approval = bool(get_current_context()["params"]["require_approval"])
        return ["approval" if needs_approval else "no_approval_needed", "finalize"]

    approval = ApprovalOperator(
        task_id="approval",
        subject="Promote {{ ti.xcom_pull(task_ids='gate')['challenger']['model_name'] }} "
        "{{ ti.xcom_pull(task_ids='gate')['challenger']['version'] }} to champion?",
        body="{% for r in ti.xcom_pull(task_ids='gate')['reasons'] %}- {{ r }}\n{% endfor %}\n"
        "Report: {{ ti.xcom_pull(task_ids='gate')['report_uri'] }}",
        defaults="Reject",  # no answer in time: keep the champion
        response_timeout=timedelta(hours=20),
    )
    no_approval_needed = EmptyOperator(task_id="no_approval_needed")

    @task(multiple_outputs=False, trigger_rule="none_failed_min_one_success", outlets=[CHAMPION_MODEL])
    def promote() -> dict:
        from reviewflow.orchestration.runtime import task_env
        from reviewflow.training.registry import get_version
        from reviewflow.training.registry import promote as set_champion

        context = get_current_context()
        decision = context["ti"].xcom_pull(task_ids="gate")
        lake = task_env().lake
        entry = get_version(lake, decision["challenger"]["model_name"], decision["challenger"]["version"])
        alias = set_champion(lake, entry, decision, context["run_id"])
        context["outlet_events"][CHAMPION_MODEL].extra = {k: alias[k] for k in ("model_name", "version", "model_uri")}
        return alias

    @task(multiple_outputs=False, trigger_rule="none_failed")
    def finalize(decision: dict) -> dict:
        from reviewflow.orchestration.runtime import task_env
        from reviewflow.training.tasks import finalize_decision

        context = get_current_context()
        ti = context["ti"]
        promoted, approval = ti.xcom_pull(task_ids="promote"), ti.xcom_pull(task_ids="approval")
        return finalize_decision(task_env().lake, context["run_id"], decision, promoted, approval)

    built = build_dataset()
    # on the local backend both trainings share this machine's cores: BERT waits for TF-IDF, whatever its outcome
    in_turn = SETTINGS.gpu_backend == "local" and SETTINGS.train_in_turn
    train_bert = gpu_training_task(
        "train_bert",
        "bert",
        dataset_uri=built["dataset_uri"],
        output_dir=built["bert_output"],
        settings=SETTINGS,
        operator_kwargs={"execution_timeout": timedelta(hours=4)}
        | ({"trigger_rule": "all_done_min_one_success"} if in_turn else {}),
        model_name_or_path=SETTINGS.bert_model,
        max_train_samples="{{ params.bert_max_train_samples }}",
        max_minutes="{{ params.bert_max_minutes }}",
        epochs="{{ params.bert_epochs }}",
        max_length="{{ params.bert_max_length }}",
    )
    tfidf_eval = evaluate.override(task_id="evaluate_tfidf")("tfidf", built)
    tfidf_trained = train_tfidf(built)
    tfidf_trained >> tfidf_eval
    if in_turn:
        tfidf_trained >> train_bert
    bert_eval = evaluate.override(task_id="evaluate_bert")("bert", built)
    built >> want_bert() >> train_bert >> bert_eval
    # the ensemble needs both members (no BERT run: skipped with it)
    ensembled = train_ensemble(built)
    [tfidf_trained, train_bert] >> ensembled
    ensemble_eval = evaluate.override(task_id="evaluate_ensemble")("ensemble", built)
    ensembled >> ensemble_eval
    decision = gate(built)
    [tfidf_eval, bert_eval, ensemble_eval] >> decision
    routed = route(decision)
    promoted = promote()
    routed >> [approval, no_approval_needed] >> promoted
    final = finalize(decision)
    routed >> final
    promoted >> final
    final >> alerts_teardown()


sentiment_training()
