"""The UI's pages: what each view shows, read from the lake and rendered with autoescaping templates.

Every function here blocks (lake reads, S3 calls): the app calls them through ``asyncio.to_thread``.
Pages link with relative hrefs only (``root`` is the ``../`` path from the page to the app's root),
so they work under any base URL or reverse-proxy prefix. Review text and every other value from
the lake is autoescaped (jinja2 ``autoescape=True``, ``StrictUndefined``).
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from reviewflow import layout
from reviewflow.ui import assets
from reviewflow.ui.keys import zone_of
from reviewflow.ui.run_dates import RunFacts, report_dates

if TYPE_CHECKING:
    import jinja2

    from reviewflow.storage.lake import Lake

TEMPLATES = Path(__file__).with_name("templates")
MODEL_KINDS = ("tfidf", "bert", "ensemble")  # reviewflow.training.registry.KINDS
REPORTING_DAGS = (
    "reviews_ingest",
    "reviews_bias_report",
    "sentiment_training",
    "sentiment_batch_scoring",
    "review_insights",
)
RECENT_ALERT_DATES = 7
MAX_ALERTS = 50
MAX_HISTORY = 20


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    from reviewflow.reports.render import fmt, pct, thousands

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, pct=pct, thousands=thousands)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def href(root: str, key: str) -> str:
    """The relative link to a served lake key from a page ``root`` levels below the app."""
    return f"{root}files/{quote(key, safe='/=-._~')}"


def key_of(lake: Lake, uri: str | None) -> str | None:
    """A lake URI (local path or s3://) as its key when it is a key the UI serves, else None."""
    if not uri:
        return None
    base = lake.uri("x")[:-1]  # the root with its separator: "/lake/" or "s3://bucket/prefix/"
    if not uri.startswith(base):
        return None
    key = uri[len(base) :]
    return key if zone_of(key) and ".." not in key.split("/") else None


def _json(lake: Lake, key: str) -> dict | None:
    return json.loads(lake.read_bytes(key)) if lake.exists(key) else None


def _dates_under(lake: Lake, zone: str, name: str) -> list[str]:
    """Dates (oldest first) that have ``<zone>/dt=D/<name>``."""
    found = set()
    for key in lake.list(zone + "/"):
        rest = key[len(zone) + 1 :]
        if rest.startswith("dt=") and rest.endswith("/" + name):
            found.add(rest[3:13])
    return sorted(found)


# -- run views -----------------------------------------------------------------------------------


@dataclass
class Page:
    html: str
    status: int = 200


def run_page(lake: Lake, facts: RunFacts) -> Page:
    """The view of one DAG run: its report date(s) and the reports of those dates."""
    root = "../../"
    dates = report_dates(facts)
    context: dict[str, Any] = {"facts": facts, "dates": dates, "root": root, "kind": facts.dag_id, "days": []}
    builders = {
        "reviews_ingest": _ingest_day,
        "reviews_bias_report": _bias_day,
        "sentiment_batch_scoring": _scoring_day,
        "review_insights": _insights_day,
    }
    if facts.dag_id in builders:
        context["days"] = [builders[facts.dag_id](lake, dt, root) for dt in dates]
    elif facts.dag_id == "sentiment_training":
        context.update(_training(lake, facts, dates, root))
    else:
        context["kind"] = "other"
    return Page(render("run.html.j2", **context))


def _ingest_day(lake: Lake, dt: str, root: str) -> dict:
    key = layout.ingest_report_key(dt)
    report = _json(lake, key)
    day: dict[str, Any] = {"dt": dt, "report": report, "key": key, "href": href(root, key)}
    if report is None:
        return day
    by_rule: Counter = Counter()
    files = []
    for f in report.get("files", []):
        by_rule.update({rule: int(n) for rule, n in (f.get("quarantined_by_rule") or {}).items()})
        docs = key_of(lake, f.get("data_docs"))
        files.append({**f, "docs_href": href(root, docs) if docs else None})
    day.update(files=files, by_rule=by_rule.most_common(), drift=report.get("schema_drift") or [],
               skipped=report.get("skipped") or [])  # fmt: skip
    return day


def _bias_day(lake: Lake, dt: str, root: str) -> dict:
    json_key, html_key = layout.bias_report_keys(dt)
    report = _json(lake, json_key) or {}
    return {"dt": dt, "found": lake.exists(html_key), "href": href(root, html_key), "json_href": href(root, json_key),
            "alerts": report.get("alerts") or []}  # fmt: skip


def _insights_day(lake: Lake, dt: str, root: str) -> dict:
    json_key, html_key = layout.insights_report_keys(dt)
    report = _json(lake, json_key) or {}
    return {"dt": dt, "found": lake.exists(html_key), "href": href(root, html_key), "json_href": href(root, json_key),
            "alerts": report.get("alerts") or [], "tested": report.get("tested")}  # fmt: skip


def queue_rows(lake: Lake, key: str) -> int | None:
    """Rows of a review-queue CSV (None when there is none); quoted multi-line texts count once."""
    if not lake.exists(key):
        return None
    text = lake.read_bytes(key).decode("utf-8", errors="replace")
    return max(sum(1 for _ in csv.reader(io.StringIO(text))) - 1, 0)


def _scoring_day(lake: Lake, dt: str, root: str) -> dict:
    json_key, html_key = layout.drift_report_keys(dt)
    drift = _json(lake, json_key)
    queue_key = layout.review_queue_key(dt)
    return {"dt": dt, "drift": drift, "found": drift is not None, "href": href(root, html_key),
            "queue_rows": queue_rows(lake, queue_key), "queue_href": href(root, queue_key)}  # fmt: skip


def _training(lake: Lake, facts: RunFacts, dates: list[str], root: str) -> dict:
    from reviewflow.training.registry import version_for

    decision_key = layout.decision_key(facts.run_id)
    decision = _json(lake, decision_key)
    versions = {version_for(dt, facts.run_id) for dt in dates}
    if decision and decision.get("challenger"):
        versions.add(decision["challenger"]["version"])
    models = []
    for version in sorted(versions):
        for kind in MODEL_KINDS:
            key = layout.model_report_prefix(kind, version) + "report.html"
            if lake.exists(key):
                models.append({"name": kind, "version": version, "href": href(root, key)})
    return {"decision": decision, "decision_key": decision_key, "models": models}


# -- the overview (nav) page ---------------------------------------------------------------------


def overview_page(lake: Lake, readable: set[str]) -> Page:
    root = ""
    latest = []

    def add(dag_id: str, title: str, zone: str, name: str) -> None:
        if dag_id not in readable:
            return
        dates = _dates_under(lake, zone, name)
        if dates:
            key = layout.dt_prefix(zone, dates[-1]) + name
            latest.append({"title": title, "dt": dates[-1], "href": href(root, key), "count": len(dates)})
        else:
            latest.append({"title": title, "dt": None, "href": None, "count": 0})

    add("reviews_ingest", "Ingest accounting", layout.INGEST_REPORTS, "ingest_report.json")
    add("reviews_bias_report", "Bias report", layout.BIAS_REPORTS, "bias_report.html")
    add("sentiment_batch_scoring", "Drift report", layout.DRIFT_REPORTS, "drift_report.html")
    add("review_insights", "Insights report", layout.INSIGHTS_REPORTS, "insights.html")

    champion, history = None, []
    if "sentiment_training" in readable:
        champion = _json(lake, layout.CHAMPION_KEY)
        if champion:
            report = key_of(lake, champion.get("report_uri"))
            champion = {**champion, "report_href": href(root, report) if report else None}
        keys = sorted(k for k in lake.list(layout.CHAMPION_HISTORY + "/") if k.endswith(".json"))
        for key in reversed(keys[-MAX_HISTORY:]):
            entry = json.loads(lake.read_bytes(key))
            report = key_of(lake, entry.get("report_uri"))
            history.append({**entry, "report_href": href(root, report) if report else None})

    alerts = []
    if readable:
        from reviewflow.alerts.store import read_alerts

        for dt in reversed(_dates_under(lake, layout.ALERTS, "alerts.jsonl")[-RECENT_ALERT_DATES:]):
            for alert in read_alerts(lake, dt):
                if alert.source in readable or alert.source not in REPORTING_DAGS:
                    target = key_of(lake, alert.uri)
                    alerts.append({**alert.to_dict(), "href": href(root, target) if target else None})
        alerts = alerts[:MAX_ALERTS]
    return Page(render("overview.html.j2", root=root, latest=latest, champion=champion, history=history,
                       alerts=alerts, assets_installed=assets.installed() is not None))  # fmt: skip


def error_page(status: int, message: str, root: str = "") -> Page:
    return Page(render("error.html.j2", status=status, message=message, root=root), status)
