"""Class-imbalance and pre-training bias metrics of the curated reviews, computed in SQL + Python.

The engine (DuckDB locally, Athena on AWS) runs ``include/sql/bias_counts.sql``: a GROUP BY
over the facet columns, the age band (a SQL CASE) and the sentiment label, counting rows in
two scopes at once, ``cumulative`` (dt <= D) and ``partition`` (dt = D). Only that aggregated
table (a few hundred rows, whatever the lake's size) comes back; this module computes every
metric from its marginals with plain arithmetic.

Metrics, per scope, facet F, facet value d (against a = every other row in the scope) and
label value L (y = sentiment == L), as SageMaker Clarify defines its pre-training metrics:

    n_a, n_d    rows in a and in d; q_a, q_d the share of y in a and d
    P_a, P_d    the two-point distributions (not y, y) of a and d
    CI   = (n_a - n_d) / (n_a + n_d)
    DPL  = q_a - q_d
    KL   = sum_k P_a(k) ln(P_a(k) / P_d(k))              (natural log, a is the reference)
    JS   = 1/2 [KL(P_a || M) + KL(P_d || M)], M = (P_a + P_d) / 2   (no square root)
    LP   = ||P_a - P_d||_2,  TVD = 1/2 ||P_a - P_d||_1,  KS = max_k |P_a(k) - P_d(k)|
    CDDL = sum_i n_i (D_i - A_i) / sum_i n_i over the strata i of a group column G, where
           A_i = d's share of the y rows of stratum i and D_i = d's share of its not-y rows
           (each 0 when its denominator is 0)

with 0 ln 0 = 0. A metric that is undefined (n_a = 0 or n_d = 0; KL where P_d(k) = 0 < P_a(k))
gets ``value: null`` and a ``reason``; nothing is ever NaN or infinite in the report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from reviewflow import contract
from reviewflow.bias.dates import check_date
from reviewflow.config import ConfigError
from reviewflow.contract import FACETS, LABELS

if TYPE_CHECKING:
    import pandas as pd


log = logging.getLogger(__name__)

LABEL_VALUES = LABELS
METRICS = ("CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL")
# scope name -> (count column of the SQL result, its filter, in words)
SCOPES = {"cumulative": ("n_cumulative", "dt <= {dt}"), "partition": ("n_partition", "dt = {dt}")}
# CDDL strata per facet: is a facet value's disparity explained by the mix of this column?
DEFAULT_CDDL_GROUPS = {
    "department_name": "age_band",  # departments attract different ages, and ages rate differently
    "class_name": "age_band",
    "division_name": "department_name",  # divisions differ in their department mix
    "age_band": "department_name",  # the classic Simpson's-paradox check for the age facet
}


# -- metric formulas (plain arithmetic on counts) ------------------------------------------


def _xlogy_ratio(p: float, q: float) -> float:
    """p ln(p / q) with 0 ln 0 = 0 (callers make sure q > 0 where p > 0)."""
    return 0.0 if p == 0 else p * math.log(p / q)


def pretraining_metrics(n_a: int, n_d: int, y_a: int, y_d: int) -> dict[str, tuple[float | None, str | None]]:
    """CI, DPL, KL, JS, LP, TVD, KS from counts: metric -> (value, reason when undefined)."""
    out: dict[str, tuple[float | None, str | None]] = {}
    total = n_a + n_d
    out["CI"] = ((n_a - n_d) / total, None) if total > 0 else (None, "no rows in scope (n_a + n_d = 0)")
    reason = None
    if n_d == 0:
        reason = "n_d = 0: no rows with this facet value"
    elif n_a == 0:
        reason = "n_a = 0: the facet value covers every row in scope, nothing to compare it with"
    if reason:
        for name in ("DPL", "KL", "JS", "LP", "TVD", "KS"):
            out[name] = (None, reason)
        return out
    q_a, q_d = y_a / n_a, y_d / n_d
    p_a = ((n_a - y_a) / n_a, q_a)  # (not y, y)
    p_d = ((n_d - y_d) / n_d, q_d)
    diffs = [pa - pd_ for pa, pd_ in zip(p_a, p_d, strict=True)]
    out["DPL"] = (q_a - q_d, None)
    if any(pa > 0 and pd_ == 0 for pa, pd_ in zip(p_a, p_d, strict=True)):
        which = "y" if p_a[1] > 0 and p_d[1] == 0 else "not y"
        out["KL"] = (None, f"KL is infinite: P_d({which}) = 0 where P_a({which}) > 0")
    else:
        out["KL"] = (sum(_xlogy_ratio(pa, pd_) for pa, pd_ in zip(p_a, p_d, strict=True)), None)
    m = [(pa + pd_) / 2 for pa, pd_ in zip(p_a, p_d, strict=True)]
    js = 0.5 * (sum(_xlogy_ratio(pa, mk) for pa, mk in zip(p_a, m, strict=True))
                + sum(_xlogy_ratio(pd_, mk) for pd_, mk in zip(p_d, m, strict=True)))  # fmt: skip
    out["JS"] = (max(js, 0.0), None)  # clamp -1e-17 rounding noise; JS >= 0
    out["LP"] = (math.sqrt(sum(x * x for x in diffs)), None)
    out["TVD"] = (0.5 * sum(abs(x) for x in diffs), None)
    out["KS"] = (max(abs(x) for x in diffs), None)
    return out


def cddl(strata: Iterable[tuple[int, int, int, int]], n_a: int, n_d: int) -> tuple[float | None, str | None]:
    """CDDL from strata (n_i, y_i, n_d_i, y_d_i): rows, y rows, d's rows, d's y rows of stratum i."""
    if n_d == 0:
        return None, "n_d = 0: no rows with this facet value"
    if n_a == 0:
        return None, "n_a = 0: the facet value covers every row in scope, nothing to compare it with"
    weighted, total = 0.0, 0
    for n_i, y_i, n_d_i, y_d_i in strata:
        not_y_i, not_y_d_i = n_i - y_i, n_d_i - y_d_i
        a_i = y_d_i / y_i if y_i > 0 else 0.0
        d_i = not_y_d_i / not_y_i if not_y_i > 0 else 0.0
        weighted += n_i * (d_i - a_i)
        total += n_i
    if total == 0:
        return None, "no rows in any stratum"
    return weighted / total, None


def imbalance(counts: Mapping[int, int]) -> dict[str, Any]:
    """Counts and shares of each label value and the largest / smallest class ratio."""
    n = int(sum(counts.values()))
    row: dict[str, Any] = {
        "n": n,
        "counts": {str(k): int(v) for k, v in counts.items()},
        "shares": {str(k): (v / n if n else None) for k, v in counts.items()},
    }
    classes = [int(counts.get(label, 0)) for label in LABEL_VALUES]
    if n == 0:
        row["imbalance_ratio"], row["reason"] = None, "no rows"
    elif min(classes) == 0:
        empty = [str(label) for label in LABEL_VALUES if counts.get(label, 0) == 0]
        row["imbalance_ratio"] = None
        row["reason"] = f"no rows with sentiment {', '.join(empty)}: the ratio is unbounded"
    else:
        row["imbalance_ratio"] = max(classes) / min(classes)
    return row


# -- from the count table to the report ----------------------------------------------------


def _label_counts(frame: pd.DataFrame, column: str) -> dict[int | str, int]:
    """Rows per label value (-1, 0, 1 always present; anything else, e.g. NULL, under its own key)."""
    import pandas as pd

    counts: dict[int | str, int] = dict.fromkeys(LABEL_VALUES, 0)
    for label, n in frame.groupby("label_value", dropna=False)[column].sum().items():
        key = "null" if pd.isna(label) else int(label)
        counts[key] = counts.get(key, 0) + int(n)
    return counts


def _facet_order(facet: str, values: Iterable[str]) -> list[str]:
    values = list(values)
    if facet == "age_band":
        rank = {band: i for i, band in enumerate(contract.AGE_BAND_NAMES)}
        return sorted(values, key=lambda v: (rank.get(v, len(rank)), v))
    return sorted(values)


def resolve_cddl_groups(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The facet -> CDDL group column mapping: the defaults updated with ``overrides``."""
    groups = dict(DEFAULT_CDDL_GROUPS)
    for facet, group in (overrides or {}).items():
        if facet not in FACETS or group not in FACETS:
            raise ConfigError(f"cddl group {facet!r} -> {group!r}: both must be one of {', '.join(FACETS)}")
        if facet == group:
            raise ConfigError(f"cddl group for {facet!r} cannot be the facet itself")
        groups[facet] = group
    return groups


