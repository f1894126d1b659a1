"""A contract-test server for Qdrant's REST API, served from qdrant-client's local mode.

No Qdrant server can be installed here, so server mode (``RAGPIPE_QDRANT_URL``) is tested
against this: it speaks Qdrant's HTTP wire format for the calls ``QdrantVectorStore`` makes
(collections, payload indexes, points, aliases), parses every request body with the
client's own ``qdrant_client.http.models`` and answers with the same models serialised, so
a request or response the real client would not produce or accept fails here too. The data
lives in a local-mode ``QdrantClient(":memory:")``; it is a contract server, not Qdrant:
no HNSW, payload indexes acknowledged but not built, no auth.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel
from qdrant_client import QdrantClient
from qdrant_client.http import models

from tests.contract_http import JsonHandler, serving

Route = Callable[[QdrantClient, str, dict[str, Any]], Any]
ROUTES: list[tuple[str, re.Pattern, Route]] = []


def route(method: str, pattern: str):
    def register(handler: Route) -> Route:
        ROUTES.append((method, re.compile(f"^{pattern}$"), handler))
        return handler
    return register


def _updated(_result: Any = None) -> models.UpdateResult:
    """What the server answers to a completed write (``wait=true``)."""
    return models.UpdateResult(operation_id=0, status=models.UpdateStatus.COMPLETED)


@route("GET", "/collections")
def _collections(client, name, body):
    return client.get_collections()


@route("GET", "/aliases")
def _aliases(client, name, body):
    return client.get_aliases()


@route("POST", "/collections/aliases")
def _change_aliases(client, name, body):
    return client.update_collection_aliases(models.ChangeAliasesOperation.model_validate(body).actions)


@route("GET", "/collections/(?P<name>[^/]+)/exists")
def _exists(client, name, body):
    return models.CollectionExistence(exists=client.collection_exists(name))


@route("PUT", "/collections/(?P<name>[^/]+)")
def _create(client, name, body):
    request = models.CreateCollection.model_validate(body)
    return client.create_collection(name, vectors_config=request.vectors,
                                    sparse_vectors_config=request.sparse_vectors)


@route("GET", "/collections/(?P<name>[^/]+)")
def _info(client, name, body):
    return client.get_collection(name)


@route("DELETE", "/collections/(?P<name>[^/]+)")
def _drop(client, name, body):
    return client.delete_collection(name)


@route("PUT", "/collections/(?P<name>[^/]+)/index")
def _payload_index(client, name, body):
    """Validated and acknowledged: local mode has no payload indexes to build."""
    models.CreateFieldIndex.model_validate(body)
    client.get_collection(name)  # 404 for a missing collection, as the server answers
    return _updated()


@route("PUT", "/collections/(?P<name>[^/]+)/points")
def _upsert(client, name, body):
    return _updated(client.upsert(name, points=models.PointsList.model_validate(body).points))


@route("POST", "/collections/(?P<name>[^/]+)/points/delete")
def _delete(client, name, body):
    selector = (models.FilterSelector if "filter" in body else models.PointIdsList).model_validate(body)
    return _updated(client.delete(name, points_selector=selector))


@route("POST", "/collections/(?P<name>[^/]+)/points")
def _retrieve(client, name, body):
    request = models.PointRequest.model_validate(body)
    return client.retrieve(name, ids=request.ids, with_payload=request.with_payload,
                           with_vectors=request.with_vector)


@route("POST", "/collections/(?P<name>[^/]+)/points/scroll")
def _scroll(client, name, body):
    request = models.ScrollRequest.model_validate(body)
    points, offset = client.scroll(name, scroll_filter=request.filter, limit=request.limit or 10,
                                   offset=request.offset, with_payload=request.with_payload,
                                   with_vectors=request.with_vector)
    return models.ScrollResult(points=points, next_page_offset=offset)


@route("POST", "/collections/(?P<name>[^/]+)/points/count")
def _count(client, name, body):
    request = models.CountRequest.model_validate(body)
    return client.count(name, count_filter=request.filter, exact=request.exact)


def _answer_query(client, name: str, request: models.QueryRequest) -> models.QueryResponse:
    return client.query_points(name, query=request.query, query_filter=request.filter, limit=request.limit or 10,
                               with_payload=request.with_payload, with_vectors=request.with_vector)


@route("POST", "/collections/(?P<name>[^/]+)/points/query")
def _query(client, name, body):
    return _answer_query(client, name, models.QueryRequest.model_validate(body))


@route("POST", "/collections/(?P<name>[^/]+)/points/query/batch")
def _query_batch(client, name, body):
    return [_answer_query(client, name, request) for request in models.QueryRequestBatch.model_validate(body).searches]


def _serialise(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if isinstance(result, list):
        return [_serialise(item) for item in result]
    return result


class _Handler(JsonHandler):
    client: QdrantClient
    lock: threading.Lock
    requests: list[tuple[str, str]]
    api_key: str | None

    def _answer(self) -> None:
        path = urlsplit(self.path).path
        body = self.read_json()
        self.requests.append((self.command, path))
        if self.api_key and self.headers.get("api-key") != self.api_key:  # as a server with a key answers
            return self.send_json(401, {"status": {"error": "Must provide an API key or an Authorization bearer token"},
                                        "time": 0.0})
        if (self.command, path) == ("GET", "/"):  # the version the client checks, unwrapped
            return self.send_json(200, {"title": "qdrant contract server", "version": version("qdrant-client")})
        for method, pattern, handler in ROUTES:
            match = pattern.match(path)
            if method == self.command and match:
                try:
                    with self.lock:
                        result = handler(self.client, match.groupdict().get("name", ""), body)
                except ValueError as error:  # local mode's "Collection x not found"
                    return self.send_json(404, {"status": {"error": str(error)}, "time": 0.0})
                except Exception as error:  # noqa: BLE001 - a server answers 500, it does not hang up
                    return self.send_json(500, {"status": {"error": repr(error)}, "time": 0.0})
                return self.send_json(200, {"result": _serialise(result), "status": "ok", "time": 0.0})
        self.send_json(404, {"status": {"error": f"contract server: no route for {self.command} {path}"}, "time": 0.0})

    do_GET = do_PUT = do_POST = do_DELETE = _answer


@contextmanager
def qdrant_contract_server(api_key: str | None = None) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Serve on a free loopback port; yields the URL and the (method, path) of every request.
    With ``api_key``, a request without that ``api-key`` header is refused (401)."""
    client, requests = QdrantClient(":memory:"), []
    handler = type("Handler", (_Handler,), {"client": client, "lock": threading.Lock(), "requests": requests,
                                            "api_key": api_key})
    try:
        with serving(handler) as url:
            yield url, requests
    finally:
        client.close()
