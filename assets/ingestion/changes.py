"""Classify each listed source against the ledger: the incremental contract.

| source state                                   | class       | work                      |
|------------------------------------------------|-------------|---------------------------|
| not in the ledger (or deleted, or never built) | new         | parse, embed, upsert      |
| same doc_id as last seen, indexed/quarantined  | unchanged   | the hash only             |
| same doc_id, last attempt failed or released   | retry       | parse, embed, upsert      |
| different doc_id                               | changed     | new chunks, then old gone |
| in the ledger, no longer listed                | deleted     | its chunks removed        |
"""

from __future__ import annotations

from collections.abc import Iterable

from core.types import LedgerRow

CHANGE_CLASSES = ("new", "changed", "unchanged", "retry", "deleted")


def classify(doc_id: str, row: LedgerRow | None) -> str:
    if row is None or row.status == "deleted":
        return "new"
    if row.doc_id != doc_id:
        return "changed"
    if row.status in ("failed", "released"):
        return "retry"
    return "unchanged"


def deleted_sources(listed: set[str], rows: dict[str, LedgerRow]) -> list[str]:
    """Sources the ledger still tracks that the source no longer lists."""
    return sorted(source for source, row in rows.items() if row.status != "deleted" and source not in listed)


def expected_point_count(rows: Iterable[LedgerRow]) -> int:
    return sum(row.chunk_count for row in rows if row.indexed_doc_id)
