"""Market trends: weekly predicted-sentiment shares per department and class, and the largest movers."""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_WEEKLY_REVIEWS = 30  # a week with fewer reviews of a key is too noisy to call a move


def weekly_shares(weekly: pd.DataFrame) -> pd.DataFrame:
    """The insights_weekly.sql counts with negative / neutral / positive shares."""
    out = weekly.copy()
    for column in ("reviews", "negatives", "neutrals", "positives"):
        out[column] = pd.to_numeric(out[column]).astype("int64")
    reviews = out["reviews"].where(out["reviews"] > 0)
    out["negative_share"] = out["negatives"] / reviews
    out["neutral_share"] = out["neutrals"] / reviews
    out["positive_share"] = out["positives"] / reviews
    out["week"] = out["week"].astype(str).str[:10]
    return out.sort_values(["level", "key", "week"]).reset_index(drop=True)


def movers(shares: pd.DataFrame, top: int = 5, min_reviews: int = MIN_WEEKLY_REVIEWS) -> list[dict]:
    """Keys whose weekly negative share moved most: the latest week against the first, both with volume.

    The slope (least squares over the weeks with volume, points per week) says whether it is a
    steady trend or one odd week.
    """
    found = []
    for (level, key), rows in shares[shares["reviews"] >= min_reviews].groupby(["level", "key"]):
        if len(rows) < 2:
            continue
        first, last = rows.iloc[0], rows.iloc[-1]
        x = np.arange(len(rows), dtype=float)
        slope = float(np.polyfit(x, rows["negative_share"].to_numpy(dtype=float), 1)[0])
        found.append({
            "level": level, "key": str(key), "first_week": first["week"], "last_week": last["week"],
            "first_negative_share": round(float(first["negative_share"]), 4),
            "last_negative_share": round(float(last["negative_share"]), 4),
            "change": round(float(last["negative_share"] - first["negative_share"]), 4),
            "slope_per_week": round(slope, 4), "weeks": int(len(rows)), "last_week_reviews": int(last["reviews"]),
        })  # fmt: skip
    found.sort(key=lambda m: -abs(m["change"]))
    return found[:top]
