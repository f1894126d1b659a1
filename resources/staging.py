"""Staging area: stage outputs as batched JSONL files; stages pass small manifests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field
from upath import UPath

from core.types import Manifest
from resources.object_storage import storage_path

# Rewritten whenever a run starts a stage: its time, as the store reports it, orders runs for pruning.
ACTIVITY_MARKER = "last-active"


class BatchWriter:
    """Writes records as JSONL batch files of at most ``batch_size`` records and, unless a
    single record is larger, at most ``max_batch_bytes`` bytes: a batch of 64 large documents
    (base64 in JSON) would otherwise hold gigabytes in memory, here and in the reading stage."""

    def __init__(self, directory: UPath, location: str, manifest: Manifest, batch_size: int, max_batch_bytes: int):
        self._directory, self._location = directory, location
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.manifest = manifest

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        if self._pending and self._pending_bytes + len(line) > self._max_batch_bytes:
            self.flush()
        self._pending.append(line)
        self._pending_bytes += len(line)
        if len(self._pending) >= self._batch_size or self._pending_bytes >= self._max_batch_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        name = f"batch-{len(self.manifest.paths):05d}.jsonl"
        with (self._directory / name).open("wb") as handle:
            handle.writelines(self._pending)
        self.manifest.paths.append(f"{self._location}/{name}")  # as configured: an Azure URL keeps its account
        self.manifest.count += len(self._pending)
        self._pending, self._pending_bytes = [], 0


class Staging(ConfigurableResource):
    """Batches under ``root``, one folder per run and stage: a local folder, or shared object
    storage (an fsspec URL such as abfs://<container>@<account>.dfs.core.windows.net/<prefix>)
    so that each step may run in its own pod."""

    root: str
    connection_string: str = Field(default="", repr=False, description="Azure only; pass an EnvVar.")
    batch_size: int = 64
    max_batch_bytes: int = 16 * 1024 * 1024  # serialised JSON; a larger single record is a batch of its own
    keep_runs: int = 5

    def _path(self, location: str) -> UPath:
        return storage_path(location, self.connection_string)

    def writer(self, stage: str, run_id: str) -> BatchWriter:
        location = f"{self.root.rstrip('/')}/{run_id}/{stage}"
        directory = self._path(location)
        if directory.exists():  # a re-executed step starts from a clean slate
            directory.rmdir(recursive=True)
        directory.mkdir(parents=True, exist_ok=True)
        (directory.parent / ACTIVITY_MARKER).write_bytes(b"")
        return BatchWriter(directory, location, Manifest(stage=stage, run_id=run_id), self.batch_size,
                           self.max_batch_bytes)

    def read(self, manifest: Manifest) -> Iterator[list[dict[str, Any]]]:
        paths = [self._path(location) for location in manifest.paths]
        missing = [location for location, path in zip(manifest.paths, paths) if not path.is_file()]
        if missing:
            raise FileNotFoundError(
                f"the {manifest.stage} batches of run {manifest.run_id} are gone ({len(missing)} of "
                f"{len(manifest.paths)} files, e.g. {missing[0]}): staging keeps the last {self.keep_runs} "
                "runs. Run the whole ingest job instead of this stage alone."
            )
        for path in paths:
            with path.open("r", encoding="utf-8") as handle:
                yield [json.loads(line) for line in handle]

    def prune(self, current_run_id: str, running: Callable[[str], bool]) -> None:
        """Drop staged batches of all but the ``keep_runs`` most recently active runs, ordered by
        the time the store gives their activity markers (one clock, whichever pod wrote them); a
        run without a marker counts as the oldest. A run still ``running`` is never dropped: the
        shards of a backfill may outnumber ``keep_runs``."""
        root = self._path(self.root)
        if not root.is_dir():
            return
        runs = [run for run in root.iterdir() if run.is_dir() and run.name != current_run_id]
        for stale in sorted(runs, key=_last_active, reverse=True)[max(self.keep_runs - 1, 0):]:
            if running(stale.name):
                continue
            with contextlib.suppress(FileNotFoundError):  # another run pruned it first
                stale.rmdir(recursive=True)


def _last_active(run: UPath) -> float:
    try:
        return (run / ACTIVITY_MARKER).stat().st_mtime
    except FileNotFoundError:
        return 0.0
