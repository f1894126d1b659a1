"""The ingestion assets: one per stage, each a thin wrapper around a stage function."""


import time
from collections import Counter
from dataclasses import replace

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MetadataValue,
    Output,
    ResourceParam,
    asset,
)

from assets.ingestion import stages
from assets.ingestion.changes import CHANGE_CLASSES, expected_point_count
from assets.screening.assets import build_screener
from core.types import LeaseHeld, LedgerRow, Manifest
from resources.azure_ai import InjectionShield, PiiDetector
from resources.embedders import Embedder
from resources.ledger import Ledger
from resources.ocr import OcrEngine
from resources.screening import ScreeningSettings
from resources.settings import IngestionSettings
from resources.sources import DocumentSource
from resources.staging import LocalStaging
from resources.vector_stores import VectorStore

GROUP = "ingestion"
MAX_LISTED_REJECTIONS = 50


def _rejections_table(rejected: list[dict[str, str]]) -> MetadataValue:
    lines = ["| source | status | reason |", "| --- | --- | --- |"]
    lines += [
        f"| {r['source']} | {r['status']} | {r['reason'].replace('|', '/')} |"
        for r in rejected[:MAX_LISTED_REJECTIONS]
    ]
    if len(rejected) > MAX_LISTED_REJECTIONS:
        lines.append(f"| … | | {len(rejected) - MAX_LISTED_REJECTIONS} more in the ledger |")
    return MetadataValue.md("\n".join(lines))


def _finish(context: AssetExecutionContext, manifest: Manifest, report: stages.StageReport,
            started: float, ledger: Ledger | None = None, version: str = "",
            rejections: list[LedgerRow] = ()) -> Output:
    """Record rejections in the ledger and return the manifest with the stage's metadata."""
    if rejections:
        ledger.record(version, [replace(row, run_id=context.run_id) for row in rejections])
    metadata = {name: int(count) for name, count in sorted(report.counts.items())}
    metadata.update(
        records_out=manifest.count,
        batches=len(manifest.paths),
        duration_s=round(time.monotonic() - started, 3),
    )
    if report.rejected:
        metadata["rejected"] = _rejections_table(report.rejected)
    if report.preview:
        metadata["preview_redacted"] = MetadataValue.text(report.preview)
    counts = ", ".join(f"{name} {count}" for name, count in sorted(report.counts.items()))
    context.log.info(f"{manifest.stage}: {counts or 'nothing to do'}; {manifest.count} records out")
    return Output(manifest, metadata=metadata)


def _hold_writer_lease(context: AssetExecutionContext, ledger: Ledger, collection: str, wait_s: float) -> None:
    """One writer per collection: wait for the run writing it, or fail naming that run."""

    def finished(run_id: str) -> bool:
        run = context.instance.get_run_by_id(run_id)
        return run is not None and run.is_finished

    try:
        ledger.acquire_lease(collection, context.run_id, wait_s, finished)
    except LeaseHeld as error:
        raise Failure(description=str(error)) from None


@asset(
    group_name=GROUP,
    kinds={"python", "source"},
    description=(
        "Takes the collection's writer lease (one writer per collection), then lists the "
        "document source, hashes every document (doc_id = sha256 of its bytes) and "
        "classifies it against the ledger as new, changed, unchanged, retry or deleted. Only "
        "new, changed and retried documents are staged for the next stages."
    ),
)
def raw_documents(
    context: AssetExecutionContext,
    source: ResourceParam[DocumentSource],
    embedder: ResourceParam[Embedder],
    vector_store: ResourceParam[VectorStore],
    ledger: Ledger,
    staging: LocalStaging,
    ingestion_settings: IngestionSettings,
    screening_settings: ScreeningSettings,
) -> Output[Manifest]:
    started = time.monotonic()
    pii_config = screening_settings.pii_config()
    try:
        ingestion_settings.validate_against(embedder.max_input_tokens(), embedder.name())
        pii_config.validate(screening_settings.pii_hash_salt)
    except ValueError as error:
        raise Failure(description=str(error)) from None
    version = stages.current_index_version(embedder, ingestion_settings, pii_config.fingerprint())
    collection = stages.collection_name(ingestion_settings.alias, version)
    _hold_writer_lease(context, ledger, collection, ingestion_settings.writer_wait_s)
    rows = ledger.rows(version)
    if rows and not vector_store.collection_exists(collection):  # dropped by hand: rebuild it all
        ledger.record(version, [
            replace(row, status="deleted", reason=f"collection {collection} was missing; rebuilt",
                    indexed_doc_id=None, chunk_count=0, run_id=context.run_id)
            for row in rows.values() if row.status != "deleted"
        ])
        rows = ledger.rows(version)
    staging.prune(context.run_id)
    writer = staging.writer("raw_documents", context.run_id)
    report, deleted, rejections = stages.scan_source(
        source, rows, ingestion_settings.max_document_bytes, writer, ingestion_settings.allow_empty_source
    )
    writer.manifest.extra.update(
        index_version=version, collection=collection, deleted=deleted,
        attempted=sum(report.counts[c] for c in ("new", "changed", "retry")),
    )
    for change in CHANGE_CLASSES:
        report.counts.setdefault(change, 0)
    output = _finish(context, writer.manifest, report, started, ledger, version, rejections)
    output.metadata.update(index_version=version, collection=collection)
    return output


