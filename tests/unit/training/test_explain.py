"""Explanations (include/models/explain.py): exact TF-IDF term contributions, global terms, BERT attributions."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline

from reviewflow import contract
from reviewflow.training.predictor import _entry_point, explain_module, load_predictor
from tools import sample_data

explain = explain_module()
PLANTED = {0: "zorblax", 2: "flumpish"}  # made-up words: one only in negative, one only in positive reviews


def planted_corpus(n: int = 1500, seed: int = 21) -> tuple[list[str], np.ndarray]:
    """Generated reviews (class index 0/1/2 from the rating) with a planted word in a third of two classes."""
    raw = sample_data.generate_reviews(n, seed=seed, start_index=2_100_000)
    texts = contract.model_text(raw["Title"], raw["Review Text"])
    y = raw["Rating"].astype(int).map(lambda r: 0 if r <= 2 else 1 if r == 3 else 2).to_numpy()
    texts = [
        f"{t} {PLANTED[c]}" if c in PLANTED and i % 3 == 0 else t for i, (t, c) in enumerate(zip(texts, y, strict=True))
    ]
    return texts, y


@pytest.fixture(scope="module")
def corpus():
    return planted_corpus()


@pytest.fixture(scope="module")
def champion_shape(corpus):
    """The TF-IDF champion's shape: tfidf.py's word + char_wb FeatureUnion and its logistic regression."""
    tfidf = _entry_point("tfidf")
    texts, y = corpus
    spec = {"features": "word+char", "clf": "logreg", "C": 1.0}
    pipeline = Pipeline([("features", tfidf.make_features("word+char", 2)), ("clf", tfidf.make_classifier(spec, 13))])
    return pipeline.fit(texts, y)


KNOWN = ["Nice color but the seams came apart zorblax", "Fits well, soft fabric flumpish", "It is ok I guess."]


def decision_of_predicted(pipeline, texts, predicted):
    scores = pipeline.decision_function(texts)
    if scores.ndim == 1:  # binary: the score of classes_[1]; classes_[0]'s is its negative
        scores = np.column_stack([-scores, scores])
    column = np.searchsorted(pipeline.classes_, predicted)
    return scores[np.arange(len(texts)), column]


@pytest.mark.parametrize("which", ["predicted", "every class"])
def test_contributions_plus_intercept_are_the_decision_score(champion_shape, corpus, which):
    texts = corpus[0][:300] + KNOWN
    predicted = champion_shape.predict(texts)
    classes = [predicted] if which == "predicted" else [np.full(len(texts), c) for c in (0, 1, 2)]
    for chosen in classes:
        contributions, intercepts = explain.tfidf_contributions(champion_shape, texts, chosen)
        total = np.asarray(contributions.sum(axis=1)).ravel() + intercepts
        # sklearn's own decision function: an independent computation of the same score
        np.testing.assert_allclose(total, decision_of_predicted(champion_shape, texts, chosen), rtol=0, atol=1e-9)


def test_feature_union_weights_and_a_binary_model_stay_exact(corpus):
    texts, y = corpus
    binary = y != 1
    union = FeatureUnion([("word", TfidfVectorizer(min_df=2)), ("char", TfidfVectorizer(analyzer="char_wb",
                          ngram_range=(2, 4), min_df=2))], transformer_weights={"word": 1.0, "char": 0.3})  # fmt: skip
    pipeline = Pipeline([("features", union), ("clf", LogisticRegression(max_iter=1000))])
    pipeline.fit([t for t, b in zip(texts, binary, strict=True) if b], y[binary])
    some = texts[:200]
    for chosen in (pipeline.predict(some), np.full(len(some), 0), np.full(len(some), 2)):
        contributions, intercepts = explain.tfidf_contributions(pipeline, some, chosen)
        total = np.asarray(contributions.sum(axis=1)).ravel() + intercepts
        np.testing.assert_allclose(total, decision_of_predicted(pipeline, some, chosen), rtol=0, atol=1e-9)


def test_the_planted_words_of_a_known_text_come_out_top(champion_shape):
    predicted = champion_shape.predict(KNOWN)
    assert predicted[:2].tolist() == [0, 2]
    reasons = explain.tfidf_reasons(champion_shape, KNOWN, predicted, top=5)
    for word, found in zip(["zorblax", "flumpish"], reasons[:2], strict=True):
        assert len(found) == 5
        assert abs(found[0][1]) >= abs(found[-1][1])  # largest first
        assert found[0][0] == word and found[0][1] > 0, found  # the word feature itself, towards the class
        values = [abs(v) for _, v in found]
        assert values == sorted(values, reverse=True), found
    assert reasons[2] and all(np.isfinite(v) for _, v in reasons[2])


def test_reasons_are_signed_against_the_predicted_class(champion_shape):
    """Asked for the positive class, a negative review's planted word pushes away from it (negative sign)."""
    found = explain.tfidf_reasons(champion_shape, [KNOWN[0]], [2], top=10)[0]
    assert dict(found)["zorblax"] < 0
    text = explain.format_reasons(found[:2])
    assert re.fullmatch(r"[^;]+ \([+-]\d+\.\d\d\); [^;]+ \([+-]\d+\.\d\d\)", text), text


