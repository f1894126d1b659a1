"""The relevance rule behind hit@k, MRR, nDCG and the RAGAS non-LLM context metrics."""

import math
from pathlib import Path

import pytest
from ragas.dataset_schema import SingleTurnSample
from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall

from assets.evaluation.relevance import PassageCoverage, contains, coverage, credited_items, ranking_scores
from assets.evaluation.scoring import from_source

PASSAGE = "An itemized receipt is required for every expense of $25 or more, except items covered by the per diem."


def test_coverage_ignores_case_punctuation_and_markup():
    chunk = f"## Receipts\n\nExpenses are filed monthly. **An itemized receipt** is required for every expense of $25 or more, except items covered by the per diem."
    assert coverage(PASSAGE, chunk) == 1.0
    assert contains("| Tier B | Chicago, Atlanta | $240 | $75 |", "Tier B | Chicago, Atlanta | $240 | $75")


def test_a_chunk_much_smaller_than_the_passage_does_not_contain_it():
    assert not contains("An itemized receipt is required for every", PASSAGE)
    assert not contains("receipt expense every required itemized", PASSAGE)  # same words, no bigrams


def test_ranking_scores_by_hand():
    # ranks 2 and 3 are relevant; rank 3 covers the second of two passages
    chunks = [("a.md", "unrelated text about parking"), ("a.md", PASSAGE), ("b.md", "the sky is blue today")]
    credits = credited_items(chunks, [PASSAGE, "The sky is blue today."], ["a.md", "b.md"])
    assert credits == [None, 0, 1]
    scores = ranking_scores(credits, reference_items=2)
    assert scores.hit == 1.0 and scores.reciprocal_rank == 0.5
    ideal = 1 + 1 / math.log2(3)
    assert scores.ndcg == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / ideal)


def test_a_passage_from_another_source_is_not_relevant_and_duplicates_count_once():
    chunks = [("other.md", PASSAGE), ("a.md", PASSAGE), ("a.md", PASSAGE)]
    assert credited_items(chunks, [PASSAGE], ["a.md"]) == [None, 0, None]
    assert ranking_scores([None, None], 1).hit == 0.0


def test_sources_only_questions_are_credited_per_source():
    assert credited_items([("a.md", "x"), ("a.md", "y"), ("b.md", "z")], [], ["a.md", "b.md"]) == [0, None, 1]


def test_ragas_non_llm_metrics_use_passage_coverage():
    sample = SingleTurnSample(retrieved_contexts=["noise about parking", f"Receipts. {PASSAGE}"],
                              reference_contexts=[PASSAGE])
    recall = NonLLMContextRecall(_distance_measure=PassageCoverage())
    precision = NonLLMContextPrecisionWithReference(distance_measure=PassageCoverage())
    assert recall.single_turn_score(sample) == 1.0
    assert precision.single_turn_score(sample) == pytest.approx(0.5)
    # RAGAS's default whole-string Levenshtein misses the verbatim passage in a long chunk
    long_chunk = SingleTurnSample(retrieved_contexts=[f"{'Travel policy details. ' * 20}{PASSAGE}"],
                                  reference_contexts=[PASSAGE])
    assert NonLLMContextRecall().single_turn_score(long_chunk) == 0.0
    assert recall.single_turn_score(long_chunk) == 1.0


def test_reference_sources_match_chunk_uris_by_path_suffix():
    uri = Path("/copy/of/corpus/hr/travel policy.md").as_uri()  # percent-encoded space
    assert from_source(uri, ("other.md", "hr/travel policy.md")) == "hr/travel policy.md"
    assert from_source(Path("/corpus/xhr/travel policy.md").as_uri(), ("hr/travel policy.md",)) is None
