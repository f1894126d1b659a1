"""What a run reads: the version short-circuit (an unchanged rerun reads no document bytes)
and targeted runs (only the named sources are looked up; the source is never listed and
nothing unnamed is deleted), on the local folder source and the real ingest job."""

from __future__ import annotations

import os
import uuid
from collections import Counter

import pytest

from assets.ingestion.changes import classify, metadata_changed, version_marker
from core.types import LedgerRow, Point, SourceItem
from pipelines.cli import run_ingest
from resources.sources import LocalFolderSource
from tests.corpus import markdown_doc, prose
from tests.test_pipeline import assert_index_matches_ledger


@pytest.fixture
def source_calls(monkeypatch) -> Counter:
    """Counts the local source's list calls and the document bytes it reads."""
    calls: Counter = Counter()
    for name in ("list_items", "read_bytes", "sha256", "item"):
        original = getattr(LocalFolderSource, name)

        def spy(self, *args, _original=original, _name=name):
            calls[_name] += 1
            result = _original(self, *args)
            if _name == "read_bytes":
                calls["bytes"] += len(result)
            return result

        monkeypatch.setattr(LocalFolderSource, name, spy)
    return calls


def test_an_unchanged_rerun_reads_no_document_bytes(ingest, index_state, source_calls):
    first = ingest()
    assert first["source_bytes_read"] == source_calls["bytes"] > 0
    source_calls.clear()

    second = ingest()
    assert second["success"] and second["documents"]["unchanged"] == 8
    assert second["source_bytes_read"] == 0 and source_calls["bytes"] == 0 and source_calls["sha256"] == 0
    assert source_calls["list_items"] == 1
    assert_index_matches_ledger(index_state)


def test_a_touched_but_identical_file_is_read_once_then_skipped(ingest, corpus, index_state, source_calls):
    ingest()
    touched = corpus / "procedure-1.md"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    source_calls.clear()

    summary = ingest()
    assert summary["documents"]["unchanged"] == 8 and summary["embedded"] == 0
    assert summary["source_bytes_read"] == touched.stat().st_size  # hashed: the marker changed
    _, _, rows = index_state()
    assert rows[touched.resolve().as_uri()].version == version_marker(
        LocalFolderSource(root=str(corpus)).item(touched.resolve().as_uri()))

    assert ingest()["source_bytes_read"] == 0  # the new marker is in the ledger


def test_a_targeted_run_reads_only_the_named_sources_and_deletes_only_what_it_is_told(
        settings, corpus, index_state, source_calls):
    run_ingest(settings)
    _, rows_before = assert_index_matches_ledger(index_state)
    edited, removed, unnamed_removal = corpus / "procedure-1.md", corpus / "notes-3.txt", corpus / "notes-7.txt"
    created = corpus / "procedure-9.md"
    edited.write_text(markdown_doc(1) + "\n## Addendum\n\n" + prose(77, 6) + "\n", encoding="utf-8")
    created.write_text(markdown_doc(9), encoding="utf-8")
    removed.unlink()
    unnamed_removal.unlink()
    uri = {path: path.resolve().as_uri() for path in (edited, removed, unnamed_removal, created)}
    source_calls.clear()

    summary = run_ingest(settings, upsert=[uri[edited], uri[created], (corpus / "never-existed.md").as_uri()],
                         delete=[uri[removed]])
    assert summary["success"] and summary["mode"] == "targeted"
    assert source_calls["list_items"] == 0 and source_calls["read_bytes"] == 2
    assert source_calls["bytes"] == edited.stat().st_size + created.stat().st_size
    docs = summary["documents"]
    assert (docs["changed"], docs["new"], docs["deleted"], docs["missing"], docs["unchanged"]) == (1, 1, 1, 1, 0)
    _, rows = assert_index_matches_ledger(index_state)
    assert rows[uri[removed]].status == "deleted"
    assert rows[uri[unnamed_removal]].status == "indexed"  # not named: kept until a full reconcile
    assert rows[uri[created]].status == "indexed" and rows[uri[edited]].doc_id != rows_before[uri[edited]].doc_id

    full = run_ingest(settings)
    assert full["documents"]["deleted"] == 1 and full["documents"]["unchanged"] == 7


