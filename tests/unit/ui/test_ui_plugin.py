"""The plugin as Airflow loads it, the run -> report-date mapping, and the key checks."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from reviewflow.ui import keys
from reviewflow.ui.run_dates import RunFacts, event_date, report_dates

D1, D2 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("facts", "dates"),
    [
        (RunFacts("reviews_ingest", "r", logical_date=D1, conf={"dt": "2024-02-02"}), ["2024-01-01"]),
        (RunFacts("reviews_ingest", "r", logical_date=None, run_after=D2), ["2024-01-02"]),
        (RunFacts("sentiment_training", "r", logical_date=D2), ["2024-01-02"]),
        # bias / insights: the run's own choice, else the triggering events' dates, else conf dt, else the logical date
        (RunFacts("reviews_bias_report", "r", chosen_dates=("2024-01-03", "2024-01-01"), event_dates=("2024-01-03",)),
         ["2024-01-01", "2024-01-03"]),
        (RunFacts("reviews_bias_report", "r", event_dates=("2024-01-04", "2024-01-03", "2024-01-04"), conf={"dt": "2024-02-02"}),
         ["2024-01-03", "2024-01-04"]),
        (RunFacts("review_insights", "r", conf={"dt": "2024-02-02"}, logical_date=D1), ["2024-02-02"]),
        (RunFacts("review_insights", "r", conf={"dt": "2025-02-30"}, logical_date=D1), ["2024-01-01"]),  # not a date
        (RunFacts("reviews_bias_report", "r", run_after=D2), ["2024-01-02"]),
        # scoring: the dates `plan` chose (none: nothing scored), else the logical date (plan skipped)
        (RunFacts("sentiment_batch_scoring", "r", chosen_dates=("2024-01-01", "2024-01-02"), logical_date=D2),
         ["2024-01-01", "2024-01-02"]),
        (RunFacts("sentiment_batch_scoring", "r", chosen_dates=(), logical_date=D2), []),
        (RunFacts("sentiment_batch_scoring", "r", logical_date=D2), ["2024-01-02"]),
        (RunFacts("some_other_dag", "r"), []),
    ],
)  # fmt: skip
def test_report_dates(facts, dates):
    assert report_dates(facts) == dates


def test_event_dates_come_from_partition_key_or_extra():
    assert event_date("2024-01-05", {"dt": "2024-01-06"}) == "2024-01-05"
    assert event_date(None, {"dt": "2024-01-06", "rows": 3}) == "2024-01-06"
    assert event_date("customer-7", {}) is None and event_date(None, None) is None


@pytest.mark.parametrize("key", ["reports/bias/dt=2024-01-01/bias_report.html", "review_queue/dt=2024-01-01/review_queue.csv",
                                 "reports/quality/dt=2024-01-01/f-1/validations/x/__none__/20240101T000000.000Z/a.html"])  # fmt: skip
def test_safe_keys(key):
    assert keys.safe_key(key) == key


@pytest.mark.parametrize("key", ["reports/../curated/x", "reports/bias/%2e%2e/x", "/reports/bias/x", "reports//bias",
                                 "reports\\bias", "C:/reports/bias/x", "s3://b/reports/bias/x", "reports/bias/\x00",
                                 "review_queue/dt=2024-01-01/other.csv", "review_queue/x/review_queue.csv",
                                 "curated/reviews/dt=2024-01-01/part-0.parquet", "models/champion.json", "reports", "",
                                 "reports/bias/./x", "reportsx/bias/y"])  # fmt: skip
def test_refused_keys(key):
    with pytest.raises(keys.RefusedKey):
        keys.safe_key(key)


def test_airflow_loads_the_plugin_with_its_views_and_app(airflow_db):
    """Airflow's own plugin manager finds the plugin; the app is built only when fastapi_apps is read."""
    code = """
import sys
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
ours = [p for p in plugins if p.name == "reviewflow_ui"]
assert len(ours) == 1, [p.name for p in plugins]
assert not [e for e in errors if "reviewflow_ui" in e], errors
assert "airflow.api_fastapi.core_api.security" not in sys.modules, "the app was built at plugin load"
from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse
views = [ExternalViewResponse(**v) for v in ours[0].external_views]
assert {v.destination for v in views} == {"nav", "dag_run"}
assert all(not v.href.startswith(("/", "http")) for v in views)
apps, _ = plugins_manager.get_fastapi_plugins()
entry = [a for a in apps if a["name"] == "reviewflow"][0]
from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
assert entry["url_prefix"] == "/reviewflow" and not any(entry["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
print("ok", [r.path for r in entry["app"].routes])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "/runs/{dag_id}/{run_id}" in out.stdout
