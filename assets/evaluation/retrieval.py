"""The retriever the serving side uses, so the evaluation scores what users would get.

``dense``: the k nearest chunks by embedding. ``hybrid``: dense and BM25 candidate lists
fused by reciprocal rank fusion (RRF). BM25 is computed here over the collection's chunk
texts rather than stored as Qdrant sparse vectors: it needs no change to the ingestion
(no new index version), and its term statistics always match the collection exactly.
The cost is one pass over the payloads when the retriever is built, which suits corpora
of up to some hundred thousand chunks; beyond that, sparse vectors at upsert time scale better.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rank_bm25 import BM25Okapi

from core.types import Hit

RETRIEVERS = ("dense", "hybrid")
RRF_K = 60  # the constant of Cormack et al. (2009), also Qdrant's default
_TOKEN = re.compile(r"\w+")


def bm25_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit]], limit: int, k: int = RRF_K) -> list[Hit]:
    """Fuse ranked lists: each point scores the sum of 1 / (k + rank) over the lists."""
    scores: dict[str, float] = {}
    hits: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + 1 / (k + rank)
            hits.setdefault(hit.id, hit)
    best = sorted(scores, key=lambda point: (-scores[point], point))[:limit]
    return [Hit(id=point, score=scores[point], payload=hits[point].payload) for point in best]


class Retriever:
    """Top-k chunks of one collection (or alias) for a question."""

    def __init__(self, vector_store, embedder, collection: str, mode: str = "dense", candidates: int = 50):
        if mode not in RETRIEVERS:
            raise ValueError(f"retriever must be one of {', '.join(RETRIEVERS)}, not {mode!r}")
        self._store, self._embedder, self._collection = vector_store, embedder, collection
        self.mode, self._candidates = mode, candidates
        self._bm25: BM25Okapi | None = None
        self._bm25_hits: list[Hit] = []
        if mode == "hybrid":
            for point_id, payload in vector_store.payloads(collection):
                self._bm25_hits.append(Hit(id=point_id, score=0.0, payload=payload))
            if self._bm25_hits:
                self._bm25 = BM25Okapi([bm25_tokens(h.payload.get("text", "")) for h in self._bm25_hits])

    def _sparse(self, question: str) -> list[Hit]:
        if self._bm25 is None:
            return []
        scores = self._bm25.get_scores(bm25_tokens(question))
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: self._candidates]
        return [self._bm25_hits[i] for i in order if scores[i] > 0]

    def retrieve(self, question: str, k: int) -> list[Hit]:
        vector = self._embedder.embed([question])[0]
        if self.mode == "dense":
            return self._store.search(self._collection, vector, k)
        dense = self._store.search(self._collection, vector, max(k, self._candidates))
        return reciprocal_rank_fusion([dense, self._sparse(question)], k)