@asset(
    group_name=GROUP,
    kinds={"python", "pdf", "html"},
    description=(
        "Parses each staged document, by the type its bytes show (office, PDF, e-mail, web, "
        "data and text formats; scans through OCR), into sectioned blocks and Markdown tables "
        "with title, author, date, language and ACL, in a worker with a per-document timeout, "
        "and marks or skips near-duplicates. Unparseable, hostile, empty or unsupported "
        "documents are quarantined with a reason."
    ),
)
def clean_documents(context: AssetExecutionContext, raw_documents: Manifest, staging: LocalStaging,
                    ledger: Ledger, ocr: ResourceParam[OcrEngine],
                    ingestion_settings: IngestionSettings) -> Output[Manifest]:
    started = time.monotonic()
    version = raw_documents.extra["index_version"]
    writer = staging.writer("clean_documents", context.run_id)
    report, rejections = stages.clean_stage(staging.read(raw_documents), writer, ingestion_settings, ocr,
                                            ledger, version)
    writer.manifest.extra.update(raw_documents.extra)
    return _finish(context, writer.manifest, report, started, ledger, version, rejections)


@asset(
    group_name=GROUP,
    kinds={"python", "security"},
    description=(
        "Screens each document before it can reach the index: quarantines likely prompt "
        "injection, including obfuscated, encoded and hidden text (rule id, score and location "
        "recorded, never the text), and applies the PII policy (Presidio; redact, mask, hash or "
        "quarantine), keeping only counts per entity type."
    ),
)
def screened_documents(context: AssetExecutionContext, clean_documents: Manifest, staging: LocalStaging,
                       ledger: Ledger, ingestion_settings: IngestionSettings,
                       screening_settings: ScreeningSettings, pii_detector: ResourceParam[PiiDetector],
                       injection_shield: ResourceParam[InjectionShield]) -> Output[Manifest]:
    started = time.monotonic()
    writer = staging.writer("screened_documents", context.run_id)
    screener = build_screener(screening_settings, ingestion_settings, ledger, pii_detector, injection_shield)
    report, rejections = stages.screen_stage(staging.read(clean_documents), writer, screener)
    writer.manifest.extra.update(clean_documents.extra)
    return _finish(context, writer.manifest, report, started, ledger,
                   clean_documents.extra["index_version"], rejections)


@asset(
    group_name=GROUP,
    kinds={"python", "langchain"},
    description=(
        "Splits each screened document into chunks measured in the embedder's own tokens, "
        "section by section (and page by page), with the full payload and a deterministic "
        "point id per chunk; rescans every chunk for prompt injection (and with Prompt Shields "
        "when configured) and quarantines the document on a hit."
    ),
)
def chunks(context: AssetExecutionContext, screened_documents: Manifest, staging: LocalStaging,
           ledger: Ledger, embedder: ResourceParam[Embedder], ingestion_settings: IngestionSettings,
           screening_settings: ScreeningSettings, pii_detector: ResourceParam[PiiDetector],
           injection_shield: ResourceParam[InjectionShield]) -> Output[Manifest]:
    started = time.monotonic()
    writer = staging.writer("chunks", context.run_id)
    version = screened_documents.extra["index_version"]
    screener = build_screener(screening_settings, ingestion_settings, ledger, pii_detector, injection_shield)
    report, rejections = stages.chunk_stage(
        staging.read(screened_documents), writer, ingestion_settings, embedder.count_tokens, version, screener
    )
    writer.manifest.extra.update(screened_documents.extra)
    return _finish(context, writer.manifest, report, started, ledger, version, rejections)


