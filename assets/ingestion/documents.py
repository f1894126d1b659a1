"""The records that travel between ingestion stages, and how a document is rejected."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

# Bump when cleaning or parsing changes what text a document yields: it changes vectors.
CLEANING_VERSION = "2"

_POINT_NAMESPACE = uuid.UUID("6f0c5a52-3c1e-4b8e-9a51-2f1d0c7e9b10")


def doc_id_of(data: bytes) -> str:
    """A document's identity: the sha256 of its original bytes."""
    return hashlib.sha256(data).hexdigest()


def point_id(source: str, doc_id: str, chunk_index: int) -> str:
    """Deterministic point id, so re-upserting the same chunk overwrites it."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{source}\x1f{doc_id}\x1f{chunk_index}"))


def index_version(components: dict[str, Any]) -> str:
    """Short hash of everything that changes vectors (embedder, chunker, text pipeline)."""
    canonical = json.dumps(components, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


class DocumentRejected(Exception):
    """A document that must not be indexed, with the ledger status and a reason.

    ``quarantined`` is a decision about the content (it stays out until the content
    changes); ``failed`` is an unexpected error (retried on the next run).
    """

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def __reduce__(self):
        return DocumentRejected, (self.status, self.reason)


def quarantine(reason: str) -> DocumentRejected:
    return DocumentRejected("quarantined", reason)


def failure_reason(error: BaseException) -> str:
    """A reason for an unexpected error: type and the first line of its message, bounded.

    Library messages may quote document text; the caller redacts before logging.
    """
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message[:300]}" if message else type(error).__name__


def enter_heading(path: list[tuple[int, str]], level: int, title: str) -> list[tuple[int, str]]:
    """The heading path after a heading of ``level``: open headings as deep or deeper close."""
    return [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]


def section_path(path: list[tuple[int, str]]) -> str:
    """A heading path as a chunk's ``section``: "Policy > Travel > Hotels"."""
    return " > ".join(title for _, title in path)


@dataclass
class Block:
    """A run of text under one heading path (and on one PDF page, when known).

    ``kind`` is ``table`` for a Markdown table (header row, separator, one line per row),
    which the chunker splits only between rows.
    """

    text: str
    section: str = ""
    page: int | None = None
    kind: str = "text"


@dataclass
class ParsedDocument:
    """A document as parsed. ``hidden_text`` holds the fragments a reader never sees (hidden
    HTML, tiny or white PDF text) for the poisoning scan; screening consumes and drops them."""

    title: str
    content_type: str
    blocks: list[Block]
    author: str | None = None
    date: str | None = None
    language: str | None = None
    acl: list[str] = field(default_factory=list)
    near_duplicate_of: str | None = None
    hidden_text: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParsedDocument:
        fields = dict(data)
        fields["blocks"] = [Block(**block) for block in data["blocks"]]
        return cls(**fields)

    @property
    def text(self) -> str:
        return "\n\n".join(block.text for block in self.blocks)
