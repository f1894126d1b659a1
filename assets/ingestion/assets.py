"""The ingestion assets: one per stage, each a thin wrapper around a stage function."""


import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MetadataValue,
    Output,
    ResourceParam,
    RunConfig,
    asset,
)
from pydantic import Field

from assets.ingestion import stages
from assets.ingestion.changes import CHANGE_CLASSES, PROCESSED_CLASSES
from assets.placement import GPU_STEP, HEAVY_CPU_STEP, LIGHT_CPU_STEP
from assets.screening.assets import build_screener
from assets.screening.injection_classifier import injection_fingerprint
from core.shards import ShardRange
from core.types import LeaseHeld, LedgerRow, Manifest, ParseStat, WriterLease
from resources.azure_ai import InjectionShield, PiiDetector
from resources.embedders import Embedder
from resources.ledger import Ledger
from resources.ocr import OcrEngine
from resources.screening import ScreeningSettings
from resources.settings import IngestionSettings
from resources.sources import DocumentSource
from resources.staging import Staging
from resources.vector_stores import VectorStore

GROUP = "ingestion"
MAX_LISTED_REJECTIONS = 50
# A run tagged with it compares every point of the index with the ledger, even after a clean
# run (see ``stages.repair_index``); the nightly reconcile schedule sets it.
CENSUS_TAG = "ragpipe/census"


class IngestTargets(Config):
    """Launchpad config of a targeted run. Empty (the default): a full reconcile that lists the
    whole source. With URIs: only those are looked up, the source is never listed, and only
    the sources named in ``delete`` (and no longer in the source) are removed."""

    upsert: list[str] = Field(default_factory=list, description="Source URIs to index if new or changed.")
    delete: list[str] = Field(default_factory=list,
                              description="Source URIs to remove from the index; one that still exists is "
                                          "indexed as it now is instead.")

    @property
    def targeted(self) -> bool:
        return bool(self.upsert or self.delete)


def targeted_run_config(upsert: list[str], delete: list[str]) -> RunConfig:
    """The run config that sensors and ``ragpipe ingest --only`` launch the ingest job with."""
    return RunConfig(ops={"raw_documents": IngestTargets(upsert=sorted(upsert), delete=sorted(delete))})


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
        ledger.record(version, [replace(row, run_id=stages.logical_run_id(context)) for row in rejections])
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


def _run_state(context: AssetExecutionContext, run_id: str) -> bool | None:
    """Whether the run has finished; None for a run this instance does not know."""
    run = context.instance.get_run_by_id(run_id)
    return None if run is None else run.is_finished


def _hold_writer_lease(context: AssetExecutionContext, ledger: Ledger, collection: str, wait_s: float) -> WriterLease:
    """One writer per collection and shard: wait for the run writing it, or fail naming that run."""
    try:
        return ledger.acquire_lease(collection, context.run_id, wait_s,
                                    lambda run_id: _run_state(context, run_id) is True, stages.shard_of_run(context))
    except LeaseHeld as error:
        raise Failure(description=str(error)) from None


