"""Synthetic reviews in the Kaggle "Women's E-Commerce Clothing Reviews" schema, and a loader.

`generate_reviews` makes realistic rows: the real category sets (department -> class), text
whose sentiment follows the rating (mixed and lukewarm reviews, some label noise), rating mixes
that differ by department and age (so bias reports have something to find), and on request a
share of dirty rows of every kind the validation suite must catch. `write_landing` spreads
generated rows over days of landing folders; `load_csv_to_landing` does the same with a user's
CSV (such as the real Kaggle file) for a backfill demo.

    python -m tools.sample_data generate --lake lake --days 3 --rows-per-day 2000
    python -m tools.sample_data load --csv reviews.csv --lake lake --days 7
"""

from __future__ import annotations

import argparse
import csv
import io
from datetime import date, timedelta

import numpy as np
import pandas as pd

from reviewflow.storage.lake import get_lake

COLUMNS = ["", "Clothing ID", "Age", "Title", "Review Text", "Rating", "Recommended IND",
           "Positive Feedback Count", "Division Name", "Department Name", "Class Name"]  # fmt: skip
DIRTY_KINDS = (
    "empty_text", "rating_out_of_range", "rating_not_numeric", "impossible_age", "duplicate_id",
    "negative_feedback", "broken_quoting", "mojibake", "unknown_category",
)  # fmt: skip

# department -> (share of rows, classes with weights); shares as in the real data
DEPARTMENTS = {
    "Tops": (0.45, {"Knits": 0.46, "Blouses": 0.30, "Sweaters": 0.13, "Fine gauge": 0.11}),
    "Dresses": (0.27, {"Dresses": 1.0}),
    "Bottoms": (0.16, {"Pants": 0.36, "Jeans": 0.31, "Skirts": 0.25, "Shorts": 0.08}),
    "Intimate": (
        0.075,
        {
            "Lounge": 0.38,
            "Swim": 0.2,
            "Sleep": 0.11,
            "Legwear": 0.1,
            "Intimates": 0.1,
            "Layering": 0.08,
            "Casual bottoms": 0.02,
            "Chemises": 0.01,
        },
    ),  # fmt: skip
    "Jackets": (0.043, {"Jackets": 0.68, "Outerwear": 0.32}),
    "Trend": (0.012, {"Trend": 1.0}),
}
# rating shares (1..5) per department: Trend and Jackets rate lower, Intimate is lukewarm
RATING_MIX = {
    "Tops": [0.04, 0.07, 0.13, 0.22, 0.54], "Dresses": [0.03, 0.07, 0.12, 0.21, 0.57],
    "Bottoms": [0.03, 0.05, 0.10, 0.21, 0.61], "Intimate": [0.03, 0.06, 0.20, 0.25, 0.46],
    "Jackets": [0.08, 0.12, 0.14, 0.21, 0.45], "Trend": [0.14, 0.16, 0.18, 0.20, 0.32],
}  # fmt: skip
AGE_SHIFT = [(0, 30, -0.45), (30, 45, 0.0), (45, 65, 0.1), (65, 120, 0.35)]  # rating nudges by age band

GARMENT = {"Knits": "top", "Blouses": "blouse", "Sweaters": "sweater", "Fine gauge": "sweater", "Dresses": "dress",
           "Pants": "pants", "Jeans": "jeans", "Skirts": "skirt", "Shorts": "shorts", "Lounge": "lounge set",
           "Swim": "swimsuit", "Sleep": "pajamas", "Legwear": "leggings", "Intimates": "bralette",
           "Layering": "cami", "Casual bottoms": "joggers", "Chemises": "chemise", "Jackets": "jacket",
           "Outerwear": "coat", "Trend": "piece"}  # fmt: skip
