"""The faster TF-IDF counting (include/models/fast_vectorizers.py) gives sklearn's features, on hostile text too.

The truth is sklearn's own TfidfVectorizer on the same fitted vocabulary; the scoring path is checked
in a fresh process (a model file saved as training saves it, loaded as the score task loads it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp

from tools import sample_data

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "include" / "models"
sys.path.insert(0, str(MODELS))

import fast_vectorizers  # noqa: E402
import tfidf  # noqa: E402

HOSTILE = [
    "",
    "   \t\n  ",
    "Love it!!! Love it!!! love IT",
    "don't buy. Don't. DON'T  -- it's 'fine'",
    "non\u00a0breaking\u00a0spaces and\u2028line\u2029separators\u3000ideographic",
    "control\x1cseparators\x1d\x1e\x1fhere\x0bvertical\x0cfeed\r\nwindows",
    "caf\u00e9 vs cafe\u0301 vs CAF\u00c9 na\u00efve r\u00e9sum\u00e9",
    "mojibake: itâ€™s tooâ€¦ small Ã© Ã¨",
    "\u0130stanbul DOTTED \u0130 lowercases to two characters",
    "emoji \U0001f44d\U0001f3fd \U0001f92e and \u2764\ufe0f fits",
    "\u4e2d\u6587\u8bc4\u8bba \u5f88\u597d \u304a\u3059\u3059\u3081 \ud55c\uad6d\uc5b4",
    "\u05e2\u05d1\u05e8\u05d9\u05ea \u0627\u0644\u0639\u0631\u0628\u064a\u0629 right-to-left",
    "zero\u200bwidth\u200bjoined\u200dwords",
    "x" * 5000 + " " + "ab" * 3000,
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "12 34 5-6 7.8 9,0 $1,000 50% #1",
    "!!! ??? ... --- ***",
    "lone surrogate \ud800 in the text",
    "the the the the the dress dress the",
    "word\ttab\twords\nnew\nlines\n\n\nand   runs",
]


@pytest.fixture(scope="module")
def fitted():
    """word+char features fitted on generated reviews + the hostile texts (so their n-grams are in the vocabulary)."""
    raw = sample_data.generate_reviews(600, seed=21, start_index=2_200_000)
    texts = [f"{t}. {r}" for t, r in zip(raw["Title"].fillna(""), raw["Review Text"].fillna(""), strict=True)]
    union = tfidf.make_features("word+char", min_df=1)
    union.fit(texts + HOSTILE)
    return union, texts


def _plain_and_fast(union):
    import copy

    plain = dict(union.transformer_list)
    fast = dict(fast_vectorizers.accelerate(copy.deepcopy(union)).transformer_list)
    return plain, fast


def _same(expected, got, exact: bool):
    assert type(got) is type(expected) and got.shape == expected.shape and got.dtype == expected.dtype
    got = got.copy()
    got.sort_indices()  # char counts come out with unsorted columns (nothing downstream needs the order)
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    if exact:
        np.testing.assert_array_equal(got.data, expected.data)
    else:  # the l2 norm adds the same terms in another order
        np.testing.assert_allclose(got.data, expected.data, rtol=1e-14, atol=0)


def test_features_equal_sklearns_on_hostile_and_unseen_text(fitted):
    union, texts = fitted
    plain, fast = _plain_and_fast(union)
    assert type(fast["word"]) is fast_vectorizers.CachedWordVectorizer
    assert type(fast["char"]) is fast_vectorizers.CachedCharWbVectorizer
    unseen = ["Brand new words: zipperless, overpriced-ish, sooo comfy", "cafe\u0301\u0301 \u0130\u0130"]
    docs = HOSTILE + texts[:200] + unseen + HOSTILE[::-1]
    for name in ("word", "char"):
        expected = plain[name].transform(docs)
        assert expected.nnz > 0
        _same(expected, fast[name].transform(docs), exact=name == "word")
        # again in other batches (the caches now hold every word): the same rows
        again = sp.vstack([fast[name].transform(docs[i : i + 7]) for i in range(0, len(docs), 7)]).tocsr()
        _same(expected, again, exact=name == "word")


def test_caches_that_fill_up_start_again_and_stay_exact(fitted, monkeypatch):
    union, texts = fitted
    plain, fast = _plain_and_fast(union)
    monkeypatch.setattr(fast_vectorizers, "CACHE_ENTRIES", 50)
    for start in range(0, 300, 60):
        batch = texts[start : start + 60]
        for name in ("word", "char"):
            _same(plain[name].transform(batch), fast[name].transform(batch), exact=name == "word")
    assert len(fast["char"]._word_row) < 50 + 60 * 200  # it was reset on the way


def test_bad_documents_fail_as_sklearn_fails(fitted):
    union, _ = fitted
    plain, fast = _plain_and_fast(union)
    for name in ("word", "char"):
        bad_inputs = (
            ([None], AttributeError),
            ([np.nan], ValueError),
            ("a plain string", ValueError),
            ([], ValueError),
        )
        for bad, error in bad_inputs:
            with pytest.raises(error):
                plain[name].transform(bad)
            with pytest.raises(error):
                fast[name].transform(bad)


SCORE = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import tfidf
    model = tfidf.load_model(sys.argv[2])
    texts = json.loads(open(sys.argv[3]).read())
    kinds = [type(t).__name__ for _, t in model.named_steps["features"].transformer_list]
    print(json.dumps({"kinds": kinds, "serial": tfidf.predict_proba(sys.argv[2], texts, n_jobs=1).tolist(),
                      "parallel": tfidf.predict_proba(sys.argv[2], texts, n_jobs=2).tolist()}))
    """
)


def test_the_score_path_in_a_fresh_process_gives_the_plain_models_probabilities(fitted, tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    union, texts = fitted
    labels = np.arange(len(texts)) % 3
    model = Pipeline([("features", union), ("clf", LogisticRegression(max_iter=500))])
    model.fit(texts, labels)
    joblib.dump(model, tmp_path / tfidf.MODEL_FILE, compress=3)
    saved = joblib.load(tmp_path / tfidf.MODEL_FILE)  # the file stays a plain sklearn pipeline
    assert all(type(t) is TfidfVectorizer for _, t in saved.named_steps["features"].transformer_list)
    docs = (HOSTILE + texts) * 4  # over PARALLEL_MIN_TEXTS: the worker path too
    (tmp_path / "texts.json").write_text(json.dumps(docs))
    expected = tfidf.full_proba(saved, docs)
    done = subprocess.run(
        [sys.executable, "-c", SCORE, str(MODELS), str(tmp_path), str(tmp_path / "texts.json")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["kinds"] == ["CachedWordVectorizer", "CachedCharWbVectorizer"]
    for key in ("serial", "parallel"):
        got = np.array(out[key])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
