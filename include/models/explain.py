"""Why a model predicts what it predicts: global terms and per-review reasons (no Airflow, no reviewflow).

- ``tfidf_global_terms(pipeline, top)``: per class the features with the largest positive weight
  (the linear classifier's coefficients): the model report's global importance.
- ``tfidf_contributions`` / ``tfidf_reasons(pipeline, texts, predicted, top)``: for each text the
  features that pushed its predicted class. For a linear model the decision score of class k is
  ``intercept[k] + sum_t coef[k, t] * x[t]`` (x: the tf-idf vector), so the contribution of
  feature t is ``coef[k, t] * x[t]``: exact, and one sparse product for the whole batch. A
  ``FeatureUnion`` (word + char_wb n-grams) is walked part by part for the feature names (its
  ``transformer_weights`` are in x already: the union's transform applies them); word features show the term (``runs small``), character features the
  quoted n-gram with its padding spaces (``' sma'``: a word starting "sma").
- ``bert_reasons(model, tokenizer, texts, predicted, top, max_rows)``: token attributions for a
  transformer classifier by integrated gradients on the word-embedding layer (captum's
  ``LayerIntegratedGradients``; baseline: every non-special token replaced by the pad token),
  word pieces summed into the words of the text. The attributions of a row add up (up to the
  integral's error, small ``n_steps``) to logit(text) - logit(baseline) of the predicted class.

Reasons are signed contributions to the predicted class's score (logit): ``+`` pushed towards the
predicted class, ``-`` away from it (towards another class: why the model hesitated), the
largest by absolute value first. ``format_reasons`` writes them as ``love (+0.12); returned (-0.33)``.

``predicted`` names classes as the classifier's ``classes_`` do (the project's models: the class
indices 0/1/2 = negative/neutral/positive, i.e. the argmax of the (n, 3) probabilities).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np

CLASS_NAMES = ["negative", "neutral", "positive"]
LABELS = [-1, 0, 1]

Reasons = list[tuple[str, float]]


# -- TF-IDF (any sklearn Pipeline of vectorizers and a linear classifier) --------------------


class LinearParts:
    """A fitted text pipeline as x -> coef @ x + intercept: transform, feature names, coef, intercept."""

    def __init__(self, pipeline):
        from sklearn.pipeline import Pipeline

        if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
            raise TypeError(f"expected a fitted sklearn Pipeline (features, classifier), got {type(pipeline).__name__}")
        self.features = pipeline[:-1]
        self.classes = np.asarray(pipeline.steps[-1][1].classes_)
        coef, intercept = _linear_weights(pipeline.steps[-1][1])
        self.names = _feature_names(pipeline.steps[-2][1])
        if coef.shape[1] != len(self.names):
            raise ValueError(f"{coef.shape[1]} coefficients but {len(self.names)} feature names")
        self.coef, self.intercept = coef, intercept

    def rows_of(self, predicted: Sequence) -> np.ndarray:
        """The coef row of each predicted class."""
        predicted = np.asarray(predicted)
        position = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(self.classes)}
        try:
            return np.array([position[p.item() if hasattr(p, "item") else p] for p in predicted], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(
                f"predicted class {exc.args[0]!r} is not one of the model's classes {self.classes.tolist()}"
            ) from None

    def class_names(self) -> list[str]:
        """The classes as words: labels -1/0/1 when the model uses them, else indices 0/1/2."""
        values = [int(c) for c in self.classes]
        if -1 in values:
            return [CLASS_NAMES[LABELS.index(v)] for v in values]
        return [CLASS_NAMES[v] if 0 <= v < len(CLASS_NAMES) else str(v) for v in values]


def _linear_weights(clf) -> tuple[np.ndarray, np.ndarray]:
    """(coef (n_classes, n_features), intercept (n_classes,)) of a linear classifier.

    A binary model's single row is the score of classes_[1]; class 0 gets its negative (what
    the decision is between). A calibrated LinearSVC (CalibratedClassifierCV) averages its
    folds' linear models: the reasons then explain the mean decision score before calibration,
    an approximation of the calibrated probabilities (a monotone map of each fold's score). A
    one-vs-rest model (NB-LR) has a binary model per class: row k is class k's own logit, exact.
    """
    if hasattr(clf, "calibrated_classifiers_"):
        parts = [_linear_weights(c.estimator) for c in clf.calibrated_classifiers_]
        return np.mean([p[0] for p in parts], axis=0), np.mean([p[1] for p in parts], axis=0)
    from sklearn.multiclass import OneVsRestClassifier

    if isinstance(clf, OneVsRestClassifier):  # NB-LR: a binary linear model per class
        if len(clf.estimators_) == 1:  # two classes: one binary model
            return _linear_weights(clf.estimators_[0])
        parts = [_linear_weights(e) for e in clf.estimators_]  # row 1 of each: its class's score
        return np.vstack([c[1] for c, _ in parts]), np.array([i[1] for _, i in parts])
    if not hasattr(clf, "coef_"):
        raise TypeError(f"{type(clf).__name__} is not a linear model (no coef_): no exact term contributions")
    coef = clf.coef_
    coef = coef.toarray() if hasattr(coef, "toarray") else np.asarray(coef, dtype="float64")
    intercept = np.broadcast_to(np.asarray(clf.intercept_, dtype="float64"), (coef.shape[0],)).copy()
    if coef.shape[0] == 1 and len(clf.classes_) == 2:
        coef, intercept = np.vstack([-coef, coef]), np.array([-intercept[0], intercept[0]])
    return coef, intercept


def _feature_names(features) -> np.ndarray:
    """Display names for the columns a vectorizer or a FeatureUnion of them produces."""
    from sklearn.pipeline import FeatureUnion

    if isinstance(features, FeatureUnion):
        parts = [_feature_names(t) for _, t in features.transformer_list if t not in ("drop", None)]
        return np.concatenate(parts) if parts else np.array([], dtype=object)
    names = np.asarray(features.get_feature_names_out(), dtype=object)
    if str(getattr(features, "analyzer", "word")).startswith("char"):
        names = np.array([f"'{n}'" for n in names], dtype=object)  # quoted: the padding spaces show
    return names


_PARTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def linear_parts(pipeline) -> LinearParts:
    """``LinearParts`` of a pipeline, built once per fitted pipeline object (feature names are costly)."""
    parts = _PARTS.get(pipeline)
    if parts is None:
        parts = _PARTS[pipeline] = LinearParts(pipeline)
    return parts


def tfidf_global_terms(pipeline, top: int = 15) -> dict[str, Reasons]:
    """Per class (by name) the ``top`` features with the largest positive coefficient, largest first."""
    parts = linear_parts(pipeline)
    out = {}
    for name, row in zip(parts.class_names(), parts.coef, strict=True):
        k = min(top, row.size)
        best = np.argpartition(-row, k - 1)[:k] if k else np.array([], dtype=np.int64)
        best = best[np.argsort(-row[best], kind="stable")]
        out[name] = [(str(parts.names[i]), float(row[i])) for i in best if row[i] > 0]
    return out


def tfidf_contributions(pipeline, texts: Sequence[str], predicted: Sequence):
    """(contributions, intercepts): a CSR matrix (n, n_features) of coef[pred_i, t] * x_i[t], and
    each row's intercept; row sums + intercepts = the decision score of the predicted class."""
    import scipy.sparse as sp

    parts = linear_parts(pipeline)
    rows = parts.rows_of(predicted)
    texts = list(texts)
    if len(rows) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(rows)} predicted classes")
    x = sp.csr_matrix(parts.features.transform(texts), dtype="float64")
    row_of_entry = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    data = x.data * parts.coef[rows[row_of_entry], x.indices]  # one gather for the whole batch
    return sp.csr_matrix((data, x.indices, x.indptr), shape=x.shape), parts.intercept[rows]


