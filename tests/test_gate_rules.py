"""Gate verdicts (pure) and which index versions promotion keeps."""

from assets.evaluation.gate import GateThresholds, Scoring, judge
from assets.evaluation.scoring import MAX_ERROR_KINDS, ErrorLog
from assets.promotion.versions import collections_to_drop, kept_collections

RETRIEVAL = {"non_llm_context_recall": 0.9, "hit@10": 0.95}
GENERATION = {**RETRIEVAL, "faithfulness": 0.9, "composite": 0.8, "context_recall": 0.9}


def verdicts(aggregates, baseline=None, scoring=Scoring(), **thresholds):
    return {v.check: v for v in judge(aggregates, baseline, GateThresholds(**thresholds), scoring)}


def test_retrieval_only_passes_and_says_generation_was_not_computed():
    result = verdicts(RETRIEVAL)
    assert all(v.passed for v in result.values())
    assert "generation metrics not computed" in result["faithfulness"].reason
    assert "retrieval tier only" in result["composite"].reason


def test_require_generation_turns_no_judge_into_a_failure():
    result = verdicts(RETRIEVAL, require_generation=True)
    assert not result["faithfulness"].passed and not result["composite"].passed
    assert result["retrieval_floor"].passed


def test_thresholds_are_strict_and_configurable():
    assert verdicts(GENERATION)["faithfulness"].passed
    assert not verdicts({**GENERATION, "faithfulness": 0.85})["faithfulness"].passed
    assert not verdicts(GENERATION, composite=0.8)["composite"].passed
    floor = verdicts({**RETRIEVAL, "non_llm_context_recall": 0.4})["retrieval_floor"]
    assert not floor.passed and "chunk size" in floor.reason
    foreign = verdicts({"non_llm_context_recall": 0.0, "hit@10": 0.0})["retrieval_floor"]
    assert not foreign.passed and "built from the golden set's corpus/" in foreign.reason


def test_recall_regression_is_relative_to_the_promoted_evaluation():
    baseline = {"collection": "kb__old", "aggregates": {"non_llm_context_recall": 0.9, "context_recall": 0.8}}
    assert verdicts({**GENERATION, "non_llm_context_recall": 0.856}, baseline)["context_recall_regression"].passed
    failed = verdicts({**GENERATION, "non_llm_context_recall": 0.85, "context_recall": 0.7}, baseline)
    reason = failed["context_recall_regression"].reason
    assert not failed["context_recall_regression"].passed
    assert "non_llm_context_recall 0.850 is more than 5% below the promoted kb__old's 0.900" in reason
    assert "context_recall 0.700" in reason
    assert "nothing to compare" in verdicts(GENERATION)["context_recall_regression"].reason


def test_a_judge_whose_every_score_is_nan_fails_instead_of_reading_as_no_judge():
    coverage = {"non_llm_context_recall": {"scored": 6, "applicable": 6},
                **{name: {"scored": 0, "applicable": 6} for name in
                   ("faithfulness", "answer_relevancy", "context_recall", "context_precision")}}
    errors = [{"where": "faithfulness", "type": "TimeoutError", "message": "judge timed out", "count": 6}]
    result = verdicts(RETRIEVAL, scoring=Scoring(coverage, errors))
    for check in ("faithfulness", "composite", "context_recall_regression"):
        assert not result[check].passed and "not computed" not in result[check].reason
        assert result[check].metadata["errors"] == errors
    assert result["faithfulness"].reason == ("faithfulness scored on 0 of 6 questions (at least 90% required). "
                                             "Errors: 6× faithfulness TimeoutError: judge timed out")
    assert result["retrieval_floor"].passed


def test_min_scored_share_is_per_metric_and_configurable():
    coverage = {"faithfulness": {"scored": 9, "applicable": 10}, "answer_relevancy": {"scored": 8, "applicable": 10}}
    result = verdicts(GENERATION, scoring=Scoring(coverage))
    assert result["faithfulness"].passed  # 90% is enough
    assert not result["composite"].passed and "answer_relevancy scored on 8 of 10" in result["composite"].reason
    assert verdicts(GENERATION, scoring=Scoring(coverage), min_scored_share=0.8)["composite"].passed


def test_error_log_is_bounded_and_keeps_first_lines_only():
    log = ErrorLog()
    for number in range(MAX_ERROR_KINDS + 5):
        log.add("faithfulness", ValueError(f"bad output {number}\nsecond line with the model's text"))
    log.add("faithfulness", ValueError("bad output 0"))
    entries = log.entries()
    assert len(entries) == MAX_ERROR_KINDS
    assert entries[0] == {"where": "faithfulness", "type": "ValueError", "message": "bad output 0", "count": 2}
    assert all("second line" not in entry["message"] for entry in entries)
    long = ErrorLog()
    long.add("generator", TimeoutError("x" * 500))
    assert long.entries() == [{"where": "generator", "type": "TimeoutError", "message": "x" * 120, "count": 1}]


def test_kept_and_dropped_versions():
    history = [{"collection": name} for name in ["kb__a", "kb__b", "kb__c", "kb__a", "kb__d"]]
    assert kept_collections(history, 3) == ["kb__d", "kb__a", "kb__c"]
    existing = ["kb__a", "kb__b", "kb__c", "kb__d", "kb__candidate", "other"]
    assert collections_to_drop(existing, history, 3) == ["kb__b"]  # never-promoted ones stay
    assert collections_to_drop(existing, history, 1) == ["kb__a", "kb__b", "kb__c"]