@asset(
    group_name=GROUP,
    kinds={"python", "source"},
    op_tags=LIGHT_CPU_STEP,
    description=(
        "Takes the collection's writer lease (one writer per collection, or per shard of it: a "
        "partition is a contiguous range of source-URI hash buckets) and repairs drift in its buckets: "
        "removes the points no ledger row accounts for (orphans of a killed run) and forgets "
        "documents whose points are incomplete (a targeted run compares only its named sources, "
        "unless the collection's point count differs from the ledger's; a full run compares nothing "
        "when the last writer finished and the counts agree, unless tagged ragpipe/census=full, as "
        "the nightly reconcile is). Then lists the document source (or, in a targeted "
        "run, looks up only the URIs its config names) and classifies each document against the "
        "ledger: a version marker (etag, mtime+size) equal to the ledger's means unchanged without "
        "a read; otherwise the document is read and hashed (doc_id = sha256 of its bytes) and is "
        "new, changed, unchanged, repair, retry, deferred or deleted (sources under a part that "
        "could not be listed are unknown and kept). Only new, changed, repaired and retried "
        "documents are staged for the next stages."
    ),
)
def raw_documents(
    context: AssetExecutionContext,
    config: IngestTargets,
    source: ResourceParam[DocumentSource],
    golden_corpus: ResourceParam[DocumentSource],
    embedder: ResourceParam[Embedder],
    vector_store: ResourceParam[VectorStore],
    ledger: Ledger,
    staging: Staging,
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
    screening_policy = {"pii": pii_config.fingerprint(), "injection": injection_fingerprint(screening_settings)}
    version = stages.current_index_version(embedder, ingestion_settings, screening_policy)
    collection = stages.collection_name(ingestion_settings.alias, version)
    lease = _hold_writer_lease(context, ledger, collection, ingestion_settings.writer_wait_s)
    run_id, shard = stages.logical_run_id(context), stages.shard_of_run(context)
    named = sorted({*config.upsert, *config.delete}) if config.targeted else None
    last_writer_finished = lease.inherited_from is None and context.run.tags.get(CENSUS_TAG) != "full"
    repair = stages.repair_index(vector_store, ledger, collection, version, run_id, named, shard, last_writer_finished)
    staging.prune(context.run_id, running=lambda run_id: _run_state(context, run_id) is False)
    writer = staging.writer("raw_documents", context.run_id)
    # A namespace is a golden set's: it is built from the golden set's own corpus.
    corpus = golden_corpus if ingestion_settings.namespace else source
    scan = _scan(config, corpus, ledger, version, ingestion_settings, writer, shard)
    ledger.update_versions(version, scan.remarked)
    for part in scan.unlisted:
        context.log.warning(f"could not list {part.prefix} ({part.reason}): its indexed documents are kept")
    writer.manifest.extra.update(
        index_version=version, collection=collection, deleted=scan.deleted, targeted=config.targeted,
        generation=ledger.generation(version, shard), attempted=sum(scan.report.counts[c] for c in PROCESSED_CLASSES),
    )
    for change in (*CHANGE_CLASSES, "source_bytes_read"):
        scan.report.counts.setdefault(change, 0)
    scan.report.counts.update(repaired_orphan_sources=len(repair.keep), repaired_removed_points=repair.removed_points,
                              repaired_incomplete_documents=len(repair.incomplete))
    output = _finish(context, writer.manifest, scan.report, started, ledger, version, scan.rejections)
    output.metadata.update(index_version=version, collection=collection, repair_scope=repair.scope,
                           mode="targeted" if config.targeted else "full reconcile", shard=shard.key)
    if scan.unlisted:
        output.metadata["unlisted"] = MetadataValue.json(
            [{"part": part.prefix, "reason": part.reason} for part in scan.unlisted])
    return output


def _scan(config: IngestTargets, source: DocumentSource, ledger: Ledger, version: str,
          settings: IngestionSettings, writer, shard: ShardRange) -> stages.Scan:
    now = datetime.now(UTC)
    if not config.targeted:
        return stages.scan_source(source, ledger, version, settings.max_document_bytes, writer,
                                  settings.allow_empty_source, now, shard)
    try:
        return stages.scan_targets(source, ledger, version, settings.max_document_bytes, writer, now,
                                   config.upsert, config.delete, shard)
    except ValueError as error:
        raise Failure(description=f"targeted run: {error}") from None


def _stale(context: AssetExecutionContext, manifest: Manifest, ledger: Ledger) -> bool:
    """True when ``manifest`` comes from a scan older than the last completed index stage:
    applying it would undo newer work, so the stage does nothing and says so."""
    current = ledger.generation(manifest.extra["index_version"], stages.shard_of_run(context))
    if manifest.extra.get("generation") == current:
        return False
    context.log.warning(
        f"{manifest.stage} of run {manifest.run_id} was scanned at index generation "
        f"{manifest.extra.get('generation')}, the ledger is at {current}: nothing applied. "
        "Run the whole ingest job to bring the index up to date."
    )
    return True


def _skip(context: AssetExecutionContext, stage: str, upstream: Manifest) -> Output:
    manifest = Manifest(stage=stage, run_id=context.run_id, extra=dict(upstream.extra))
    return Output(manifest, metadata={"stale_manifest_skipped": True, "records_out": 0})


@asset(
    group_name=GROUP,
    kinds={"python", "pdf", "html"},
    op_tags=HEAVY_CPU_STEP,
    description=(
        "Parses each staged document, by the type its bytes show (office, PDF, e-mail, web, "
        "data and text formats; scans through OCR), into sectioned blocks and Markdown tables "
        "with title, author, date and language, in a worker with a per-document timeout that "
        "grows with the page count (each file's parse time and pages go to the ledger, the "
        "slowest to this asset's metadata); the ACL comes from the source's metadata only "
        "(never from the document). Then marks or skips near-duplicates. Unparseable, hostile, "
        "empty or unsupported documents are quarantined with a reason."
    ),
)
def clean_documents(context: AssetExecutionContext, raw_documents: Manifest, staging: Staging,
                    ledger: Ledger, ocr: ResourceParam[OcrEngine],
                    ingestion_settings: IngestionSettings) -> Output[Manifest]:
    if _stale(context, raw_documents, ledger):
        return _skip(context, "clean_documents", raw_documents)
    started = time.monotonic()
    version = raw_documents.extra["index_version"]
    writer = staging.writer("clean_documents", context.run_id)
    report, rejections = stages.clean_stage(staging.read(raw_documents), writer, ingestion_settings, ocr,
                                            ledger, version, stages.logical_run_id(context))
    writer.manifest.extra.update(raw_documents.extra)
    output = _finish(context, writer.manifest, report, started, ledger, version, rejections)
    if report.slowest_parses:
        output.metadata["slowest_parses"] = _slowest_parses_table(report.slowest_parses)
    return output


def _slowest_parses_table(slowest: list[ParseStat]) -> MetadataValue:
    lines = ["| source | seconds | pages | status |", "| --- | --- | --- | --- |"]
    lines += [f"| {stat.source} | {stat.seconds:.1f} | {stat.pages or ''} | {stat.status} |" for stat in slowest]
    return MetadataValue.md("\n".join(lines))


@asset(
    group_name=GROUP,
    kinds={"python", "security"},
    op_tags=HEAVY_CPU_STEP,
    description=(
        "Screens each document before it can reach the index: quarantines likely prompt "
        "injection, including obfuscated, encoded and hidden text (rule id, score and location "
        "recorded, never the text), and applies the PII policy (Presidio; redact, mask, hash or "
        "quarantine), keeping only counts per entity type."
    ),
)
def screened_documents(context: AssetExecutionContext, clean_documents: Manifest, staging: Staging,
                       ledger: Ledger, ingestion_settings: IngestionSettings,
                       screening_settings: ScreeningSettings, pii_detector: ResourceParam[PiiDetector],
                       injection_shield: ResourceParam[InjectionShield]) -> Output[Manifest]:
    if _stale(context, clean_documents, ledger):
        return _skip(context, "screened_documents", clean_documents)
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
    op_tags=LIGHT_CPU_STEP,
    description=(
        "Splits each screened document into chunks measured in the embedder's own tokens, "
        "section by section (and page by page), with the full payload and a deterministic "
        "point id per chunk; rescans every chunk for prompt injection (and with Prompt Shields "
        "when configured) and quarantines the document on a hit."
    ),
)
def chunks(context: AssetExecutionContext, screened_documents: Manifest, staging: Staging,
           ledger: Ledger, embedder: ResourceParam[Embedder], ingestion_settings: IngestionSettings,
           screening_settings: ScreeningSettings, pii_detector: ResourceParam[PiiDetector],
           injection_shield: ResourceParam[InjectionShield]) -> Output[Manifest]:
    if _stale(context, screened_documents, ledger):
        return _skip(context, "chunks", screened_documents)
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
    op_tags=GPU_STEP,
    description=(
        "Embeds each distinct chunk text once: vectors already stored for the same content (the "
        "same document at another source) or computed by a run that has not finished its index "
        "stage (kept in the ledger's cache) are reused; the rest are computed by the configured "
        "embedder."
    ),
)
def embeddings(context: AssetExecutionContext, chunks: Manifest, staging: Staging, ledger: Ledger,
               embedder: ResourceParam[Embedder], vector_store: ResourceParam[VectorStore]) -> Output[Manifest]:
    if _stale(context, chunks, ledger):
        return _skip(context, "embeddings", chunks)
    started = time.monotonic()
    writer = staging.writer("embeddings", context.run_id)
    report = stages.embed_stage(staging.read(chunks), writer, embedder, vector_store, ledger,
                                chunks.extra["collection"], chunks.extra["index_version"])
    writer.manifest.extra.update(chunks.extra)
    output = _finish(context, writer.manifest, report, started)
    output.metadata["embedder"] = MetadataValue.json(embedder.description())
    if report.counts["embedded"]:  # the device that computed them; a run that reused every vector loads no model
        output.metadata["device"] = MetadataValue.json(embedder.device_metadata())
    return output


