"""Classify each listed source against the ledger, and the index against the ledger.

| source state                                        | class     | work                      |
|-----------------------------------------------------|-----------|---------------------------|
| not in the ledger (or deleted)                      | new       | parse, embed, upsert      |
| same doc_id as last seen, indexed/quarantined       | unchanged | the hash only             |
| same doc_id, indexed, but its points were lost      | repair    | parse, embed, upsert      |
| same doc_id, last attempt released, or failed and   | retry     | parse, embed, upsert      |
| its backoff has passed                              |           |                           |
| same doc_id, failed, backoff not passed yet         | deferred  | the hash only             |
| different doc_id, or the source's metadata changed  | changed   | new chunks, then old gone |
| in the ledger, no longer listed                     | deleted   | its chunks removed        |
| in the ledger, under a part that could not be listed| unknown   | kept as it is             |
| named by a targeted run, absent, not named to delete| missing   | nothing                   |

A source whose version marker (etag, mtime and size; see ``version_marker``) equals the
ledger's is classified from the ledger row alone, without reading it, unless that row is one
to process again (repair, retry). Only a changed marker costs a read and a hash.

Before classifying, ``plan_repair`` compares the index with the ledger: points no ledger row
accounts for (orphans of a killed run) are removed, and a document whose points are
incomplete loses them and its ``indexed_doc_id``, so it is classified ``repair`` (or
``changed``) and indexed again.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from core.types import FailureRecord, LedgerRow, SourceItem, UnlistedPart

CHANGE_CLASSES = ("new", "changed", "unchanged", "repair", "retry", "deferred", "deleted", "unknown", "missing")
PROCESSED_CLASSES = ("new", "changed", "repair", "retry")
RETRY_BACKOFF = timedelta(hours=1)
MAX_RETRY_BACKOFF = timedelta(days=7)


SKIPPED_WITHOUT_READ = ("unchanged", "deferred")
_METADATA_SEPARATOR = "#m"


def version_marker(item: SourceItem) -> str:
    """The version the ledger keeps for a source: the source's marker plus, when the source
    holds document metadata (title, ACL), a digest of it, so a metadata-only change (an ACL
    edit keeps the bytes) is seen after the read even though the content hash is the same."""
    if not item.metadata:
        return item.version
    canonical = json.dumps(item.metadata, sort_keys=True, separators=(",", ":"), default=str)
    return f"{item.version}{_METADATA_SEPARATOR}{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def metadata_changed(row: LedgerRow | None, marker: str) -> bool:
    if row is None or row.version is None:
        return False
    return row.version.partition(_METADATA_SEPARATOR)[2] != marker.partition(_METADATA_SEPARATOR)[2]


def classify_without_read(row: LedgerRow | None, marker: str, failure: FailureRecord | None,
                          now: datetime) -> str | None:
    """The class of a source whose marker equals the ledger's, when it needs no read; None
    when its bytes must be read (marker changed, or the document is to be processed again)."""
    if row is None or not row.doc_id or row.version != marker:
        return None
    change = classify(row.doc_id, row, failure, now)
    return change if change in SKIPPED_WITHOUT_READ else None


def classify(doc_id: str, row: LedgerRow | None, failure: FailureRecord | None = None,
             now: datetime | None = None, metadata_changed: bool = False) -> str:
    if row is None or row.status == "deleted":
        return "new"
    if row.doc_id != doc_id or metadata_changed:
        return "changed"
    if row.status == "failed":
        waiting = failure is not None and failure.doc_id == doc_id and now < retry_due_at(failure)
        return "deferred" if waiting else "retry"
    if row.status == "released":
        return "retry"
    if row.status == "indexed" and row.indexed_doc_id != doc_id:
        return "repair"
    return "unchanged"


def retry_due_at(failure: FailureRecord) -> datetime:
    """Exponential backoff: a document that keeps failing is retried ever less often."""
    return failure.last_failed_at + min(RETRY_BACKOFF * 2 ** (failure.attempts - 1), MAX_RETRY_BACKOFF)


def deleted_sources(listed: set[str], rows: Iterable[LedgerRow],
                    unlisted: list[UnlistedPart]) -> tuple[list[str], list[str]]:
    """Sources the ledger still tracks that the source no longer lists: (deleted, unknown).
    Those under a part that could not be listed are unknown, never deleted."""
    deleted, unknown = [], []
    for row in rows:
        if row.status == "deleted" or row.source in listed:
            continue
        under_unlisted = any(row.source.startswith(part.prefix) for part in unlisted)
        (unknown if under_unlisted else deleted).append(row.source)
    return sorted(deleted), sorted(unknown)


@dataclass
class RepairPlan:
    """What the index holds that the ledger does not account for, and what it lacks."""

    scope: str = "whole index"  # or "named sources", in a targeted run
    keep: dict[str, str | None] = field(default_factory=dict)  # source -> the doc_id to keep
    incomplete: list[LedgerRow] = field(default_factory=list)  # rows as they become: not indexed
    removed_points: int = 0


def plan_repair(census: dict[str, Counter], rows: Iterable[LedgerRow]) -> RepairPlan:
    """Compare the index's points per (source, doc_id) with the ledger's rows, streamed.

    ``census`` is consumed: what is left after the ledger's rows is unknown to the ledger.
    """
    plan = RepairPlan()
    for row in rows:
        held = census.pop(row.source, Counter())
        complete = bool(row.indexed_doc_id) and held[row.indexed_doc_id] == row.chunk_count
        if row.indexed_doc_id and not complete:
            plan.incomplete.append(replace(row, indexed_doc_id=None, chunk_count=0))
        keep = row.indexed_doc_id if complete else None
        stray = sum(held.values()) - (held[keep] if keep else 0)
        if stray:
            plan.keep[row.source] = keep
            plan.removed_points += stray
    for source, held in census.items():
        plan.keep[source] = None
        plan.removed_points += sum(held.values())
    return plan


def index_census(point_sources: Iterable[tuple[str, str]]) -> dict[str, Counter]:
    """Points per doc_id per source."""
    census: dict[str, Counter] = {}
    for source, doc_id in point_sources:
        census.setdefault(source, Counter())[doc_id] += 1
    return census

