"""The records that travel between ingestion stages, and how a document is rejected."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from typing import Any

from core.types import ParsedDocument

# Bump when cleaning or parsing changes what text a document yields: it changes vectors.
CLEANING_VERSION = "4"

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


SOURCE_METADATA_FIELDS = ("title", "author", "language")


def with_source_metadata(document: ParsedDocument, metadata: dict[str, Any]) -> ParsedDocument:
    """The document with what its source says about it (blob metadata, the ACL mapping file)
    over what parsing found: the source is where an owner sets a title or an ACL on purpose.
    The acl comes from the source alone, never from the document: whoever can write a document
    must not be able to grant themselves (or anyone) access to it."""
    fields = {name: metadata[name] for name in SOURCE_METADATA_FIELDS if metadata.get(name)}
    return replace(document, acl=list(metadata.get("acl") or []), **fields)
