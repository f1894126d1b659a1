"""Which index versions to keep once the alias moves (pure)."""

from __future__ import annotations

from typing import Any


def kept_collections(history: list[dict[str, Any]], keep: int) -> list[str]:
    """The ``keep`` most recently promoted collections, newest first (rollbacks count as
    promotions: the version rolled back to becomes the newest)."""
    kept: list[str] = []
    for entry in reversed(history):
        if entry["collection"] not in kept:
            kept.append(entry["collection"])
    return kept[:max(keep, 1)]


def collections_to_drop(existing: list[str], history: list[dict[str, Any]], keep: int) -> list[str]:
    """Collections once promoted that fell out of the kept versions. Collections never
    promoted are left alone: they may be candidates still being built or evaluated."""
    kept = set(kept_collections(history, keep))
    promoted = {entry["collection"] for entry in history}
    return sorted(name for name in existing if name in promoted and name not in kept)
