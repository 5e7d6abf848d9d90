"""The bias report for people: one self-contained HTML page (inline PNG charts, escaped text).

    render_html(report) -> str      # report: the dict reviewflow.bias.metrics.build_report returns

Sections: alerts; per scope, the label distribution per facet (stacked bars), a DPL heatmap
(facet value x label value) and CI bars; then the largest disparities first and the undefined
values with their reasons. The page is templates/bias_report.html.j2 of reviewflow.reports,
the charts matplotlib's Figure API (reviewflow.reports.render: no pyplot, no global state).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from reviewflow.bias.metrics import METRICS, SCOPES, no_reviews_message
from reviewflow.contract import FACETS, LABEL_NAMES
from reviewflow.contract import LABELS as LABEL_VALUES
from reviewflow.reports.render import figure, png_data_uri, render

LABEL_COLOURS = {-1: "#c0392b", 0: "#95a5a6", 1: "#27ae60"}
TOP_DISPARITIES = 25
# Below this many rows a facet value's metrics are noisy (flagged in the page). The report's own
# thresholds.dpl_min_rows (the setting bias_alert_min_rows) wins; this is for reports without it.
SMALL_GROUP = 30


def _distribution_chart(dist: dict[str, Any]) -> str:
    sizes = [max(len(dist["facets"][f]), 1) for f in FACETS]
    fig = figure(figsize=(8, 1.2 + 0.26 * sum(sizes) + 0.5 * len(FACETS)))
    axes = fig.subplots(len(FACETS), 1, gridspec_kw={"height_ratios": sizes})
    for ax, facet in zip(axes, FACETS, strict=True):
        rows = dist["facets"][facet][::-1]
        names = [f"{r['facet_value']} (n={r['n']:,})" for r in rows]
        left = [0.0] * len(rows)
        for label in LABEL_VALUES:
            shares = [r["shares"].get(str(label)) or 0.0 for r in rows]
            ax.barh(names, shares, left=left, color=LABEL_COLOURS[label], label=LABEL_NAMES[label])
            left = [a + b for a, b in zip(left, shares, strict=True)]
        ax.set_xlim(0, 1)
        ax.set_title(facet, loc="left", fontsize=10)
        ax.tick_params(labelsize=8)
    axes[0].legend(ncols=3, fontsize=8, loc="lower right", bbox_to_anchor=(1, 1.0), frameon=False)
    axes[-1].set_xlabel("share of reviews")
    fig.tight_layout()
    return png_data_uri(fig)


def _rows(metrics: list[dict[str, Any]], scope: str, metric: str) -> list[dict[str, Any]]:
    return [m for m in metrics if m["scope"] == scope and m["metric"] == metric]


def _facet_separators(ax, facets: list[str]) -> None:
    """A line between the rows of one facet and the next (rows are drawn top to bottom)."""
    for i in range(1, len(facets)):
        if facets[i] != facets[i - 1]:
            ax.axhline(i - 0.5, color="#333", linewidth=1.2)


def _dpl_chart(metrics: list[dict[str, Any]], scope: str, threshold: float) -> str:
    import numpy as np

    recs = _rows(metrics, scope, "DPL")
    keys = list(dict.fromkeys((r["facet"], r["facet_value"]) for r in recs))
    grid = np.full((len(keys), len(LABEL_VALUES)), np.nan)
    index = {k: i for i, k in enumerate(keys)}
    for r in recs:
        if r["value"] is not None:
            grid[index[(r["facet"], r["facet_value"])], LABEL_VALUES.index(r["label_value"])] = r["value"]
    finite = grid[np.isfinite(grid)]
    limit = max(float(np.abs(finite).max()) if finite.size else 0.0, threshold, 1e-9)
    fig = figure(figsize=(6.5, 1.0 + 0.28 * len(keys)))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:+.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(grid[i, j]) > 0.6 * limit else "black")  # fmt: skip
    ax.set_xticks(range(len(LABEL_VALUES)), [f"{LABEL_NAMES[v]} ({v})" for v in LABEL_VALUES], fontsize=8)
    ax.set_yticks(range(len(keys)), [f"{f}: {v}" for f, v in keys], fontsize=8)
    _facet_separators(ax, [f for f, _ in keys])
    fig.colorbar(image, ax=ax, label="DPL")
    fig.tight_layout()
    return png_data_uri(fig)


def _ci_chart(metrics: list[dict[str, Any]], scope: str, threshold: float) -> str:
    recs = [r for r in _rows(metrics, scope, "CI") if r["label_value"] == LABEL_VALUES[0]][::-1]
    fig = figure(figsize=(7, 1.0 + 0.26 * len(recs)))
    ax = fig.subplots()
    values = [r["value"] if r["value"] is not None else 0.0 for r in recs]
    colours = ["#e67e22" if abs(v) > threshold else "#2980b9" for v in values]
    ax.barh([f"{r['facet']}: {r['facet_value']}" for r in recs], values, color=colours)
    for x in (-threshold, threshold):
        ax.axvline(x, color="#e67e22", linestyle="--", linewidth=1)
    ax.axvline(0, color="#333", linewidth=0.8)
    _facet_separators(ax, [r["facet"] for r in recs])
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("CI (dashed: alert threshold)")
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    return png_data_uri(fig)


def _top_disparities(metrics: list[dict[str, Any]], top: int = TOP_DISPARITIES) -> list[dict[str, Any]]:
    rows: dict[tuple, dict[str, Any]] = {}
    for m in metrics:
        key = (m["scope"], m["facet"], m["facet_value"], m["label_value"])
        if key not in rows:
            rows[key] = {name: m[name] for name in ("scope", "facet", "facet_value", "label_value", "n_a", "n_d")}
            rows[key]["by_metric"] = {}
        rows[key]["by_metric"][m["metric"]] = m

    def size(row):
        dpl = row["by_metric"].get("DPL", {}).get("value")
        return -1.0 if dpl is None else abs(dpl)

    return sorted(rows.values(), key=lambda r: (-size(r), r["scope"], r["facet"], str(r["facet_value"])))[:top]


def _cell(record: dict[str, Any] | None, metric: str):
    """One metric's table cell (Markup: the reason and the group are escaped here)."""
    from markupsafe import Markup

    if record is None:
        return Markup('<td class="na">&ndash;</td>')
    if record["value"] is None:
        return Markup('<td class="na" title="{}">n/a</td>').format(record.get("reason", "undefined"))
    if metric == "CDDL" and record.get("group"):
        return Markup('<td title="group: {}">{}</td>').format(record["group"], f"{record['value']:+.3f}")
    return Markup("<td>{}</td>").format(f"{record['value']:+.3f}")


