"""Bounds on what one document may cost to parse: pages, unpacked bytes, time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParseLimits:
    """Defaults suit office documents; ``stages.clean_stage`` sets pages and time from settings.

    ``max_compression_ratio`` and ``max_unpacked_bytes`` bound ZIP containers (DOCX, PPTX,
    XLSX, ODT, EPUB) before anything inflates them; real documents compress far less than
    200:1, zip bombs far more. A document may parse for ``timeout_s`` plus
    ``timeout_per_page_s`` for each page its loader reports (see ``isolation``).
    """

    max_pages: int = 2000
    max_unpacked_bytes: int = 256 * 1024 * 1024
    max_compression_ratio: float = 200.0
    max_archive_members: int = 10_000
    timeout_s: float = 120.0
    timeout_per_page_s: float = 1.0