def test_global_terms_rank_the_planted_words_per_class(champion_shape):
    terms = explain.tfidf_global_terms(champion_shape, top=40)
    assert list(terms) == ["negative", "neutral", "positive"]
    for name, rows in terms.items():
        weights = [w for _, w in rows]
        assert len(rows) == 40 and weights == sorted(weights, reverse=True) and min(weights) > 0, name
    assert "zorblax" in dict(terms["negative"]) and "flumpish" in dict(terms["positive"])
    assert "zorblax" not in dict(terms["positive"])
    assert any(t.startswith("'") for t, _ in terms["negative"])  # the char features are shown as quoted n-grams


def test_a_model_with_labels_minus_one_to_one_names_its_classes_right(corpus):
    texts, y = corpus
    labels = np.asarray(contract.LABELS)[y]
    pipeline = make_pipeline(TfidfVectorizer(min_df=2), LogisticRegression(max_iter=1000)).fit(texts, labels)
    terms = explain.tfidf_global_terms(pipeline, top=20)
    assert "zorblax" in dict(terms["negative"]) and "flumpish" in dict(terms["positive"])
    found = explain.tfidf_reasons(pipeline, [KNOWN[1]], [1], top=3)[0]  # -1/0/1 as the model's classes_
    assert found and found[0][0] == "flumpish"


def test_bad_input_gets_a_clear_error(champion_shape, corpus):
    with pytest.raises(ValueError, match=r"predicted class 7 is not one of the model's classes \[0, 1, 2\]"):
        explain.tfidf_reasons(champion_shape, ["x"], [7])
    with pytest.raises(ValueError, match="2 texts but 1 predicted classes"):
        explain.tfidf_reasons(champion_shape, ["x", "y"], [0])
    with pytest.raises(ValueError, match="top must be at least 1"):
        explain.tfidf_reasons(champion_shape, ["x"], [0], top=0)
    forest = make_pipeline(TfidfVectorizer(), RandomForestClassifier(n_estimators=3)).fit(
        corpus[0][:50], corpus[1][:50]
    )
    with pytest.raises(TypeError, match="RandomForestClassifier is not a linear model"):
        explain.tfidf_global_terms(forest)
    with pytest.raises(TypeError, match="expected a fitted sklearn Pipeline"):
        explain.tfidf_reasons(LogisticRegression(), ["x"], [0])


def test_an_empty_text_has_no_reasons(champion_shape):
    assert explain.tfidf_reasons(champion_shape, ["", KNOWN[0]], [1, 0])[0] == []
    assert explain.format_reasons([]) == explain.format_reasons(None) == ""


