"""Blob events as Event Grid writes them to a Storage Queue, turned into one targeted run (no I/O).

A queue message body holds one event or an array of them, in the Event Grid schema or as
CloudEvents 1.0, as raw JSON or base64-encoded JSON (Event Grid has written both over time).
BlobCreated and BlobDeleted become ``BlobEvent``s; a BlobRenamed (hierarchical namespace
accounts) becomes a delete of the old name and a create of the new one; every other event
type yields nothing. A body that is not blob events raises ``BlobEventError`` with the reason,
which the sensor records on the poison queue.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote, urlparse

from resources.blob_source import blob_uri

CREATED = "Microsoft.Storage.BlobCreated"
DELETED = "Microsoft.Storage.BlobDeleted"
RENAMED = "Microsoft.Storage.BlobRenamed"

_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<blob>.+)$")
_ACCOUNT = re.compile(r"/storageAccounts/(?P<account>[^/]+)$", re.IGNORECASE)


class BlobEventError(ValueError):
    """A message body that is not blob events; the message says why."""


@dataclass(frozen=True)
class BlobEvent:
    """One change to one blob. ``type`` is CREATED or DELETED; ``sequencer`` is the blob's
    hex-encoded event order, comparable between events of the same blob."""

    id: str
    type: str
    account: str
    container: str
    blob: str
    sequencer: str
    event_time: datetime

    @property
    def uri(self) -> str:
        return blob_uri(self.account, self.container, self.blob)

    @property
    def order(self) -> tuple[int, datetime, str]:
        """Newest last: by sequencer (as a number, whatever its padding), then event time; the
        id only makes ties deterministic."""
        return int(self.sequencer, 16), self.event_time, self.id


def parse_message(body: str) -> list[BlobEvent]:
    """The blob events in one queue message body; unrelated event types yield none."""
    payload = _json_payload(body)
    items = payload if isinstance(payload, list) else [payload]
    events: list[BlobEvent] = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise BlobEventError(f"event {position} is a JSON {type(item).__name__}, not an object")
        try:
            events.extend(_blob_events(item))
        except BlobEventError as error:
            raise BlobEventError(f"event {position}: {error}") from None
    return events


def _json_payload(body: str):
    text = body.strip()
    if not text.startswith(("{", "[")):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BlobEventError("body is neither JSON nor base64-encoded JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BlobEventError(f"body is not valid JSON ({error.msg} at character {error.pos})") from None


def _blob_events(item: dict) -> list[BlobEvent]:
    if "specversion" in item:  # CloudEvents 1.0
        type_field, resource_field, time_field = "type", "source", "time"
    elif "eventType" in item:  # Event Grid schema
        type_field, resource_field, time_field = "eventType", "topic", "eventTime"
    else:
        raise BlobEventError("neither an Event Grid event (no eventType) nor a CloudEvent (no specversion)")
    event_id, kind = _text(item, "id"), _text(item, type_field)
    if kind not in (CREATED, DELETED, RENAMED):
        return []
    account = _match(_ACCOUNT, _text(item, resource_field), resource_field)["account"]
    subject = _match(_SUBJECT, _text(item, "subject"), "subject")
    data = item.get("data")
    if not isinstance(data, dict):
        raise BlobEventError("data is missing or not an object")
    sequencer = _text(data, "sequencer")
    try:
        int(sequencer, 16)
        event_time = datetime.fromisoformat(_text(item, time_field))
    except ValueError as error:
        raise BlobEventError(f"bad sequencer or {time_field}: {error}") from None
    if event_time.tzinfo is None:
        raise BlobEventError(f"{time_field} has no time zone")

    def event(suffix: str, event_type: str, container: str, blob: str) -> BlobEvent:
        return BlobEvent(event_id + suffix, event_type, account, container, blob, sequencer, event_time)

    if kind != RENAMED:
        return [event("", kind, subject["container"], subject["blob"])]
    old_container, old_blob = _url_blob(_text(data, "sourceUrl"), account)
    return [event("/source", DELETED, old_container, old_blob),
            event("/destination", CREATED, subject["container"], subject["blob"])]


def _text(item: dict, field: str) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value:
        raise BlobEventError(f"{field} is missing or not a string")
    return value


def _match(pattern: re.Pattern, value: str, field: str) -> re.Match:
    match = pattern.search(value)
    if match is None:
        raise BlobEventError(f"{field} does not name a storage account blob: {value[:200]!r}")
    return match


def _url_blob(url: str, account: str) -> tuple[str, str]:
    """Container and blob name of a blob or dfs URL, account-host style or the emulator's
    path style (``http://127.0.0.1:10000/<account>/<container>/<blob>``)."""
    parsed = urlparse(url)
    parts = unquote(parsed.path).lstrip("/").split("/")
    if not (parsed.hostname or "").startswith(f"{account}.") and parts[0] == account:
        parts = parts[1:]
    if len(parts) < 2 or not parts[0] or not parts[-1]:
        raise BlobEventError(f"sourceUrl does not name a blob: {url[:200]!r}")
    return parts[0], "/".join(parts[1:])


def within(events: Iterable[BlobEvent], uri_prefixes: Sequence[str]) -> list[BlobEvent]:
    """The events about blobs under the source's URI prefixes (plain string prefixes, as blob
    listing uses them: ``az://<account>/<container>/`` is the whole container)."""
    prefixes = tuple(uri_prefixes)
    return [event for event in events if event.uri.startswith(prefixes)]


def unique(events: Iterable[BlobEvent]) -> list[BlobEvent]:
    """The events with duplicate ids dropped (Event Grid delivers at least once)."""
    return list({event.id: event for event in events}.values())


def coalesce(events: Iterable[BlobEvent]) -> tuple[list[str], list[str]]:
    """Sorted URIs to upsert and to delete: per blob the newest event wins."""
    newest: dict[str, BlobEvent] = {}
    for event in unique(events):
        current = newest.get(event.uri)
        if current is None or event.order > current.order:
            newest[event.uri] = event
    upsert = sorted(uri for uri, event in newest.items() if event.type == CREATED)
    delete = sorted(uri for uri, event in newest.items() if event.type == DELETED)
    return upsert, delete


def batch_run_key(events: Iterable[BlobEvent]) -> str:
    """The run key of a batch: a hash of its distinct event ids, so a replay of the same events
    has the same key whatever the queue message ids or their order."""
    ids = sorted({event.id for event in events})
    return "blob-events-" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
