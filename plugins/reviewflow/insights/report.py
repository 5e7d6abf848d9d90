"""The insights report page: alerts with their terms and examples, small multiples, market trends."""

from __future__ import annotations

from typing import Any

from reviewflow.insights.trends import MIN_WEEKLY_REVIEWS

MAX_TREND_LINES = 8  # classes drawn in the trend chart (the largest movers first)


def _panel(series: dict, dt: str) -> str:
    """One alerted key: its daily negative share over the window, the baseline share as a line, D marked."""
    from reviewflow.reports.render import figure, png_data_uri

    fig = figure(figsize=(3.6, 2.2))
    ax = fig.add_subplot()
    days = [d for d in series["days"] if d["negative_share"] is not None]
    xs = list(range(len(days)))
    ax.bar(xs, [d["negative_share"] for d in days], color=["#c62828" if d["dt"] == dt else "#90a4ae" for d in days])
    ax.axhline(series["baseline_negative_share"], color="#263238", linestyle="--", linewidth=1, label="baseline")
    ax.set_title(series["label"], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("negative share", fontsize=7)
    ax.set_xticks([xs[0], xs[-1]] if xs else [])
    ax.set_xticklabels([days[0]["dt"][5:], days[-1]["dt"][5:]] if days else [], fontsize=7)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="upper left")
    return png_data_uri(fig)


def _trend_chart(weekly: list[dict], level: str, keys: list[str] | None, title: str) -> str | None:
    from reviewflow.reports.render import figure, png_data_uri

    rows = [
        r
        for r in weekly
        if r["level"] == level and (keys is None or r["key"] in keys) and r["reviews"] >= MIN_WEEKLY_REVIEWS
    ]  # fmt: skip: a week with a handful of reviews (a partial first week) is noise, not a trend
    weeks = sorted({r["week"] for r in rows})
    if len(weeks) < 2:
        return None
    fig = figure(figsize=(7, 3))
    ax = fig.add_subplot()
    for key in sorted({r["key"] for r in rows}):
        points = [(weeks.index(r["week"]), r["negative_share"]) for r in rows if r["key"] == key]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=key)
    ax.set_xticks(range(len(weeks)))
    ax.set_xticklabels(weeks, rotation=45, fontsize=7, ha="right")
    ax.set_ylabel("predicted negative share")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return png_data_uri(fig)


def render_html(report: dict[str, Any]) -> str:
    from reviewflow.reports.render import render

    panels = [(s, _panel(s, report["dt"])) for s in report["series"]]
    weekly = report["trends"]["weekly"]
    moving_classes = [m["key"] for m in report["trends"]["movers"] if m["level"] == "class_name"][:MAX_TREND_LINES]
    charts = [
        c for c in (
            _trend_chart(weekly, "department_name", None, "Weekly predicted negative share by department"),
            _trend_chart(weekly, "class_name", moving_classes or None, "Weekly negative share: the classes that moved most"),
        ) if c
    ]  # fmt: skip
    return render("insights_report.html.j2", r=report, panels=panels, charts=charts)
