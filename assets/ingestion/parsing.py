"""Turn a document's bytes into a ParsedDocument (title, metadata, sectioned blocks).

The real type is detected from the bytes (``detection``), the registered loader for it
parses (``loaders``), and every block is cleaned here. Bad input raises
``DocumentRejected`` with a reason an operator can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse

from assets.ingestion.cleaning import clean_text, detect_language
from assets.ingestion.detection import detect_content_type
from assets.ingestion.limits import ParseLimits
from assets.ingestion.loaders import LOADERS, ParseRequest
from core.types import Block, ParsedDocument, quarantine


def source_name(source: str) -> PurePosixPath:
    return PurePosixPath(unquote(urlparse(source).path))


def default_title(source: str) -> str:
    return re.sub(r"[-_]+", " ", source_name(source).stem).strip().capitalize()


DEFAULT_LIMITS = ParseLimits()


def parse_document(source: str, data: bytes, *, limits: ParseLimits = DEFAULT_LIMITS, ocr=None) -> ParsedDocument:
    """Parse and clean one document. ``ocr`` is an ``OcrEngine`` for scans, or ``None``."""
    return clean_document(load_document(source, data, limits=limits, ocr=ocr), source)


def load_document(source: str, data: bytes, *, limits: ParseLimits = DEFAULT_LIMITS, ocr=None,
                  report_pages: Callable[[int], None] | None = None) -> ParsedDocument:
    """The document as its loader gives it, before cleaning (what hidden-text signals measure).
    ``report_pages`` is called with the page count of a paged document once it is known."""
    if not data:
        raise quarantine("empty file (0 bytes)")
    name = source_name(source)
    content_type = detect_content_type(name, data, limits)
    request = ParseRequest(data=data, content_type=content_type, name=name,
                           fallback_title=default_title(source), limits=limits, ocr=ocr,
                           **({"report_pages": report_pages} if report_pages else {}))
    return LOADERS[content_type](request)


def clean_document(document: ParsedDocument, source: str) -> ParsedDocument:
    """The loaded document with every block and its title cleaned, and its language detected."""
    blocks = [
        Block(text=cleaned, section=clean_text(block.section), page=block.page, kind=block.kind)
        for block in document.blocks
        if (cleaned := clean_text(block.text))
    ]
    if not blocks:
        raise quarantine("no text content after parsing and cleaning")
    cleaned = replace(document, blocks=blocks, title=clean_text(document.title) or default_title(source))
    return replace(cleaned, language=cleaned.language or detect_language(cleaned.text))