POSITIVE = [
    "I love this {g}!", "The fabric is soft and feels luxurious.", "Fits perfectly, true to size.",
    "The color is even prettier in person.", "Great quality for the price.", "I get compliments every time I wear it.",
    "So comfortable I want it in every color.", "Flattering cut and drapes beautifully.",
    "Washed well and kept its shape.", "Highly recommend, it is my new favorite {g}.",
    "The details are lovely and well made.", "Perfect for work or the weekend.",
]  # fmt: skip
NEGATIVE = [
    "Very disappointed with this {g}.", "The fabric is thin and cheap looking.", "Runs way too small, had to return it.",
    "The color looked nothing like the picture.", "Poor quality, it fell apart after one wash.",
    "Unflattering and boxy on me.", "Itchy material, could not wear it for long.", "Way overpriced for what you get.",
    "The seams were already coming loose.", "Sadly this is going back.", "Huge and shapeless, not as pictured.",
]  # fmt: skip
NEUTRAL = [
    "It is okay, nothing special.", "The {g} is fine but not what I expected.", "Decent, though the sizing is a bit off.",
    "Pretty color but the fabric is just average.", "I might keep it, still undecided.", "Not bad, not great.",
    "It works for lounging around the house.", "Fit is fine, length is a little odd on me.",
]  # fmt: skip
MIXED = [
    "Love the color but the fabric is thin.", "Beautiful design, but it runs large.",
    "Great fit, but the material wrinkles easily.", "Soft and cozy, though it pills after a few washes.",
]  # fmt: skip
TITLES = {1: ["Disappointed", "Returned", "Poor quality", "Not for me"], 2: ["Meh", "Not as pictured", "Too small"],
          3: ["Okay", "Mixed feelings", "Just fine", "Cute but"], 4: ["Nice", "Pretty", "Good buy", "Cute"],
          5: ["Love it!", "Perfect", "Gorgeous", "Must have", "Great {g}"]}  # fmt: skip
BROKEN_TITLE = "Nice, but"  # to_csv_bytes writes this title unquoted: one field too many
MOJIBAKE = {"'": "â€™", "é": "Ã©", '"': "â€œ"}


def _sentences(rng: np.random.Generator, bank: list[str], k: int, garment: str) -> list[str]:
    return [bank[i].format(g=garment) for i in rng.choice(len(bank), size=min(k, len(bank)), replace=False)]


def _review_text(rng: np.random.Generator, rating: int, garment: str) -> str:
    n = int(rng.integers(1, 7))
    if rng.random() < 0.05:  # label noise: text that disagrees with the rating
        rating = 6 - rating
    if rating >= 4:
        parts = _sentences(rng, POSITIVE, n, garment)
        if rating == 4 and rng.random() < 0.4:
            parts.append(MIXED[int(rng.integers(len(MIXED)))])
    elif rating == 3:
        parts = _sentences(rng, NEUTRAL, max(1, n - 1), garment) + (
            [MIXED[int(rng.integers(len(MIXED)))]] if rng.random() < 0.6 else []
        )
    else:
        parts = _sentences(rng, NEGATIVE, n, garment)
    rng.shuffle(parts)
    text = " ".join(parts)
    if rng.random() < 0.08:  # the real data has paragraphs
        text = text.replace(". ", ".\n", 1)
    return text


