"""Findings of each stage as alerts: ingest report, bias report, drift report, gate decision, a failed task."""

from __future__ import annotations

from types import SimpleNamespace

from reviewflow.alerts import sources
from reviewflow.alerts.tasks import drift_alerts, failure_alert, failure_source
from reviewflow.config import Settings

DT = "2024-01-07"
S = Settings(lake="/tmp/unused")


def test_ingest_quarantine_share_and_files_quarantined_whole():
    report = {"dt": DT, "rows_in": 200, "rows_quarantined": 30, "quarantine_uri": "/lake/quarantine/reviews/dt=D/",
              "files": [{"file": "a.csv", "status": "parsed", "rows_in": 150,
                         "quarantined_by_rule": {"rating between 1 and 5": 20, "duplicate review": 5}},
                        {"file": "b.csv", "status": "unreadable", "rows_in": None, "reason": "cannot parse: bad bytes",
                         "quarantined_by_rule": {"cannot parse": 5}}],
              "schema_drift": []}  # fmt: skip
    alerts = sources.from_ingest_report(report, S, uri="/lake/reports/ingest/dt=D/ingest_report.json")
    share = [a for a in alerts if "quarantined (" in a.title]
    assert len(share) == 1 and share[0].severity == "warning" and "15.0% > 5.0%" in share[0].rule
    assert "rating between 1 and 5 (20)" in share[0].detail and share[0].uri.endswith("ingest_report.json")
    whole = [a for a in alerts if "quarantined whole" in a.title]
    assert [a.title for a in whole] == ["file b.csv quarantined whole (unreadable)"] and "bad bytes" in whole[0].rule
    quiet = sources.from_ingest_report({**report, "rows_quarantined": 5, "files": report["files"][:1]}, S)
    assert quiet == []  # 2.5% is under the 5% setting


def test_bias_alerts_keep_the_rule_and_rank():
    report = {"dt": DT, "alerts": [{"scope": "cumulative", "facet": "class_name", "facet_value": "Dresses",
                                    "label_value": -1, "metric": "DPL", "value": -0.3, "threshold": 0.2, "n_a": 900,
                                    "n_d": 100, "rank": 1.5, "rule": "the negative share ... |DPL| 0.300 > 0.2"}]}  # fmt: skip
    (a,) = sources.from_bias_report(report, S, uri="/lake/bias.html")
    assert (a.kind, a.severity, a.rank, a.uri) == ("bias", "warning", 1.5, "/lake/bias.html")
    assert "Dresses" in a.title and "DPL(sentiment=-1) = -0.300" in a.title and a.rule.endswith("> 0.2")


def test_drift_and_gate():
    summary = {"dt": DT, "model": "tfidf:1", "uri": "/lake/drift.html",
               "alerts": [{"check": "predicted distribution", "metric": "PSI", "value": 0.5, "threshold": 0.2}]}  # fmt: skip
    (d,) = drift_alerts([summary, None, {"dt": "2024-01-06", "skipped": "no champion"}])[DT]
    assert d.kind == "drift" and d.uri == "/lake/drift.html" and d.rank == 2.5 and "0.5000 > 0.2" in d.rule
    promoted = {"status": "promoted", "challenger": {"model_name": "bert", "version": "v2", "macro_f1": 0.81},
                "champion": {"macro_f1": 0.79}, "reasons": ["fairness gate passed"], "report_uri": "/lake/m.html"}  # fmt: skip
    (p,) = sources.from_decision(promoted, DT)
    assert p.severity == "info" and "bert v2 promoted" in p.title and "0.7900" in p.title and p.uri == "/lake/m.html"
    refused = {**promoted, "status": "refused", "checks": [{"check": "fairness", "passed": False}],
               "reasons": ["fairness gate failed (1 violation(s)): age_band=65+ ..."]}  # fmt: skip
    (r,) = sources.from_decision(refused, DT)
    assert r.severity == "warning" and r.rule == "failed: fairness" and "age_band=65+" in r.detail


def test_failure_alert_from_a_task_context():
    ti = SimpleNamespace(dag_id="reviews_ingest", task_id="validate", map_index=2, run_id="manual__x", try_number=2,
                         log_url="http://localhost:8080/dags/reviews_ingest/runs/manual__x/tasks/validate/mapped/2")  # fmt: skip
    context = {"ti": ti, "ds": DT, "run_id": "manual__x", "exception": ValueError("bad file a.csv\nTraceback ...")}
    a = failure_alert(context)
    assert (a.kind, a.severity, a.dt) == ("task_failure", "critical", DT)
    assert a.title == "reviews_ingest.validate[2] failed: ValueError: bad file a.csv"
    assert a.uri.endswith("/mapped/2") and "run manual__x" in a.detail and "try 2" in a.detail
    assert failure_source(context) == "task_failures_reviews_ingest_validate_2"


def test_a_file_quarantined_whole_with_an_unknown_row_count_still_alerts():
    """An unreadable file's row count is unknown (None): the alert says so instead of failing the alerts task."""
    from reviewflow.alerts.sources import from_ingest_report
    from reviewflow.config import load_settings

    report = {"dt": "2024-05-10", "rows_in": 10, "rows_quarantined": 10, "files": [
        {"file": "swap.csv", "status": "unreadable", "reason": "not valid UTF-8", "rows_in": None,
         "quarantined_by_rule": {"unreadable": None}},
        {"file": "ok.csv", "status": "parsed", "rows_in": 10, "quarantined_by_rule": {"rating 1..5": 10}},
    ]}  # fmt: skip
    alerts = from_ingest_report(report, load_settings({}))
    assert any("swap.csv" in a.title and "unknown" in a.detail for a in alerts)
    assert any("rating 1..5 (10)" in a.detail for a in alerts)
