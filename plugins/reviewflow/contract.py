"""The review data contract: source (Kaggle) columns, curated columns, known categories."""

from __future__ import annotations

import re

# Source columns in the Kaggle "Women's E-Commerce Clothing Reviews" schema. The first column
# is the source's row index; it has no header (pandas reads it as "Unnamed: 0").
SOURCE_COLUMNS = [
    "",
    "Clothing ID",
    "Age",
    "Title",
    "Review Text",
    "Rating",
    "Recommended IND",
    "Positive Feedback Count",
    "Division Name",
    "Department Name",
    "Class Name",
]

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
SENTIMENT_LABELS = {-1: "negative", 0: "neutral", 1: "positive"}


def snake_case(name: str) -> str:
    name = re.sub(r"[^0-9A-Za-z]+", "_", str(name).strip()).strip("_").lower()
    return RENAMES.get(name, name) if name else "source_row_id"


def sentiment_from_rating(rating: int) -> int:
    """-1 for ratings 1-2, 0 for 3, 1 for 4-5 (DESIGN.md)."""
    return -1 if rating <= 2 else (0 if rating == 3 else 1)