def generate_reviews(
    n_rows: int, seed: int = 0, dirty_share: float = 0.0, start_index: int = 0, with_labels: bool = False
) -> pd.DataFrame:
    """`n_rows` synthetic reviews; `dirty_share` of them made dirty (kinds in `_dirty_kind`)."""
    rng = np.random.default_rng(seed)
    depts = list(DEPARTMENTS)
    dept = rng.choice(depts, size=n_rows, p=np.array([DEPARTMENTS[d][0] for d in depts]) / sum(
        DEPARTMENTS[d][0] for d in depts))  # fmt: skip
    classes = np.empty(n_rows, dtype=object)
    ratings = np.empty(n_rows, dtype=np.int64)
    ages = np.clip(rng.normal(43, 12, n_rows).round(), 18, 99).astype(np.int64)
    for d in depts:
        idx = np.flatnonzero(dept == d)
        names, weights = zip(*DEPARTMENTS[d][1].items(), strict=True)
        classes[idx] = rng.choice(names, size=len(idx), p=np.array(weights) / sum(weights))
        ratings[idx] = rng.choice([1, 2, 3, 4, 5], size=len(idx), p=RATING_MIX[d])
    for low, high, shift in AGE_SHIFT:  # move ratings up or down a star by age band
        idx = np.flatnonzero((ages >= low) & (ages < high))
        nudge = rng.random(len(idx)) < abs(shift)
        ratings[idx[nudge]] = np.clip(ratings[idx[nudge]] + int(np.sign(shift)), 1, 5)
    division = np.where(
        dept == "Intimate", "Initmates", np.where(rng.random(n_rows) < 0.37, "General Petite", "General")
    )
    recommended = np.where(ratings >= 4, rng.random(n_rows) < 0.97, np.where(ratings == 3, rng.random(n_rows) < 0.45,
                                                                            rng.random(n_rows) < 0.05)).astype(int)  # fmt: skip
    garments = [GARMENT[c] for c in classes]
    texts = [_review_text(rng, int(r), g) for r, g in zip(ratings, garments, strict=True)]
    titles = [
        "" if rng.random() < 0.15 else TITLES[int(r)][int(rng.integers(len(TITLES[int(r)])))].format(g=g)
        for r, g in zip(ratings, garments, strict=True)
    ]
    frame = pd.DataFrame(
        {
            "": np.arange(start_index, start_index + n_rows),
            "Clothing ID": rng.integers(0, 1206, n_rows),
            "Age": ages,
            "Title": titles,
            "Review Text": texts,
            "Rating": ratings,
            "Recommended IND": recommended,
            "Positive Feedback Count": np.minimum(rng.geometric(0.35, n_rows) - 1, 120),
            "Division Name": division,
            "Department Name": dept,
            "Class Name": classes,
        }
    ).astype(object)
    kinds = pd.Series([None] * n_rows, dtype=object)
    if dirty_share > 0:
        dirty = rng.choice(n_rows, size=int(round(n_rows * dirty_share)), replace=False)
        for i, row in enumerate(sorted(dirty)):
            kind = DIRTY_KINDS[i % len(DIRTY_KINDS)]
            kinds[row] = kind
            _make_dirty(frame, int(row), kind, rng)
    if with_labels:
        frame["_dirty_kind"] = kinds
    return frame


