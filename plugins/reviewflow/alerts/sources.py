"""The findings of each stage as alerts: the ingest report, the bias report, a drift report, the gate's decision.

Pure functions over the report dicts the stages already write (no I/O); each alert points at its
report in the lake (``uri``). Product-issue alerts are built in reviewflow.insights.
"""

from __future__ import annotations

from reviewflow.alerts.record import Alert
from reviewflow.config import Settings

CRITICAL_QUARANTINE_SHARE = 0.5  # half a day's rows rejected: something upstream broke


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def from_ingest_report(report: dict, settings: Settings, uri: str = "") -> list[Alert]:
    """A quarantine share above ``ingest_alert_quarantine_share``; each file quarantined whole; schema drift."""
    dt, out = report["dt"], []
    rows_in, quarantined = int(report.get("rows_in") or 0), int(report.get("rows_quarantined") or 0)
    threshold = settings.ingest_alert_quarantine_share
    if rows_in and quarantined / rows_in > threshold:
        share = quarantined / rows_in
        by_rule: dict[str, int] = {}
        for f in report.get("files", []):
            for rule, n in (f.get("quarantined_by_rule") or {}).items():
                by_rule[rule] = by_rule.get(rule, 0) + int(n or 0)  # a file quarantined whole: its count may be unknown
        top = sorted(by_rule.items(), key=lambda kv: -kv[1])[:3]
        out.append(Alert(
            kind="ingest", severity="critical" if share >= CRITICAL_QUARANTINE_SHARE else "warning", dt=dt,
            title=f"{_pct(share)} of the rows of {dt} quarantined ({quarantined:,} of {rows_in:,})",
            rule=f"quarantined share {_pct(share)} > {_pct(threshold)} (ingest_alert_quarantine_share)",
            detail=("most common: " + "; ".join(f"{r} ({n:,})" for r, n in top) + ". " if top else "")
            + f"Quarantine: {report.get('quarantine_uri', '')}",
            uri=uri, rank=share / threshold if threshold else share,
        ))  # fmt: skip
    for f in report.get("files", []):
        if f.get("status", "parsed") == "parsed":
            continue
        n = f.get("rows_in")
        out.append(Alert(
            kind="ingest", severity="warning", dt=dt,
            title=f"file {f['file']} quarantined whole ({f['status']})",
            rule=f"a file that cannot be read or has the wrong schema is quarantined whole: {f.get('reason', '')}"[:500],
            detail=f"records in it: {'unknown' if n is None else f'{n:,}'}. Quarantine: {report.get('quarantine_uri', '')}",
            uri=uri, rank=float(n or 0),
        ))  # fmt: skip
    for drift in report.get("schema_drift", []):
        vs = drift.get("vs_contract") or {}
        against = "the contract" if vs.get("drifted") else "the catalog"
        vs = vs if vs.get("drifted") else (drift.get("vs_catalog") or {})
        changes = {k: vs[k] for k in ("new", "missing", "renamed", "retyped") if vs.get(k)}
        out.append(Alert(
            kind="ingest", severity="warning" if against == "the contract" else "info", dt=dt,
            title=f"schema drift in {drift['file']} against {against}",
            rule="the file's columns differ from " + against + (f": {changes}" if changes else ""),
            uri=uri,
        ))  # fmt: skip
    return out


def from_bias_report(report: dict, settings: Settings, uri: str = "") -> list[Alert]:
    """One warning per alert of the bias report (bias/metrics.find_alerts), its rule and rank kept."""
    out = []
    for a in report.get("alerts", []):
        label = "" if a.get("label_value") is None else f"(sentiment={a['label_value']})"
        rank = a.get("rank", abs(a["value"]) / a["threshold"] if a.get("threshold") else abs(a["value"]))
        out.append(Alert(
            kind="bias", severity="warning", dt=report["dt"],
            title=f"[{a['scope']}] {a['facet']}={a['facet_value']}: {a['metric']}{label} = {a['value']:+.3f}",
            rule=a.get("rule") or a.get("message", ""), detail=f"n_d={a['n_d']:,}, n_a={a['n_a']:,}",
            uri=uri, rank=rank,
        ))  # fmt: skip
    return out


def from_drift_report(report: dict, uri: str = "") -> list[Alert]:
    """One warning per drift check over its threshold (PSI of a distribution, the OOV share's rise)."""
    out, uri = [], uri or report.get("uri", "")
    for c in report.get("alerts", []):
        out.append(Alert(
            kind="drift", severity="warning", dt=report["dt"],
            title=f"drift in {c['check']}: {c['metric']} {c['value']:.4f} (model {report.get('model', '?')})",
            rule=f"{c['metric']} of the {c['check']} vs the champion's training reference: "
                 f"{c['value']:.4f} > {c['threshold']}",
            uri=uri, rank=c["value"] / c["threshold"] if c.get("threshold") else c["value"],
        ))  # fmt: skip
    return out


def from_decision(decision: dict, dt: str, uri: str = "") -> list[Alert]:
    """The gate's final word: promoted -> info; refused (or promoted by the gate but not done) -> warning."""
    challenger = decision.get("challenger") or {}
    who = f"{challenger.get('model_name', '?')} {challenger.get('version', '?')}"
    f1 = challenger.get("macro_f1")
    champion = decision.get("champion") or {}
    versus = f" vs champion {champion['macro_f1']:.4f}" if champion.get("macro_f1") is not None else ""
    score = f" (test macro-F1 {f1:.4f}{versus})" if f1 is not None else ""
    status = decision.get("status", "promote" if decision.get("promote") else "refused")
    reasons = [str(r) for r in decision.get("reasons", [])]
    uri = uri or decision.get("report_uri", "")
    if status in ("promoted", "promote"):
        severity, title = "info", f"{who} promoted to champion{score}"
        rule = "it beat the champion by the margin, cleared the quality floor and passed the fairness gate"
    elif status == "rejected_by_reviewer":
        severity, title = "info", f"{who} passed the gate but a reviewer rejected it{score}"
        rule = "require_approval: a human decides"
    else:
        failed = [c["check"] for c in decision.get("checks", []) if not c.get("passed")]
        severity = "warning"
        title = f"{who} not promoted ({status}){score}"
        rule = ("failed: " + ", ".join(failed)) if failed else "the gate passed but the promote step did not run"
    return [Alert(kind="gate", severity=severity, dt=dt, title=title, rule=rule, detail=" | ".join(reasons)[:2000],
                  uri=uri)]  # fmt: skip


def from_realised_quality(report: dict, uri: str = "") -> list[Alert]:
    """A decayed date (scoring/quality.py's rule) -> one critical alert; any other day -> none."""
    if not report or not report.get("decay"):
        return []
    test, f1 = report.get("test_macro_f1"), report.get("macro_f1")
    high = report.get("ci_high")
    rule = report.get("rule") or {}
    drop = rule.get("max_drop")
    return [Alert(
        kind="realised_quality", severity="critical", dt=report["dt"],
        title=f"model decay: {report.get('model', '?')}:{report.get('version', '?')} realised macro-F1 "
              f"{f1:.4f} on {report['dt']} (test {test:.4f})",
        rule=rule.get("text") or "the CI's upper bound below test macro-F1 minus the allowed drop",
        detail=f"n={report.get('n', 0):,}, 95% CI {report.get('ci_low', 0):.4f}-{high:.4f}; "
               f"a model_decay asset event was emitted",
        uri=uri or report.get("uri", ""),
        rank=(test - (drop or 0) - high) if None not in (test, high) else 0.0,
    )]  # fmt: skip
