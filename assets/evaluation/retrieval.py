"""The retriever the serving side uses, so the evaluation scores what users would get.

``dense``: the k nearest chunks by embedding. ``hybrid``: the store's own hybrid ranking
where it has one (``native_hybrid``); otherwise dense and BM25 candidate lists fused here by
reciprocal rank fusion (RRF). BM25 (``bm25s``, sparse matrices) is computed over the
collection's chunk texts rather than stored as Qdrant sparse vectors: it needs no change to the
ingestion (no new index version), and its term statistics match the collection as it was when
the retriever was built. The cost is one pass over the payloads then, which suits corpora of
up to some hundred thousand chunks; beyond that, sparse vectors at upsert time scale better.
The payloads it holds also serve the dense candidates, which are fetched without theirs.

Every search names the caller's groups and returns only chunks those groups may see: the store
trims its own candidates, and BM25 candidates are trimmed here by the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import islice

import bm25s
import numpy as np

from core.access import AccessFilter, check_policy
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
    """Top-k chunks of one collection (or alias) for a query, trimmed to a caller's groups.
    ``unlabelled`` is the policy for chunks without an acl (``public`` or ``deny``)."""

    def __init__(self, vector_store, embedder, collection: str, mode: str = "dense", candidates: int = 50, *,
                 unlabelled: str = "public"):
        if mode not in RETRIEVERS:
            raise ValueError(f"retriever must be one of {', '.join(RETRIEVERS)}, not {mode!r}")
        check_policy(unlabelled)
        self._store, self._embedder, self._collection = vector_store, embedder, collection
        self.mode, self._candidates, self.unlabelled = mode, candidates, unlabelled
        self._bm25: bm25s.BM25 | None = None
        self._chunks: list[Hit] = []  # every chunk of the collection, when BM25 is computed here
        self._by_id: dict[str, Hit] = {}
        if mode == "hybrid" and not vector_store.native_hybrid:
            self._chunks = [Hit(id=point_id, score=0.0, payload=payload)
                            for point_id, payload in vector_store.payloads(collection)]
            self._by_id = {hit.id: hit for hit in self._chunks}
            corpus = [bm25_tokens(hit.payload.get("text", "")) for hit in self._chunks]
            if any(corpus):  # bm25s cannot index a corpus without a single word
                self._bm25 = bm25s.BM25()
                self._bm25.index(corpus, show_progress=False)

    def access(self, groups: Sequence[str] | None) -> AccessFilter | None:
        """The filter a search with ``groups`` applies (None: an unrestricted, trusted caller)."""
        return AccessFilter.of(groups, self.unlabelled)

    def _sparse(self, query: str, access: AccessFilter | None) -> list[Hit]:
        tokens = bm25_tokens(query)
        if self._bm25 is None or not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        ranked = (i for i in np.argsort(-scores, kind="stable") if scores[i] > 0)
        allowed = (self._chunks[i] for i in ranked
                   if access is None or access.allows(self._chunks[i].payload.get("acl")))
        return list(islice(allowed, self._candidates))

    def search(self, query: str, k: int, *, groups: Sequence[str] | None) -> list[Hit]:
        """The top ``k`` chunks for ``query`` that a caller in ``groups`` may see. ``groups=None``
        is a trusted caller (no trimming); an empty list sees only what the unlabelled policy allows."""
        return self.search_many([query], k, groups=[groups])[0]

    def search_many(self, queries: Sequence[str], k: int, *, groups: Sequence[Sequence[str] | None],
                    vectors: Sequence[Sequence[float]] | None = None) -> list[list[Hit]]:
        """``search`` for each query, as a caller in the matching ``groups``, with one embedding
        call and the store's batched search; ``vectors``: the queries' embeddings if known."""
        queries = list(queries)
        vectors = list(vectors) if vectors is not None else self._embedder.embed(queries)
        accesses = [self.access(caller) for caller in groups]
        if self.mode == "dense":
            return self._store.search_many(self._collection, vectors, k, accesses=accesses)
        if self._store.native_hybrid:
            return self._store.search_many(self._collection, vectors, k, texts=queries, accesses=accesses)
        dense = self._store.search_many(self._collection, vectors, max(k, self._candidates), accesses=accesses,
                                        with_payload=False)
        return [reciprocal_rank_fusion([[self._by_id.get(hit.id, hit) for hit in hits], self._sparse(query, access)], k)
                for hits, query, access in zip(dense, queries, accesses, strict=True)]
