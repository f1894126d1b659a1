"""PDFs through pdfplumber and pdfminer's layout analysis (text in reading order with font sizes,
tables), page by page; scans, and pages of unmapped glyphs, through the OCR engine."""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, replace

from assets.ingestion.detection import PDF
from assets.ingestion.loaders import ParseRequest, loader
from assets.ingestion.pdf_layout import (
    PageText,
    TextLine,
    is_bold_font,
    is_garbage_page,
    page_blocks,
    strip_glyph_garbage,
)
from assets.screening.hidden_text import is_invisible_pdf_char
from core.tables import markdown_table
from core.types import Block, ParsedDocument, quarantine

# pdfminer's layout analysis: word gaps relative to glyph width (pdfplumber's default 3 pt
# gap runs small type together) and text boxes ordered by position, so columns read whole;
# text inside figures (form XObjects) is laid out too.
LAYOUT = {"word_margin": 0.1, "line_margin": 0.5, "boxes_flow": 0.5, "all_texts": True}


@loader(PDF)
def load_pdf(request: ParseRequest) -> ParsedDocument:
    import pdfplumber
    from pdfminer.pdfdocument import PDFPasswordIncorrect
    from pdfplumber.utils.exceptions import PdfminerException

    try:
        with pdfplumber.open(io.BytesIO(request.data), laparams=LAYOUT) as pdf:
            if len(pdf.pages) > request.limits.max_pages:
                raise quarantine(f"PDF has {len(pdf.pages):,} pages, above the limit of {request.limits.max_pages:,}")
            request.report_pages(len(pdf.pages))
            info = pdf.metadata or {}
            ocr = request.ocr if request.ocr is not None and request.ocr.available() else None
            pages = [_read_page(request, ocr, pdf, page) for page in pdf.pages]
    except PdfminerException as error:  # pdfplumber wraps pdfminer's own exceptions
        cause = error.args[0] if error.args else error
        if isinstance(cause, PDFPasswordIncorrect):
            raise quarantine("encrypted PDF (password required)") from None
        raise quarantine(f"corrupt or truncated PDF ({cause})") from None
    blocks = page_blocks([page for page in pages if isinstance(page, PageText)])
    blocks += [block for page in pages if isinstance(page, list) for block in page]
    blocks.sort(key=lambda block: block.page or 0)
    if not blocks:
        blocks = ocr_blocks(request, f"PDF has no extractable text on any of its {len(pages)} pages")
    return ParsedDocument(
        title=_pdf_str(info.get("Title")) or request.fallback_title,
        content_type=PDF,
        blocks=blocks,
        author=_pdf_str(info.get("Author")),
        date=_pdf_date(info.get("CreationDate")),
    )


def _read_page(request: ParseRequest, ocr, pdf, page) -> PageText | list[Block]:
    """One page, its caches freed after (page by page, memory stays bounded). A page whose
    glyphs are mostly unmapped comes back as OCR blocks when ``ocr`` (an available engine) is
    given."""
    try:
        page = _upright(pdf, page)
        content = _page_content(page)
        if ocr is not None and is_garbage_page(content.glyphs, content.garbage):
            return _ocr_page(request.data, ocr, page.page_number)
        return PageText(page.page_number, content.lines, content.tables)
    finally:
        page.close()


@dataclass
class _Content:
    lines: list[TextLine]
    tables: list[str]
    glyphs: int
    garbage: int


