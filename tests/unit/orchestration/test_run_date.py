"""The run's date D and the dates a scoring run covers, for every way a run starts."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.sdk.api.datamodels._generated import AssetReferenceAssetEventDagRun
from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

from reviewflow import layout
from reviewflow.bias.dates import InvalidDateError
from reviewflow.orchestration.assets import CHAMPION_MODEL, CURATED_REVIEWS, MODEL_DECAY
from reviewflow.orchestration.run_date import event_dates, run_date, scoring_dates
from reviewflow.storage.catalog import DuckDBCatalog

NOW = datetime(2024, 5, 9, 7, 30, tzinfo=UTC)


def events(*pairs, partition_key=None) -> TriggeringAssetEventsAccessor:
    """Airflow's own accessor over (asset, extra) events, as a task's context holds it."""
    return TriggeringAssetEventsAccessor.build(
        AssetEventDagRunReferenceResult(
            asset=AssetReferenceAssetEventDagRun(name=asset.name, uri=asset.uri, extra={}),
            extra=extra,
            source_task_id=None,
            source_dag_id=None,
            source_run_id=None,
            source_map_index=None,
            source_aliases=[],
            timestamp=NOW,
            partition_key=partition_key,
        )  # fmt: skip
        for asset, extra in pairs
    )


def asset_run(*pairs, **kw) -> dict:
    """An asset-triggered run's context: no ds, no logical date."""
    run = SimpleNamespace(run_type="asset_triggered", logical_date=None, run_after=NOW, conf={})
    return {"triggering_asset_events": events(*pairs, **kw), "dag_run": run, "params": {"dt": None}}


def test_an_asset_triggered_run_is_for_the_latest_date_its_events_name():
    context = asset_run((MODEL_DECAY, {"dt": "2024-05-04", "model": "tfidf"}), (MODEL_DECAY, {"dt": "2024-05-02"}))
    assert "ds" not in context and run_date(context) == "2024-05-04"
    assert event_dates(context) == ["2024-05-02", "2024-05-04"]


def test_a_partition_key_names_the_date_too():
    assert run_date(asset_run((CURATED_REVIEWS, {}), partition_key="2024-05-06")) == "2024-05-06"


def test_only_the_events_of_the_named_assets():
    context = asset_run((CURATED_REVIEWS, {"dt": "2024-05-03"}), (CHAMPION_MODEL, {"dt": "2024-05-05"}))
    assert event_dates(context, [CURATED_REVIEWS.name]) == ["2024-05-03"]


def test_an_event_without_a_date_falls_back_to_the_day_the_run_was_created():
    assert run_date(asset_run((CHAMPION_MODEL, {"model_name": "tfidf", "version": "v2"}))) == "2024-05-09"


def test_the_dt_param_then_the_logical_date():
    manual = SimpleNamespace(run_type="manual", logical_date=NOW, run_after=NOW, conf={"dt": "2024-04-30"})
    assert run_date({"params": {"dt": "2024-04-30"}, "ds": "2024-05-09", "dag_run": manual}) == "2024-04-30"
    assert run_date({"params": {}, "ds": "2024-05-08", "dag_run": manual}) == "2024-04-30"  # conf without the param
    scheduled = SimpleNamespace(run_type="scheduled", logical_date=NOW, run_after=NOW, conf={})
    assert run_date({"params": {"dt": None}, "ds": "2024-05-08", "dag_run": scheduled}) == "2024-05-08"


@pytest.mark.parametrize(
    "context",
    [
        {"params": {"dt": "2024-02-30"}},
        asset_run((MODEL_DECAY, {"dt": "last tuesday"})),
        {"params": {}, "dag_run": SimpleNamespace(logical_date=None, run_after=None, conf={})},
    ],
    ids=["impossible dt param", "bad event date", "no date at all"],
)
def test_a_bad_or_missing_date_is_a_clear_error(context):
    with pytest.raises(InvalidDateError, match="dt|date"):
        run_date(context)


@pytest.fixture
def catalog(lake_root):
    """Curated 05-01..05-04; predictions for 05-01 and 05-02 (catalog metadata only)."""
    catalog = DuckDBCatalog(lake_root)
    catalog.register_table(layout.CURATED_TABLE, f"{lake_root}/{layout.CURATED}", {"review_id": "VARCHAR"}, "parquet")
    catalog.register_table(layout.PREDICTIONS_TABLE, f"{lake_root}/predictions", {"review_id": "VARCHAR"}, "parquet")
    for dt in ("2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"):
        catalog.register_partition(layout.CURATED_TABLE, dt)
    for dt in ("2024-05-01", "2024-05-02"):
        catalog.register_partition(layout.PREDICTIONS_TABLE, dt)
    return catalog


def test_scheduled_and_asset_runs_fill_gaps_only(catalog):
    assert scoring_dates(catalog, "2024-05-04", "asset_triggered") == ["2024-05-03", "2024-05-04"]
    assert scoring_dates(catalog, "2024-05-02", "scheduled") == []  # D already scored: a no-op
    assert scoring_dates(catalog, "2024-05-02", "asset_triggered") == []


def test_a_recurated_date_is_rescored_by_the_run_its_event_started(catalog):
    assert scoring_dates(catalog, "2024-05-02", "asset_triggered", ["2024-05-01"]) == ["2024-05-01"]
    assert scoring_dates(catalog, "2024-05-02", "asset_triggered", ["2024-05-09"]) == []  # not curated: nothing


def test_manual_runs_rescore_d_and_backfills_score_d_alone(catalog):
    assert scoring_dates(catalog, "2024-05-02", "manual") == ["2024-05-02"]
    assert scoring_dates(catalog, "2024-05-04", "manual") == ["2024-05-03", "2024-05-04"]
    assert scoring_dates(catalog, "2024-05-01", "backfill") == ["2024-05-01"]
