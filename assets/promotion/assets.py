"""Promotion: point the serving alias at a candidate that passed the gate, or back."""


from typing import Any

from dagster import (
    AssetExecutionContext,
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Output,
    ResourceParam,
    asset,
    job,
    op,
)

from assets.ingestion.stages import collection_name
from assets.placement import LIGHT_CPU_STEP
from assets.promotion.versions import collections_to_drop, kept_collections
from resources.evaluation_store import EvaluationStore
from resources.settings import EvaluationSettings, IngestionSettings
from resources.vector_stores import VectorStore

GROUP = "promotion"
ROLLBACK_JOB = "rollback"


def move_alias(vector_store: VectorStore, store: EvaluationStore, alias: str, collection: str,
                keep: int, run_id: str, reason: str) -> dict[str, Any]:
    """Move the alias in one step, record it, then drop promoted versions beyond ``keep``."""
    previous = vector_store.alias_target(alias)
    vector_store.point_alias(alias, collection)
    if previous != collection:
        store.record_promotion(alias, collection, run_id, reason)
    history = store.promotions(alias)
    dropped = collections_to_drop(list(vector_store.collections()), history, keep)
    for name in dropped:
        vector_store.delete_collection(name)
    return {"alias": alias, "collection": collection, "previous": previous, "dropped": dropped,
            "kept": kept_collections(history, keep)}


@asset(
    group_name=GROUP,
    kinds={"python", "qdrant"},
    op_tags=LIGHT_CPU_STEP,
    description=(
        "Points the alias (the serving one, or a golden-set namespace's own) at the evaluated "
        "candidate, atomically, only when every blocking gate check on rag_evaluation passed; "
        "keeps the last N promoted versions for rollback (job `rollback`) and drops older ones."
    ),
)
def promoted_index(context: AssetExecutionContext, rag_evaluation: dict, vector_store: ResourceParam[VectorStore],
                   evaluation_store: EvaluationStore, evaluation_settings: EvaluationSettings,
                   ingestion_settings: IngestionSettings) -> Output[dict]:
    if not rag_evaluation["gate_passed"]:  # materialized on its own, after a failed gate
        failed = "; ".join(g["reason"] for g in rag_evaluation["gate"] if not g["passed"])
        raise Failure(description=f"{rag_evaluation['collection']} did not pass the gate: {failed}")
    promotion = move_alias(
        vector_store, evaluation_store, ingestion_settings.alias, rag_evaluation["collection"],
        evaluation_settings.keep_versions, context.run_id, f"gate passed (evaluation run {rag_evaluation['run_id']})",
    )
    return Output(promotion, metadata={
        "alias": promotion["alias"], "collection": promotion["collection"], "previous": str(promotion["previous"]),
        "kept": MetadataValue.json(promotion["kept"]), "dropped": MetadataValue.json(promotion["dropped"]),
    })


class RollbackConfig(Config):
    version: str  # an index version, or a full collection name


@op(description="Points the serving alias back to a kept index version.", tags=LIGHT_CPU_STEP)
def roll_back_alias(context: OpExecutionContext, config: RollbackConfig, vector_store: ResourceParam[VectorStore],
                    evaluation_store: EvaluationStore, evaluation_settings: EvaluationSettings,
                    ingestion_settings: IngestionSettings) -> dict:
    alias = ingestion_settings.alias
    target = config.version if config.version.startswith(f"{alias}__") else collection_name(alias, config.version)
    if not vector_store.collection_exists(target):
        kept = kept_collections(evaluation_store.promotions(alias), evaluation_settings.keep_versions)
        raise Failure(description=f"no collection {target}; versions kept: {', '.join(kept) or 'none'}")
    promotion = move_alias(vector_store, evaluation_store, alias, target, evaluation_settings.keep_versions,
                            context.run_id, "rollback")
    context.log.info(f"alias {alias} now points to {target} (was {promotion['previous']})")
    return promotion


@job(name=ROLLBACK_JOB, description="Point the serving alias back to an earlier kept index version.")
def rollback():
    roll_back_alias()


PROMOTION_ASSETS = [promoted_index]
