"""The promotion gate: pure decisions over an evaluation's aggregates.

Every check reads numbers and returns a verdict with a reason an operator can act on. No
judge never passes a generation check silently: the verdict says the generation metrics
were not computed, and ``require_generation`` turns that into a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GATE_CHECKS = ("retrieval_floor", "faithfulness", "composite", "context_recall_regression")
RECALL_METRICS = ("context_recall", "non_llm_context_recall")


@dataclass(frozen=True)
class GateThresholds:
    faithfulness: float = 0.85
    composite: float = 0.78
    max_recall_drop: float = 0.05  # relative to the promoted version's last evaluation
    min_retrieval_recall: float = 0.75  # non-LLM context recall floor, retrieval tier
    require_generation: bool = False


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    reason: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _generation_threshold(check: str, aggregates: dict[str, float], minimum: float,
                          thresholds: GateThresholds) -> Verdict:
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


def _retrieval_floor(aggregates: dict[str, float], thresholds: GateThresholds) -> Verdict:
    value = aggregates.get("non_llm_context_recall")
    if value is None:
        return Verdict("retrieval_floor", False, "non-LLM context recall was not computed: the golden set "
                       "has no answerable question with reference_contexts, or nothing was retrieved")
    passed = value >= thresholds.min_retrieval_recall
    reason = (f"retrieval context recall {value:.3f} {'>=' if passed else '<'} floor "
              f"{thresholds.min_retrieval_recall:.2f} (hit rate {aggregates.get('hit_rate', 0):.3f})")
    if not passed and aggregates.get("hit_rate") == 0:
        reason += (": no retrieved chunk comes from a reference source; was the index built from the "
                   "golden set's corpus/ (ragpipe eval does that)?")
    elif not passed:
        reason += ": the retrieved chunks miss most reference passages (chunk size/overlap or embedder?)"
    return Verdict("retrieval_floor", passed, reason, {"value": value, "threshold": thresholds.min_retrieval_recall})


def _recall_regression(aggregates: dict[str, float], baseline: dict[str, Any] | None,
                       thresholds: GateThresholds) -> Verdict:
    check = "context_recall_regression"
    if baseline is None:
        return Verdict(check, True, "no promoted version evaluated on this golden set and retriever: "
                       "nothing to compare against")
    previous, drops, metadata = baseline["aggregates"], [], {"baseline_collection": baseline["collection"]}
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


def judge(aggregates: dict[str, float], baseline: dict[str, Any] | None, thresholds: GateThresholds) -> list[Verdict]:
    """Every gate check's verdict, in GATE_CHECKS order."""
    return [
        _retrieval_floor(aggregates, thresholds),
        _generation_threshold("faithfulness", aggregates, thresholds.faithfulness, thresholds),
        _generation_threshold("composite", aggregates, thresholds.composite, thresholds),
        _recall_regression(aggregates, baseline, thresholds),
    ]
