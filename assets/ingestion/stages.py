"""The work of each ingestion stage, given its resources: testable without Dagster.

Each stage streams the previous stage's batches and writes its own; a document that is
rejected becomes a ledger row (with the index contents it had before left as they were)
and a line in the stage's report, never an exception that stops the run.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import chain, islice
from typing import Any

from assets.ingestion.changes import (
    PROCESSED_CLASSES,
    RepairPlan,
    classify,
    classify_without_read,
    deleted_sources,
    index_census,
    metadata_changed,
    plan_repair,
    version_marker,
)
from assets.ingestion.chunking import EMBEDDED_TEXT, chunk_document, embedding_text, make_splitter
from assets.ingestion.documents import (
    CLEANING_VERSION,
    doc_id_of,
    index_version,
    point_id,
    with_source_metadata,
)
from assets.ingestion.isolation import IsolatedParser, report_pages
from assets.ingestion.limits import ParseLimits
from assets.ingestion.near_duplicates import NearDuplicateIndex, StoredSignature
from assets.ingestion.parsing import clean_document, load_document
from assets.screening.hidden_text import hidden_text, invisible_character_texts
from assets.screening.pii import redact_pii, redacted_preview
from assets.screening.poisoning import SCREENING_VERSION
from assets.screening.screen import Screener, ScreeningQuarantine
from core.shards import BUCKETS, EVERY_BUCKET, ShardRange
from core.types import (
    DocumentRejected,
    LedgerRow,
    ParsedDocument,
    ParseStat,
    Point,
    QuarantineDetail,
    UnlistedPart,
    failure_reason,
)
from resources.devices import GPU_BATCH_SIZES
from resources.staging import BatchWriter

SCAN_BATCH = 500  # listed items whose ledger rows are looked up in one go
SLOWEST_PARSES = 5  # the slowest parses the clean stage's metadata lists


def current_index_version(embedder, settings, screening_policy: dict) -> str:
    """The version of everything that shapes vectors, plus the namespace when there is one
    (so production versions stay as they were and an evaluation never shares their ledger rows)."""
    namespace = {"namespace": settings.namespace} if settings.namespace else {}
    return index_version(
        {
            **namespace,
            "embedder": embedder.identity(),
            "chunk_size_tokens": settings.chunk_size_tokens,
            "chunk_overlap_tokens": settings.chunk_overlap_tokens,
            "embedded_text": EMBEDDED_TEXT,
            "cleaning": CLEANING_VERSION,
            "screening": SCREENING_VERSION,
            "poisoning_threshold": settings.poisoning_threshold,
            "screening_policy": screening_policy,  # the PII policy and the learned injection layers
            "near_duplicates": settings.near_duplicates,
            "shard_buckets": BUCKETS,  # every payload carries its source's bucket
        }
    )


def collection_name(base: str, version: str) -> str:
    return f"{base}__{version}"


def logical_run_id(context) -> str:
    """The id of the run a re-execution from failure retries: the ledger counts one logical
    run, whatever number of attempts it took."""
    return context.run.root_run_id or context.run_id


def shard_of_run(context) -> ShardRange:
    """The buckets a run ingests: its partition's (a run over consecutive partitions spans
    them), or every bucket when the assets are not partitioned (RAGPIPE_SHARDS=1)."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return EVERY_BUCKET
    keys = context.partition_key_range
    return ShardRange.spanning(ShardRange.from_key(keys.start), ShardRange.from_key(keys.end))


@dataclass
class StageReport:
    """What a stage did, for the ledger and the asset's metadata."""

    counts: Counter = field(default_factory=Counter)
    rejected: list[dict[str, str]] = field(default_factory=list)
    preview: str = ""
    slowest_parses: list[ParseStat] = field(default_factory=list)  # the clean stage's, slowest first

    def reject(self, record: dict[str, Any], error: DocumentRejected) -> LedgerRow:
        self.counts[error.status] += 1
        reason = redact_pii(error.reason)[0]
        self.rejected.append({"source": record["source"], "status": error.status, "reason": reason})
        detail = (QuarantineDetail(error.scanner, tuple(error.rule_ids), error.score)
                  if isinstance(error, ScreeningQuarantine) else None)
        return LedgerRow(
            source=record["source"],
            status=error.status,
            doc_id=record.get("doc_id"),
            version=record.get("version"),
            reason=reason,
            indexed_doc_id=record.get("indexed_doc_id"),
            chunk_count=record.get("chunk_count", 0),
            detail=detail,
        )


