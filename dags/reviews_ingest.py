"""reviews_ingest: crawl, validate and curate the review files that landed for a date."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from reviewflow.orchestration.assets import CURATED_REVIEWS
from reviewflow.orchestration.dag_defaults import DEFAULT_ARGS, alerts_teardown, start_date

DOC = """
### Review ingestion
For the run's date **D** (its logical date):
1. **crawl**: files in `landing/reviews/dt=D/` (CSV, JSON lines, parquet) are copied to `raw/`,
   parsed, their schema inferred and compared with the contract and the catalog (drift is
   logged and reported), and the `raw_reviews` partition is registered.
2. **validate** (one mapped task per file): the Great Expectations suite `reviews_contract`;
   failing rows go to `quarantine/reviews/dt=D/rows/` with the rules they broke, unreadable or
   wrong-schema files to `quarantine/reviews/dt=D/files/` with the reason. Data Docs:
   `reports/quality/dt=D/`.
3. **curate**: valid rows are written to `curated/reviews/dt=D/` and registered; rows in must
   equal rows curated + rows quarantined, or the task fails. Emits the `curated_reviews` asset.

Reruns rewrite exactly D's outputs; backfills (`airflow backfill create`) are safe to repeat.

**alerts** (last, a teardown: it also runs when a task failed, and the run keeps its state) writes this
run's findings to `reports/alerts/dt=D/reviews_ingest.jsonl` + `alerts.jsonl` and sends one digest
through `REVIEWFLOW_NOTIFIER`; a task that fails for good sends its own task-failure alert.
"""


@dag(
    dag_id="reviews_ingest",
    # A data interval per day: the run for D starts once D is over and processes dt=D.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=start_date(),
    catchup=True,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=2),
    tags=["reviewflow", "ingest"],
    doc_md=DOC,
)
def reviews_ingest():
    @task
    def crawl() -> list[dict]:
        from reviewflow.ingest.crawl import crawl_partition
        from reviewflow.orchestration.runtime import task_env

        env = task_env()
        return crawl_partition(env.lake, env.catalog, get_current_context()["ds"])

    @task(multiple_outputs=False, map_index_template="{{ file_name }}")
    def validate(manifest: dict) -> dict:
        from reviewflow.ingest.validate import validate_file
        from reviewflow.orchestration.runtime import task_env

        get_current_context()["file_name"] = manifest["file"]
        return validate_file(task_env().lake, manifest)

    @task(multiple_outputs=False, outlets=[CURATED_REVIEWS])
    def curate(file_reports: list[dict]) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from reviewflow.ingest.curate import AccountingError, curate_partition
        from reviewflow.orchestration.runtime import task_env

        context, env = get_current_context(), task_env()
        try:  # list(): the mapped results arrive as a lazy sequence
            summary = curate_partition(env.lake, env.catalog, context["ds"], list(file_reports), context["run_id"])
        except AccountingError as exc:  # deterministic: a retry would only repeat it
            raise AirflowFailException(str(exc)) from exc
        context["outlet_events"][CURATED_REVIEWS].extra = {"dt": summary["dt"], "rows": summary["rows_curated"]}
        return {
            k: summary[k]
            for k in ("dt", "rows_in", "rows_curated", "rows_quarantined", "rows_duplicate", "curated_uri")
        }

    curate(validate.expand(manifest=crawl())) >> alerts_teardown()


reviews_ingest()
