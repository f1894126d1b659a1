"""Evaluation artifacts and promotion history, as files under the data directory or on shared
object storage.

Per run: ``runs/<run id>/questions.jsonl`` (one line per golden question) and
``summary.json`` (aggregates, the candidate collection, the golden set and retriever). The
gate compares a candidate with the promoted collection's last summary; promotions are
appended to ``promotions.jsonl`` (an append blob on Azure) so the kept versions and rollbacks
have a history. ``question_vectors/<key>.npy`` caches a golden set's question embeddings per
embedder, so re-scoring a set costs no embedding.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
from dagster import ConfigurableResource
from pydantic import Field
from upath import UPath

from resources.object_storage import storage_path


def _write_atomically(path: UPath, data: str | bytes) -> None:
    """A reader never sees half a file: a local rename is atomic, an object appears whole."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    partial.rename(path)


class EvaluationStore(ConfigurableResource):
    root: str = Field(description="A folder or an fsspec URL (abfs://<container>@<account>.dfs.core.windows.net/p)")
    connection_string: str = Field(default="", repr=False, description="Azure only; pass an EnvVar.")

    def _root(self) -> UPath:
        return storage_path(self.root, self.connection_string)

    def save_run(self, run_id: str, summary: dict[str, Any], questions: list[dict[str, Any]]) -> str:
        """Write a run's per-question results and summary; returns where the questions are."""
        directory = self._root() / "runs" / run_id
        directory.mkdir(parents=True, exist_ok=True)
        questions_path = directory / "questions.jsonl"
        _write_atomically(questions_path, "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions))
        stamped = {**summary, "finished_at": datetime.now(UTC).isoformat()}
        _write_atomically(directory / "summary.json", json.dumps(stamped, indent=2))
        return f"{self.root.rstrip('/')}/runs/{run_id}/questions.jsonl"  # as configured: a URL keeps its account

    def latest_summary(self, collection: str, comparable: dict[str, Any]) -> dict[str, Any] | None:
        """The newest summary of ``collection`` whose fields match ``comparable``."""
        runs = self._root() / "runs"
        summaries = []
        for path in runs.glob("*/summary.json") if runs.is_dir() else []:
            summary = json.loads(path.read_text(encoding="utf-8"))
            if summary.get("collection") == collection and all(summary.get(k) == v for k, v in comparable.items()):
                summaries.append(summary)
        return max(summaries, key=lambda s: s["finished_at"], default=None)

    def question_vectors(self, key: str) -> list[list[float]] | None:
        """Cached question embeddings under ``key`` (see scoring.question_vectors_key), or None."""
        path = self._root() / "question_vectors" / f"{key}.npy"
        if not path.is_file():
            return None
        return np.load(io.BytesIO(path.read_bytes()), allow_pickle=False).tolist()

    def save_question_vectors(self, key: str, vectors: list[list[float]]) -> None:
        directory = self._root() / "question_vectors"
        directory.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
        _write_atomically(directory / f"{key}.npy", buffer.getvalue())

    def record_promotion(self, alias: str, collection: str, run_id: str, reason: str) -> None:
        root = self._root()
        root.mkdir(parents=True, exist_ok=True)
        entry = {"alias": alias, "collection": collection, "run_id": run_id, "reason": reason,
                 "at": datetime.now(UTC).isoformat()}
        with (root / "promotions.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")

    def promotions(self, alias: str) -> list[dict[str, Any]]:
        """Promotions and rollbacks of ``alias``, oldest first."""
        path = self._root() / "promotions.jsonl"
        if not path.is_file():
            return []
        entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [entry for entry in entries if entry["alias"] == alias]
