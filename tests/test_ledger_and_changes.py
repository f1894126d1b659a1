"""Change classification and the SQL ledger (SQLite here; Postgres uses the same code)."""

from __future__ import annotations

import pytest

from assets.ingestion.changes import classify, deleted_sources, expected_point_count
from assets.ingestion.documents import index_version, point_id
from core.types import LedgerRow
from resources.ledger import Ledger


def row(status="indexed", doc_id="a", **fields):
    return LedgerRow(source="s", status=status, doc_id=doc_id, **fields)


def test_classification_table():
    assert classify("a", None) == "new"
    assert classify("a", row(status="deleted")) == "new"
    assert classify("a", row()) == "unchanged"
    assert classify("a", row(status="quarantined")) == "unchanged"
    assert classify("a", row(status="failed")) == "retry"
    assert classify("b", row()) == "changed"
    assert classify("b", row(status="quarantined")) == "changed"


def test_deleted_sources_are_tracked_and_not_listed():
    rows = {"x": row(), "y": row(status="deleted"), "z": row(status="quarantined")}
    assert deleted_sources({"x"}, rows) == ["z"]


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
    assert expected_point_count(rows.values()) == 3
    assert ledger.holders("v1", {"d1", "zz"}) == {"d1": ("s1", 3)}


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
