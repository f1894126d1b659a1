"""The promotion gate: pure decisions over an evaluation's aggregates.

Every check reads numbers and returns a verdict with a reason an operator can act on. A
retrieved chunk that a question's groups may not see fails ``no_acl_leak``, whatever the scores. No
judge never passes a generation check silently: the verdict says the generation metrics
were not computed, and ``require_generation`` turns that into a failure. A judge that was
configured but errs or returns unusable output is not "no judge": a metric scored on fewer
than ``min_scored_share`` of the questions it applies to fails its check, with the errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assets.evaluation.relevance import RANK_DEPTH
from assets.evaluation.scoring import GENERATION_METRICS

GATE_CHECKS = ("retrieval_floor", "faithfulness", "composite", "context_recall_regression", "no_acl_leak")
RECALL_METRICS = ("context_recall", "non_llm_context_recall")


@dataclass(frozen=True)
class GateThresholds:
    faithfulness: float = 0.85
    composite: float = 0.78
    max_recall_drop: float = 0.05  # relative to the promoted version's last evaluation
    min_retrieval_recall: float = 0.75  # non-LLM context recall floor, retrieval tier
    min_scored_share: float = 0.9  # of the questions a metric applies to
    require_generation: bool = False


@dataclass(frozen=True)
class Scoring:
    """How completely the metrics were computed: per metric the questions scored and the
    questions it applies to (``scoring.coverage``), and the errors behind the gaps."""

    coverage: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    errors: Sequence[Mapping[str, Any]] = ()

    def shortfalls(self, metrics: Sequence[str], minimum: float) -> list[str]:
        found = []
        for name in metrics:
            counts = self.coverage.get(name)
            if counts and counts["scored"] < minimum * counts["applicable"]:
                found.append(f"{name} scored on {counts['scored']} of {counts['applicable']} questions "
                             f"(at least {minimum:.0%} required)")
        return found


@dataclass(frozen=True)
class AccessAudit:
    """How many questions were asked with groups, and per question id how many of its retrieved
    chunks those groups may not see (only the leaking ones)."""

    checked: int = 0
    leaks: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, results: Sequence[Any]) -> AccessAudit:
        """From ``QuestionResult``s: those with ``groups`` are checked, their ``leaked`` counts."""
        restricted = [r for r in results if r.groups is not None]
        return cls(len(restricted), {r.id: r.leaked for r in restricted if r.leaked})


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    reason: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _incomplete(check: str, metrics: Sequence[str], scoring: Scoring, thresholds: GateThresholds) -> Verdict | None:
    """A failing verdict when one of ``metrics`` was scored on too few questions."""
    shortfalls = scoring.shortfalls(metrics, thresholds.min_scored_share)
    if not shortfalls:
        return None
    errors = "; ".join(f"{e['count']}× {e['where']} {e['type']}: {e['message']}" for e in scoring.errors)
    return Verdict(check, False, "; ".join(shortfalls) + (f". Errors: {errors}" if errors else ""),
                   {"scored": {name: dict(scoring.coverage[name]) for name in metrics if name in scoring.coverage},
                    "min_scored_share": thresholds.min_scored_share, "errors": [dict(e) for e in scoring.errors]})


def _generation_threshold(check: str, metrics: Sequence[str], aggregates: dict[str, float], minimum: float,
                          thresholds: GateThresholds, scoring: Scoring) -> Verdict:
    incomplete = _incomplete(check, metrics, scoring, thresholds)
    if incomplete:
        return incomplete
    value = aggregates.get(check)
    if value is None:
        if thresholds.require_generation:
            return Verdict(check, False, f"{check} was not computed (no generator/judge configured) "
                           "and require_generation is on: configure RAGPIPE_GENERATOR_* and RAGPIPE_JUDGE_*")
        return Verdict(check, True, f"generation metrics not computed (no generator/judge configured); "
                       f"{check} not checked, the gate used the retrieval tier only")
    passed = value > minimum
    return Verdict(check, passed, f"{check} {value:.3f} {'>' if passed else '<='} threshold {minimum:.2f}",
                   {"value": value, "threshold": minimum})


RECALL_DEFINITION = ("RAGAS non-LLM context recall of the top {k} chunks: a reference context counts when a chunk "
                     "holds half its word bigrams, or, under four words, all its words together")
ANSWER_DEFINITION = "answer-in-chunk hit@{k}: share of questions with an answer span in one of the top {k} chunks"


def _retrieval_floor(aggregates: dict[str, float], thresholds: GateThresholds, scoring: Scoring,
                     top_k: int) -> Verdict:
    """Reference-context recall when the golden set has reference contexts; answer-in-chunk
    hit@k when it has only answer spans. The reason names the definition it used."""
    name, definition = "non_llm_context_recall", RECALL_DEFINITION.format(k=top_k)
    if name not in aggregates and f"answer_hit@{top_k}" in aggregates:
        name, definition = f"answer_hit@{top_k}", ANSWER_DEFINITION.format(k=top_k)
    incomplete = _incomplete("retrieval_floor", (name,), scoring, thresholds)
    if incomplete:
        return incomplete
    value = aggregates.get(name)
    metadata = {"metric": name, "definition": definition, "threshold": thresholds.min_retrieval_recall}
    if value is None:
        return Verdict("retrieval_floor", False, "retrieval recall was not computed: the golden set has no "
                       "answerable question with reference_contexts or answers", metadata)
    passed = value >= thresholds.min_retrieval_recall
    hits = aggregates.get(f"hit@{RANK_DEPTH}", aggregates.get(f"answer_hit@{RANK_DEPTH}", 0.0))
    reason = (f"{name} {value:.3f} {'>=' if passed else '<'} floor {thresholds.min_retrieval_recall:.2f} "
              f"({definition}; hit@{RANK_DEPTH} {hits:.3f})")
    if not passed and hits == 0:
        reason += (": no retrieved chunk is relevant; was the index built from the golden set's corpus/ "
                   "(ragpipe eval does that), or does the production corpus hold its files?")
    elif not passed:
        reason += ": the retrieved chunks miss most reference passages (chunk size/overlap or embedder?)"
    return Verdict("retrieval_floor", passed, reason, {**metadata, "value": value})


def _recall_regression(aggregates: dict[str, float], baseline: dict[str, Any] | None,
                       thresholds: GateThresholds, scoring: Scoring) -> Verdict:
    check = "context_recall_regression"
    incomplete = _incomplete(check, RECALL_METRICS, scoring, thresholds)
    if incomplete:
        return incomplete
    if baseline is None:
        return Verdict(check, True, "no promoted version evaluated on this golden set: nothing to compare against")
    previous, drops = baseline["aggregates"], []
    metadata = {"baseline_collection": baseline["collection"], "baseline_run_id": baseline.get("run_id"),
                "baseline_retriever": baseline.get("retriever"), "baseline_top_k": baseline.get("top_k")}
    for name in RECALL_METRICS:
        if name in aggregates and name in previous:
            floor = previous[name] * (1 - thresholds.max_recall_drop)
            metadata[name] = aggregates[name]
            metadata[f"baseline_{name}"] = previous[name]
            if aggregates[name] < floor:
                drops.append(f"{name} {aggregates[name]:.3f} is more than {thresholds.max_recall_drop:.0%} below "
                             f"the promoted {baseline['collection']}'s {previous[name]:.3f}")
    if drops:
        return Verdict(check, False, "; ".join(drops), metadata)
    return Verdict(check, True, f"context recall within {thresholds.max_recall_drop:.0%} of the promoted "
                   f"{baseline['collection']}", metadata)


def _no_acl_leak(audit: AccessAudit) -> Verdict:
    """Names the leaking questions and counts, never what the chunks say."""
    if not audit.checked:
        return Verdict("no_acl_leak", True, "no golden question carries groups: access trimming not checked")
    leaked = sum(audit.leaks.values())
    metadata = {"checked_questions": audit.checked, "leaked_chunks": leaked, "leaking_questions": dict(audit.leaks)}
    if leaked:
        named = ", ".join(f"{qid} ({count})" for qid, count in sorted(audit.leaks.items()))
        return Verdict("no_acl_leak", False, f"{leaked} retrieved chunk(s) outside the caller's groups, in "
                       f"{len(audit.leaks)} of {audit.checked} questions asked with groups: {named}", metadata)
    return Verdict("no_acl_leak", True, f"no retrieved chunk outside the caller's groups in the {audit.checked} "
                   "questions asked with groups", metadata)


def judge(aggregates: dict[str, float], baseline: dict[str, Any] | None, thresholds: GateThresholds,
          scoring: Scoring = Scoring(), access: AccessAudit = AccessAudit(), top_k: int = 5) -> list[Verdict]:
    """Every gate check's verdict, in GATE_CHECKS order; ``top_k``: the chunks the recall was read from."""
    return [
        _retrieval_floor(aggregates, thresholds, scoring, top_k),
        _generation_threshold("faithfulness", ("faithfulness",), aggregates, thresholds.faithfulness,
                              thresholds, scoring),
        _generation_threshold("composite", GENERATION_METRICS, aggregates, thresholds.composite, thresholds, scoring),
        _recall_regression(aggregates, baseline, thresholds, scoring),
        _no_acl_leak(access),
    ]
