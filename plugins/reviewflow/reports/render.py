"""Render every HTML report one way: jinja2 templates (templates/) and inline PNG charts.

    render("bias_report.html.j2", r=report, ...) -> str   # a page extending base.html.j2
    fig = figure(figsize=(6, 4)); ...; png_data_uri(fig)   # "data:image/png;base64,..."

The environment autoescapes everything (review text is user input): a helper that builds HTML
returns ``markupsafe.Markup`` and escapes what it puts in. Undefined names fail the render
(StrictUndefined). Charts use matplotlib's Figure API only: no pyplot, no global state, no
``matplotlib.use``. jinja2 and matplotlib load on first use, so importing a reviewflow module
(a DAG file does at parse time) stays light.
"""

from __future__ import annotations

import base64
import functools
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2
    from matplotlib.figure import Figure

TEMPLATES = Path(__file__).with_name("templates")


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell's text: '–' for None, floats to ``digits`` decimals, anything else as str."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def thousands(value: int) -> str:
    return f"{value:,}"


def pct(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}%}"


@functools.cache
def environment() -> jinja2.Environment:
    """The one jinja2 environment of the reports (created on first use)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(fmt=fmt, thousands=thousands, pct=pct)
    return env


def render(template: str, **context: Any) -> str:
    """A template of templates/ rendered with ``context``; ``generated_at`` defaults to now (UTC)."""
    context.setdefault("generated_at", datetime.now(UTC).isoformat(timespec="seconds"))
    return environment().get_template(template).render(**context)


def figure(**kwargs: Any) -> Figure:
    """A new matplotlib Figure (keyword arguments as for ``Figure``), not known to pyplot."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def png_data_uri(fig: Figure, dpi: int = 80) -> str:
    """The figure as a PNG ``data:`` URI, to inline in an ``<img src>``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
