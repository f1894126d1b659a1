"""Shards (RAGPIPE_SHARDS): the bucket and shard mapping, the ledger's shard scopes and its
migration, the automation's per-shard requests, promotion of complete candidates only, and the
proof that matters: sharded runs, in any order and at once against one Postgres ledger and one
store, leave exactly the index (point ids and payloads) and ledger of one unsharded run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, RunRequest, build_schedule_context, build_sensor_context, validate_run_config

from assets.evaluation.candidate import IncompleteCandidate, candidate_of, check_complete
from core.shards import BUCKETS, ShardRange, bucket_of, by_shard, shard_of, shard_ranges, uncovered
from core.types import LeaseHeld, LedgerRow, Manifest
from pipelines.cli import run_ingest, run_promote
from pipelines.definitions import INGEST_JOB, PRODUCTION_JOB, build_definitions, build_resources
from pipelines.instance import COLLECTION_TAG
from pipelines.settings import Settings
from pipelines.sharding import shard_requests
from resources.ledger import Ledger
from resources.sources import LocalFolderSource
from tests.conftest import EVERY_STORE, store_settings
from tests.corpus import prose
from tests.qdrant_server import qdrant_contract_server
from tests.test_cli import RAGPIPE

FOUR = [shard.key for shard in shard_ranges(4)]
URIS = [f"file:///corpus/folder-{n % 7}/doc-{n}.txt" for n in range(400)]


# -- buckets and shards -------------------------------------------------------------------

def test_buckets_are_the_same_in_every_process_whatever_the_hash_seed():
    script = "import json, sys; from core.shards import bucket_of; print(json.dumps([bucket_of(u) for u in sys.argv[1:]]))"
    expected = [bucket_of(uri) for uri in URIS[:50]]
    for seed in ("0", "1", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(Path(__file__).parent.parent)}
        out = subprocess.run([sys.executable, "-c", script, *URIS[:50]], env=env, capture_output=True, text=True,
                             check=True).stdout
        assert json.loads(out) == expected
    # Pinned: stored payloads and ledger rows hold these, so the function may never change.
    assert (bucket_of("file:///corpus/a.md"), bucket_of("az://account/container/b.pdf")) == (21889, 33562)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16, 256])
def test_shard_ranges_partition_the_bucket_space(count):
    ranges = shard_ranges(count)
    assert ranges[0].lo == 0 and ranges[-1].hi == BUCKETS
    assert all(a.hi == b.lo for a, b in pairwise(ranges))  # contiguous, no overlap
    assert max(r.hi - r.lo for r in ranges) - min(r.hi - r.lo for r in ranges) <= 1
    assert [ShardRange.from_key(r.key) for r in ranges] == ranges
    for uri in URIS:
        owners = [r for r in ranges if r.holds(uri)]
        assert owners == [shard_of(uri, count)]
    groups = by_shard(URIS, count)
    assert sorted(u for uris in groups.values() for u in uris) == sorted(URIS)
    assert uncovered(ranges) == [] and uncovered(ranges[1:]) == ([ranges[0]] if count > 1 else [ShardRange()])


def test_any_shard_counts_together_cover_the_space_once_every_range_is_done():
    halves, quarters = shard_ranges(2), shard_ranges(4)
    assert uncovered([halves[0], quarters[2]]) == [quarters[3]]
    assert uncovered([halves[0], quarters[3], quarters[2]]) == []
    assert ShardRange.spanning(quarters[1], quarters[2]) == ShardRange(quarters[1].lo, quarters[2].hi)
    with pytest.raises(ValueError, match="not a shard key"):
        ShardRange.from_key("first")


def test_requests_split_by_shard():
    [whole] = shard_requests(1, "k", {"t": "1"})
    assert whole.partition_key is None and not whole.run_config
    full = shard_requests(4, "k", {"t": "1"})
    assert [r.partition_key for r in full] == FOUR and len({r.run_key for r in full}) == 4
    upsert, delete = URIS[:9], URIS[9:12]
    targeted = shard_requests(4, "k", {}, upsert, delete)
    for request in targeted:
        config = request.run_config["ops"]["raw_documents"]["config"]
        shard = ShardRange.from_key(request.partition_key)
        assert all(shard.holds(u) for u in config["upsert"] + config["delete"])
        assert set(config["delete"]) <= set(delete)
    named = [u for r in targeted for part in r.run_config["ops"]["raw_documents"]["config"].values() for u in part]
    assert sorted(named) == sorted(upsert + delete)


def test_candidate_is_complete_only_when_every_bucket_completed():
    shard_outputs = {key: Manifest("vector_index", "r", extra={"collection": "k__v1", "index_version": "v1"})
                     for key in FOUR}
    candidate = candidate_of(shard_outputs)
    assert candidate == {"collection": "k__v1", "index_version": "v1"}
    check_complete(candidate, shard_ranges(4))
    with pytest.raises(IncompleteCandidate, match="buckets 16384-32767 has completed"):
        check_complete(candidate, [r for r in shard_ranges(4) if r.key != FOUR[1]])
    shard_outputs[FOUR[2]] = Manifest("vector_index", "r", extra={"collection": "k__v0", "index_version": "v0"})
    with pytest.raises(IncompleteCandidate, match="wrote 2 collections"):
        candidate_of(shard_outputs)


# -- the ledger -----------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return request.getfixturevalue("postgres_url")


def test_a_ledger_from_before_shards_gains_buckets(ledger_url):
    """The table as earlier releases created it (no bucket column), with rows: opening it
    adds the column and its index and fills every row's bucket."""
    engine = sa.create_engine(ledger_url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "CREATE TABLE documents (index_version VARCHAR(64) NOT NULL, source VARCHAR(2048) NOT NULL, "
            "doc_id VARCHAR(64), version VARCHAR(256), status VARCHAR(16) NOT NULL, reason TEXT, "
            "indexed_doc_id VARCHAR(64), chunk_count INTEGER NOT NULL, run_id VARCHAR(64), "
            "first_seen_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL, PRIMARY KEY (index_version, source))"))
        for uri in URIS[:40]:
            connection.execute(sa.text(
                "INSERT INTO documents VALUES ('v1', :s, 'd', 'm', 'indexed', NULL, 'd', 2, 'r', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"s": uri})
    engine.dispose()
    ledger = Ledger(url=ledger_url)
    with ledger.engine().connect() as connection:
        buckets = dict(connection.execute(sa.text("SELECT source, bucket FROM documents")).all())
        indexes = {index["name"] for index in sa.inspect(connection).get_indexes("documents")}
    assert buckets == {uri: bucket_of(uri) for uri in URIS[:40]}
    assert "ix_documents_version_bucket" in indexes
    shard = shard_ranges(4)[1]
    assert {row.source for row in ledger.iter_rows("v1", shard)} == {u for u in URIS[:40] if shard.holds(u)}
    assert ledger.indexed_point_count("v1", shard) == 2 * sum(shard.holds(u) for u in URIS[:40])
    assert ledger.indexed_point_count("v1") == 80
    Ledger(url=ledger_url).engine()  # opening it again changes nothing


def never_finished(run_id: str) -> bool:
    return False


def test_shards_of_a_collection_write_at_once_and_one_shard_once(ledger_url):
    ledger = Ledger(url=ledger_url)
    first, second = shard_ranges(4)[:2]
    assert ledger.acquire_lease("k__v1", "run-a", 0, never_finished, first).holder == "run-a"
    assert ledger.acquire_lease("k__v1", "run-b", 0, never_finished, second).holder == "run-b"
    with pytest.raises(LeaseHeld, match="run-a"):
        ledger.acquire_lease("k__v1", "run-c", 0, never_finished, first)
    ledger.release_lease("k__v1", "run-a", first)
    assert ledger.acquire_lease("k__v1", "run-c", 0, never_finished, first).holder == "run-c"


def test_a_shard_manifest_is_stale_only_after_an_overlapping_index_stage(ledger_url):
    ledger = Ledger(url=ledger_url)
    quarters, halves = shard_ranges(4), shard_ranges(2)
    ledger.advance_generation("v1", quarters[0])
    assert [ledger.generation("v1", q) for q in quarters] == [1, 0, 0, 0]
    ledger.advance_generation("v1", halves[1])  # another shard count: it overlaps quarters 2 and 3
    assert [ledger.generation("v1", q) for q in quarters] == [1, 0, 1, 1]
    ledger.advance_generation("v1")  # an unsharded run overlaps everything
    assert [ledger.generation("v1", q) for q in quarters] == [2, 1, 2, 2] and ledger.generation("v1") == 3
    ledger.mark_complete("v1", quarters[3], "r1")
    ledger.mark_complete("v1", halves[0], "r2")
    assert sorted(ledger.completed("v1")) == [halves[0], quarters[3]] and ledger.completed("v2") == []
    ledger.record("v1", [LedgerRow(source=u, status="indexed", doc_id="d", indexed_doc_id="d", chunk_count=1)
                         for u in URIS[:20]])
    assert ledger.indexed_point_count("v1", quarters[0]) == sum(quarters[0].holds(u) for u in URIS[:20])


# -- automation -----------------------------------------------------------------------------

def test_the_folder_watcher_and_schedules_request_shards(tmp_path):
    corpus = write_small_corpus(tmp_path / "corpus", 40)
    settings = Settings(data_dir=tmp_path / "data", source_dir=corpus, shards=4, reconcile_cron="0 2 * * *")
    definitions = build_definitions(settings)
    job = definitions.resolve_job_def(INGEST_JOB)
    sensor = definitions.get_sensor_def("folder_watcher")
    source = LocalFolderSource(root=str(corpus))

    context = build_sensor_context(resources={"source": source})
    full = sensor(context)
    assert [r.partition_key for r in full] == FOUR and not any(r.run_config for r in full)
    edited, removed = doc_path(corpus, 3), doc_path(corpus, 10)
    edited.write_text(prose(999, 2), encoding="utf-8")
    removed.unlink()
    targeted = sensor(build_sensor_context(cursor=context.cursor, resources={"source": source}))
    configs = {r.partition_key: r.run_config["ops"]["raw_documents"]["config"] for r in targeted}
    expected: dict[str, dict[str, list[str]]] = {}
    for uri, kind in ((edited.as_uri(), "upsert"), (removed.as_uri(), "delete")):
        expected.setdefault(shard_of(uri, 4).key, {"upsert": [], "delete": []})[kind].append(uri)
    assert configs == expected
    for request in targeted:
        validate_run_config(job, request.run_config)  # raises when the config does not fit the job

    [schedule] = definitions.schedules
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(instance=instance, repository_def=definitions.get_repository_def(),
                                         scheduled_execution_time=datetime(2026, 12, 1, 2, tzinfo=UTC))
        requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == FOUR
    resolved = RunRequest(partition_key=FOUR[2]).with_resolved_tags_and_config(job, [], None)
    assert resolved.tags[COLLECTION_TAG] == f"{settings.collection}/{FOUR[2]}"  # the queue's unit: one shard


# -- end to end -----------------------------------------------------------------------------

def doc_path(root: Path, n: int) -> Path:
    return root / "abcdefg"[n % 7] / f"doc-{n}.txt"


def write_small_corpus(root: Path, count: int) -> Path:
    """Tiny documents (one chunk each), distinct enough that none is a near-duplicate of another."""
    for n in range(count):
        doc_path(root, n).parent.mkdir(parents=True, exist_ok=True)
        doc_path(root, n).write_text(f"Record {n} of the depot ledger.\n\n{prose(n, 2)}\n", encoding="utf-8")
    return root.resolve()


def index_of(settings: Settings, collection: str) -> tuple[dict, dict]:
    """Every point's payload by id, and every ledger row's facts by source."""
    resources = build_resources(settings)
    store, ledger = resources["vector_store"], resources["ledger"]
    try:
        points = dict(store.payloads(collection))
        rows = {row.source: (row.status, row.doc_id, row.indexed_doc_id, row.chunk_count)
                for row in ledger.iter_rows(collection.rsplit("__", 1)[1])}
        return points, rows
    finally:
        store.close()


def change_corpus(corpus: Path) -> None:
    """Four edits, three deletions, one new document."""
    for n in (1, 2, 50, 99):
        doc_path(corpus, n).write_text(f"Revised record {n}.\n\n{prose(n + 5000, 2)}\n", encoding="utf-8")
    for n in (3, 77, 150):
        doc_path(corpus, n).unlink()
    (corpus / "h").mkdir()
    (corpus / "h" / "added.txt").write_text(f"An added record.\n\n{prose(7777, 2)}\n", encoding="utf-8")


def assert_same_index(reference: tuple[dict, dict], sharded: tuple[dict, dict], documents: int) -> None:
    points, rows = sharded
    assert len(rows) >= documents and len(points) == sum(count for *_, count in rows.values())
    assert set(points) == set(reference[0])
    assert points == reference[0]  # ids and payloads, buckets included
    assert rows == reference[1]
    assert not any("near_duplicate_of" in payload for payload in points.values())


@EVERY_STORE
def test_shards_in_any_order_leave_the_index_of_one_unsharded_run(tmp_path, vector_backend, request):
    """Shard by shard in process (the CLI's way), then after edits and deletions in the
    reverse order: every time the sharded collection equals the unsharded one's."""
    corpus = write_small_corpus(tmp_path / "corpus", 200)
    store = store_settings(vector_backend, request)
    reference = Settings(data_dir=tmp_path / "one", source_dir=corpus, collection="unsharded", **store)
    sharded = Settings(data_dir=tmp_path / "four", source_dir=corpus, collection="sharded", shards=4, **store)

    one, four = run_ingest(reference), run_ingest(sharded)
    assert one["success"] and four["success"], one["errors"] + four["errors"]
    assert list(four["shards"]) == FOUR and four["documents"]["new"] == one["documents"]["new"] == 200
    assert four["points"] == one["points"] == 200
    assert_same_index(index_of(reference, one["collection"]), index_of(sharded, four["collection"]), 200)

    change_corpus(corpus)
    one = run_ingest(reference)
    runs = [run_ingest(sharded, shards=[key]) for key in reversed(FOUR)]
    assert all(run["success"] for run in runs)
    assert sum(run["documents"]["deleted"] for run in runs) == one["documents"]["deleted"] == 3
    assert sum(run["documents"]["changed"] for run in runs) == one["documents"]["changed"] == 4
    assert_same_index(index_of(reference, one["collection"]), index_of(sharded, four["collection"]), 198)


def start_shard(key: str, corpus: Path, data: Path, env: dict[str, str]) -> subprocess.Popen:
    command = [RAGPIPE, "ingest", "--source", str(corpus), "--data-dir", str(data), "--shard", key, "--json"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def finish_all(processes: list[subprocess.Popen]) -> list[dict]:
    summaries = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        summaries.append(json.loads(stdout))
    return summaries


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")  # see test_qdrant_server_mode
def test_four_shards_at_once_on_one_postgres_ledger_and_one_store(tmp_path, postgres_url):
    """Four `ragpipe ingest --shard` processes started together (four Dagster instances) share
    a Postgres ledger and a Qdrant server (the contract server): their runs overlap in time
    without waiting for one another (RAGPIPE_WRITER_WAIT=0: a shard blocked by another's lease
    would fail) and leave the unsharded run's index and ledger; after edits and deletions, the
    shards at once again in another order, and again the same index."""
    corpus = write_small_corpus(tmp_path / "corpus", 200)
    reference = Settings(data_dir=tmp_path / "one", source_dir=corpus)
    with qdrant_contract_server() as (qdrant_url, _):
        env = {"RAGPIPE_LEDGER_URL": postgres_url, "RAGPIPE_QDRANT_URL": qdrant_url, "RAGPIPE_SHARDS": "4",
               "RAGPIPE_WRITER_WAIT": "0"}  # a run that waited for another shard would fail: none may
        sharded = Settings(data_dir=tmp_path / "shard-0", source_dir=corpus, ledger_url=postgres_url,
                           qdrant_url=qdrant_url, shards=4)
        for round_ in ("first", "after changes"):
            if round_ == "after changes":
                change_corpus(corpus)
            keys = FOUR if round_ == "first" else list(reversed(FOUR))
            summaries = finish_all([start_shard(key, corpus, tmp_path / f"shard-{n}", env)
                                    for n, key in enumerate(keys)])
            one = run_ingest(reference)
            assert one["success"], one["errors"]
            files = by_shard([path.as_uri() for path in corpus.rglob("*.txt")], 4)
            classified = ("new", "changed", "unchanged")
            assert [sum(s["documents"][c] for c in classified) for s in summaries] == [
                len(files[ShardRange.from_key(key)]) for key in keys]  # each shard looked at its own only
            assert sum(s["documents"]["deleted"] for s in summaries) == one["documents"]["deleted"]
            assert_same_index(index_of(reference, one["collection"]), index_of(sharded, summaries[0]["collection"]),
                              sum(map(len, files.values())))
            spans = sorted(run_span(tmp_path / f"shard-{n}", s["run_id"]) for n, s in enumerate(summaries))
            assert any(later[0] < earlier[1] for earlier, later in pairwise(spans)), f"no two shards overlapped: {spans}"


def run_span(data_dir: Path, run_id: str) -> tuple[float, float]:
    """When a run started and ended, from its Dagster instance's run storage."""
    with DagsterInstance.from_config(str(data_dir / "dagster")) as instance:
        record = instance.get_run_record_by_id(run_id)
        return record.start_time, record.end_time



def test_promotion_waits_for_every_shard_whatever_the_order(tmp_path):
    """Three of four shards ingested: the production job refuses to score (and so to promote)
    the candidate, naming the missing buckets; once the last shard has run, it is scored and
    promoted. The sample corpus with its golden set, on the retrieval tier."""
    from pipelines.cli import summarize

    settings = Settings(data_dir=tmp_path / "data", shards=4)
    first = run_ingest(settings, shards=[FOUR[3], FOUR[0], FOUR[2]])
    assert first["success"], first["errors"]
    job = build_definitions(settings).resolve_job_def(PRODUCTION_JOB)
    with DagsterInstance.ephemeral() as instance:
        incomplete = summarize(job.execute_in_process(instance=instance, raise_on_error=False), 0)
    assert not incomplete["success"]
    assert any(f"no full reconcile of buckets {FOUR[1]} has completed" in error for error in incomplete["errors"])
    store = build_resources(settings)["vector_store"]
    try:
        assert store.alias_target(settings.collection) is None
    finally:
        store.close()

    report = run_promote(settings)  # every shard (three of them unchanged), then the score
    assert report["ingest"]["documents"]["unchanged"] == first["documents"]["new"]
    assert report["gate_passed"] and report["promotion"]["collection"] == first["collection"], report["evaluation"]
