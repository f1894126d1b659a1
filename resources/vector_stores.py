"""Vector stores: collections of points keyed by deterministic ids, plus aliases."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from core.access import AccessFilter
from core.shards import EVERY_BUCKET, ShardRange
from core.types import Hit, Point
from resources.secrets import secret_value


class VectorStore(Protocol):
    def ensure_collection(self, name: str, dimension: int) -> None: ...

    def collection_exists(self, name: str) -> bool: ...

    def upsert(self, name: str, points: list[Point]) -> None: ...

    def delete_source(self, name: str, source: str, keep_doc_id: str | None = None) -> None: ...

    def vectors(self, name: str, ids: list[str]) -> dict[str, list[float]]: ...

    def point_ids(self, name: str) -> set[str]: ...

    def point_sources(self, name: str, sources: list[str] | None = None,
                      shard: ShardRange = EVERY_BUCKET) -> Iterator[tuple[str, str]]:
        """(source, doc_id) of every point (of ``sources``, in ``shard``'s buckets)."""

    def count(self, name: str, shard: ShardRange = EVERY_BUCKET) -> int:
        """The points (in ``shard``'s buckets, by their payload's ``bucket``)."""

    def collections(self) -> dict[str, int]: ...

    native_hybrid: bool  # the store fuses text and vector ranking itself (else the retriever does)

    def search_many(self, name: str, vectors: list[list[float]], limit: int, *, texts: list[str] | None = None,
                    accesses: list[AccessFilter | None], with_payload: bool = True) -> list[list[Hit]]:
        """For each query, the top ``limit`` chunks by its vector (and by its text too, in a store
        with native hybrid) that its access filter allows, in one request where the store takes a
        batch. ``name`` may be an alias. ``with_payload=False``: hits with ids and scores only."""

    def payloads(self, name: str) -> Iterator[tuple[str, dict[str, Any]]]: ...

    def alias_target(self, alias: str) -> str | None: ...

    def point_alias(self, alias: str, collection: str) -> None: ...

    def delete_collection(self, name: str) -> None: ...

    def close(self) -> None: ...


class QdrantVectorStore(ConfigurableResource):
    """Qdrant, in local mode on disk (``path``) by default or a server (``url``).

    Local mode takes a file lock on its folder: one process at a time may open it.
    """

    path: str = ""
    url: str = ""
    api_key: str | None = None
    native_hybrid: ClassVar[bool] = False
    _client: Any = PrivateAttr(default=None)

    def client(self):
        if self._client is None:
            from qdrant_client import QdrantClient

            if self.url:
                self._client = QdrantClient(url=self.url, api_key=secret_value(self.api_key))
            else:
                Path(self.path).mkdir(parents=True, exist_ok=True)
                try:
                    self._client = QdrantClient(path=self.path)
                except RuntimeError as error:
                    raise RuntimeError(
                        f"Qdrant local storage {self.path} is open in another process "
                        "(a running ingest or `dagster dev` step); wait for it to finish"
                    ) from error
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def collection_exists(self, name: str) -> bool:
        return self.client().collection_exists(name)

    def ensure_collection(self, name: str, dimension: int) -> None:
        from qdrant_client import models

        client = self.client()
        if client.collection_exists(name):
            return
        client.create_collection(
            name, vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE)
        )
        if self.url:  # payload indexes speed up filtered deletes and ACL trimming on a server; local mode ignores them
            for field in ("doc_id", "source", "acl"):
                client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD)
            client.create_payload_index(name, "bucket", models.PayloadSchemaType.INTEGER)

    def upsert(self, name: str, points: list[Point]) -> None:
        from qdrant_client import models

        self.client().upsert(
            name,
            points=[models.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in points],
            wait=True,
        )

    def delete_source(self, name: str, source: str, keep_doc_id: str | None = None) -> None:
        """Remove a source's points, except those of ``keep_doc_id`` (its current content)."""
        from qdrant_client import models

        must_not = []
        if keep_doc_id is not None:
            must_not.append(models.FieldCondition(key="doc_id", match=models.MatchValue(value=keep_doc_id)))
        selector = models.Filter(
            must=[models.FieldCondition(key="source", match=models.MatchValue(value=source))],
            must_not=must_not,
        )
        self.client().delete(name, points_selector=models.FilterSelector(filter=selector), wait=True)

    def _scroll(self, name: str, with_payload: bool | list[str] = False, scroll_filter: Any = None) -> Iterator[Any]:
        offset = None
        while True:
            records, offset = self.client().scroll(
                name,
                scroll_filter=scroll_filter,
                limit=256,
                offset=offset,
                with_payload=with_payload,
                with_vectors=False,
            )
            yield from records
            if offset is None:
                return

    def vectors(self, name: str, ids: list[str]) -> dict[str, list[float]]:
        """Stored vectors for the given point ids (absent ids are left out)."""
        if not ids or not self.collection_exists(name):
            return {}
        records = self.client().retrieve(name, ids=ids, with_payload=False, with_vectors=True)
        return {str(record.id): list(record.vector) for record in records}

    def point_ids(self, name: str) -> set[str]:
        if not self.collection_exists(name):
            return set()
        return {str(record.id) for record in self._scroll(name)}

    def point_sources(self, name: str, sources: list[str] | None = None,
                      shard: ShardRange = EVERY_BUCKET) -> Iterator[tuple[str, str]]:
        """(source, doc_id) of every point, or of the points of ``sources`` only, in ``shard``'s
        buckets, streamed with only those payload fields."""
        from qdrant_client import models

        if not self.collection_exists(name):
            return
        must = [models.FieldCondition(key="source", match=models.MatchAny(any=sources))] if sources is not None else []
        only = _shard_filter(shard, must)
        for record in self._scroll(name, with_payload=["source", "doc_id"], scroll_filter=only):
            payload = record.payload or {}
            yield payload.get("source", ""), payload.get("doc_id", "")

    def count(self, name: str, shard: ShardRange = EVERY_BUCKET) -> int:
        if not self.collection_exists(name):
            return 0
        return self.client().count(name, count_filter=_shard_filter(shard), exact=True).count

    def collections(self) -> dict[str, int]:
        names: Iterable[str] = (c.name for c in self.client().get_collections().collections)
        return {name: self.count(name) for name in sorted(names)}

    def search_many(self, name: str, vectors: list[list[float]], limit: int, *, texts: list[str] | None = None,
                    accesses: list[AccessFilter | None], with_payload: bool = True) -> list[list[Hit]]:
        """One batch request for all the queries (one round trip to a server); in local mode one
        query at a time, which is faster there (its batch call only adds request models). Text
        ranking is the retriever's (BM25), not Qdrant's."""
        if texts is not None:
            raise ValueError("Qdrant searches by vector only; the retriever ranks text itself")
        queries = list(zip(vectors, map(_access_filter, accesses), strict=True))
        if not self.url:
            responses = [self.client().query_points(name, query=vector, limit=limit, with_payload=with_payload,
                                                    query_filter=only) for vector, only in queries]
        else:
            from qdrant_client import models

            requests = [models.QueryRequest(query=vector, limit=limit, with_payload=with_payload, filter=only)
                        for vector, only in queries]
            responses = self.client().query_batch_points(name, requests=requests) if requests else []
        return [[Hit(id=str(p.id), score=p.score, payload=p.payload or {}) for p in response.points]
                for response in responses]

    def payloads(self, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for record in self._scroll(name, with_payload=True):
            yield str(record.id), record.payload or {}

    def alias_target(self, alias: str) -> str | None:
        for item in self.client().get_aliases().aliases:
            if item.alias_name == alias:
                return item.collection_name
        return None

    def point_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` in one request, so readers never see it missing."""
        from qdrant_client import models

        operations = [models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=collection, alias_name=alias))]
        if self.alias_target(alias) is not None:
            operations.insert(0, models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        self.client().update_collection_aliases(change_aliases_operations=operations)

    def delete_collection(self, name: str) -> None:
        self.client().delete_collection(name)


def _shard_filter(shard: ShardRange, must: list | None = None):
    """``must`` plus, for a shard, its bucket range; None when nothing is to be filtered."""
    from qdrant_client import models

    must = list(must or [])
    if not shard.whole:
        must.append(models.FieldCondition(key="bucket", range=models.Range(gte=shard.lo, lt=shard.hi)))
    return models.Filter(must=must) if must else None


def _access_filter(access: AccessFilter | None):
    """Chunks whose acl shares a group with the caller's, plus unlabelled ones when public."""
    from qdrant_client import models

    if access is None:
        return None
    allowed = [models.FieldCondition(key="acl", match=models.MatchAny(any=list(access.groups)))] if access.groups else []
    if access.unlabelled == "public":
        allowed.append(models.IsEmptyCondition(is_empty=models.PayloadField(key="acl")))
    # No allowed condition at all must match nothing: a "should" with no clauses would match all.
    return models.Filter(should=allowed) if allowed else models.Filter(must=[models.HasIdCondition(has_id=[])])
