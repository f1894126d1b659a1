"""Staged batches are bounded in records and in bytes, so a stage holds at most one batch
of large documents in memory, however many fit in ``batch_size``; they round-trip, and prune
by run activity, the same on a local folder and on shared object storage (Azurite)."""

from __future__ import annotations

import time

import pytest
from dagster import EnvVar

from pipelines.definitions import DATA_CONNECTION_STRING_ENV
from resources.object_storage import storage_path
from resources.staging import Staging

BUDGET = 1_000


@pytest.fixture(params=["local", "azurite"])
def location(request, tmp_path) -> dict[str, str]:
    """Staging's root and connection string: a folder, or a container on Azurite read through EnvVar."""
    if request.param == "local":
        return {"root": str(tmp_path / "staging")}
    return {"root": request.getfixturevalue("data_url") + "/staging",
            "connection_string": EnvVar(DATA_CONNECTION_STRING_ENV)}


def path_of(location, path: str):
    return storage_path(path, location.get("connection_string", ""))


def size(location, path: str) -> int:
    return path_of(location, path).stat().st_size


def staged(location, records, batch_size=64):
    staging = Staging(**location, batch_size=batch_size, max_batch_bytes=BUDGET)
    writer = staging.writer("raw_documents", "run-1")
    for record in records:
        writer.write(record)
    writer.flush()
    return writer.manifest, list(staging.read(writer.manifest))


def test_batches_stay_within_the_byte_budget_and_keep_every_record_in_order(location):
    # two UTF-8 bytes per character: the budget is in bytes on disk, not characters
    records = [{"source": f"file:///d{i}", "text": "é" * (20 + 97 * i % 200)} for i in range(40)]
    manifest, batches = staged(location, records)
    assert len(batches) > 1
    assert all(path.startswith(location["root"] + "/run-1/raw_documents/batch-") for path in manifest.paths)
    assert all(size(location, path) <= BUDGET for path in manifest.paths)
    assert [record for batch in batches for record in batch] == records
    assert manifest.count == len(records)


def test_a_record_over_the_budget_is_a_batch_of_its_own(location):
    small = [{"source": f"file:///s{i}", "text": "x" * 100} for i in range(4)]
    huge = {"source": "file:///huge", "content_b64": "x" * (3 * BUDGET)}
    manifest, batches = staged(location, [small[0], small[1], huge, small[2], small[3]])
    assert batches == [small[:2], [huge], small[2:]]
    assert [size(location, path) > BUDGET for path in manifest.paths] == [False, True, False]


def test_the_record_limit_still_applies_to_small_records(tmp_path):
    _, batches = staged({"root": str(tmp_path)}, [{"source": f"file:///d{i}"} for i in range(10)], batch_size=4)
    assert [len(batch) for batch in batches] == [4, 4, 2]


def test_write_read_and_prune_by_the_stores_activity_times(location):
    """Runs are ordered by when the store last saw them start a stage (its clock, one second
    resolution on Azure, hence the pauses), not by name or creation: a run re-executed later
    is recent again. A re-executed stage starts from a clean slate; a pruned run's manifest
    is a clear error."""
    staging = Staging(**location, batch_size=2, keep_runs=3)

    def stage(run_id: str, stage: str, count: int):
        writer = staging.writer(stage, run_id)
        for number in range(count):
            writer.write({"run": run_id, "n": number})
        writer.flush()
        return writer.manifest

    manifests = {}
    for run_id in ("run-a", "run-b", "run-c"):
        manifests[run_id] = stage(run_id, "chunks", 3)
        time.sleep(1.1)
    stage("run-a", "embeddings", 1)  # run-a, the first created, is active again: newer than run-b
    again = stage("run-c", "chunks", 1)  # a re-executed step: the earlier batches of that stage go
    assert len(again.paths) == 1
    assert [batch.name for batch in path_of(location, again.paths[0]).parent.iterdir()] == ["batch-00000.jsonl"]
    assert list(staging.read(again)) == [[{"run": "run-c", "n": 0}]]

    staging.prune("run-d", running=lambda run_id: False)  # keeps the two most recently active besides run-d

    assert [record for batch in staging.read(manifests["run-a"]) for record in batch] == [
        {"run": "run-a", "n": n} for n in range(3)]
    with pytest.raises(FileNotFoundError, match="chunks batches of run run-b are gone"):
        next(staging.read(manifests["run-b"]))
    root = path_of(location, location["root"])
    assert sorted(run.name for run in root.iterdir()) == ["run-a", "run-c"]
    staging.prune("run-d", running=lambda run_id: False)  # nothing more to drop
    assert sorted(run.name for run in root.iterdir()) == ["run-a", "run-c"]
    # More runs at once (shards) than kept runs: the running ones stay.
    staging.model_copy(update={"keep_runs": 1}).prune("run-d", running=lambda run_id: run_id == "run-a")
    assert sorted(run.name for run in root.iterdir()) == ["run-a"]
