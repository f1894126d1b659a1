"""When a retrieved chunk counts as relevant, and the ranking metrics built on it.

A chunk *contains* a reference passage when it holds at least half of the passage's word
bigrams (case, punctuation and Markdown markup ignored). Bigrams rather than words, so that
a chunk sharing only common words with the passage does not count; "half" so that a
passage split across two chunks still counts for the chunk holding most of it, while a
chunk far smaller than the passage (an absurd chunk size) does not.

For hit@k, MRR and nDCG a chunk is relevant when it comes from one of the question's
reference sources (if any are listed) and contains one of its reference passages (if any
are listed). Each reference item (passage, or source when there are no passages) is
credited once: the ideal ranking puts one chunk per item first, so nDCG@k reaches 1 only
when every needed passage is among the top ranks.
"""

from __future__ import annotations

import math
import re
import typing as t
from dataclasses import dataclass, field

from ragas.dataset_schema import SingleTurnSample
from ragas.metrics.base import MetricType, SingleTurnMetric

COVERAGE_THRESHOLD = 0.5
_WORD = re.compile(r"\w+")


def _bigrams(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower().replace("_", " "))
    if len(words) < 2:
        return {tuple(words)} if words else set()
    return set(zip(words, words[1:]))


def coverage(passage: str, chunk: str) -> float:
    """Share of the passage's word bigrams present in the chunk (0 to 1)."""
    wanted = _bigrams(passage)
    return len(wanted & _bigrams(chunk)) / len(wanted) if wanted else 0.0


def contains(chunk: str, passage: str) -> bool:
    return coverage(passage, chunk) >= COVERAGE_THRESHOLD


@dataclass
class PassageCoverage(SingleTurnMetric):
    """RAGAS string measure for its non-LLM context metrics: ``coverage`` of the reference
    passage (``response``) in the retrieved context (``reference``), the order in which
    NonLLMContextRecall and NonLLMContextPrecisionWithReference pass them. Their default,
    whole-string Levenshtein similarity, scores a 200-token chunk against a one-sentence
    passage near 0.2 even when the chunk contains the passage verbatim."""

    name: str = "passage_coverage"
    _required_columns: t.Dict[MetricType, t.Set[str]] = field(
        default_factory=lambda: {MetricType.SINGLE_TURN: {"reference", "response"}}
    )

    def init(self, run_config) -> None:
        """Nothing to set up: no model, no network."""

    async def _single_turn_ascore(self, sample: SingleTurnSample, callbacks) -> float:
        return coverage(sample.response, sample.reference)

    async def _ascore(self, row: dict, callbacks) -> float:
        return await self._single_turn_ascore(SingleTurnSample(**row), callbacks)


def credited_items(chunks: list[tuple[str, str]], passages: t.Sequence[str],
                   sources: t.Sequence[str]) -> list[int | None]:
    """For each retrieved (source, text) in rank order, the index of the reference item it
    newly covers, or None when it is not relevant or covers only items already credited."""
    credited: set[int] = set()
    result: list[int | None] = []
    for source, text in chunks:
        item = None
        if not sources or source in sources:
            if passages:
                item = next((i for i, p in enumerate(passages) if i not in credited and contains(text, p)), None)
            else:
                item = next((i for i, s in enumerate(sources) if i not in credited and s == source), None)
        if item is not None:
            credited.add(item)
        result.append(item)
    return result


@dataclass(frozen=True)
class RankingScores:
    hit: float
    reciprocal_rank: float
    ndcg: float


def ranking_scores(credits: list[int | None], reference_items: int) -> RankingScores:
    """hit@k, reciprocal rank and nDCG@k of one ranked list (k = len(credits))."""
    ranks = [rank for rank, item in enumerate(credits, start=1) if item is not None]
    dcg = sum(1 / math.log2(rank + 1) for rank in ranks)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(credits), reference_items) + 1))
    return RankingScores(
        hit=1.0 if ranks else 0.0,
        reciprocal_rank=1 / ranks[0] if ranks else 0.0,
        ndcg=dcg / ideal if ideal else 0.0,
    )
