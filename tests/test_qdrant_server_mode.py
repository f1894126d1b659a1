"""The ingestion job against a Qdrant server (RAGPIPE_QDRANT_URL), without an API key.

No Qdrant server can run here: the server is tests/qdrant_server.py, a contract-test server
speaking Qdrant's REST API with qdrant-client's own models (see its docstring).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.qdrant_server import qdrant_contract_server


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
