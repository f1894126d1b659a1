"""Evaluation artifacts and promotion history, as files under the data directory.

Per run: ``runs/<run id>/questions.jsonl`` (one line per golden question) and
``summary.json`` (aggregates, the candidate collection, the golden set and retriever). The
gate compares a candidate with the promoted collection's last summary; promotions are
appended to ``promotions.jsonl`` so the kept versions and rollbacks have a history.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


class EvaluationStore(ConfigurableResource):
    root: str

    def _runs(self) -> Path:
        return Path(self.root) / "runs"

    def save_run(self, run_id: str, summary: dict[str, Any], questions: list[dict[str, Any]]) -> Path:
        """Write a run's per-question results and summary; returns the questions file."""
        directory = self._runs() / run_id
        directory.mkdir(parents=True, exist_ok=True)
        questions_path = directory / "questions.jsonl"
        _write_atomically(questions_path, "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions))
        stamped = {**summary, "finished_at": datetime.now(timezone.utc).isoformat()}
        _write_atomically(directory / "summary.json", json.dumps(stamped, indent=2))
        return questions_path

    def latest_summary(self, collection: str, comparable: dict[str, Any]) -> dict[str, Any] | None:
        """The newest summary of ``collection`` whose fields match ``comparable``."""
        summaries = []
        for path in self._runs().glob("*/summary.json") if self._runs().is_dir() else []:
            summary = json.loads(path.read_text(encoding="utf-8"))
            if summary.get("collection") == collection and all(summary.get(k) == v for k, v in comparable.items()):
                summaries.append(summary)
        return max(summaries, key=lambda s: s["finished_at"], default=None)

    def record_promotion(self, alias: str, collection: str, run_id: str, reason: str) -> None:
        path = Path(self.root) / "promotions.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"alias": alias, "collection": collection, "run_id": run_id, "reason": reason,
                 "at": datetime.now(timezone.utc).isoformat()}
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")

    def promotions(self, alias: str) -> list[dict[str, Any]]:
        """Promotions and rollbacks of ``alias``, oldest first."""
        path = Path(self.root) / "promotions.jsonl"
        if not path.is_file():
            return []
        entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [entry for entry in entries if entry["alias"] == alias]
