"""QdrantEdgeVectorStore on the real engine (qdrant-edge-py). What every store must do is tested
through the pipeline (tests marked EVERY_STORE); this file holds what is particular to Edge:
aliases kept in a file, one folder per collection, its lock, and the optimisation on close."""

from __future__ import annotations

import json
import uuid

import pytest

from core.access import AccessFilter
from core.types import Point
from resources.vector_stores import QdrantEdgeVectorStore

DIMENSION = 4


@pytest.fixture
def store(tmp_path):
    store = QdrantEdgeVectorStore(path=str(tmp_path / "edge"))
    yield store
    store.close()


def points(count: int, source: str = "file:///a.md", doc_id: str = "d1", acl: list[str] | None = None) -> list[Point]:
    return [Point(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source}#{doc_id}#{i}")), vector=[1.0, i / 100, 0.0, 0.0],
                  payload={"text": f"chunk {i}", "source": source, "doc_id": doc_id, "chunk_id": i,
                           "acl": acl or [], "bucket": i})
            for i in range(count)]


def test_an_alias_is_read_through_and_deleting_its_collection_drops_it(store, tmp_path):
    store.ensure_collection("kb__v1", DIMENSION)
    store.upsert("kb__v1", points(3))
    store.point_alias("kb", "kb__v1")
    assert json.loads((tmp_path / "edge" / "aliases.json").read_text()) == {"kb": "kb__v1"}
    assert store.alias_target("kb") == "kb__v1" and store.count("kb") == 3
    assert not store.collection_exists("kb")
    [hits] = store.search_many("kb", [[1.0, 0.0, 0.0, 0.0]], 2, accesses=[None])
    assert [hit.payload["chunk_id"] for hit in hits] == [0, 1]

    store.ensure_collection("kb__v2", DIMENSION)
    store.point_alias("kb", "kb__v2")
    assert store.alias_target("kb") == "kb__v2" and store.count("kb") == 0
    store.delete_collection("kb__v2")
    assert store.alias_target("kb") is None and store.collections() == {"kb__v1": 3}
    with pytest.raises(ValueError, match="'kb__v9' does not exist"):
        store.point_alias("kb", "kb__v9")


def test_delete_source_keeps_the_current_content_and_access_trims_hits(store):
    store.ensure_collection("kb__v1", DIMENSION)
    store.upsert("kb__v1", points(2, doc_id="old") + points(2, doc_id="new", acl=["hr"]) + points(1, "file:///b.md"))
    store.delete_source("kb__v1", "file:///a.md", keep_doc_id="new")
    assert sorted(store.point_sources("kb__v1")) == [("file:///a.md", "new")] * 2 + [("file:///b.md", "d1")]
    query = [[1.0, 0.0, 0.0, 0.0]]
    [hits] = store.search_many("kb__v1", query, 10, accesses=[AccessFilter(("sales",), "public")])
    assert {hit.payload["source"] for hit in hits} == {"file:///b.md"}
    [hits] = store.search_many("kb__v1", query, 10, accesses=[AccessFilter((), "deny")])
    assert hits == []


def test_a_second_process_gets_a_clear_error_while_a_collection_is_open(store, tmp_path):
    store.ensure_collection("kb__v1", DIMENSION)
    other = QdrantEdgeVectorStore(path=str(tmp_path / "edge"))
    with pytest.raises(RuntimeError, match="is open in another process"):
        other.count("kb__v1")
    store.close()
    assert other.count("kb__v1") == 0
    other.close()


def test_points_written_before_close_are_there_after_reopening(store, tmp_path):
    store.ensure_collection("kb__v1", DIMENSION)
    written = points(300)
    store.upsert("kb__v1", written)
    store.close()  # optimises the written shard
    reopened = QdrantEdgeVectorStore(path=str(tmp_path / "edge"))
    try:
        assert reopened.count("kb__v1") == 300
        assert reopened.vectors("kb__v1", [written[5].id, str(uuid.uuid4())]) == {
            written[5].id: pytest.approx([v / (1 + 0.05**2) ** 0.5 for v in written[5].vector], rel=1e-6)}
        assert dict(reopened.payloads("kb__v1"))[written[5].id] == written[5].payload
    finally:
        reopened.close()
