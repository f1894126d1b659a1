"""Which index an evaluation scores, and whether it is complete enough to be promoted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from core.shards import ShardRange, uncovered
from core.types import Manifest


class IncompleteCandidate(ValueError):
    """The candidate index lacks shards: scoring or promoting it would judge part of the corpus."""


def candidate_of(vector_index: Manifest | Mapping[str, Manifest]) -> dict[str, str]:
    """The collection and index version the ingestion wrote: the one run's, or with shards the
    one every shard's latest run wrote (shards whose latest run used another version make the
    candidate incomplete)."""
    outputs = [vector_index] if isinstance(vector_index, Manifest) else list(vector_index.values())
    written = sorted({(m.extra["collection"], m.extra["index_version"]) for m in outputs})
    if len(written) != 1:
        found = ", ".join(collection for collection, _ in written) or "none"
        raise IncompleteCandidate(f"the shards' latest ingest runs wrote {len(written)} collections ({found}): "
                                  "run every shard of the ingest job with the current settings")
    collection, version = written[0]
    return {"collection": collection, "index_version": version}


def check_complete(candidate: dict[str, str], completed: Iterable[ShardRange]) -> None:
    """Raise IncompleteCandidate unless full reconciles of the candidate's version cover every
    bucket, whatever shard counts they ran with and in whatever order they finished."""
    gaps = uncovered(completed)
    if gaps:
        missing = ", ".join(gap.key for gap in gaps[:5]) + (" …" if len(gaps) > 5 else "")
        raise IncompleteCandidate(
            f"{candidate['collection']} is incomplete: no full reconcile of buckets {missing} has completed "
            f"for index version {candidate['index_version']}; run those shards of the ingest job first")
