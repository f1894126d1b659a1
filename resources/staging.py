"""Staging area: stage outputs as batched JSONL files; stages pass small manifests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

from core.types import Manifest


class BatchWriter:
    """Writes records as JSONL batch files of at most ``batch_size`` records and, unless a
    single record is larger, at most ``max_batch_bytes`` bytes: a batch of 64 large documents
    (base64 in JSON) would otherwise hold gigabytes in memory, here and in the reading stage."""

    def __init__(self, directory: Path, manifest: Manifest, batch_size: int, max_batch_bytes: int):
        self._directory = directory
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
        path = self._directory / f"batch-{len(self.manifest.paths):05d}.jsonl"
        with path.open("wb") as handle:
            handle.writelines(self._pending)
        self.manifest.paths.append(str(path))
        self.manifest.count += len(self._pending)
        self._pending, self._pending_bytes = [], 0


class LocalStaging(ConfigurableResource):
    """Batches on a local (or mounted shared) folder, one folder per run and stage."""

    root: str
    batch_size: int = 64
    max_batch_bytes: int = 16 * 1024 * 1024  # serialised JSON; a larger single record is a batch of its own
    keep_runs: int = 5

    def writer(self, stage: str, run_id: str) -> BatchWriter:
        directory = Path(self.root) / run_id / stage
        if directory.exists():  # a re-executed step starts from a clean slate
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        return BatchWriter(directory, Manifest(stage=stage, run_id=run_id), self.batch_size, self.max_batch_bytes)

    def read(self, manifest: Manifest) -> Iterator[list[dict[str, Any]]]:
        for path in manifest.paths:
            with open(path, encoding="utf-8") as handle:
                yield [json.loads(line) for line in handle]

    def prune(self, current_run_id: str) -> None:
        """Drop staged batches of all but the newest ``keep_runs`` runs."""
        root = Path(self.root)
        if not root.is_dir():
            return
        runs = sorted(
            (p for p in root.iterdir() if p.is_dir() and p.name != current_run_id),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for stale in runs[max(self.keep_runs - 1, 0):]:
            shutil.rmtree(stale, ignore_errors=True)
