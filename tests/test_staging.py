"""Staged batches are bounded in records and in bytes, so a stage holds at most one batch
of large documents in memory, however many fit in ``batch_size``."""

from __future__ import annotations

import os

from resources.staging import LocalStaging

BUDGET = 1_000


def staged(tmp_path, records, batch_size=64):
    staging = LocalStaging(root=str(tmp_path), batch_size=batch_size, max_batch_bytes=BUDGET)
    writer = staging.writer("raw_documents", "run-1")
    for record in records:
        writer.write(record)
    writer.flush()
    return writer.manifest, list(staging.read(writer.manifest))


def test_batches_stay_within_the_byte_budget_and_keep_every_record_in_order(tmp_path):
    # two UTF-8 bytes per character: the budget is in bytes on disk, not characters
    records = [{"source": f"file:///d{i}", "text": "é" * (20 + 97 * i % 200)} for i in range(40)]
    manifest, batches = staged(tmp_path, records)
    assert len(batches) > 1
    assert all(os.path.getsize(path) <= BUDGET for path in manifest.paths)
    assert [record for batch in batches for record in batch] == records
    assert manifest.count == len(records)


def test_a_record_over_the_budget_is_a_batch_of_its_own(tmp_path):
    small = [{"source": f"file:///s{i}", "text": "x" * 100} for i in range(4)]
    huge = {"source": "file:///huge", "content_b64": "x" * (3 * BUDGET)}
    manifest, batches = staged(tmp_path, [small[0], small[1], huge, small[2], small[3]])
    assert batches == [small[:2], [huge], small[2:]]
    assert [os.path.getsize(path) > BUDGET for path in manifest.paths] == [False, True, False]


def test_the_record_limit_still_applies_to_small_records(tmp_path):
    records = [{"source": f"file:///d{i}"} for i in range(10)]
    _, batches = staged(tmp_path, records, batch_size=4)
    assert [len(batch) for batch in batches] == [4, 4, 2]
