"""The ingestion job against a Qdrant server (RAGPIPE_QDRANT_URL), without an API key.

No Qdrant server can run here: the server is tests/qdrant_server.py, a contract-test server
speaking Qdrant's REST API with qdrant-client's own models (see its docstring).
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from assets.evaluation.retrieval import Retriever
from core.types import Point
from resources.embedders import SentenceTransformerEmbedder
from resources.vector_stores import QdrantVectorStore
from tests.qdrant_server import qdrant_contract_server
from tests.test_retrieval import TEXTS


# qdrant-client checks the server's version in a background thread; the last client's check
# can race the server's shutdown at the end of the test.
@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_ingest_against_a_server_without_an_api_key(ingest, settings, corpus, index_state, monkeypatch):
    monkeypatch.delenv("RAGPIPE_QDRANT_API_KEY", raising=False)
    with qdrant_contract_server() as (url, requests):
        server = replace(settings, qdrant_url=url)
        first = ingest(server)
        assert first["success"], first["errors"]
        assert first["documents"]["new"] == 8 and first["points"] == first["upserted"] > 8
        ids, expected, _ = index_state(server)
        assert ids == expected

        (corpus / "notes-3.txt").unlink()
        second = ingest(server)
        assert second["success"], second["errors"]
        assert second["documents"]["deleted"] == 1 and second["embedded"] == 0
        ids, expected, _ = index_state(server)
        assert ids == expected and len(ids) == second["points"] < first["points"]

    collection = f"/collections/{first['collection']}"
    assert {("PUT", collection), ("PUT", f"{collection}/index"), ("PUT", f"{collection}/points"),
            ("POST", f"{collection}/points/delete")} <= set(requests)
    assert not (settings.data_path / "qdrant").exists()  # nothing went to local mode


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_the_api_key_reaches_a_server_that_requires_one_outside_a_run_too(settings, monkeypatch):
    """`ragpipe status` uses the vector store as built, where the key is still an EnvVar."""
    from pipelines.cli import status

    monkeypatch.setenv("RAGPIPE_QDRANT_API_KEY", "a-server-key")
    with qdrant_contract_server(api_key="a-server-key") as (url, requests):
        report = status(replace(settings, qdrant_url=url))
    assert report["collections"] == {} and ("GET", "/collections") in requests


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_a_server_answers_the_evaluation_s_searches_in_one_batch_request(tmp_path):
    """Both retrievers through the contract server rank as in local mode, with one batch
    request per search_many call."""
    embedder = SentenceTransformerEmbedder()
    points = [Point(id=str(uuid.UUID(int=i + 1)), vector=vector, payload={"text": text, "acl": ["ops"] if i else None})
              for i, (text, vector) in enumerate(zip(TEXTS, embedder.embed(TEXTS)))]
    queries = ["When does breakfast end?", "what is XK-4471", "forklift licence renewal"]
    local = QdrantVectorStore(path=str(tmp_path / "local"))
    with qdrant_contract_server() as (url, requests):
        server = QdrantVectorStore(url=url)
        for store in (local, server):
            store.ensure_collection("docs", embedder.dimension())
            store.upsert("docs", points)
        for mode in ("dense", "hybrid"):
            for groups in ([None] * 3, [["hr"], ["ops"], []]):
                ranked = [Retriever(store, embedder, "docs", mode).search_many(queries, 3, groups=groups)
                          for store in (local, server)]
                assert [[(h.id, h.payload) for h in hits] for hits in ranked[0]] == \
                    [[(h.id, h.payload) for h in hits] for hits in ranked[1]]
        batches = [path for method, path in requests if path == "/collections/docs/points/query/batch"]
        assert len(batches) == 4 and ("POST", "/collections/docs/points/query") not in requests
        server.close()
    local.close()
