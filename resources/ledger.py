"""The ledger (record manager): what each source holds in each index version.

One row per (index_version, source). ``doc_id`` and ``status`` describe the latest content
seen; ``indexed_doc_id`` and ``chunk_count`` describe what the index holds for the source,
which may be an older, good version when the latest one was quarantined or failed.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from core.shards import EVERY_BUCKET, ShardRange, bucket_of
from core.types import FailureRecord, LeaseHeld, LedgerRow, ParseStat, QuarantineEntry, WriterLease

# ``released``: quarantined content an operator allowed in; the next run indexes it.
STATUSES = ("indexed", "quarantined", "failed", "deleted", "released")
ROWS_PER_FETCH = 1000  # rows a streamed query holds in memory at a time
KEYS_PER_QUERY = 500  # keys in one IN (...) lookup

_metadata = sa.MetaData()
documents = sa.Table(
    "documents",
    _metadata,
    sa.Column("index_version", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(2048), primary_key=True),
    # core.shards.bucket_of(source): shards select their rows by range. Nullable only because
    # ledgers created before it gain it by ALTER TABLE (see ``_migrate``), which fills it.
    sa.Column("bucket", sa.Integer, nullable=True),
    sa.Column("doc_id", sa.String(64), nullable=True),
    sa.Column("version", sa.String(256), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("indexed_doc_id", sa.String(64), nullable=True),
    sa.Column("chunk_count", sa.Integer, nullable=False, default=0),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
bucket_index = sa.Index("ix_documents_version_bucket", documents.c.index_version, documents.c.bucket)
# What decided each quarantine (side tables, so ledgers created before them need no migration).
quarantine_details = sa.Table(
    "quarantine_details",
    _metadata,
    sa.Column("index_version", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(2048), primary_key=True),
    sa.Column("doc_id", sa.String(64), nullable=True),
    sa.Column("scanner", sa.String(64), nullable=False),
    sa.Column("rule_ids", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=True),
)
# How long each source's latest parse took (or was given before it was stopped) and its
# pages, for every parsed document whatever became of it (until its source is deleted): which
# files make a run slow.
parse_stats = sa.Table(
    "parse_stats",
    _metadata,
    sa.Column("index_version", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(2048), primary_key=True),
    sa.Column("doc_id", sa.String(64), nullable=True),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("pages", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # what the parse gave: parsed, quarantined, failed
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("parsed_at", sa.DateTime(timezone=True), nullable=False),
)
# The operator's allow-list: content (by doc_id) let past the poisoning scans, and why.
releases = sa.Table(
    "quarantine_releases",
    _metadata,
    sa.Column("doc_id", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("released_by", sa.String(256), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
)
# MinHash signatures of documents, for near-duplicate detection across runs.
signatures = sa.Table(
    "near_duplicate_signatures",
    _metadata,
    sa.Column("index_version", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(2048), primary_key=True),
    sa.Column("doc_id", sa.String(64), nullable=False),
    sa.Column("hashvalues", sa.LargeBinary, nullable=False),
)
# Failed attempts of each source's latest content, for retry backoff and for counting a
# failure against the budget of the logical run it first happened in, and only that one.
failures = sa.Table(
    "failed_attempts",
    _metadata,
    sa.Column("index_version", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(2048), primary_key=True),
    sa.Column("doc_id", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_run_id", sa.String(64), nullable=False),
    sa.Column("last_run_id", sa.String(64), nullable=False),
    sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
)
# Vectors computed by runs that have not completed their index stage yet, so a killed run's
# embeddings are reused by the rerun. Keyed by collection (which names the embedder identity)
# and the sha256 of the chunk text.
embedding_cache = sa.Table(
    "embedding_cache",
    _metadata,
    sa.Column("collection", sa.String(512), primary_key=True),
    sa.Column("text_sha256", sa.String(64), primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)
# Bumped when a run's index stage completes: a manifest from an older scan is stale. Keyed by
# the version, or ``<version>#<shard key>`` for a shard's own count (see ``_scoped_key``).
generations = sa.Table(
    "index_generations",
    _metadata,
    sa.Column("index_version", sa.String(64), primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False),
)

# Bucket ranges whose full reconcile completed an index stage, per version: an index is
# complete (promotable) once its completed ranges cover every bucket.
completions = sa.Table(
    "shard_completions",
    _metadata,
    sa.Column("index_version", sa.String(64), primary_key=True),
    sa.Column("lo", sa.Integer, primary_key=True),
    sa.Column("hi", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
)

# One writer per collection, or per collection and shard (``_scoped_key``): the run holding
# the lease, renewed while it runs.
writer_leases = sa.Table(
    "writer_leases",
    _metadata,
    sa.Column("collection", sa.String(255), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


class Ledger(ConfigurableResource):
    """SQLAlchemy-backed ledger: a SQLite file by default, a Postgres URL in production."""

    url: str
    # A writer lease lapses this long after its holder's last heartbeat (every third of it).
    lease_ttl_s: float = 60.0
    _engine: sa.Engine | None = PrivateAttr(default=None)
    _heartbeat_stop: threading.Event | None = PrivateAttr(default=None)

    def engine(self) -> sa.Engine:
        if self._engine is None:
            if self.url.startswith("sqlite:///"):
                Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(self.url, future=True)
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":  # concurrent first runs (shards) create it once
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
                _metadata.create_all(connection)
                _migrate(connection)
            self._engine = engine
        return self._engine

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Renew the run's writer leases while any of its steps runs, in whatever process."""
        if context.run_id is None:
            return
        self._heartbeat_stop = threading.Event()
        threading.Thread(target=self._heartbeat, args=(context.run_id, self._heartbeat_stop),
                         name="ragpipe-lease-heartbeat", daemon=True).start()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._heartbeat_stop is not None:
            self._heartbeat_stop.set()

    def _heartbeat(self, holder: str, stop: threading.Event) -> None:
        while not stop.wait(self.lease_ttl_s / 3):
            with self.engine().begin() as connection:
                connection.execute(sa.update(writer_leases).where(writer_leases.c.holder == holder)
                                   .values(expires_at=self._lease_expiry()))

    def _lease_expiry(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.lease_ttl_s)

    def _claim(self, collection: str, holder: str, replacing: str | None = None) -> WriterLease:
        """Take the lease if it is free, expired, already ours or ``replacing``'s, in one
        atomic upsert; return whoever holds it afterwards."""
        now = datetime.now(UTC)
        statement = self._insert(writer_leases).values(
            collection=collection, holder=holder, acquired_at=now, expires_at=self._lease_expiry())
        current = writer_leases.c
        takeover = (current.expires_at < now) | (current.holder == holder)
        if replacing is not None:
            takeover |= current.holder == replacing
        statement = statement.on_conflict_do_update(
            index_elements=["collection"],
            set_={"holder": holder, "expires_at": statement.excluded.expires_at,
                  "acquired_at": sa.case((current.holder == holder, current.acquired_at), else_=now)},
            where=takeover,
        )
        with self.engine().begin() as connection:
            before = connection.execute(sa.select(current.holder).where(current.collection == collection)).scalar()
            connection.execute(statement)
            row = connection.execute(sa.select(writer_leases).where(current.collection == collection)).one()
        inherited = before if before not in (None, holder) and row.holder == holder else None
        return WriterLease(collection, row.holder, row.acquired_at, inherited_from=inherited)

    def acquire_lease(self, collection: str, holder: str, wait_s: float,
                      holder_finished: Callable[[str], bool], shard: ShardRange = EVERY_BUCKET) -> WriterLease:
        """Hold ``collection``'s writer lease (for ``shard``'s buckets: shards of a collection
        write at once) for run ``holder``, waiting up to ``wait_s`` for the run that has it. A
        holder known to have finished (``holder_finished``) or whose lease expired is replaced.
        Raises LeaseHeld when the wait runs out."""
        collection = _scoped_key(collection, shard)
        started = time.monotonic()
        while True:
            lease = self._claim(collection, holder)
            if lease.holder != holder and holder_finished(lease.holder):
                lease = self._claim(collection, holder, replacing=lease.holder)
            if lease.holder == holder:
                return lease
            waited = time.monotonic() - started
            if waited >= wait_s:
                raise LeaseHeld(lease, round(waited, 1))
            time.sleep(min(1.0, wait_s - waited))

    def release_lease(self, collection: str, holder: str, shard: ShardRange = EVERY_BUCKET) -> None:
        with self.engine().begin() as connection:
            connection.execute(sa.delete(writer_leases).where(
                writer_leases.c.collection == _scoped_key(collection, shard), writer_leases.c.holder == holder))

    def rows(self, index_version: str) -> dict[str, LedgerRow]:
        return {row.source: row for row in self.iter_rows(index_version)}

    def iter_rows(self, index_version: str, shard: ShardRange = EVERY_BUCKET) -> Iterator[LedgerRow]:
        """Every row of a version (in ``shard``'s buckets), streamed from the database (bounded memory)."""
        query = sa.select(documents).where(documents.c.index_version == index_version, *_in_shard(shard))
        with self.engine().connect() as connection:
            for row in connection.execution_options(yield_per=ROWS_PER_FETCH).execute(query):
                yield _ledger_row(row)

    def rows_for(self, index_version: str, sources: list[str]) -> dict[str, LedgerRow]:
        """The rows of the given sources (absent sources are left out)."""
        found: dict[str, LedgerRow] = {}
        with self.engine().connect() as connection:
            for keys in _key_batches(sources):
                query = sa.select(documents).where(documents.c.index_version == index_version,
                                                   documents.c.source.in_(keys))
                found.update((row.source, _ledger_row(row)) for row in connection.execute(query))
        return found

    def failures(self, index_version: str, sources: list[str]) -> dict[str, FailureRecord]:
        """The failed attempts of the given sources' latest content."""
        found: dict[str, FailureRecord] = {}
        with self.engine().connect() as connection:
            for keys in _key_batches(sources):
                query = sa.select(failures).where(failures.c.index_version == index_version,
                                                  failures.c.source.in_(keys))
                found.update(
                    (row.source, FailureRecord(row.doc_id, row.attempts, row.first_run_id,
                                               _aware(row.last_failed_at)))
                    for row in connection.execute(query)
                )
        return found

    def first_failures(self, index_version: str, run_id: str) -> int:
        """Documents that failed for the first time in the logical run ``run_id``."""
        query = sa.select(sa.func.count()).select_from(failures).where(
            failures.c.index_version == index_version, failures.c.first_run_id == run_id)
        with self.engine().connect() as connection:
            return connection.execute(query).scalar_one()

    def generation(self, index_version: str, shard: ShardRange = EVERY_BUCKET) -> int:
        """How many index stages have completed for this version over buckets that ``shard``
        shares (whatever the shard count they ran with): it grows with each of them."""
        key = generations.c.index_version
        query = sa.select(key, generations.c.generation).where(
            (key == index_version) | key.startswith(f"{index_version}#", autoescape=True))
        with self.engine().connect() as connection:
            counts = connection.execute(query).all()
        return sum(count for scoped, count in counts if _key_shard(scoped).overlaps(shard))

    def advance_generation(self, index_version: str, shard: ShardRange = EVERY_BUCKET) -> int:
        statement = self._insert(generations).values(index_version=_scoped_key(index_version, shard), generation=1)
        statement = statement.on_conflict_do_update(
            index_elements=["index_version"], set_={"generation": generations.c.generation + 1})
        with self.engine().begin() as connection:
            connection.execute(statement)
        return self.generation(index_version, shard)

    def mark_complete(self, index_version: str, shard: ShardRange, run_id: str) -> None:
        """Record that a full reconcile of ``shard``'s buckets completed its index stage."""
        statement = self._insert(completions).values(index_version=index_version, lo=shard.lo, hi=shard.hi,
                                                     run_id=run_id, completed_at=datetime.now(UTC))
        statement = statement.on_conflict_do_update(
            index_elements=["index_version", "lo", "hi"],
            set_={"run_id": statement.excluded.run_id, "completed_at": statement.excluded.completed_at})
        with self.engine().begin() as connection:
            connection.execute(statement)

    def completed(self, index_version: str) -> list[ShardRange]:
        """The bucket ranges whose full reconcile completed for this version."""
        query = sa.select(completions.c.lo, completions.c.hi).where(completions.c.index_version == index_version)
        with self.engine().connect() as connection:
            return [ShardRange(lo, hi) for lo, hi in connection.execute(query)]

    def cached_vectors(self, collection: str, text_hashes: list[str]) -> dict[str, list[float]]:
        """Vectors computed earlier for these chunk texts in this collection."""
        found: dict[str, list[float]] = {}
        with self.engine().connect() as connection:
            for keys in _key_batches(text_hashes):
                query = sa.select(embedding_cache.c.text_sha256, embedding_cache.c.vector).where(
                    embedding_cache.c.collection == collection, embedding_cache.c.text_sha256.in_(keys))
                found.update((key, array("f", blob).tolist()) for key, blob in connection.execute(query))
        return found

    def cache_vectors(self, collection: str, vectors: dict[str, list[float]]) -> None:
        if not vectors:
            return
        statement = self._insert(embedding_cache).on_conflict_do_nothing(
            index_elements=["collection", "text_sha256"])
        with self.engine().begin() as connection:
            connection.execute(statement, [
                {"collection": collection, "text_sha256": key, "vector": array("f", vector).tobytes()}
                for key, vector in vectors.items()
            ])

    def clear_vector_cache(self, collection: str) -> None:
        """Called once the collection holds what the cache was kept for."""
        with self.engine().begin() as connection:
            connection.execute(sa.delete(embedding_cache).where(embedding_cache.c.collection == collection))

    def signatures(self, index_version: str) -> Iterator[tuple[str, str, bytes]]:
        """(source, doc_id, hashvalues) of the signatures whose content is what the index holds,
        streamed (a server-side cursor on Postgres) so the caller's index is the only copy."""
        query = sa.select(signatures.c.source, signatures.c.doc_id, signatures.c.hashvalues).join(
            documents,
            (documents.c.index_version == signatures.c.index_version)
            & (documents.c.source == signatures.c.source)
            & (documents.c.indexed_doc_id == signatures.c.doc_id),
        ).where(signatures.c.index_version == index_version)
        with self.engine().connect() as connection:
            for row in connection.execution_options(yield_per=ROWS_PER_FETCH).execute(query):
                yield tuple(row)

    def save_signatures(self, index_version: str, rows: list[tuple[str, str, bytes]]) -> None:
        """Insert or replace each source's signature."""
        if not rows:
            return
        statement = self._insert(signatures)
        statement = statement.on_conflict_do_update(
            index_elements=["index_version", "source"],
            set_={"doc_id": statement.excluded.doc_id, "hashvalues": statement.excluded.hashvalues},
        )
        with self.engine().begin() as connection:
            connection.execute(statement, [
                {"index_version": index_version, "source": source, "doc_id": doc_id, "hashvalues": values}
                for source, doc_id, values in rows
            ])

    def record_parse_stats(self, index_version: str, run_id: str | None, stats: list[ParseStat]) -> None:
        """Insert or replace each source's parse time and pages."""
        if not stats:
            return
        now = datetime.now(UTC)
        statement = self._insert(parse_stats)
        statement = statement.on_conflict_do_update(
            index_elements=["index_version", "source"],
            set_={name: statement.excluded[name] for name in ("doc_id", "seconds", "pages", "status", "run_id",
                                                              "parsed_at")},
        )
        with self.engine().begin() as connection:
            connection.execute(statement, [
                {"index_version": index_version, "source": stat.source, "doc_id": stat.doc_id,
                 "seconds": stat.seconds, "pages": stat.pages, "status": stat.status, "run_id": run_id,
                 "parsed_at": now}
                for stat in stats
            ])

    def slowest_parses(self, index_version: str, limit: int = 10) -> list[ParseStat]:
        """The sources whose latest parse took longest, slowest first."""
        query = (sa.select(parse_stats).where(parse_stats.c.index_version == index_version)
                 .order_by(parse_stats.c.seconds.desc(), parse_stats.c.source).limit(limit))
        with self.engine().connect() as connection:
            return [ParseStat(row.source, row.seconds, row.pages, row.status, row.doc_id)
                    for row in connection.execute(query)]

    def _insert(self, table: sa.Table):
        if self.engine().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def record(self, index_version: str, rows: list[LedgerRow]) -> None:
        """Insert or update rows in one transaction (idempotent for the same input)."""
        if not rows:
            return
        now = datetime.now(UTC)
        values = [
            {
                "index_version": index_version,
                "source": row.source,
                "bucket": bucket_of(row.source),
                "doc_id": row.doc_id,
                "version": row.version,
                "status": row.status,
                "reason": row.reason,
                "indexed_doc_id": row.indexed_doc_id,
                "chunk_count": row.chunk_count,
                "run_id": row.run_id,
                "first_seen_at": now,
                "updated_at": now,
            }
            for row in rows
        ]
        statement = self._insert(documents)
        updated = {
            name: statement.excluded[name]
            for name in ("doc_id", "version", "status", "reason", "indexed_doc_id",
                         "chunk_count", "run_id", "updated_at")
        }
        statement = statement.on_conflict_do_update(
            index_elements=["index_version", "source"], set_=updated
        )
        details = [
            {"index_version": index_version, "source": row.source, "doc_id": row.doc_id,
             "scanner": row.detail.scanner, "rule_ids": ",".join(row.detail.rule_ids), "score": row.detail.score}
            for row in rows if row.status == "quarantined" and row.detail
        ]
        with self.engine().begin() as connection:
            connection.execute(statement, values)
            self._record_failures(connection, index_version, rows, now)
            for keys in _key_batches([row.source for row in rows if row.status == "deleted"]):
                connection.execute(sa.delete(parse_stats).where(  # a deleted file is no longer slow
                    parse_stats.c.index_version == index_version, parse_stats.c.source.in_(keys)))
            if details:
                detail_insert = self._insert(quarantine_details)
                connection.execute(detail_insert.on_conflict_do_update(
                    index_elements=["index_version", "source"],
                    set_={name: detail_insert.excluded[name] for name in ("doc_id", "scanner", "rule_ids", "score")},
                ), details)

    def indexed_point_count(self, index_version: str, shard: ShardRange = EVERY_BUCKET) -> int:
        """The points the ledger says the version's collection holds (in ``shard``'s buckets)."""
        query = sa.select(sa.func.coalesce(sa.func.sum(documents.c.chunk_count), 0)).where(
            documents.c.index_version == index_version, documents.c.indexed_doc_id.is_not(None), *_in_shard(shard))
        with self.engine().connect() as connection:
            return int(connection.execute(query).scalar_one())

    def update_versions(self, index_version: str, markers: dict[str, str]) -> None:
        """Store new version markers of sources whose content did not change (a touched file),
        leaving everything else about them, their failure count included, as it is."""
        if not markers:
            return
        statement = (sa.update(documents)
                     .where(documents.c.index_version == index_version,
                            documents.c.source == sa.bindparam("source_key"))
                     .values(version=sa.bindparam("marker")))
        with self.engine().begin() as connection:
            connection.execute(statement, [{"source_key": source, "marker": marker}
                                           for source, marker in markers.items()])

    def _record_failures(self, connection, index_version: str, rows: list[LedgerRow], now: datetime) -> None:
        """Count failed attempts per content (once per logical run); success clears them."""
        done = [row.source for row in rows if row.status in ("indexed", "deleted")]
        for keys in _key_batches(done):
            connection.execute(sa.delete(failures).where(
                failures.c.index_version == index_version, failures.c.source.in_(keys)))
        failed = [
            {"index_version": index_version, "source": row.source, "doc_id": row.doc_id, "attempts": 1,
             "first_run_id": row.run_id or "", "last_run_id": row.run_id or "", "last_failed_at": now}
            for row in rows if row.status == "failed"
        ]
        if not failed:
            return
        statement = self._insert(failures)
        same_content = failures.c.doc_id == statement.excluded.doc_id
        same_run = same_content & (failures.c.last_run_id == statement.excluded.last_run_id)
        statement = statement.on_conflict_do_update(
            index_elements=["index_version", "source"],
            set_={
                "attempts": sa.case((same_run, failures.c.attempts), (same_content, failures.c.attempts + 1),
                                    else_=1),
                "first_run_id": sa.case((same_content, failures.c.first_run_id),
                                        else_=statement.excluded.first_run_id),
                "doc_id": statement.excluded.doc_id,
                "last_run_id": statement.excluded.last_run_id,
                "last_failed_at": statement.excluded.last_failed_at,
            },
        )
        connection.execute(statement, failed)

    def status_counts(self) -> dict[str, dict[str, int]]:
        """Rows per status, per index version."""
        query = sa.select(documents.c.index_version, documents.c.status, sa.func.count()).group_by(
            documents.c.index_version, documents.c.status
        )
        counts: dict[str, dict[str, int]] = {}
        with self.engine().connect() as connection:
            for index_version, status, count in connection.execute(query):
                counts.setdefault(index_version, {})[status] = count
        return counts

    def run_counts(self, index_version: str, run_id: str) -> Counter:
        """Rows per status that a given run wrote."""
        query = (
            sa.select(documents.c.status, sa.func.count())
            .where(documents.c.index_version == index_version, documents.c.run_id == run_id)
            .group_by(documents.c.status)
        )
        with self.engine().connect() as connection:
            return Counter(dict(connection.execute(query).all()))

    def holders(self, index_version: str, doc_ids: set[str]) -> dict[str, tuple[str, int]]:
        """For each content hash already indexed somewhere: one (source, chunk_count)."""
        if not doc_ids:
            return {}
        query = sa.select(documents.c.indexed_doc_id, documents.c.source, documents.c.chunk_count).where(
            documents.c.index_version == index_version, documents.c.indexed_doc_id.in_(sorted(doc_ids))
        )
        with self.engine().connect() as connection:
            return {doc_id: (source, count) for doc_id, source, count in connection.execute(query)}

    def quarantined(self, index_version: str, shard: ShardRange = EVERY_BUCKET) -> list[QuarantineEntry]:
        """Documents quarantined now (in ``shard``'s buckets), with what decided it (``ingestion``
        for parse-time rejections such as empty or oversized files)."""
        d, q = documents, quarantine_details
        query = (
            sa.select(d.c.source, d.c.doc_id, d.c.version, d.c.reason, d.c.updated_at, d.c.run_id,
                      q.c.scanner, q.c.rule_ids, q.c.score)
            .select_from(d.outerjoin(q, sa.and_(q.c.index_version == d.c.index_version, q.c.source == d.c.source,
                                                q.c.doc_id == d.c.doc_id)))
            .where(d.c.index_version == index_version, d.c.status == "quarantined", *_in_shard(shard))
            .order_by(d.c.updated_at.desc(), d.c.source)
        )
        with self.engine().connect() as connection:
            return [
                QuarantineEntry(
                    source=row.source, doc_id=row.doc_id, version=row.version, reason=row.reason or "",
                    scanner=row.scanner or "ingestion", rule_ids=tuple(filter(None, (row.rule_ids or "").split(","))),
                    score=row.score, quarantined_at=row.updated_at, run_id=row.run_id,
                )
                for row in connection.execute(query)
            ]

    def release(self, doc_id: str, reason: str, released_by: str) -> int:
        """Allow-list ``doc_id`` and mark its quarantined rows ``released`` so the next run
        processes them again; returns how many rows were released (0: nothing to release)."""
        now = datetime.now(UTC)
        with self.engine().begin() as connection:
            released = connection.execute(
                sa.update(documents)
                .where(documents.c.doc_id == doc_id, documents.c.status == "quarantined")
                .values(status="released", reason=f"released by {released_by}: {reason}", updated_at=now)
            ).rowcount
            if released:
                connection.execute(sa.delete(releases).where(releases.c.doc_id == doc_id))
                connection.execute(sa.insert(releases).values(
                    doc_id=doc_id, reason=reason, released_by=released_by, released_at=now))
        return released

    def released_doc_ids(self) -> frozenset[str]:
        with self.engine().connect() as connection:
            return frozenset(connection.execute(sa.select(releases.c.doc_id)).scalars())


