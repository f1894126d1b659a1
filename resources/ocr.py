"""OCR engines for scanned PDFs and images: local Tesseract, or Azure AI Document Intelligence.

Both return blocks (paragraphs with page numbers; the Azure layout model also gives
headings and tables). ``available()`` says whether the engine can run at all, so a scan is
quarantined as "needs OCR" rather than indexed as empty when it cannot.
"""

from __future__ import annotations

import io
import re
import shutil
import time
from itertools import islice
from typing import Protocol

from dagster import ConfigurableResource

from core.tables import markdown_table
from core.types import Block, enter_heading, quarantine, section_path


class OcrEngine(Protocol):
    def available(self) -> bool: ...

    def recognize(self, data: bytes, content_type: str, max_pages: int) -> list[Block]: ...


class TesseractOcr(ConfigurableResource):
    """The ``tesseract`` binary (Debian ``tesseract-ocr`` and ``tesseract-ocr-eng``)."""

    languages: str = "eng"
    dpi: int = 200

    def available(self) -> bool:
        return shutil.which("tesseract") is not None

    def recognize(self, data: bytes, content_type: str, max_pages: int) -> list[Block]:
        import pytesseract

        pages = self._pdf_pages(data, max_pages) if content_type == "application/pdf" else _image_frames(data, max_pages)
        blocks = []
        for number, image in enumerate(pages, 1):
            text = pytesseract.image_to_string(image, lang=self.languages)
            blocks += [Block(text=part, page=number) for part in re.split(r"\n\s*\n", text) if part.strip()]
        return blocks

    def _pdf_pages(self, data: bytes, max_pages: int):
        import pypdfium2

        pdf = pypdfium2.PdfDocument(data)
        try:
            for index in range(min(len(pdf), max_pages)):
                yield pdf[index].render(scale=self.dpi / 72).to_pil()
        finally:
            pdf.close()


def _image_frames(data: bytes, max_pages: int):
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        frames = [frame.convert("RGB") for frame in islice(ImageSequence.Iterator(image), max_pages)]
    except Image.DecompressionBombError:
        raise quarantine("image is too large to decode (decompression bomb limit)") from None
    except (UnidentifiedImageError, OSError) as error:
        raise quarantine(f"corrupt or truncated image ({type(error).__name__})") from None
    return frames


class AzureDocumentIntelligenceOcr(ConfigurableResource):
    """Azure AI Document Intelligence, prebuilt layout model, over its REST API
    (analyze POST → 202 + Operation-Location, then GET until the analysis is done)."""

    endpoint: str
    api_key: str
    model_id: str = "prebuilt-layout"
    api_version: str = "2024-11-30"
    poll_interval_s: float = 1.0
    timeout_s: float = 300.0

    def available(self) -> bool:
        return True

    def recognize(self, data: bytes, content_type: str, max_pages: int) -> list[Block]:
        import httpx

        headers = {"Ocp-Apim-Subscription-Key": self.api_key}
        url = f"{self.endpoint.rstrip('/')}/documentintelligence/documentModels/{self.model_id}:analyze"
        with httpx.Client(timeout=60) as client:
            response = client.post(url, params={"api-version": self.api_version, "pages": f"1-{max_pages}"},
                                   content=data, headers={**headers, "Content-Type": content_type})
            response.raise_for_status()
            operation = response.headers["Operation-Location"]
            deadline = time.monotonic() + self.timeout_s
            while True:
                result = client.get(operation, headers=headers)
                result.raise_for_status()
                body = result.json()
                if body["status"] == "succeeded":
                    return layout_blocks(body["analyzeResult"])
                if body["status"] == "failed":
                    raise RuntimeError(f"Document Intelligence analysis failed: {body.get('error', {}).get('code')}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Document Intelligence analysis still {body['status']} after {self.timeout_s}s")
                time.sleep(self.poll_interval_s)


_SKIPPED_ROLES = {"pageHeader", "pageFooter", "pageNumber"}
_HEADING_LEVELS = {"title": 1, "sectionHeading": 2}


def layout_blocks(result: dict) -> list[Block]:
    """Blocks in reading order from a layout ``analyzeResult``: headings open sections,
    tables become Markdown, paragraphs inside tables are left to their table."""
    tables = [
        (table["spans"][0]["offset"], _spans_cover(table["spans"]), _page(table), _table_markdown(table))
        for table in result.get("tables", [])
    ]
    items = [(offset, page, "table", text) for offset, _, page, text in tables]
    for paragraph in result.get("paragraphs", []):
        offset = paragraph["spans"][0]["offset"] if paragraph.get("spans") else 0
        if paragraph.get("role") in _SKIPPED_ROLES or any(offset in cover for _, cover, _, _ in tables):
            continue
        items.append((offset, _page(paragraph), paragraph.get("role") or "text", paragraph["content"]))
    blocks, path = [], []
    for _, page, role, text in sorted(items, key=lambda item: item[0]):
        if role in _HEADING_LEVELS:
            path = enter_heading(path, _HEADING_LEVELS[role], text)
        blocks.append(Block(text=text, section=section_path(path), page=page, kind="table" if role == "table" else "text"))
    return blocks


def _spans_cover(spans: list[dict]) -> range:
    start = min(span["offset"] for span in spans)
    return range(start, max(span["offset"] + span["length"] for span in spans))


def _page(item: dict) -> int | None:
    regions = item.get("boundingRegions") or []
    return regions[0]["pageNumber"] if regions else None


def _table_markdown(table: dict) -> str:
    grid = [[""] * table["columnCount"] for _ in range(table["rowCount"])]
    for cell in table["cells"]:
        grid[cell["rowIndex"]][cell["columnIndex"]] = cell.get("content", "")
    return markdown_table(grid)