@asset(
    group_name=GROUP,
    kinds={"python", "pytorch"},
    description=(
        "Embeds each chunk once: vectors already stored for the same content (a rerun after a "
        "crash, or the same document at another source) are reused, the rest are computed by "
        "the configured embedder."
    ),
)
def embeddings(context: AssetExecutionContext, chunks: Manifest, staging: LocalStaging, ledger: Ledger,
               embedder: ResourceParam[Embedder], vector_store: ResourceParam[VectorStore]) -> Output[Manifest]:
    started = time.monotonic()
    writer = staging.writer("embeddings", context.run_id)
    report = stages.embed_stage(
        staging.read(chunks), writer, embedder, vector_store, ledger,
        chunks.extra["collection"], chunks.extra["index_version"], set(chunks.extra["duplicate_doc_ids"]),
    )
    writer.manifest.extra.update(chunks.extra)
    output = _finish(context, writer.manifest, report, started)
    output.metadata["embedder"] = MetadataValue.json(embedder.description())
    return output


@asset(
    group_name=GROUP,
    kinds={"python", "qdrant"},
    description=(
        "Upserts the new points into the index version's collection, then removes the points "
        "of replaced and deleted documents, and records every document in the ledger, holding "
        "the collection's writer lease (taken by raw_documents) until it ends. Checks "
        "that the run stayed within its failure budget and that the index agrees with the ledger."
    ),
    check_specs=[
        AssetCheckSpec("failure_budget", asset="vector_index", blocking=True,
                       description="The share of documents that failed this run is within the budget."),
        AssetCheckSpec("index_matches_ledger", asset="vector_index",
                       description="The collection holds exactly the points the ledger says it does."),
    ],
)
def vector_index(context: AssetExecutionContext, embeddings: Manifest, staging: LocalStaging, ledger: Ledger,
                 embedder: ResourceParam[Embedder], vector_store: ResourceParam[VectorStore],
                 ingestion_settings: IngestionSettings):
    started = time.monotonic()
    extra = embeddings.extra
    version, collection = extra["index_version"], extra["collection"]
    _hold_writer_lease(context, ledger, collection, ingestion_settings.writer_wait_s)
    report = stages.index_stage(
        staging.read(embeddings), vector_store, ledger, collection, version,
        embedder.identity()["dimension"], extra["deleted"], context.run_id,
    )
    run_counts: Counter = ledger.run_counts(version, context.run_id)
    points, expected = vector_store.count(collection), expected_point_count(ledger.rows(version).values())
    result = Manifest(stage="vector_index", run_id=context.run_id, count=report.counts["upserted"],
                      extra={"index_version": version, "collection": collection})
    output = _finish(context, result, report, started)
    output.metadata.update(
        index_version=version, collection=collection, points=points,
        quarantined=run_counts["quarantined"], failed=run_counts["failed"],
    )
    yield output
    attempted = extra["attempted"]
    failed_share = run_counts["failed"] / attempted if attempted else 0.0
    yield AssetCheckResult(
        check_name="failure_budget",
        passed=failed_share <= ingestion_settings.failure_budget,
        metadata={"failed": run_counts["failed"], "attempted": attempted,
                  "failed_share": round(failed_share, 4), "budget": ingestion_settings.failure_budget},
        description=(f"{run_counts['failed']} of {attempted} documents failed "
                     f"(budget {ingestion_settings.failure_budget:.0%}); see the ledger for reasons"),
    )
    yield AssetCheckResult(
        check_name="index_matches_ledger",
        passed=points == expected,
        severity=AssetCheckSeverity.WARN,
        metadata={"points": points, "ledger_points": expected},
    )
    vector_store.close()  # Qdrant local mode's file lock goes with the lease
    ledger.release_lease(collection, context.run_id)


INGESTION_ASSETS = [raw_documents, clean_documents, screened_documents, chunks, embeddings, vector_index]