def label_distribution(frame: pd.DataFrame, column: str) -> dict[str, Any]:
    """Overall and per-facet-value label counts, shares and imbalance ratio for one scope."""
    scoped = frame[frame[column] > 0]
    out: dict[str, Any] = {"overall": imbalance(_label_counts(scoped, column)), "facets": {}}
    for facet in FACETS:
        rows = []
        for value in _facet_order(facet, scoped[facet].unique()):
            rows.append({"facet_value": value, **imbalance(_label_counts(scoped[scoped[facet] == value], column))})
        out["facets"][facet] = rows
    return out


def scope_metrics(frame: pd.DataFrame, scope: str, cddl_groups: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every metric record of one scope: facet x facet value x label value x metric."""
    column = SCOPES[scope][0]
    scoped = frame[frame[column] > 0]
    total = int(scoped[column].sum())
    records: list[dict[str, Any]] = []
    for facet in FACETS:
        group = cddl_groups[facet]
        # n per (facet value, label) and per (group stratum, facet value, label): the marginals
        by_value = scoped.groupby([facet, "label_value"], dropna=False)[column].sum()
        by_stratum = scoped.groupby([group, facet, "label_value"], dropna=False)[column].sum()
        n_value = scoped.groupby(facet)[column].sum()
        n_label = scoped.groupby("label_value")[column].sum()
        n_stratum = scoped.groupby(group)[column].sum()
        n_stratum_value = scoped.groupby([group, facet])[column].sum()
        y_stratum = scoped.groupby([group, "label_value"])[column].sum()
        strata = list(n_stratum.index)
        for value in _facet_order(facet, n_value.index):
            n_d = int(n_value[value])
            n_a = total - n_d
            for label in LABEL_VALUES:
                y_d = int(by_value.get((value, label), 0))
                y_a = int(n_label.get(label, 0)) - y_d
                base = {"scope": scope, "facet": facet, "facet_value": value, "label_value": label,
                        "n_a": n_a, "n_d": n_d}  # fmt: skip
                for metric, (val, reason) in pretraining_metrics(n_a, n_d, y_a, y_d).items():
                    records.append(_record(base, metric, val, reason))
                rows = [
                    (int(n_stratum[s]), int(y_stratum.get((s, label), 0)), int(n_stratum_value.get((s, value), 0)),
                     int(by_stratum.get((s, value, label), 0)))
                    for s in strata
                ]  # fmt: skip
                val, reason = cddl(rows, n_a, n_d)
                records.append(_record({**base, "group": group}, "CDDL", val, reason))
    return records


def _record(base: dict[str, Any], metric: str, value: float | None, reason: str | None) -> dict[str, Any]:
    if value is not None and not math.isfinite(value):  # belt and braces: never NaN/inf in JSON
        value, reason = None, reason or "not a finite number"
    record = {**base, "metric": metric, "value": value}
    if value is None:
        record["reason"] = reason or "undefined"
    return record


def _alert_rule(rec: dict[str, Any], threshold: float, min_rows: int) -> str:
    """Why an alert fired, in plain words."""
    where = f"{rec['facet']}={rec['facet_value']!r}"
    value, n_d, n_a = rec["value"], rec["n_d"], rec["n_a"]
    floor = f"; facet values need at least {min_rows:,} rows to alert" if min_rows else ""
    if rec["metric"] == "CI":
        share = n_d / (n_a + n_d) if n_a + n_d else 0.0
        return (f"{where} has {n_d:,} of the {n_a + n_d:,} rows in scope ({100 * share:.1f}%): "
                f"|CI| {abs(value):.3f} > {threshold}{floor}")  # fmt: skip
    name = contract.LABEL_NAMES.get(rec["label_value"], str(rec["label_value"]))
    direction = "lower" if value > 0 else "higher"  # DPL = q_a - q_d
    return (f"the {name} share of {where} ({n_d:,} rows) is {100 * abs(value):.1f} points {direction} than "
            f"in the rest ({n_a:,} rows): |DPL| {abs(value):.3f} > {threshold}{floor}")  # fmt: skip


def find_alerts(
    metrics: list[dict[str, Any]], dpl_threshold: float, ci_threshold: float, min_rows: int = 0
) -> list[dict[str, Any]]:
    """|DPL| > dpl_threshold (per label) or |CI| > ci_threshold (once per facet value), ranked.

    A facet value with fewer than ``min_rows`` rows (n_d) raises no alert of either metric: its
    DPL is noise, and a CI alert for every tiny class (a 6,000-row report has dozens) buries the
    few that matter. Its records stay in the report. Each alert says its ``rule`` in plain words
    and has a ``rank``: how far past its threshold it is (|value| / threshold); alerts are
    ordered cumulative scope first, then by rank.
    """
    alerts, seen_ci = [], set()
    for rec in metrics:
        value = rec["value"]
        if value is None or rec["metric"] not in ("DPL", "CI"):
            continue
        if rec["n_d"] < min_rows:
            continue
        threshold = dpl_threshold if rec["metric"] == "DPL" else ci_threshold
        if abs(value) <= threshold:
            continue
        where = f"[{rec['scope']}] {rec['facet']}={rec['facet_value']!r}"
        if rec["metric"] == "CI":
            key = (rec["scope"], rec["facet"], rec["facet_value"])
            if key in seen_ci:
                continue
            seen_ci.add(key)
            label, what = None, f"CI = {value:+.3f}"
        else:
            label, what = rec["label_value"], f"DPL(sentiment={rec['label_value']}) = {value:+.3f}"
        alerts.append({
            "scope": rec["scope"], "facet": rec["facet"], "facet_value": rec["facet_value"], "label_value": label,
            "metric": rec["metric"], "value": value, "threshold": threshold, "n_a": rec["n_a"], "n_d": rec["n_d"],
            "rank": abs(value) / threshold if threshold else abs(value), "rule": _alert_rule(rec, threshold, min_rows),
            "message": f"{where}: {what} (|{rec['metric']}| > {threshold}; n_d={rec['n_d']}, n_a={rec['n_a']})",
        })  # fmt: skip
    alerts.sort(key=lambda a: (a["scope"] != "cumulative", -a["rank"]))
    return alerts


def build_report(
    counts: pd.DataFrame,
    dt: str,
    cddl_groups: Mapping[str, str] | None = None,
    dpl_threshold: float = 0.2,
    ci_threshold: float = 0.9,
    alert_min_rows: int = 0,
) -> dict[str, Any]:
    """The bias report (the JSON contract) from the count table of ``fetch_counts``."""
    dt = check_date(dt)
    groups = resolve_cddl_groups(cddl_groups)
    scopes, distribution, metrics = {}, {}, []
    for scope, (column, where) in SCOPES.items():
        scopes[scope] = {"filter": where.format(dt=dt), "rows": int(counts[column].sum())}
        if not scopes[scope]["rows"]:
            scopes[scope]["message"] = no_reviews_message(scope, dt)
        distribution[scope] = label_distribution(counts, column)
        metrics.extend(scope_metrics(counts, scope, groups))
    return {
        "dt": dt,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scopes": scopes,
        "facets": {facet: {"cddl_group": groups[facet]} for facet in FACETS},
        "label_values": list(LABEL_VALUES),
        "thresholds": {"dpl": dpl_threshold, "ci": ci_threshold, "dpl_min_rows": alert_min_rows},
        "label_distribution": distribution,
        "metrics": metrics,
        "alerts": find_alerts(metrics, dpl_threshold, ci_threshold, alert_min_rows),
    }


def no_reviews_message(scope: str, dt: str) -> str:
    """What a scope without rows says: an empty day is reported as such, never an error."""
    return f"no reviews on {dt}" if scope == "partition" else f"no reviews up to {dt}"