def tfidf_reasons(pipeline, texts: Sequence[str], predicted: Sequence, top: int = 5) -> list[Reasons]:
    """For each text the ``top`` features by |contribution| to its predicted class, signed, largest first."""
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    contrib, _ = tfidf_contributions(pipeline, texts, predicted)
    names = linear_parts(pipeline).names
    n = contrib.shape[0]
    row_of_entry = np.repeat(np.arange(n), np.diff(contrib.indptr))
    order = np.lexsort((-np.abs(contrib.data), row_of_entry))  # by row, then largest |contribution|
    rank = np.arange(order.size) - contrib.indptr[row_of_entry[order]]  # position within its row
    keep = order[(rank < top) & (contrib.data[order] != 0)]
    out: list[Reasons] = [[] for _ in range(n)]
    for row, feature, value in zip(row_of_entry[keep], contrib.indices[keep], contrib.data[keep], strict=True):
        out[row].append((str(names[feature]), float(value)))
    return out


# -- transformers (BERT-like sequence classifiers) --------------------------------------------


def bert_reasons(
    model,
    tokenizer,
    texts: Sequence[str],
    predicted: Sequence[int],
    top: int = 5,
    max_rows: int = 200,
    max_length: int = 128,
    n_steps: int = 16,
    batch_size: int = 8,
) -> list[Reasons | None]:
    """Word attributions (integrated gradients) for the first ``max_rows`` texts; None for the rest.

    ``predicted``: the class index per text (the logit column). Each word's attribution is the sum
    of its word pieces' (summed over the embedding dimensions); special tokens are part of the
    baseline, so they get none. Cost: ``n_steps`` forward and backward passes per text.
    """
    import torch
    from captum.attr import LayerIntegratedGradients

    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("bert_reasons needs a fast tokenizer (word ids and character offsets)")
    texts, predicted = list(texts), [int(p) for p in predicted]
    if len(texts) != len(predicted):
        raise ValueError(f"{len(texts)} texts but {len(predicted)} predicted classes")
    chosen = max(0, min(max_rows, len(texts)))
    out: list[Reasons | None] = [None] * len(texts)
    if chosen == 0:
        return out
    device = next(model.parameters()).device
    model.eval()

    def forward(input_ids, attention_mask):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits.float()

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = [t or "" for t in texts[:chosen]]
    lengths = [len(ids) for ids in tokenizer(rows, truncation=True, max_length=max_length)["input_ids"]]
    order = np.argsort(lengths, kind="stable")  # batches of similar length: little padding to pay for
    for start in range(0, chosen, batch_size):
        picked = order[start : start + batch_size]
        chunk = [rows[i] for i in picked]
        enc = tokenizer(chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt",
                        return_offsets_mapping=True, return_special_tokens_mask=True)  # fmt: skip
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        baseline = torch.where(enc["special_tokens_mask"].to(device).bool(), ids, torch.full_like(ids, pad))
        target = torch.tensor([predicted[i] for i in picked], device=device)
        attributions = lig.attribute(ids, baselines=baseline, additional_forward_args=(mask,), target=target,
                                     n_steps=n_steps, internal_batch_size=batch_size * n_steps)  # fmt: skip
        per_token = attributions.sum(dim=-1).detach().float().cpu().numpy()
        offsets = enc["offset_mapping"].numpy()
        for i, row in enumerate(picked):
            out[row] = _words(chunk[i], enc.word_ids(i), offsets[i], per_token[i], top)
    return out


def _words(text: str, word_ids: list[int | None], offsets: np.ndarray, scores: np.ndarray, top: int) -> Reasons:
    """Word pieces summed into words (their text span in ``text``), top by |attribution|."""
    words = np.array([-1 if w is None else w for w in word_ids])
    real = words >= 0
    if not real.any():
        return []
    ids = words[real]
    total = np.bincount(ids, weights=scores[real])
    first = np.full(total.size, np.iinfo(np.int64).max)
    last = np.zeros(total.size, dtype=np.int64)
    np.minimum.at(first, ids, offsets[real, 0])
    np.maximum.at(last, ids, offsets[real, 1])
    present = np.flatnonzero(np.bincount(ids, minlength=total.size) > 0)
    best = present[np.argsort(-np.abs(total[present]), kind="stable")][:top]
    return [(text[first[w] : last[w]], float(total[w])) for w in best]


# -- text -------------------------------------------------------------------------------------


def format_reasons(reasons: Reasons | None, digits: int = 2) -> str:
    """``term (+0.12); other (-0.33)``; empty for None or no reasons."""
    return "; ".join(f"{term} ({value:+.{digits}f})" for term, value in reasons or [])
