"""The bias report for people: one self-contained HTML page (inline PNG charts, escaped text).

    render_html(report) -> str      # report: the dict reviewflow.bias.metrics.build_report returns

Sections: alerts; per scope, the label distribution per facet (stacked bars), a DPL heatmap
(facet value x label value) and CI bars; then the largest disparities first and the undefined
values with their reasons. Charts use matplotlib's object API (no pyplot, no global state).
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from typing import Any

from reviewflow.bias.metrics import METRICS, SCOPES, no_reviews_message
from reviewflow.contract import FACETS, LABEL_NAMES
from reviewflow.contract import LABELS as LABEL_VALUES

LABEL_COLOURS = {-1: "#c0392b", 0: "#95a5a6", 1: "#27ae60"}
TOP_DISPARITIES = 25
SMALL_GROUP = 30  # below this many rows a facet value's shares are noisy; flagged in the page

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Bias report {{ r.dt }}</title>
<style>
 body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
        color: #222; line-height: 1.4; padding: 0 1rem; }
 h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.5rem; }
 .muted { color: #666; font-size: .9rem; }
 table { border-collapse: collapse; margin: .6rem 0; font-size: .88rem; }
 th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: right; }
 th { background: #f4f4f4; } td.t, th.t { text-align: left; }
 .alerts { background: #fff4e5; border-left: 4px solid #e67e22; padding: .5rem 1rem; }
 .ok { background: #eafaf1; border-left: 4px solid #27ae60; padding: .5rem 1rem; }
 .na { color: #999; cursor: help; } .hot { background: #fdebd0; font-weight: 600; }
 img { max-width: 100%; height: auto; display: block; margin: .6rem 0; }
 details { margin: .5rem 0; } summary { cursor: pointer; color: #2c3e50; }
 code { background: #f4f4f4; padding: 0 .2rem; }
</style>
</head>
<body>
<h1>Class imbalance and bias report</h1>
<p class="muted">Report date <strong>{{ r.dt }}</strong> &middot; generated {{ r.generated_at }} &middot;
 label: <code>sentiment</code> (-1 negative, 0 neutral, 1 positive) &middot; metrics: SageMaker Clarify
 pre-training bias metrics, facet value <em>d</em> against all other rows <em>a</em>.</p>

<table>
<tr><th class="t">scope</th><th class="t">filter</th><th>reviews</th></tr>
{% for name, s in r.scopes.items() %}<tr><td class="t">{{ name }}</td><td class="t"><code>{{ s.filter }}</code></td>
<td>{{ "{:,}".format(s.rows) }}</td></tr>{% endfor %}
</table>
<p class="muted">Alert thresholds: |DPL| &gt; {{ r.thresholds.dpl }} (facet values with at least {{ r.thresholds.dpl_min_rows or 0 }} rows), |CI| &gt; {{ r.thresholds.ci }}.
 CDDL strata: {% for f, info in r.facets.items() %}<code>{{ f }}</code> by <code>{{ info.cddl_group }}</code>{{ ", " if not loop.last else "" }}{% endfor %}.</p>

<h2>Alerts</h2>
{% if r.alerts %}<div class="alerts"><p><strong>{{ r.alerts|length }} alert(s)</strong>, largest first
 (metric values from small facet values, n<sub>d</sub> &lt; {{ small }}, are noisy: read them with care).</p>
<table><tr><th class="t">scope</th><th class="t">facet</th><th class="t">value</th><th class="t">metric</th>
<th class="t">sentiment</th><th>value</th><th>threshold</th><th>n<sub>d</sub></th><th>n<sub>a</sub></th></tr>
{% for a in r.alerts %}<tr><td class="t">{{ a.scope }}</td><td class="t">{{ a.facet }}</td><td class="t">{{ a.facet_value }}</td>
<td class="t">{{ a.metric }}</td><td class="t">{{ "all" if a.label_value is none else names[a.label_value] ~ " (" ~ a.label_value ~ ")" }}</td>
<td class="hot">{{ "%+.3f"|format(a.value) }}</td><td>{{ a.threshold }}</td>
<td{{ ' class="na"'|safe if a.n_d < small else "" }}>{{ "{:,}".format(a.n_d) }}</td><td>{{ "{:,}".format(a.n_a) }}</td></tr>
{% endfor %}</table></div>{% else %}<div class="ok">No metric crossed its threshold.</div>{% endif %}

{% for sc in scopes %}
<h2>Scope: {{ sc.name }} <span class="muted">(<code>{{ sc.filter }}</code>, {{ "{:,}".format(sc.rows) }} reviews)</span></h2>
{% if not sc.rows %}<p class="ok"><strong>{{ sc.message | capitalize }}</strong>: no curated reviews in this scope, nothing to report.</p>{% else %}
{% set o = sc.dist.overall %}
<p>Overall: {% for label in labels %}{{ names[label] }} {{ fmt_share(o.shares.get(label|string)) }}
 ({{ "{:,}".format(o.counts.get(label|string, 0)) }}){{ ", " if not loop.last else "" }}{% endfor %};
 imbalance ratio (largest / smallest class) {{ fmt_ratio(o) | safe }}.</p>
<h3>Label distribution per facet</h3>
<img alt="Sentiment shares per facet value, scope {{ sc.name }}" src="{{ sc.charts.distribution }}">
<details><summary>Counts, shares and imbalance ratio per facet value</summary>
{% for facet, rows in sc.dist.facets.items() %}
<table><tr><th class="t">{{ facet }}</th><th>n</th>{% for label in labels %}<th>{{ names[label] }}</th>{% endfor %}
<th>imbalance ratio</th></tr>
{% for row in rows %}<tr><td class="t">{{ row.facet_value }}</td><td>{{ "{:,}".format(row.n) }}</td>
{% for label in labels %}<td>{{ "{:,}".format(row.counts.get(label|string, 0)) }} ({{ fmt_share(row.shares.get(label|string)) }})</td>{% endfor %}
<td>{{ fmt_ratio(row) | safe }}</td></tr>{% endfor %}
</table>{% endfor %}
</details>
<h3>Difference in proportions of labels (DPL = q<sub>a</sub> &minus; q<sub>d</sub>)</h3>
<p class="muted">Positive: the facet value has a smaller share of that sentiment than the rest; blank cells are undefined.</p>
<img alt="DPL heatmap, scope {{ sc.name }}" src="{{ sc.charts.dpl }}">
<h3>Class imbalance (CI = (n<sub>a</sub> &minus; n<sub>d</sub>) / (n<sub>a</sub> + n<sub>d</sub>))</h3>
<p class="muted">Near 1: the facet value is rare; near &minus;1: it dominates the scope.</p>
<img alt="CI per facet value, scope {{ sc.name }}" src="{{ sc.charts.ci }}">
{% endif %}
{% endfor %}

<h2>Largest disparities first</h2>
<p class="muted">Top {{ top|length }} (scope, facet value, sentiment) by |DPL|; hover a blank cell for why it is undefined.</p>
<table>
<tr><th class="t">scope</th><th class="t">facet</th><th class="t">value</th><th class="t">sentiment</th><th>n<sub>d</sub></th>
<th>n<sub>a</sub></th>{% for m in metrics %}<th>{{ m }}</th>{% endfor %}</tr>
{% for row in top %}<tr><td class="t">{{ row.scope }}</td><td class="t">{{ row.facet }}</td><td class="t">{{ row.facet_value }}</td>
<td class="t">{{ names[row.label_value] }} ({{ row.label_value }})</td><td>{{ "{:,}".format(row.n_d) }}</td><td>{{ "{:,}".format(row.n_a) }}</td>
{% for m in metrics %}{{ cell(row.by_metric.get(m), m) | safe }}{% endfor %}</tr>{% endfor %}
</table>

<h2>Undefined values</h2>
{% if undefined %}<table><tr><th class="t">metric</th><th class="t">reason</th><th>records</th></tr>
{% for (metric, reason), n in undefined %}<tr><td class="t">{{ metric }}</td><td class="t">{{ reason }}</td><td>{{ n }}</td></tr>{% endfor %}
</table>{% else %}<p>Every metric is defined.</p>{% endif %}
<p class="muted">Every value, with n<sub>a</sub>, n<sub>d</sub> and the CDDL group, is in <code>bias_report.json</code> next to this page.</p>
</body>
</html>
"""


