"""The ingestion job end to end: Qdrant local mode, SQLite ledger, the real embedder. The tests
marked EVERY_STORE run again with Qdrant Edge and with Azure AI Search (its contract-test server) as the store.

After every run the collection's point ids must equal the ids the ledger accounts for.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from dagster import DagsterInstance
from pydantic import PrivateAttr

from assets.ingestion.chunking import embedding_text
from pipelines.definitions import INGEST_JOB, build_definitions, build_resources
from resources.staging import Staging
from tests import format_fixtures as fx
from tests.conftest import EVERY_STORE
from tests.corpus import markdown_doc, prose
from tests.test_chunking import PAYLOAD_FIELDS


def assert_index_matches_ledger(index_state, settings=None):
    ids, expected, rows = index_state(settings) if settings else index_state()
    assert ids == expected
    return ids, rows


def payloads(settings, collection):
    store = build_resources(settings)["vector_store"]
    try:
        return dict(store.payloads(collection))
    finally:
        store.close()


@EVERY_STORE
def test_first_run_indexes_every_document_with_the_full_payload(ingest, settings, corpus, index_state):
    summary = ingest()
    assert summary["success"], summary["errors"]
    assert summary["documents"]["new"] == 8
    assert summary["documents"]["quarantined"] == summary["documents"]["failed"] == 0
    assert summary["chunks"] == summary["upserted"] == summary["points"] > 8
    ids, rows = assert_index_matches_ledger(index_state)
    assert {row.status for row in rows.values()} == {"indexed"}
    assert set(rows) == {p.resolve().as_uri() for p in corpus.rglob("*") if p.is_file()}

    points = payloads(settings, summary["collection"]).values()
    assert summary["embedded"] == len({embedding_text(p) for p in points})  # each distinct input once
    assert all(set(p) == PAYLOAD_FIELDS for p in points)
    assert all(p["index_version"] == summary["index_version"] and p["language"] == "en" for p in points)
    by_type = {p["content_type"]: p for p in points}
    assert set(by_type) == {"text/markdown", "text/html", "text/plain", "application/pdf"}
    assert by_type["application/pdf"]["page"] in (1, 2)
    assert all(p["acl"] == [] for p in points)  # the front matter's `acl:` grants nothing
    assert by_type["text/markdown"]["section"].startswith("Procedure")
    for source, row in rows.items():
        own = sorted(p["chunk_id"] for p in points if p["source"] == source)
        assert own == list(range(row.chunk_count))


@EVERY_STORE
def test_rerun_of_unchanged_corpus_embeds_and_upserts_nothing(ingest, index_state):
    first = ingest()
    ids_before, _ = assert_index_matches_ledger(index_state)
    second = ingest()
    assert second["success"]
    assert second["documents"]["unchanged"] == 8
    assert (second["chunks"], second["embedded"], second["upserted"], second["deleted_points"]) == (0, 0, 0, 0)
    ids_after, _ = assert_index_matches_ledger(index_state)
    assert ids_after == ids_before and second["points"] == first["points"]


@EVERY_STORE
def test_editing_one_document_replaces_only_its_chunks(ingest, corpus, index_state):
    ingest()
    ids_before, rows_before = assert_index_matches_ledger(index_state)
    edited = corpus / "procedure-1.md"
    edited.write_text(markdown_doc(1) + "\n## Addendum\n\n" + prose(77, 6) + "\n", encoding="utf-8")
    uri = edited.resolve().as_uri()

    summary = ingest()
    assert summary["documents"]["changed"] == 1 and summary["documents"]["unchanged"] == 7
    ids_after, rows_after = assert_index_matches_ledger(index_state)
    assert summary["embedded"] == summary["upserted"] == rows_after[uri].chunk_count
    assert summary["deleted_points"] == rows_before[uri].chunk_count
    assert rows_after[uri].doc_id != rows_before[uri].doc_id
    unchanged = {s: r for s, r in rows_before.items() if s != uri}
    assert {s: r.doc_id for s, r in rows_after.items() if s != uri} == {s: r.doc_id for s, r in unchanged.items()}
    old_ids_of_edited = ids_before - ids_after
    assert len(old_ids_of_edited) == rows_before[uri].chunk_count
    assert ids_before - old_ids_of_edited <= ids_after


@EVERY_STORE
def test_deleting_a_document_removes_its_chunks(ingest, corpus, index_state):
    ingest()
    _, rows_before = assert_index_matches_ledger(index_state)
    removed = corpus / "notes-3.txt"
    uri = removed.resolve().as_uri()
    removed.unlink()

    summary = ingest()
    assert summary["documents"]["deleted"] == 1
    assert summary["deleted_points"] == rows_before[uri].chunk_count
    _, rows_after = assert_index_matches_ledger(index_state)
    assert rows_after[uri].status == "deleted" and rows_after[uri].chunk_count == 0


@EVERY_STORE
def test_identical_content_at_two_sources_is_embedded_once(ingest, settings, corpus, index_state):
    shutil.copy(corpus / "procedure-1.md", corpus / "copy-a.md")
    first = ingest()
    _, rows = assert_index_matches_ledger(index_state)
    duplicate_chunks = rows[(corpus / "copy-a.md").resolve().as_uri()].chunk_count
    distinct_texts = {embedding_text(p) for p in payloads(settings, first["collection"]).values()}
    assert first["embedded"] == len(distinct_texts) <= first["chunks"] - duplicate_chunks
    assert first["upserted"] == first["chunks"]  # both sources are retrievable

    shutil.copy(corpus / "procedure-1.md", corpus / "copy-b.md")
    second = ingest()
    assert second["documents"]["new"] == 1
    assert (second["embedded"], second["upserted"]) == (0, duplicate_chunks)
    assert_index_matches_ledger(index_state)


def test_bad_inputs_become_ledger_records_and_the_rest_is_indexed(ingest, settings, corpus, index_state,
                                                                 monkeypatch):
    ingest()  # procedure-5.md indexed in its good version first
    good = corpus / "procedure-5.md"
    good_uri = good.resolve().as_uri()
    _, before = assert_index_matches_ledger(index_state)

    good.write_bytes(fx.hostile()["broken-utf16.txt"])  # a bad new version of an indexed document
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "binary.md").write_bytes(bytes(range(256)) * 64)
    (corpus / "huge.txt").write_text(prose(5, 4000), encoding="utf-8")
    (corpus / "explodes.md").write_text("# Fine\n\nLooks fine.\n", encoding="utf-8")

    import assets.ingestion.stages as stages

    real_parse = stages.load_document

    def parse_or_raise(source, data, **options):
        if source.endswith("explodes.md"):
            raise RuntimeError("loader crashed")
        return real_parse(source, data, **options)

    monkeypatch.setattr(stages, "load_document", parse_or_raise)
    limited = replace(settings, max_document_bytes=100_000, failure_budget=0.5)
    summary = ingest(limited)

    assert summary["success"], summary["errors"]
    assert summary["documents"]["quarantined"] == 4 and summary["documents"]["failed"] == 1
    _, rows = assert_index_matches_ledger(index_state, limited)
    reasons = {Path(s).name: (r.status, r.reason) for s, r in rows.items() if r.status != "indexed"}
    assert reasons["empty.md"] == ("quarantined", "empty file (0 bytes)")
    assert reasons["binary.md"][1].startswith("binary content in a .md file")
    assert reasons["procedure-5.md"][1].startswith("not valid UTF-16")
    assert "above max_document_bytes=100,000" in reasons["huge.txt"][1]
    assert reasons["explodes.md"] == ("failed", "RuntimeError: loader crashed")
    # the previous good version stays indexed: nothing indexed is lost to bad input
    assert rows[good_uri].indexed_doc_id == before[good_uri].indexed_doc_id
    assert rows[good_uri].chunk_count == before[good_uri].chunk_count > 0
    assert sum(r.status == "indexed" for r in rows.values()) == 7

    rerun = ingest(limited)  # quarantine is a decision about content: not retried; failures are, after a backoff
    assert rerun["documents"]["unchanged"] == 11 and rerun["documents"]["deferred"] == 1


def test_failure_budget_fails_the_run_after_recording_every_result(ingest, settings, monkeypatch, index_state):
    import assets.ingestion.stages as stages

    real_parse = stages.load_document

    def parse_some(source, data, **options):
        if source.endswith(".txt"):
            raise OSError("disk read error")
        return real_parse(source, data, **options)

    monkeypatch.setattr(stages, "load_document", parse_some)
    summary = ingest()
    assert not summary["success"]
    assert any("failure_budget" in error for error in summary["errors"])
    assert summary["documents"]["failed"] == 2
    _, rows = assert_index_matches_ledger(index_state)
    assert sum(r.status == "indexed" for r in rows.values()) == 6
    assert sum(r.status == "failed" for r in rows.values()) == 2


def crashing(store, fail_after: int):
    """The configured store, dying after ``fail_after`` upsert calls (a killed run)."""

    class Crashing(type(store)):
        _upserts: int = PrivateAttr(default=0)

        def upsert(self, name, points):
            if self._upserts >= fail_after:
                raise ConnectionError("vector store went away")
            self._upserts += 1
            super().upsert(name, points)

    return Crashing(**{name: getattr(store, name) for name in type(store).model_fields})


@EVERY_STORE
def test_crash_during_upsert_converges_on_the_next_run(ingest, settings, index_state):
    small_batches = Staging(root=settings.staging_root, batch_size=5)
    crashed = ingest(
        vector_store=crashing(build_resources(settings)["vector_store"], fail_after=2), staging=small_batches
    )
    assert not crashed["success"]
    ids_after_crash, recorded, _ = index_state()
    assert len(ids_after_crash) == 10  # two batches of five made it in
    unrecorded = ids_after_crash - recorded  # points of documents the ledger never saw finish
    assert recorded < ids_after_crash and unrecorded

    recovered = ingest(staging=small_batches)
    assert recovered["success"], recovered["errors"]
    ids, rows = assert_index_matches_ledger(index_state)
    assert ids_after_crash <= ids
    assert recovered["repaired"]["removed_points"] == len(unrecorded)  # orphans until their document is in
    # the crashed run embedded everything before it died: nothing is embedded again
    assert recovered["embedded"] == 0 and recovered["reused_vectors"] == recovered["chunks"] > 0
    assert recovered["points"] == sum(r.chunk_count for r in rows.values()) == len(ids)
    assert ingest()["upserted"] == 0


@EVERY_STORE
def test_dropped_collection_is_rebuilt_from_the_source(ingest, settings, index_state):
    first = ingest()
    store = build_resources(settings)["vector_store"]
    store.delete_collection(first["collection"])
    store.close()
    second = ingest()
    assert second["documents"]["repair"] == 8 and second["upserted"] == first["upserted"]
    assert second["repaired"]["incomplete_documents"] == 8
    assert_index_matches_ledger(index_state)


def test_empty_listing_does_not_wipe_the_index(ingest, settings, corpus, index_state):
    first = ingest()
    for path in corpus.rglob("*"):
        if path.is_file():
            path.unlink()
    refused = ingest()
    assert not refused["success"]
    assert any("refusing to delete" in error for error in refused["errors"])
    ids, _ = assert_index_matches_ledger(index_state)
    assert len(ids) == first["points"]


def test_chunk_size_beyond_the_model_is_rejected_before_any_work(ingest, settings):
    oversized = replace(settings, chunk_size_tokens=400)
    with pytest.raises(ValueError, match="exceeds the embedder's limit of 254 tokens"):
        ingest(oversized)
    assert not settings.data_path.exists()

    # launched from the UI instead, the first asset fails with the same message
    definitions = build_definitions(oversized)
    result = definitions.resolve_job_def(INGEST_JOB).execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False
    )
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["raw_documents"]
    assert "exceeds the embedder's limit" in failures[0].step_failure_data.error.message
    assert not (settings.qdrant_path / "collection").exists()


def test_incremental_runs_with_the_ledger_on_postgres(ingest, settings, corpus, index_state, postgres_url):
    on_postgres = replace(settings, ledger_url=postgres_url)
    assert ingest(on_postgres)["documents"]["new"] == 8
    (corpus / "notes-3.txt").unlink()
    summary = ingest(on_postgres)
    assert (summary["documents"]["deleted"], summary["documents"]["unchanged"]) == (1, 7)
    assert summary["embedded"] == 0
    assert_index_matches_ledger(index_state, on_postgres)
