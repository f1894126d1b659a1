"""The evaluation asset: scores the candidate index on a golden set and gates its promotion."""


from pathlib import Path
from typing import Optional

from dagster import (
    Any,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    Failure,
    MetadataValue,
    Output,
    ResourceParam,
    asset,
)

from assets.evaluation import gate
from assets.evaluation.candidate import candidate_of, check_complete
from assets.evaluation.golden import load_golden_set
from assets.evaluation.scoring import Evaluation, ProgressLog, evaluate_collection, worst_report
from assets.placement import HEAVY_CPU_STEP
from core.types import Manifest
from resources.embedders import Embedder
from resources.evaluation_store import EvaluationStore
from resources.ledger import Ledger
from resources.llm import ChatModel
from resources.settings import EvaluationSettings, IngestionSettings
from resources.vector_stores import VectorStore

GROUP = "evaluation"
CHECK_DESCRIPTIONS = {
    "retrieval_floor": "Retrieval recall is at least the retrieval floor (min_retrieval_recall): RAGAS non-LLM "
                       "context recall of the top k chunks by reference-context coverage, or answer-in-chunk "
                       "hit@k for a golden set with answer spans and no reference contexts.",
    "faithfulness": "Faithfulness is above its threshold (default 0.85); needs a generator and a judge.",
    "composite": "Composite (mean of faithfulness, answer relevancy, context recall and precision) is above "
                 "its threshold (default 0.78); needs a generator and a judge.",
    "context_recall_regression": "Context recall is no more than max_recall_drop (default 5%) below the "
                                 "promoted version's last evaluation on the same golden set (whatever its "
                                 "retriever or top k).",
    "no_acl_leak": "Every chunk retrieved for a golden question that carries groups is one those groups may see "
                   "(its acl shares a group with them, or it has no acl and unlabelled chunks are public); any "
                   "leak fails, whatever the scores. The metadata names the leaking question ids and counts.",
}
SCORED_SHARE_NOTE = (" Fails when a metric it reads was scored on fewer than min_scored_share (default 90%) "
                     "of the questions it applies to; the generator's and judge's errors are in its metadata.")


def thresholds_of(settings: EvaluationSettings) -> gate.GateThresholds:
    return gate.GateThresholds(
        faithfulness=settings.faithfulness_threshold, composite=settings.composite_threshold,
        max_recall_drop=settings.max_recall_drop, min_retrieval_recall=settings.min_retrieval_recall,
        min_scored_share=settings.min_scored_share, require_generation=settings.require_generation,
    )


def _worst_table(worst: list[dict]) -> MetadataValue:
    """The worst questions as the UI shows them: what was asked, where the answer is, what came
    first instead and why it missed (cells kept on one line, pipes escaped)."""
    def cell(value) -> str:
        return " ".join(str(value or "").split()).replace("|", "\\|")

    lines = ["| id | question | expected | top retrieved | reason |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {cell(w['id'])} | {cell(w['question'])} | {cell(', '.join(w['expected_sources']))} "
              f"| {cell(w['top_source'])} | {cell(w['reason'])} |" for w in worst]
    return MetadataValue.md("\n".join(lines))


def _summary(run_id: str, golden, index: dict, alias: str, promoted: str | None, setup: dict,
             evaluation: Evaluation, verdicts: list[gate.Verdict], models: dict, chunks: int) -> dict:
    """What the run concluded: the asset's value, the summary file and the CLI's report."""
    return {
        **setup, "run_id": run_id, "golden_set": golden.name, "questions": len(golden.questions),
        "golden_set_notes": list(golden.notes), "collection": index["collection"], "chunks": chunks,
        "index_version": index["index_version"], "alias": alias,
        "promoted_collection": promoted, "models": models, "generation_tier": evaluation.generation,
        "unscored_values": evaluation.unscored, "scored": evaluation.coverage, "errors": evaluation.errors,
        "aggregates": evaluation.aggregates, "tokens": evaluation.tokens, "seconds": evaluation.seconds,
        "gate": [{"check": v.check, "passed": v.passed, "reason": v.reason} for v in verdicts],
        "gate_passed": all(v.passed for v in verdicts),
        "worst": worst_report(golden, evaluation.results),
    }