def _page_content(page) -> _Content:
    """The page's visible lines outside its tables in reading order, and each table as
    Markdown. Tiny or white characters are left out: the hidden-text scan reads them, the
    index must not."""
    from pdfminer.layout import LTChar

    found = []
    if _has_rules(page.layout):  # pdfplumber finds tables by their ruling lines; skip its costly object walk
        visible = page.filter(lambda obj: obj.get("object_type") != "char" or not is_invisible_pdf_char(obj))
        found = visible.find_tables()
    tables = [markdown_table(table.extract()) for table in found]
    boxes = [_to_pdfminer_box(page, table.bbox) for table in found]
    lines, glyphs, garbage = [], 0, 0
    for line in _text_lines(page.layout):
        chars = [item for item in line if not isinstance(item, LTChar) or _kept(item, boxes)]
        text, bad = strip_glyph_garbage("".join(item.get_text() for item in chars))
        sized = [item for item in chars if isinstance(item, LTChar)]
        glyphs, garbage = glyphs + len(sized), garbage + bad
        if text.strip() and sized:
            sizes = sorted(item.size for item in sized)
            bold = sum(is_bold_font(item.fontname) for item in sized) > len(sized) / 2
            lines.append(TextLine(" ".join(text.split()), sizes[len(sizes) // 2], bold))
    return _Content(lines, [table for table in tables if table], glyphs, garbage)


def _has_rules(container) -> bool:
    from pdfminer.layout import LTCurve, LTFigure

    return any(isinstance(item, LTCurve) or (isinstance(item, LTFigure) and _has_rules(item)) for item in container)


def _text_lines(container):
    """The text lines of a page layout in reading order, those inside figures (form XObjects) too."""
    from pdfminer.layout import LTFigure, LTTextBox, LTTextLine

    for item in container:
        if isinstance(item, LTTextBox):
            yield from (line for line in item if isinstance(line, LTTextLine))
        elif isinstance(item, LTFigure):
            yield from _text_lines(item)


def _kept(char, table_boxes) -> bool:
    color = char.graphicstate.ncolor
    as_dict = {"size": char.size, "non_stroking_color": color if isinstance(color, tuple | list) else (color,)}
    inside = any(x0 <= char.x0 and char.x1 <= x1 and y0 <= char.y0 and char.y1 <= y1 for x0, y0, x1, y1 in table_boxes)
    return not inside and not is_invisible_pdf_char(as_dict)


def _to_pdfminer_box(page, bbox, slack: float = 1.0) -> tuple[float, float, float, float]:
    """A pdfplumber box (top-down) in pdfminer's bottom-up page coordinates."""
    x0, top, x1, bottom = bbox
    mb_x0, mb_top = page.mediabox[:2]
    return (x0 - mb_x0 - slack, page.height - (bottom - mb_top) - slack,
            x1 - mb_x0 + slack, page.height - (top - mb_top) + slack)


def _upright(pdf, page):
    """The page turned so most of its text reads left to right: a ``/Rotate`` that stands
    the text on its side, or text drawn turned on an upright page, is undone by setting the
    page's rotation (pdfminer applies it) and reading the page again."""
    from pdfminer.layout import LTChar
    from pdfplumber.page import Page

    turns = Counter()
    for line in _text_lines(page.layout):
        for char in line:
            if isinstance(char, LTChar):
                a, b = char.matrix[:2]
                turns[0 if a > abs(b) else 90 if b > abs(a) else 180 if -a > abs(b) else 270] += 1
    turn = turns.most_common(1)[0][0] if turns else 0
    if turn == 0:
        return page
    page.close()
    page.page_obj.rotate = (page.page_obj.rotate + turn) % 360
    page.page_obj.attrs["Rotate"] = page.page_obj.rotate
    return Page(pdf, page.page_obj, page_number=page.page_number, initial_doctop=page.initial_doctop)


def _ocr_page(data: bytes, ocr, number: int) -> list[Block]:
    """OCR one page (copied into a one-page PDF, so either engine takes it)."""
    import pypdfium2

    source = pypdfium2.PdfDocument(data)
    single = pypdfium2.PdfDocument.new()
    try:
        single.import_pages(source, [number - 1])
        buffer = io.BytesIO()
        single.save(buffer)
    finally:
        single.close()
        source.close()
    blocks = ocr.recognize(buffer.getvalue(), PDF, 1)
    return [replace(block, page=number) for block in blocks]


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
