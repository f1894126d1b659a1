"""Score a candidate index on a golden set.

Retrieval tier (always, offline): the questions are embedded in batches (or read from the
cache of a previous run with the same embedder) and searched in batches; for every answerable
question, hit@k at each cut-off, MRR@10 and nDCG@10 by reference-context coverage and, when it
has answer spans, by answer-in-chunk (see ``relevance``), plus the RAGAS non-LLM context
recall and precision of the top k chunks.
Generation tier (when a generator and a judge are configured): the generator answers every
question from the retrieved chunks with a grounded prompt; RAGAS faithfulness, response
relevancy and LLM context precision/recall score the answerable ones; unanswerable ones
score whether the generator abstained ("I don't know").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.embeddings import Embeddings

from assets.evaluation.golden import GoldenQuestion, GoldenSet
from assets.evaluation.relevance import (
    RANK_DEPTH,
    answer_credits,
    answer_split,
    credited_items,
    passage_split,
    ranking_metrics,
)
from assets.evaluation.retrieval import Retriever
from resources.settings import EvaluationSettings

DEFAULT_KS = (1, 3, 5, 10)
RAGAS_RETRIEVAL_METRICS = ("non_llm_context_recall", "non_llm_context_precision")
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
SEARCH_BATCH = 64  # questions per batched search: progress is reported between batches
EMBED_BATCH = 256
MAX_ERROR_MESSAGE = 120
GROUNDED_PROMPT = (
    "You answer questions about a company's knowledge base using only the numbered context "
    "passages below. Do not use any other knowledge. If the passages do not contain the "
    f"answer, reply exactly: {ABSTENTION}. Answer in at most three sentences."
)


def ranking_names(ks: Sequence[int]) -> list[str]:
    """The ranking metrics' names, per definition: reference-context coverage, then answer-in-chunk."""
    per_definition = [*(f"hit@{k}" for k in ks), f"mrr@{RANK_DEPTH}", f"ndcg@{RANK_DEPTH}"]
    return per_definition + [f"answer_{name}" for name in per_definition]


@dataclass
class QuestionResult:
    """One golden question's outcome; what the per-run artifact file holds (no chunk text)."""

    id: str
    question: str
    answerable: bool
    tags: list[str]
    expected_sources: list[str]
    retrieved: list[dict[str, Any]]  # source, chunk_id, score, token_count, in rank order (to RANK_DEPTH)
    retrieved_tokens: int = 0  # tokens of the top k chunks: what a generator would read
    groups: list[str] | None = None  # the caller's groups the question was asked with
    leaked: int = 0  # retrieved chunks those groups may not see (the gate's no_acl_leak)
    reason: str | None = None  # where the first relevant chunk ranked, or why none was found
    answer: str | None = None
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def from_source(source_uri: str, relative_paths: tuple[str, ...]) -> str | None:
    """The reference source a chunk's source URI is, matched by path suffix so that a
    copy of the corpus elsewhere still matches."""
    path = unquote(urlparse(source_uri).path)
    return next((relative for relative in relative_paths if path.endswith("/" + relative.lstrip("/"))), None)


