"""Token-aware chunking of a screened document into payload-complete chunk records."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from typing import Any

from assets.ingestion.documents import point_id
from core.shards import bucket_of
from core.tables import split_table
from core.types import ParsedDocument

SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]
# The heading added to a chunk's text when it is embedded, at most this many characters, so a
# long title cannot outweigh a short chunk.
MAX_EMBEDDED_HEADING_CHARS = 160
EMBEDDED_TEXT = "chunk text, blank line, title > section"  # part of the index version: it shapes vectors


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
    chunk_size: int | None = None,
) -> list[dict[str, Any]]:
    """Split each run of blocks sharing a section (and page) on its own, so every chunk
    has one heading path and one page; number the chunks and attach the full payload.

    Tables are chunked on their own (``split_table``), by whole rows, with the header row
    repeated in each chunk, and rows wider than a chunk by column groups under their own
    header, so no chunk holds half a cell or cells without their column names. ``chunk_size``
    (tokens) bounds table chunks; by default the splitter's own size."""
    table_budget = chunk_size or splitter._chunk_size  # langchain keeps the size private
    pieces: list[tuple[str, str, int | None]] = []
    for (section, page), blocks in groupby(document.blocks, key=lambda b: (b.section, b.page)):
        for is_table, run in groupby(blocks, key=lambda b: b.kind == "table"):
            if is_table:
                texts = [part for block in run for part in split_table(block.text, table_budget, count_tokens)]
            else:
                texts = splitter.split_text("\n\n".join(block.text for block in run))
            pieces += [(section, page, text) for text in texts if text.strip()]
    total = len(pieces)
    # Only a near-duplicate carries the field, so filters can test for its presence.
    marker = {"near_duplicate_of": document.near_duplicate_of} if document.near_duplicate_of else {}
    return [
        {
            "point_id": point_id(source, doc_id, index),
            "doc_id": doc_id,
            "source": source,
            "bucket": bucket_of(source),
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
            **marker,
        }
        for index, (section, page, text) in enumerate(pieces)
    ]


def embedding_text(payload: dict[str, Any]) -> str:
    """What is embedded for a chunk: its text, then its document title and section path. A
    chunk alone often never names what it is about ("It must be renewed every three years");
    measured in docs/evaluation.md, the heading lifts dense MRR@10 by 0.05 on both golden sets.
    After the text, not before: a chunk at the model's input limit loses the heading to
    truncation, never its own words."""
    heading = " > ".join(part for part in (payload.get("title"), payload.get("section")) if part)
    heading = heading[:MAX_EMBEDDED_HEADING_CHARS]
    return f"{payload['text']}\n\n{heading}" if heading else payload["text"]
