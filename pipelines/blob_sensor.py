"""The sensor on Blob events: Event Grid writes them to a Storage Queue; each tick turns a batch
into one targeted ingest run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from dagster import (
    DefaultSensorStatus,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from pipelines.blob_events import BlobEvent, BlobEventError, batch_run_key, coalesce, parse_message, unique, within
from pipelines.sharding import shard_requests
from resources.event_queue import AzureStorageQueue, QueueMessage, Receipt

# The tag every run of a batch carries (with shards, a batch becomes one run per shard).
BATCH_TAG = "ragpipe/event_batch"


@dataclass
class Triage:
    """A received batch sorted by what happens to each message."""

    poison: list[tuple[QueueMessage, str]] = field(default_factory=list)
    unrelated: list[QueueMessage] = field(default_factory=list)
    related: list[QueueMessage] = field(default_factory=list)
    events: list[BlobEvent] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"messages": len(self.poison) + len(self.unrelated) + len(self.related),
                "poisoned": len(self.poison), "unrelated": len(self.unrelated),
                "events": len(unique(self.events))}


def triage(messages: Sequence[QueueMessage], uri_prefixes: Sequence[str], max_dequeue_count: int) -> Triage:
    """Poison what was dequeued too often or cannot be parsed; a message with no event about a
    blob under the prefixes is unrelated; the rest, with their events, make the batch."""
    batch = Triage()
    for message in messages:
        if message.dequeue_count > max_dequeue_count:
            reason = f"dequeued {message.dequeue_count} times (max_dequeue_count {max_dequeue_count})"
            batch.poison.append((message, reason))
            continue
        try:
            events = within(parse_message(message.body), uri_prefixes)
        except BlobEventError as error:
            batch.poison.append((message, f"unparseable: {error}"))
            continue
        if events:
            batch.related.append(message)
            batch.events.extend(events)
        else:
            batch.unrelated.append(message)
    return batch


def receipts_cursor(messages: Sequence[QueueMessage]) -> str:
    return json.dumps([[message.id, message.pop_receipt] for message in messages])


def cursor_receipts(cursor: str | None) -> list[Receipt]:
    return [Receipt(message_id, pop_receipt) for message_id, pop_receipt in json.loads(cursor or "[]")]


def build_blob_event_sensor(
    job,
    source_uri_prefixes: Sequence[str],
    *,
    name: str = "blob_events",
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    batch_size: int = 32,
    minimum_interval_seconds: int = 30,
    shards: int = 1,
) -> SensorDefinition:
    """A sensor that requests one targeted run of ``job`` per batch of blob events about
    blobs under ``source_uri_prefixes`` (``az://<account>/<container>/<prefix>``), reading
    the queue through the ``event_queue`` resource (an ``AzureStorageQueue``); with ``shards``,
    one run per shard that the batch's blobs fall in, each naming only its own blobs.

    A batch's messages are deleted by the tick after the one that requested its run, so only
    once the request is recorded (the cursor holds their receipts); the run key is the batch's
    event ids, so a replay whose run already exists launches nothing and is deleted.
    """
    prefixes = tuple(source_uri_prefixes)
    if not prefixes:
        raise ValueError("a blob event sensor needs at least one source URI prefix")

    @sensor(name=name, job=job, default_status=default_status, minimum_interval_seconds=minimum_interval_seconds,
            description=f"Targeted runs of {job.name} from Blob events (Event Grid via a Storage Queue) "
                        f"about {', '.join(prefixes)}.")
    def blob_event_sensor(context: SensorEvaluationContext, event_queue: AzureStorageQueue) -> SensorResult:
        for receipt in cursor_receipts(context.cursor):
            event_queue.delete(receipt)
        batch = triage(event_queue.receive(batch_size), prefixes, event_queue.max_dequeue_count)
        for message, reason in batch.poison:
            event_queue.to_poison(message, reason)
        for message in batch.unrelated:
            event_queue.delete(message.receipt)
        counts = batch.counts()
        summary = ", ".join(f"{count} {label}" for label, count in counts.items())
        if not batch.related:
            return SensorResult(skip_reason=f"no blob changes: {summary}", cursor="[]")
        run_key = batch_run_key(batch.events)
        if context.instance.get_runs(RunsFilter(tags={BATCH_TAG: run_key}), limit=1):
            for message in batch.related:
                event_queue.delete(message.receipt)
            return SensorResult(skip_reason=f"replayed batch {run_key} already has a run: {summary}", cursor="[]")
        upsert, delete = coalesce(batch.events)
        context.log.info(f"blob events: {summary}; run {run_key}: {len(upsert)} upserts, {len(delete)} deletes")
        tags = {f"ragpipe/{label}": str(count) for label, count in counts.items()}
        tags.update({"ragpipe/upserts": str(len(upsert)), "ragpipe/deletes": str(len(delete)), BATCH_TAG: run_key})
        return SensorResult(run_requests=shard_requests(shards, run_key, tags, upsert, delete),
                            cursor=receipts_cursor(batch.related))

    return blob_event_sensor