def _guarded(record: dict[str, Any], work: Callable[[], Any]) -> Any:
    """Run one document's work; any unexpected error becomes a ``failed`` rejection."""
    try:
        return work()
    except DocumentRejected:
        raise
    except Exception as error:  # noqa: BLE001 - one bad document must not stop the run
        raise DocumentRejected("failed", failure_reason(error)) from error


@dataclass
class Scan:
    """What reading the source found, beyond the stage report. ``remarked`` holds the new
    version markers of sources whose marker changed but whose content did not (a touched
    file), so the next run skips them without a read."""

    report: StageReport
    rejections: list[LedgerRow]
    deleted: list[str]
    unknown: list[str]
    unlisted: list[UnlistedPart]
    remarked: dict[str, str] = field(default_factory=dict)


def repair_index(vector_store, ledger, collection: str, version: str, run_id: str,
                 sources: list[str] | None = None, shard: ShardRange = EVERY_BUCKET,
                 last_writer_finished: bool = False) -> RepairPlan:
    """Make the index and the ledger agree before scanning: remove the points no ledger row
    accounts for, and forget documents whose points are incomplete so they are indexed again.
    In a shard, only its buckets' points and rows are compared (other shards repair their own).

    With ``sources`` (a targeted run), only their points are compared, unless the shard's
    point count differs from the ledger's: then drift lies elsewhere too and the whole shard is
    repaired. A full reconcile compares the whole shard, the one cost of an unchanged rerun that
    grows with the index, unless ``last_writer_finished`` (the previous writer released its
    lease, so all its writes landed) and the point counts agree: then there is nothing to repair."""
    counts_agree = ((sources is not None or last_writer_finished)
                    and vector_store.count(collection, shard) == ledger.indexed_point_count(version, shard))
    if counts_agree and sources is None:
        return RepairPlan(scope="none: the last writer finished and the point counts agree")
    scoped = counts_agree
    if scoped:
        census, rows = vector_store.point_sources(collection, sources), ledger.rows_for(version, sources).values()
    else:
        census, rows = vector_store.point_sources(collection, shard=shard), ledger.iter_rows(version, shard)
    whole = "whole index" if shard.whole else f"shard {shard.key}"
    plan = replace(plan_repair(index_census(census), rows), scope="named sources" if scoped else whole)
    for source, keep in plan.keep.items():
        vector_store.delete_source(collection, source, keep_doc_id=keep)
    ledger.record(version, [replace(row, run_id=run_id) for row in plan.incomplete])
    return plan


@dataclass
class _Scanner:
    """Classifies listed items against the ledger batch by batch, staging what is to be
    processed; reads a document's bytes only when its version marker changed."""

    source: Any
    ledger: Any
    version: str
    max_bytes: int
    writer: BatchWriter
    now: datetime
    scan: Scan = field(default_factory=lambda: Scan(StageReport(), [], [], [], []))

    def items(self, items: Iterable) -> set[str]:
        listed = set()
        for batch in _batched(items, SCAN_BATCH):
            self.scan.unlisted += [item for item in batch if isinstance(item, UnlistedPart)]
            found = [item for item in batch if not isinstance(item, UnlistedPart)]
            uris = [item.uri for item in found]
            rows, failures = self.ledger.rows_for(self.version, uris), self.ledger.failures(self.version, uris)
            for item in found:
                listed.add(item.uri)
                rejection = self._item(item, rows.get(item.uri), failures.get(item.uri))
                if rejection:
                    self.scan.rejections.append(rejection)
        self.writer.flush()
        return listed

    def _item(self, item, row: LedgerRow | None, failure) -> LedgerRow | None:
        report, marker = self.scan.report, version_marker(item)
        if skipped := classify_without_read(row, marker, failure, self.now):
            report.counts[skipped] += 1
            return None
        record = {
            "source": item.uri,
            "version": marker,
            "metadata": dict(item.metadata),
            "indexed_doc_id": row.indexed_doc_id if row else None,
            "chunk_count": row.chunk_count if row else 0,
        }
        try:
            oversized = item.size > self.max_bytes
            data = None if oversized else _guarded(record, lambda: self.source.read_bytes(item.uri))
            record["doc_id"] = (_guarded(record, lambda: self.source.sha256(item.uri)) if oversized
                                else doc_id_of(data))
            report.counts["source_bytes_read"] += item.size
            change = classify(record["doc_id"], row, failure, self.now, metadata_changed(row, marker))
            report.counts[change] += 1
            if change == "unchanged" and row.version != marker:
                self.scan.remarked[item.uri] = marker
            if change not in PROCESSED_CLASSES:
                return None
            if oversized:
                raise DocumentRejected(
                    "quarantined",
                    f"file is {item.size:,} bytes, above max_document_bytes={self.max_bytes:,}; "
                    "split the file or raise RAGPIPE_MAX_DOCUMENT_BYTES",
                )
            self.writer.write({**record, "change": change, "content_b64": base64.b64encode(data).decode()})
        except DocumentRejected as error:
            return report.reject(record, error)
        return None