_SCHEMA_LOCK = 0x72616770  # "ragp": the advisory lock that serialises schema creation on Postgres


def _migrate(connection) -> None:
    """Bring a ledger created by an earlier release up to this schema: ``documents`` gains
    ``bucket``, filled from each row's source. PostgreSQL adds and fills it in the caller's one
    transaction; SQLite's driver commits DDL on its own, so there an interrupted fill resumes
    from the rows still without a bucket (a scan only local ledgers pay on start)."""
    added = "bucket" not in {column["name"] for column in sa.inspect(connection).get_columns("documents")}
    if added:
        connection.execute(sa.text("ALTER TABLE documents ADD COLUMN bucket INTEGER"))
        bucket_index.create(connection)
    if not (added or connection.dialect.name == "sqlite"):
        return
    while sources := connection.execute(sa.select(documents.c.source).where(documents.c.bucket.is_(None))
                                         .distinct().limit(KEYS_PER_QUERY)).scalars().all():
        connection.execute(
            sa.update(documents).where(documents.c.source == sa.bindparam("source_key"))
            .values(bucket=sa.bindparam("bucket_value")),
            [{"source_key": source, "bucket_value": bucket_of(source)} for source in sources])


def _in_shard(shard: ShardRange) -> list:
    """The WHERE clauses that keep a shard's rows (none for the whole bucket space)."""
    return [] if shard.whole else [documents.c.bucket >= shard.lo, documents.c.bucket < shard.hi]


def _scoped_key(key: str, shard: ShardRange) -> str:
    """A collection's or version's key for one shard; the key itself for the whole space."""
    return key if shard.whole else f"{key}#{shard.key}"


def _key_shard(scoped: str) -> ShardRange:
    _, separator, shard = scoped.partition("#")
    return ShardRange.from_key(shard) if separator else EVERY_BUCKET


def _key_batches(keys: list[str]) -> Iterator[list[str]]:
    """Keys in slices small enough for one ``IN (...)`` clause on every database."""
    for start in range(0, len(keys), KEYS_PER_QUERY):
        yield keys[start:start + KEYS_PER_QUERY]


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; every time the ledger writes is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ledger_row(row) -> LedgerRow:
    return LedgerRow(
        source=row.source, status=row.status, doc_id=row.doc_id, version=row.version, reason=row.reason,
        indexed_doc_id=row.indexed_doc_id, chunk_count=row.chunk_count, run_id=row.run_id,
        updated_at=row.updated_at,
    )