@asset(
    group_name=GROUP,
    kinds={"python", "qdrant"},
    op_tags=LIGHT_CPU_STEP,
    description=(
        "Upserts the new points into the index version's collection, then removes the points "
        "of replaced and deleted documents, and records every document in the ledger, holding "
        "the collection's writer lease (taken by raw_documents) until it ends. Checks "
        "that the run stayed within its failure budget and that the index agrees with the ledger."
    ),
    check_specs=[
        AssetCheckSpec("failure_budget", asset="vector_index", blocking=True,
                       description="The share of documents that failed for the first time in this "
                                   "(logical) run is within the budget."),
        AssetCheckSpec("index_matches_ledger", asset="vector_index", blocking=True,
                       description="The collection holds exactly the points the ledger says it does."),
    ],
)
def vector_index(context: AssetExecutionContext, embeddings: Manifest, staging: Staging, ledger: Ledger,
                 embedder: ResourceParam[Embedder], vector_store: ResourceParam[VectorStore],
                 ingestion_settings: IngestionSettings):
    started = time.monotonic()
    extra = embeddings.extra
    version, collection, run_id = extra["index_version"], extra["collection"], stages.logical_run_id(context)
    shard = stages.shard_of_run(context)
    _hold_writer_lease(context, ledger, collection, ingestion_settings.writer_wait_s)
    stale = _stale(context, embeddings, ledger)
    report = stages.StageReport()
    if not stale:
        report = stages.index_stage(
            staging.read(embeddings), vector_store, ledger, collection, version,
            embedder.identity()["dimension"], extra["deleted"], run_id,
        )
        ledger.advance_generation(version, shard)
        ledger.clear_vector_cache(collection)
    run_counts: Counter = ledger.run_counts(version, run_id)
    points, expected = vector_store.count(collection, shard), ledger.indexed_point_count(version, shard)
    if not stale and not extra["targeted"] and points == expected:  # what promotion waits for
        ledger.mark_complete(version, shard, run_id)
    result = Manifest(stage="vector_index", run_id=context.run_id, count=report.counts["upserted"],
                      extra={"index_version": version, "collection": collection})
    output = _finish(context, result, report, started)
    output.metadata.update(
        index_version=version, collection=collection, points=points, stale_manifest_skipped=stale, shard=shard.key,
        quarantined=run_counts["quarantined"], failed=run_counts["failed"],
    )
    yield output
    attempted, failed = (0, 0) if stale else (extra["attempted"], ledger.first_failures(version, run_id))
    failed_share = failed / attempted if attempted else 0.0
    yield AssetCheckResult(
        check_name="failure_budget",
        passed=failed_share <= ingestion_settings.failure_budget,
        metadata={"failed": failed, "attempted": attempted, "retried_and_failed_again": run_counts["failed"] - failed,
                  "failed_share": round(failed_share, 4), "budget": ingestion_settings.failure_budget},
        description=(f"{failed} of {attempted} documents failed for the first time "
                     f"(budget {ingestion_settings.failure_budget:.0%}); see the ledger for reasons"),
    )
    yield AssetCheckResult(
        check_name="index_matches_ledger",
        passed=points == expected,
        severity=AssetCheckSeverity.ERROR,
        metadata={"points": points, "ledger_points": expected},
        description=(f"the collection holds {points} points, the ledger accounts for {expected}"
                     + ("" if shard.whole else f" (shard {shard.key})")),
    )
    vector_store.close()  # Qdrant local mode's file lock goes with the lease
    ledger.release_lease(collection, context.run_id, shard)


INGESTION_ASSETS = [raw_documents, clean_documents, screened_documents, chunks, embeddings, vector_index]