def test_a_delete_request_for_a_source_that_exists_again_indexes_it_instead(settings, corpus, index_state):
    run_ingest(settings)
    recreated = corpus / "notes-3.txt"
    recreated.write_text(prose(501, 5), encoding="utf-8")
    summary = run_ingest(settings, delete=[recreated.resolve().as_uri()])
    assert summary["documents"]["changed"] == 1 and summary["documents"]["deleted"] == 0
    assert_index_matches_ledger(index_state)


def test_a_targeted_run_refuses_a_uri_outside_the_source(settings, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the corpus", encoding="utf-8")
    summary = run_ingest(settings, upsert=[outside.as_uri()])
    assert not summary["success"]
    assert any("not a file:// URI under the source folder" in error for error in summary["errors"])


def test_a_metadata_only_change_reindexes_the_document():
    """An ACL edit on a blob changes its etag and metadata but not its bytes."""
    before = SourceItem("az://a/c/x", "0x1", 3, {"acl": ["finance"]})
    after = SourceItem("az://a/c/x", "0x2", 3, {"acl": ["finance", "hr"]})
    retagged = SourceItem("az://a/c/x", "0x3", 3, {"acl": ["finance"]})
    row = LedgerRow(source="az://a/c/x", status="indexed", doc_id="d", version=version_marker(before),
                    indexed_doc_id="d", chunk_count=1)
    assert version_marker(SourceItem("file:///x", "1-3", 3)) == "1-3"  # no metadata: the marker as is
    assert classify("d", row, metadata_changed=metadata_changed(row, version_marker(after))) == "changed"
    assert not metadata_changed(row, version_marker(retagged))
    assert classify("d", row, metadata_changed=metadata_changed(row, version_marker(retagged))) == "unchanged"


def _add_orphan(settings, source: str) -> None:
    """A point no ledger row accounts for, as a run killed between upsert and ledger leaves."""
    from pipelines.definitions import build_resources

    resources = build_resources(settings)
    store, ledger = resources["vector_store"], resources["ledger"]
    try:
        (version,) = ledger.status_counts()
        collection = f"{settings.collection}__{version}"
        (point_id, payload), *_ = store.payloads(collection)
        vector = store.vectors(collection, [point_id])[point_id]
        store.upsert(collection, [Point(id=str(uuid.uuid4()), vector=vector,
                                        payload={**payload, "source": source, "doc_id": "0" * 64})])
    finally:
        store.close()


def test_a_targeted_run_repairs_only_its_sources_unless_the_point_counts_disagree(settings, corpus, index_state):
    run_ingest(settings)
    named = corpus / "notes-3.txt"
    named.write_text(prose(600, 5), encoding="utf-8")

    clean = run_ingest(settings, upsert=[named.resolve().as_uri()])
    assert clean["success"] and clean["repaired"]["removed_points"] == 0
    assert _raw_metadata(settings, clean["run_id"])["repair_scope"] == "named sources"

    _add_orphan(settings, (corpus / "notes-7.txt").resolve().as_uri())  # drift at a source it does not name
    named.write_text(prose(601, 5), encoding="utf-8")
    drifted = run_ingest(settings, upsert=[named.resolve().as_uri()])
    assert drifted["success"] and drifted["repaired"] == {"orphan_sources": 1, "removed_points": 1,
                                                          "incomplete_documents": 0}
    assert _raw_metadata(settings, drifted["run_id"])["repair_scope"] == "whole index"
    assert_index_matches_ledger(index_state)


def _raw_metadata(settings, run_id: str) -> dict:
    from dagster import AssetKey, DagsterInstance

    from pipelines.instance import ensure_dagster_home

    ensure_dagster_home(settings.dagster_home)
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey("raw_documents"))
        assert event.run_id == run_id
        return {key: value.value for key, value in event.asset_materialization.metadata.items()}
