"""The relevance rule behind hit@k, MRR, nDCG and the RAGAS non-LLM context metrics."""

import math
from pathlib import Path

import pytest
from ragas.dataset_schema import SingleTurnSample
from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall

from assets.evaluation.golden import GoldenQuestion, loading_notes
from assets.evaluation.ragas_metrics import PassageCoverage
from assets.evaluation.relevance import (
    answer_credits,
    answer_split,
    contains,
    coverage,
    credited_items,
    ranking_metrics,
)
from assets.evaluation.scoring import ProgressLog, QuestionResult, from_source, score_ranking

PASSAGE = "An itemized receipt is required for every expense of $25 or more, except items covered by the per diem."


def test_coverage_ignores_case_punctuation_and_markup():
    chunk = "## Receipts\n\nExpenses are filed monthly. **An itemized receipt** is required for every expense of $25 or more, except items covered by the per diem."
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
    scores = ranking_metrics(credits, reference_items=2, ks=(1, 3, 5, 10))
    assert [scores[f"hit@{k}"] for k in (1, 3, 5, 10)] == [0.0, 1.0, 1.0, 1.0]
    assert scores["mrr@10"] == 0.5
    ideal = 1 + 1 / math.log2(3)
    assert scores["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / ideal)


def test_mrr_and_ndcg_stop_at_rank_ten():
    credits = [None] * 10 + [0]
    scores = ranking_metrics(credits, reference_items=1, ks=(5, 20), prefix="answer_")
    assert scores == {"answer_hit@5": 0.0, "answer_hit@20": 1.0, "answer_mrr@10": 0.0, "answer_ndcg@10": 0.0}


def test_a_passage_from_another_source_is_not_relevant_and_duplicates_count_once():
    chunks = [("other.md", PASSAGE), ("a.md", PASSAGE), ("a.md", PASSAGE)]
    assert credited_items(chunks, [PASSAGE], ["a.md"]) == [None, 0, None]
    assert ranking_metrics([None, None], 1, ks=(1,))["hit@1"] == 0.0


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


def test_one_word_answers_count_only_as_whole_words():
    chunks = [("a.md", "Revenue grew in the 1990s."), ("a.md", "Founded in 19901 BC."), ("a.md", "It was founded in 1990.")]
    assert answer_credits(chunks, ["1990"], ["a.md"]) == [None, None, 0]
    assert answer_credits(chunks, ["1990"], ["b.md"]) == [None, None, None]  # the right words, the wrong source
    assert answer_credits([("", "Paris, France"), ("", "in Paris")], ["Paris"], []) == [0, None]  # credited once


def test_a_reference_context_too_short_for_bigrams_is_scored_as_an_answer():
    assert coverage("Paris", "The office moved to Paris in May.") == 1.0
    assert coverage("Paris", "A Parisian office.") == 0.0
    assert coverage("Tier B", "B tier cities") == 0.0  # two words: together and in order
    assert contains("| Tier B | Chicago |", "Tier B")
    long_q = GoldenQuestion("q1", "?", "a", ("a passage of many words",), (), True, ())
    short = [GoldenQuestion(f"s{i}", "?", "a", ("Paris",), (), True, ()) for i in range(7)]
    assert loading_notes((long_q,)) == ()
    (note,) = loading_notes((long_q, *short))
    assert note.startswith("7 question(s) have a reference context of fewer than 4 words (s0, s1, s2, s3, s4 and 2 more)")
    assert "scored by answer-in-chunk" in note


def test_an_answer_split_across_two_chunks_is_in_neither_and_says_so():
    first = "The charter was signed in Florence by the Grand"
    second = "Duke of Tuscany in 1801, after long talks."
    overlapping = "Grand Duke of Tuscany"  # a chunk that overlaps the cut and holds the answer whole
    chunks = [("a.md", first), ("a.md", second)]
    assert answer_credits(chunks, ["Grand Duke of Tuscany"], ["a.md"]) == [None, None]
    assert answer_split([first, second], ["Grand Duke of Tuscany"])
    assert answer_split([first, "Duke of Tuscany in 1801"], ["the Grand Duke of Tuscany"])
    assert not answer_split([first], ["Grand Duke of Tuscany"])  # one half alone is not evidence of a cut
    assert not answer_split([first, "in 1801 the Duke of Tuscany"], ["Grand Duke of Tuscany"])
    assert answer_credits([("a.md", overlapping)], ["Grand Duke of Tuscany"], ["a.md"]) == [0]

    question = GoldenQuestion("q1", "Who signed the charter?", "The Grand Duke of Tuscany.", (), ("a.md",), True, (),
                              answers=("Grand Duke of Tuscany",))
    result = result_for(question, ["/corpus/a.md", "/corpus/a.md"])
    score_ranking(question, result, [first, second], ks=(1, 5))
    assert result.scores["answer_hit@5"] == 0.0 and result.scores["hit@1"] == 1.0  # the right document, first
    assert result.reason == "right document, answer split across chunks"


def result_for(question: GoldenQuestion, sources: list[str]) -> QuestionResult:
    return QuestionResult(id=question.id, question=question.question, answerable=True, tags=[],
                          expected_sources=list(question.reference_sources),
                          retrieved=[{"source": Path(s).as_uri(), "chunk_id": i, "score": 1.0}
                                     for i, s in enumerate(sources)])


@pytest.mark.parametrize(("sources", "texts", "reason"), [
    (["/corpus/b.md"], ["It was founded in 1990."], "wrong document: no retrieved chunk comes from a reference source"),
    (["/corpus/a.md"], ["Opening hours."], "right document, wrong chunk"),
    (["/corpus/a.md", "/corpus/a.md"], ["Opening hours.", "Founded in 1990."], "found at rank 2"),
])
def test_the_miss_reason_says_where_the_answer_went(sources, texts, reason):
    question = GoldenQuestion("q1", "When was it founded?", "In 1990.", (), ("a.md",), True, (), answers=("1990",))
    result = result_for(question, sources)
    score_ranking(question, result, texts, ks=(1, 5))
    assert result.reason == reason
    assert result.scores["answer_hit@5"] == (1.0 if reason.startswith("found") else 0.0)


def test_progress_reports_rate_and_time_left_at_most_every_interval():
    now = [100.0]
    lines: list[str] = []
    progress = ProgressLog(lines.append, every_s=5.0, clock=lambda: now[0])
    progress("retrieval", 0, 300)
    for done, at in ((64, 102.0), (128, 104.0), (192, 106.0), (256, 108.0), (300, 109.0)):
        now[0] = at
        progress("retrieval", done, 300)
    assert lines == ["retrieval: 64/300 questions (32.0/s, 2.0 s), about 7 s left",
                     "retrieval: 256/300 questions (32.0/s, 8.0 s), about 1 s left",
                     "retrieval: 300/300 questions (33.3/s, 9.0 s)"]
