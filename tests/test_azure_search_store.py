"""AzureAISearchStore through the real SDK (azure-search-documents) against the Azure AI Search
contract-test server (tests/azure_search_server.py: the service cannot run here; the server
speaks its REST paths and payloads and rejects what the service rejects). What every store
must do is tested through the pipeline (tests marked EVERY_STORE); this file holds what is
particular to the service: request limits, partial failures, paged deletes, aliases, hybrid."""

from __future__ import annotations

import time
import uuid
from typing import ClassVar

import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import SearchIndex, SimpleField

from core.access import AccessFilter
from core.types import Point
from resources.azure_search import AzureAISearchStore, SearchIndexingError, index_name
from tests.azure_search_server import AzureSearchContractServer
from tests.contract_http import self_signed

DIMENSION = 4
INDEX_REQUESTS = "/docs/search.index"


@pytest.fixture
def store(azure_search):
    store = AzureAISearchStore(endpoint=azure_search.endpoint, api_key=azure_search.admin_key,
                               backoff_s=0.01, refresh_s=0.0)
    yield store
    store.close()


def points(count: int, source: str = "file:///a.md", doc_id: str = "d1", start: int = 0) -> list[Point]:
    return [Point(id=str(uuid.UUID(int=start + i + 1)), vector=[1.0, (start + i) / 10_000, 0.0, 0.0],
                  payload={"text": f"chunk {start + i}", "source": source, "doc_id": doc_id, "chunk_id": start + i,
                           "acl": [], "pii_entities": {"EMAIL": 1}, "page": None})
            for i in range(count)]


def index_bodies(server) -> list[list[dict]]:
    return [body["value"] for body in server.bodies(INDEX_REQUESTS, "POST")]


def test_uploads_go_in_requests_within_the_service_limits_and_read_back_exactly(store, azure_search):
    store.ensure_collection("kb__v1", DIMENSION)
    written = points(2300)
    store.upsert("kb__v1", written)
    assert [len(body) for body in index_bodies(azure_search)] == [1000, 1000, 300]
    assert store.count("kb__v1") == 2300
    assert dict(store.payloads("kb__v1"))[written[7].id] == written[7].payload  # nested and null fields too
    assert store.vectors("kb__v1", [written[0].id, "absent"]) == {written[0].id: written[0].vector}


def test_a_request_over_the_size_limit_is_split_before_it_is_sent(azure_search):
    small = AzureAISearchStore(endpoint=azure_search.endpoint, api_key=azure_search.admin_key,
                               max_batch_bytes=20_000, refresh_s=0.0)
    small.ensure_collection("kb__v1", DIMENSION)
    small.upsert("kb__v1", points(200))
    sizes = [len(body) for body in index_bodies(azure_search)]
    assert sum(sizes) == 200 and len(sizes) > 1 and max(sizes) < 200
    small.close()


def test_a_partial_failure_resends_only_the_keys_that_failed(store, azure_search):
    store.ensure_collection("kb__v1", DIMENSION)
    written = points(50)
    flaky = {written[3].id, written[40].id}
    azure_search.fail_keys(flaky, attempts=2)
    store.upsert("kb__v1", written)
    resent = [{action["id"] for action in body} for body in index_bodies(azure_search)]
    assert len(resent[0]) == 50 and resent[1:] == [flaky, flaky]
    assert store.point_ids("kb__v1") == {point.id for point in written}


def test_a_key_that_keeps_failing_fails_the_upsert_naming_it(store, azure_search):
    store.ensure_collection("kb__v1", DIMENSION)
    written = points(5)
    azure_search.fail_keys({written[2].id}, attempts=100)
    with pytest.raises(SearchIndexingError, match=written[2].id):
        store.upsert("kb__v1", written)
    assert len(index_bodies(azure_search)) == 1 + store.key_retries


def test_a_refused_document_fails_at_once_with_the_service_reason(store, azure_search):
    store.ensure_collection("kb__v1", DIMENSION)
    with pytest.raises(Exception, match="dimension"):
        store.upsert("kb__v1", [Point(id=str(uuid.UUID(int=1)), vector=[1.0, 0.0], payload={"text": "x"})])


def test_throttled_requests_are_retried_with_backoff(store, azure_search):
    store.ensure_collection("kb__v1", DIMENSION)
    azure_search.fail_next(INDEX_REQUESTS, times=2, status=429, retry_after=0.01)
    azure_search.fail_next("search.post.search", times=1, status=503, retry_after=0.01)
    store.upsert("kb__v1", points(3))
    assert azure_search.count(INDEX_REQUESTS, "POST") == 3  # two throttled, one applied
    assert len(store.point_ids("kb__v1")) == 3


def test_a_dimension_mismatch_is_an_error_before_any_upload(store, azure_search):
    store.ensure_collection("kb__v1", DIMENSION)
    with pytest.raises(ValueError, match="holds 4-dimension vectors but the embedder makes 8"):
        store.ensure_collection("kb__v1", 8)
    assert azure_search.count(INDEX_REQUESTS) == 0


