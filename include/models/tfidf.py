"""TF-IDF baseline: a small candidate search over sklearn pipelines, best by validation macro-F1.

Runs without Airflow (a subprocess, a container or a SageMaker job)::

    python include/models/tfidf.py --dataset DATASET.parquet --output MODEL_DIR

The dataset is the parquet written by ``reviewflow.training.dataset`` (columns ``review_id``,
``text``, ``label`` in -1/0/1, ``split`` in train/validation/test). ``--dataset`` and ``--output``
may be local paths or ``s3://`` URIs. The model dir receives ``model.joblib`` (a fitted
``Pipeline``), ``leaderboard.json`` (every candidate's validation scores), ``metrics.json``,
``params.json``, ``model_meta.json`` and ``test_predictions.parquet`` / ``validation_predictions.parquet``
(review_id, label, pred, p_negative, p_neutral, p_positive) for evaluation.

Speed is part of the choice: each candidate's single-process scoring throughput on the validation
texts (as scoring runs it: with ``fast_vectorizers.py``'s exact n-gram counting, which ``load_model``
swaps in) is in the leaderboard (``scoring_reviews_per_s``), and the chosen candidate is the fastest one
within ``SPEED_TOLERANCE`` validation macro-F1 of the best (``--select best`` keeps the plain best).
Scoring (``predict_proba``) splits a large batch over ``REVIEWFLOW_TFIDF_JOBS`` processes (default 1;
2 pays only with an idle core): this process scores one part, loky workers (which load
``model.joblib`` once each) the rest; the probabilities are those of the single-process path.

Labels -1/0/1 are class indices 0/1/2 (negative/neutral/positive) inside the model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # not a package and maybe off sys.path (registry loads us by path): model_io sits here
    sys.path.insert(0, _HERE)

from model_io import (  # noqa: E402
    CLASS_NAMES,
    LABELS,
    class_proba,
    load_joblib,
    make_log,
    output_dir,
    prediction_frame,
    proba_chunk,
    read_dataset,
    scores,
    splits,
    to_index,
)

MODEL_FILE = "model.joblib"
SPEED_TOLERANCE = 0.005  # validation macro-F1 a candidate may give up for speed
PARALLEL_MIN_TEXTS = 2048  # smaller batches are scored in this process only

log = make_log("tfidf")


# -- the model ------------------------------------------------------------------------------


def candidates(grid: str) -> list[dict]:
    """The search space: feature set x classifier x regularisation (8 candidates; 2 for quick)."""
    full = [
        {"features": "word", "clf": "logreg", "C": 0.5},
        {"features": "word", "clf": "logreg", "C": 1.0},
        {"features": "word+char", "clf": "logreg", "C": 0.5},
        {"features": "word+char", "clf": "logreg", "C": 1.0},
        {"features": "word+char", "clf": "logreg", "C": 2.0},
        {"features": "word+char", "clf": "svc", "C": 0.1},
        {"features": "word+char", "clf": "nb-logreg", "C": 2.0},
        {"features": "word+char", "clf": "nb-logreg", "C": 4.0},
    ]
    return full if grid == "full" else [full[1], {"features": "word", "clf": "svc", "C": 0.1}]


def make_features(kind: str, min_df: int):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    word = TfidfVectorizer(
        analyzer="word", ngram_range=(1, 2), min_df=min_df, max_df=0.9, sublinear_tf=True, strip_accents="unicode",
        lowercase=True, token_pattern=r"(?u)\b\w[\w']*\b", max_features=200_000,
    )  # fmt: skip
    parts = [("word", word)]
    if kind == "word+char":
        char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), min_df=min_df, sublinear_tf=True, lowercase=True,
            max_features=300_000,
        )  # fmt: skip
        parts.append(("char", char))
    return FeatureUnion(parts)


def make_classifier(spec: dict, seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if spec["clf"] == "logreg":
        return LogisticRegression(C=spec["C"], class_weight="balanced", max_iter=2000, random_state=seed)
    if spec["clf"] == "nb-logreg":
        return NBLogisticRegression(C=spec["C"], seed=seed)
    svc = LinearSVC(C=spec["C"], class_weight="balanced", random_state=seed)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=3)


class NBLogisticRegression:
    """NB-LR (Wang & Manning 2012, "NBSVM" with a logistic loss), one-vs-rest: for each class k the
    features are scaled by their naive-Bayes log-count ratio r_k = log(p_k / |p_k|) - log(q_k / |q_k|)
    (p_k, q_k: the summed tf-idf of the class's and the other rows, + ``alpha``) and a balanced
    binary logistic regression is fitted on x * r_k.

    On the dev file it beats plain multinomial logistic regression on the same features (C = 2:
    validation macro-F1 0.688 vs 0.667, test 0.679 vs 0.666, the negative class most).

    ``fit`` returns a plain sklearn ``OneVsRestClassifier`` of ``LogisticRegression``s with r_k
    folded into each ``coef_`` (w_k * r_k), so the saved model needs no class of ours, scores at
    logistic regression's cost, and explain.py reads exact per-term contributions from its
    coefficients like any linear model's.
    """

    def __init__(self, C: float = 1.0, alpha: float = 1.0, seed: int = 13, max_iter: int = 2000):
        self.C, self.alpha, self.seed, self.max_iter = C, alpha, seed, max_iter

    def fit(self, x, y):
        import scipy.sparse as sp
        from sklearn.base import clone
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import LabelBinarizer

        x = sp.csr_matrix(x)
        base = LogisticRegression(C=self.C, class_weight="balanced", max_iter=self.max_iter, random_state=self.seed)
        binarizer = LabelBinarizer(sparse_output=True)
        columns = binarizer.fit_transform(y).tocsc()  # one column per class (one in all for two classes)
        estimators = []
        for j in range(columns.shape[1]):
            yk = columns[:, j].toarray().ravel().astype(int)
            p = self.alpha + np.asarray(x[yk == 1].sum(axis=0)).ravel()
            q = self.alpha + np.asarray(x[yk == 0].sum(axis=0)).ravel()
            ratio = np.log(p / p.sum()) - np.log(q / q.sum())
            lr = clone(base).fit(x @ sp.diags(ratio), yk)
            lr.coef_ = lr.coef_ * ratio  # (x * r) . w == x . (w * r): the scaling lives in the weights
            estimators.append(lr)
        ovr = OneVsRestClassifier(base)  # what OneVsRestClassifier.fit would set, with our estimators
        ovr.label_binarizer_, ovr.classes_, ovr.estimators_ = binarizer, binarizer.classes_, estimators
        ovr.n_features_in_ = x.shape[1]
        return ovr


def full_proba(model, x) -> np.ndarray:
    """(n, 3) probabilities in class order 0/1/2 even if a class was missing from training."""
    return class_proba(model, x)


def scoring_throughput(model, texts, min_texts: int = 1000, repeats: int = 3) -> float:
    """Single-process reviews/s of ``full_proba(model, ...)`` on ``texts`` (repeated up to ``min_texts``), best of ``repeats``."""
    texts = list(texts)
    if not texts:
        return 0.0
    sample = (texts * -(-min_texts // len(texts)))[: max(min_texts, len(texts))]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        full_proba(model, sample)
        best = min(best, time.perf_counter() - started)
    return round(len(sample) / max(best, 1e-9), 1)


def choose(board: list[dict], select: str = "fastest", tolerance: float = SPEED_TOLERANCE) -> dict:
    """The chosen row: the best validation macro-F1 (``best``), or the fastest scorer within ``tolerance`` of it."""
    top = max(board, key=lambda r: r["val_macro_f1"])  # first of equals: the grid's order
    if select == "best":
        return top
    near = [r for r in board if r["val_macro_f1"] >= top["val_macro_f1"] - tolerance]
    return max(near, key=lambda r: r["scoring_reviews_per_s"])


def train(
    frame: pd.DataFrame, grid: str = "full", seed: int = 13, min_df: int = 2, select: str = "fastest"
) -> tuple[object, list[dict], dict]:
    """Fit every candidate on train, score on validation; return (chosen pipeline, leaderboard, chosen spec).

    Chosen by ``choose(board, select)``: validation macro-F1 and scoring throughput, never test.
    """
    import copy

    from fast_vectorizers import accelerate
    from sklearn.pipeline import Pipeline

    parts = splits(frame)
    y_train, y_val = to_index(parts["train"]["label"]), to_index(parts["validation"]["label"])
    features: dict[str, tuple] = {}
    board, pipelines = [], []
    for spec in candidates(grid):
        started = time.monotonic()
        if spec["features"] not in features:  # vectorise once per feature set
            vec = make_features(spec["features"], min_df)
            x_train = vec.fit_transform(parts["train"]["text"])
            features[spec["features"]] = (vec, x_train, vec.transform(parts["validation"]["text"]))
        vec, x_train, x_val = features[spec["features"]]
        clf = make_classifier(spec, seed).fit(x_train, y_train)
        val = scores(y_val, full_proba(clf, x_val).argmax(axis=1))
        fit_seconds = round(time.monotonic() - started, 2)
        pipeline = Pipeline([("features", vec), ("clf", clf)])
        scorer = accelerate(copy.deepcopy(pipeline))  # timed as scoring runs it (fast_vectorizers.py)
        row = {**spec, "n_features": int(x_train.shape[1]), "val_macro_f1": val["macro_f1"],
               "val_accuracy": val["accuracy"], "fit_seconds": fit_seconds,
               "scoring_reviews_per_s": scoring_throughput(scorer, parts["validation"]["text"])}  # fmt: skip
        board.append(row)
        pipelines.append(pipeline)
        log(f"candidate {spec}: val macro-F1 {val['macro_f1']:.4f} acc {val['accuracy']:.4f} ({fit_seconds}s), "
            f"scores {row['scoring_reviews_per_s']:.0f} reviews/s")  # fmt: skip
    chosen = choose(board, select)
    model = pipelines[board.index(chosen)]
    order = sorted(range(len(board)), key=lambda i: -board[i]["val_macro_f1"])
    board = [board[i] for i in order]
    for rank, row in enumerate(board, 1):
        row["rank"] = rank
        row["chosen"] = row is chosen
    return model, board, chosen


def run(
    dataset: str, output: str, grid: str = "full", seed: int = 13, min_df: int = 2, select: str = "fastest"
) -> dict:
    import joblib
    import sklearn

    started = time.monotonic()
    frame = read_dataset(dataset)
    parts = splits(frame)
    log(f"dataset {dataset}: " + ", ".join(f"{k}={len(v)}" for k, v in parts.items()))
    model, board, spec = train(frame, grid, seed, min_df, select)
    train_seconds = time.monotonic() - started
    log(f"best: {spec}")
    metrics = {"model": "tfidf", "train_seconds": round(train_seconds, 2), "best": spec}
    preds = {}
    for name in ("validation", "test"):
        probs = full_proba(model, parts[name]["text"])
        preds[name] = prediction_frame(parts[name], probs)
        metrics[name] = scores(to_index(parts[name]["label"]), probs.argmax(axis=1))
    metrics["train_rows"] = len(parts["train"])
    params = {"grid": grid, "seed": seed, "min_df": min_df, "select": select, "best": spec, "dataset": dataset}
    with output_dir(output, log) as out:
        joblib.dump(model, out / MODEL_FILE, compress=3)
        (out / "leaderboard.json").write_text(json.dumps(board, indent=2))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (out / "params.json").write_text(json.dumps(params, indent=2))
        meta = {
            "kind": "tfidf",
            "labels": LABELS,
            "classes": CLASS_NAMES,
            "framework": f"scikit-learn {sklearn.__version__}",
        }
        (out / "model_meta.json").write_text(json.dumps(meta, indent=2))
        for name, pred in preds.items():
            pred.to_parquet(out / f"{name}_predictions.parquet", index=False)
    log(f"test macro-F1 {metrics['test']['macro_f1']:.4f} accuracy {metrics['test']['accuracy']:.4f}; "
        f"{metrics['train_seconds']}s; wrote {output}")  # fmt: skip
    return metrics


# -- scoring --------------------------------------------------------------------------------


def load_model(model_dir: str):
    """The fitted pipeline (loaded once per process), with the exact faster n-gram counting (fast_vectorizers.py)."""
    return load_joblib(str((Path(model_dir) / MODEL_FILE).resolve()))


def scoring_jobs() -> int:
    """Processes for one large batch: ``REVIEWFLOW_TFIDF_JOBS`` (default 1).

    Opt-in: a second process paid x1.2 with a core free and cost x0.7 on a busy 2-core machine
    (bench/bench_scoring.py), and a worker that shares its cores with other tasks is the usual case.
    """
    return max(1, int(os.environ.get("REVIEWFLOW_TFIDF_JOBS") or 1))


def predict_proba(model_dir: str, texts: list[str], n_jobs: int | None = None) -> np.ndarray:
    """(n, 3) probabilities (negative, neutral, positive) for ``texts``.

    A batch of ``PARALLEL_MIN_TEXTS`` or more is split over ``n_jobs`` (default ``scoring_jobs()``)
    processes: this one and loky workers, each scoring its rows with the same model file, so the
    result equals the single-process one row for row. A failed worker pool falls back to one process.
    """
    texts = list(texts)
    if len(texts) == 0:
        return np.zeros((0, 3))
    model = load_model(str(model_dir))
    n_jobs = scoring_jobs() if n_jobs is None else max(1, n_jobs)
    if n_jobs == 1 or len(texts) < PARALLEL_MIN_TEXTS:
        return full_proba(model, texts)
    from joblib.externals.loky import get_reusable_executor

    size = -(-len(texts) // n_jobs)
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    try:
        executor = get_reusable_executor(max_workers=n_jobs - 1)
        path = str((Path(model_dir) / MODEL_FILE).resolve())
        futures = [executor.submit(proba_chunk, path, chunk) for chunk in chunks[1:]]
    except Exception as exc:  # noqa: BLE001 - no pool (sandbox, no /dev/shm): score here
        log(f"no scoring workers ({exc!r}): scoring {len(texts)} texts in one process")
        return full_proba(model, texts)
    first = full_proba(model, chunks[0])
    try:
        rest = [future.result() for future in futures]
    except Exception as exc:  # noqa: BLE001 - a broken worker: the rows are scored here instead
        log(f"scoring worker failed ({exc!r}): scoring the rest in this process")
        rest = [full_proba(model, chunk) for chunk in chunks[1:]]
    return np.vstack([first, *rest])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset parquet: path or s3:// URI")
    parser.add_argument("--output", required=True, help="model dir: path or s3:// URI")
    parser.add_argument("--grid", choices=["full", "quick"], default="full")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--min-df", type=int, default=2)
    parser.add_argument(
        "--select",
        choices=["fastest", "best"],
        default="fastest",
        help=f"fastest: the fastest scorer within {SPEED_TOLERANCE} validation macro-F1 of the best",
    )
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        log(f"ignoring unknown arguments {unknown}")
    run(args.dataset, args.output, args.grid, args.seed, args.min_df, args.select)
    return 0


if __name__ == "__main__":
    sys.exit(main())
