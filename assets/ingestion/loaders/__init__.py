"""Loaders: one function per content type, registered here, chosen by detected type.

A loader turns a document's bytes into a ParsedDocument with raw (uncleaned) blocks;
``assets.ingestion.parsing`` detects the type, dispatches and cleans. Each family of
formats lives in its own module; importing this package registers them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from assets.ingestion.limits import ParseLimits
from core.types import ParsedDocument


@dataclass(frozen=True)
class ParseRequest:
    """What a loader gets: the bytes, their detected type, where they came from, the limits,
    an OCR engine (``None`` when none is configured), and ``report_pages``, which a loader of
    paged formats calls with the page count as soon as it knows it (the parse deadline scales
    with it, see ``isolation``)."""

    data: bytes
    content_type: str
    name: PurePosixPath
    fallback_title: str
    limits: ParseLimits
    ocr: Any = None
    report_pages: Callable[[int], None] = lambda pages: None


Loader = Callable[[ParseRequest], ParsedDocument]
LOADERS: dict[str, Loader] = {}


def loader(*content_types: str) -> Callable[[Loader], Loader]:
    """Register the decorated function as the loader for ``content_types``."""

    def register(function: Loader) -> Loader:
        for content_type in content_types:
            LOADERS[content_type] = function
        return function

    return register


from assets.ingestion.loaders import images, legacy, markup, messages, office, pdf, structured  # noqa: E402,F401  (registers)
