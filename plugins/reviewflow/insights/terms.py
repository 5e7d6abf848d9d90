"""What people complain about: terms over-represented in D's negative reviews of a key.

Weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008,
"Fightin' Words", eq. 16-22). Corpus i: D's predicted-negative reviews of the key; corpus j: the
key's baseline reviews (without the last 3 days, see insights.tasks.terms_reference); the prior:
both together at half weight (the key's own vocabulary, so a word common for the product, "dress"
for a dress, is not a finding). For term w with counts y_i, y_j and prior
alpha_w (alpha_0 its sum):

    delta_w = log((y_iw + a_w) / (n_i + a_0 - y_iw - a_w)) - log((y_jw + a_w) / (n_j + a_0 - y_jw - a_w))
    z_w     = delta_w / sqrt(1 / (y_iw + a_w) + 1 / (y_jw + a_w))

Counts are per review (a term counts once per review), so one long rant cannot carry a term.
Terms are unigrams and bigrams of the lower-cased words, English stop words removed (negations
kept: "not" matters in reviews).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

_SENTENCE = re.compile(r"[.!?;:,()\n]+")
_WORD = re.compile(r"[a-z][a-z']*[a-z]|[a-z]")
_KEEP = {"not", "no", "never", "nor", "too"}
MIN_REVIEWS_WITH_TERM = 2  # a term must appear in at least this many of D's negative reviews
MIN_Z = 1.96
PRIOR_SCALE = 0.5  # the prior's weight: the key's own counts at half weight (full weight hid 1-day complaints)


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS - _KEEP) | {"i'm", "it's", "i've", "don't", "didn't", "wasn't", "isn't"}


def review_terms(text: str, stop: frozenset[str]) -> set[str]:
    """The unigrams and bigrams of one review (a set: each counts once per review).

    Bigrams are adjacent words within one sentence, neither a stop word ("zipper broke", never
    "quality zipper" across "Poor quality. The zipper...").
    """
    terms: set[str] = set()
    for sentence in _SENTENCE.split((text or "").lower()):
        words = [w.strip("'") for w in _WORD.findall(sentence)]
        keep = [bool(w) and w not in stop and len(w) > 1 for w in words]
        terms.update(w for w, k in zip(words, keep, strict=True) if k)
        for i in range(len(words) - 1):
            if keep[i] and keep[i + 1]:
                terms.add(f"{words[i]} {words[i + 1]}")
    return terms


def count_terms(texts: Iterable[str], stop: frozenset[str] | None = None) -> tuple[Counter, int]:
    stop = _stop_words() if stop is None else stop
    counts: Counter = Counter()
    n = 0
    for text in texts:
        counts.update(review_terms(text, stop))
        n += 1
    return counts, n


def weighted_log_odds(
    focus: Iterable[str],
    reference: Iterable[str],
    top: int = 8,
    min_count: int = MIN_REVIEWS_WITH_TERM,
    prior_scale: float = PRIOR_SCALE,
) -> list[dict]:
    """Terms of ``focus`` over-represented against ``reference``: [{term, z, focus_reviews, reference_reviews}]."""
    stop = _stop_words()
    y_i, n_i = count_terms(focus, stop)
    y_j, n_j = count_terms(reference, stop)
    if not n_i:
        return []
    prior = Counter({t: c * prior_scale for t, c in (y_i + y_j).items()})
    a_0 = sum(prior.values())
    tot_i, tot_j = sum(y_i.values()), sum(y_j.values())
    out = []
    for term, count in y_i.items():
        if count < min_count:
            continue
        a = prior[term]
        ref = y_j.get(term, 0)
        delta = math.log((count + a) / (tot_i + a_0 - count - a)) - math.log((ref + a) / (tot_j + a_0 - ref - a))
        z = delta / math.sqrt(1 / (count + a) + 1 / (ref + a))
        if z >= MIN_Z:
            out.append({"term": term, "z": round(z, 2), "focus_reviews": count, "reference_reviews": ref})
    out.sort(key=lambda t: (-t["z"], t["term"]))
    return _drop_covered(out)[:top]


def _drop_covered(terms: list[dict], share: float = 0.8) -> list[dict]:
    """A unigram whose reviews mostly hold a listed bigram with it says nothing more ("zipper" beside "zipper broke")."""
    bigrams = [t for t in terms if " " in t["term"]]
    return [
        t for t in terms
        if " " in t["term"]
        or not any(t["term"] in b["term"].split() and b["focus_reviews"] >= share * t["focus_reviews"] for b in bigrams)
    ]  # fmt: skip


def examples(frame, terms: list[dict], k: int = 3, chars: int = 160) -> list[dict]:
    """A few of D's negative reviews that use the top terms most (then the most confidently negative).

    Each is cut to ``chars`` around the first top term it holds (a complaint often comes last).
    """
    stop = _stop_words()
    wanted = {t["term"] for t in terms}
    scored = []
    for row in frame.itertuples(index=False):
        text = " ".join(s for s in (row.title, row.review_text) if isinstance(s, str) and s)
        hits = len(review_terms(text, stop) & wanted)
        scored.append((-hits, -float(row.p_negative or 0), str(row.review_id), text))
    scored.sort()
    return [
        {"review_id": rid, "text": snippet(text, [t["term"] for t in terms], chars)} for _, _, rid, text in scored[:k]
    ]


def snippet(text: str, terms: list[str], chars: int = 160) -> str:
    """``text`` cut to ``chars`` characters around the first of ``terms`` it contains (else its start)."""
    if len(text) <= chars:
        return text
    lower = text.lower()
    found = [i for i in (lower.find(t.split()[0]) for t in terms) if i >= 0]
    start = max(0, min(found) - chars // 3) if found else 0
    start = min(start, len(text) - chars)
    cut = text[start : start + chars].strip()
    return ("…" if start > 0 else "") + cut + ("…" if start + chars < len(text) else "")
