"""review_insights: which products have a problem today, what people complain about, market trends."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

from reviewflow.orchestration.assets import PREDICTIONS
from reviewflow.orchestration.dag_defaults import DEFAULT_ARGS, dt_param, fail_fast, start_date

DOC = """
### Product insights
Runs when `sentiment_batch_scoring` updates the **predictions** asset (or by hand for a date:
`airflow dags test review_insights 2024-01-07`, or trigger with `{"dt": "2024-01-07"}`; backfills
run one date each).

For date D (the asset events' `extra.dt`, plus any scored date still without insights; else the
`dt` param; else the logical date), from the predictions joined with the curated reviews
(include/sql/insights_*.sql on DuckDB locally, Athena on AWS):
- per product, class and department: reviews, predicted-negative share and mean rating on D and
  over the trailing baseline (`REVIEWFLOW_INSIGHTS_BASELINE_DAYS`, default 28);
- **product-issue alerts**: a one-sided beta-binomial test of D's negative count against the key's
  own baseline, Benjamini-Hochberg q-values per level (`REVIEWFLOW_INSIGHTS_FDR`), a minimum
  volume (`..._MIN_REVIEWS`, `..._MIN_BASELINE_REVIEWS`: smaller keys are skipped and counted) and
  a minimum rise (`..._MIN_SHARE_INCREASE`);
- for each alert, the complaint terms (weighted log-odds, informative Dirichlet prior) and examples;
- weekly sentiment shares per department and class, with the largest movers.

Outputs (rewritten whole on a rerun): tables `product_sentiment_daily` and `product_alerts`
(partition dt=D), `reports/insights/dt=D/insights.json` + `insights.html`, and the alerts digest.
"""


@dag(
    dag_id="review_insights",
    schedule=[PREDICTIONS],
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=1),
    tags=["reviewflow", "insights"],
    doc_md=DOC,
    params={
        "dt": dt_param("Insights date YYYY-MM-DD (used when no asset event names one)."),
    },
)
def review_insights():
    @task
    def insight_dates() -> list[str]:
        from reviewflow.bias.dates import report_dates
        from reviewflow.insights.tasks import uninsighted_dates
        from reviewflow.orchestration.runtime import task_env

        context = get_current_context()
        with fail_fast("choosing the insights date"):
            dates = report_dates(context)
            if context.get("triggering_asset_events"):
                env = task_env()
                dates = sorted(set(dates) | set(uninsighted_dates(env.catalog, env.lake)))
        return dates

    @task(multiple_outputs=False, map_index_template="{{ insights_dt }}")
    def insights(dt: str) -> dict:
        from reviewflow.insights.tasks import run_insights
        from reviewflow.orchestration.runtime import task_env

        get_current_context()["insights_dt"] = dt
        with fail_fast(f"the insights for {dt}"):
            env = task_env()
            return run_insights(dt, env.settings, env.lake, env.catalog, env.sql)

    @task(multiple_outputs=False)
    def alerts(results: list[dict]) -> dict:
        from reviewflow.insights.tasks import publish_product_alerts
        from reviewflow.orchestration.runtime import task_env

        env = task_env()
        return publish_product_alerts(env.lake, env.settings, list(results), get_current_context())

    alerts(insights.expand(dt=insight_dates())).as_teardown()  # runs, and reports, even when a date failed


review_insights()
