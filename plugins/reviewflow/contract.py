"""The review data contract: columns, known categories, labels, facets and age bands, the model text.

SQL rendering (include/sql), validation, training, evaluation and the reports all read these, so a
value (the missing age band, a label name) is spelled the same everywhere.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# Source files follow the Kaggle "Women's E-Commerce Clothing Reviews" schema; the first column is
# the source's row index with no header (pandas reads it as "Unnamed: 0").
# snake_case names used from validation on; "" (the index) becomes source_row_id.
RENAMES = {"": "source_row_id", "unnamed_0": "source_row_id", "unnamed:_0": "source_row_id"}

REQUIRED_COLUMNS = [
    "source_row_id",
    "clothing_id",
    "age",
    "title",
    "review_text",
    "rating",
    "recommended_ind",
    "positive_feedback_count",
    "division_name",
    "department_name",
    "class_name",
]
INTEGER_COLUMNS = ["source_row_id", "clothing_id", "age", "rating", "recommended_ind", "positive_feedback_count"]
TEXT_COLUMNS = ["title", "review_text", "division_name", "department_name", "class_name"]

# Curated table columns, in order (plus the partition column dt).
CURATED_COLUMNS = [
    "review_id",
    *REQUIRED_COLUMNS,
    "sentiment",
    "source_file",
    "ingest_run",
]

# Lineage written beside them: the physical line of the source file where the record starts.
LINEAGE_COLUMNS = ["source_line"]

DIVISIONS = ["General", "General Petite", "Initmates"]  # "Initmates": the source's own typo
DEPARTMENTS = ["Tops", "Dresses", "Bottoms", "Intimate", "Jackets", "Trend"]
CLASSES = [
    "Dresses", "Knits", "Blouses", "Sweaters", "Pants", "Fine gauge", "Jeans", "Skirts", "Lounge",
    "Jackets", "Swim", "Outerwear", "Shorts", "Sleep", "Legwear", "Intimates", "Layering", "Trend",
    "Casual bottoms", "Chemises",
]  # fmt: skip

MIN_AGE, MAX_AGE = 13, 110

# Sentiment labels: -1 negative, 0 neutral, 1 positive (DESIGN.md), derived from the rating.
LABELS = (-1, 0, 1)
LABEL_NAMES = {-1: "negative", 0: "neutral", 1: "positive"}
CLASS_NAMES = [LABEL_NAMES[label] for label in LABELS]
LABEL_BY_NAME = {name: label for label, name in LABEL_NAMES.items()}

# Facets the bias and fairness metrics are computed over; a missing value is its own facet value.
FACETS = ("department_name", "class_name", "division_name", "age_band")
MISSING = "(missing)"
# Age bands: [low, high) in years; the last one is open-ended.
AGE_BANDS = ((None, 25, "<25"), (25, 35, "25-34"), (35, 45, "35-44"), (45, 55, "45-54"), (55, 65, "55-64"),
             (65, None, "65+"))  # fmt: skip
AGE_BAND_NAMES = (*(name for _, _, name in AGE_BANDS), MISSING)


def snake_case(name: str) -> str:
    name = re.sub(r"[^0-9A-Za-z]+", "_", str(name).strip()).strip("_").lower()
    return RENAMES.get(name, name) if name else "source_row_id"


def sentiment_from_rating(rating: int) -> int:
    """-1 for ratings 1-2, 0 for 3, 1 for 4-5 (DESIGN.md)."""
    return -1 if rating <= 2 else (0 if rating == 3 else 1)


def sentiment_sql(rating: str) -> str:
    """``sentiment_from_rating`` as a SQL expression over the column ``rating``."""
    return f"CASE WHEN {rating} <= 2 THEN -1 WHEN {rating} = 3 THEN 0 ELSE 1 END"


def age_band(age) -> str:
    """The age band of one age (``MISSING`` when there is none)."""
    try:
        if age is None or age != age:  # None, NaN
            return MISSING
    except TypeError:  # pd.NA
        return MISSING
    for low, high, name in AGE_BANDS:
        if (low is None or age >= low) and (high is None or age < high):
            return name
    return MISSING


def age_band_sql(age: str) -> str:
    """``age_band`` as a SQL CASE over the column ``age`` (the common subset of DuckDB and Trino)."""
    whens = [f"WHEN {age} < {high} THEN '{name}'" for _, high, name in AGE_BANDS if high is not None]
    return f"CASE WHEN {age} IS NULL THEN '{MISSING}' {' '.join(whens)} ELSE '{AGE_BANDS[-1][2]}' END"


def model_text(title: pd.Series, review_text: pd.Series) -> list[str]:
    """The model input: ``title. review_text`` (just the text when there is no title), for training and scoring."""
    titles = title.fillna("").astype(str).str.strip()
    texts = review_text.fillna("").astype(str).str.strip()
    return [f"{t}. {x}" if t else x for t, x in zip(titles, texts, strict=True)]
