"""Blob events: parsing both Event Grid schemas, coalescing a batch, and the sensor against real
Azurite queues."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from azure.storage.queue import QueueClient
from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    EnvVar,
    SensorResult,
    build_resources,
    build_sensor_context,
)

from pipelines.blob_events import (
    BlobEvent,
    BlobEventError,
    batch_run_key,
    coalesce,
    parse_message,
    within,
)
from pipelines.blob_sensor import BATCH_TAG, build_blob_event_sensor
from resources.event_queue import AzureStorageQueue
from tests.blob_event_messages import BASE_TIME, CREATED, DELETED, RENAMED, TIER_CHANGED, blob_event, body

ACCOUNT, CONTAINER = "ragdocs", "corpus"
PREFIX = f"az://{ACCOUNT}/{CONTAINER}/"


def uri(blob: str) -> str:
    return PREFIX + blob


def event(event_type: str, blob: str, sequencer: str, event_id: str = "", seconds: int = 0) -> BlobEvent:
    return BlobEvent(event_id or f"{event_type}-{blob}-{sequencer}", event_type, ACCOUNT, CONTAINER, blob,
                     sequencer, datetime.fromtimestamp(BASE_TIME.timestamp() + seconds, UTC))


# Parsing


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "base64"])
def test_parses_a_blob_event_in_either_schema_raw_or_base64(schema, encoded):
    created = blob_event(CREATED, ACCOUNT, CONTAINER, "policies/travel policy.md", 0x2A, schema=schema)
    [parsed] = parse_message(body(created, encoded=encoded))
    assert parsed == BlobEvent(created["id"], CREATED, ACCOUNT, CONTAINER, "policies/travel policy.md",
                               f"{0x2A:032x}", datetime(2026, 11, 30, 12, 0, 42, tzinfo=UTC))
    assert parsed.uri == "az://ragdocs/corpus/policies/travel policy.md"


@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "base64"])
def test_an_array_yields_its_blob_events_in_order_and_skips_other_types(encoded):
    events = [blob_event(CREATED, ACCOUNT, CONTAINER, "a.md", 1),
              blob_event(TIER_CHANGED, ACCOUNT, CONTAINER, "a.md", 2),
              blob_event(DELETED, ACCOUNT, CONTAINER, "b.md", 3, schema="cloudevents")]
    parsed = parse_message(body(events, encoded=encoded))
    assert [(e.type, e.blob) for e in parsed] == [(CREATED, "a.md"), (DELETED, "b.md")]


def test_unrelated_event_types_yield_no_events():
    custom = {"id": "1", "eventType": "Contoso.Orders.Shipped", "subject": "orders/7", "topic": "/x",
              "eventTime": "2026-11-30T12:00:00Z", "data": {}}
    assert parse_message(body(custom)) == []
    assert parse_message(body(blob_event(TIER_CHANGED, ACCOUNT, CONTAINER, "a.md", 1, schema="cloudevents"))) == []
    assert parse_message("[]") == []


def test_a_rename_deletes_the_old_name_and_creates_the_new_one():
    for source_url in (f"https://{ACCOUNT}.dfs.core.windows.net/{CONTAINER}/drafts/old%20name.md",
                       f"http://127.0.0.1:10000/{ACCOUNT}/{CONTAINER}/drafts/old%20name.md"):
        renamed = blob_event(RENAMED, ACCOUNT, CONTAINER, "final/new.md", 9, source_url=source_url)
        parsed = parse_message(body(renamed))
        assert [(e.type, e.uri) for e in parsed] == [(DELETED, uri("drafts/old name.md")),
                                                     (CREATED, uri("final/new.md"))]
        assert len({e.id for e in parsed}) == 2


def _without(event_body: dict, *path: str) -> dict:
    *parents, last = path
    target = event_body
    for key in parents:
        target = target[key]
    del target[last]
    return event_body


@pytest.mark.parametrize(("message", "reason"), [
    ("this is not an event", "neither JSON nor base64-encoded JSON"),
    ("{\"id\": ", "not valid JSON"),
    ("bm90IGpzb24=", "not valid JSON"),  # base64 of "not json"
    ("[1, 2]", "event 0 is a JSON int, not an object"),
    ('{"hello": "world"}', "neither an Event Grid event"),
    (body(_without(blob_event(CREATED, ACCOUNT, CONTAINER, "a.md", 1), "subject")), "subject is missing"),
    (body(_without(blob_event(DELETED, ACCOUNT, CONTAINER, "a.md", 1), "data", "sequencer")),
     "sequencer is missing"),
    (body({**blob_event(CREATED, ACCOUNT, CONTAINER, "a.md", 1), "topic": "/subscriptions/x"}),
     "topic does not name a storage account"),
    (body({**blob_event(CREATED, ACCOUNT, CONTAINER, "a.md", 1), "subject": "/blobServices/default/x"}),
     "subject does not name"),
    (body({**blob_event(CREATED, ACCOUNT, CONTAINER, "a.md", 1), "eventTime": "yesterday"}), "bad sequencer or"),
    (body([blob_event(CREATED, ACCOUNT, CONTAINER, "a.md", 1),
           {**blob_event(CREATED, ACCOUNT, CONTAINER, "b.md", 2), "data": "x"}]), "event 1: data is missing"),
])
def test_a_body_that_is_not_blob_events_raises_with_the_reason(message, reason):
    with pytest.raises(BlobEventError, match=reason):
        parse_message(message)


def test_only_events_under_the_source_prefixes_are_related():
    events = [BlobEvent("1", CREATED, ACCOUNT, CONTAINER, "docs/a.md", "1", BASE_TIME),
              BlobEvent("2", CREATED, ACCOUNT, CONTAINER, "images/a.png", "1", BASE_TIME),
              BlobEvent("3", CREATED, ACCOUNT, "corpus-archive", "docs/a.md", "1", BASE_TIME),
              BlobEvent("4", CREATED, "otheraccount", CONTAINER, "docs/a.md", "1", BASE_TIME)]
    assert [e.id for e in within(events, [uri("docs/")])] == ["1"]
    assert [e.id for e in within(events, [PREFIX])] == ["1", "2"]


# Coalescing and run keys


def test_duplicates_count_once_and_the_newest_event_per_blob_wins():
    created_a = event(CREATED, "a.md", "0a")
    events = [
        created_a, created_a,                                       # a duplicate delivery
        event(DELETED, "b.md", "00000000ff"), event(CREATED, "b.md", "fe"),  # out of order, padded apart
        event(CREATED, "c.md", "1"), event(DELETED, "c.md", "2"),   # created, then deleted
        event(DELETED, "d.md", "5"), event(CREATED, "d.md", "6"),   # deleted, then created again
        event(CREATED, "e.md", "7", seconds=1), event(DELETED, "e.md", "7", seconds=2),  # tie: later time
    ]
    assert coalesce(events) == ([uri("a.md"), uri("d.md")], [uri("b.md"), uri("c.md"), uri("e.md")])
    assert coalesce(reversed(events)) == coalesce(events)
    assert coalesce([]) == ([], [])


def test_the_run_key_depends_only_on_the_distinct_event_ids():
    events = [event(CREATED, "a.md", "1"), event(DELETED, "b.md", "2"), event(CREATED, "c.md", "3")]
    key = batch_run_key(events)
    assert batch_run_key(list(reversed(events))) == key
    assert batch_run_key([*events, events[0]]) == key
    assert batch_run_key(events[:2]) != key
    assert key.startswith("blob-events-")


# The sensor against Azurite queues


@pytest.fixture
def new_queue(azurite, monkeypatch):
    """A fresh queue's resource, reaching Azurite with the connection string through EnvVar as in
    production (settings are given at construction: Dagster initialises a resource from those)."""
    monkeypatch.setenv("RAGPIPE_TEST_QUEUE_CONNECTION", azurite.connection_string)

    def create(**settings) -> AzureStorageQueue:
        resource = AzureStorageQueue(queue_name=f"events-{uuid.uuid4().hex[:12]}",
                                     connection_string=EnvVar("RAGPIPE_TEST_QUEUE_CONNECTION"), **settings)
        client(azurite, resource.queue_name).create_queue()
        return resource

    return create


@pytest.fixture(scope="module")
def ingest_job(tmp_path_factory):
    """The real ingest job, so the requested run config is checked against its schema."""
    from pipelines.definitions import INGEST_JOB, build_definitions
    from pipelines.settings import Settings

    root = tmp_path_factory.mktemp("defs")
    return build_definitions(Settings(data_dir=root / "data", source_dir=root / "corpus")).resolve_job_def(INGEST_JOB)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def client(azurite, name: str) -> QueueClient:
    return QueueClient.from_connection_string(azurite.connection_string, name)


def send(azurite, queue: AzureStorageQueue, *bodies: str) -> None:
    for text in bodies:
        client(azurite, queue.queue_name).send_message(text)


def messages_in(azurite, name: str) -> int:
    """Visible and invisible messages alike."""
    return client(azurite, name).get_queue_properties().approximate_message_count


def poisoned(azurite, queue: AzureStorageQueue) -> list[dict]:
    return [json.loads(m.content) for m in client(azurite, queue.poison_queue).peek_messages(max_messages=32)]


def tick(sensor, queue, instance, cursor: str | None = None) -> SensorResult:
    return sensor(build_sensor_context(instance=instance, cursor=cursor, resources={"event_queue": queue}))


def test_the_sensor_targets_the_given_job_and_reads_the_event_queue_resource(ingest_job):
    sensor = build_blob_event_sensor(ingest_job, [PREFIX], default_status=DefaultSensorStatus.RUNNING,
                                     minimum_interval_seconds=15)
    assert (sensor.name, sensor.job_name, sensor.required_resource_keys) == ("blob_events", "ingest", {"event_queue"})
    assert (sensor.default_status, sensor.minimum_interval_seconds) == (DefaultSensorStatus.RUNNING, 15)
    with pytest.raises(ValueError, match="at least one source URI prefix"):
        build_blob_event_sensor(ingest_job, [])


def test_a_batch_is_one_targeted_run_request_and_its_messages_go_on_the_next_tick(
        azurite, new_queue, ingest_job, instance):
    queue = new_queue()
    sensor = build_blob_event_sensor(ingest_job, [PREFIX], batch_size=20)
    created_a = blob_event(CREATED, ACCOUNT, CONTAINER, "a.md", 10)
    send(azurite, queue,
         body(created_a),
         body(blob_event(CREATED, ACCOUNT, CONTAINER, "b.md", 12, schema="cloudevents"), encoded=True),
         body(blob_event(CREATED, ACCOUNT, CONTAINER, "c.md", 30)),                 # newer, delivered first
         body(blob_event(DELETED, ACCOUNT, CONTAINER, "c.md", 20), encoded=True),  # older, delivered second
         body(blob_event(DELETED, ACCOUNT, CONTAINER, "d.md", 40, schema="cloudevents")),
         body(created_a, encoded=True),                                            # duplicate delivery
         "<not an event>",
         body(blob_event(TIER_CHANGED, ACCOUNT, CONTAINER, "a.md", 50)),
         body(blob_event(CREATED, ACCOUNT, "other", "x.md", 60)))

    first = tick(sensor, queue, instance)

    [request] = first.run_requests
    assert request.run_config["ops"]["raw_documents"]["config"] == {
        "upsert": [uri("a.md"), uri("b.md"), uri("c.md")], "delete": [uri("d.md")]}
    assert {key: value for key, value in request.tags.items() if key.startswith("ragpipe/")} == {
        "ragpipe/messages": "9", "ragpipe/poisoned": "1", "ragpipe/unrelated": "2", "ragpipe/events": "5",
        "ragpipe/upserts": "3", "ragpipe/deletes": "1", BATCH_TAG: request.run_key}
    [garbage] = poisoned(azurite, queue)
    assert garbage["body"] == "<not an event>" and garbage["dequeue_count"] == 1
    assert garbage["reason"].startswith("unparseable: body is neither JSON nor base64-encoded JSON")
    assert messages_in(azurite, queue.queue_name) == 6, "the batch's messages stay until the request is recorded"
    run = instance.create_run_for_job(ingest_job, run_config=request.run_config,
                                      tags=request.tags)
    assert run.run_config["ops"]["raw_documents"]["config"]["delete"] == [uri("d.md")]

    second = tick(sensor, queue, instance, first.cursor)

    assert not second.run_requests
    assert second.skip_reason.skip_message == "no blob changes: 0 messages, 0 poisoned, 0 unrelated, 0 events"
    assert messages_in(azurite, queue.queue_name) == 0
    assert second.cursor == "[]"


def test_unrelated_events_are_acknowledged_at_once_and_counted(azurite, new_queue, instance, ingest_job):
    queue = new_queue()
    sensor = build_blob_event_sensor(ingest_job, [uri("docs/")])
    send(azurite, queue,
         body(blob_event(CREATED, ACCOUNT, CONTAINER, "images/a.png", 1)),
         body(blob_event(TIER_CHANGED, ACCOUNT, CONTAINER, "docs/a.md", 2), encoded=True),
         body({"specversion": "1.0", "id": "7", "type": "Contoso.Ping", "source": "/contoso", "data": {}}))

    result = tick(sensor, queue, instance)

    assert not result.run_requests
    assert result.skip_reason.skip_message == "no blob changes: 3 messages, 0 poisoned, 3 unrelated, 0 events"
    assert messages_in(azurite, queue.queue_name) == 0


def test_a_message_dequeued_too_often_goes_to_the_poison_queue(azurite, new_queue, instance, ingest_job):
    queue = new_queue(max_dequeue_count=1, visibility_timeout_s=1)
    sensor = build_blob_event_sensor(ingest_job, [PREFIX])
    send(azurite, queue, body(blob_event(CREATED, ACCOUNT, CONTAINER, "a.md", 1)))
    with build_resources({"event_queue": queue}) as resources:
        assert len(resources.event_queue.receive(5)) == 1  # a tick that died before it could request the run
    time.sleep(1.5)

    result = tick(sensor, queue, instance)

    assert not result.run_requests
    [record] = poisoned(azurite, queue)
    assert record["reason"] == "dequeued 2 times (max_dequeue_count 1)" and record["dequeue_count"] == 2
    assert parse_message(record["body"])[0].uri == uri("a.md")
    assert messages_in(azurite, queue.queue_name) == 0


def test_a_replayed_batch_launches_nothing_once_its_run_exists(azurite, new_queue, instance, ingest_job):
    queue = new_queue()
    sensor = build_blob_event_sensor(ingest_job, [PREFIX])
    events = [blob_event(CREATED, ACCOUNT, CONTAINER, "a.md", 1), blob_event(DELETED, ACCOUNT, CONTAINER, "b.md", 2)]
    send(azurite, queue, *(body(e) for e in events))
    first = tick(sensor, queue, instance)
    [request] = first.run_requests
    instance.create_run_for_job(ingest_job, run_config=request.run_config, tags=request.tags)
    tick(sensor, queue, instance, first.cursor)
    assert messages_in(azurite, queue.queue_name) == 0

    # Event Grid delivers the same events again: other messages, another order, one array.
    send(azurite, queue, body(list(reversed(events)), encoded=True))
    replay = tick(sensor, queue, instance)

    assert not replay.run_requests
    assert replay.skip_reason.skip_message.startswith(f"replayed batch {request.run_key} already has a run")
    assert messages_in(azurite, queue.queue_name) == 0
    assert replay.cursor == "[]"


def test_deleting_a_message_twice_or_with_a_stale_receipt_is_not_an_error(azurite, new_queue):
    queue = new_queue(visibility_timeout_s=1)
    send(azurite, queue, "x")
    with build_resources({"event_queue": queue}) as resources:
        opened = resources.event_queue
        [stale] = opened.receive(1)
        time.sleep(1.5)
        [current] = opened.receive(1)
        opened.delete(stale.receipt)  # received again since: the receipt no longer matches
        assert messages_in(azurite, queue.queue_name) == 1
        opened.delete(current.receipt)
        opened.delete(current.receipt)
    assert messages_in(azurite, queue.queue_name) == 0
