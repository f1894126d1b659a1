"""Near-duplicates: MinHash/LSH marks or skips lightly edited copies, across runs (the
signatures persist in the ledger), and leaves exact copies to the exact-duplicate path."""

from __future__ import annotations

import json

import pytest

from assets.ingestion.near_duplicates import NearDuplicateIndex, StoredSignature
from core.types import Block, DocumentRejected, ParsedDocument
from pipelines.cli import main

WORDS = ("the depot team checks every pallet against the manifest before the truck leaves and records "
         "any damage in the claims tool with a photo and the seal number so that finance can settle ").split()


def memo(seed: int, words: int = 300) -> str:
    return " ".join(WORDS[(seed * 7 + i * (seed + 3)) % len(WORDS)] + ("." if i % 17 == 16 else "")
                    for i in range(words))


def document(text: str) -> ParsedDocument:
    return ParsedDocument(title="Memo", content_type="text/plain", blocks=[Block(text)])


def edited(text: str) -> str:
    return text.replace("pallet", "parcel", 1)


def test_edited_copy_is_marked_and_exact_copy_is_not():
    index = NearDuplicateIndex("mark", 0.9)
    original, copy, exact, other = (document(memo(1)), document(edited(memo(1))),
                                    document(memo(1)), document(memo(2)))
    index.review("file:///a.txt", "doc-a", original)
    index.review("file:///b.txt", "doc-b", copy)
    index.review("file:///c.txt", "doc-a", exact)
    index.review("file:///d.txt", "doc-d", other)
    assert original.near_duplicate_of is None
    assert copy.near_duplicate_of == "file:///a.txt"
    assert exact.near_duplicate_of is None  # same doc_id: embedded once by the exact path
    assert other.near_duplicate_of is None


def test_skip_mode_rejects_and_stored_signatures_are_remembered():
    first = NearDuplicateIndex("mark", 0.9)
    first.review("file:///a.txt", "doc-a", document(memo(1)))
    stored = [StoredSignature(s.source, s.doc_id, s.hashvalues) for s in first.added]
    later = NearDuplicateIndex("skip", 0.9, known=stored)
    with pytest.raises(DocumentRejected) as caught:
        later.review("file:///b.txt", "doc-b", document(edited(memo(1))))
    assert caught.value.status == "quarantined"
    assert caught.value.reason.startswith("near-duplicate of file:///a.txt")
    later.review("file:///a.txt", "doc-a2", document(edited(memo(1))))  # a source never duplicates itself


def ingest(source, data_dir, capsys) -> dict:
    assert main(["ingest", "--json", "--source", str(source), "--data-dir", str(data_dir)]) == 0
    return json.loads(capsys.readouterr().out)


def test_pipeline_marks_a_near_duplicate_of_an_earlier_run_then_skips_when_configured(tmp_path, capsys,
                                                                                      monkeypatch):
    from qdrant_client import QdrantClient

    from resources.ledger import Ledger

    corpus, data = tmp_path / "corpus", tmp_path / "data"
    corpus.mkdir()
    (corpus / "memo.txt").write_text(f"Depot memo\n\n{memo(1)}\n")
    ingest(corpus, data, capsys)
    (corpus / "memo-copy.txt").write_text(f"Depot memo\n\n{edited(memo(1))}\n")
    summary = ingest(corpus, data, capsys)
    assert summary["documents"]["new"] == 1
    client = QdrantClient(path=str(data / "qdrant"))
    points, _ = client.scroll(summary["collection"], with_payload=True, limit=100)
    marks = {p.payload["source"].rsplit("/", 1)[-1]: p.payload.get("near_duplicate_of") for p in points}
    client.close()
    assert marks["memo-copy.txt"].endswith("/memo.txt")
    assert marks["memo.txt"] is None

    monkeypatch.setenv("RAGPIPE_NEAR_DUPLICATES", "skip")
    skip_data = tmp_path / "skip-data"
    summary = ingest(corpus, skip_data, capsys)
    assert summary["documents"]["quarantined"] == 1
    rows = Ledger(url=f"sqlite:///{skip_data / 'ledger.sqlite'}").rows(summary["index_version"])
    reasons = {source.rsplit("/", 1)[-1]: row.reason for source, row in rows.items() if row.status == "quarantined"}
    assert len(reasons) == 1
    (name, reason), = reasons.items()
    assert reason.startswith("near-duplicate of file://") and name in ("memo.txt", "memo-copy.txt")


def test_known_signatures_are_read_only_when_a_document_is_reviewed():
    """A run with nothing to parse must not pay for loading every stored signature."""
    reads = []
    original = NearDuplicateIndex("mark", 0.8)
    text = memo(3)
    original.review("file:///a", "a", document(text))

    def stored():
        reads.append(True)
        yield from original.added

    index = NearDuplicateIndex("mark", 0.8, stored())
    assert reads == []
    copy = document(edited(text))
    index.review("file:///b", "b", copy)
    assert reads == [True] and copy.near_duplicate_of == "file:///a"
