"""Score a candidate index on a golden set.

Retrieval tier (always, offline): for every answerable question, hit@k, reciprocal rank and
nDCG@k (see ``relevance``) and the RAGAS non-LLM context recall and precision.
Generation tier (when a generator and a judge are configured): the generator answers every
question from the retrieved chunks with a grounded prompt; RAGAS faithfulness, response
relevancy and LLM context precision/recall score the answerable ones; unanswerable ones
score whether the generator abstained ("I don't know").
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.embeddings import Embeddings

from assets.evaluation.golden import GoldenQuestion, GoldenSet
from assets.evaluation.relevance import PassageCoverage, credited_items, ranking_scores

RETRIEVAL_METRICS = ("hit_rate", "mrr", "ndcg", "non_llm_context_recall", "non_llm_context_precision")
GENERATION_METRICS = ("faithfulness", "answer_relevancy", "context_recall", "context_precision")
RAGAS_NAMES = {  # RAGAS metric name -> ours
    "non_llm_context_recall": "non_llm_context_recall",
    "non_llm_context_precision_with_reference": "non_llm_context_precision",
    "faithfulness": "faithfulness",
    "answer_relevancy": "answer_relevancy",
    "context_recall": "context_recall",
    "llm_context_precision_with_reference": "context_precision",
}
ABSTENTION = "I don't know"
MAX_ERROR_KINDS = 10
MAX_ERROR_MESSAGE = 120
GROUNDED_PROMPT = (
    "You answer questions about a company's knowledge base using only the numbered context "
    "passages below. Do not use any other knowledge. If the passages do not contain the "
    f"answer, reply exactly: {ABSTENTION}. Answer in at most three sentences."
)


@dataclass
class QuestionResult:
    """One golden question's outcome; what the per-run artifact file holds (no chunk text)."""

    id: str
    answerable: bool
    tags: list[str]
    retrieved: list[dict[str, Any]]  # source, chunk_id, score, in rank order
    latency_ms: float
    groups: list[str] | None = None  # the caller's groups the question was asked with
    leaked: int = 0  # retrieved chunks those groups may not see (the gate's no_acl_leak)
    answer: str | None = None
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def from_source(source_uri: str, relative_paths: tuple[str, ...]) -> str | None:
    """The reference source a chunk's source URI is, matched by path suffix so that a
    copy of the corpus elsewhere still matches."""
    path = unquote(urlparse(source_uri).path)
    return next((relative for relative in relative_paths if path.endswith("/" + relative.lstrip("/"))), None)


def retrieve_all(golden: GoldenSet, retriever, k: int) -> tuple[list[QuestionResult], list[list[str]]]:
    """Top-k chunks per question (as a caller in its groups, if it has any), timed; returns the
    results, with the chunks the question's groups may not see counted, and the retrieved texts."""
    results, contexts = [], []
    retriever.search(golden.questions[0].question, k, groups=None)  # untimed: the first call loads the model
    for question in golden.questions:
        started = time.perf_counter()
        hits = retriever.search(question.question, k, groups=question.groups)
        latency_ms = (time.perf_counter() - started) * 1000
        access = retriever.access(question.groups)
        results.append(QuestionResult(
            id=question.id, answerable=question.answerable, tags=list(question.tags), latency_ms=round(latency_ms, 2),
            retrieved=[{"source": h.payload.get("source"), "chunk_id": h.payload.get("chunk_id"),
                        "score": round(h.score, 4)} for h in hits],
            groups=None if question.groups is None else list(question.groups),
            leaked=0 if access is None else sum(not access.allows(h.payload.get("acl")) for h in hits),
        ))
        contexts.append([h.payload.get("text", "") for h in hits])
    return results, contexts


def score_ranking(question: GoldenQuestion, result: QuestionResult, texts: list[str]) -> None:
    chunks = [(from_source(r["source"] or "", question.reference_sources) or "", text)
              for r, text in zip(result.retrieved, texts)]
    items = len(question.reference_contexts) or len(question.reference_sources)
    scores = ranking_scores(credited_items(chunks, question.reference_contexts, question.reference_sources), items)
    result.scores.update(hit_rate=scores.hit, mrr=scores.reciprocal_rank, ndcg=scores.ndcg)


class ErrorLog:
    """Errors of the generator and the judge, grouped by where they happened, their type and
    message; bounded (the first MAX_ERROR_KINDS kinds) and short (the message's first line, cut
    to MAX_ERROR_MESSAGE characters): metadata stays small, and the prompt or model output a
    library quotes on later lines (where passages would be) is left out."""

    def __init__(self):
        self._counts: dict[tuple[str, str, str], int] = {}

    def add(self, where: str, error: BaseException) -> None:
        lines = str(error).strip().splitlines()
        key = (where, type(error).__name__, (lines[0] if lines else "")[:MAX_ERROR_MESSAGE])
        if key in self._counts or len(self._counts) < MAX_ERROR_KINDS:
            self._counts[key] = self._counts.get(key, 0) + 1

    def entries(self) -> list[dict[str, Any]]:
        return [{"where": where, "type": kind, "message": message, "count": count}
                for (where, kind, message), count in self._counts.items()]