def scan_source(source, ledger, version: str, max_bytes: int, writer: BatchWriter, allow_empty_source: bool,
                now: datetime, shard: ShardRange = EVERY_BUCKET) -> Scan:
    """A full reconcile: classify every listed document (of ``shard``: the others' names are
    listed but never looked up, read or hashed), and find the ledger's sources (of ``shard``)
    that are no longer listed. Ledger rows are looked up batch by batch as the listing streams."""
    scanner = _Scanner(source, ledger, version, max_bytes, writer, now)
    seen = Counter()

    def in_shard(items):
        for item in items:
            seen["listed"] += not isinstance(item, UnlistedPart)
            if isinstance(item, UnlistedPart) or shard.holds(item.uri):
                yield item

    listed = scanner.items(in_shard(source.list_items()))
    scan = scanner.scan
    scan.deleted, scan.unknown = deleted_sources(listed, ledger.iter_rows(version, shard), scan.unlisted)
    if not seen["listed"] and scan.deleted and not allow_empty_source:
        raise RuntimeError(
            f"the source lists no documents but the ledger holds {len(scan.deleted)}; refusing to delete "
            "them all (an unmounted or misconfigured source?). Set RAGPIPE_ALLOW_EMPTY_SOURCE=1 "
            "to empty the index deliberately."
        )
    scan.report.counts["deleted"], scan.report.counts["unknown"] = len(scan.deleted), len(scan.unknown)
    return scan


def scan_targets(source, ledger, version: str, max_bytes: int, writer: BatchWriter, now: datetime,
                 upsert: list[str], delete: list[str], shard: ShardRange = EVERY_BUCKET) -> Scan:
    """A targeted run: look up only the named sources, never list the source. A named source
    that exists is classified like a listed one (a delete request for a source that exists
    again is outdated); one that does not exist is deleted only if it was named in ``delete``
    and the ledger holds it. Raises ValueError for a URI that is not the source's, or not ``shard``'s."""
    outside = sorted(uri for uri in {*upsert, *delete} if not shard.holds(uri))
    if outside:
        raise ValueError(f"{len(outside)} named source(s) are not in shard {shard.key}, e.g. {outside[0]}")
    scanner = _Scanner(source, ledger, version, max_bytes, writer, now)
    found, absent = [], []
    for uri in sorted(set(upsert) | set(delete)):
        item = source.item(uri)
        (found.append(item) if item is not None else absent.append(uri))
    scanner.items(found)
    scan = scanner.scan
    rows = ledger.rows_for(version, absent)
    named_for_deletion = set(delete)
    scan.deleted = [uri for uri in absent
                    if uri in named_for_deletion and uri in rows and rows[uri].status != "deleted"]
    scan.report.counts["deleted"] = len(scan.deleted)
    scan.report.counts["missing"] = sum(uri not in named_for_deletion for uri in absent)
    return scan


