"""The `reviewflow` Airflow Variable overrides settings inside real task runs, and a bad one fails loudly.

Each DAG run is `airflow dags test` in a fresh process with Variable lookups on (conftest turns
them off for everything else), against the session's own Airflow metadata DB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fresh_process import airflow_dags_test

from reviewflow.storage.lake import LocalLake, read_json
from tools import sample_data

DT = "2024-09-02"
WITH_VARIABLES = {"REVIEWFLOW_NO_AIRFLOW_VARIABLES": "0"}


def set_variable(value: str | None) -> None:
    args = ["set", "reviewflow", value] if value is not None else ["delete", "reviewflow"]
    subprocess.run(
        [sys.executable, "-m", "airflow", "variables", *args], check=True, capture_output=True, env=os.environ
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_the_reviewflow_variable_reaches_the_task_and_a_bad_one_fails_it(airflow_db, lake_root):
    sample_data.write_landing(lake_root, days=1, rows_per_day=60, start=DT, seed=4, dirty_share=0.0)
    ingest = airflow_dags_test("reviews_ingest", DT)
    assert ingest.ok, ingest.tail()
    try:
        # Any disparity alerts now; with fail-on-alert set only in the Variable, the task must fail.
        set_variable(json.dumps({"REVIEWFLOW_BIAS_FAIL_ON_ALERT": True, "bias_dpl_threshold": 0.0,
                                 "bias_alert_min_rows": 0}))  # fmt: skip
        strict = airflow_dags_test("reviews_bias_report", DT, env=WITH_VARIABLES)
        assert strict.state == "failed", strict.tail()
        assert "bias alert(s) for " + DT in strict.output
        report = read_json(LocalLake(lake_root), f"reports/bias/dt={DT}/bias_report.json")
        assert report["thresholds"]["dpl"] == 0.0  # the report was computed with the Variable's threshold

        set_variable(json.dumps({"REVIEWFLOW_BIAS_FAIL_ON_ALRT": True}))  # a typo is an error, not a default
        typo = airflow_dags_test("reviews_bias_report", DT, env=WITH_VARIABLES)
        assert typo.state == "failed", typo.tail()
        assert "unknown setting(s) REVIEWFLOW_BIAS_FAIL_ON_ALRT" in typo.output

        set_variable("not json")
        broken = airflow_dags_test("reviews_bias_report", DT, env=WITH_VARIABLES)
        assert broken.state == "failed" and "is not JSON" in broken.output, broken.tail()
    finally:
        set_variable(None)
    plain = airflow_dags_test("reviews_bias_report", DT, env=WITH_VARIABLES)  # no Variable: the environment
    assert plain.ok, plain.tail()
    assert read_json(LocalLake(lake_root), f"reports/bias/dt={DT}/bias_report.json")["thresholds"]["dpl"] == 0.2
