"""Exact, faster ``transform`` for fitted TF-IDF vectorizers: distinct words and word pairs are looked up once.

sklearn's analysers build every n-gram string of every review in Python: with word 1-2-grams and
char_wb 2-5-grams that is nearly all of a TF-IDF model's scoring time (bench/bench_scoring.py).
Both analysers are sums over pieces that repeat across reviews:

- ``char_wb`` n-grams never cross a word boundary, so a review's counts are the sum of its words'
  counts: one sparse row of n-gram counts per distinct word (filled on first sight with sklearn's
  own analyser), and a batch's counts are one sparse product (reviews x words) @ (words x n-grams);
- word n-grams (up to 2) are a review's tokens and adjacent token pairs: each distinct token and
  pair is resolved to its feature column once, and a batch's counts are one sparse sum in numpy.

Decoding, preprocessing (lowercase, accents) and tokenising are sklearn's own functions, so the
counts, the TF-IDF matrix and every probability equal sklearn's (tests/unit/training/
test_fast_vectorizers.py checks them on hostile text); only the time differs.

Used at load time only (``accelerate``): saved models stay plain sklearn pipelines, so an
environment without this module still loads and scores them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

CACHE_ENTRIES = (
    250_000  # distinct words / pairs kept per vectorizer (char rows ~0.4 KB each: ~100 MB); past it, start again
)
_PAIR = np.int64(1 << 31)  # pair code = first token id * _PAIR + second (token ids stay below 2**31)


class _Cached(TfidfVectorizer):
    """A fitted TfidfVectorizer whose ``transform`` builds the counts from cached pieces (``_counts``)."""

    @classmethod
    def from_fitted(cls, vectorizer: TfidfVectorizer):
        fast = cls.__new__(cls)
        fast.__dict__.update(vectorizer.__dict__)
        fast._reset_cache()
        return fast

    def _reset_cache(self) -> None:
        raise NotImplementedError

    def fit(self, raw_documents, y=None):
        self._reset_cache()
        return super().fit(raw_documents, y)

    def fit_transform(self, raw_documents, y=None):
        self._reset_cache()
        return super().fit_transform(raw_documents, y)

    def transform(self, raw_documents):
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        if isinstance(raw_documents, str):
            raise ValueError("Iterable over raw text documents expected, string object received.")
        self._check_vocabulary()
        counts = self._counts(raw_documents)
        if self.binary:
            counts.data.fill(1)
        return self._tfidf.transform(counts, copy=False)


class CachedCharWbVectorizer(_Cached):
    """``analyzer="char_wb"``: counts per distinct word, summed by a sparse product."""

    def _reset_cache(self) -> None:
        self._word_row: dict[str, int] = {}
        self._word_cols: list[np.ndarray] = []
        self._word_counts: list[np.ndarray] = []

    def _row(self, word: str) -> int:
        row = self._word_row.get(word)
        return self._add_word(word) if row is None else row  # a word new to the cache twice in one review

    def _add_word(self, word: str) -> int:
        vocabulary = self.vocabulary_
        cols = [vocabulary[g] for g in self._char_wb_ngrams(word) if g in vocabulary]
        cols, counts = np.unique(np.asarray(cols, dtype=np.int32), return_counts=True)
        self._word_cols.append(cols)
        self._word_counts.append(counts.astype(self.dtype))
        self._word_row[word] = len(self._word_cols) - 1
        return self._word_row[word]

    def _counts(self, raw_documents) -> sp.csr_array:
        if len(self._word_row) > CACHE_ENTRIES:
            self._reset_cache()
        preprocess, decode, row_of = self.build_preprocessor(), self.decode, self._word_row
        words: list[int] = []
        indptr = [0]
        for doc in raw_documents:
            # the analyser's own steps: decode, preprocess (lowercase), split on whitespace
            split = preprocess(decode(doc)).split()
            rows = [row_of.get(word, -1) for word in split]
            if -1 in rows:  # first sight of a word
                rows = [row if row >= 0 else self._row(word) for word, row in zip(split, rows, strict=True)]
            words += rows
            indptr.append(len(words))
        n_docs, n_features = len(indptr) - 1, len(self.vocabulary_)
        if not words:
            return sp.csr_array((n_docs, n_features), dtype=self.dtype)
        used, local = np.unique(np.asarray(words, dtype=np.int64), return_inverse=True)
        per_doc = sp.csr_array(
            (np.ones(len(words), dtype=self.dtype), local.astype(np.int32), np.asarray(indptr, dtype=np.int32)),
            shape=(n_docs, len(used)),
        )  # fmt: skip
        cols = [self._word_cols[i] for i in used]
        lengths = np.fromiter((len(c) for c in cols), dtype=np.int64, count=len(cols))
        per_word = sp.csr_array(
            (np.concatenate([self._word_counts[i] for i in used]), np.concatenate(cols),
             np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)),
            shape=(len(used), n_features),
        )  # fmt: skip
        # each row's columns come out unique but unsorted: sorting would cost a third of the time,
        # and nothing downstream (idf, l2 norm, a linear model's dot product) depends on the order
        return (per_doc @ per_word).tocsr()


class CachedWordVectorizer(_Cached):
    """``analyzer="word"`` with n-grams up to 2: each distinct token and token pair resolved once."""

    def _reset_cache(self) -> None:
        self._token_id: dict[str, int] = {}
        self._tokens: list[str] = []
        self._unigram: list[int] = []  # token id -> feature column, -1 when not in the vocabulary
        self._pair: dict[int, int] = {}  # pair code -> feature column or -1

    def _id(self, token: str) -> int:
        found = self._token_id.get(token)
        return self._add_token(token) if found is None else found

    def _add_token(self, token: str) -> int:
        self._token_id[token] = len(self._tokens)
        self._tokens.append(token)
        self._unigram.append(self.vocabulary_.get(token, -1))
        return self._token_id[token]

    def _pair_column(self, code: int) -> int:
        column = self._pair.get(code)
        if column is None:
            first, second = divmod(code, int(_PAIR))
            column = self._pair[code] = self.vocabulary_.get(self._tokens[first] + " " + self._tokens[second], -1)
        return column

    def _counts(self, raw_documents) -> sp.csr_array:
        if len(self._tokens) > CACHE_ENTRIES or len(self._pair) > CACHE_ENTRIES:
            self._reset_cache()
        preprocess, tokenize, decode = self.build_preprocessor(), self.build_tokenizer(), self.decode
        stop = self.get_stop_words()
        min_n, max_n = self.ngram_range
        id_of = self._token_id
        ids: list[int] = []
        sizes: list[int] = []
        for doc in raw_documents:
            tokens = tokenize(preprocess(decode(doc)))  # the analyser's own steps
            if stop is not None:
                tokens = [t for t in tokens if t not in stop]
            found = [id_of.get(token, -1) for token in tokens]
            if -1 in found:  # first sight of a token
                found = [i if i >= 0 else self._id(t) for t, i in zip(tokens, found, strict=True)]
            ids += found
            sizes.append(len(tokens))
        n_docs, n_features = len(sizes), len(self.vocabulary_)
        token_ids = np.asarray(ids, dtype=np.int64)
        doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), sizes)
        rows, cols = [], []
        if min_n == 1:
            unigram = np.asarray(self._unigram, dtype=np.int64)[token_ids]
            rows.append(doc_of)
            cols.append(unigram)
        if max_n == 2 and len(token_ids) > 1:
            same_doc = doc_of[:-1] == doc_of[1:]
            codes = token_ids[:-1][same_doc] * _PAIR + token_ids[1:][same_doc]
            distinct, where = np.unique(codes, return_inverse=True)
            column = np.fromiter((self._pair_column(c) for c in distinct.tolist()), dtype=np.int64,
                                 count=len(distinct))  # fmt: skip
            rows.append(doc_of[:-1][same_doc])
            cols.append(column[where])
        row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        keep = col >= 0
        index = np.int32 if max(n_docs, n_features) < np.iinfo(np.int32).max else np.int64
        return sp.coo_array(
            (np.ones(int(keep.sum()), dtype=self.dtype), (row[keep].astype(index), col[keep].astype(index))),
            shape=(n_docs, n_features),
        ).tocsr()  # sums the repeats: the counts


def _fast(transformer):
    if type(transformer) is not TfidfVectorizer or not hasattr(transformer, "vocabulary_"):
        return transformer
    if transformer.input != "content" or callable(transformer.analyzer):
        return transformer
    if transformer.analyzer == "char_wb":
        return CachedCharWbVectorizer.from_fitted(transformer)
    if transformer.analyzer == "word" and transformer.ngram_range[1] <= 2:
        return CachedWordVectorizer.from_fitted(transformer)
    return transformer


def accelerate(model):
    """The fitted model with each plain TF-IDF vectorizer (also in a Pipeline / FeatureUnion) swapped in place."""
    for attr in ("steps", "transformer_list"):
        parts = getattr(model, attr, None)
        for i, (name, part) in enumerate(parts or []):
            parts[i] = (name, accelerate(part))
    return _fast(model)
