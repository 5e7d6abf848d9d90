"""reviews_bias_report: class-imbalance and bias reports whenever new curated reviews land."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from reviewflow.orchestration.assets import CURATED_REVIEWS
from reviewflow.orchestration.dag_defaults import DEFAULT_ARGS, alerts_teardown, dt_param, fail_fast, start_date

DOC = """
### Class imbalance and bias report
Runs when `reviews_ingest` updates the **curated_reviews** asset (or by hand for a date:
`airflow dags test reviews_bias_report 2024-01-03`, or trigger with `{"dt": "2024-01-03"}`).

**Report date D**: the partition date each triggering asset event carries (`extra.dt`; several
events make one report per date, and any ingested date still without a report is added), else
the `dt` param, else the run's logical date, else its `run_after` (asset-triggered runs have no
logical date).

For D, one SQL aggregate (`include/sql/bias_counts.sql`, on DuckDB locally, Athena on AWS) counts
reviews per department, class, division, age band and sentiment, for two scopes: **cumulative**
(`dt <= D`) and **partition** (`dt = D`). From those counts the task computes the label
distribution and imbalance ratio, and, per facet value and sentiment, the SageMaker Clarify
pre-training metrics CI, DPL, KL, JS, LP, TVD, KS and CDDL (undefined values are null with a reason).

Outputs: `reports/bias/dt=D/bias_report.json` and `bias_report.html` (charts, largest disparities
first). Alerts (|DPL| > `REVIEWFLOW_BIAS_DPL_THRESHOLD`, |CI| > `REVIEWFLOW_BIAS_CI_THRESHOLD`, only for
facet values with at least `REVIEWFLOW_BIAS_ALERT_MIN_ROWS` rows; ranked, each with its rule) are logged as warnings; with `REVIEWFLOW_BIAS_FAIL_ON_ALERT=1` the task fails after writing the report.
A date with no curated reviews is reported as such ("no reviews on D" for the partition scope).
An impossible date (`2025-02-30`), bad settings or unreadable inputs fail at once, without retries.
Param `cddl_groups` overrides the CDDL strata per facet, e.g. `{"department_name": "division_name"}`.

**alerts** (last, a teardown: it also runs when a task failed, and the run keeps its state) writes this
run's findings to `reports/alerts/dt=D/reviews_bias_report.jsonl` + `alerts.jsonl` and sends one digest
through `REVIEWFLOW_NOTIFIER`; a task that fails for good sends its own task-failure alert.
"""


@dag(
    dag_id="reviews_bias_report",
    schedule=[CURATED_REVIEWS],
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=1),
    tags=["reviewflow", "bias"],
    doc_md=DOC,
    params={
        "dt": dt_param("Report date YYYY-MM-DD (used when no asset event names one)."),
        "cddl_groups": Param(
            {},
            type="object",
            description="CDDL strata overrides, facet -> group column "
            "(department_name, class_name, division_name, age_band).",
        ),
    },
)
def reviews_bias_report():
    @task
    def report_dates() -> list[str]:
        from reviewflow.bias.dates import report_dates as dates_from
        from reviewflow.bias.dates import unreported_dates
        from reviewflow.orchestration.runtime import task_env

        context = get_current_context()
        with fail_fast("choosing the report date"):  # e.g. dt=2025-02-30: fails at once, no retry
            dates = dates_from(context)
            if context.get("triggering_asset_events"):
                dates = sorted(set(dates) | set(unreported_dates(task_env().lake)))
        return dates

    @task(multiple_outputs=False, map_index_template="{{ report_dt }}")
    def bias_report(dt: str) -> dict:
        from reviewflow.bias.tasks import run_bias_report
        from reviewflow.orchestration.runtime import task_env

        context = get_current_context()
        context["report_dt"] = dt
        with fail_fast(f"the bias report for {dt}"):
            env = task_env()
            groups = context["params"].get("cddl_groups") or None
            return run_bias_report(dt, env.settings, env.lake, env.sql, cddl_groups=groups)

    bias_report.expand(dt=report_dates()) >> alerts_teardown()


reviews_bias_report()
