"""Product-issue detection: is a key's negative share on D higher than its own baseline?

For each level (product, class_name, department_name) and key, D's predicted-negative count x of
n reviews is compared with the key's trailing baseline (x_b negatives of n_b reviews over the
``baseline_days`` before D):

* **test** (one-sided): under "nothing changed", the key's negative rate is unknown but its
  baseline tells us about it: rate ~ Beta(a0 + x_b, b0 + n_b - x_b), where the weak prior
  (a0, b0) has the level-wide baseline share as its mean and ``prior_strength`` pseudo-reviews.
  D's count then follows a beta-binomial; the p-value is P(X >= x). Unlike a two-proportion
  z-test this stays valid for small counts and accounts for the baseline's own uncertainty.
* **volume**: keys with fewer than ``min_reviews`` on D or ``min_baseline_reviews`` in the
  baseline are not tested (counted as skipped, with the reason).
* **multiplicity**: Benjamini-Hochberg q-values over the keys tested at one level on one day.
* **alert**: q <= ``fdr`` and D's share exceeds the baseline's by at least ``min_share_increase``
  (a significant but tiny rise is not worth a person's time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVELS = ("product", "class_name", "department_name")
LEVEL_NAMES = {"product": "product", "class_name": "class", "department_name": "department"}


@dataclass(frozen=True)
class DetectionSettings:
    baseline_days: int = 28
    min_reviews: int = 20
    min_baseline_reviews: int = 30
    fdr: float = 0.05
    min_share_increase: float = 0.10
    prior_strength: float = 5.0

    @classmethod
    def from_settings(cls, settings) -> DetectionSettings:
        return cls(
            baseline_days=settings.insights_baseline_days,
            min_reviews=settings.insights_min_reviews,
            min_baseline_reviews=settings.insights_min_baseline_reviews,
            fdr=settings.insights_fdr,
            min_share_increase=settings.insights_min_share_increase,
            prior_strength=settings.insights_prior_strength,
        )


def benjamini_hochberg(p_values) -> np.ndarray:
    """BH-adjusted p-values (q-values), in the input's order; NaN stays NaN."""
    p = np.asarray(p_values, dtype="float64")
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return q
    values = p[ok]
    order = np.argsort(values)
    ranked = values[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]  # monotone from the largest p down
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(ranked, 1.0)
    q[ok] = adjusted
    return q


def beta_binomial_p_value(x: int, n: int, x_b: int, n_b: int, prior_share: float, prior_strength: float) -> float:
    """P(X >= x) for X ~ BetaBinomial(n, a0 + x_b, b0 + n_b - x_b): D's count as extreme as observed."""
    from scipy.stats import betabinom

    share = min(max(prior_share, 1e-3), 1 - 1e-3)
    a = prior_strength * share + x_b
    b = prior_strength * (1 - share) + (n_b - x_b)
    return float(betabinom.sf(x - 1, n, a, b)) if x > 0 else 1.0


def daily_figures(daily: pd.DataFrame, dt: str) -> pd.DataFrame:
    """D's figures and the baseline's, one row per (level, key) seen on D or in the baseline.

    ``daily``: the insights_daily.sql result (dt, level, key, reviews, negatives, rating_sum) over
    the window [D - baseline_days, D].
    """
    daily = daily.assign(key=daily["key"].astype(str))
    today = daily[daily["dt"] == dt].groupby(["level", "key"])[["reviews", "negatives", "rating_sum"]].sum()
    base = daily[daily["dt"] < dt].groupby(["level", "key"])[["reviews", "negatives", "rating_sum"]].sum()
    base.columns = ["baseline_reviews", "baseline_negatives", "baseline_rating_sum"]
    out = today.join(base, how="outer").fillna(0).reset_index()
    for column in ("reviews", "negatives", "baseline_reviews", "baseline_negatives"):
        out[column] = out[column].astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["negative_share"] = np.where(out["reviews"] > 0, out["negatives"] / out["reviews"], np.nan)
        out["mean_rating"] = np.where(out["reviews"] > 0, out["rating_sum"] / out["reviews"], np.nan)
        out["baseline_negative_share"] = np.where(
            out["baseline_reviews"] > 0, out["baseline_negatives"] / out["baseline_reviews"], np.nan
        )
        out["baseline_mean_rating"] = np.where(
            out["baseline_reviews"] > 0, out["baseline_rating_sum"] / out["baseline_reviews"], np.nan
        )
    return out.drop(columns=["rating_sum", "baseline_rating_sum"])


def flag_keys(figures: pd.DataFrame, settings: DetectionSettings) -> pd.DataFrame:
    """Add ``tested``, ``skip_reason``, ``p_value``, ``q_value`` and ``alert`` to ``daily_figures``' rows."""
    out = figures.copy()
    out["tested"] = False
    out["skip_reason"] = ""
    out["p_value"] = np.nan
    out["q_value"] = np.nan
    out["alert"] = False
    few_today = out["reviews"] < settings.min_reviews
    few_base = out["baseline_reviews"] < settings.min_baseline_reviews
    out.loc[few_today, "skip_reason"] = f"fewer than {settings.min_reviews} reviews on the day"
    out.loc[~few_today & few_base, "skip_reason"] = (
        f"fewer than {settings.min_baseline_reviews} reviews in the {settings.baseline_days}-day baseline"
    )
    out.loc[out["reviews"] == 0, "skip_reason"] = "no reviews on the day"
    out["tested"] = ~few_today & ~few_base
    for level in out["level"].unique():
        at_level = out["level"] == level
        rows = out[at_level]
        prior = rows["baseline_negatives"].sum() / max(int(rows["baseline_reviews"].sum()), 1)
        tested = rows.index[rows["tested"]]
        p = [
            beta_binomial_p_value(
                int(out.at[i, "negatives"]), int(out.at[i, "reviews"]), int(out.at[i, "baseline_negatives"]),
                int(out.at[i, "baseline_reviews"]), prior, settings.prior_strength,
            )
            for i in tested
        ]  # fmt: skip
        out.loc[tested, "p_value"] = p
        out.loc[tested, "q_value"] = benjamini_hochberg(p)
    rise = out["negative_share"] - out["baseline_negative_share"]
    out["alert"] = out["tested"] & (out["q_value"] <= settings.fdr) & (rise >= settings.min_share_increase)
    return out.sort_values(["level", "alert", "q_value", "reviews"], ascending=[True, False, True, False])


def rule_text(row, settings: DetectionSettings) -> str:
    """The rule that fired, in plain words."""
    return (
        f"negative share {row['negative_share']:.0%} ({row['negatives']} of {row['reviews']} reviews) vs "
        f"{row['baseline_negative_share']:.0%} ({row['baseline_negatives']} of {row['baseline_reviews']}) over the "
        f"{settings.baseline_days} days before; BH q = {row['q_value']:.2g} <= {settings.fdr} and a rise of "
        f"{(row['negative_share'] - row['baseline_negative_share']) * 100:.0f} points >= "
        f"{settings.min_share_increase * 100:.0f}"
    )