def _fig_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _distribution_chart(dist: dict[str, Any]) -> str:
    from matplotlib.figure import Figure

    sizes = [max(len(dist["facets"][f]), 1) for f in FACETS]
    fig = Figure(figsize=(8, 1.2 + 0.26 * sum(sizes) + 0.5 * len(FACETS)))
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
    return _fig_uri(fig)


def _rows(metrics: list[dict[str, Any]], scope: str, metric: str) -> list[dict[str, Any]]:
    return [m for m in metrics if m["scope"] == scope and m["metric"] == metric]


def _facet_separators(ax, facets: list[str]) -> None:
    """A line between the rows of one facet and the next (rows are drawn top to bottom)."""
    for i in range(1, len(facets)):
        if facets[i] != facets[i - 1]:
            ax.axhline(i - 0.5, color="#333", linewidth=1.2)


def _dpl_chart(metrics: list[dict[str, Any]], scope: str, threshold: float) -> str:
    import numpy as np
    from matplotlib.figure import Figure

    recs = _rows(metrics, scope, "DPL")
    keys = list(dict.fromkeys((r["facet"], r["facet_value"]) for r in recs))
    grid = np.full((len(keys), len(LABEL_VALUES)), np.nan)
    index = {k: i for i, k in enumerate(keys)}
    for r in recs:
        if r["value"] is not None:
            grid[index[(r["facet"], r["facet_value"])], LABEL_VALUES.index(r["label_value"])] = r["value"]
    finite = grid[np.isfinite(grid)]
    limit = max(float(np.abs(finite).max()) if finite.size else 0.0, threshold, 1e-9)
    fig = Figure(figsize=(6.5, 1.0 + 0.28 * len(keys)))
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
    return _fig_uri(fig)


