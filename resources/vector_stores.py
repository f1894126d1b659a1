"""Vector stores: collections of points keyed by deterministic ids, plus aliases."""

from __future__ import annotations

import json
import os
import shutil
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


class QdrantEdgeVectorStore(ConfigurableResource):
    """Qdrant Edge (``qdrant-edge-py``, Qdrant's engine in-process; beta): one EdgeShard folder per
    collection under ``path``/collections, aliases in ``path``/aliases.json.

    Unlike local mode it keeps vectors and payloads in its segment files (mmap) rather than in
    Python objects, indexes payload fields and builds an HNSW index, so it scales past local
    mode's brute-force search. Edge runs no background optimiser: a shard written to is optimised
    (segments merged, HNSW built) when the store closes, i.e. once at the end of each step. Like
    local mode, one process at a time may open a collection (its write-ahead log is locked).
    """

    path: str
    native_hybrid: ClassVar[bool] = False
    _shards: dict[str, Any] = PrivateAttr(default_factory=dict)
    _written: set[str] = PrivateAttr(default_factory=set)

    @property
    def _collections_dir(self) -> Path:
        return Path(self.path) / "collections"

    @property
    def _aliases_file(self) -> Path:
        return Path(self.path) / "aliases.json"

    def _aliases(self) -> dict[str, str]:
        return json.loads(self._aliases_file.read_text()) if self._aliases_file.is_file() else {}

    def _write_aliases(self, aliases: dict[str, str]) -> None:
        """Replace the alias file in one rename, so a reader sees the old or the new mapping."""
        Path(self.path).mkdir(parents=True, exist_ok=True)
        staged = self._aliases_file.with_suffix(".json.tmp")
        staged.write_text(json.dumps(aliases, indent=1, sort_keys=True))
        os.replace(staged, self._aliases_file)

    def _resolve(self, name: str) -> str:
        """A collection's own name, or the collection an alias points at."""
        return name if self.collection_exists(name) else self._aliases().get(name, name)

    def _shard(self, name: str, create_dimension: int | None = None):
        """The open shard of collection (or alias) ``name``; None when it does not exist."""
        from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams, PayloadSchemaType, UpdateOperation

        name = self._resolve(name)
        if name in self._shards:
            return self._shards[name]
        folder = self._collections_dir / name
        try:
            if self.collection_exists(name):
                shard = EdgeShard.load(str(folder))
            elif create_dimension is not None:
                shard = EdgeShard.create(str(folder), EdgeConfig(
                    vectors=EdgeVectorParams(size=create_dimension, distance=Distance.Cosine)))
                # Indexed fields keep filtered deletes, shard scans and ACL trimming off a full scan.
                for field in ("doc_id", "source", "acl"):
                    shard.update(UpdateOperation.create_field_index(field, PayloadSchemaType.Keyword))
                shard.update(UpdateOperation.create_field_index("bucket", PayloadSchemaType.Integer))
            else:
                return None
        except Exception as error:  # qdrant_edge raises plain Exception; a locked write-ahead log says WouldBlock
            if "WouldBlock" not in str(error):
                raise
            raise RuntimeError(f"Qdrant Edge collection {folder} is open in another process "
                               "(a running ingest or `dagster dev` step); wait for it to finish") from error
        self._shards[name] = shard
        return shard

    def close(self) -> None:
        for name, shard in self._shards.items():
            if name in self._written:
                shard.optimize()
            shard.close()
        self._shards.clear()
        self._written.clear()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def collection_exists(self, name: str) -> bool:
        return (self._collections_dir / name / "edge_config.json").is_file()

    def ensure_collection(self, name: str, dimension: int) -> None:
        self._shard(name, create_dimension=dimension)

    def _update(self, name: str, operation) -> None:
        shard = self._shard(name)
        if shard is None:
            raise ValueError(f"Qdrant Edge collection {name!r} does not exist")
        shard.update(operation)
        self._written.add(self._resolve(name))

    def upsert(self, name: str, points: list[Point]) -> None:
        from qdrant_edge import Point as EdgePoint
        from qdrant_edge import UpdateOperation

        if points:
            self._update(name, UpdateOperation.upsert_points(
                [EdgePoint(id=p.id, vector=p.vector, payload=p.payload) for p in points]))

    def delete_source(self, name: str, source: str, keep_doc_id: str | None = None) -> None:
        """Remove a source's points, except those of ``keep_doc_id`` (its current content)."""
        from qdrant_edge import FieldCondition, Filter, MatchValue, UpdateOperation

        must_not = [FieldCondition(key="doc_id", match=MatchValue(keep_doc_id))] if keep_doc_id is not None else []
        self._update(name, UpdateOperation.delete_points_by_filter(
            Filter(must=[FieldCondition(key="source", match=MatchValue(source))], must_not=must_not)))

    def _scroll(self, name: str, with_payload: bool | list[str] = False, scroll_filter: Any = None) -> Iterator[Any]:
        from qdrant_edge import ScrollRequest

        shard = self._shard(name)
        offset = None
        while shard is not None:
            records, offset = shard.scroll(ScrollRequest(offset=offset, limit=256, filter=scroll_filter,
                                                         with_payload=with_payload, with_vector=False))
            yield from records
            if offset is None:
                return

    def vectors(self, name: str, ids: list[str]) -> dict[str, list[float]]:
        """Stored vectors for the given point ids (absent ids are left out)."""
        shard = self._shard(name) if ids else None
        if shard is None:
            return {}
        return {str(record.id): list(record.vector)
                for record in shard.retrieve(ids, with_payload=False, with_vector=True)}

    def point_ids(self, name: str) -> set[str]:
        return {str(record.id) for record in self._scroll(name)}

    def point_sources(self, name: str, sources: list[str] | None = None,
                      shard: ShardRange = EVERY_BUCKET) -> Iterator[tuple[str, str]]:
        """(source, doc_id) of every point, or of the points of ``sources`` only, in ``shard``'s
        buckets, streamed with only those payload fields."""
        from qdrant_edge import FieldCondition, MatchAny

        must = [FieldCondition(key="source", match=MatchAny(any=sources))] if sources is not None else []
        for record in self._scroll(name, with_payload=["source", "doc_id"], scroll_filter=_edge_shard_filter(shard, must)):
            payload = record.payload or {}
            yield payload.get("source", ""), payload.get("doc_id", "")

    def count(self, name: str, shard: ShardRange = EVERY_BUCKET) -> int:
        from qdrant_edge import CountRequest

        edge_shard = self._shard(name)
        return 0 if edge_shard is None else edge_shard.count(CountRequest(exact=True, filter=_edge_shard_filter(shard)))

    def collections(self) -> dict[str, int]:
        names = sorted(folder.name for folder in self._collections_dir.glob("*") if self.collection_exists(folder.name))
        return {name: self.count(name) for name in names}

    def search_many(self, name: str, vectors: list[list[float]], limit: int, *, texts: list[str] | None = None,
                    accesses: list[AccessFilter | None], with_payload: bool = True) -> list[list[Hit]]:
        """All the queries as one planned batch (they share a pass over the segments). Text ranking
        is the retriever's (BM25), not Qdrant's."""
        from qdrant_edge import Query, QueryBatchRequest, QueryRequest

        if texts is not None:
            raise ValueError("Qdrant searches by vector only; the retriever ranks text itself")
        shard = self._shard(name)
        if shard is None:
            raise ValueError(f"Qdrant Edge collection or alias {name!r} does not exist")
        requests = [QueryRequest(limit=limit, query=Query.Nearest(vector), with_payload=with_payload,
                                 filter=_edge_access_filter(access))
                    for vector, access in zip(vectors, accesses, strict=True)]
        responses = shard.query_batch(QueryBatchRequest(requests)) if requests else []
        return [[Hit(id=str(p.id), score=p.score, payload=p.payload or {}) for p in points] for points in responses]

    def payloads(self, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for record in self._scroll(name, with_payload=True):
            yield str(record.id), record.payload or {}

    def alias_target(self, alias: str) -> str | None:
        return self._aliases().get(alias)

    def point_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` in one file rename, so readers never see it missing."""
        if not self.collection_exists(collection):
            raise ValueError(f"Qdrant Edge collection {collection!r} does not exist")
        self._write_aliases({**self._aliases(), alias: collection})

    def delete_collection(self, name: str) -> None:
        """Delete the collection and, as Qdrant does, the aliases that point at it."""
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        self._written.discard(name)
        shutil.rmtree(self._collections_dir / name, ignore_errors=True)
        aliases = self._aliases()
        if any(target == name for target in aliases.values()):
            self._write_aliases({alias: target for alias, target in aliases.items() if target != name})


def _edge_shard_filter(shard: ShardRange, must: list | None = None):
    """As ``_shard_filter``, in Qdrant Edge's filter types."""
    from qdrant_edge import FieldCondition, Filter, RangeFloat

    must = list(must or [])
    if not shard.whole:
        must.append(FieldCondition(key="bucket", range=RangeFloat(gte=shard.lo, lt=shard.hi)))
    return Filter(must=must) if must else None


def _edge_access_filter(access: AccessFilter | None):
    """As ``_access_filter``, in Qdrant Edge's filter types."""
    from qdrant_edge import FieldCondition, Filter, HasIdCondition, IsEmptyCondition, MatchAny

    if access is None:
        return None
    allowed = [FieldCondition(key="acl", match=MatchAny(any=list(access.groups)))] if access.groups else []
    if access.unlabelled == "public":
        allowed.append(IsEmptyCondition(key="acl"))
    # No allowed condition at all must match nothing: a "should" with no clauses would match all.
    return Filter(should=allowed) if allowed else Filter(must=[HasIdCondition(point_ids=set())])
