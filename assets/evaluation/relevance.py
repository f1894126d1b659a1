"""When a retrieved chunk counts as relevant, and the ranking metrics built on it.

Two definitions, each reported under its own names:

- **Reference-context coverage** (``hit@k``, ``mrr@10``, ``ndcg@10``): a chunk *contains* a
  reference passage when it holds at least half of the passage's word bigrams (case,
  punctuation and Markdown markup ignored). Bigrams rather than words, so that a chunk sharing
  only common words with the passage does not count; "half" so that a passage split across two
  chunks still counts for the chunk holding most of it. A passage of fewer than
  ``MIN_COVERAGE_WORDS`` words has too few bigrams for a share to mean anything: it counts only
  when its words appear together, in order, in the chunk (the answer-in-chunk rule).
- **Answer-in-chunk** (``answer_hit@k``, ``answer_mrr@10``, ``answer_ndcg@10``), for golden
  questions with answer spans: a chunk is relevant when one of the answers appears in it as a
  whole word sequence. An answer split across two chunks is in neither.

Either way a chunk must also come from one of the question's reference sources when any are
listed. Each reference item (passage, or source when there are no passages; the answer counts
as one item) is credited once: the ideal ranking puts one chunk per item first, so nDCG@10
reaches 1 only when every needed passage is among the top ranks.
"""

from __future__ import annotations

import math
import re
import typing as t
from itertools import pairwise

COVERAGE_THRESHOLD = 0.5
MIN_COVERAGE_WORDS = 4
RANK_DEPTH = 10  # MRR and nDCG are reported at 10, whatever the hit@k cut-offs
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The text's words, lowercased, with ``_`` (Markdown emphasis) as a separator."""
    return _WORD.findall(text.lower().replace("_", " "))


def _bigrams(tokens: list[str]) -> set[tuple[str, str]]:
    return set(pairwise(tokens))


def holds_sequence(chunk: str, needle: str) -> bool:
    """Whether the needle's words appear together, in order, among the chunk's words."""
    wanted = words(needle)
    return bool(wanted) and f" {' '.join(wanted)} " in f" {' '.join(words(chunk))} "


def too_short_for_coverage(passage: str) -> bool:
    return len(words(passage)) < MIN_COVERAGE_WORDS


def coverage(passage: str, chunk: str) -> float:
    """Share of the passage's word bigrams present in the chunk (0 to 1); for a passage too
    short for a share, 1 when its words appear together in the chunk, else 0."""
    if too_short_for_coverage(passage):
        return 1.0 if holds_sequence(chunk, passage) else 0.0
    wanted = _bigrams(words(passage))
    return len(wanted & _bigrams(words(chunk))) / len(wanted)


def contains(chunk: str, passage: str) -> bool:
    return coverage(passage, chunk) >= COVERAGE_THRESHOLD


def credited_items(chunks: list[tuple[str, str]], passages: t.Sequence[str],
                   sources: t.Sequence[str]) -> list[int | None]:
    """For each retrieved (source, text) in rank order, the index of the reference item it
    newly covers, or None when it is not relevant or covers only items already credited.
    ``source`` is the reference source the chunk comes from ("" for none of them)."""
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


def answer_credits(chunks: list[tuple[str, str]], answers: t.Sequence[str],
                   sources: t.Sequence[str]) -> list[int | None]:
    """``credited_items`` for the answer-in-chunk rule: the first chunk (from a reference
    source, if any are listed) holding one of the answers is credited, as the one item."""
    result: list[int | None] = []
    credited = False
    for source, text in chunks:
        hit = not credited and (not sources or source in sources) and any(holds_sequence(text, a) for a in answers)
        result.append(0 if hit else None)
        credited = credited or hit
    return result


def ranking_metrics(credits: list[int | None], reference_items: int, ks: t.Sequence[int],
                    prefix: str = "") -> dict[str, float]:
    """hit@k for each k in ``ks``, and MRR and nDCG at RANK_DEPTH, of one ranked list."""
    ranks = [rank for rank, item in enumerate(credits, start=1) if item is not None]
    depth = min(len(credits), RANK_DEPTH)
    dcg = sum(1 / math.log2(rank + 1) for rank in ranks if rank <= depth)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(depth, reference_items) + 1))
    metrics = {f"{prefix}hit@{k}": 1.0 if ranks and ranks[0] <= k else 0.0 for k in ks}
    metrics[f"{prefix}mrr@{RANK_DEPTH}"] = 1 / ranks[0] if ranks and ranks[0] <= depth else 0.0
    metrics[f"{prefix}ndcg@{RANK_DEPTH}"] = dcg / ideal if ideal else 0.0
    return metrics


def answer_split(chunks: t.Sequence[str], answers: t.Sequence[str]) -> bool:
    """Whether an answer is cut at a chunk boundary: one chunk ends with its first words and
    another begins with the rest (with overlap, with a later part of the answer than the first
    chunk's end), so neither holds it whole."""
    chunk_words = [words(text) for text in chunks]
    for answer in map(words, answers):
        cuts = range(1, len(answer))
        ends = [cut for cut in cuts if any(tokens[-cut:] == answer[:cut] for tokens in chunk_words)]
        starts = [cut for cut in cuts if any(tokens[:len(answer) - cut] == answer[cut:] for tokens in chunk_words)]
        if ends and starts and min(starts) <= max(ends):
            return True
    return False


def passage_split(chunks: t.Sequence[str], passages: t.Sequence[str]) -> bool:
    """Whether a reference passage is covered by the chunks together but by none alone."""
    for passage in passages:
        wanted = _bigrams(words(passage))
        if too_short_for_coverage(passage) or not wanted:
            continue
        held = set().union(*(_bigrams(words(text)) for text in chunks)) & wanted if chunks else set()
        if len(held) >= COVERAGE_THRESHOLD * len(wanted) and not any(contains(text, passage) for text in chunks):
            return True
    return False
