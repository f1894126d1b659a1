"""Test PDFs drawn with reportlab, each built to show one layout problem real PDFs have.

Words are placed one by one at computed positions, with no space glyphs between them (as
LaTeX and most typesetters do), so an extractor must find word gaps from geometry. The
fidelity bench imports these builders; each returns the PDF's bytes, and the ``*_WORDS`` /
``*_TEXT`` constants say what a correct extraction reads.
"""

from __future__ import annotations

import io

PAGE_WIDTH, PAGE_HEIGHT = 595.0, 842.0  # A4 in points
MARGIN = 56.0

_LEFT_COLUMN = (
    "Retrieval in open-domain QA is usually implemented with sparse vector models such as TF-IDF "
    "or BM25 that match keywords efficiently with an inverted index and rank passages by term overlap"
)
_RIGHT_COLUMN = (
    "Dense retrieval encodes questions and passages into vectors with a dual encoder so that "
    "semantically similar texts lie close together even when they share very few words at all"
)


def _canvas(buffer: io.BytesIO, title: str = "", author: str = ""):
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(buffer, pagesize=(PAGE_WIDTH, PAGE_HEIGHT))
    pdf.setTitle(title)
    pdf.setAuthor(author)
    return pdf


def draw_words(pdf, words: list[str], x: float, y: float, font: str, size: float, gap: float) -> float:
    """Draw ``words`` one glyph run each, ``gap`` points apart; return the x after the last."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    for word in words:
        pdf.setFont(font, size)
        pdf.drawString(x, y, word)
        x += stringWidth(word, font, size) + gap
    return x


def wrap_words(words: list[str], width: float, font: str, size: float, gap: float) -> list[list[str]]:
    """Greedy line filling of ``words`` into lines at most ``width`` points wide."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines: list[list[str]] = [[]]
    used = 0.0
    for word in words:
        extent = stringWidth(word, font, size)
        if lines[-1] and used + gap + extent > width:
            lines.append([])
            used = 0.0
        used += (gap if lines[-1] else 0) + extent
        lines[-1].append(word)
    return lines


def _paragraph(pdf, text: str, x: float, y: float, width: float, font="Times-Roman", size=10.0, gap=None) -> float:
    """Draw ``text`` wrapped into ``width`` from baseline ``y`` down; return the next baseline.
    ``gap`` defaults to the font's own space width at ``size``."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    gap = stringWidth(" ", font, size) if gap is None else gap
    for line in wrap_words(text.split(), width, font, size, gap):
        draw_words(pdf, line, x, y, font, size, gap)
        y -= size * 1.25
    return y


def one_column_pdf() -> bytes:
    """One page, one column: a title and two paragraphs of Times 10 pt."""
    buffer = io.BytesIO()
    pdf = _canvas(buffer, title="Open-domain retrieval", author="Retrieval Group")
    y = _paragraph(pdf, "Open-domain retrieval", MARGIN, PAGE_HEIGHT - 80, 480, "Helvetica-Bold", 18)
    y = _paragraph(pdf, _LEFT_COLUMN, MARGIN, y - 10, PAGE_WIDTH - 2 * MARGIN)
    _paragraph(pdf, _RIGHT_COLUMN, MARGIN, y - 10, PAGE_WIDTH - 2 * MARGIN)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


ONE_COLUMN_TEXT = f"Open-domain retrieval {_LEFT_COLUMN} {_RIGHT_COLUMN}"
TWO_COLUMN_TITLE = "Sparse and dense retrieval compared"
TWO_COLUMN_TEXT = f"{TWO_COLUMN_TITLE} {_LEFT_COLUMN} {_RIGHT_COLUMN}"


def two_column_pdf() -> bytes:
    """A full-width title over two columns of 9 pt Times. The lines are drawn row by row
    (left line, then the right line at the same height), so the content stream interleaves
    the columns: only the page geometry gives the reading order (left column, then right)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    buffer = io.BytesIO()
    pdf = _canvas(buffer, title=TWO_COLUMN_TITLE)
    _paragraph(pdf, TWO_COLUMN_TITLE, MARGIN, PAGE_HEIGHT - 80, 480, "Helvetica-Bold", 16)
    column_width, gutter, size = 225.0, 33.0, 9.0
    gap = stringWidth(" ", "Times-Roman", size)
    left = wrap_words(_LEFT_COLUMN.split(), column_width, "Times-Roman", size, gap)
    right = wrap_words(_RIGHT_COLUMN.split(), column_width, "Times-Roman", size, gap)
    y = PAGE_HEIGHT - 120
    for row in range(max(len(left), len(right))):
        for lines, x in ((left, MARGIN), (right, MARGIN + column_width + gutter)):
            if row < len(lines):
                draw_words(pdf, lines[row], x, y, "Times-Roman", size, gap)
        y -= size * 1.25
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