def _fmt_share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _fmt_ratio(row: dict[str, Any]):
    """The imbalance ratio, or 'n/a' with its reason on hover (Markup: the reason is escaped here)."""
    from markupsafe import Markup

    if row.get("imbalance_ratio") is None:
        return Markup('<span class="na" title="{}">n/a</span>').format(row.get("reason", "undefined"))
    return f"{row['imbalance_ratio']:.2f}"


def render_html(report: dict[str, Any], charts: bool = True) -> str:
    """The report as one HTML page; ``charts=False`` leaves the images out (fast, for tests)."""
    metrics = report["metrics"]
    thresholds = report.get("thresholds", {"dpl": 0.2, "ci": 0.9})
    min_rows = thresholds.get("dpl_min_rows")
    scopes = []
    for name in SCOPES:
        info = report["scopes"][name]
        dist = report["label_distribution"][name]
        pics = {"distribution": "", "dpl": "", "ci": ""}
        if charts and info["rows"]:
            pics = {
                "distribution": _distribution_chart(dist),
                "dpl": _dpl_chart(metrics, name, thresholds["dpl"]),
                "ci": _ci_chart(metrics, name, thresholds["ci"]),
            }
        message = info.get("message") or no_reviews_message(name, report["dt"])
        scopes.append({"name": name, "filter": info["filter"], "rows": info["rows"], "message": message,
                       "dist": dist, "charts": pics})  # fmt: skip
    undefined = Counter((m["metric"], m.get("reason", "undefined")) for m in metrics if m["value"] is None)
    return render(
        "bias_report.html.j2",
        r=report,
        thresholds=thresholds,
        min_rows=min_rows or 0,
        scopes=scopes,
        labels=list(LABEL_VALUES),
        names=LABEL_NAMES,
        metrics=list(METRICS),
        top=_top_disparities(metrics),
        undefined=sorted(undefined.items(), key=lambda kv: (METRICS.index(kv[0][0]), kv[0][1])),
        small=SMALL_GROUP if min_rows is None else min_rows,
        cell=_cell,
        fmt_share=_fmt_share,
        fmt_ratio=_fmt_ratio,
    )