def _make_dirty(frame: pd.DataFrame, row: int, kind: str, rng: np.random.Generator) -> None:
    col = frame.columns.get_loc
    if kind == "empty_text":
        frame.iat[row, col("Review Text")] = "" if rng.random() < 0.5 else "   "
    elif kind == "rating_out_of_range":
        frame.iat[row, col("Rating")] = int(rng.choice([0, 6, 7, -1]))
    elif kind == "rating_not_numeric":
        frame.iat[row, col("Rating")] = str(rng.choice(["five", "4.5", "n/a"]))
    elif kind == "impossible_age":
        frame.iat[row, col("Age")] = int(rng.choice([0, 5, 150, 250]))
    elif kind == "duplicate_id":
        frame.iat[row, 0] = frame.iat[row - 1 if row else row + 1, 0]
    elif kind == "negative_feedback":
        frame.iat[row, col("Positive Feedback Count")] = -int(rng.integers(1, 10))
    elif kind == "mojibake":
        text = frame.iat[row, col("Review Text")].replace("I ", "I'm told ", 1) + " Très chic, it's lovely."
        for good, bad in MOJIBAKE.items():
            text = text.replace(good, bad)
        frame.iat[row, col("Review Text")] = text
    elif kind == "unknown_category":
        frame.iat[row, col("Department Name")] = "Accessories"
    elif kind == "broken_quoting":
        frame.iat[row, col("Title")] = BROKEN_TITLE


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The Kaggle CSV shape: a header, then exactly one CSV record per row of ``frame``.

    Every field is quoted as the csv module quotes it (multi-line review texts included), so
    Python's ``csv.reader`` reads N records of 11 fields from N rows, with one deliberate exception:
    a `broken_quoting` row (title ``"Nice, but"``) has its title written unquoted. It is still
    exactly **one** record (its other fields are quoted properly, so a multi-line text stays inside
    it), but a malformed one of **12 fields**: the unquoted comma splits the title in two. So a file
    of N rows, B of them broken_quoting, holds N records: N - B of 11 fields and B of 12.
    """
    out = io.StringIO()
    # One writer for every record. Its line terminator must be "\n": the csv module quotes a field
    # holding a character of the terminator, so this is what quotes the multi-line review texts.
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in frame[COLUMNS].itertuples(index=False, name=None):
        values = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in row]
        if values[3] == BROKEN_TITLE:
            out.write(",".join(values[:4]) + ",")  # the unquoted title: the one deliberate fault
            writer.writerow(values[4:])  # the rest of the record, quoted as always
        else:
            writer.writerow(values)
    return out.getvalue().encode("utf-8")


def _days(start: str, days: int) -> list[str]:
    first = date.fromisoformat(start)
    return [(first + timedelta(days=i)).isoformat() for i in range(days)]


def write_landing(
    lake_root: str, days: int, rows_per_day: int, start: str = "2024-01-01", seed: int = 0,
    dirty_share: float = 0.02, formats: tuple[str, ...] = ("csv",),
) -> dict[str, list[str]]:  # fmt: skip
    """Generated reviews in landing/reviews/dt=.../ for `days` days from `start`; {dt: [keys]}."""
    lake = get_lake(lake_root)
    written: dict[str, list[str]] = {}
    for i, dt in enumerate(_days(start, days)):
        frame = generate_reviews(rows_per_day, seed=seed * 10_000 + i, dirty_share=dirty_share,
                                 start_index=i * rows_per_day, with_labels=True)  # fmt: skip
        key = f"landing/reviews/dt={dt}/reviews-{dt}-0.csv"
        lake.write_bytes(key, to_csv_bytes(frame))
        written[dt] = [key]
        extra = generate_reviews(max(rows_per_day // 10, 1), seed=seed * 10_000 + i + 5000,
                                 start_index=10_000_000 + i * rows_per_day).rename(columns={"": "Unnamed: 0"})  # fmt: skip
        if "jsonl" in formats:
            key = f"landing/reviews/dt={dt}/reviews-{dt}-1.jsonl"
            lake.write_bytes(key, extra.to_json(orient="records", lines=True).encode())
            written[dt].append(key)
        if "parquet" in formats:
            buf = io.BytesIO()
            extra.assign(**{"Unnamed: 0": extra["Unnamed: 0"] + 5_000_000}).astype(str).to_parquet(buf, index=False)
            key = f"landing/reviews/dt={dt}/reviews-{dt}-2.parquet"
            lake.write_bytes(key, buf.getvalue())
            written[dt].append(key)
    return written


def load_csv_to_landing(csv_path: str, lake_root: str, days: int, start: str = "2024-01-01") -> dict[str, list[str]]:
    """Split a Kaggle-schema CSV into `days` contiguous chunks, one landing file per day."""
    from pathlib import Path

    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    lake = get_lake(lake_root)
    stem = Path(csv_path).stem
    written = {}
    for dt, chunk in zip(_days(start, days), np.array_split(np.arange(len(frame)), days), strict=True):
        key = f"landing/reviews/dt={dt}/{stem}-{dt}.csv"
        lake.write_bytes(key, frame.iloc[chunk].to_csv(index=False).encode("utf-8"))
        written[dt] = [key]
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.sample_data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generated reviews into landing")
    gen.add_argument("--rows-per-day", type=int, default=2000)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--dirty-share", type=float, default=0.02)
    gen.add_argument("--formats", default="csv", help="comma-separated: csv,jsonl,parquet")
    load = sub.add_parser("load", help="a Kaggle-schema CSV spread over landing days")
    load.add_argument("--csv", required=True)
    for p in (gen, load):
        p.add_argument("--lake", required=True)
        p.add_argument("--days", type=int, default=3)
        p.add_argument("--start", default="2024-01-01")
    args = parser.parse_args(argv)
    if args.command == "generate":
        written = write_landing(args.lake, args.days, args.rows_per_day, args.start, args.seed, args.dirty_share,
                                tuple(args.formats.split(",")))  # fmt: skip
    else:
        written = load_csv_to_landing(args.csv, args.lake, args.days, args.start)
    for dt, keys in written.items():
        print(f"{dt}: {', '.join(keys)}")


if __name__ == "__main__":
    main()