def _ci_chart(metrics: list[dict[str, Any]], scope: str, threshold: float) -> str:
    from matplotlib.figure import Figure

    recs = [r for r in _rows(metrics, scope, "CI") if r["label_value"] == LABEL_VALUES[0]][::-1]
    fig = Figure(figsize=(7, 1.0 + 0.26 * len(recs)))
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
    return _fig_uri(fig)


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


def _cell(record: dict[str, Any] | None, metric: str) -> str:
    from markupsafe import escape

    if record is None:
        return '<td class="na">&ndash;</td>'
    if record["value"] is None:
        return f'<td class="na" title="{escape(record.get("reason", "undefined"))}">n/a</td>'
    title = f' title="group: {escape(record["group"])}"' if metric == "CDDL" and record.get("group") else ""
    return f"<td{title}>{record['value']:+.3f}</td>"


def _fmt_share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _fmt_ratio(row: dict[str, Any]) -> str:
    from markupsafe import escape

    if row.get("imbalance_ratio") is None:
        return f'<span class="na" title="{escape(row.get("reason", "undefined"))}">n/a</span>'
    return f"{row['imbalance_ratio']:.2f}"


def render_html(report: dict[str, Any], charts: bool = True) -> str:
    """The report as one HTML page; ``charts=False`` leaves the images out (fast, for tests)."""
    import jinja2

    metrics = report["metrics"]
    thresholds = report.get("thresholds", {"dpl": 0.2, "ci": 0.9})
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
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(
        r=report,
        scopes=scopes,
        labels=list(LABEL_VALUES),
        names=LABEL_NAMES,
        metrics=list(METRICS),
        top=_top_disparities(metrics),
        undefined=sorted(undefined.items(), key=lambda kv: (METRICS.index(kv[0][0]), kv[0][1])),
        small=SMALL_GROUP,
        cell=_cell,
        fmt_share=_fmt_share,
        fmt_ratio=_fmt_ratio,
    )