def test_delete_by_source_pages_through_more_keys_than_one_response_holds(store, azure_search):
    store.ensure_collection("kb__v1", DIMENSION)
    store.upsert("kb__v1", points(2100, source="file:///big.md", doc_id="old"))
    store.upsert("kb__v1", points(5, source="file:///big.md", doc_id="new", start=5000))
    store.upsert("kb__v1", points(3, source="file:///other's.md", doc_id="o", start=9000))
    store.delete_source("kb__v1", "file:///big.md", keep_doc_id="new")
    assert sorted(set(store.point_sources("kb__v1"))) == [("file:///big.md", "new"), ("file:///other's.md", "o")]
    assert [len(body) for body in index_bodies(azure_search)[-3:]] == [1000, 1000, 100]
    store.delete_source("kb__v1", "file:///other's.md")
    assert list(store.point_sources("kb__v1", ["file:///other's.md"])) == []


def test_aliases_switch_in_one_request_and_collections_are_only_ours(store, azure_search):
    for name in ("kb__v1", "kb__v2"):
        store.ensure_collection(name, DIMENSION)
        store.upsert(name, points(2))
    foreign = SearchIndexClient(azure_search.endpoint, AzureKeyCredential(azure_search.admin_key))
    foreign.create_index(SearchIndex(name="another-team", fields=[SimpleField(name="id", type="Edm.String",
                                                                              key=True)]))
    assert store.collections() == {"kb__v1": 2, "kb__v2": 2}
    assert store.alias_target("kb") is None
    store.point_alias("kb", "kb__v1")
    store.point_alias("kb", "kb__v2")
    assert store.alias_target("kb") == "kb__v2"
    assert len(store.search("kb", [1.0, 0.0, 0.0, 0.0], 5)) == 2  # queries through the alias
    assert azure_search.count("/aliases", "PUT") == 2
    foreign.close()


def test_an_index_of_another_collection_is_not_taken_over(store):
    store.ensure_collection("kb__v1", DIMENSION)
    with pytest.raises(ValueError, match="is not collection 'kb-v1'"):
        store.ensure_collection("kb-v1", DIMENSION)


def test_collection_names_the_service_cannot_hold_are_refused_clearly():
    assert index_name("knowledge__3f9a0c") == "knowledge-3f9a0c"
    for bad in ("Knowledge__v1", "kb--x__v1", "-kb__v1", "kb___v1"):
        with pytest.raises(ValueError, match="cannot name an Azure AI Search index"):
            index_name(bad)


def test_native_hybrid_ranks_an_exact_rare_term_first_within_the_caller_groups(store):
    store.ensure_collection("kb__v1", DIMENSION)
    texts = ["error XK-4471 means clean the battery contacts", "breakfast is served until nine",
             "error XK-4471 in the HR payroll system", "forklift licences last three years"]
    acls = [["ops"], [], ["hr"], ["ops"]]
    store.upsert("kb__v1", [Point(id=str(uuid.UUID(int=i + 1)), vector=[1.0, i / 10, 0.0, 0.0],
                                  payload={"text": text, "acl": acl, "source": f"s{i}", "doc_id": f"d{i}"})
                            for i, (text, acl) in enumerate(zip(texts, acls))])
    query = [0.0, 0.0, 1.0, 0.0]  # the vector leg says nothing useful; the text leg must decide
    ops = store.search("kb__v1", query, 2, text="XK-4471", access=AccessFilter(("ops",), "deny"))
    assert ops[0].payload["text"] == texts[0] and all(hit.payload["acl"] == ["ops"] for hit in ops)
    hr = store.search("kb__v1", query, 4, text="XK-4471", access=AccessFilter(("hr",), "public"))
    assert {hit.payload["text"] for hit in hr} == {texts[1], texts[2]}
    assert store.search("kb__v1", query, 4, text="XK-4471", access=AccessFilter((), "deny")) == []
    assert [hit.payload["text"] for hit in store.search("kb__v1", None, 1, text="forklift")] == [texts[3]]


class StaticEntraToken:
    """Stands in for DefaultAzureCredential (Entra ID cannot be reached here): one token, and a
    record of the scopes the SDK asked it for."""

    scopes: ClassVar[list[tuple[str, ...]]] = []

    def get_token(self, *scopes, **kwargs):
        StaticEntraToken.scopes.append(scopes)
        return AccessToken("workload-identity-token", int(time.time()) + 3600)

    def close(self):
        pass


def test_without_a_key_the_store_authenticates_with_entra_id_over_https(tmp_path, monkeypatch):
    certificate = self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))  # the client trusts the server's certificate
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", StaticEntraToken)
    with AzureSearchContractServer(bearer_tokens=("workload-identity-token",), certificate=certificate) as server:
        store = AzureAISearchStore(endpoint=server.endpoint, refresh_s=0.0)
        store.ensure_collection("kb__v1", DIMENSION)
        store.upsert("kb__v1", points(3))
        assert store.count("kb__v1") == 3
        store.close()
    assert server.endpoint.startswith("https://")
    assert StaticEntraToken.scopes and all(s == ("https://search.azure.com/.default",) for s in StaticEntraToken.scopes)
