"""Retrieval: offline BM25 over small corpora (timeline, transcript, runbook sections, past
incidents), optionally blended with an embeddings endpoint's cosine similarity."""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

_WORD = re.compile(r"[a-z0-9][a-z0-9_.\-/]*[a-z0-9]|[a-z0-9]", re.IGNORECASE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
STOPWORDS = frozenset(
    """a an the and or but if then else of to in on at by for with from into over under about as is are was were be
    been being it its this that these those there here what which who whom whose when where why how do does did done
    can could should would will shall may might must i me my we our you your he she they them their his her not no
    yes so than too very just also any all some more most other such only own same s t get got have has had having
    please tell know let us up out off again further once warroom after before during since while still now
    new old one two use using see look""".split()  # noqa: SIM905
)


def _stem(w: str) -> str:
    """A tiny suffix stripper: enough for 'failures'/'failed'/'failing' to meet 'fail', and
    'deployment'/'deploys' to meet 'deploy'. Both sides of a match go through it."""
    if w.isdigit() or len(w) <= 3:
        return w
    for suffix, keep in (
        ("ies", "y"),
        ("ures", ""),
        ("ure", ""),
        ("ments", ""),
        ("ment", ""),
        ("ions", ""),
        ("ion", ""),
        ("ing", ""),
        ("ed", ""),
        ("sses", "ss"),
        ("xes", "x"),
        ("ches", "ch"),
        ("s", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not (suffix == "s" and w.endswith("ss")):
            return w[: -len(suffix)] + keep
    return w


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed terms without stop words; dotted/dashed names also give their parts
    ("eu-west-1" → eu-west-1, eu, west); CJK characters count one by one (bigrams too)."""
    return list(_terms(text))


@functools.lru_cache(maxsize=4096)
def _terms(text: str) -> tuple[str, ...]:
    """Memoized: the same texts come back at every question and assessment (the runbooks, the
    newest incidents the assistant compares a new one with, the room's transcript)."""
    out: list[str] = []
    for m in _WORD.finditer(text.lower()):
        w = m.group(0)
        if w in STOPWORDS:
            continue
        out.append(_stem(w))
        if any(c in w for c in "-_./"):
            out.extend(_stem(p) for p in re.split(r"[-_./]+", w) if len(p) > 1 and p not in STOPWORDS)
    cjk = _CJK.findall(text)
    out.extend(cjk)
    out.extend(a + b for a, b in itertools.pairwise(cjk))
    return tuple(out)


@dataclass
class Doc:
    """A retrievable piece of context; `id` is how an answer cites it (T:…, M:…, R:…)."""

    id: str
    text: str
    kind: str = ""
    meta: dict = field(default_factory=dict)


class BM25:
    """Okapi BM25 (k1=1.5, b=0.75) with the non-negative idf of Lucene."""

    def __init__(self, docs: Sequence[Sequence[str]], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(d) for d in docs]
        self.lens = [len(d) for d in docs]
        self.avg = (sum(self.lens) / len(self.lens)) if self.lens else 0.0
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(self.tfs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def score(self, query: Sequence[str], i: int) -> float:
        tf, dl = self.tfs[i], self.lens[i]
        s = 0.0
        for t in set(query):
            f = tf.get(t)
            if not f:
                continue
            norm = 1 - self.b + self.b * (dl / self.avg if self.avg else 1)
            s += self.idf[t] * f * (self.k1 + 1) / (f + self.k1 * norm)
        return s

    def scores(self, query: Sequence[str]) -> list[float]:
        return [self.score(query, i) for i in range(len(self.tfs))]


def rank(query: str, docs: Sequence[Doc], *, k: int | None = None) -> list[tuple[Doc, float]]:
    """Docs with a positive BM25 score, best first (ties: the later doc, i.e. the newer one)."""
    if not docs:
        return []
    q = tokenize(query)
    scores = BM25([tokenize(d.text) for d in docs]).scores(q)
    order = sorted(range(len(docs)), key=lambda i: (-scores[i], -i))
    hits = [(docs[i], scores[i]) for i in order if scores[i] > 0]
    return hits[:k] if k else hits


Embed = Callable[[list[str]], Awaitable[list[list[float]]]]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


async def hybrid_rank(
    query: str, docs: Sequence[Doc], *, embed: Embed | None, k: int | None = None
) -> list[tuple[Doc, float]]:
    """BM25 alone, or — with an embeddings endpoint — the mean of BM25 scaled to [0, 1] and the
    cosine similarity, so a paraphrase with no shared word can still be found."""
    if embed is None or not docs:
        return rank(query, docs, k=k)
    q = tokenize(query)
    bm = BM25([tokenize(d.text) for d in docs]).scores(q)
    top = max(bm) or 1.0
    vectors = await embed([query] + [d.text for d in docs])
    sims = [cosine(vectors[0], v) for v in vectors[1:]]
    blended = [0.5 * (s / top) + 0.5 * max(c, 0.0) for s, c in zip(bm, sims, strict=True)]
    order = sorted(range(len(docs)), key=lambda i: (-blended[i], -i))
    hits = [(docs[i], blended[i]) for i in order if blended[i] > 0]
    return hits[:k] if k else hits
