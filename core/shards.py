"""Shards: contiguous ranges of a fixed bucket space over the sources' URIs.

Every source has a bucket, the first two bytes of the sha256 of its URI (0..65535), stored on
every point and ledger row. Shard k of N is the k-th of N contiguous bucket ranges, so changing
N only regroups buckets: nothing stored is ever recomputed, and the union of the shards is the
whole space. A range is written ``lo-hi`` (inclusive, five digits): that is its partition key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

BUCKETS = 1 << 16


def bucket_of(uri: str) -> int:
    """The source's bucket: stable across processes, machines and hash seeds."""
    return int.from_bytes(hashlib.sha256(uri.encode("utf-8")).digest()[:2], "big")


@dataclass(frozen=True, order=True)
class ShardRange:
    """The buckets ``lo`` (included) to ``hi`` (excluded)."""

    lo: int = 0
    hi: int = BUCKETS

    def __post_init__(self) -> None:
        if not 0 <= self.lo < self.hi <= BUCKETS:
            raise ValueError(f"bucket range {self.lo}..{self.hi} is not within 0..{BUCKETS}")

    @property
    def key(self) -> str:
        return f"{self.lo:05d}-{self.hi - 1:05d}"

    @property
    def whole(self) -> bool:
        return self.lo == 0 and self.hi == BUCKETS

    def holds(self, uri: str) -> bool:
        return self.lo <= bucket_of(uri) < self.hi

    def overlaps(self, other: ShardRange) -> bool:
        return self.lo < other.hi and other.lo < self.hi

    @classmethod
    def from_key(cls, key: str) -> ShardRange:
        try:
            lo, _, last = key.partition("-")
            return cls(int(lo), int(last) + 1)
        except ValueError:
            raise ValueError(f"{key!r} is not a shard key (lo-hi, buckets 00000-{BUCKETS - 1:05d})") from None

    @classmethod
    def spanning(cls, first: ShardRange, last: ShardRange) -> ShardRange:
        """The range from ``first`` to ``last`` (a run over consecutive partitions)."""
        return cls(first.lo, last.hi)


EVERY_BUCKET = ShardRange()  # the unsharded scope


def shard_ranges(count: int) -> list[ShardRange]:
    """The ``count`` shards, in bucket order; together they are every bucket, once."""
    if not 1 <= count <= BUCKETS:
        raise ValueError(f"shard count {count} must be between 1 and {BUCKETS}")
    return [_shard(k, count) for k in range(count)]


def shard_of(uri: str, count: int) -> ShardRange:
    return _shard(bucket_of(uri) * count // BUCKETS, count)


def _shard(index: int, count: int) -> ShardRange:
    """Shard ``index`` of ``count``: buckets b with floor(b * count / BUCKETS) == index."""
    return ShardRange(-(-index * BUCKETS // count), -(-(index + 1) * BUCKETS // count))


def by_shard(uris: Iterable[str], count: int) -> dict[ShardRange, list[str]]:
    """The URIs grouped by their shard (shards with none left out), each group sorted."""
    groups: dict[ShardRange, list[str]] = {}
    for uri in sorted(set(uris)):
        groups.setdefault(shard_of(uri, count), []).append(uri)
    return dict(sorted(groups.items()))


def uncovered(completed: Iterable[ShardRange]) -> list[ShardRange]:
    """The parts of the bucket space no completed range covers, in order."""
    gaps, reached = [], 0
    for done in sorted(completed):
        if done.lo > reached:
            gaps.append(ShardRange(reached, done.lo))
        reached = max(reached, done.hi)
    if reached < BUCKETS:
        gaps.append(ShardRange(reached, BUCKETS))
    return gaps
