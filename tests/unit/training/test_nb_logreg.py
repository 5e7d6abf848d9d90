"""NB-LR (include/models/tfidf.py's NBLogisticRegression): the folded plain-sklearn model is NB-LR itself.

- its probabilities equal a one-vs-rest logistic regression fitted on the ratio-scaled features,
  computed here from the formula (sigmoid per class, normalised), not by the model;
- the saved pipeline loads and scores in a fresh interpreter that has only sklearn (no module of ours);
- explain.py's term contributions plus the intercept are each class's logit, three classes or two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from reviewflow import contract
from reviewflow.training.predictor import _entry_point, explain_module
from tools import sample_data

tfidf = _entry_point("tfidf")
explain = explain_module()
SPEC = {"features": "word+char", "clf": "nb-logreg", "C": 2.0}


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], np.ndarray]:
    raw = sample_data.generate_reviews(1200, seed=5, start_index=3_300_000)
    texts = contract.model_text(raw["Title"], raw["Review Text"])
    y = raw["Rating"].astype(int).map(lambda r: 0 if r <= 2 else 1 if r == 3 else 2).to_numpy()
    return texts, y


def nb_pipeline(texts, y) -> Pipeline:
    features = tfidf.make_features("word+char", 2)
    clf = tfidf.make_classifier(SPEC, 13).fit(features.fit_transform(texts), y)
    return Pipeline([("features", features), ("clf", clf)])


def by_formula(x, y, x_new, classes) -> np.ndarray:
    """NB-LR from its definition: per class, LR on x * r_k; sigmoid scores normalised over classes."""
    x = sp.csr_matrix(x)
    scores = []
    for k in classes:
        pos = np.asarray(x[y == k].sum(axis=0)).ravel() + 1.0  # alpha = 1
        neg = np.asarray(x[y != k].sum(axis=0)).ravel() + 1.0
        r = np.log(pos / pos.sum()) - np.log(neg / neg.sum())
        lr = LogisticRegression(C=SPEC["C"], class_weight="balanced", max_iter=2000, random_state=13)
        lr.fit(x.multiply(r).tocsr(), (y == k).astype(int))
        scores.append(expit(x_new.multiply(r).tocsr() @ lr.coef_[0] + lr.intercept_[0]))
    s = np.column_stack(scores)
    return s / s.sum(axis=1, keepdims=True)


def test_the_folded_model_is_nb_lr(corpus):
    texts, y = corpus
    train, new = slice(0, 900), slice(900, None)
    pipeline = nb_pipeline(texts[train], y[train])
    features = pipeline.named_steps["features"]
    expected = by_formula(features.transform(texts[train]), y[train], features.transform(texts[new]), [0, 1, 2])
    got = pipeline.predict_proba(texts[new])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert list(pipeline.classes_) == [0, 1, 2]
    assert (got.argmax(axis=1) == y[new]).mean() > 0.5  # it learned something on held-out rows


def test_the_saved_model_scores_in_a_fresh_process_with_only_sklearn(corpus, tmp_path):
    texts, y = corpus
    pipeline = nb_pipeline(texts[:900], y[:900])
    joblib.dump(pipeline, tmp_path / "model.joblib", compress=3)
    some = texts[900:960]
    (tmp_path / "texts.json").write_text(json.dumps(some))
    code = (
        "import json, sys, joblib; m = joblib.load('model.joblib'); "
        "assert not [n for n in sys.modules if n in ('tfidf', 'model_io', 'fast_vectorizers', 'reviewflow')]; "
        "print(json.dumps(m.predict_proba(json.load(open('texts.json'))).tolist()))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(np.array(json.loads(out.stdout)), pipeline.predict_proba(some), rtol=0, atol=1e-12)


@pytest.mark.parametrize("classes", [(0, 1, 2), (0, 2)], ids=["three classes", "two classes"])
def test_contributions_plus_intercept_are_each_class_logit(corpus, classes):
    texts, y = corpus
    keep = np.isin(y, classes)
    texts, y = [t for t, k in zip(texts, keep, strict=True) if k], y[keep]
    pipeline = nb_pipeline(texts[:700], y[:700])
    some = texts[700:900]
    logits = pipeline.decision_function(some)
    if logits.ndim == 1:  # two classes: the score of classes_[1]; classes_[0]'s is its negative
        logits = np.column_stack([-logits, logits])
    for column, k in enumerate(classes):
        contributions, intercepts = explain.tfidf_contributions(pipeline, some, np.full(len(some), k))
        total = np.asarray(contributions.sum(axis=1)).ravel() + intercepts
        np.testing.assert_allclose(total, logits[:, column], rtol=0, atol=1e-9)
    predicted = pipeline.predict(some)
    reasons = explain.tfidf_reasons(pipeline, some, predicted, top=3)
    assert len(reasons) == len(some) and any(reasons)
