"""Chunking: token limits of the real tokenizer, sections, pages, ids and payload."""

from __future__ import annotations

import pytest

from assets.ingestion.chunking import MAX_EMBEDDED_HEADING_CHARS, chunk_document, embedding_text, make_splitter
from assets.ingestion.documents import point_id
from core.types import Block, ParsedDocument
from resources.embedders import SentenceTransformerEmbedder
from resources.settings import IngestionSettings
from tests.corpus import prose

PAYLOAD_FIELDS = {
    "doc_id", "source", "bucket", "title", "section", "chunk_id", "chunk_total", "content_type", "language",
    "date", "author", "page", "acl", "pii_entities", "token_count", "index_version", "text",
}


@pytest.fixture(scope="module")
def embedder():
    return SentenceTransformerEmbedder()


def chunk(document, embedder, size=64, overlap=8):
    splitter = make_splitter(size, overlap, embedder.count_tokens)
    return chunk_document(document, source="file:///c/a.md", doc_id="d" * 64, index_version="v1",
                          pii_entities={"EMAIL_ADDRESS": 1}, splitter=splitter,
                          count_tokens=embedder.count_tokens)


def test_chunks_respect_the_token_budget_and_keep_sections(embedder):
    document = ParsedDocument(
        title="T", content_type="text/markdown", language="en", acl=["ops"],
        blocks=[Block(prose(1, 20), section="A"), Block(prose(2, 3), section="A"),
                Block(prose(3, 15), section="A > B")],
    )
    chunks = chunk(document, embedder)
    assert all(c["token_count"] <= 64 for c in chunks)
    assert all(c["token_count"] == embedder.count_tokens(c["text"]) for c in chunks)
    assert [c["chunk_id"] for c in chunks] == list(range(len(chunks)))
    assert {c["chunk_total"] for c in chunks} == {len(chunks)}
    assert {c["section"] for c in chunks} == {"A", "A > B"}
    sections = [c["section"] for c in chunks]
    assert sections == sorted(sections, key=["A", "A > B"].index)  # document order kept
    assert all(set(c) == PAYLOAD_FIELDS | {"point_id"} for c in chunks)
    assert chunks[0]["point_id"] == point_id("file:///c/a.md", "d" * 64, 0)


def test_pages_never_share_a_chunk(embedder):
    document = ParsedDocument(title="P", content_type="application/pdf",
                              blocks=[Block("Page one text.", page=1), Block("Page two text.", page=2)])
    chunks = chunk(document, embedder)
    assert [(c["page"], c["text"]) for c in chunks] == [(1, "Page one text."), (2, "Page two text.")]


def test_chunking_is_deterministic(embedder):
    document = ParsedDocument(title="T", content_type="text/plain", blocks=[Block(prose(9, 30))])
    assert chunk(document, embedder) == chunk(document, embedder)


def test_token_count_is_the_models_own(embedder):
    assert embedder.count_tokens("hello world") == 2
    assert embedder.count_tokens(prose(4, 40)) > 128  # not capped by the shipped truncation


def test_chunk_size_above_model_limit_is_rejected_with_the_fix(embedder):
    settings = IngestionSettings(chunk_size_tokens=300)
    with pytest.raises(ValueError) as caught:
        settings.validate_against(embedder.max_input_tokens(), embedder.name())
    message = str(caught.value)
    assert "chunk_size_tokens=300" in message and "254" in message and "RAGPIPE_CHUNK_SIZE" in message


def test_overlap_must_be_below_size(embedder):
    with pytest.raises(ValueError, match="chunk_overlap_tokens=64"):
        IngestionSettings(chunk_size_tokens=64, chunk_overlap_tokens=64).validate_against(254, "m")


def test_a_chunk_is_embedded_with_its_title_and_section_after_its_text():
    payload = {"title": "Forklift policy", "section": "Licences > Renewal", "text": "Renew every three years."}
    assert embedding_text(payload) == "Renew every three years.\n\nForklift policy > Licences > Renewal"
    assert embedding_text({**payload, "title": None, "section": ""}) == "Renew every three years."
    long_title = embedding_text({**payload, "title": "x" * 500})
    assert long_title.startswith("Renew every three years.\n\n")
    assert len(long_title.split("\n\n")[1]) == MAX_EMBEDDED_HEADING_CHARS
