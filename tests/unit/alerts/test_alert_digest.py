"""One digest per run through the real provider notifiers, each against a real local server."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from alert_servers import html_of, http_receiver, smtp_connection, smtp_server

from reviewflow.alerts.digest import DigestError, redact, send_digest
from reviewflow.alerts.record import Alert
from reviewflow.config import Settings

DT = "2024-01-07"
ALERTS = [
    Alert("bias", "warning", DT, "class_name=Dresses: DPL(sentiment=-1) = +0.31", rule="|DPL| 0.31 > 0.2", rank=1.5,
          uri="/lake/reports/bias/dt=2024-01-07/bias_report.html"),
    Alert("gate", "info", DT, "tfidf 20240107 promoted to champion", rule="it beat the champion"),
    Alert("drift", "critical", DT, "drift in predicted distribution: PSI 0.9", rule="PSI 0.9 > 0.2", rank=4.5,
          uri="/lake/reports/drift/dt=2024-01-07/drift_report.html"),
]  # fmt: skip


def settings(**kw) -> Settings:
    return replace(Settings(lake="/tmp/unused"), **kw)


def test_smtp_one_message_with_the_alerts_at_or_above_the_floor(monkeypatch):
    with smtp_server() as (port, inbox):
        monkeypatch.setenv("AIRFLOW_CONN_REVIEWFLOW_SMTP", smtp_connection(port))
        s = settings(notifier="smtp", notifier_conn_id="reviewflow_smtp", notifier_to="ops@example.com, ml@example.com",
                     alert_min_severity="warning")  # fmt: skip
        result = send_digest(s, "reviews_bias_report", DT, ALERTS)
    assert result["sent"] is True and result["listed"] == 2 and result["alerts"] == 3
    assert len(inbox.messages) == 1  # one digest for the run, not one mail per alert
    sender, recipients, message = inbox.messages[0]
    assert sender == "reviewflow@example.com" and recipients == ["ops@example.com", "ml@example.com"]
    assert message["Subject"] == f"reviewflow: 2 alerts for {DT} from reviews_bias_report"
    body = html_of(message)
    assert "drift in predicted distribution" in body and "class_name=Dresses" in body
    assert body.index("drift in predicted") < body.index("class_name=Dresses")  # critical first
    assert "PSI 0.9 &gt; 0.2" in body and "/lake/reports/drift/dt=2024-01-07/drift_report.html" in body
    assert "promoted to champion" not in body  # info is below the floor: alerts.jsonl only
    assert "1 alert(s) below the severity floor" in body


def test_no_digest_when_nothing_reaches_the_floor(monkeypatch, caplog):
    with smtp_server() as (port, inbox):
        monkeypatch.setenv("AIRFLOW_CONN_REVIEWFLOW_SMTP", smtp_connection(port))
        s = settings(notifier="smtp", notifier_conn_id="reviewflow_smtp", notifier_to="ops@example.com")
        with caplog.at_level("INFO"):
            result = send_digest(s, "sentiment_training", DT, [ALERTS[1]])
    assert inbox.messages == [] and result["sent"] is False and "no digest" in result["reason"]
    assert "no digest" in caplog.text


def test_no_notifier_logs_the_digest_only(caplog):
    with caplog.at_level("INFO"):
        result = send_digest(settings(notifier=""), "reviews_bias_report", DT, ALERTS)
    assert result["sent"] is False and result["listed"] == 2
    assert f"reviewflow: 2 alerts for {DT} from reviews_bias_report" in caplog.text
    assert "drift in predicted distribution" in caplog.text


def test_a_broken_notifier_raises_without_leaking_the_password(monkeypatch, caplog):
    port = __import__("alert_servers").free_port()  # nothing listens there
    conn = json.loads(smtp_connection(port))
    conn.update(login="robot", password="s3cret-pa55")
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWFLOW_SMTP", json.dumps(conn))
    s = settings(notifier="smtp", notifier_conn_id="reviewflow_smtp", notifier_to="ops@example.com")
    with caplog.at_level("DEBUG"), pytest.raises(DigestError, match="reviewflow_smtp") as failure:
        send_digest(s, "reviews_ingest", DT, ALERTS)
    assert "s3cret-pa55" not in str(failure.value) and "s3cret-pa55" not in caplog.text


def test_slack_webhook_posts_one_message_to_a_local_receiver(monkeypatch):
    # The webhook hook takes a full URL in the password (or host + token), http:// included.
    with http_receiver() as (port, requests):
        url = f"http://127.0.0.1:{port}/services/T000/B000/XXXX"
        monkeypatch.setenv("AIRFLOW_CONN_REVIEWFLOW_SLACK", json.dumps({"conn_type": "slackwebhook", "password": url}))
        s = settings(notifier="slack_webhook", notifier_conn_id="reviewflow_slack")
        result = send_digest(s, "sentiment_batch_scoring", DT, ALERTS)
    assert result["sent"] is True
    assert len(requests) == 1 and requests[0]["path"] == "/services/T000/B000/XXXX"
    text = json.loads(requests[0]["body"])["text"]
    assert f"reviewflow: 2 alerts for {DT} from sentiment_batch_scoring" in text
    assert "drift in predicted distribution" in text and "class_name=Dresses" in text and "promoted" not in text


def test_apprise_posts_one_message_to_a_json_endpoint(monkeypatch):
    with http_receiver() as (port, requests):
        config = {"path": f"json://127.0.0.1:{port}/digest"}
        monkeypatch.setenv("AIRFLOW_CONN_REVIEWFLOW_APPRISE", json.dumps({"conn_type": "apprise",
                                                                          "extra": {"config": config}}))  # fmt: skip
        s = settings(notifier="apprise", notifier_conn_id="reviewflow_apprise", alert_min_severity="info")
        result = send_digest(s, "sentiment_training", DT, ALERTS)
    assert result["sent"] is True and result["listed"] == 3
    assert len(requests) == 1 and requests[0]["path"] == "/digest"
    payload = json.loads(requests[0]["body"])
    assert payload["title"] == f"reviewflow: 3 alerts for {DT} from sentiment_training"
    assert "promoted to champion" in payload["message"] and "rule: PSI 0.9 > 0.2" in payload["message"]
    assert payload["type"] == "failure"  # the worst alert is critical


def test_redact_hides_credentials_in_urls():
    text = redact("cannot reach smtp://robot:s3cret-pa55@mail.example.com:25 or https://u:p@hooks.example.com/x")
    assert "s3cret-pa55" not in text and ":p@" not in text and "mail.example.com:25" in text


def test_the_failure_callback_never_raises_and_still_records_the_alert(monkeypatch, tmp_path, caplog):
    from types import SimpleNamespace

    from alert_servers import free_port

    from reviewflow.alerts.store import read_alerts
    from reviewflow.orchestration.dag_defaults import on_task_failure
    from reviewflow.storage.lake import LocalLake

    monkeypatch.setenv("REVIEWFLOW_LAKE", str(tmp_path))
    monkeypatch.setenv("REVIEWFLOW_NOTIFIER", "smtp")  # ... to a port where nothing listens
    monkeypatch.setenv("REVIEWFLOW_NOTIFIER_CONN_ID", "reviewflow_smtp")
    monkeypatch.setenv("REVIEWFLOW_NOTIFIER_TO", "ops@example.com")
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWFLOW_SMTP", smtp_connection(free_port()))
    ti = SimpleNamespace(dag_id="reviews_ingest", task_id="curate", map_index=-1, run_id="r1", try_number=2)
    with caplog.at_level("ERROR"):
        on_task_failure({"ti": ti, "ds": DT, "exception": RuntimeError("records in != curated + quarantined")})
    assert "could not record or send the task-failure alert" in caplog.text  # logged and swallowed
    (alert,) = read_alerts(LocalLake(str(tmp_path)), DT)  # written before the send failed
    assert alert.kind == "task_failure" and alert.source == "task_failures_reviews_ingest_curate"
    assert alert.title == "reviews_ingest.curate failed: RuntimeError: records in != curated + quarantined"