EMBEDDING_GROUP = max(size for _, size in GPU_BATCH_SIZES)  # chunks per embedding call


def _batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _map_documents(records: Iterator[list[dict[str, Any]]], writer: BatchWriter,
                   work: Callable[[dict[str, Any]], list[dict[str, Any]]],
                   preview: bool = True) -> tuple[StageReport, list[LedgerRow]]:
    """Apply ``work`` to every staged record; write what it returns, record what it rejects.
    With ``preview``, the report's preview is the redacted text of the first document that
    passed. Stages before screening skip it: their text is not screened yet."""
    return _map_batches(records, writer, lambda batch: [_attempt(record, work) for record in batch], preview)


Outcome = list[dict[str, Any]] | DocumentRejected  # a document's outputs, or why it was rejected


def _attempt(record: dict[str, Any], work: Callable[[dict[str, Any]], Any]) -> Any:
    try:
        return _guarded(record, lambda: work(record))
    except DocumentRejected as error:
        return error


def _map_batches(records: Iterator[list[dict[str, Any]]], writer: BatchWriter,
                 work: Callable[[list[dict[str, Any]]], list[Outcome]],
                 preview: bool = True) -> tuple[StageReport, list[LedgerRow]]:
    """``_map_documents`` for work done on a whole staged batch at once. When the batch's work
    fails, each of its documents is done again alone, so that only the one that broke it is
    rejected."""
    report, rejections = StageReport(), []
    for batch in records:
        try:
            outcomes = work(batch)
        except Exception:  # noqa: BLE001 - found again below, document by document
            outcomes = [_attempt(record, lambda one: _raised(work([one])[0])) for record in batch]
        for record, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, DocumentRejected):
                rejections.append(report.reject(record, outcome))
                continue
            report.counts["passed"] += 1
            if preview and not report.preview and outcome:
                report.preview = redacted_preview(_text_of(outcome[0]))
            for output in outcome:
                writer.write(output)
    writer.flush()
    return report, rejections


def _raised(outcome: Outcome) -> list[dict[str, Any]]:
    if isinstance(outcome, DocumentRejected):
        raise outcome
    return outcome


def _text_of(output: dict[str, Any]) -> str:
    if "document" in output:
        return ParsedDocument.from_dict(output["document"]).text
    return output["payload"]["text"]


def _carry(record: dict[str, Any]) -> dict[str, Any]:
    """The per-document fields every stage passes on for the ledger."""
    keys = ("source", "doc_id", "version", "change", "indexed_doc_id", "chunk_count")
    return {key: record[key] for key in keys}


def clean_stage(records, writer: BatchWriter, settings, ocr, ledger, version: str,
                run_id: str | None = None) -> tuple[StageReport, list[LedgerRow]]:
    """Parse each document and find its hidden text in an isolated worker (see ``isolation``),
    then mark or skip it if it nearly duplicates an indexed document (signatures are kept in
    the ledger). Each parse's seconds and pages go to the ledger, the slowest to the report."""
    near_duplicates = None
    if settings.near_duplicates != "off":
        known = (StoredSignature(*row) for row in ledger.signatures(version))
        near_duplicates = NearDuplicateIndex(settings.near_duplicates, settings.near_duplicate_threshold, known)
    limits = ParseLimits(max_pages=settings.max_pages, timeout_s=settings.parse_timeout_s,
                         timeout_per_page_s=settings.parse_timeout_per_page_s)
    marked = Counter()

    def parse_one(source: str, data: bytes) -> ParsedDocument:
        """Runs in the worker: the hidden-text scan parses the markup again (a second chance
        for a hostile file to hang or crash), so it shares the parse's deadline. Invisible
        characters are measured before cleaning strips them."""
        loaded = load_document(source, data, limits=limits, ocr=ocr, report_pages=report_pages)
        concealed = invisible_character_texts(
            [loaded.title, *(block.text for block in loaded.blocks), *dict.fromkeys(block.section for block in loaded.blocks)])
        document = clean_document(loaded, source)
        return replace(document, hidden_text=[*document.hidden_text, *concealed,
                                              *hidden_text(document.content_type, data)])

    pending: dict[str, Any] = {}
    stats: list[ParseStat] = []
    slowest: list[ParseStat] = []

    def record_stats() -> None:
        ledger.record_parse_stats(version, run_id, stats)
        slowest[:] = heapq.nlargest(SLOWEST_PARSES, [*slowest, *stats], key=lambda stat: stat.seconds)
        stats.clear()

    with IsolatedParser(parse_one, limits.timeout_s, limits.timeout_per_page_s) as parser:
        def scheduled(batches):
            """Hand a whole batch to the workers before its first document is awaited."""
            for batch in batches:
                record_stats()  # the previous batch's: all its results are consumed by now
                for record in batch:
                    pending[record["source"]] = parser.schedule(record["source"],
                                                                base64.b64decode(record["content_b64"]))
                yield batch

        def parse(record):
            outcome, stat = parser.timed_result(pending.pop(record["source"]))
            stats.append(replace(stat, doc_id=record.get("doc_id")))
            if isinstance(outcome, DocumentRejected):
                raise outcome
            document = with_source_metadata(outcome, record.get("metadata", {}))
            if near_duplicates is not None:
                near_duplicates.review(record["source"], record["doc_id"], document)
                marked["near_duplicates_marked"] += document.near_duplicate_of is not None
            return [{**_carry(record), "document": document.to_dict()}]

        report, rejections = _map_documents(scheduled(records), writer, parse, preview=False)
    record_stats()
    if near_duplicates is not None:
        ledger.save_signatures(version, [(s.source, s.doc_id, s.hashvalues) for s in near_duplicates.added])
    report.counts.update(marked)
    report.slowest_parses = slowest
    return report, rejections


