"""Document-level access control: which chunks a caller may see.

Every chunk carries its document's ``acl`` (the groups allowed to read it; empty when the
source gave none). A caller presents its groups; a chunk is visible when the two intersect.
A chunk without an acl is visible to everyone under the ``public`` policy and to no one under
``deny``. Stores translate an ``AccessFilter`` into their native filter; ``allows`` is the
same rule in Python, for in-process candidates (BM25) and for the gate's leak check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

UNLABELLED_POLICIES = ("public", "deny")


@dataclass(frozen=True)
class AccessFilter:
    groups: tuple[str, ...]
    unlabelled: str = "public"

    def __post_init__(self) -> None:
        if self.unlabelled not in UNLABELLED_POLICIES:
            raise ValueError(f"unlabelled must be one of {', '.join(UNLABELLED_POLICIES)}, not {self.unlabelled!r}")

    @classmethod
    def of(cls, groups: Iterable[str] | None, unlabelled: str) -> AccessFilter | None:
        """The filter for a caller's groups; None (no trimming) for a trusted caller that gives none."""
        return None if groups is None else cls(tuple(sorted({str(g) for g in groups})), unlabelled)

    def allows(self, acl: Iterable[str] | None) -> bool:
        acl = list(acl or [])
        if not acl:
            return self.unlabelled == "public"
        return not set(acl).isdisjoint(self.groups)
