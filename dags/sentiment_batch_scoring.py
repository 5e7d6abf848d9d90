"""sentiment_batch_scoring: the champion's nightly sentiment, published back to the lake."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable, dag, get_current_context, task

from reviewflow.orchestration.assets import CHAMPION_MODEL, CURATED_REVIEWS, MODEL_DECAY, PREDICTIONS
from reviewflow.orchestration.dag_defaults import (
    DEFAULT_ARGS,
    alerts_teardown,
    dt_param,
    fail_fast,
    gpu_queue,
    start_date,
)

DOC = """
### Batch scoring, on new data
**When**: as soon as `reviews_ingest` updates the `curated_reviews` asset or `sentiment_training`
promotes a new champion (`champion_model` asset), and nightly at 03:00 UTC as a safety net for a
missed event. A backfill (`airflow backfill create`) uses the nightly timetable.

**The run's date D**: the latest date its triggering asset events name (`extra.dt`), else the `dt`
param / run conf, else the logical date, else the day the run was created (a `champion_model`
event names no date: the run fills every gap up to today).

**Which dates a run scores** (`plan`): every curated date up to D without predictions, and
- asset-triggered runs: also the dates their `curated_reviews` events name (curated again, so the
  old predictions no longer match the data); a repeated trigger for a date already scored scores
  nothing and emits no `predictions` event;
- the nightly run: only the gaps (nothing when the asset-triggered runs kept up);
- manual runs (trigger form, `airflow dags test ... D`): D again, on purpose;
- backfill runs: exactly D, rescored.

**A new champion** scores the dates that come after it (and any gap); the predictions already
published stay as they were served: they are what the realised quality, drift and insights of
those dates were computed on, and the new champion trained on those dates' ratings, so scoring
them again would grade it on its own training data. To rescore history with the new champion on
purpose: `airflow backfill create --dag-id sentiment_batch_scoring --from-date A --to-date B
--reprocess-behavior completed`.

For each date:
1. **collect_labels**: human labels dropped in `landing/labels/` (from the review queue) are
   validated with GX and merged into `labels/reviews/labels.parquet` for the next training run.
2. **plan**: the dates above.
3. **score** (one mapped task per date): the `champion` model predicts each partition in record
   batches; `predictions/dt=.../` parquet is rewritten atomically and registered in the catalog
   table `predictions`; low-confidence rows go to `review_queue/dt=.../review_queue.csv`.
4. **drift_reference** computes the champion's reference profile once (cached beside the model);
   **drift** (one per scored date): the date's inputs and predictions against the champion's
   training reference (PSI of predicted labels, text length, department mix; out-of-vocabulary
   share) into `reports/drift/dt=.../`, with predicted vs realised (rating) label shares (concept
   drift); alerts are logged as warnings.
5. **realised_quality** (every scored date, oldest first): the champion's macro-F1 (with a bootstrap 95% CI),
   accuracy, per-class and per-facet F1 on the date, the ratings as truth (human labels win), into
   `reports/realised_quality/dt=.../` and the catalog table `realised_quality`; **model_decay** emits
   the `model_decay` asset when the CI's upper bound stayed below the test macro-F1 minus
   `realised_quality_max_drop` for `realised_quality_decay_days` scored dates (skipped otherwise).

A date with no curated reviews is scored as an empty day: an empty (typed) predictions partition,
an empty review queue and a drift report that says "no reviews". Bad settings and unreadable
inputs fail the task at once, without retries.

Skips (does not fail) while no champion exists: run `sentiment_training` first.

