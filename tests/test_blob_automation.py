"""The index follows a Blob container by itself: Event Grid messages on a real Storage Queue
(Azurite) drive the Blob-event sensor, whose targeted run leaves the index and the ledger
exactly as a full reconcile of the same container would; replays launch nothing; a targeted
run never lists the container and downloads only the blobs it names."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient
from dagster import DagsterInstance, EnvVar, RunRequest, build_sensor_context

from pipelines.cli import run_ingest, summarize
from pipelines.definitions import INGEST_JOB, build_definitions, build_resources
from pipelines.settings import Settings
from resources.blob_source import AzureBlobSource, blob_uri
from resources.event_queue import AzureStorageQueue
from tests.azurite import ACCOUNT, counted_sdk_calls
from tests.blob_event_messages import CREATED, DELETED, TIER_CHANGED, blob_event, body
from tests.corpus import prose

STORAGE_ENV = "RAGPIPE_TEST_STORAGE_CONNECTION_STRING"


def _document(seed: int) -> bytes:
    return f"# Procedure {seed}\n\n{prose(seed, 6)}\n".encode()


@pytest.fixture
def storage(azurite, monkeypatch):
    """A container of 50 documents and an empty event queue, reached through EnvVar as in production."""
    monkeypatch.setenv(STORAGE_ENV, azurite.connection_string)
    name = f"kb-{uuid.uuid4().hex[:10]}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container(name)
    for seed in range(50):
        container.upload_blob(f"docs/doc-{seed:02}.md", _document(seed))
    queue = QueueClient.from_connection_string(azurite.connection_string, f"events-{uuid.uuid4().hex[:10]}")
    queue.create_queue()
    yield container, queue
    service.close()


def _source(container: ContainerClient) -> AzureBlobSource:
    return AzureBlobSource(container=container.container_name, connection_string=EnvVar(STORAGE_ENV))


def _event_queue(queue: QueueClient) -> AzureStorageQueue:
    return AzureStorageQueue(queue_name=queue.queue_name, connection_string=EnvVar(STORAGE_ENV),
                             visibility_timeout_s=120)


def _index(settings: Settings) -> tuple[dict[str, dict], dict[str, tuple]]:
    """Every point's payload by id, and every live ledger row's state by source."""
    resources = build_resources(settings)
    store, ledger = resources["vector_store"], resources["ledger"]
    try:
        (version,) = ledger.status_counts()
        points = dict(store.payloads(f"{settings.collection}__{version}"))
        rows = {source: (row.status, row.doc_id, row.version, row.indexed_doc_id, row.chunk_count)
                for source, row in ledger.rows(version).items() if row.status != "deleted"}
        return points, rows
    finally:
        store.close()


@pytest.fixture
def sdk_calls() -> Iterator[Counter]:
    with counted_sdk_calls() as calls:
        yield calls


def test_blob_events_bring_the_index_to_what_a_full_reconcile_gives(azurite, storage, tmp_path, sdk_calls):
    container, queue = storage
    source, event_queue = _source(container), _event_queue(queue)
    settings = Settings(data_dir=tmp_path / "events")
    first = run_ingest(settings, {"source": source})
    assert first["success"] and first["documents"]["new"] == 50

    sdk_calls.clear()
    unchanged = run_ingest(settings, {"source": source})
    assert unchanged["documents"]["unchanged"] == 50 and unchanged["source_bytes_read"] == 0
    assert sdk_calls["download_blob"] == 0 and sdk_calls["list_blobs"] == 1

    # 3 modified (doc-02 by delete and re-upload), 2 deleted, 2 created.
    for seed in (0, 1):
        container.upload_blob(f"docs/doc-{seed:02}.md", _document(100 + seed), overwrite=True)
    container.delete_blob("docs/doc-02.md")
    container.upload_blob("docs/doc-02.md", _document(102))
    for seed in (3, 4):
        container.delete_blob(f"docs/doc-{seed:02}.md")
    for seed in (0, 1):
        container.upload_blob(f"docs/new-{seed}.md", _document(200 + seed))

    def event(kind, blob, sequence, **options):
        return blob_event(kind, ACCOUNT, container.container_name, blob, sequence, **options)

    modified = [event(CREATED, "docs/doc-00.md", 10), event(CREATED, "docs/doc-01.md", 11, schema="cloudevents")]
    messages = [body(modified[0]), body(modified[1], encoded=True),
                body(modified[0]),  # a duplicate delivery of the same event
                # an out-of-order pair: the re-upload arrives before the delete it follows
                body(event(CREATED, "docs/doc-02.md", 13)), body(event(DELETED, "docs/doc-02.md", 12)),
                body([event(DELETED, "docs/doc-03.md", 14), event(DELETED, "docs/doc-04.md", 15)]),
                body(event(CREATED, "docs/new-0.md", 16)), body(event(CREATED, "docs/new-1.md", 17), encoded=True),
                "this is not an Event Grid message {",
                body(event(TIER_CHANGED, "docs/doc-10.md", 18))]
    for message in messages:
        queue.send_message(message)

    definitions = build_definitions(settings, {"source": source, "event_queue": event_queue})
    sensor = definitions.get_sensor_def("blob_events")
    job = definitions.resolve_job_def(INGEST_JOB)
    with DagsterInstance.ephemeral() as instance:
        def tick(cursor=None):
            context = build_sensor_context(instance=instance, cursor=cursor, resources={"event_queue": event_queue})
            result = sensor.evaluate_tick(context)
            return result.run_requests, result.cursor, result.skip_message

        (request,), cursor, _ = tick()
        assert isinstance(request, RunRequest)
        uri = {name: blob_uri(ACCOUNT, container.container_name, f"docs/{name}.md")
               for name in ("doc-00", "doc-01", "doc-02", "doc-03", "doc-04", "new-0", "new-1")}
        targets = request.run_config["ops"]["raw_documents"]["config"]
        assert targets == {"upsert": sorted(uri[n] for n in ("doc-00", "doc-01", "doc-02", "new-0", "new-1")),
                           "delete": sorted(uri[n] for n in ("doc-03", "doc-04"))}

        sdk_calls.clear()
        result = job.execute_in_process(run_config=request.run_config, instance=instance,
                                        tags={**request.tags, "dagster/run_key": request.run_key},
                                        raise_on_error=False)
        summary = summarize(result, 0)
        assert summary["success"] and summary["mode"] == "targeted"
        docs = summary["documents"]
        assert (docs["changed"], docs["new"], docs["deleted"], docs["unchanged"]) == (3, 2, 2, 0)
        assert sdk_calls["list_blobs"] == 0 and sdk_calls["download_blob"] == 5
        assert all(sdk_calls[f"download_blob:docs/{n}.md"] == 1 for n in ("doc-00", "doc-01", "doc-02", "new-0", "new-1"))

        # The next tick deletes the batch's messages now that its run is recorded.
        assert tick(cursor)[0] == []
        assert queue.peek_messages(max_messages=32) == []
        poison = QueueClient.from_connection_string(azurite.connection_string, f"{queue.queue_name}-poison")
        poisoned = [json.loads(m.content) for m in poison.peek_messages(max_messages=32)]
        assert [p["body"] for p in poisoned] == ["this is not an Event Grid message {"]
        assert poisoned[0]["reason"].startswith("unparseable")

        # A replay of the same events launches nothing, and its messages are removed.
        for message in messages[:-2]:
            queue.send_message(message)
        requests, cursor, skipped = tick()
        assert requests == [] and "already has a run" in skipped
        assert queue.peek_messages(max_messages=32) == []

    reconciled = Settings(data_dir=tmp_path / "full")
    assert run_ingest(reconciled, {"source": source})["success"]
    followed_points, followed_rows = _index(settings)
    reconciled_points, reconciled_rows = _index(reconciled)
    assert followed_rows == reconciled_rows and len(followed_rows) == 50
    assert followed_points == reconciled_points

