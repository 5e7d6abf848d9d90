"""Human labels: corrected sentiment coming back from the review queue.

People drop CSV files (``review_id,label``; label as -1/0/1 or negative/neutral/positive) into
``landing/labels/``. Each file is validated with GX; bad rows go to ``quarantine/labels/`` with
their rules; the valid ones are merged into ``labels/reviews/labels.parquet`` (a later file wins
for the same review), which the training data prefers over rating-derived sentiment. The merge
is rebuilt from every label file each time, so reruns give the same result.
"""

from __future__ import annotations

import io
import logging
from pathlib import PurePosixPath

import pandas as pd

from reviewflow.lake import Lake, write_parquet

log = logging.getLogger(__name__)

LANDING_LABELS = "landing/labels/"
LABELS_KEY = "labels/reviews/labels.parquet"
QUARANTINE_LABELS = "quarantine/labels/"
NAMES = {"negative": -1, "neutral": 0, "positive": 1, "-1": -1, "0": 0, "1": 1}


def labels_suite():
    import great_expectations as gx
    from great_expectations import expectations as gxe

    suite = gx.ExpectationSuite(name="labels_contract")
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="review_id", meta={"rule": "review_id present"}))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[-1, 0, 1], meta={"rule": "label is a sentiment"})
    )
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="label", meta={"rule": "label filled in"}))
    return suite


def parse_labels(data: bytes) -> pd.DataFrame:
    raw = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    if not {"review_id", "label"} <= set(raw.columns):
        raise ValueError(f"a label file needs columns review_id and label; found {list(raw.columns)}")
    typed = pd.DataFrame(
        {
            "review_id": raw["review_id"].str.strip().replace("", None),
            "label": raw["label"].str.strip().str.lower().map(NAMES).astype("Int64"),
            "raw_label": raw["label"],
        }
    )
    return typed


def collect_labels(lake: Lake) -> dict:
    """Validate every label file and rebuild the merged labels table."""
    from reviewflow.validate import validate_frame

    merged, files = [], []
    for key in sorted(lake.list(LANDING_LABELS)):
        name = PurePosixPath(key).name
        try:
            typed = parse_labels(lake.read_bytes(key))
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            lake.write_bytes(f"{QUARANTINE_LABELS}files/{name}", lake.read_bytes(key))
            log.error("%s: quarantined whole: %s", key, exc)
            files.append({"file": name, "rows_in": None, "valid": 0, "quarantined": None, "reason": str(exc)})
            continue
        failures = validate_frame(typed, f"labels-{PurePosixPath(name).stem}", suite_factory=labels_suite)["row_failures"]
        bad = typed.index.isin(list(failures))
        if bad.any():
            rejected = typed[bad].assign(
                reasons=[failures[i] for i in typed.index[bad]], row_number=typed.index[bad] + 1
            )
            write_parquet(lake, f"{QUARANTINE_LABELS}rows/{PurePosixPath(name).stem}.parquet", rejected)
            log.warning("%s: %d label rows quarantined", name, int(bad.sum()))
        good = typed[~bad].assign(label_file=name)
        merged.append(good[["review_id", "label", "label_file"]])
        files.append({"file": name, "rows_in": len(typed), "valid": int((~bad).sum()), "quarantined": int(bad.sum())})
    if not merged:
        return {"labels": 0, "files": files}
    labels = pd.concat(merged, ignore_index=True).drop_duplicates("review_id", keep="last")
    labels["label"] = labels["label"].astype("int64")
    write_parquet(lake, LABELS_KEY, labels.reset_index(drop=True))
    return {"labels": int(len(labels)), "files": files, "uri": lake.uri(LABELS_KEY)}