class MetricErrors(BaseCallbackHandler):
    """Hands the ErrorLog every exception a RAGAS metric gave up on: with
    ``raise_exceptions=False`` RAGAS only logs it and scores NaN."""

    def __init__(self, log: ErrorLog):
        self._log = log
        self._metric_runs: dict[Any, str] = {}

    def on_chain_start(self, serialized, inputs, *, run_id, metadata=None, **kwargs) -> None:
        from ragas.callbacks import ChainType

        if (metadata or {}).get("type") == ChainType.METRIC:
            self._metric_runs[run_id] = RAGAS_NAMES.get(serialized["name"], serialized["name"])

    def on_chain_error(self, error, *, run_id, **kwargs) -> None:
        if run_id in self._metric_runs:
            self._log.add(self._metric_runs[run_id], error)


class EmbedderForRagas(Embeddings):
    """The pipeline's embedder, as the LangChain embeddings RAGAS's answer relevancy needs."""

    def __init__(self, embedder):
        self._embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._embedder.embed([text])[0]


def run_ragas(samples: list[dict[str, Any]], metrics: list, errors: ErrorLog, llm=None,
              embeddings=None) -> tuple[list[dict[str, float]], int]:
    """Score samples with RAGAS; returns per-sample scores (our names, NaN where a metric could
    not be computed, its error in ``errors``) and the judge's tokens."""
    from ragas import EvaluationDataset, RunConfig, evaluate
    from ragas.cost import get_token_usage_for_openai

    if not samples:
        return [], 0
    result = evaluate(
        EvaluationDataset.from_list(samples), metrics=metrics, llm=llm, embeddings=embeddings,
        token_usage_parser=get_token_usage_for_openai if llm is not None else None,
        run_config=RunConfig(timeout=300, max_retries=2, max_workers=4),
        show_progress=False, raise_exceptions=False, callbacks=[MetricErrors(errors)],
    )
    scores = [{RAGAS_NAMES[name]: float(value) for name, value in row.items() if name in RAGAS_NAMES}
              for row in result.scores]
    tokens = 0
    if llm is not None and result.cost_cb.usage_data:  # none when every judge call failed
        usage = result.total_tokens()
        tokens = usage.input_tokens + usage.output_tokens
    return scores, tokens


def unscored(names) -> dict[str, float]:
    """NaN for metrics that apply to a question but could not be computed: they count against
    the metric's scored share in the gate."""
    return dict.fromkeys(names, math.nan)


def score_retrieval(golden: GoldenSet, results: list[QuestionResult], contexts: list[list[str]],
                    errors: ErrorLog) -> None:
    from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall

    scored = [(q, r, c) for q, r, c in zip(golden.questions, results, contexts) if q.answerable]
    for question, result, texts in scored:
        score_ranking(question, result, texts)
        if question.reference_contexts and not texts:
            result.scores.update(unscored(("non_llm_context_recall", "non_llm_context_precision")))
    with_passages = [(q, r, c) for q, r, c in scored if q.reference_contexts and c]
    metrics = [NonLLMContextRecall(_distance_measure=PassageCoverage()),
               NonLLMContextPrecisionWithReference(distance_measure=PassageCoverage())]
    samples = [{"user_input": q.question, "retrieved_contexts": c, "reference_contexts": list(q.reference_contexts)}
               for q, _, c in with_passages]
    for (_, result, _), scores in zip(with_passages, run_ragas(samples, metrics, errors)[0], strict=True):
        result.scores.update(scores)


def answer_messages(question: str, contexts: list[str]) -> list[dict[str, str]]:
    passages = "\n\n".join(f"[{number}] {text}" for number, text in enumerate(contexts, start=1))
    return [{"role": "system", "content": GROUNDED_PROMPT},
            {"role": "user", "content": f"Context passages:\n{passages}\n\nQuestion: {question}"}]


def is_abstention(answer: str) -> bool:
    return ABSTENTION.lower() in answer.lower().replace("’", "'")