**alerts** (last, a teardown: it also runs when a task failed, and the run keeps its state) writes this
run's findings to `reports/alerts/dt=D/sentiment_batch_scoring.jsonl` + `alerts.jsonl` and sends one digest
through `REVIEWFLOW_NOTIFIER`; a task that fails for good sends its own task-failure alert.
"""


@dag(
    dag_id="sentiment_batch_scoring",
    # new curated data or a new champion, and the nightly run as a safety net (and for backfills)
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"), assets=CURATED_REVIEWS | CHAMPION_MODEL
    ),
    start_date=start_date(),
    catchup=False,  # a missed night is caught up by `plan`, which scores every unscored partition
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=4),
    tags=["reviewflow", "scoring"],
    doc_md=DOC,
    params={
        "dt": dt_param("Score up to this date YYYY-MM-DD (when no asset event names one; default: the logical date)."),
    },
)
def sentiment_batch_scoring():
    @task(multiple_outputs=False)
    def collect_labels() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from reviewflow.orchestration.runtime import task_env
        from reviewflow.scoring.labels import collect_labels as collect
        from reviewflow.scoring.labels import is_transient

        # Bad label files are quarantined inside collect() and never raise. What still raises
        # is a storage hiccup (retried) or a bug / bad setup, which a retry would only repeat.
        try:
            return collect(task_env().lake)
        except Exception as exc:
            if is_transient(exc):
                raise
            raise AirflowFailException(f"collect_labels failed (not retried): {type(exc).__name__}: {exc}") from exc

    @task
    def plan() -> list[str]:
        from airflow.sdk.exceptions import AirflowSkipException

        from reviewflow.orchestration.run_date import event_dates, run_date, scoring_dates
        from reviewflow.orchestration.runtime import task_env
        from reviewflow.training.registry import champion

        with fail_fast("planning the dates to score"):
            env = task_env()
            if champion(env.lake) is None:
                raise AirflowSkipException("no champion model yet: run sentiment_training first")
            context = get_current_context()
            rewritten = event_dates(context, [CURATED_REVIEWS.name])
            return scoring_dates(env.catalog, run_date(context), str(context["dag_run"].run_type), rewritten)

    @task(multiple_outputs=False, map_index_template="{{ dt }}", queue=gpu_queue())
    def score(dt: str) -> dict:
        from reviewflow.orchestration.runtime import task_env
        from reviewflow.scoring.score import score_partition
        from reviewflow.training.predictor import load_predictor
        from reviewflow.training.registry import champion

        get_current_context()["dt"] = dt
        with fail_fast(f"scoring {dt}"):  # an empty day writes empty outputs; an unreadable one fails, no retry
            env = task_env()
            entry = champion(env.lake)
            threshold = env.settings.review_confidence_threshold
            return score_partition(env.lake, env.catalog, dt, load_predictor(entry), entry, threshold)

    @task(multiple_outputs=False, queue=gpu_queue())
    def drift_reference() -> str:
        """The champion's reference profile, computed once (it predicts the validation split)."""
        from reviewflow import layout
        from reviewflow.orchestration.runtime import task_env
        from reviewflow.scoring.drift import champion_reference
        from reviewflow.training.registry import champion

        with fail_fast("the drift reference"):
            lake = task_env().lake
            entry = champion(lake)
            champion_reference(lake, entry)
            return lake.uri(layout.model_prefix(entry["model_name"], entry["version"]) + layout.DRIFT_REFERENCE)

    @task(multiple_outputs=False, map_index_template="{{ dt }}", outlets=[PREDICTIONS])
    def drift(scored: dict) -> dict:
        from reviewflow.orchestration.runtime import task_env
        from reviewflow.scoring.drift import drift_report

        context = get_current_context()
        context["dt"] = scored["dt"]
        with fail_fast(f"the drift report for {scored['dt']}"):  # an empty day: a "no reviews" report
            env = task_env()
            report = drift_report(env.lake, scored["dt"], env.settings)
        context["outlet_events"][PREDICTIONS].extra = {"dt": scored["dt"], "rows": scored["rows"]}
        return {k: report.get(k) for k in ("dt", "model", "alerts", "uri", "skipped", "message")}

    @task(multiple_outputs=False)
    def realised_quality(scored: list[dict]) -> list[dict]:
        """Every scored date, oldest first (one task, not mapped: a date's decay rule reads the dates before it)."""
        from reviewflow.orchestration.runtime import task_env
        from reviewflow.scoring.quality import realised_quality_dates

        with fail_fast("realised quality"):  # an empty day: n 0, no alert
            env = task_env()
            return realised_quality_dates(env.lake, env.catalog, [s["dt"] for s in scored if s], env.settings)

    @task(multiple_outputs=False, outlets=[MODEL_DECAY])
    def model_decay(quality: list[dict]) -> dict:
        """The `model_decay` asset event when a scored date decayed (skipped, so no event, otherwise)."""
        from airflow.sdk.exceptions import AirflowSkipException

        decayed = [q for q in quality if q.get("decay")]
        if not decayed:
            raise AirflowSkipException("no decay on the scored dates")
        extra = {**{k: decayed[-1][k] for k in ("dt", "model", "version", "macro_f1")},
                 "dates": [q["dt"] for q in decayed]}  # fmt: skip
        get_current_context()["outlet_events"][MODEL_DECAY].extra = extra
        return extra

    labels = collect_labels()
    dates = plan()
    labels >> dates
    reference = drift_reference()
    dates >> reference
    scored = score.expand(dt=dates)
    decays = model_decay(realised_quality(scored))
    [reference >> drift.expand(scored=scored), decays] >> alerts_teardown()


sentiment_batch_scoring()
