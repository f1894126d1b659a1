"""Azure AI Search as the vector store: one index per index version, an alias for the promoted one.

Each point is one search document. The fields the service filters, facets or ranks on are
typed (``content`` searchable with a configurable analyzer; ``vector`` with an HNSW profile
sized to the embedder; doc_id, source, section, content_type, language, date, index_version
and the ``acl`` collection filterable and facetable; the shard ``bucket`` an integer, filterable); the rest of the payload travels as one
JSON string, so a point's payload reads back exactly as it was written.

The service has no delete-by-query: deletes find their keys with a filter, paged by key order
(``$skip`` stops at 100,000), and delete by key. Writes become searchable after a refresh of
about a second (near real time), so after this process wrote, ``count`` waits for the count to settle.
Promotion uses index aliases (generally available from REST API 2025-05-01; the SDK speaks
2026-04-01); an alias is switched in one request, so readers never see it missing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from core.access import AccessFilter
from core.shards import EVERY_BUCKET, ShardRange
from core.types import Hit, Point
from resources.secrets import secret_value

# Fields of a point's payload the index types for filtering and faceting; the rest rides in PAYLOAD.
FILTERABLE = ("doc_id", "source", "section", "content_type", "language", "date", "index_version")
KEY, CONTENT, VECTOR, ACL, PAYLOAD, BUCKET = "id", "content", "vector", "acl", "payload", "bucket"
PROFILE, ALGORITHM = "ragpipe-hnsw", "ragpipe-hnsw-config"
DESCRIPTION = "ragpipe collection "  # + the collection's name: how indexes map back to collections
MAX_PAGE = 1000  # documents per search page and per indexing request, the service's limits
RETRYABLE_KEY_STATUS = {409, 422, 429, 503}  # per-key results the service documents as transient
NOTHING = "false"  # the filter no document passes: a caller with no group, unlabelled denied
_INDEX_NAME = re.compile(r"^(?=.{2,128}$)[a-z0-9](?:[-_]?[a-z0-9])*$")  # no two of - and _ in a row


class SearchIndexingError(RuntimeError):
    """Documents the service refused, or kept refusing after every retry."""


class AzureAISearchStore(ConfigurableResource):
    """Points in Azure AI Search, authenticated by an admin key (pass an ``EnvVar``) or, without
    one, by ``DefaultAzureCredential`` (Workload Identity on AKS, a managed identity, ``az login``).
    Throttling (429) and unavailability (503) of whole requests are retried by the SDK's
    exponential retry policy; keys that fail alone in a partial (207) response are resent alone."""

    endpoint: str = Field(description="https://<service>.search.windows.net")
    api_key: str | None = Field(default=None, repr=False, description="Admin key; pass an EnvVar. None: Entra ID.")
    analyzer: str = Field(default="standard.lucene", description="Analyzer of the searchable content field.")
    max_batch_bytes: int = Field(default=15 * 1024 * 1024, description="Request body limit (the service's: 16 MB).")
    key_retries: int = Field(default=5, description="Resends of keys that failed alone in a partial response.")
    backoff_s: float = Field(default=1.0, description="First wait before a retry; it doubles each time.")
    refresh_s: float = Field(default=1.0, description="How long writes take to become searchable.")
    settle_s: float = Field(default=30.0, description="Longest wait for the count to settle after writes.")
    native_hybrid: ClassVar[bool] = True
    _index_client: Any = PrivateAttr(default=None)
    _clients: dict = PrivateAttr(default_factory=dict)
    _credential: Any = PrivateAttr(default=None)
    _last_write: float = PrivateAttr(default=0.0)

    # -- clients -------------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        if self._credential is None:
            if self.api_key:
                from azure.core.credentials import AzureKeyCredential

                self._credential = AzureKeyCredential(secret_value(self.api_key))
            else:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
        return {"credential": self._credential, "retry_total": 5, "retry_backoff_factor": self.backoff_s}

    def _indexes(self):
        if self._index_client is None:
            from azure.search.documents.indexes import SearchIndexClient

            self._index_client = SearchIndexClient(self.endpoint, **self._options())
        return self._index_client

    def _documents(self, name: str):
        index = index_name(name)
        if index not in self._clients:
            from azure.search.documents import SearchClient

            self._clients[index] = SearchClient(self.endpoint, index, **self._options())
        return self._clients[index]

    def close(self) -> None:
        for client in [*self._clients.values(), self._index_client]:
            if client is not None:
                client.close()
        self._clients, self._index_client = {}, None
        if hasattr(self._credential, "close"):
            self._credential.close()
        self._credential = None

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    # -- indexes ---------------------------------------------------------------------------
    def _index(self, name: str):
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._indexes().get_index(index_name(name))
        except ResourceNotFoundError:
            return None

    def collection_exists(self, name: str) -> bool:
        return self._index(name) is not None

    def ensure_collection(self, name: str, dimension: int) -> None:
        """Create the index, or check that the existing one is this collection's, with vectors of
        ``dimension``: a mismatch is an error before anything is uploaded."""
        existing = self._index(name)
        if existing is None:
            self._indexes().create_index(index_definition(name, dimension, self.analyzer))
            return
        if existing.description != DESCRIPTION + name:
            raise ValueError(f"Azure AI Search index {existing.name!r} exists but is not collection {name!r} "
                             f"(its description is {existing.description!r}); choose another RAGPIPE_COLLECTION")
        stored = next((f.vector_search_dimensions for f in existing.fields if f.name == VECTOR), None)
        if stored != dimension:
            raise ValueError(f"Azure AI Search index {existing.name!r} holds {stored}-dimension vectors but the "
                             f"embedder makes {dimension}; a new embedder needs a new index version")

    def collections(self) -> dict[str, int]:
        """This project's collections (indexes it created) and their document counts; other
        indexes in the same service are not ours to list or drop."""
        names = [index.description[len(DESCRIPTION):] for index in self._indexes().list_indexes()
                 if (index.description or "").startswith(DESCRIPTION)]
        return {name: self.count(name) for name in sorted(names)}

    def delete_collection(self, name: str) -> None:
        self._indexes().delete_index(index_name(name))
        self._clients.pop(index_name(name), None)

    def alias_target(self, alias: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            indexes = self._indexes().get_alias(index_name(alias)).indexes
        except ResourceNotFoundError:
            return None
        target = self._indexes().get_index(indexes[0])
        return (target.description or "")[len(DESCRIPTION):] or target.name

    def point_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` in one request (create or update)."""
        from azure.search.documents.indexes.models import SearchAlias

        self._indexes().create_or_update_alias(SearchAlias(name=index_name(alias), indexes=[index_name(collection)]))

    # -- documents -------------------------------------------------------------------------
    def upsert(self, name: str, points: list[Point]) -> None:
        """Upload in requests within the service's limits; resend only the keys that failed."""
        documents = [to_document(point) for point in points]
        for batch in batches(documents, MAX_PAGE, self.max_batch_bytes):
            self._index_actions(name, batch, self._documents(name).merge_or_upload_documents)

    def delete_source(self, name: str, source: str, keep_doc_id: str | None = None) -> None:
        """Remove a source's points, except those of ``keep_doc_id`` (its current content)."""
        condition = f"source eq {quote(source)}"
        if keep_doc_id is not None:
            condition += f" and doc_id ne {quote(keep_doc_id)}"
        keys = [document[KEY] for document in self._scan(name, [KEY], condition)]
        delete = self._documents(name).delete_documents
        for start in range(0, len(keys), MAX_PAGE):
            self._index_actions(name, [{KEY: key} for key in keys[start:start + MAX_PAGE]], delete)

    def _index_actions(self, name: str, documents: list[dict[str, Any]], send) -> None:
        pending, wait = documents, self.backoff_s
        for attempt in range(self.key_retries + 1):
            results = send(pending)
            self._last_write = time.monotonic()
            failed = {result.key: result for result in results if not result.succeeded}
            if not failed:
                return
            permanent = [r for r in failed.values() if r.status_code not in RETRYABLE_KEY_STATUS]
            if permanent or attempt == self.key_retries:
                worst = (permanent or list(failed.values()))[:3]
                raise SearchIndexingError(
                    f"Azure AI Search index {index_name(name)!r} refused {len(failed)} of {len(pending)} documents"
                    + ("" if permanent else f" after {self.key_retries} retries") + ": "
                    + "; ".join(f"{r.key}: {r.status_code} {r.error_message}" for r in worst))
            pending = [document for document in pending if document[KEY] in failed]
            time.sleep(wait)
            wait *= 2

    def _scan(self, name: str, select: list[str], condition: str | None = None) -> Iterator[dict[str, Any]]:
        """Every document matching ``condition``, in key order, one page of keys after another;
        none when the index does not exist (asked, not checked first: one request, not two)."""
        from azure.core.exceptions import ResourceNotFoundError

        last = None
        while True:
            clauses = [f"({condition})" if condition else None, f"{KEY} gt {quote(last)}" if last else None]
            try:
                page = list(self._documents(name).search(
                    search_text="*", filter=" and ".join(c for c in clauses if c) or None,
                    order_by=[f"{KEY} asc"], select=select, top=MAX_PAGE))
            except ResourceNotFoundError:
                return
            yield from page
            if len(page) < MAX_PAGE:
                return
            last = page[-1][KEY]

    def vectors(self, name: str, ids: list[str]) -> dict[str, list[float]]:
        """Stored vectors for the given point ids (absent ids are left out)."""
        found = {}
        for start in range(0, len(ids), MAX_PAGE):
            wanted = ids[start:start + MAX_PAGE]
            for document in self._scan(name, [KEY, VECTOR], any_of(KEY, wanted)):
                found[document[KEY]] = list(document[VECTOR])
        return found

    def point_ids(self, name: str) -> set[str]:
        return {document[KEY] for document in self._scan(name, [KEY])}

    def point_sources(self, name: str, sources: list[str] | None = None,
                      shard: ShardRange = EVERY_BUCKET) -> Iterator[tuple[str, str]]:
        """(source, doc_id) of every point, or of the points of ``sources`` only, in ``shard``'s buckets."""
        groups = [None] if sources is None else [sources[i:i + 100] for i in range(0, len(sources), 100)]
        for group in groups:
            clauses = [c for c in (None if group is None else any_of("source", group), shard_filter(shard)) if c]
            for document in self._scan(name, ["source", "doc_id"], " and ".join(clauses) or None):
                yield document["source"], document["doc_id"]

    def count(self, name: str, shard: ShardRange = EVERY_BUCKET) -> int:
        """The document count (in ``shard``'s buckets). After this process wrote, it waits for the
        count to settle (the same on two reads a refresh apart, for at most ``settle_s``): a count
        read before the refresh would make the index look out of step with the ledger. 0 when
        there is no index."""
        from azure.core.exceptions import ResourceNotFoundError

        client = self._documents(name)

        def read() -> int:
            if shard.whole:
                return client.get_document_count()
            return client.search(search_text="*", filter=shard_filter(shard), include_total_count=True,
                                 top=0).get_count()

        try:
            if not self._last_write:
                return read()
            time.sleep(max(0.0, self._last_write + self.refresh_s - time.monotonic()))
            current, deadline = read(), time.monotonic() + self.settle_s
            while time.monotonic() < deadline:
                time.sleep(self.refresh_s)
                previous, current = current, read()
                if current == previous:
                    break
            return current
        except ResourceNotFoundError:
            return 0

    def payloads(self, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for document in self._scan(name, [KEY, CONTENT, PAYLOAD]):
            yield document[KEY], from_document(document)

    def search(self, name: str, vector: list[float] | None, limit: int, *, text: str | None = None,
               access: AccessFilter | None = None) -> list[Hit]:
        """Vector, text or (both given) the service's hybrid ranking: BM25 and vector results
        fused by reciprocal rank fusion. The access filter applies before ranking, so the
        top ``limit`` are the best of what the caller may see."""
        from azure.search.documents.models import VectorFilterMode, VectorizedQuery

        condition = access_filter(access)
        if condition == NOTHING:
            return []
        queries = [VectorizedQuery(vector=vector, k_nearest_neighbors=limit, fields=VECTOR)] if vector else None
        results = self._documents(name).search(
            search_text=text, search_fields=[CONTENT] if text else None, vector_queries=queries,
            vector_filter_mode=VectorFilterMode.PRE_FILTER if queries and condition else None,
            filter=condition, select=[KEY, CONTENT, PAYLOAD], top=limit)
        return [Hit(id=doc[KEY], score=doc["@search.score"], payload=from_document(doc)) for doc in results]

    def search_many(self, name: str, vectors: list[list[float]], limit: int, *, texts: list[str] | None = None,
                    accesses: list[AccessFilter | None], with_payload: bool = True) -> list[list[Hit]]:
        """One request per query: the service's search API takes one query at a time. Hits
        always carry their payload (``with_payload`` saves nothing here)."""
        return [self.search(name, vector, limit, text=None if texts is None else texts[i], access=access)
                for i, (vector, access) in enumerate(zip(vectors, accesses, strict=True))]


def index_name(collection: str) -> str:
    """The index (or alias) name for a collection, ``__`` written ``-``: the service allows
    lowercase letters, digits, ``-`` and ``_``, but never two of them in a row."""
    name = collection.replace("__", "-")
    if not _INDEX_NAME.match(name):
        raise ValueError(f"collection {collection!r} cannot name an Azure AI Search index: use 2 to 128 lowercase "
                         "letters, digits, '-' and '_' (never two in a row), starting and ending with a letter or digit")
    return name


def index_definition(collection: str, dimension: int, analyzer: str):
    from azure.search.documents.indexes.models import (
        HnswAlgorithmConfiguration,
        SearchableField,
        SearchField,
        SearchFieldDataType,
        SearchIndex,
        SimpleField,
        VectorSearch,
        VectorSearchProfile,
    )

    text = SearchFieldDataType.STRING
    fields = [
        SimpleField(name=KEY, type=text, key=True, filterable=True, sortable=True),
        SearchableField(name=CONTENT, type=text, analyzer_name=analyzer),
        SearchField(name=VECTOR, type=SearchFieldDataType.Collection(SearchFieldDataType.SINGLE), searchable=True,
                    vector_search_dimensions=dimension, vector_search_profile_name=PROFILE),
        *(SimpleField(name=field, type=text, filterable=True, facetable=True) for field in FILTERABLE),
        SimpleField(name=ACL, type=SearchFieldDataType.Collection(text), filterable=True, facetable=True),
        SimpleField(name=BUCKET, type=SearchFieldDataType.INT32, filterable=True),
        SimpleField(name=PAYLOAD, type=text),
    ]
    vector_search = VectorSearch(
        algorithms=[HnswAlgorithmConfiguration(name=ALGORITHM)],
        profiles=[VectorSearchProfile(name=PROFILE, algorithm_configuration_name=ALGORITHM)],
    )
    return SearchIndex(name=index_name(collection), description=DESCRIPTION + collection, fields=fields,
                       vector_search=vector_search)


def to_document(point: Point) -> dict[str, Any]:
    payload = dict(point.payload)
    content = payload.pop("text", "")
    typed = {field: _text_or_none(payload.get(field)) for field in FILTERABLE}
    return {KEY: point.id, CONTENT: content, VECTOR: list(point.vector), **typed,
            ACL: [str(group) for group in payload.get("acl") or []], BUCKET: payload.get(BUCKET),
            PAYLOAD: json.dumps(payload, sort_keys=True)}


def from_document(document: dict[str, Any]) -> dict[str, Any]:
    return {**json.loads(document.get(PAYLOAD) or "{}"), "text": document.get(CONTENT) or ""}


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def batches(documents: list[dict[str, Any]], max_count: int, max_bytes: int) -> Iterator[list[dict[str, Any]]]:
    """Consecutive runs of documents within a request's count and (JSON) size limits."""
    batch: list[dict[str, Any]] = []
    size = 0
    for document in documents:
        document_size = len(json.dumps(document)) + 32  # the action marker and separators
        if batch and (len(batch) == max_count or size + document_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(document)
        size += document_size
    if batch:
        yield batch


def quote(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def any_of(field: str, values: Iterable[str]) -> str:
    values = list(values)
    delimiter = _delimiter(values)
    return f"search.in({field}, {quote(delimiter.join(values))}, {quote(delimiter)})"


def _delimiter(values: list[str]) -> str:
    for candidate in ("|", "\t", "\x1f"):
        if not any(candidate in value for value in values):
            return candidate
    raise ValueError("values hold every delimiter search.in can use")


def shard_filter(shard: ShardRange) -> str | None:
    """The OData filter for a shard's bucket range; None for the whole space."""
    return None if shard.whole else f"{BUCKET} ge {shard.lo} and {BUCKET} lt {shard.hi}"


def access_filter(access: AccessFilter | None) -> str | None:
    """The OData filter for chunks the caller may see (``NOTHING`` when none)."""
    if access is None:
        return None
    clauses = []
    if access.groups:
        clauses.append(f"{ACL}/any(g: {any_of('g', access.groups)})")
    if access.unlabelled == "public":
        clauses.append(f"not {ACL}/any()")
    return " or ".join(clauses) or NOTHING