def screen_stage(records, writer: BatchWriter, screener: Screener) -> tuple[StageReport, list[LedgerRow]]:
    """Screen each staged batch of documents together (see ``Screener.screen_documents``)."""
    pii_totals: Counter = Counter()

    def screen(batch: list[dict[str, Any]]) -> list[Outcome]:
        screened = screener.screen_documents([(ParsedDocument.from_dict(r["document"]), r["doc_id"]) for r in batch])
        outcomes: list[Outcome] = [
            outcome if isinstance(outcome, DocumentRejected)
            else [{**_carry(record), "document": outcome[0].to_dict(), "pii_entities": outcome[1]}]
            for record, outcome in zip(batch, screened, strict=True)
        ]
        for outcome in outcomes:  # counted once the whole batch is through: a failed batch is redone
            if not isinstance(outcome, DocumentRejected):
                pii_totals.update(outcome[0]["pii_entities"])
        return outcomes

    report, rejections = _map_batches(records, writer, screen)
    report.counts.update({f"pii_{entity}": n for entity, n in pii_totals.items()})
    return report, rejections


def chunk_stage(records, writer: BatchWriter, settings, count_tokens, version: str,
                screener: Screener) -> tuple[StageReport, list[LedgerRow]]:
    splitter = make_splitter(settings.chunk_size_tokens, settings.chunk_overlap_tokens, count_tokens)
    tokens = Counter()

    def chunk(record):
        document = ParsedDocument.from_dict(record["document"])
        payloads = chunk_document(
            document,
            source=record["source"],
            doc_id=record["doc_id"],
            index_version=version,
            pii_entities=record["pii_entities"],
            splitter=splitter,
            count_tokens=count_tokens,
            chunk_size=settings.chunk_size_tokens,
        )
        screener.screen_chunks(record["doc_id"], [payload["text"] for payload in payloads])
        tokens["chunks"] += len(payloads)
        tokens["tokens"] += sum(p["token_count"] for p in payloads)
        return [{"point_id": p.pop("point_id"), "doc": _carry(record), "payload": p} for p in payloads]

    report, rejections = _map_documents(records, writer, chunk)
    report.counts.update(tokens)
    return report, rejections