TIGHT_WORDS = ["Retrieval", "in", "open-domain", "QA", "is", "usually", "implemented", "with", "sparse", "vector", "models"]


def tight_spacing_pdf(size: float = 7.0) -> bytes:
    """Small type set tightly: words ``0.2 * size`` points apart (1.4 pt at 7 pt), under
    pdfplumber's default absolute 3 pt tolerance, which runs them together."""
    buffer = io.BytesIO()
    pdf = _canvas(buffer)
    draw_words(pdf, TIGHT_WORDS, MARGIN, PAGE_HEIGHT - 100, "Times-Roman", size, 0.2 * size)
    _paragraph(pdf, _RIGHT_COLUMN, MARGIN, PAGE_HEIGHT - 130, 400, size=size, gap=0.2 * size)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


ROTATED_PAGE_TEXT = "This landscape page is stored in portrait and turned by the page rotation entry"
ROTATED_DRAWING_TEXT = "This table caption runs up the side of the page as rotated text"


def rotated_pdf() -> bytes:
    """Page 1 carries ``/Rotate 90``; page 2 is upright but its text is drawn turned 90°."""
    buffer = io.BytesIO()
    pdf = _canvas(buffer)
    pdf.setPageRotation(90)
    _paragraph(pdf, ROTATED_PAGE_TEXT, MARGIN, PAGE_HEIGHT - 100, 480)
    pdf.showPage()
    pdf.setPageRotation(0)
    pdf.saveState()
    pdf.translate(200, 150)
    pdf.rotate(90)
    _paragraph(pdf, ROTATED_DRAWING_TEXT, 0, 0, 600, size=11)
    pdf.restoreState()
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


BOOK_TITLE = "The Field Guide to Ingestion"
REPEATED_BODY_LINE = "Always check the ledger before deleting a document."


