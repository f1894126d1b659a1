"""The relevance rule as a RAGAS metric, apart from ``relevance`` so that importing the rule
(every process that loads the job definitions does) does not import RAGAS: seconds of start-up
an ingest run never uses."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ragas.dataset_schema import SingleTurnSample
from ragas.metrics.base import MetricType, SingleTurnMetric

from assets.evaluation.relevance import coverage


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