class ProgressLog:
    """Reports a stage's progress (questions done, rate, time left) through ``log``: at most
    every ``every_s`` seconds, and always when the stage completes."""

    def __init__(self, log: Callable[[str], None], every_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._log, self._every_s, self._clock = log, every_s, clock
        self._started: dict[str, float] = {}
        self._last = -math.inf

    def __call__(self, stage: str, done: int, total: int) -> None:
        """``done`` = 0 starts the stage's clock."""
        now = self._clock()
        started = self._started.setdefault(stage, now)
        if done == 0 or (done < total and now - self._last < self._every_s):
            return
        self._last = now
        elapsed = now - started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f", about {(total - done) / rate:.0f} s left" if rate and done < total else ""
        self._log(f"{stage}: {done}/{total} questions ({rate:.1f}/s, {elapsed:.1f} s){left}")


def _no_progress(stage: str, done: int, total: int) -> None:
    """The default: nobody is watching."""


def question_vectors_key(golden: GoldenSet, embedder_identity: dict[str, Any]) -> str:
    """What cached question embeddings depend on: the questions and the embedder itself."""
    material = json.dumps({"embedder": embedder_identity, "questions": [q.question for q in golden.questions]},
                          sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def embed_questions(golden: GoldenSet, embedder, progress=_no_progress) -> list[list[float]]:
    """Every question's embedding, in batches, reporting progress between them."""
    texts = [q.question for q in golden.questions]
    vectors: list[list[float]] = []
    progress("embedding questions", 0, len(texts))
    for start in range(0, len(texts), EMBED_BATCH):
        vectors += embedder.embed(texts[start:start + EMBED_BATCH])
        progress("embedding questions", len(vectors), len(texts))
    return vectors


def question_embeddings(golden: GoldenSet, embedder, cache=None, progress=_no_progress) -> list[list[float]]:
    """The questions' embeddings: from ``cache`` (an EvaluationStore) when this embedder already
    embedded these questions, else computed and cached."""
    key = question_vectors_key(golden, embedder.identity())
    vectors = cache.question_vectors(key) if cache is not None else None
    if vectors is None or len(vectors) != len(golden.questions):
        vectors = embed_questions(golden, embedder, progress)
        if cache is not None:
            cache.save_question_vectors(key, vectors)
    return vectors


def retrieve_all(golden: GoldenSet, retriever, depth: int, top_k: int, vectors: list[list[float]],
                 progress=_no_progress) -> tuple[list[QuestionResult], list[list[str]]]:
    """The top ``depth`` chunks per question (as a caller in its groups, if it has any), searched
    in batches; returns the results, with the chunks the question's groups may not see counted
    and the tokens of the top ``top_k``, and the retrieved texts."""
    results, texts = [], []
    questions = golden.questions
    progress("retrieval", 0, len(questions))
    for start in range(0, len(questions), SEARCH_BATCH):
        batch = questions[start:start + SEARCH_BATCH]
        found = retriever.search_many([q.question for q in batch], depth, groups=[q.groups for q in batch],
                                      vectors=vectors[start:start + SEARCH_BATCH])
        for question, hits in zip(batch, found, strict=True):
            access = retriever.access(question.groups)
            results.append(QuestionResult(
                id=question.id, question=question.question, answerable=question.answerable, tags=list(question.tags),
                expected_sources=list(question.reference_sources),
                retrieved=[{"source": h.payload.get("source"), "chunk_id": h.payload.get("chunk_id"),
                            "score": round(h.score, 4), "token_count": h.payload.get("token_count")} for h in hits],
                retrieved_tokens=sum(h.payload.get("token_count") or 0 for h in hits[:top_k]),
                groups=None if question.groups is None else list(question.groups),
                leaked=0 if access is None else sum(not access.allows(h.payload.get("acl")) for h in hits),
            ))
            texts.append([h.payload.get("text", "") for h in hits])
        progress("retrieval", len(results), len(questions))
    return results, texts


def miss_reason(question: GoldenQuestion, chunks: list[tuple[str, str]], first_rank: int | None) -> str:
    """Where the first relevant chunk ranked or, when none was retrieved, why: no chunk from a
    reference document, the answer or passage cut between chunks, or the wrong chunks of the
    right document. ``chunks`` are the (reference source or "", text) retrieved, in rank order."""
    if first_rank is not None:
        return f"found at rank {first_rank}"
    on_target = [text for source, text in chunks if source or not question.reference_sources]
    if question.reference_sources and not on_target:
        return "wrong document: no retrieved chunk comes from a reference source"
    if answer_split(on_target, question.answers) or passage_split(on_target, question.reference_contexts):
        return "right document, answer split across chunks"
    if question.reference_sources:
        return "right document, wrong chunk"
    return f"not in the top {len(chunks)} chunks"


def score_ranking(question: GoldenQuestion, result: QuestionResult, texts: list[str], ks: Sequence[int]) -> None:
    """The ranking metrics by each definition the question supports, and the miss reason."""
    chunks = [(from_source(r["source"] or "", question.reference_sources) or "", text)
              for r, text in zip(result.retrieved, texts)]
    first_rank = None
    if question.reference_contexts or question.reference_sources:
        credits = credited_items(chunks, question.reference_contexts, question.reference_sources)
        items = len(question.reference_contexts) or len(question.reference_sources)
        result.scores.update(ranking_metrics(credits, items, ks))
        first_rank = next((rank for rank, item in enumerate(credits, start=1) if item is not None), None)
    if question.answers:
        credits = answer_credits(chunks, question.answers, question.reference_sources)
        result.scores.update(ranking_metrics(credits, 1, ks, prefix="answer_"))
        first_rank = next((rank for rank, item in enumerate(credits, start=1) if item is not None), None)
    result.reason = miss_reason(question, chunks, first_rank)


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


def score_without_model(samples: list[dict[str, Any]], metrics: list, errors: ErrorLog) -> list[dict[str, float]]:
    """RAGAS metrics that need no model, scored with their own ``single_turn_ascore`` on one
    event loop: RAGAS's ``evaluate`` adds about a millisecond a question in its executor, more
    than these metrics cost. A metric that fails scores NaN, its error in ``errors``."""
    from ragas.async_utils import run
    from ragas.dataset_schema import SingleTurnSample

    rows = [SingleTurnSample(**sample) for sample in samples]

    async def score_all() -> list:
        return await asyncio.gather(*(metric.single_turn_ascore(row) for row in rows for metric in metrics),
                                    return_exceptions=True)

    values = iter(run(score_all()) if rows else [])
    scores = []
    for _ in rows:
        row_scores = {}
        for metric in metrics:
            value, name = next(values), RAGAS_NAMES[metric.name]
            if isinstance(value, Exception):
                errors.add(name, value)
                value = math.nan
            row_scores[name] = float(value)
        scores.append(row_scores)
    return scores


def unscored(names) -> dict[str, float]:
    """NaN for metrics that apply to a question but could not be computed: they count against
    the metric's scored share in the gate."""
    return dict.fromkeys(names, math.nan)


def score_retrieval(golden: GoldenSet, results: list[QuestionResult], texts: list[list[str]], top_k: int,
                    ks: Sequence[int], errors: ErrorLog) -> None:
    from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall

    from assets.evaluation.ragas_metrics import PassageCoverage

    scored = [(q, r, t) for q, r, t in zip(golden.questions, results, texts) if q.answerable]
    for question, result, found in scored:
        score_ranking(question, result, found, ks)
        if question.reference_contexts and not found:
            result.scores.update(unscored(RAGAS_RETRIEVAL_METRICS))
    with_passages = [(q, r, found[:top_k]) for q, r, found in scored if q.reference_contexts and found]
    metrics = [NonLLMContextRecall(_distance_measure=PassageCoverage()),
               NonLLMContextPrecisionWithReference(distance_measure=PassageCoverage())]
    samples = [{"user_input": q.question, "retrieved_contexts": c, "reference_contexts": list(q.reference_contexts)}
               for q, _, c in with_passages]
    for (_, result, _), scores in zip(with_passages, score_without_model(samples, metrics, errors), strict=True):
        result.scores.update(scores)


def answer_messages(question: str, contexts: list[str]) -> list[dict[str, str]]:
    passages = "\n\n".join(f"[{number}] {text}" for number, text in enumerate(contexts, start=1))
    return [{"role": "system", "content": GROUNDED_PROMPT},
            {"role": "user", "content": f"Context passages:\n{passages}\n\nQuestion: {question}"}]


def is_abstention(answer: str) -> bool:
    return ABSTENTION.lower() in answer.lower().replace("’", "'")


def score_generation(golden: GoldenSet, results: list[QuestionResult], contexts: list[list[str]],
                     generator, judge, embedder, errors: ErrorLog, progress=_no_progress) -> dict[str, int]:
    """Answer every question, score the answers; returns the tokens each LLM used. A question
    the generator fails on is logged and left unscored, never a reason to stop the run."""
    from ragas.embeddings import LangchainEmbeddingsWrapper
    from ragas.llms import LangchainLLMWrapper
    from ragas.metrics import Faithfulness, LLMContextPrecisionWithReference, LLMContextRecall, ResponseRelevancy

    generator_tokens = 0
    progress("answering", 0, len(results))
    for done, (question, result, texts) in enumerate(zip(golden.questions, results, contexts), start=1):
        try:
            completion = generator.complete(answer_messages(question.question, texts))
        except Exception as error:  # noqa: BLE001 - the gate fails on the scored share, with the errors
            errors.add("generator", error)
            result.scores.update(unscored(GENERATION_METRICS if question.answerable else ("abstention",)))
        else:
            generator_tokens += completion.prompt_tokens + completion.completion_tokens
            result.answer = completion.texts[0]
            if not question.answerable:
                result.scores["abstention"] = 1.0 if is_abstention(result.answer) else 0.0
        progress("answering", done, len(results))
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


def aggregate(results: list[QuestionResult], ks: Sequence[int]) -> dict[str, float]:
    """Mean of each metric over the questions that have it (values RAGAS could not compute,
    NaN, are left out: ``Evaluation.unscored`` counts them); composite = mean of the four
    generation metrics; retrieved_tokens = mean tokens of the top k chunks per question."""
    names = [*ranking_names(ks), *RAGAS_RETRIEVAL_METRICS, *GENERATION_METRICS, "abstention"]
    means = {name: _mean([r.scores.get(name) for r in results if name in r.scores]) for name in names}
    aggregates = {name: value for name, value in means.items() if value is not None}
    if "abstention" in aggregates:
        aggregates["abstention_rate"] = aggregates.pop("abstention")
    if all(name in aggregates for name in GENERATION_METRICS):
        aggregates["composite"] = round(sum(aggregates[n] for n in GENERATION_METRICS) / len(GENERATION_METRICS), 4)
    if results:
        aggregates["retrieved_tokens"] = round(sum(r.retrieved_tokens for r in results) / len(results), 1)
    return aggregates


def question_score(result: QuestionResult) -> float:
    """One number per question to rank the worst: the mean of its metrics."""
    values = [v for v in result.scores.values() if not math.isnan(v)]
    return sum(values) / len(values) if values else 0.0


def worst_questions(results: list[QuestionResult], count: int = 10) -> list[QuestionResult]:
    scored = [r for r in results if r.scores]
    return sorted(scored, key=lambda r: (question_score(r), r.id))[:count]


def worst_report(golden: GoldenSet, results: list[QuestionResult], count: int = 10) -> list[dict[str, Any]]:
    """The worst questions as a reader needs them: the question, where its answer is, what came
    first instead (corpus-relative for the golden set's own corpus) and why it missed."""
    corpus = golden.corpus.resolve().as_uri() + "/"
    report = []
    for result in worst_questions(results, count):
        top = result.retrieved[0]["source"] if result.retrieved else None
        report.append({"id": result.id, "question": result.question, "expected_sources": result.expected_sources,
                       "top_source": top.removeprefix(corpus) if top else None, "reason": result.reason,
                       "scores": {name: round(value, 4) for name, value in result.scores.items()}})
    return report


@dataclass
class Evaluation:
    results: list[QuestionResult]
    aggregates: dict[str, float]
    tokens: dict[str, int]
    seconds: dict[str, float]  # embedding the questions, searching, scoring, answering
    generation: bool  # whether the generation tier ran
    unscored: int  # metric values that could not be computed (generator or judge errors, NaN output)
    coverage: dict[str, dict[str, int]]  # per metric: questions scored and questions it applies to
    errors: list[dict[str, Any]]  # ErrorLog.entries()


def evaluate_candidate(golden: GoldenSet, retriever, top_k: int, embedder, generator=None, judge=None, *,
                       ks: Sequence[int] = DEFAULT_KS, progress=_no_progress, question_cache=None) -> Evaluation:
    """Both tiers over one candidate index; the generation tier only with a generator and a judge.
    Rankings are read to the deepest of ``ks`` and RANK_DEPTH; RAGAS and the generator see the
    top ``top_k``. ``question_cache``: where question embeddings are cached (an EvaluationStore)."""
    errors, clock = ErrorLog(), time.perf_counter
    started = clock()
    vectors = question_embeddings(golden, embedder, question_cache, progress)
    embedded = clock()
    results, texts = retrieve_all(golden, retriever, max(*ks, RANK_DEPTH, top_k), top_k, vectors, progress)
    searched = clock()
    score_retrieval(golden, results, texts, top_k, ks, errors)
    scored = clock()
    generation = generator is not None and judge is not None
    tokens = {"generator_tokens": 0, "judge_tokens": 0}
    if generation:
        contexts = [found[:top_k] for found in texts]
        tokens = score_generation(golden, results, contexts, generator, judge, embedder, errors, progress)
    seconds = {"embedding": embedded - started, "search": searched - embedded, "scoring": scored - searched,
               "generation": clock() - scored}
    return Evaluation(
        results=results, aggregates=aggregate(results, ks), tokens=tokens, generation=generation,
        seconds={stage: round(value, 3) for stage, value in seconds.items()},
        unscored=sum(1 for r in results for value in r.scores.values() if math.isnan(value)),
        coverage=coverage(results), errors=errors.entries(),
    )


def evaluate_collection(golden: GoldenSet, vector_store, embedder, collection: str, settings: EvaluationSettings, *,
                        generator=None, judge=None, progress=_no_progress, question_cache=None) -> Evaluation:
    """``evaluate_candidate`` on one collection with the retriever, top k and cut-offs the
    evaluation settings name: what the gate scores, and what ``ragpipe eval --compare`` scores a
    kept version with."""
    retriever = Retriever(vector_store, embedder, collection, settings.retriever, unlabelled=settings.unlabelled_access)
    return evaluate_candidate(golden, retriever, settings.top_k, embedder, generator, judge, ks=settings.cutoffs(),
                              progress=progress, question_cache=question_cache)