def score_generation(golden: GoldenSet, results: list[QuestionResult], contexts: list[list[str]],
                     generator, judge, embedder, errors: ErrorLog) -> dict[str, int]:
    """Answer every question, score the answers; returns the tokens each LLM used. A question
    the generator fails on is logged and left unscored, never a reason to stop the run."""
    from ragas.embeddings import LangchainEmbeddingsWrapper
    from ragas.llms import LangchainLLMWrapper
    from ragas.metrics import Faithfulness, LLMContextPrecisionWithReference, LLMContextRecall, ResponseRelevancy

    generator_tokens = 0
    for question, result, texts in zip(golden.questions, results, contexts):
        try:
            completion = generator.complete(answer_messages(question.question, texts))
        except Exception as error:  # noqa: BLE001 - the gate fails on the scored share, with the errors
            errors.add("generator", error)
            result.scores.update(unscored(GENERATION_METRICS if question.answerable else ("abstention",)))
            continue
        generator_tokens += completion.prompt_tokens + completion.completion_tokens
        result.answer = completion.texts[0]
        if not question.answerable:
            result.scores["abstention"] = 1.0 if is_abstention(result.answer) else 0.0
    scored = [(q, r, c) for q, r, c in zip(golden.questions, results, contexts)
              if q.answerable and r.answer is not None]
    samples = [{"user_input": q.question, "retrieved_contexts": c, "response": r.answer, "reference": q.ground_truth}
               for q, r, c in scored]
    metrics = [Faithfulness(), ResponseRelevancy(strictness=3), LLMContextPrecisionWithReference(), LLMContextRecall()]
    scores, judge_tokens = run_ragas(samples, metrics, errors, llm=LangchainLLMWrapper(judge.langchain_model()),
                                     embeddings=LangchainEmbeddingsWrapper(EmbedderForRagas(embedder)))
    for (_, result, _), question_scores in zip(scored, scores, strict=True):
        result.scores.update(question_scores)
    return {"generator_tokens": generator_tokens, "judge_tokens": judge_tokens}


def _mean(values: list[float]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return round(sum(present) / len(present), 4) if present else None


def coverage(results: list[QuestionResult]) -> dict[str, dict[str, int]]:
    """Per metric, the questions it applies to and how many of them it scored (not NaN)."""
    counts: dict[str, dict[str, int]] = {}
    for result in results:
        for name, value in result.scores.items():
            entry = counts.setdefault(name, {"scored": 0, "applicable": 0})
            entry["applicable"] += 1
            entry["scored"] += not math.isnan(value)
    return counts


def aggregate(results: list[QuestionResult]) -> dict[str, float]:
    """Mean of each metric over the questions that have it (values RAGAS could not compute,
    NaN, are left out: ``Evaluation.unscored`` counts them); composite = mean of the four
    generation metrics."""
    names = [*RETRIEVAL_METRICS, *GENERATION_METRICS, "abstention"]
    means = {name: _mean([r.scores.get(name) for r in results if name in r.scores]) for name in names}
    aggregates = {name: value for name, value in means.items() if value is not None}
    if "abstention" in aggregates:
        aggregates["abstention_rate"] = aggregates.pop("abstention")
    if all(name in aggregates for name in GENERATION_METRICS):
        aggregates["composite"] = round(sum(aggregates[n] for n in GENERATION_METRICS) / len(GENERATION_METRICS), 4)
    return aggregates


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)] if ordered else 0.0


def question_score(result: QuestionResult) -> float:
    """One number per question to rank the worst: the mean of its metrics."""
    values = [v for v in result.scores.values() if not math.isnan(v)]
    return sum(values) / len(values) if values else 0.0


def worst_questions(results: list[QuestionResult], count: int = 10) -> list[QuestionResult]:
    scored = [r for r in results if r.scores]
    return sorted(scored, key=lambda r: (question_score(r), r.id))[:count]


@dataclass
class Evaluation:
    results: list[QuestionResult]
    aggregates: dict[str, float]
    tokens: dict[str, int]
    latency_ms: dict[str, float]
    generation: bool  # whether the generation tier ran
    unscored: int  # metric values that could not be computed (generator or judge errors, NaN output)
    coverage: dict[str, dict[str, int]]  # per metric: questions scored and questions it applies to
    errors: list[dict[str, Any]]  # ErrorLog.entries()


def evaluate_candidate(golden: GoldenSet, retriever, k: int, embedder, generator=None, judge=None) -> Evaluation:
    """Both tiers over one candidate index; the generation tier only with a generator and a judge."""
    errors = ErrorLog()
    results, contexts = retrieve_all(golden, retriever, k)
    score_retrieval(golden, results, contexts, errors)
    generation = generator is not None and judge is not None
    tokens = {"generator_tokens": 0, "judge_tokens": 0}
    if generation:
        tokens = score_generation(golden, results, contexts, generator, judge, embedder, errors)
    latencies = [r.latency_ms for r in results]
    return Evaluation(
        results=results, aggregates=aggregate(results), tokens=tokens, generation=generation,
        unscored=sum(1 for r in results for value in r.scores.values() if math.isnan(value)),
        coverage=coverage(results), errors=errors.entries(),
        latency_ms={"p50": round(percentile(latencies, 0.5), 2), "p95": round(percentile(latencies, 0.95), 2)},
    )
