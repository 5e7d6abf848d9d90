"""The champion/challenger gate: which of a run's models is the challenger, and does it replace the champion.

Pure policy over evaluations (no I/O). A challenger replaces the champion only when its test
macro-F1 beats the champion's, re-evaluated on the *same* test split, by ``promote_margin``, it
clears the quality floor ``min_macro_f1``, and it passes the fairness gate (per-facet macro-F1
drop vs overall ≤ ``fairness_max_f1_drop`` and |DPPL| ≤ ``fairness_max_abs_dppl`` for facet values
with at least ``fairness_min_support`` test rows). With no champion, a challenger that passes
the fairness gate and the floor is promoted. The challenger is chosen on validation macro-F1
(fair models first); test decides only at the gate.
"""

from __future__ import annotations

from reviewflow.config import Settings

FAIRNESS_LABEL_VALUES = (1, -1)  # DPPL is gated for the positive and the negative label


def fairness_violations(evaluation: dict, settings: Settings, min_support: int | None = None) -> list[str]:
    """Why an evaluation fails the fairness gate (empty: it passes).

    Facet values with fewer test rows than ``settings.fairness_min_support`` are left out: a
    3-class macro-F1 on a few dozen rows swings by more than the allowed drop by chance alone.
    """
    min_support = settings.fairness_min_support if min_support is None else min_support
    problems = []
    overall = evaluation["macro_f1"]
    for row in evaluation["facets"]:
        if row["n"] < min_support:
            continue
        drop = overall - row["macro_f1"]
        if drop > settings.fairness_max_f1_drop:
            problems.append(
                f"{row['facet']}={row['facet_value']} (n={row['n']}): macro-F1 {row['macro_f1']:.3f} is {drop:.3f} "
                f"below overall {overall:.3f} (max drop {settings.fairness_max_f1_drop})"
            )
    for rec in evaluation["bias"]:
        if rec["metric"] != "DPPL" or rec["value"] is None or rec["n_d"] < min_support:
            continue
        if rec["label_value"] in FAIRNESS_LABEL_VALUES and abs(rec["value"]) > settings.fairness_max_abs_dppl:
            label = "positive" if rec["label_value"] == 1 else "negative"
            problems.append(
                f"{rec['facet']}={rec['facet_value']} (n={rec['n_d']}): |DPPL| for {label} = {abs(rec['value']):.3f} "
                f"> {settings.fairness_max_abs_dppl}"
            )
    return problems


def gate(
    challenger: dict,
    challenger_eval: dict,
    champion_entry: dict | None,
    champion_eval: dict | None,
    settings: Settings,
    min_support: int | None = None,
) -> dict:
    """Decide whether ``challenger`` replaces the champion; both evaluated on the same test split."""
    reasons, checks = [], []
    min_support = settings.fairness_min_support if min_support is None else min_support
    unfair = fairness_violations(challenger_eval, settings, min_support)
    checks.append({"check": "fairness", "passed": not unfair, "violations": unfair})
    if unfair:
        reasons.append(f"fairness gate failed ({len(unfair)} violation(s)): " + "; ".join(unfair))
    else:
        reasons.append(
            f"fairness gate passed (facet values with ≥{min_support} test rows: macro-F1 drop ≤ "
            f"{settings.fairness_max_f1_drop}, |DPPL| ≤ {settings.fairness_max_abs_dppl})"
        )
    f1 = challenger_eval["macro_f1"]
    # A floor on quality: a model that says "positive" to everyone is "fair" by DPPL, yet useless.
    good_enough = f1 >= settings.min_macro_f1
    checks.append({"check": "quality floor", "passed": good_enough, "macro_f1": f1, "floor": settings.min_macro_f1})
    if not good_enough:
        reasons.append(f"test macro-F1 {f1:.4f} is below the floor {settings.min_macro_f1} (REVIEWFLOW_MIN_MACRO_F1)")
    if champion_entry is None:
        checks.append({"check": "performance", "passed": True, "detail": "no champion yet"})
        reasons.append(
            f"no champion yet: {challenger['model_name']} {challenger['version']} (test macro-F1 {f1:.4f}) is the first candidate"
        )
    else:
        champ_f1 = champion_eval["macro_f1"]
        gain = f1 - champ_f1
        beats = gain > settings.promote_margin
        checks.append({"check": "performance", "passed": beats, "challenger_macro_f1": f1, "champion_macro_f1": champ_f1,
                       "gain": gain, "margin": settings.promote_margin})  # fmt: skip
        verb = "beats" if beats else "does not beat"
        reasons.append(
            f"challenger {challenger['model_name']} {challenger['version']} test macro-F1 {f1:.4f} {verb} champion "
            f"{champion_entry['model_name']} {champion_entry['version']} {champ_f1:.4f} (re-evaluated on the same test split) "
            f"by more than the margin {settings.promote_margin} (gain {gain:+.4f})"
        )
    promote_it = all(c["passed"] for c in checks)
    return {
        "promote": promote_it,
        "status": "promote" if promote_it else "refused",
        "challenger": {
            "model_name": challenger["model_name"],
            "version": challenger["version"],
            "kind": challenger["kind"],
            "macro_f1": f1,
            "accuracy": challenger_eval["accuracy"],
        },
        "champion": None
        if champion_entry is None
        else {
            "model_name": champion_entry["model_name"],
            "version": champion_entry["version"],
            "macro_f1": champion_eval["macro_f1"],
            "accuracy": champion_eval["accuracy"],
            "macro_f1_at_promotion": (champion_entry.get("metrics") or {}).get("test_macro_f1"),
        },
        "checks": checks,
        "reasons": reasons,
        "thresholds": {
            "promote_margin": settings.promote_margin,
            "fairness_max_f1_drop": settings.fairness_max_f1_drop,
            "fairness_max_abs_dppl": settings.fairness_max_abs_dppl,
            "fairness_min_support": min_support,
            "min_macro_f1": settings.min_macro_f1,
        },
    }


def choose_challenger(candidates: list[tuple[dict, dict]], settings: Settings) -> tuple[dict, dict, list[str]]:
    """The best of this run's models: fair ones first, then by validation macro-F1 (test decides only at the gate).

    ``candidates``: (registry entry, test evaluation) pairs. Returns (entry, evaluation, reasons).
    """
    if not candidates:
        raise ValueError("no trained and evaluated challenger in this run: see the train_* / evaluate_* tasks")

    def key(pair):
        entry, evaluation = pair
        fair = not fairness_violations(evaluation, settings)
        val = (entry.get("metrics") or {}).get("validation", {}).get("macro_f1", float("-inf"))
        return (fair, val, evaluation["macro_f1"])

    ranked = sorted(candidates, key=key, reverse=True)
    reasons = [
        f"{e['model_name']} {e['version']}: validation macro-F1 {key((e, ev))[1]:.4f}, test macro-F1 {ev['macro_f1']:.4f}, "
        f"fairness {'ok' if key((e, ev))[0] else 'failed'}"
        for e, ev in ranked
    ]
    best = ranked[0]
    reasons.insert(
        0, f"challenger: {best[0]['model_name']} {best[0]['version']} (best validation macro-F1 among fair models)"
    )
    return best[0], best[1], reasons
