"""How the index stays current with no one watching: the local folder watcher and the
reconcile schedules. (Blob events have their own sensor, ``blob_sensor``.)

The folder watcher compares the source's listing with the snapshot in its cursor and asks for
one *targeted* run per tick with what changed; schedules run the full reconcile, which also
catches anything a sensor missed, deletions included.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    ResourceParam,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    schedule,
    sensor,
)

from assets.ingestion.assets import CENSUS_TAG
from assets.ingestion.changes import version_marker
from core.types import SourceItem, UnlistedPart
from pipelines.sharding import shard_requests
from resources.sources import DocumentSource

TRIGGER_TAG = "ragpipe/trigger"


@dataclass(frozen=True)
class FolderChanges:
    """What changed since the last snapshot, and the snapshot to keep."""

    snapshot: dict[str, str]
    upsert: list[str]
    delete: list[str]

    @property
    def count(self) -> int:
        return len(self.upsert) + len(self.delete)


def folder_changes(previous: dict[str, str], listing: Iterable[SourceItem | UnlistedPart]) -> FolderChanges:
    """Added or re-versioned files are upserts, vanished ones deletes; a file under a part that
    could not be listed keeps its previous version and is neither. The version is the ledger's
    marker, so a file whose ACL mapping changed (same bytes) is an upsert too: revoking access
    must not wait for the nightly reconcile."""
    snapshot, unlisted = {}, []
    for item in listing:
        if isinstance(item, UnlistedPart):
            unlisted.append(item.prefix)
        else:
            snapshot[item.uri] = version_marker(item)
    upsert = sorted(uri for uri, version in snapshot.items() if previous.get(uri) != version)
    delete = []
    for uri, version in previous.items():
        if uri in snapshot:
            continue
        if any(uri.startswith(prefix) for prefix in unlisted):
            snapshot[uri] = version
        else:
            delete.append(uri)
    return FolderChanges(snapshot, upsert, sorted(delete))


def encode_snapshot(snapshot: dict[str, str]) -> str:
    """The snapshot as a sensor cursor: compressed, since a corpus's URIs share long prefixes."""
    raw = json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw, 9)).decode()


def decode_snapshot(cursor: str | None) -> dict[str, str] | None:
    return json.loads(zlib.decompress(base64.b64decode(cursor))) if cursor else None


def changes_key(changes: FolderChanges) -> str:
    digest = hashlib.sha256(json.dumps([changes.upsert, changes.delete,
                                        [changes.snapshot[uri] for uri in changes.upsert]]).encode())
    return digest.hexdigest()[:32]


def build_folder_sensor(job, default_status: DefaultSensorStatus, minimum_interval_seconds: int,
                        max_targeted: int, shards: int = 1):
    """The local folder watcher. Its first tick, and a tick that finds more than
    ``max_targeted`` changes, requests a full reconcile instead of a targeted run; with
    ``shards``, one run per shard (a targeted run: per shard a changed source falls in)."""

    @sensor(job=job, name="folder_watcher", default_status=default_status,
            minimum_interval_seconds=minimum_interval_seconds,
            description=("Watches the source folder: files added, changed or removed since the last tick "
                         "become one targeted ingest run (the folder snapshot is the cursor). The first "
                         f"tick, or more than {max_targeted} changes at once, runs a full reconcile."))
    def folder_watcher(context: SensorEvaluationContext, source: ResourceParam[DocumentSource]):
        previous = decode_snapshot(context.cursor)
        changes = folder_changes(previous or {}, source.list_items())
        if previous is not None and not changes.count:
            return SkipReason(f"no change in {len(changes.snapshot)} files")
        context.update_cursor(encode_snapshot(changes.snapshot))
        key, tags = f"folder-{changes_key(changes)}", {TRIGGER_TAG: "folder_watcher"}
        if previous is None or changes.count > max_targeted:
            context.log.info(f"{changes.count} changes: requesting a full reconcile")
            return shard_requests(shards, key, tags)
        context.log.info(f"requesting a targeted run: {len(changes.upsert)} to upsert, {len(changes.delete)} to delete")
        return shard_requests(shards, key, tags, changes.upsert, changes.delete)

    return folder_watcher


def build_schedules(job, reconcile_cron: str, incremental_cron: str,
                    default_status: DefaultScheduleStatus, shards: int = 1) -> list[ScheduleDefinition]:
    """The nightly full reconcile (which also compares every point with the ledger: ``CENSUS_TAG``),
    and optionally a frequent one for sources without events:
    with the version short-circuit a reconcile of an unchanged source costs only its listing.
    With ``shards``, each tick requests every shard."""
    purposes = {
        "reconcile": (reconcile_cron, ("Full reconcile: lists the whole source, indexes what is new or "
                                       "changed, removes what is gone; repairs whatever events missed.")),
        "incremental": (incremental_cron, ("Frequent reconcile for sources without events: unchanged "
                                           "documents cost only their listing entry.")),
    }
    return [_schedule(job, name, cron, description, default_status, shards)
            for name, (cron, description) in purposes.items() if cron]


def _schedule(job, name: str, cron: str, description: str, default_status: DefaultScheduleStatus, shards: int):
    """The schedule of one purpose: each tick requests one run, or with shards one per shard."""
    if shards > 1:
        description += f" Every one of the {shards} shards, as parallel runs."

    @schedule(name=f"{name}_schedule", job=job, cron_schedule=cron, default_status=default_status,
              description=description)
    def each_tick(context: ScheduleEvaluationContext):
        tick = f"{name}-{context.scheduled_execution_time:%Y%m%dT%H%M}"
        return shard_requests(shards, tick, {TRIGGER_TAG: name, **({CENSUS_TAG: "full"} if name == "reconcile" else {})})

    return each_tick
