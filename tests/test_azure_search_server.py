"""The Azure AI Search contract server, driven by the real azure-search-documents SDK: what the
store's tests rely on (per-key results, throttling, filters, hybrid ranking, aliases) and the
requests the service rejects."""

from __future__ import annotations

import time

import pytest
import requests
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.search.documents import RequestEntityTooLargeError, SearchClient
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import (
    HnswAlgorithmConfiguration,
    SearchableField,
    SearchAlias,
    SearchField,
    SearchFieldDataType,
    SearchIndex,
    SimpleField,
    VectorSearch,
    VectorSearchProfile,
)
from azure.search.documents.models import VectorizedQuery

from tests.azure_search_server import RRF_K, AzureSearchContractServer

FAST_RETRY = {"retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}


@pytest.fixture
def server():
    with AzureSearchContractServer() as running:
        yield running


def index_client(server, key=None, **kwargs) -> SearchIndexClient:
    return SearchIndexClient(server.endpoint, AzureKeyCredential(key or server.admin_key), **FAST_RETRY, **kwargs)


def search_client(server, name="chunks", key=None) -> SearchClient:
    return SearchClient(server.endpoint, name, AzureKeyCredential(key or server.admin_key), **FAST_RETRY)


def chunk_index(name="chunks", dimensions=3, **vector) -> SearchIndex:
    return SearchIndex(
        name=name, description="ragpipe chunks",
        fields=[SimpleField(name="id", type=SearchFieldDataType.String, key=True, sortable=True),
                SearchableField(name="content", analyzer_name="standard.lucene"),
                SimpleField(name="doc_id", type=SearchFieldDataType.String, filterable=True),
                SimpleField(name="source", type=SearchFieldDataType.String, filterable=True),
                SimpleField(name="chunk_id", type=SearchFieldDataType.Int32, filterable=True, sortable=True),
                SimpleField(name="acl", type=SearchFieldDataType.Collection(SearchFieldDataType.String),
                            filterable=True),
                SearchField(name="vector", type=SearchFieldDataType.Collection(SearchFieldDataType.Single),
                            searchable=True, vector_search_dimensions=dimensions, vector_search_profile_name="hnsw",
                            **vector)],
        vector_search=VectorSearch(profiles=[VectorSearchProfile(name="hnsw", algorithm_configuration_name="algo")],
                                   algorithms=[HnswAlgorithmConfiguration(name="algo")]))


DOCS = [
    {"id": "a-0", "doc_id": "a", "source": "file://hr.md", "chunk_id": 0, "acl": ["hr"],
     "content": "Salary bands and bonus policy for the HR team", "vector": [1.0, 0.0, 0.0]},
    {"id": "b-0", "doc_id": "b", "source": "file://eng.md", "chunk_id": 0, "acl": ["eng"],
     "content": "Deployment runbook: rollback the bonus service", "vector": [0.0, 1.0, 0.0]},
    {"id": "b-1", "doc_id": "b", "source": "file://eng.md", "chunk_id": 1, "acl": ["eng", "hr"],
     "content": "On-call rota for O'Brien and the platform team", "vector": [0.0, 0.7, 0.7]},
    {"id": "c-0", "doc_id": "c", "source": "file://public.md", "chunk_id": 0, "acl": [],
     "content": "Public holiday calendar", "vector": [0.0, 0.0, 1.0]},
]


@pytest.fixture
def loaded(server):
    index_client(server).create_index(chunk_index())
    results = search_client(server).upload_documents(DOCS)
    assert [(r.key, r.succeeded, r.status_code) for r in results] == [(d["id"], True, 201) for d in DOCS]
    return search_client(server)


def status_of(call) -> int:
    with pytest.raises(HttpResponseError) as raised:
        call()
    return raised.value.status_code


def test_index_create_get_list_update_delete(server):
    client = index_client(server)
    created = client.create_index(chunk_index())
    assert created.name == "chunks" and created.e_tag and created.description == "ragpipe chunks"
    fetched = client.get_index("chunks")
    vector = next(f for f in fetched.fields if f.name == "vector")
    assert (vector.vector_search_dimensions, vector.vector_search_profile_name) == (3, "hnsw")
    assert list(client.list_index_names()) == ["chunks"]
    assert client.create_index(chunk_index(name="chunks_v1-2")).name == "chunks_v1-2"  # single "_" or "-" is fine
    client.delete_index("chunks_v1-2")
    assert [i.name for i in client.list_indexes(select=["name"])] == ["chunks"]
    assert status_of(lambda: client.create_index(chunk_index())) == 409

    widened = chunk_index()
    widened.fields.append(SimpleField(name="language", type=SearchFieldDataType.String, filterable=True))
    assert "language" in [f.name for f in client.create_or_update_index(widened).fields]
    assert status_of(lambda: client.create_or_update_index(chunk_index(dimensions=4))) == 400

    assert client.get_index_statistics("chunks").document_count == 0
    client.delete_index("chunks")
    with pytest.raises(ResourceNotFoundError):
        client.get_index("chunks")
    client.delete_index("chunks")  # the service answers 404, which the SDK treats as already deleted
    assert server.count("/indexes('chunks')", "DELETE") == 2


@pytest.mark.parametrize("definition", [
    chunk_index(name="Chunks"), chunk_index(name="-chunks"), chunk_index(name="a" * 129),
    chunk_index(name="c"), chunk_index(name="chunks--v1"), chunk_index(name="chunks__v1"),
    chunk_index(dimensions=None), chunk_index(filterable=True),
    SearchIndex(name="nokey", fields=[SimpleField(name="id", type=SearchFieldDataType.String)]),
    SearchIndex(name="intkey", fields=[SimpleField(name="id", type=SearchFieldDataType.Int32, key=True)]),
])
def test_invalid_index_definitions_are_refused(server, definition):
    assert status_of(lambda: index_client(server).create_index(definition)) == 400


def test_vector_profile_must_name_an_existing_hnsw_or_exhaustive_algorithm(server):
    definition = chunk_index()
    definition.vector_search.profiles[0].algorithm_configuration_name = "missing"
    with pytest.raises(HttpResponseError) as raised:
        index_client(server).create_index(definition)
    assert raised.value.status_code == 400 and "missing" in raised.value.message


def test_lookup_count_and_retrievable_vectors(server):
    index_client(server).create_index(chunk_index(name="hidden", stored=False))
    index_client(server).create_index(chunk_index())
    for name in ("hidden", "chunks"):
        search_client(server, name).upload_documents(DOCS)
    client = search_client(server)
    assert client.get_document_count() == 4
    assert client.get_document("b-1", selected_fields=["id", "acl"]) == {"id": "b-1", "acl": ["eng", "hr"]}
    assert client.get_document("a-0")["vector"] == [1.0, 0.0, 0.0]
    assert "vector" not in search_client(server, "hidden").get_document("a-0")
    with pytest.raises(ResourceNotFoundError):
        client.get_document("nope")
    assert status_of(lambda: client.get_document("a-0", selected_fields=["nope"])) == 400


def test_partial_failure_reports_per_key_results_and_only_failed_keys_need_resending(server, loaded):
    server.fail_keys({"b-0"}, attempts=1)
    results = loaded.merge_or_upload_documents([{**d, "content": "changed"} for d in DOCS[:3]])
    assert [(r.key, r.succeeded, r.status_code) for r in results] == [
        ("a-0", True, 200), ("b-0", False, 503), ("b-1", True, 200)]
    assert loaded.get_document("b-0")["content"] != "changed"
    assert loaded.merge_or_upload_documents([{"id": "b-0", "content": "changed"}])[0].succeeded
    assert loaded.get_document("b-0")["content"] == "changed"
    resent = [[action["id"] for action in body["value"]] for body in server.bodies("docs/search.index")]
    assert resent[-2:] == [["a-0", "b-0", "b-1"], ["b-0"]]

    merged = loaded.merge_documents([{"id": "ghost", "content": "x"}])
    assert (merged[0].succeeded, merged[0].status_code, merged[0].error_message) == (False, 404, "Document not found.")
    assert loaded.delete_documents([{"id": "ghost"}])[0].status_code == 200


def test_throttled_requests_carry_retry_after_and_the_sdk_retries_them(server, loaded):
    server.fail_next("docs/search.index", times=2, status=429, retry_after=0.01)
    before = server.count("docs/search.index")
    assert loaded.upload_documents([{"id": "d-0", "content": "late"}])[0].succeeded
    assert server.count("docs/search.index") - before == 3

    server.fail_next("docs/search.post.search", times=1, status=503, retry_after=0.01)
    assert [r["id"] for r in loaded.search("late", select=["id"])] == ["d-0"]
    response = requests.get(f"{server.endpoint}/indexes('chunks')/docs/$count",
                            params={"api-version": "2026-04-01"}, headers={"api-key": server.admin_key})
    assert response.text == "5"
    server.fail_next("$count", status=503, retry_after=2)
    response = requests.get(response.url, headers={"api-key": server.admin_key})
    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")


def test_malformed_requests_are_refused_like_the_service(server, loaded):
    assert status_of(lambda: search_client(server, key="wrong").get_document_count()) == 403
    for document, expected in [
        ({"id": "x", "colour": "red"}, "does not exist on type 'search.documentFields'"),
        ({"id": "x", "vector": [1.0, 2.0]}, "mismatch in vector dimensions"),
        ({"id": "has space"}, "Invalid document key"),
        ({"id": "_x"}, "Keys cannot start with a leading underscore"),
        ({"content": "no key"}, "Document key cannot be missing or empty"),
        ({"id": "x", "chunk_id": "1"}, "Edm.Int32"),
    ]:
        with pytest.raises(HttpResponseError) as raised:
            loaded.upload_documents([document])
        assert raised.value.status_code == 400 and expected in raised.value.message
    with pytest.raises(HttpResponseError) as raised:
        loaded.upload_documents([{"id": f"k{i}"} for i in range(1001)])
    assert raised.value.status_code == 400 and "from 1 to 1000" in raised.value.message
    with pytest.raises(RequestEntityTooLargeError):
        loaded.upload_documents([{"id": "huge", "content": "x" * (16 * 1024 * 1024)}])
    assert loaded.get_document_count() == 4  # a refused batch changes nothing

    for filter_text, expected in [("doc_id eq", "Syntax error"), ("doc_id eq 'a' or", "Syntax error"),
                                  ("content eq 'x'", "not a filterable field"), ("acl eq 'hr'", "collection"),
                                  ("chunk_id eq 'one'", "incompatible types"), ("nope eq 'x'", "Could not find"),
                                  ("length(doc_id) gt 1", "Unknown function")]:
        with pytest.raises(HttpResponseError) as raised:
            list(loaded.search("*", filter=filter_text))
        assert raised.value.status_code == 400 and "Invalid expression" in raised.value.message, filter_text
        assert expected in raised.value.message, filter_text
    assert status_of(lambda: list(loaded.search("*", order_by=["doc_id asc"]))) == 400
    assert status_of(lambda: list(loaded.search(None, vector_queries=[
        VectorizedQuery(vector=[1.0, 0.0], k_nearest_neighbors=1, fields="vector")]))) == 400

    no_version = requests.get(f"{server.endpoint}/indexes", headers={"api-key": server.admin_key})
    assert no_version.status_code == 400 and "api-version" in no_version.json()["error"]["message"]
    anonymous = requests.get(f"{server.endpoint}/indexes", params={"api-version": "2026-04-01"})
    assert anonymous.status_code == 401


def ids(results) -> list[str]:
    return [r["id"] for r in results]


@pytest.mark.parametrize(("filter_text", "expected"), [
    ("acl/any(g: search.in(g, 'hr|ops', '|'))", {"a-0", "b-1"}),
    ("acl/any(g: search.in(g, 'eng, ops'))", {"b-0", "b-1"}),
    ("acl/any(g: g eq 'eng')", {"b-0", "b-1"}),
    ("acl/any(g: search.in(g, 'hr', '|')) or not acl/any()", {"a-0", "b-1", "c-0"}),
    ("not acl/any()", {"c-0"}),
    ("acl/any() and not (doc_id eq 'b')", {"a-0"}),
    ("doc_id ne 'b' and chunk_id gt 0", set()),
    ("(doc_id eq 'b' or doc_id eq 'c') and chunk_id ge 0", {"b-0", "b-1", "c-0"}),
    ("search.in(source, 'file://hr.md|file://public.md', '|')", {"a-0", "c-0"}),
    ("source gt 'file://f'", {"a-0", "c-0"}),
    ("doc_id eq 'O''Brien'", set()),
    ("false", set()),
    ("true and acl/any(g: search.in(g, 'eng\tops', '\t'))", {"b-0", "b-1"}),
])
def test_filters(loaded, filter_text, expected):
    assert set(ids(loaded.search("*", filter=filter_text))) == expected


def test_text_vector_and_hybrid_ranking(server, loaded):
    text = list(loaded.search("bonus policy"))
    assert ids(text) == ["a-0", "b-0"] and text[0]["@search.score"] > text[1]["@search.score"] > 0
    assert ids(loaded.search("o'brien")) == ["b-1"]

    query = VectorizedQuery(vector=[0.0, 1.0, 0.0], k_nearest_neighbors=2, fields="vector")
    vector = list(loaded.search(None, vector_queries=[query]))
    assert ids(vector) == ["b-0", "b-1"]
    assert vector[0]["@search.score"] == pytest.approx(1.0)
    assert vector[1]["@search.score"] == pytest.approx(1 / (2 - 0.7 / (0.98 ** 0.5)))

    hybrid = list(loaded.search("bonus policy", vector_queries=[query]))
    assert ids(hybrid)[0] == "b-0"  # second by text, first by vector: the only one in both lists
    assert hybrid[0]["@search.score"] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert set(ids(hybrid)) == {"a-0", "b-0", "b-1"}

    hr_only = "acl/any(g: search.in(g, 'hr', '|'))"
    assert ids(loaded.search("bonus", vector_queries=[query], filter=hr_only)) == ["a-0", "b-1"]
    assert server.bodies("search.post.search")[-1]["vectorQueries"][0]["k"] == 2

    post = VectorizedQuery(vector=[0.0, 1.0, 0.0], k_nearest_neighbors=1, fields="vector")
    assert ids(loaded.search(None, vector_queries=[post], filter=hr_only)) == ["b-1"]  # preFilter by default
    assert ids(loaded.search(None, vector_queries=[post], filter=hr_only, vector_filter_mode="postFilter")) == []


def test_a_restricted_best_match_never_reaches_another_group(loaded):
    """The leak check the store's ACL test makes: a-0 is the best match, but not for eng."""
    query = VectorizedQuery(vector=[1.0, 0.0, 0.0], k_nearest_neighbors=3, fields="vector")
    eng = "acl/any(g: search.in(g, 'eng', '|'))"
    assert "a-0" not in ids(loaded.search("salary bands", vector_queries=[query], filter=eng, top=3))
    assert ids(loaded.search("salary bands", vector_queries=[query], top=1)) == ["a-0"]


def test_select_count_top_skip_orderby_and_server_side_paging(server, loaded):
    page = loaded.search("*", select=["id", "chunk_id"], include_total_count=True,
                         order_by=["chunk_id desc", "id asc"], top=2)
    assert page.get_count() == 4
    rows = list(page)
    assert [(r["id"], r["chunk_id"]) for r in rows] == [("b-1", 1), ("a-0", 0)]
    assert {name for name in rows[0] if not name.startswith("@search.")} == {"id", "chunk_id"}
    assert ids(loaded.search("*", order_by=["chunk_id desc", "id asc"], skip=1, top=2)) == ["a-0", "b-0"]

    loaded.upload_documents([{"id": f"bulk-{i:03}", "chunk_id": i} for i in range(120)])
    before = server.count("search.post.search")
    everything = ids(loaded.search("*", select=["id"], filter="chunk_id ge 0"))
    assert len(everything) == 124 and len(set(everything)) == 124
    assert server.count("search.post.search") - before == 3  # 50 + 50 + 24, by @search.nextPageParameters
    assert status_of(lambda: list(loaded.search("*", skip=100_001))) == 400


def test_aliases_serve_documents_and_protect_their_index(server, loaded):
    client = index_client(server)
    alias = client.create_alias(SearchAlias(name="chunks-live", indexes=["chunks"]))
    assert alias.e_tag and client.get_alias("chunks-live").indexes == ["chunks"]
    via_alias = search_client(server, "chunks-live")
    assert via_alias.get_document_count() == 4
    assert via_alias.upload_documents([{"id": "e-0", "content": "written through the alias"}])[0].succeeded
    assert ids(search_client(server).search("alias")) == ["e-0"]
    assert client.get_index("chunks-live").name == "chunks"

    with pytest.raises(HttpResponseError) as raised:
        client.delete_index("chunks")
    assert raised.value.status_code == 400 and "chunks-live" in raised.value.message

    client.create_index(chunk_index(name="chunks-v2"))
    client.create_or_update_alias(SearchAlias(name="chunks-live", indexes=["chunks-v2"]))
    assert via_alias.get_document_count() == 0
    assert list(client.list_alias_names()) == ["chunks-live"]
    assert status_of(lambda: client.create_alias(SearchAlias(name="two", indexes=["chunks", "chunks-v2"]))) == 400
    assert status_of(lambda: client.create_alias(SearchAlias(name="dangling", indexes=["nope"]))) == 400
    client.delete_index("chunks")
    client.delete_alias("chunks-live")
    with pytest.raises(ResourceNotFoundError):
        client.get_alias("chunks-live")
    with pytest.raises(ResourceNotFoundError):
        via_alias.get_document_count()


class _Token:
    """A TokenCredential that hands out a fixed token, as DefaultAzureCredential would a real one."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def test_bearer_tokens():
    with AzureSearchContractServer(bearer_tokens=("entra-token",)) as server:
        index_client(server).create_index(chunk_index())
        # azure-core refuses bearer tokens over plain http unless told this is a test endpoint
        assert SearchClient(server.endpoint, "chunks", _Token("entra-token")).get_document_count(
            enforce_https=False) == 0
        with pytest.raises(ClientAuthenticationError):
            SearchClient(server.endpoint, "chunks", _Token("stolen")).get_document_count(enforce_https=False)