def _roman(number: int) -> str:
    numerals = [(10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")]
    out = ""
    for value, letters in numerals:
        while number >= value:
            out, number = out + letters, number - value
    return out


_BOOK_SUBJECTS = [
    "Detecting the content type", "Choosing a loader", "Cleaning the text", "Screening for secrets",
    "Chunking by heading", "Embedding the chunks", "Writing the index", "Recording the ledger",
    "Retrying failed documents", "Quarantining bad input", "Measuring recall", "Reading the run report",
    "Scaling the workers",
]


def book_pdf(pages: int = 12, front_matter: int = 3) -> bytes:
    """A book: odd pages have the chapter name as running header at the top right, even pages
    the book title at the top left; page numbers at the bottom, roman numerals on the first
    ``front_matter`` pages and "- N -" or "Page N of M" after them. Every page body is
    distinct (a subject and "paragraph N.L"), and ``REPEATED_BODY_LINE`` appears mid-body on every
    third page: a line that repeats but is content."""
    buffer = io.BytesIO()
    pdf = _canvas(buffer, title=BOOK_TITLE)
    for number in range(1, pages + 1):
        chapter = f"Chapter {1 + (number - 1) // 4}: Parsing in practice"
        if number % 2:
            pdf.setFont("Times-Italic", 9)
            pdf.drawRightString(PAGE_WIDTH - MARGIN, PAGE_HEIGHT - 40, chapter)
        else:
            pdf.setFont("Times-Italic", 9)
            pdf.drawString(MARGIN, PAGE_HEIGHT - 40, BOOK_TITLE)
        y = PAGE_HEIGHT - 90
        for line in range(6):
            subject = _BOOK_SUBJECTS[(number * 6 + line) % len(_BOOK_SUBJECTS)]
            text = f"{subject} is covered in paragraph {number}.{line} of this guide."
            if line == 3 and number % 3 == 0:
                text = REPEATED_BODY_LINE
            y = _paragraph(pdf, text, MARGIN, y, 480)
        if number <= front_matter:
            footer = _roman(number)
        elif number % 2:
            footer = f"- {number} -"
        else:
            footer = f"Page {number} of {pages}"
        pdf.setFont("Times-Roman", 9)
        pdf.drawCentredString(PAGE_WIDTH / 2, 30, footer)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def headings_pdf() -> bytes:
    """Two pages with a 20 pt bold title, 15 pt bold chapter headings, 12 pt bold section
    headings and 10 pt body text; the second chapter starts on page 2."""
    buffer = io.BytesIO()
    pdf = _canvas(buffer, title="Operations Handbook")
    width = PAGE_WIDTH - 2 * MARGIN
    y = _paragraph(pdf, "Operations Handbook", MARGIN, PAGE_HEIGHT - 70, width, "Helvetica-Bold", 20) - 8
    y = _paragraph(pdf, "Installation", MARGIN, y, width, "Helvetica-Bold", 15) - 4
    y = _paragraph(pdf, "Install the agent on every node before the first run starts.", MARGIN, y, width) - 4
    y = _paragraph(pdf, "Requirements", MARGIN, y, width, "Helvetica-Bold", 12) - 4
    y = _paragraph(pdf, "Each node needs two cores and four gigabytes of memory.", MARGIN, y, width) - 4
    y = _paragraph(pdf, "Network", MARGIN, y, width, "Helvetica-Bold", 12) - 4
    _paragraph(pdf, "Open port 8443 between the nodes and the control plane.", MARGIN, y, width)
    pdf.showPage()
    y = _paragraph(pdf, "Operation", MARGIN, PAGE_HEIGHT - 70, width, "Helvetica-Bold", 15) - 4
    _paragraph(pdf, "Start the scheduler and watch the ledger for failed documents.", MARGIN, y, width)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def long_pdf(pages: int = 600) -> bytes:
    """``pages`` pages of 45 lines of 10 pt text each, with a running header and page numbers."""
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(PAGE_WIDTH, PAGE_HEIGHT), pageCompression=1)
    for number in range(1, pages + 1):
        pdf.setFont("Times-Italic", 9)
        pdf.drawString(MARGIN, PAGE_HEIGHT - 40, "Long Report on Retrieval")
        pdf.setFont("Times-Roman", 10)
        for line in range(45):
            pdf.drawString(MARGIN, PAGE_HEIGHT - 70 - 16 * line,
                           f"Page {number} line {line}: the quick brown fox jumps over the lazy dog near the river bank.")
        pdf.drawCentredString(PAGE_WIDTH / 2, 30, str(number))
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


PLAIN_PAGE_TEXT = "The first page has an ordinary font with a Unicode map."
UNMAPPED_PAGE_TEXT = [
    "Glyph codes without a Unicode map must never reach the index.",
    "This page has an embedded font and no ToUnicode table.",
]


def unmapped_glyphs_pdf() -> bytes:
    """Page 1 in a standard font; page 2 in an embedded TrueType font written as glyph ids
    (Identity-H) with no way back to Unicode, so pdfminer reads ``(cid:N)`` codes while the
    page renders (and OCRs) fine. Built with PDFium (reportlab writes no CID fonts); the
    ``/ToUnicode`` key and the Identity ordering (pdfminer's fallback to the font's own cmap)
    are then renamed in place."""
    import ctypes
    from pathlib import Path

    import pypdfium2
    import pypdfium2.raw as pdfium_c
    import reportlab

    pdf = pypdfium2.PdfDocument.new()
    font_data = (Path(reportlab.__file__).parent / "fonts" / "Vera.ttf").read_bytes()
    font_buffer = (ctypes.c_ubyte * len(font_data)).from_buffer_copy(font_data)
    fonts = [pdfium_c.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica"),
             pdfium_c.FPDFText_LoadFont(pdf.raw, font_buffer, len(font_data), pdfium_c.FPDF_FONT_TRUETYPE, True)]
    for font, sentences in zip(fonts, [[PLAIN_PAGE_TEXT], UNMAPPED_PAGE_TEXT], strict=True):
        page = pdf.new_page(PAGE_WIDTH, PAGE_HEIGHT)
        for row, sentence in enumerate(sentences):
            text = pdfium_c.FPDFPageObj_CreateTextObj(pdf.raw, font, ctypes.c_float(16))
            wide = ctypes.create_string_buffer((sentence + "\x00").encode("utf-16-le"))
            pdfium_c.FPDFText_SetText(text, ctypes.cast(wide, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
            pdfium_c.FPDFPageObj_Transform(text, 1, 0, 0, 1, 40, PAGE_HEIGHT - 80 - 40 * row)
            pdfium_c.FPDFPage_InsertObject(page.raw, text)
        page.gen_content()
    buffer = io.BytesIO()
    pdf.save(buffer)
    pdf.close()
    return buffer.getvalue().replace(b"/ToUnicode", b"/Xounicode").replace(b"(Identity)", b"(Identitx)")
