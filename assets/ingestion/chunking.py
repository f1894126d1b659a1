"""Token-aware chunking of a screened document into payload-complete chunk records."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from typing import Any

from assets.ingestion.documents import ParsedDocument, point_id

SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]


def make_splitter(chunk_size: int, chunk_overlap: int, count_tokens: Callable[[str], int]):
    """A recursive splitter measuring length in the embedder's own tokens."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        length_function=count_tokens,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )


def chunk_document(
    document: ParsedDocument,
    *,
    source: str,
    doc_id: str,
    index_version: str,
    pii_entities: dict[str, int],
    splitter,
    count_tokens: Callable[[str], int],
) -> list[dict[str, Any]]:
    """Split each run of blocks sharing a section (and page) on its own, so every chunk
    has one heading path and one page; number the chunks and attach the full payload."""
    pieces: list[tuple[str, str, int | None]] = []
    for (section, page), blocks in groupby(document.blocks, key=lambda b: (b.section, b.page)):
        text = "\n\n".join(block.text for block in blocks)
        pieces += [(section, page, chunk) for chunk in splitter.split_text(text) if chunk.strip()]
    total = len(pieces)
    return [
        {
            "point_id": point_id(source, doc_id, index),
            "doc_id": doc_id,
            "source": source,
            "title": document.title,
            "section": section,
            "chunk_id": index,
            "chunk_total": total,
            "content_type": document.content_type,
            "language": document.language,
            "date": document.date,
            "author": document.author,
            "page": page,
            "acl": document.acl,
            "pii_entities": pii_entities,
            "token_count": count_tokens(text),
            "index_version": index_version,
            "text": text,
        }
        for index, (section, page, text) in enumerate(pieces)
    ]