def embed_stage(batches, writer: BatchWriter, embedder, vector_store, ledger, collection: str,
                version: str) -> StageReport:
    """Embed each distinct chunk text once, with its heading (``embedding_text``). Vectors
    already stored for the same content (the same document at another source) are reused, and
    so are those an unfinished run computed:
    they are kept in the ledger's cache, by text, until the index stage completes. Staged
    batches are regrouped into ``EMBEDDING_GROUP`` chunks, so that a GPU gets its full batch
    and the model's length sort has many texts to bucket."""
    report = StageReport()
    for batch in _batched(chain.from_iterable(batches), EMBEDDING_GROUP):
        holders = ledger.holders(version, {c["payload"]["doc_id"] for c in batch})
        stored = _stored_vectors(batch, vector_store, collection, holders)
        texts = [embedding_text(c["payload"]) for c in batch]
        keys = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
        known = {key: stored[c["point_id"]] for key, c in zip(keys, batch) if c["point_id"] in stored}
        cached = ledger.cached_vectors(collection, sorted(set(keys) - set(known)))
        known.update(cached)
        missing = {key: (text, c["payload"]) for key, text, c in zip(keys, texts, batch) if key not in known}
        if missing:
            vectors = embedder.embed([text for text, _ in missing.values()])
            known.update(zip(missing, vectors, strict=True))
        ledger.cache_vectors(collection, {key: known[key] for key in set(keys) if key not in cached})
        for key, chunk in zip(keys, batch):
            chunk["vector"] = known[key]
            writer.write(chunk)
        report.counts["embedded"] += len(missing)
        report.counts["reused"] += len(batch) - len(missing)
        report.counts["embedded_tokens"] += sum(payload["token_count"] for _, payload in missing.values())
    writer.flush()
    return report


def _stored_vectors(batch, vector_store, collection: str, holders: dict[str, tuple[str, int]]) -> dict[str, list[float]]:
    """Vectors already in the index for these chunks, keyed by the chunk's own point id."""
    wanted: dict[str, str] = {}
    for chunk in batch:
        payload = chunk["payload"]
        wanted[chunk["point_id"]] = chunk["point_id"]
        holder = holders.get(payload["doc_id"])
        if holder and payload["chunk_total"] == holder[1]:
            wanted[point_id(holder[0], payload["doc_id"], payload["chunk_id"])] = chunk["point_id"]
    found = vector_store.vectors(collection, list(wanted))
    return {wanted[stored_id]: vector for stored_id, vector in found.items()}


def index_stage(batches, vector_store, ledger, collection: str, version: str, dimension: int,
                deleted: list[str], run_id: str) -> StageReport:
    """Upsert new points; once a document's points are all in, remove its stale points and
    record it. Deleted sources lose their points last. Every step is idempotent, and the
    ledger only moves after the index, so a run killed anywhere converges on the next."""
    report = StageReport()
    vector_store.ensure_collection(collection, dimension)
    upserted_per_doc: Counter = Counter()
    for batch in batches:
        vector_store.upsert(
            collection, [Point(id=c["point_id"], vector=c["vector"], payload=c["payload"]) for c in batch]
        )
        report.counts["upserted"] += len(batch)
        completed = []
        for chunk in batch:
            doc, payload = chunk["doc"], chunk["payload"]
            upserted_per_doc[doc["source"]] += 1
            if upserted_per_doc[doc["source"]] == payload["chunk_total"]:
                completed.append((doc, payload["chunk_total"]))
        for doc, total in completed:
            if doc["change"] != "new":  # old content's points, and orphans of a killed run
                vector_store.delete_source(collection, doc["source"], keep_doc_id=doc["doc_id"])
                if doc["indexed_doc_id"] != doc["doc_id"]:
                    report.counts["replaced_points"] += doc["chunk_count"]
            report.counts["indexed"] += 1
        ledger.record(
            version,
            [
                LedgerRow(source=doc["source"], status="indexed", doc_id=doc["doc_id"], version=doc["version"],
                          indexed_doc_id=doc["doc_id"], chunk_count=total, run_id=run_id)
                for doc, total in completed
            ],
        )
    rows = ledger.rows_for(version, deleted)
    for source in deleted:
        vector_store.delete_source(collection, source)
        report.counts["deleted_points"] += rows[source].chunk_count if source in rows else 0
    ledger.record(version, [replace(rows[s], status="deleted", reason="source no longer listed",
                                    indexed_doc_id=None, chunk_count=0, run_id=run_id) for s in deleted if s in rows])
    return report