def test_the_registry_predictor_explains_a_saved_tfidf_model(tmp_path, corpus):
    """tfidf.py's own training run, loaded the way scoring loads it: predict.explain gives the queue's strings."""
    import pandas as pd

    texts, y = corpus
    frame = pd.DataFrame({"review_id": [f"r{i}" for i in range(len(texts))], "text": texts,
                          "label": np.asarray(contract.LABELS)[y],
                          "split": ["train"] * 1200 + ["validation"] * 150 + ["test"] * 150})  # fmt: skip
    frame.to_parquet(tmp_path / "dataset.parquet", index=False)
    _entry_point("tfidf").run(str(tmp_path / "dataset.parquet"), str(tmp_path / "model"), grid="quick")
    predict = load_predictor({"kind": "tfidf", "model_uri": str(tmp_path / "model"), "model_name": "tfidf",
                              "version": "v1"})  # fmt: skip
    predicted = predict(KNOWN).argmax(axis=1)
    strings = predict.explain(KNOWN, predicted, 3)
    assert len(strings) == 3 and all(strings)
    assert strings[0].startswith("zorblax (+") and strings[1].startswith("flumpish (+"), strings
    assert all(len(s.split("; ")) <= 3 for s in strings)


# -- BERT: integrated gradients with captum --------------------------------------------------


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """all-MiniLM-L6-v2 (the installed offline copy) with a fresh 3-class head, saved as bert.py saves a model."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    source = _entry_point("bert").default_model()
    out = tmp_path_factory.mktemp("bert") / "model"
    AutoModelForSequenceClassification.from_pretrained(source, num_labels=3).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    (out / "model_meta.json").write_text(json.dumps({"kind": "bert", "max_length": 64}))
    return str(out)


@pytest.mark.slow  # torch, a transformer and integrated gradients on CPU (~8 s; ~1 s a review of ~40 tokens)
def test_bert_attributions_add_up_merge_word_pieces_and_stop_at_max_rows(bert_dir):
    import torch

    tokenizer, model, device, max_length = _entry_point("bert").load_model(bert_dir)
    texts = ["Unbelievably scratchy fabric, returned it.", "Love it!", "Never arrived."]
    assert len(tokenizer.tokenize("Unbelievably")) > 1  # a word of several pieces
    with torch.no_grad():
        enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt",
                        return_special_tokens_mask=True)  # fmt: skip
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        baseline_ids = torch.where(enc["special_tokens_mask"].bool(), enc["input_ids"],
                                   torch.full_like(enc["input_ids"], tokenizer.pad_token_id))  # fmt: skip
        baseline = model(input_ids=baseline_ids, attention_mask=enc["attention_mask"]).logits
    predicted = logits.argmax(-1).tolist()
    found = explain.bert_reasons(model, tokenizer, texts, predicted, top=50, max_rows=2, max_length=max_length,
                                 n_steps=32)  # fmt: skip
    assert found[2] is None  # past max_rows: not explained
    for i in range(2):
        words = [w for w, _ in found[i]]
        assert all(w in texts[i] for w in words), words
        assert i != 0 or "Unbelievably" in words  # the pieces are merged back into the word
        gap = float(logits[i, predicted[i]] - baseline[i, predicted[i]])
        total = sum(v for _, v in found[i])  # completeness: the attributions add up to the logit gap
        assert total == pytest.approx(gap, abs=0.02 + 0.05 * abs(gap)), (total, gap)
    predict = load_predictor({"kind": "bert", "model_uri": bert_dir, "model_name": "bert", "version": "v1"})
    strings = predict.explain(texts, predicted, 2, 1)
    assert strings[0].count(" (") == 2 and strings[1:] == ["", ""]
    # a later batch of the same queue: the rows before it count towards max_rows
    later = predict.explain(texts[1:], predicted[1:], 2, 2, 1)
    assert later[0] and later[1] == ""
    assert predict.explain(texts, predicted, 2, 2, 2) == ["", "", ""]
