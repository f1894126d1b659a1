"""Change classification and the SQL ledger (SQLite here; Postgres uses the same code)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from assets.ingestion.changes import (
    RETRY_BACKOFF,
    classify,
    deleted_sources,
    index_census,
    plan_repair,
)
from assets.ingestion.documents import index_version, point_id
from core.types import FailureRecord, LedgerRow, UnlistedPart
from resources.ledger import Ledger


def row(status="indexed", doc_id="a", source="s", **fields):
    fields.setdefault("indexed_doc_id", doc_id if status == "indexed" else None)
    return LedgerRow(source=source, status=status, doc_id=doc_id, **fields)


def test_classification_table():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    failed_once = FailureRecord("a", attempts=1, first_run_id="r1", last_failed_at=now - RETRY_BACKOFF / 2)
    assert classify("a", None) == "new"
    assert classify("a", row(status="deleted")) == "new"
    assert classify("a", row()) == "unchanged"
    assert classify("a", row(indexed_doc_id=None)) == "repair"
    assert classify("a", row(status="quarantined")) == "unchanged"
    assert classify("a", row(status="failed")) == "retry"
    assert classify("a", row(status="failed"), failed_once, now) == "deferred"
    assert classify("a", row(status="failed"), failed_once, now + RETRY_BACKOFF) == "retry"
    failed_twice = FailureRecord("a", attempts=2, first_run_id="r1", last_failed_at=now)
    assert classify("a", row(status="failed"), failed_twice, now + RETRY_BACKOFF) == "deferred"  # doubled
    assert classify("b", row()) == "changed"
    assert classify("b", row(status="quarantined")) == "changed"


def test_deleted_sources_are_tracked_and_not_listed_and_unlisted_parts_are_unknown():
    rows = [row(source="file:///c/x"), row(source="file:///c/y", status="deleted"),
            row(source="file:///c/z", status="quarantined"), row(source="file:///c/locked/w")]
    assert deleted_sources({"file:///c/x"}, rows, []) == (["file:///c/locked/w", "file:///c/z"], [])
    locked = [UnlistedPart("file:///c/locked/", "PermissionError: Permission denied")]
    assert deleted_sources({"file:///c/x"}, rows, locked) == (["file:///c/z"], ["file:///c/locked/w"])


def test_repair_plan_removes_what_the_ledger_does_not_account_for():
    census = index_census([("s1", "a")] * 3 + [("s1", "old")] * 2  # a stale version left by a killed run
                          + [("s2", "b")] * 1  # 1 of 4 points: incomplete
                          + [("s3", "c")] * 2  # unknown to the ledger
                          + [("s4", "d")] * 2)  # all good
    rows = [row(source="s1", chunk_count=3), row(source="s2", doc_id="b", chunk_count=4),
            row(source="s4", doc_id="d", chunk_count=2), row(source="s5", doc_id="e", chunk_count=1)]
    plan = plan_repair(census, rows)
    assert plan.keep == {"s1": "a", "s2": None, "s3": None}
    assert plan.removed_points == 2 + 1 + 2
    assert [(r.source, r.indexed_doc_id, r.chunk_count) for r in plan.incomplete] == [("s2", None, 0), ("s5", None, 0)]
    assert plan_repair(index_census([("s4", "d")] * 2), [rows[2]]).keep == {}


def test_point_ids_and_index_version_are_deterministic():
    assert point_id("s", "d", 0) == point_id("s", "d", 0)
    assert len({point_id("s", "d", 0), point_id("s", "d", 1), point_id("t", "d", 0)}) == 3
    assert index_version({"a": 1, "b": 2}) == index_version({"b": 2, "a": 1})
    assert index_version({"a": 1}) != index_version({"a": 2})


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        return Ledger(url=f"sqlite:///{tmp_path / 'l.sqlite'}")
    return Ledger(url=request.getfixturevalue("postgres_url"))


def test_ledger_upserts_rows_per_index_version(ledger):
    ledger.record("v1", [LedgerRow("s1", "indexed", "d1", indexed_doc_id="d1", chunk_count=3, run_id="r1"),
                         LedgerRow("s2", "quarantined", "d2", reason="empty file", run_id="r1")])
    ledger.record("v1", [LedgerRow("s1", "failed", "d3", reason="boom", indexed_doc_id="d1",
                                   chunk_count=3, run_id="r2")])
    ledger.record("v2", [LedgerRow("s1", "indexed", "d1", indexed_doc_id="d1", chunk_count=5, run_id="r3")])
    rows = ledger.rows("v1")
    assert (rows["s1"].status, rows["s1"].doc_id, rows["s1"].indexed_doc_id) == ("failed", "d3", "d1")
    assert rows["s2"].reason == "empty file"
    assert ledger.status_counts() == {"v1": {"failed": 1, "quarantined": 1}, "v2": {"indexed": 1}}
    assert ledger.run_counts("v1", "r1") == {"quarantined": 1}
    assert ledger.indexed_point_count("v1") == 3 and ledger.indexed_point_count("v2") == 5
    assert ledger.holders("v1", {"d1", "zz"}) == {"d1": ("s1", 3)}


def test_ledger_counts_a_failure_once_and_backs_off(ledger):
    failed = LedgerRow("s1", "failed", "d1", reason="boom", run_id="run-a")
    ledger.record("v1", [failed])
    ledger.record("v1", [failed])  # a re-executed step of the same logical run
    assert ledger.failures("v1", ["s1"])["s1"].attempts == 1
    ledger.record("v1", [LedgerRow("s1", "failed", "d1", reason="boom", run_id="run-b")])
    record = ledger.failures("v1", ["s1", "s2"])["s1"]
    assert (record.attempts, record.first_run_id, record.last_failed_at.tzinfo) == (2, "run-a", UTC)
    assert (ledger.first_failures("v1", "run-a"), ledger.first_failures("v1", "run-b")) == (1, 0)
    ledger.record("v1", [LedgerRow("s1", "failed", "d2", reason="new content, new count", run_id="run-c")])
    assert ledger.failures("v1", ["s1"])["s1"].attempts == 1 and ledger.first_failures("v1", "run-c") == 1
    ledger.record("v1", [LedgerRow("s1", "indexed", "d3", indexed_doc_id="d3", chunk_count=1, run_id="run-d")])
    assert ledger.failures("v1", ["s1"]) == {}


def test_ledger_generations_and_vector_cache(ledger):
    assert ledger.generation("v1") == 0
    assert ledger.advance_generation("v1") == 1 and ledger.advance_generation("v1") == 2
    assert ledger.generation("v2") == 0
    ledger.cache_vectors("c1", {"h1": [0.25, -1.5], "h2": [1.0, 2.0]})
    ledger.cache_vectors("c1", {"h1": [9.0, 9.0]})  # the first vector computed stays
    assert ledger.cached_vectors("c1", ["h1", "h2", "h3"]) == {"h1": [0.25, -1.5], "h2": [1.0, 2.0]}
    assert ledger.cached_vectors("c2", ["h1"]) == {}
    ledger.clear_vector_cache("c1")
    assert ledger.cached_vectors("c1", ["h1"]) == {}


def test_ledger_streams_rows_and_looks_them_up_in_batches(ledger):
    ledger.record("v1", [LedgerRow(f"s{i:04d}", "indexed", f"d{i}", indexed_doc_id=f"d{i}", chunk_count=1)
                         for i in range(1200)])
    assert sum(1 for _ in ledger.iter_rows("v1")) == 1200
    wanted = [f"s{i:04d}" for i in range(0, 1200, 2)] + ["absent"]
    assert sorted(ledger.rows_for("v1", wanted)) == wanted[:-1]


def test_signatures_stream_only_those_of_indexed_content(ledger, monkeypatch):
    """Fetched two rows at a time (a named, server-side cursor on Postgres), so the
    near-duplicate index, not a list of every signature, holds them in memory."""
    import sqlalchemy as sa

    import resources.ledger as ledger_module

    monkeypatch.setattr(ledger_module, "ROWS_PER_FETCH", 2)
    indexed = [(f"s{i}", f"d{i}", bytes([i]) * 512) for i in range(5)]
    ledger.record("v1", [LedgerRow(s, "indexed", d, indexed_doc_id=d, chunk_count=1) for s, d, _ in indexed]
                  + [LedgerRow("s5", "failed", "d5-new", indexed_doc_id="d5", chunk_count=1)])
    ledger.save_signatures("v1", [*indexed, ("s5", "d5-new", b"\x05" * 512)])  # not what s5 has indexed
    cursors = []
    sa.event.listen(ledger.engine(), "after_cursor_execute", lambda _c, cursor, *_: cursors.append(cursor))

    streamed = ledger.signatures("v1")
    assert not cursors  # nothing is read before the caller asks
    assert sorted((s, d, bytes(v)) for s, d, v in streamed) == indexed
    if ledger.engine().dialect.name == "postgresql":
        assert cursors[0].name  # psycopg2 names its server-side cursors