def _metadata(summary: dict, evaluation: Evaluation) -> dict:
    """Aggregates as numbers (so the UI plots them across runs), then the run's context."""
    metadata = {name: MetadataValue.float(float(value)) for name, value in evaluation.aggregates.items()}
    metadata.update(
        collection=summary["collection"], chunks=summary["chunks"], golden_set=summary["golden_set"],
        retriever=summary["retriever"], top_k=summary["top_k"], models=MetadataValue.json(summary["models"]),
        generation_tier="computed" if evaluation.generation else "not computed (no generator/judge configured)",
        unscored_values=evaluation.unscored, errors=MetadataValue.json(evaluation.errors), **evaluation.tokens,
        seconds=MetadataValue.json(evaluation.seconds), worst_questions=_worst_table(summary["worst"]),
    )
    if summary["golden_set_notes"]:
        metadata["golden_set_notes"] = MetadataValue.md("\n".join(f"- {n}" for n in summary["golden_set_notes"]))
    return metadata


@asset(
    group_name=GROUP,
    kinds={"python", "ragas"},
    op_tags=HEAVY_CPU_STEP,
    description=(
        "Scores the candidate index on the golden set with the serving retriever (hybrid: the store's own, "
        "else dense + BM25 with reciprocal rank fusion; or dense), questions embedded and searched in batches: "
        "hit@k (k = 1, 3, 5, 10 by default), MRR@10 and nDCG@10 by reference-context coverage and, for questions "
        "with answer spans, by answer-in-chunk, and RAGAS non-LLM context recall/precision always; RAGAS "
        "faithfulness, answer relevancy and LLM context precision/recall when a generator and a judge are "
        "configured. Questions that carry groups are asked as a caller in those groups. Its blocking checks "
        "are the promotion gate. With shards, it scores the index every shard wrote, and fails unless every "
        "shard's full reconcile completed for that index version."
    ),
    # With shards, a shard never run yet is reported by the completeness check, by its buckets.
    ins={"vector_index": AssetIn(metadata={"allow_missing_partitions": True}, dagster_type=Any)},
    check_specs=[AssetCheckSpec(name, asset="rag_evaluation", blocking=True,
                                description=text + (SCORED_SHARE_NOTE if name != "no_acl_leak" else ""))
                 for name, text in CHECK_DESCRIPTIONS.items()],
)
def rag_evaluation(
    context: AssetExecutionContext,
    vector_index: Manifest | dict[str, Manifest],
    vector_store: ResourceParam[VectorStore],
    ledger: Ledger,
    embedder: ResourceParam[Embedder],
    generator: ResourceParam[Optional[ChatModel]],
    judge: ResourceParam[Optional[ChatModel]],
    evaluation_settings: EvaluationSettings,
    evaluation_store: EvaluationStore,
    ingestion_settings: IngestionSettings,
):
    settings = evaluation_settings
    try:
        golden = load_golden_set(Path(settings.golden_set_dir))
        cutoffs = settings.cutoffs()
        candidate = candidate_of(vector_index)
        check_complete(candidate, ledger.completed(candidate["index_version"]))
    except ValueError as error:  # GoldenSetError, IncompleteCandidate, bad cutoffs: the message says which
        raise Failure(description=str(error)) from None
    for note in golden.notes:
        context.log.warning(f"golden set {golden.name}: {note}")
    collection, alias = candidate["collection"], ingestion_settings.alias
    evaluation = evaluate_collection(golden, vector_store, embedder, collection, settings, generator=generator,
                                     judge=judge, progress=ProgressLog(context.log.info),
                                     question_cache=evaluation_store)
    # The baseline is the promoted version on the same questions, whatever its retriever or k:
    # a change of retriever or k is exactly what the regression check must judge.
    same_questions = {"golden_set_fingerprint": golden.fingerprint}
    promoted = vector_store.alias_target(alias)
    baseline = evaluation_store.latest_summary(promoted, same_questions) if promoted else None
    verdicts = gate.judge(evaluation.aggregates, baseline, thresholds_of(settings),
                          gate.Scoring(evaluation.coverage, evaluation.errors), gate.AccessAudit.of(evaluation.results),
                          top_k=settings.top_k)
    setup = {**same_questions, "retriever": settings.retriever, "top_k": settings.top_k, "hit_cutoffs": list(cutoffs),
             "unlabelled_access": settings.unlabelled_access}
    models = {role: model.identity() for role, model in (("generator", generator), ("judge", judge)) if model}
    summary = _summary(context.run_id, golden, candidate, alias, promoted, setup, evaluation, verdicts, models,
                       vector_store.count(collection))
    results_path = evaluation_store.save_run(context.run_id, summary, [r.to_dict() for r in evaluation.results])
    metadata = _metadata(summary, evaluation)
    metadata["results"] = MetadataValue.path(str(results_path))
    yield Output(summary, metadata=metadata)
    for verdict in verdicts:
        yield AssetCheckResult(check_name=verdict.check, passed=verdict.passed, description=verdict.reason,
                               metadata=verdict.metadata)


EVALUATION_ASSETS = [rag_evaluation]
