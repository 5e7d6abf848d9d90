"""One digest message per DAG run, through the Airflow notifier the settings name.

    send_digest(settings, source, dt, alerts, context=None) -> dict

The digest lists the run's alerts that reach ``settings.alert_min_severity``, most severe first
(title, the rule that fired, the report's URI); the rest stay in alerts.jsonl only. With nothing
at or above the floor no message goes out (the log says so). ``settings.notifier`` picks the
provider's notifier, ``settings.notifier_conn_id`` its connection (the provider's default
connection when empty), ``settings.notifier_to`` the recipients (smtp) or the channel (slack):

    ""             log only (and alerts.jsonl): nothing is sent
    smtp           SmtpNotifier(to, smtp_conn_id, subject, html_content)   (apache-airflow-providers-smtp;
                   the sender is the connection's extra ``from_email``)
    slack          SlackNotifier(slack_conn_id, channel, text)            (apache-airflow-providers-slack)
    slack_webhook  SlackWebhookNotifier(slack_webhook_conn_id, text)
    apprise        AppriseNotifier(title, body, apprise_conn_id)          (apache-airflow-providers-apprise)

A notifier that fails raises ``DigestError`` (the alerts are already written). Nothing here logs
a connection or its password: only the connection id and the message itself.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable
from typing import Any

from reviewflow.alerts.record import Alert, at_least, ranked
from reviewflow.config import Settings

log = logging.getLogger(__name__)

MAX_LISTED = 30  # a digest lists this many alerts at most; the rest are counted (all are in alerts.jsonl)
_URL_AUTH = re.compile(r"(\w+://)[^\s/@]+@")  # user:password@ in a URL


class DigestError(RuntimeError):
    """The notifier could not send the digest."""


def redact(text: str) -> str:
    """Text safe to log or send: Airflow's secrets masker (passwords of connections in use), URL credentials."""
    try:
        from airflow.sdk._shared.secrets_masker import redact as airflow_redact

        text = str(airflow_redact(text))
    except Exception:  # noqa: BLE001 - the masker is a best effort; the regex below still applies
        pass
    return _URL_AUTH.sub(r"\1***@", text)


def subject(source: str, dt: str, n: int) -> str:
    return f"reviewflow: {n} alert{'' if n == 1 else 's'} for {dt} from {source}"


def digest_alerts(alerts: Iterable[Alert], min_severity: str) -> list[Alert]:
    """The alerts a digest lists: at or above the floor, ranked."""
    return ranked(at_least(alerts, min_severity))


def render_text(alerts: list[Alert], left_out: int = 0) -> str:
    lines = []
    for i, a in enumerate(alerts[:MAX_LISTED], 1):
        lines.append(f"{i}. [{a.severity.upper()}] {a.kind} {a.dt}: {a.title}")
        if a.rule:
            lines.append(f"   rule: {a.rule}")
        if a.detail:
            lines.append(f"   {a.detail}")
        if a.uri:
            lines.append(f"   report: {a.uri}")
    if len(alerts) > MAX_LISTED:
        lines.append(f"... and {len(alerts) - MAX_LISTED} more (see alerts.jsonl)")
    if left_out:
        lines.append(f"({left_out} alert(s) below the severity floor are in alerts.jsonl only)")
    return "\n".join(lines)


def render_html(alerts: list[Alert], left_out: int = 0) -> str:
    e = html.escape
    items = []
    for a in alerts[:MAX_LISTED]:
        parts = [f"<b>[{e(a.severity.upper())}]</b> {e(a.kind)} {e(a.dt)}: {e(a.title)}"]
        if a.rule:
            parts.append(f"rule: {e(a.rule)}")
        if a.detail:
            parts.append(e(a.detail))
        if a.uri:
            parts.append(f"report: <code>{e(a.uri)}</code>")
        items.append("<li>" + "<br>".join(parts) + "</li>")
    out = "<ol>" + "".join(items) + "</ol>"
    if len(alerts) > MAX_LISTED:
        out += f"<p>... and {len(alerts) - MAX_LISTED} more (see alerts.jsonl)</p>"
    if left_out:
        out += f"<p>{left_out} alert(s) below the severity floor are in alerts.jsonl only.</p>"
    return out


def build_notifier(settings: Settings, title: str, text: str, html_body: str, worst: str = "warning"):
    """The provider notifier ``settings.notifier`` names, ready to ``notify(context)``."""
    conn_id = settings.notifier_conn_id or None
    kind = settings.notifier
    if kind == "smtp":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        recipients = [r.strip() for r in settings.notifier_to.split(",") if r.strip()]
        if not recipients:
            raise DigestError("notifier smtp needs recipients: set REVIEWFLOW_NOTIFIER_TO (comma-separated)")
        # the sender is the connection's extra "from_email" (SmtpHook.from_email); without it the notifier says so
        return SmtpNotifier(to=recipients, smtp_conn_id=conn_id, subject=title, html_content=html_body)
    if kind == "slack":
        from airflow.providers.slack.notifications.slack import SlackNotifier

        kwargs = {"slack_conn_id": conn_id} if conn_id else {}
        if settings.notifier_to:
            kwargs["channel"] = settings.notifier_to
        return SlackNotifier(text=f"*{title}*\n{text}", **kwargs)
    if kind == "slack_webhook":
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        kwargs = {"slack_webhook_conn_id": conn_id} if conn_id else {}
        return SlackWebhookNotifier(text=f"*{title}*\n{text}", **kwargs)
    if kind == "apprise":
        from airflow.providers.apprise.notifications.apprise import AppriseNotifier
        from apprise import NotifyType

        kwargs = {"apprise_conn_id": conn_id} if conn_id else {}
        notify_type = {"critical": NotifyType.FAILURE, "warning": NotifyType.WARNING}.get(worst, NotifyType.INFO)
        return AppriseNotifier(title=title, body=text, notify_type=notify_type, **kwargs)
    raise DigestError(f"unknown notifier {kind!r}")


def send_digest(settings: Settings, source: str, dt: str, alerts: Iterable[Alert], context: Any | None = None) -> dict:
    """One message for the run's ``alerts`` (those below ``settings.alert_min_severity`` left out)."""
    alerts = list(alerts)
    listed = digest_alerts(alerts, settings.alert_min_severity)
    title = subject(source, dt, len(listed))
    result = {"sent": False, "notifier": settings.notifier or "log", "alerts": len(alerts), "listed": len(listed),
              "subject": title}  # fmt: skip
    if not listed:
        result["reason"] = f"no alert at or above {settings.alert_min_severity!r} (of {len(alerts)}): no digest"
        log.info("%s for %s: %s", source, dt, result["reason"])
        return result
    left_out = len(alerts) - len(listed)
    text = redact(render_text(listed, left_out))
    log.warning("%s\n%s", title, text)  # the digest, in the task log, whatever the notifier
    if not settings.notifier:
        result["reason"] = "no notifier set (REVIEWFLOW_NOTIFIER): the digest is in the log and alerts.jsonl only"
        log.info(result["reason"])
        return result
    try:
        notifier = build_notifier(settings, title, text, redact(render_html(listed, left_out)), listed[0].severity)
        notifier.notify(context if context is not None else {})
    except Exception as exc:
        where = f"connection {settings.notifier_conn_id!r}" if settings.notifier_conn_id else "its default connection"
        raise DigestError(
            f"the {settings.notifier} digest ({title!r}) was not sent through {where}: "
            f"{type(exc).__name__}: {redact(str(exc))}"
        ) from exc
    log.info("sent the digest through %s (%d alerts)", settings.notifier, len(listed))
    result["sent"] = True
    return result
