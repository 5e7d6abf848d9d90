"""The detector's statistics against independent references (scipy, simulation) and its volume rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reviewflow.insights.detect import (
    DetectionSettings,
    benjamini_hochberg,
    beta_binomial_p_value,
    daily_figures,
    flag_keys,
)
from reviewflow.insights.terms import review_terms, weighted_log_odds


def test_benjamini_hochberg_matches_scipy():
    from scipy.stats import false_discovery_control

    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.002, size=5)])
    rng.shuffle(p)
    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p, method="bh"))
    with_gap = benjamini_hochberg([0.01, np.nan, 0.04])
    assert np.isnan(with_gap[1]) and with_gap[0] == pytest.approx(0.02) and with_gap[2] == pytest.approx(0.04)


def test_beta_binomial_p_value_matches_a_simulation():
    """P(X >= x) when the rate is drawn from the baseline's posterior, then D's count from that rate."""
    rng = np.random.default_rng(0)
    x, n, x_b, n_b, prior, strength = 9, 30, 12, 100, 0.15, 5.0
    rates = rng.beta(strength * prior + x_b, strength * (1 - prior) + n_b - x_b, size=400_000)
    simulated = float((rng.binomial(n, rates) >= x).mean())
    assert beta_binomial_p_value(x, n, x_b, n_b, prior, strength) == pytest.approx(simulated, abs=0.003)
    assert beta_binomial_p_value(0, n, x_b, n_b, prior, strength) == 1.0


def _daily(rows):
    return pd.DataFrame(rows, columns=["dt", "level", "key", "reviews", "negatives", "rating_sum"])


def test_volume_rules_skip_and_say_why_and_an_alert_needs_q_and_a_rise():
    settings = DetectionSettings(min_reviews=20, min_baseline_reviews=30, min_share_increase=0.10)
    base = [(f"2024-01-0{d}", "product", k, 20, 2, 80.0) for d in range(1, 5) for k in ("a", "b", "c", "tiny")]
    today = [
        ("2024-01-05", "product", "a", 40, 24, 100.0),  # 60% vs 10%: an issue
        ("2024-01-05", "product", "b", 40, 5, 150.0),  # 12.5% vs 10%: noise
        ("2024-01-05", "product", "c", 19, 19, 19.0),  # all negative, but too few reviews to test
        ("2024-01-05", "product", "new", 50, 40, 60.0),  # no baseline at all
    ]
    out = flag_keys(daily_figures(_daily(base + today), "2024-01-05"), settings).set_index("key")
    assert out.loc["a", "alert"] and out.loc["a", "q_value"] < 1e-6
    assert not out.loc["b", "alert"] and out.loc["b", "tested"]
    assert not out.loc["c", "tested"] and "fewer than 20 reviews on the day" in out.loc["c", "skip_reason"]
    assert not out.loc["new", "tested"] and "baseline" in out.loc["new", "skip_reason"]
    assert out.loc["tiny", "skip_reason"] == "no reviews on the day"
    # significant but below the minimum rise: no alert
    strict = flag_keys(daily_figures(_daily(base + today), "2024-01-05"), DetectionSettings(min_share_increase=0.6))
    assert not strict.set_index("key").loc["a", "alert"]


def test_null_days_raise_few_alerts():
    """Binomial days at the baseline's own rate: BH keeps false alarms far below 1 per 100 tested keys."""
    rng = np.random.default_rng(7)
    rates = rng.uniform(0.05, 0.3, size=200)
    alerts = tested = 0
    for _ in range(20):
        rows = []
        for k, rate in enumerate(rates):
            n_b = 28 * 25  # the baseline: 28 days of 25 reviews
            rows.append(("2024-01-01", "product", str(k), n_b, int(rng.binomial(n_b, rate)), 0.0))
            rows.append(("2024-02-01", "product", str(k), 25, int(rng.binomial(25, rate)), 0.0))
        out = flag_keys(daily_figures(_daily(rows), "2024-02-01"), DetectionSettings())
        tested += int(out["tested"].sum())
        alerts += int(out["alert"].sum())
    assert tested == 20 * 200
    assert alerts / tested <= 0.01, (alerts, tested)


def test_planted_complaint_terms_rank_first():
    rng = np.random.default_rng(1)
    filler = ["too small", "thin fabric", "color is off", "runs large", "not flattering", "itchy"]
    focus = [f"The zipper broke. {rng.choice(filler)}." for _ in range(12)] + ["just bad"] * 4
    reference = [f"{rng.choice(filler)} but ok" for _ in range(200)]
    terms = [t["term"] for t in weighted_log_odds(focus, reference)]
    assert terms[0] == "zipper broke", terms
    assert "zipper" not in terms  # covered by the bigram
    assert "thin fabric" not in terms[:3]
    assert review_terms("Poor quality. The zipper broke", frozenset({"the"})) >= {"zipper broke", "poor quality"}
    assert "quality zipper" not in review_terms("Poor quality. The zipper broke", frozenset({"the"}))


def test_an_example_is_cut_around_the_complaint_it_holds():
    from reviewflow.insights.terms import snippet

    text = "Lovely colour and a flattering cut. " * 8 + "The zipper broke the first time I wore it."
    cut = snippet(text, ["zipper broke"], chars=80)
    assert "zipper broke" in cut and cut.startswith("…") and len(cut) <= 82
    assert snippet("short text", ["zipper"]) == "short text"
    assert snippet(text, ["button"], chars=40).startswith("Lovely colour")  # no term: the start
