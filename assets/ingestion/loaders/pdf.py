"""PDFs through pdfplumber (text and tables, page by page); scans through the OCR engine."""

from __future__ import annotations

import io
import re

from assets.ingestion.cleaning import dehyphenate, strip_running_lines
from assets.ingestion.detection import PDF
from assets.ingestion.loaders import ParseRequest, loader
from assets.screening.hidden_text import is_invisible_pdf_char
from core.tables import markdown_table
from core.types import Block, ParsedDocument, quarantine


@loader(PDF)
def load_pdf(request: ParseRequest) -> ParsedDocument:
    import pdfplumber
    from pdfminer.pdfdocument import PDFPasswordIncorrect
    from pdfplumber.utils.exceptions import PdfminerException

    try:
        with pdfplumber.open(io.BytesIO(request.data)) as pdf:
            if len(pdf.pages) > request.limits.max_pages:
                raise quarantine(f"PDF has {len(pdf.pages):,} pages, above the limit of {request.limits.max_pages:,}")
            request.report_pages(len(pdf.pages))
            info = pdf.metadata or {}
            pages = [_page_content(page) for page in pdf.pages]
    except PdfminerException as error:  # pdfplumber wraps pdfminer's own exceptions
        cause = error.args[0] if error.args else error
        if isinstance(cause, PDFPasswordIncorrect):
            raise quarantine("encrypted PDF (password required)") from None
        raise quarantine(f"corrupt or truncated PDF ({cause})") from None
    texts = strip_running_lines([text for text, _ in pages])
    blocks = []
    for number, (text, (_, tables)) in enumerate(zip(texts, pages, strict=True), 1):
        if text.strip():
            blocks.append(Block(text=dehyphenate(text), page=number))
        blocks += [Block(text=table, page=number, kind="table") for table in tables]
    if not blocks:
        blocks = ocr_blocks(request, f"PDF has no extractable text on any of its {len(pages)} pages")
    return ParsedDocument(
        title=_pdf_str(info.get("Title")) or request.fallback_title,
        content_type=PDF,
        blocks=blocks,
        author=_pdf_str(info.get("Author")),
        date=_pdf_date(info.get("CreationDate")),
    )


def _page_content(page) -> tuple[str, list[str]]:
    """The page's visible text outside its tables, and each table as Markdown. Tiny or white
    characters are left out: the hidden-text scan reads them, the index must not."""
    page = page.filter(lambda obj: obj.get("object_type") != "char" or not is_invisible_pdf_char(obj))
    found = page.find_tables()
    tables = [markdown_table(table.extract()) for table in found]
    text_page = page
    for table in found:
        text_page = text_page.outside_bbox(table.bbox)
    return text_page.extract_text() or "", [table for table in tables if table]


def ocr_blocks(request: ParseRequest, why: str) -> list[Block]:
    """OCR a scan, or quarantine it: an image-only document is never indexed as empty."""
    if request.ocr is None or not request.ocr.available():
        raise quarantine(f"needs OCR: {why} and no OCR engine is available (install tesseract-ocr)")
    blocks = request.ocr.recognize(request.data, request.content_type, request.limits.max_pages)
    if not blocks:
        raise quarantine(f"needs OCR: {why} and OCR found no text either")
    return blocks


def _pdf_str(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.strip() or None if isinstance(value, str) else None


def _pdf_date(value) -> str | None:
    """PDF dates look like ``D:20250314120000+00'00'``; keep the calendar date."""
    text = _pdf_str(value) or ""
    match = re.match(r"(?:D:)?(\d{4})(\d{2})(\d{2})", text)
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}" if match else None
