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
    def __init__(self, directory: Path, manifest: Manifest, batch_size: int):
        self._directory = directory
        self._batch_size = batch_size
        self._pending: list[dict[str, Any]] = []
        self.manifest = manifest

    def write(self, record: dict[str, Any]) -> None:
        self._pending.append(record)
        if len(self._pending) >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        path = self._directory / f"batch-{len(self.manifest.paths):05d}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for record in self._pending:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.manifest.paths.append(str(path))
        self.manifest.count += len(self._pending)
        self._pending = []


class LocalStaging(ConfigurableResource):
    """Batches on a local (or mounted shared) folder, one folder per run and stage."""

    root: str
    batch_size: int = 64
    keep_runs: int = 5

    def writer(self, stage: str, run_id: str) -> BatchWriter:
        directory = Path(self.root) / run_id / stage
        if directory.exists():  # a re-executed step starts from a clean slate
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        return BatchWriter(directory, Manifest(stage=stage, run_id=run_id), self.batch_size)

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
