"""Synthetic reviews in the Kaggle "Women's E-Commerce Clothing Reviews" schema, and a loader.

`generate_reviews` makes realistic rows: the real category sets (department -> class), products
from a fixed catalogue (`catalogue`: ~1,200 Clothing IDs, each of one class, with a Zipf-like
popularity so the top products get 2-4 % of all rows), text whose sentiment follows the rating
only loosely (mixed praise + complaint, hedged and negated phrasing, ratings that disagree with
the text, short "ok" reviews), rating mixes that differ by department, product and age (so bias
reports have something to find), and on request a share of dirty rows of every kind the
validation suite must catch.

`write_landing` spreads generated rows over days of landing folders and, by default, plants
ground truth for the product-issue detector: 1-2 product incidents (`incident_schedule`) and a
slow rise of one class's negative share (`DEFAULT_TREND`); `planted_truth` / `--truth` expose
what was planted (never under the lake's landing zone). `load_csv_to_landing` does the same
with a user's CSV (such as the real Kaggle file) for a backfill demo, and can plant one incident
in it (see its docstring).

    python -m tools.sample_data generate --lake lake --days 3 --rows-per-day 2000 [--truth truth.json]
    python -m tools.sample_data generate --lake lake --days 30 --no-incidents      # clean: no incident, no trend
    python -m tools.sample_data load --csv reviews.csv --lake lake --days 30 --plant-incident --truth truth.json
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
from collections.abc import Sequence
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

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
AGE_MEAN, AGE_SD = 43, 12

# -- the product catalogue -------------------------------------------------------------------
# Products per class roughly as in the real data (the big classes have few, popular products;
# Intimate classes have many small ones): 1,206 ids, 0..1205, shuffled over classes.
PRODUCTS_PER_CLASS = {
    "Dresses": 70, "Knits": 55, "Blouses": 50, "Sweaters": 40, "Fine gauge": 40, "Pants": 55, "Jeans": 25,
    "Skirts": 40, "Shorts": 85, "Lounge": 206, "Swim": 150, "Sleep": 85, "Legwear": 50, "Intimates": 100,
    "Layering": 45, "Casual bottoms": 3, "Chemises": 2, "Jackets": 40, "Outerwear": 30, "Trend": 35,
}  # fmt: skip
CATALOGUE_SEED = 1206  # fixed: product ids mean the same thing whatever the per-day seed
ZIPF_EXPONENT, ZIPF_OFFSET = 1.3, 2.0  # popularity of the r-th product of a class ~ 1 / (r + offset) ** exponent
DAILY_VOLUME_SIGMA = 0.08  # day-to-day log-noise of each product's volume
PETITE_SHARE = 0.37

GARMENTS = {
    "Knits": ["top", "tee", "tunic", "knit top"], "Blouses": ["blouse", "shirt", "top"],
    "Sweaters": ["sweater", "cardigan", "pullover"], "Fine gauge": ["sweater", "cardigan", "knit"],
    "Dresses": ["dress", "maxi dress", "shift dress"], "Pants": ["pants", "trousers"], "Jeans": ["jeans"],
    "Skirts": ["skirt", "midi skirt"], "Shorts": ["shorts"], "Lounge": ["lounge set", "hoodie", "lounge top"],
    "Swim": ["swimsuit", "bikini"], "Sleep": ["pajamas", "robe", "sleep shirt"], "Legwear": ["leggings", "tights"],
    "Intimates": ["bralette", "bra"], "Layering": ["cami", "tank"], "Casual bottoms": ["joggers"],
    "Chemises": ["chemise", "slip"], "Jackets": ["jacket", "blazer"], "Outerwear": ["coat", "vest"],
    "Trend": ["piece", "top", "dress"],
}  # fmt: skip
GARMENT = {name: words[0] for name, words in GARMENTS.items()}  # one noun per class (kept for callers)

# -- text banks ------------------------------------------------------------------------------
# Slots: {g} garment, {fabric}, {color}, {size}, {part}, {occasion}, {height}, {weight}.
SLOTS = {
    "fabric": ["cotton", "linen", "rayon", "silk", "knit", "lace", "denim", "wool", "modal", "jersey", "chiffon",
               "velvet", "polyester", "fabric", "material"],
    "color": ["navy", "black", "ivory", "red", "olive", "blush", "grey", "mustard", "teal", "white", "coral",
              "burgundy", "pink", "green", "blue", "cream"],
    "size": ["XS", "S", "M", "L", "XL", "0", "2", "4", "6", "8", "10", "12", "14", "petite small", "petite medium"],
    "part": ["waist", "hips", "bust", "shoulders", "arms", "length", "hem", "neckline", "back", "sleeves", "chest"],
    "occasion": ["work", "a wedding", "date night", "the beach", "brunch", "travel", "the office", "weekends",
                 "a holiday party", "church", "vacation"],
    "height": ["5'0", "5'1", "5'2", "5'3", "5'4", "5'5", "5'6", "5'7", "5'8", "5'9", "5'10"],
    "weight": ["105", "110", "115", "120", "125", "130", "135", "140", "145", "150", "160", "170", "180"],
}  # fmt: skip
PRAISE = [
    "the {fabric} is soft", "the {color} is gorgeous", "the fit is great", "it is so comfortable",
    "the cut is flattering", "the quality is nice", "it looks expensive", "the length is perfect", "it drapes nicely",
    "the details are pretty", "the {color} is lovely in person", "it washes well", "the {part} fits well",
    "the style is adorable", "it's really cute", "the {fabric} feels substantial", "the {part} is flattering",
    "it's true to size", "the pattern is beautiful", "it layers well", "it's easy to dress up or down",
]  # fmt: skip
COMPLAINT = [
    "the {fabric} is thin", "it runs large", "it runs small", "the {part} is too tight", "the {part} is too loose",
    "the {fabric} wrinkles easily", "it pills after a few washes", "the {color} is duller than pictured",
    "it's see-through", "it's boxy", "the material is itchy", "it's overpriced", "the length is awkward",
    "the sizing is off", "it's a bit short", "the {fabric} feels cheap", "it's shapeless on me",
    "the cut is unflattering", "the {part} gapes", "it's too long for me", "the {fabric} is stiff",
    "the {part} is oddly placed", "it clings in the wrong places",
]  # fmt: skip
POSITIVE = [
    "I love this {g}!", "I love this {g}.", "Fits perfectly, true to size.", "The {color} is even prettier in person.",
    "Great quality for the price.", "I get compliments every time I wear it.", "So comfortable I want it in every color.",
    "Flattering cut and drapes beautifully.", "Washed well and kept its shape.", "It is my new favorite {g}.",
    "Highly recommend.", "Perfect for {occasion}.", "I wore it to {occasion} and felt great.", "I bought two.",
    "It wasn't too small at all.", "Not itchy at all.", "Not see-through, which I appreciate.", "No complaints.",
    "It doesn't wrinkle.", "Couldn't be happier.", "I can't say enough good things.", "Worth every penny.",
    "I'm so glad I ordered it.", "It's a keeper.", "Not too long, not too short.", "It doesn't cling.",
    "I will wear this a lot.", "Looks great with jeans or a skirt.",
]  # fmt: skip
NEGATIVE = [
    "Very disappointed with this {g}.", "Runs way too small, had to return it.", "It looked nothing like the picture.",
    "Poor quality for the price.", "Unflattering on me.", "Not flattering at all.", "It doesn't drape well.",
    "Not worth the price.", "I don't love the {fabric}.", "It didn't fit my {part}.", "Would not recommend.",
    "Sadly this is going back.", "Huge and shapeless, not as pictured.", "It's going back.", "What a waste.",
    "I returned it.", "It made me look frumpy.", "The {fabric} felt cheap.", "It wasn't flattering.",
    "Just not for me.", "Too bad, because I really wanted it to work.", "Way overpriced for what you get.",
    "I could not wear it for long.", "Disappointing quality.", "The stitching was coming loose.",
    "Not what I hoped for at all.",
]  # fmt: skip
HEDGE = [
    "I wanted to love this {g}.", "Not what I hoped.", "It's not bad.", "Not bad, not great.",
    "It is okay, nothing special.", "I'm on the fence about it.", "I might keep it, still undecided.",
    "It's fine for {occasion}.", "Not sure it's worth the price.", "I had high hopes.", "It's cute but not for me.",
    "Maybe it would work on someone taller.", "Just okay.", "It's fine, I guess.", "It's a nice basic.",
    "I wish it came in more colors.", "It's pretty, but I'm not sure.", "I'll probably keep it.",
    "It's not as nice as I expected, but it's wearable.", "Wait for a sale.", "Not sure how I feel about it.",
    "It's not my favorite, but it works.", "Decent for the price.", "It's fine for lounging at home.",
    "I may exchange it for another size.", "It's a little different than the photo.",
]  # fmt: skip
DESCRIPTIVE = [
    "I ordered a {size}.", "I'm {height} and about {weight} lbs.", "I usually wear a {size} and ordered my usual size.",
    "I bought it in {color}.", "I got the {color} one.", "I tried it on in the store.", "I bought this for {occasion}.",
    "It arrived quickly.", "I ordered it online.", "It's a {fabric} {g}.", "For reference, I'm {height}.",
    "I sized down.", "I sized up to a {size}.", "I have a larger {part}.", "I'm petite and ordered the {size}.",
    "The {color} is a bit darker in person.", "It has a lining.", "I wear a {size} in most brands.",
    "My sister has the same {g}.", "I saw it in the catalog.", "It comes in several colors.",
]  # fmt: skip
MIXED = [
    "{P}, but {c}.", "{C}, but {p}.", "{P}, though {c}.", "I like that {p}, but {c}.",
    "The only downside is that {c}.", "Although {c}, {p}.", "{P}; sadly {c}.", "{P}, however {c}.",
    "{C}, which is a shame because {p}.", "I wanted to love it because {p}, but {c}.",
]  # fmt: skip
SHORT = {1: ["Returned.", "No.", "Meh."], 2: ["Meh.", "ok", "Not for me."], 3: ["ok", "Fine.", "It's ok."],
         4: ["Nice.", "ok", "Cute."], 5: ["Love it", "Perfect.", "ok"]}  # fmt: skip
# sentence kinds: positive, negative, hedged, descriptive (neutral facts), mixed (praise + complaint)
KINDS = ("positive", "negative", "hedge", "descriptive", "mixed")
KIND_MIX = {
    5: [0.58, 0.03, 0.06, 0.24, 0.09],
    4: [0.44, 0.06, 0.12, 0.23, 0.15],
    3: [0.12, 0.15, 0.34, 0.18, 0.21],
    2: [0.06, 0.46, 0.18, 0.16, 0.14],
    1: [0.03, 0.60, 0.10, 0.16, 0.11],
}
DISAGREE_SHARE = 0.05  # text written as if for another rating (a 4-star complaint, a 3-star rave)
DISAGREE_AS = {5: [3, 4], 4: [2, 3, 5], 3: [2, 4, 5], 2: [1, 3, 4], 1: [2, 3]}
SHORT_SHARE = 0.04
TITLES = {1: ["Disappointed", "Returned", "Poor quality", "Not for me", "Going back"],
          2: ["Meh", "Not as pictured", "Too small", "Wanted to love", "Not flattering"],
          3: ["Okay", "Mixed feelings", "Just fine", "Cute but", "Not bad"],
          4: ["Nice", "Pretty", "Good buy", "Cute", "Nice but"], 5: ["Love it!", "Perfect", "Gorgeous", "Must have", "Great {g}"]}  # fmt: skip
GENERIC_TITLES = ["{Color} {g}", "Cute {g}", "Beautiful but", "So close", "Pretty", "Great for {occasion}", "Runs big",
                  "Runs small", "Soft", "Comfy", "Summer {g}", "Fun {g}", "Hmm", "Love the color", "Sizing"]  # fmt: skip
BROKEN_TITLE = "Nice, but"  # to_csv_bytes writes this title unquoted: one field too many
MOJIBAKE = {"'": "â€™", "é": "Ã©", '"': "â€œ"}

# -- planted incidents and trends ------------------------------------------------------------
# Each complaint: the key terms the detector should find, and sentence variants. Every variant holds
# terms[0] and at least one other term; the ordinary text banks use none of terms[0].
COMPLAINTS = {
    "zipper": {
        "terms": ["zipper", "broke", "stuck"],
        "classes": {"Dresses", "Jackets", "Outerwear", "Pants", "Jeans", "Skirts", "Shorts", "Sweaters", "Trend"},
        "sentences": [
            "The zipper broke the first time I wore it.", "The zipper got stuck halfway and then broke.",
            "Zipper broke after two wears.", "The zipper keeps getting stuck.", "Within a day the zipper broke.",
            "The zipper is stuck and I can't get it off.", "Cheap zipper, it broke when I zipped it up.",
        ],
    },
    "dye": {
        "terms": ["dye", "bled", "wash"],
        "classes": None,
        "sentences": [
            "The dye bled all over my other clothes in the wash.", "The {color} dye bled in the first wash.",
            "Dye bled onto my skin before I even washed it.", "The dye bled and ruined a load of wash.",
            "Washed it once, cold, and the dye bled everywhere.", "The dye bled onto my white jeans.",
        ],
    },
    "seam": {
        "terms": ["seam", "ripped", "split"],
        "classes": None,
        "sentences": [
            "The seam ripped the first time I sat down.", "The side seam split after one wear.",
            "A seam ripped open at the {part}.", "The seam under the arm ripped.",
            "The back seam split when I bent over.", "The seam ripped within an hour of wearing it.",
        ],
    },
    "button": {
        "terms": ["button", "fell", "off"],
        "classes": {"Blouses", "Knits", "Sweaters", "Fine gauge", "Dresses", "Jackets", "Outerwear", "Pants", "Jeans"},
        "sentences": [
            "A button fell off the first time I wore it.", "The top button fell off within an hour.",
            "The button was loose out of the package and fell off.", "Another button fell off after one wash.",
            "The button fell off and rolled under a car.", "Two days in and a button fell off.",
        ],
    },
    "shrink": {
        "terms": ["shrank", "wash", "shrunk"],
        "classes": None,
        "sentences": [
            "It shrank two sizes in the first wash.", "It shrank badly after one cold wash.",
            "It shrank so much in the wash that it's cropped now.", "I followed the care label and it still shrank.",
            "It shrank in the wash, now it looks shrunk and sad.", "It shrank after one wash on delicate.",
        ],
    },
}  # fmt: skip
INCIDENT_NEGATIVE_SHARE = 0.6  # share of 1-2 star reviews of an incident product-day (vs ~0.1 normally)
INCIDENT_MENTION = {1: 0.85, 2: 0.85, 3: 0.4, 4: 0.1, 5: 0.05}  # chance a review of an incident day names it
INCIDENT_VOLUME_BOOST = 1.6  # an incident draws reviews
BACKGROUND_COMPLAINT = 0.02  # chance an ordinary 1-2 star review names one of the complaints anyway
INCIDENT_TOP_PRODUCTS = 20
DEFAULT_TREND = {"class_name": "Sweaters", "rise": 0.15}  # its 1-2 star share rises by this, first day to last


# -- the catalogue ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _catalogue() -> pd.DataFrame:
    rng = np.random.default_rng(CATALOGUE_SEED)
    ids = rng.permutation(sum(PRODUCTS_PER_CLASS.values()))
    dept_total = sum(share for share, _ in DEPARTMENTS.values())
    rows, at = [], 0
    for dept, (dept_share, classes) in DEPARTMENTS.items():
        class_total = sum(classes.values())
        for name, class_share in classes.items():
            k = PRODUCTS_PER_CLASS[name]
            pop = 1 / (np.arange(1, k + 1) + ZIPF_OFFSET) ** ZIPF_EXPONENT
            pop = pop / pop.sum() * (dept_share / dept_total) * (class_share / class_total)
            # petite: most products are General or General Petite, some sell in both
            petite = rng.choice([0.0, 1.0, 0.5], size=k, p=[0.55, 0.29, 0.16])
            quality = np.clip(rng.lognormal(0, 0.25, k), 0.6, 1.6)  # multiplies the 1-2 star share
            for j in range(k):
                rows.append((int(ids[at + j]), dept, name, float(pop[j]), float(petite[j]), float(quality[j])))
            at += k
    frame = pd.DataFrame(rows, columns=["clothing_id", "department_name", "class_name", "weight", "petite",
                                        "quality"])  # fmt: skip
    frame.loc[frame["department_name"] == "Intimate", "petite"] = 0.0
    frame = frame.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame


def catalogue() -> pd.DataFrame:
    """The fixed product catalogue, most popular first.

    Columns: ``clothing_id`` (0..1205), ``department_name``, ``class_name`` (one per id),
    ``weight`` (expected share of all rows), ``petite`` (chance a review is "General Petite"),
    ``quality`` (multiplier of the product's 1-2 star share), ``rank`` (1 = most reviewed).
    Built from ``CATALOGUE_SEED`` only, so it is the same for every seed and day.
    """
    return _catalogue().copy()


def top_products(n: int = INCIDENT_TOP_PRODUCTS) -> list[int]:
    """The ``n`` highest-volume Clothing IDs of the catalogue, most popular first."""
    return [int(x) for x in _catalogue()["clothing_id"].head(n)]


def _systematic_counts(p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Rows per product for ``n`` rows: systematic sampling, so each count is floor or ceil of n * p."""
    edges = np.floor(np.concatenate([[0.0], np.cumsum(p / p.sum())]) * n + rng.random()).astype(np.int64)
    edges[-1] = edges[0] + n
    return np.diff(edges)


# -- text ------------------------------------------------------------------------------------


class _Text:
    """Review text from the banks; a `random.Random` seeded from the row generator (fast, deterministic)."""

    def __init__(self, rng: np.random.Generator):
        self.r = random.Random(int(rng.integers(2**62)))

    def fill(self, template: str, garment: str) -> str:
        r = self.r
        values = {k: r.choice(v) for k, v in SLOTS.items()}
        if "{p}" in template or "{P}" in template or "{c}" in template or "{C}" in template:
            p, c = r.choice(PRAISE).format(**values), r.choice(COMPLAINT).format(**values)
            values.update(p=p, P=p[0].upper() + p[1:], c=c, C=c[0].upper() + c[1:])
        values["Color"] = values["color"].capitalize()
        return template.format(g=garment, **values)

    def sentence(self, kind: str, garment: str) -> str:
        r = self.r
        if kind == "positive":
            if r.random() < 0.35:
                return self.fill("{P}." if r.random() < 0.6 else "{P} and " + r.choice(PRAISE) + ".", garment)
            return self.fill(r.choice(POSITIVE), garment)
        if kind == "negative":
            if r.random() < 0.35:
                return self.fill(r.choice(["{C}.", "Unfortunately {c}.", "{C} and " + r.choice(COMPLAINT) + "."]),
                                 garment)  # fmt: skip
            return self.fill(r.choice(NEGATIVE), garment)
        if kind == "hedge":
            return self.fill(r.choice(HEDGE), garment)
        if kind == "descriptive":
            return self.fill(r.choice(DESCRIPTIVE), garment)
        return self.fill(r.choice(MIXED), garment)

    def complaint(self, name: str, garment: str) -> str:
        return self.fill(self.r.choice(COMPLAINTS[name]["sentences"]), garment)

    def review(self, rating: int, class_name: str, complaint: str | None = None) -> str:
        r = self.r
        garment = r.choice(GARMENTS.get(class_name, ["piece"]))
        text_rating = rating
        if r.random() < DISAGREE_SHARE:
            text_rating = r.choice(DISAGREE_AS[rating])
        if r.random() < SHORT_SHARE and complaint is None:
            return r.choice(SHORT[text_rating])
        n = min(1 + int(np.clip(r.gauss(3.6, 1.6), 0, 7)), 8)
        kinds = r.choices(KINDS, weights=KIND_MIX[text_rating], k=n)
        parts = [self.sentence(k, garment) for k in kinds]
        if complaint is not None:
            parts.insert(0 if r.random() < 0.5 else r.randrange(len(parts) + 1), self.complaint(complaint, garment))
        text = " ".join(parts)
        if r.random() < 0.08:  # the real data has paragraphs
            text = text.replace(". ", ".\n", 1)
        return text

    def title(self, rating: int, garment_class: str) -> str:
        r = self.r
        u = r.random()
        if u < 0.15:
            return ""
        garment = r.choice(GARMENTS.get(garment_class, ["piece"]))
        bank = GENERIC_TITLES if u < 0.45 else TITLES[r.choice(DISAGREE_AS[rating]) if r.random() < 0.15 else rating]
        return self.fill(r.choice(bank), garment)


# -- ratings ---------------------------------------------------------------------------------


def _age_band_mass() -> list[float]:
    """P(age in each AGE_SHIFT band) for ages ~ N(AGE_MEAN, AGE_SD) rounded and clipped to 18..99."""
    cdf = lambda x: 0.5 * (1 + math.erf((x - AGE_MEAN) / (AGE_SD * math.sqrt(2))))  # noqa: E731
    return [cdf(high - 0.5) - cdf(low - 0.5) if low > 18 else cdf(high - 0.5) for low, high, _ in AGE_SHIFT]


def _quality_mix(mix: Sequence[float], quality: float) -> np.ndarray:
    p = np.array(mix, dtype=float)
    p[:2] *= quality
    return p / p.sum()


def expected_negative_share(class_name: str) -> float:
    """The expected share of 1-2 star reviews of a class in normal data (rating mix, products, ages)."""
    cat = _catalogue()
    part = cat[cat["class_name"] == class_name]
    mix = RATING_MIX[part["department_name"].iloc[0]]
    bands = _age_band_mass()
    total = 0.0
    for weight, quality in zip(part["weight"], part["quality"], strict=True):
        p = _quality_mix(mix, quality)
        share = 0.0
        for mass, (_, _, shift) in zip(bands, AGE_SHIFT, strict=True):
            # a downward nudge makes some 3s into 2s; an upward one some 2s into 3s
            share += mass * (p[0] + p[1] + (abs(shift) * p[2] if shift < 0 else -shift * p[1]))
        total += weight * share
    return float(total / part["weight"].sum())


def _trend_record(trend, start: str, days: int) -> dict | None:
    if not trend:
        return None
    spec = DEFAULT_TREND if trend is True else dict(trend)
    name = spec["class_name"]
    base = expected_negative_share(name)
    first = float(spec.get("negative_share_start", base))
    last = float(spec.get("negative_share_end", first + spec.get("rise", DEFAULT_TREND["rise"])))
    dates = _days(start, days)
    return {"class_name": name, "negative_share_start": round(first, 4), "negative_share_end": round(last, 4),
            "dates": [dates[0], dates[-1]]}  # fmt: skip


def _trend_share(trend: dict | None, day_index: int, days: int) -> dict[str, float] | None:
    if trend is None:
        return None
    t = day_index / (days - 1) if days > 1 else 0.0
    start, end = trend["negative_share_start"], trend["negative_share_end"]
    return {trend["class_name"]: start + (end - start) * t}


# -- rows ------------------------------------------------------------------------------------


def _generate(
    n_rows: int, seed: int, dirty_share: float, start_index: int, incidents: Sequence[dict] = (),
    class_negative_share: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.Series]:  # fmt: skip
    rng = np.random.default_rng(seed)
    cat = _catalogue()
    weights = cat["weight"].to_numpy() * np.exp(rng.normal(0, DAILY_VOLUME_SIGMA, len(cat)))
    by_id = {int(c): i for i, c in enumerate(cat["clothing_id"])}
    incident_of: dict[int, dict] = {}
    for incident in incidents:
        row = by_id[int(incident["clothing_id"])]
        incident_of[row] = incident
        weights[row] *= float(incident.get("volume_boost", INCIDENT_VOLUME_BOOST))
    product = rng.permutation(np.repeat(np.arange(len(cat)), _systematic_counts(weights, n_rows, rng)))
    dept = cat["department_name"].to_numpy()[product]
    classes = cat["class_name"].to_numpy()[product]
    ages = np.clip(rng.normal(AGE_MEAN, AGE_SD, n_rows).round(), 18, 99).astype(np.int64)

    # ratings: the department's mix, the product's quality, then a nudge by age band
    probs = np.array([RATING_MIX[d] for d in dept], dtype=float).reshape(n_rows, 5)
    probs[:, :2] *= cat["quality"].to_numpy()[product][:, None]
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    ratings = 1 + (rng.random(n_rows)[:, None] > cum).sum(axis=1).clip(0, 4).astype(np.int64)
    for low, high, shift in AGE_SHIFT:  # move ratings up or down a star by age band
        idx = np.flatnonzero((ages >= low) & (ages < high))
        nudge = rng.random(len(idx)) < abs(shift)
        ratings[idx[nudge]] = np.clip(ratings[idx[nudge]] + int(np.sign(shift)), 1, 5)
    # a trend: the class's 1-2 star share set to its target for the day (non-negative rows converted)
    for name, target in (class_negative_share or {}).items():
        base = expected_negative_share(name)
        idx = np.flatnonzero(classes == name)
        convert = idx[(ratings[idx] >= 3) & (rng.random(len(idx)) < max(target - base, 0.0) / (1 - base))]
        ratings[convert] = rng.choice([1, 2], size=len(convert), p=[0.45, 0.55])
    # an incident: the product's reviews that day mostly low-rated
    complaint = np.full(n_rows, None, dtype=object)
    for row, incident in incident_of.items():
        idx = np.flatnonzero(product == row)
        neg = float(incident.get("negative_share", INCIDENT_NEGATIVE_SHARE))
        mix = [neg * 0.6, neg * 0.4, (1 - neg) * 0.35, (1 - neg) * 0.3, (1 - neg) * 0.35]
        ratings[idx] = rng.choice([1, 2, 3, 4, 5], size=len(idx), p=mix)
        mention = rng.random(len(idx)) < np.array([INCIDENT_MENTION[int(r)] for r in ratings[idx]])
        complaint[idx[mention]] = incident["complaint"]
    background = np.flatnonzero((complaint == None) & (ratings <= 2) & (rng.random(n_rows) < BACKGROUND_COMPLAINT))  # noqa: E711
    complaint[background] = rng.choice(sorted(COMPLAINTS), size=len(background))

    petite = rng.random(n_rows) < cat["petite"].to_numpy()[product]
    division = np.where(dept == "Intimate", "Initmates", np.where(petite, "General Petite", "General"))
    recommended = np.where(ratings >= 4, rng.random(n_rows) < 0.97, np.where(ratings == 3, rng.random(n_rows) < 0.45,
                                                                            rng.random(n_rows) < 0.05)).astype(int)  # fmt: skip
    text = _Text(rng)
    texts = [text.review(int(r), c, k) for r, c, k in zip(ratings, classes, complaint, strict=True)]
    titles = [text.title(int(r), c) for r, c in zip(ratings, classes, strict=True)]
    frame = pd.DataFrame(
        {
            "": np.arange(start_index, start_index + n_rows),
            "Clothing ID": cat["clothing_id"].to_numpy()[product],
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
    return frame, kinds


def generate_reviews(
    n_rows: int, seed: int = 0, dirty_share: float = 0.0, start_index: int = 0, with_labels: bool = False,
    *, incidents: Sequence[dict] = (), class_negative_share: dict[str, float] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """`n_rows` synthetic reviews; `dirty_share` of them made dirty (kinds in `_dirty_kind`).

    Products come from `catalogue()` (volume by popularity, a little noise per seed). ``incidents``:
    records active on this day (as `incident_schedule` gives; ``clothing_id``, ``complaint``,
    ``negative_share``, optional ``volume_boost``): that product's reviews are mostly 1-2 stars and
    mostly name the complaint. ``class_negative_share``: {class name: share of 1-2 star reviews} for
    the day (a trend). Neither is used by default: plain normal data.
    """
    frame, kinds = _generate(n_rows, seed, dirty_share, start_index, incidents, class_negative_share)
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


# -- incidents, truth ------------------------------------------------------------------------


def incident_schedule(start: str, days: int, seed: int = 0) -> list[dict]:
    """The default planted incidents of a run of ``days`` days from ``start`` (deterministic per seed).

    None when ``days < 3``; else 1 or 2 incidents, each on a different top-20-volume product (top 5
    when ``days < 10``, so the short baseline still has the volume), with a complaint that fits its class, lasting 2-3 consecutive days inside the last third of the range
    (the last 2 days at least). Each record: ``clothing_id``, ``class_name``, ``department_name``,
    ``dates`` (YYYY-MM-DD), ``complaint`` (a key of `COMPLAINTS`), ``terms`` (its key terms, the
    first in every complaint sentence), ``negative_share`` (the planted 1-2 star share) and
    ``volume_boost`` (the product's volume multiplier on those days).
    """
    if days < 3:
        return []
    rng = np.random.default_rng([seed, days, 20240])
    # short runs have little baseline: their incidents go to the top 5 (>= 30 reviews a day at 2,000 rows)
    cat = _catalogue().head(INCIDENT_TOP_PRODUCTS if days >= 10 else 5)
    dates = _days(start, days)
    window = max(days // 3, 2)  # incident days lie in dates[days - window:]
    picked = rng.permutation(len(cat))
    out: list[dict] = []
    used: set[str] = set()
    for row in picked[: 1 + int(rng.random() < 0.5)]:
        product = cat.iloc[int(row)]
        length = min(int(rng.integers(2, 4)), window)
        first = int(rng.integers(days - window, days - length + 1))
        fits = [k for k, v in COMPLAINTS.items() if k not in used and (v["classes"] is None or product["class_name"]
                                                                       in v["classes"])]  # fmt: skip
        complaint = fits[int(rng.integers(len(fits)))]
        used.add(complaint)
        out.append({
            "clothing_id": int(product["clothing_id"]), "class_name": str(product["class_name"]),
            "department_name": str(product["department_name"]), "dates": dates[first : first + length],
            "complaint": complaint, "terms": list(COMPLAINTS[complaint]["terms"]),
            "negative_share": INCIDENT_NEGATIVE_SHARE, "volume_boost": INCIDENT_VOLUME_BOOST,
        })  # fmt: skip
    return out


class Landing(dict):
    """{dt: [landing keys]} as before, plus ``.truth``: what was planted (see `planted_truth`)."""

    truth: dict | None = None


def _resolve_incidents(incidents, start: str, days: int, seed: int) -> list[dict]:
    if isinstance(incidents, str):
        if incidents != "default":
            raise ValueError(f"incidents must be 'default', None or a list of records, not {incidents!r}")
        return incident_schedule(start, days, seed)
    return [dict(i) for i in (incidents or [])]


def _observe(frame: pd.DataFrame, dt: str, tally: dict) -> None:
    rating = pd.to_numeric(frame["Rating"], errors="coerce")
    ok = rating.between(1, 5)
    if "_dirty_kind" in frame:  # dirty rows are quarantined by ingest: not reviews of the product
        ok &= frame["_dirty_kind"].isna()
    tally["rows"][dt] = tally["rows"].get(dt, 0) + len(frame)
    for incident in tally["incidents"]:
        if dt not in incident["dates"]:
            continue
        mine = ok & (pd.to_numeric(frame["Clothing ID"], errors="coerce") == incident["clothing_id"])
        seen = incident.setdefault("observed", {}).setdefault(dt, {"reviews": 0, "negative": 0, "mentions": 0})
        seen["reviews"] += int(mine.sum())
        seen["negative"] += int((mine & (rating <= 2)).sum())
        texts = frame.loc[mine & (rating <= 2), "Review Text"].astype(str).str.lower()
        seen["mentions"] += int(texts.str.contains(incident["terms"][0], regex=False).sum())


def _plan(days: int, rows_per_day: int, start: str, seed: int, incidents, trend) -> dict:
    """The truth record of a generated run, before its rows are observed."""
    return {"generator": "tools.sample_data generate", "start": start, "days": days, "rows_per_day": rows_per_day,
            "seed": seed, "incidents": _resolve_incidents(incidents, start, days, seed),
            "trend": _trend_record(trend, start, days), "rows": {}}  # fmt: skip


def _landing_frames(truth: dict, dirty_share: float, formats: Sequence[str]):
    """Yield (dt, [(file name, frame)]) per day of the run ``truth`` plans, counting its rows into ``truth``."""
    days, rows_per_day, seed = truth["days"], truth["rows_per_day"], truth["seed"]
    for i, dt in enumerate(_days(truth["start"], days)):
        today = [x for x in truth["incidents"] if dt in x["dates"]]
        share = _trend_share(truth["trend"], i, days)
        frame, kinds = _generate(rows_per_day, seed * 10_000 + i, dirty_share, i * rows_per_day, today, share)
        frames = [(f"reviews-{dt}-0.csv", frame.assign(_dirty_kind=kinds))]
        if "jsonl" in formats or "parquet" in formats:
            extra, _ = _generate(max(rows_per_day // 10, 1), seed * 10_000 + i + 5000, 0.0,
                                 10_000_000 + i * rows_per_day, today, share)  # fmt: skip
            extra = extra.rename(columns={"": "Unnamed: 0"})
            if "jsonl" in formats:
                frames.append((f"reviews-{dt}-1.jsonl", extra))
            if "parquet" in formats:
                frames.append(
                    (f"reviews-{dt}-2.parquet", extra.assign(**{"Unnamed: 0": extra["Unnamed: 0"] + 5_000_000}))
                )
        for _, f in frames:
            _observe(f, dt, truth)
        yield dt, frames


def _check_truth_path(truth_path: str | None, lake_root: str) -> None:
    """Refuse a truth file under the lake's landing zone (ingest would read it as a review file)."""
    if not truth_path:
        return
    if truth_path.startswith("s3://") or "://" in truth_path:
        raise ValueError(f"truth file {truth_path}: write it to a local path, outside the lake's landing zone")
    if not lake_root.startswith("s3://"):
        path, landing = Path(truth_path).resolve(), (Path(lake_root) / "landing").resolve()
        if path == landing or landing in path.parents:
            raise ValueError(f"truth file {truth_path} is under the lake's landing zone: ingest would read it")


def _write_truth(truth: dict, truth_path: str, lake_root: str) -> None:
    """Write the truth JSON to a local ``truth_path``; never under the lake's landing zone."""
    _check_truth_path(truth_path, lake_root)
    path = Path(truth_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=2, sort_keys=True))


def write_landing(
    lake_root: str, days: int, rows_per_day: int, start: str = "2024-01-01", seed: int = 0,
    dirty_share: float = 0.02, formats: tuple[str, ...] = ("csv",), incidents: str | Sequence[dict] | None = "default",
    trend: bool | dict = True, truth_path: str | None = None,
) -> Landing:  # fmt: skip
    """Generated reviews in landing/reviews/dt=.../ for `days` days from `start`; {dt: [keys]}.

    ``incidents``: "default" plants `incident_schedule(start, days, seed)`; a list plants those
    records; None or [] plants none. ``trend``: True raises `DEFAULT_TREND`'s class's 1-2 star share
    linearly from the first day to the last; a dict ({class_name, negative_share_start/_end or
    rise}) another; False none. ``incidents=None, trend=False`` is incident-free normal data. The
    returned dict's ``.truth`` is `planted_truth`'s record, also written to ``truth_path`` if given.
    """
    _check_truth_path(truth_path, lake_root)
    lake = get_lake(lake_root)
    written = Landing()
    written.truth = _plan(days, rows_per_day, start, seed, incidents, trend)
    for dt, frames in _landing_frames(written.truth, dirty_share, formats):
        written[dt] = []
        for name, frame in frames:
            key = f"landing/reviews/dt={dt}/{name}"
            if name.endswith(".csv"):
                data = to_csv_bytes(frame)
            elif name.endswith(".jsonl"):
                data = frame.to_json(orient="records", lines=True).encode()
            else:
                buf = io.BytesIO()
                frame.astype(str).to_parquet(buf, index=False)
                data = buf.getvalue()
            lake.write_bytes(key, data)
            written[dt].append(key)
    if truth_path:
        _write_truth(written.truth, truth_path, lake_root)
    return written


def planted_truth(
    days: int, rows_per_day: int, start: str = "2024-01-01", seed: int = 0, dirty_share: float = 0.02,
    formats: tuple[str, ...] = ("csv",), incidents: str | Sequence[dict] | None = "default", trend: bool | dict = True,
) -> dict:  # fmt: skip
    """What `write_landing` with the same arguments plants, without writing anything.

    ``{"generator", "start", "days", "rows_per_day", "seed", "rows": {dt: rows across the day's
    files, dirty ones included}, "incidents": [incident_schedule records + "observed": {dt:
    {"reviews", "negative" (1-2 stars), "mentions" (negative texts naming terms[0])}}, counted over
    the product's clean rows], "trend":
    {"class_name", "negative_share_start", "negative_share_end", "dates": [first, last]} | None}``.
    """
    truth = _plan(days, rows_per_day, start, seed, incidents, trend)
    for _ in _landing_frames(truth, dirty_share, formats):
        pass
    return truth


# -- a user's CSV ----------------------------------------------------------------------------

PLANT_ROWS = 25  # extra low-rated reviews moved onto the incident dates
PLANT_DAYS = 3
PLANT_COMPLAINT = "zipper"
PLANT_FALLBACK = "seam"  # for a class without zippers
PLANT_MIN_REAL = 12  # the product's own reviews wanted on each incident date


def plant_incident_rows(frame: pd.DataFrame, days: int, start: str = "2024-01-01", seed: int = 0):
    """Which rows of ``frame`` go to which day, with one incident planted: (day -> row positions, frame', truth).

    See `load_csv_to_landing`. ``frame`` is read as strings; the returned frame is a copy in which the
    moved rows have their Clothing ID and Review Text changed.
    """
    if days < PLANT_DAYS:
        raise ValueError(f"planting an incident needs at least {PLANT_DAYS} days, not {days}")
    dates = _days(start, days)
    chunks = [list(c) for c in np.array_split(np.arange(len(frame)), days)]
    ids = frame["Clothing ID"].astype(str).str.strip()
    rating = pd.to_numeric(frame["Rating"], errors="coerce")
    counts = ids[ids != ""].value_counts()
    target = counts.index[0]
    class_name = frame.loc[ids == target, "Class Name"].mode().iloc[0]
    department = frame.loc[ids == target, "Department Name"].mode().iloc[0]
    rng = np.random.default_rng([seed, days, 777])
    window = max(days // 3, PLANT_DAYS)
    # real files are bursty: take the window whose days all hold >= PLANT_MIN_REAL of the product's own
    # reviews (so with the planted ones each day passes the detector's minimum), the quietest such one;
    # else the one with the busiest quietest day. Ties go by seed.
    volume = [int((ids.iloc[c] == target).sum()) for c in chunks]
    starts = [int(x) for x in rng.permutation(np.arange(days - window, days - PLANT_DAYS + 1))]

    def score(first: int) -> tuple[bool, int]:
        low, total = min(volume[first : first + PLANT_DAYS]), sum(volume[first : first + PLANT_DAYS])
        return (low >= PLANT_MIN_REAL, -total if low >= PLANT_MIN_REAL else low)

    first = max(starts, key=score)
    incident_days = list(range(first, first + PLANT_DAYS))
    on_incident_days = set(np.concatenate([chunks[d] for d in incident_days]).tolist())
    pool = np.flatnonzero(
        (frame["Class Name"] == class_name).to_numpy() & (ids != target).to_numpy() & rating.isin([1, 2]).to_numpy()
        & (frame["Review Text"].astype(str).str.strip() != "").to_numpy()
    )  # fmt: skip
    pool = np.array([p for p in pool if p not in on_incident_days], dtype=np.int64)
    moved = np.sort(rng.choice(pool, size=min(PLANT_ROWS, len(pool)), replace=False)) if len(pool) else pool
    fits = COMPLAINTS[PLANT_COMPLAINT]["classes"]
    complaint = PLANT_COMPLAINT if fits is None or class_name in fits else PLANT_FALLBACK
    out = frame.copy()
    text = _Text(rng)
    garment = GARMENT.get(class_name, "piece")
    for p in moved:
        out.iat[p, out.columns.get_loc("Clothing ID")] = target
        body = str(out.iat[p, out.columns.get_loc("Review Text")]).rstrip()
        out.iat[p, out.columns.get_loc("Review Text")] = f"{body} {text.complaint(complaint, garment)}"
    moved_set = set(moved.tolist())
    chunks = [[p for p in c if p not in moved_set] for c in chunks]
    planted: dict[str, int] = {}
    for j, share in enumerate(np.array_split(moved, PLANT_DAYS)):
        chunks[incident_days[j]].extend(int(p) for p in share)
        planted[dates[incident_days[j]]] = len(share)
    incident = {
        "clothing_id": int(target) if str(target).lstrip("-").isdigit() else str(target), "class_name": class_name,
        "department_name": department, "dates": [dates[d] for d in incident_days], "complaint": complaint,
        "terms": list(COMPLAINTS[complaint]["terms"]), "planted_rows": planted,
        "source_row_ids": [str(out.iat[int(p), 0]) for p in moved],
        "observed": {},
    }  # fmt: skip
    other = {"reviews": 0, "negative": 0}
    for d, chunk in enumerate(chunks):
        rows = out.iloc[chunk]
        mine = rows["Clothing ID"].astype(str).str.strip() == str(target)
        seen = {
            "reviews": int(mine.sum()),
            "negative": int((mine & pd.to_numeric(rows["Rating"], errors="coerce").le(2)).sum()),
        }
        if d in incident_days:
            incident["observed"][dates[d]] = seen
        else:
            other = {k: other[k] + v for k, v in seen.items()}
    incident["other_days"] = other  # the product's reviews on all the other days (its baseline)
    truth = {"generator": "tools.sample_data load", "start": start, "days": days, "incidents": [incident],
             "trend": None, "rows": {dt: len(c) for dt, c in zip(dates, chunks, strict=True)}}  # fmt: skip
    return dict(zip(dates, chunks, strict=True)), out, truth


def load_csv_to_landing(
    csv_path: str, lake_root: str, days: int, start: str = "2024-01-01", plant_incident: bool = False,
    seed: int = 0, truth_path: str | None = None,
) -> Landing:  # fmt: skip
    """Split a Kaggle-schema CSV into `days` contiguous chunks, one landing file per day.

    With ``plant_incident=True`` one product incident is planted in the real rows, so a run over
    e.g. the shared dev file spread over 30 days flags it (``load --plant-incident --truth t.json``):

    - the product is the file's highest-volume Clothing ID; its (mode) class is the incident class;
    - 3 consecutive dates inside the last third of the range: real files are bursty, so the window
      where the product already has >= 12 reviews on each date (the quietest such; ties by ``seed``),
      else the one whose quietest date is busiest;
    - up to 25 real 1-2 star reviews of the SAME class but other products, taken from the other
      days' chunks, are moved onto those dates (split 9/8/8, appended to each date's chunk), their
      Clothing ID set to the product and a complaint sentence appended to their Review Text: a
      zipper one (e.g. "The zipper broke the first time I wore it.") or, for a class without zippers
      (tops, intimates), a seam one ("The side seam split after one wear.");
    - every other row is written as is, in the contiguous day it would have had anyway: each row of
      the file is in exactly one landing file, and the row count is unchanged.

    The returned dict's ``.truth`` (None without planting) holds the incident (clothing_id, class,
    dates, complaint, terms, planted_rows per date, source_row_ids of the moved rows, observed
    counts) and the per-day row counts; it is written to ``truth_path`` when given (never under
    the lake's landing zone).
    """
    _check_truth_path(truth_path, lake_root)
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    lake = get_lake(lake_root)
    stem = Path(csv_path).stem
    written = Landing()
    if plant_incident:
        chunks, frame, truth = plant_incident_rows(frame, days, start, seed)
        truth["source"] = Path(csv_path).name
    else:
        chunks = dict(zip(_days(start, days), np.array_split(np.arange(len(frame)), days), strict=True))
        truth = None
    for dt, chunk in chunks.items():
        key = f"landing/reviews/dt={dt}/{stem}-{dt}.csv"
        lake.write_bytes(key, frame.iloc[list(chunk)].to_csv(index=False).encode("utf-8"))
        written[dt] = [key]
    written.truth = truth
    if truth is not None and truth_path:
        _write_truth(truth, truth_path, lake_root)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.sample_data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generated reviews into landing")
    gen.add_argument("--rows-per-day", type=int, default=2000)
    gen.add_argument("--dirty-share", type=float, default=0.02)
    gen.add_argument("--formats", default="csv", help="comma-separated: csv,jsonl,parquet")
    gen.add_argument("--no-incidents", action="store_true", help="plant nothing: no incident and no trend")
    gen.add_argument("--no-trend", action="store_true", help="plant the incidents but no trend")
    load = sub.add_parser("load", help="a Kaggle-schema CSV spread over landing days")
    load.add_argument("--csv", required=True)
    load.add_argument("--plant-incident", action="store_true", help="plant one product incident (see docs)")
    for p in (gen, load):
        p.add_argument("--lake", required=True)
        p.add_argument("--days", type=int, default=3)
        p.add_argument("--start", default="2024-01-01")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--truth", default=None, help="write what was planted to this JSON file (not under landing/)")
    args = parser.parse_args(argv)
    if args.command == "generate":
        written = write_landing(args.lake, args.days, args.rows_per_day, args.start, args.seed, args.dirty_share,
                                tuple(args.formats.split(",")), incidents=None if args.no_incidents else "default",
                                trend=not (args.no_incidents or args.no_trend), truth_path=args.truth)  # fmt: skip
    else:
        written = load_csv_to_landing(args.csv, args.lake, args.days, args.start, plant_incident=args.plant_incident,
                                      seed=args.seed, truth_path=args.truth)  # fmt: skip
    for dt, keys in written.items():
        print(f"{dt}: {', '.join(keys)}")
    if args.truth and written.truth is not None:
        print(f"truth: {args.truth}")


if __name__ == "__main__":
    main()
