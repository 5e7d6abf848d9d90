"""The alert record and the per-date store: parts per source, one merged ranked file, reruns replace."""

from __future__ import annotations

import json

import pytest

from reviewflow.alerts.record import Alert, from_json_lines, ranked, to_json_lines
from reviewflow.alerts.store import merged_key, part_key, read_alerts, write_alerts
from reviewflow.storage.lake import LocalLake

DT = "2024-01-07"


def alert(title, severity="warning", kind="bias", rank=0.0, dt=DT) -> Alert:
    return Alert(kind, severity, dt, title, detail="d", uri="/lake/x", rank=rank, rule="r")


def merged(lake) -> list[Alert]:
    return from_json_lines(lake.read_bytes(merged_key(DT)))


def test_record_round_trip_and_validation():
    a = Alert("product", "critical", DT, "Dresses: 48% negative", rule="negative share 48% vs 12%, q=0.003 < 0.05",
              uri="s3://b/reports/insights/dt=2024-01-07/insights.html", rank=3.2)  # fmt: skip
    assert Alert.from_dict(a.to_dict()) == a
    assert from_json_lines(to_json_lines([a, a])) == [a, a]
    assert Alert.from_dict({**a.to_dict(), "added_later": 1}) == a  # newer writers' keys are ignored
    assert set(json.loads(to_json_lines([a]).decode())) >= {"kind", "severity", "dt", "title", "detail", "uri"}
    with pytest.raises(ValueError, match="kind"):
        Alert("weather", "warning", DT, "t")
    with pytest.raises(ValueError, match="severity"):
        Alert("bias", "loud", DT, "t")


def test_ranking_is_severity_then_rank():
    alerts = [alert("w-small", rank=1), alert("info", "info", rank=99), alert("crit", "critical"),
              alert("w-big", rank=5)]  # fmt: skip
    assert [a.title for a in ranked(alerts)] == ["crit", "w-big", "w-small", "info"]


def test_two_sources_merge_a_rerun_replaces_and_an_empty_list_clears(tmp_path):
    lake = LocalLake(str(tmp_path))
    uri = write_alerts(lake, DT, "reviews_bias_report", [alert("b1", rank=1), alert("b2", rank=2)])
    assert uri == lake.uri(merged_key(DT)) and lake.exists(part_key(DT, "reviews_bias_report"))
    write_alerts(lake, DT, "review_insights", [alert("p1", "critical", kind="product")])
    assert [a.title for a in merged(lake)] == ["p1", "b2", "b1"]  # merged and ranked
    assert {a.source for a in merged(lake)} == {"reviews_bias_report", "review_insights"}

    write_alerts(lake, DT, "reviews_bias_report", [alert("b3")])  # rerun: replaces its own part only
    assert [a.title for a in merged(lake)] == ["p1", "b3"]
    write_alerts(lake, DT, "reviews_bias_report", [])  # a rerun that finds nothing clears its alerts
    assert [a.title for a in merged(lake)] == ["p1"]
    assert lake.read_bytes(part_key(DT, "reviews_bias_report")) == b""
    assert [a.title for a in read_alerts(lake, DT)] == ["p1"]
    write_alerts(lake, DT, "review_insights", [alert("p1", "critical", kind="product")])  # same again: same file
    assert [a.title for a in merged(lake)] == ["p1"]
    # parts merge in rank order, whatever their names' order
    write_alerts(lake, DT, "zz_last_source", [alert("z-crit", "critical", rank=9), alert("z-info", "info", rank=9)])
    assert [a.title for a in merged(lake)] == ["z-crit", "p1", "z-info"]


def test_alerts_of_another_date_and_bad_sources_are_refused(tmp_path):
    lake = LocalLake(str(tmp_path))
    with pytest.raises(ValueError, match="2024-01-08"):
        write_alerts(lake, DT, "reviews_ingest", [alert("x", dt="2024-01-08")])
    with pytest.raises(ValueError, match="source"):
        write_alerts(lake, DT, "alerts", [])  # would overwrite the merged file
    assert part_key(DT, "task_failures_dag/x y") == f"reports/alerts/dt={DT}/task_failures_dag_x_y.jsonl"
