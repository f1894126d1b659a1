"""Extraction fidelity per file type: is what reaches the index what the document says?

    .venv/bin/python bench/fidelity.py [--stories N] [--json FILE]

Every Markdown document of the sample corpus becomes a *story* (title, headings, paragraphs,
tables), and each story is written out in every supported format: Markdown, HTML, plain text
in UTF-8, UTF-16 and UTF-32 (with and without a byte-order mark), cp1252 HTML, latin-1
Markdown, CSV, XLSX (one sheet per table), DOCX, PPTX, ODT, RTF, EPUB, EML, PDFs in one
column, two columns, book layout (running headers alternating on odd and even pages, page
numbers), as a paper (a full-width title and opening above two columns) and with word gaps instead of space characters (how TeX writes them), and legacy
.doc/.xls/.ppt when LibreOffice is installed. Each file is parsed and cleaned as ingestion
does (``parse_document``), chunked with the real tokenizer, and compared with the story it
was written from, which is the reference (exact, unlike a second extractor's output):

- ``recall``: share of the story's words found in the indexed text (as a multiset);
- ``order``: share of the story's adjacent word pairs found adjacent in the indexed text; run-
  together words, interleaved columns and headers inside paragraphs all lower it;
- ``noise``: share of indexed words the story does not have (running headers, page numbers,
  glyph codes, mojibake);
- ``headings``: share of the story's headings found in the chunks' section paths, for
  formats that carry headings;
- ``table hdr``: share of chunks holding table rows that also hold the table's header row;
- ``oversize``: share of chunks longer than the embedding model reads (the rest is lost).

Prints one row per type (the mean over its files) and, with ``--json``, writes every file's
figures. A file that is not indexed scores 0 on recall and order and is listed with its reason.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email.message import EmailMessage
from html import escape
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assets.ingestion.chunking import chunk_document, make_splitter
from assets.ingestion.loaders.legacy import convert_with_libreoffice, soffice_path
from assets.ingestion.parsing import parse_document
from core.types import DocumentRejected
from pipelines.settings import SAMPLE_CORPUS
from tests import format_fixtures, pdf_fixtures

# Every story gains this section, so every format is also checked for non-ASCII text; it is
# latin-1, so the 8-bit encodings can hold it.
ACCENTED = ("Accents", ("Résumé of the café meeting in Köln: the naïve façade plan, coût élevé, "
                        "Grüße from the señor at the piñata stand."))
WORD = re.compile(r"\w+")
CHUNK_TOKENS, OVERLAP_TOKENS = 200, 30
MODEL_MAX_TOKENS = 256  # all-MiniLM-L6-v2 reads this many tokens of a chunk
LEGACY_TIMEOUT_S = 180
BOOK_REPEATS = 3  # the book-layout PDF holds its story this many times, to have pages enough


@dataclass
class Story:
    """A document's content, independent of format: the reference every rendering is scored on."""

    title: str
    parts: list[tuple[str, object]] = field(default_factory=list)  # ("heading", (level, text)),
    # ("paragraph", text) or ("table", rows)

    @property
    def headings(self) -> list[str]:
        return [text for kind, value in self.parts if kind == "heading" for _, text in [value]]

    @property
    def tables(self) -> list[list[list[str]]]:
        return [value for kind, value in self.parts if kind == "table"]

    def words(self, *, tables: bool = True, prose: bool = True) -> list[str]:
        texts = [self.title] if prose else []
        for kind, value in self.parts:
            if kind == "heading" and prose:
                texts.append(value[1])
            elif kind == "paragraph" and prose:
                texts.append(value)
            elif kind == "table" and tables:
                texts += [cell for row in value for cell in row]
        return words(" ".join(texts))


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


_INLINE = [(re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"), (re.compile(r"[*_`]{1,3}([^*_`]+)[*_`]{1,3}"), r"\1")]


def _plain(text: str) -> str:
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def story_from_markdown(text: str) -> Story:
    """The sample corpus's Markdown as a story: ATX headings, paragraphs (list items each one
    paragraph), pipe tables."""
    story, lines = Story(title=""), text.splitlines()
    paragraph: list[str] = []

    def flush():
        if paragraph:
            story.parts.append(("paragraph", _plain(" ".join(paragraph))))
            paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if heading := re.match(r"^(#{1,6})\s+(.*)$", line):
            flush()
            if len(heading.group(1)) == 1 and not story.title:
                story.title = _plain(heading.group(2))
            else:
                story.parts.append(("heading", (len(heading.group(1)) - 1, _plain(heading.group(2)))))
        elif line.startswith("|"):
            flush()
            rows = []
            while index < len(lines) and lines[index].strip().startswith("|"):
                cells = [_plain(cell) for cell in lines[index].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):
                    rows.append(cells)
                index += 1
            story.parts.append(("table", rows))
            continue
        elif re.match(r"^([-*+]|\d+\.)\s+", line):
            flush()
            paragraph.append(re.sub(r"^([-*+]|\d+\.)\s+", "", line))
            flush()
        elif not line:
            flush()
        else:
            paragraph.append(line)
        index += 1
    flush()
    story.parts += [("heading", (1, ACCENTED[0])), ("paragraph", ACCENTED[1])]
    return story


# --- renderings ------------------------------------------------------------------------------

def to_markdown(story: Story) -> str:
    out = [f"# {story.title}"]
    for kind, value in story.parts:
        if kind == "heading":
            out.append("#" * (value[0] + 1) + " " + value[1])
        elif kind == "paragraph":
            out.append(value)
        else:
            out.append("\n".join(["| " + " | ".join(value[0]) + " |", "|" + " --- |" * len(value[0])]
                                 + ["| " + " | ".join(row) + " |" for row in value[1:]]))
    return "\n\n".join(out) + "\n"


def to_html(story: Story, charset: str = "utf-8") -> str:
    body = [f"<h1>{escape(story.title)}</h1>"]
    for kind, value in story.parts:
        if kind == "heading":
            body.append(f"<h{value[0] + 1}>{escape(value[1])}</h{value[0] + 1}>")
        elif kind == "paragraph":
            body.append(f"<p>{escape(value)}</p>")
        else:
            rows = [f"<tr>{''.join(f'<{tag}>{escape(cell)}</{tag}>' for cell in row)}</tr>"
                    for tag, row in [("th", value[0]), *(("td", row) for row in value[1:])]]
            body.append(f"<table>{''.join(rows)}</table>")
    return (f"<html><head><meta charset=\"{charset}\"><title>{escape(story.title)}</title></head>"
            f"<body>{''.join(body)}</body></html>")


def to_text(story: Story) -> str:
    out = [story.title]
    for kind, value in story.parts:
        if kind == "heading":
            out.append(value[1])
        elif kind == "paragraph":
            out.append(value)
        else:
            out.append("\n".join("\t".join(row) for row in value))
    return "\n\n".join(out) + "\n"


def to_csv(rows: list[list[str]]) -> bytes:
    import csv

    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def to_xlsx(story: Story) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for number, rows in enumerate(story.tables, 1):
        sheet = workbook.create_sheet(f"Table {number}")
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def to_docx(story: Story) -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = story.title
    document.add_heading(story.title, 0)
    for kind, value in story.parts:
        if kind == "heading":
            document.add_heading(value[1], value[0])
        elif kind == "paragraph":
            document.add_paragraph(value)
        else:
            format_fixtures.add_docx_table(document, value)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def to_pptx(story: Story) -> bytes:
    """One slide per top-level section: its heading as the slide title, its text as the body,
    tables as slide tables."""
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    presentation.core_properties.title = story.title
    slide = None
    for kind, value in [("heading", (1, story.title)), *story.parts]:
        if kind == "heading":
            slide = presentation.slides.add_slide(presentation.slide_layouts[1])
            slide.shapes.title.text = value[1]
            body = slide.placeholders[1].text_frame
        elif kind == "paragraph":
            body.add_paragraph().text = value
        else:
            shape = slide.shapes.add_table(len(value), len(value[0]), Inches(0.5), Inches(4), Inches(9), Inches(2))
            for r, cells in enumerate(value):
                for c, text in enumerate(cells[:len(value[0])]):
                    shape.table.cell(r, c).text = text
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def to_eml(story: Story) -> bytes:
    message = EmailMessage()
    message["From"] = "Jane Roe <jane@example.com>"
    message["To"] = "all-staff@example.com"
    message["Subject"] = story.title
    message.set_content(to_text(story).split("\n\n", 1)[1])
    message.add_alternative(to_html(story), subtype="html")
    return message.as_bytes()


def pandoc(story: Story, target: str, suffix: str) -> bytes:
    import pypandoc

    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / f"out{suffix}"
        pypandoc.convert_text(to_markdown(story), target, format="md", outputfile=str(output),
                              extra_args=["--standalone", f"--metadata=title:{story.title}"])
        return output.read_bytes()


def to_pdf(story: Story, layout: str) -> bytes:
    """``single``, ``columns`` (two frames per page), ``book`` (running headers that
    alternate between odd and even pages, and page numbers) or ``paper`` (a full-width title
    and opening paragraph above two columns, then two columns; a running header and page
    numbers), all through reportlab's layout engine with headings in larger bold type."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import (
        BaseDocTemplate,
        Frame,
        FrameBreak,
        NextPageTemplate,
        PageTemplate,
        Paragraph,
        Table,
    )

    styles = getSampleStyleSheet()
    width, height = A4
    margin = 60
    gap, column, top = 18, (width - 2 * margin - 18) / 2, 220

    def columns(height_: float) -> list:
        return [Frame(margin, margin, column, height_), Frame(margin + column + gap, margin, column, height_)]

    full = Frame(margin, margin, width - 2 * margin, height - 2 * margin)
    frames = {"columns": columns(height - 2 * margin), "paper": columns(height - 2 * margin)}.get(layout, [full])

    def running_lines(canvas, document):
        canvas.setFont("Helvetica", 8)
        number = canvas.getPageNumber()
        if layout == "paper":
            canvas.drawString(margin, height - 35, "Journal of Warehouse Operations, volume 12")
        elif layout == "book" and number % 2:
            canvas.drawRightString(width - margin, height - 35, f"Operations handbook, {story.title}")
        elif layout == "book":
            canvas.drawString(margin, height - 35, "Northwind Logistics internal reference")
        if layout in ("paper", "book"):
            canvas.drawCentredString(width / 2, 30, str(number))

    buffer = io.BytesIO()
    templates = [PageTemplate("later", frames=frames, onPage=running_lines)]
    flow = [Paragraph(escape(story.title), styles["Title"])]
    parts = story.parts
    if layout == "paper":
        frames = [Frame(margin, height - margin - top, width - 2 * margin, top), *columns(height - 2 * margin - top)]
        templates.insert(0, PageTemplate("first", frames=frames, onPage=running_lines))
        flow.insert(0, NextPageTemplate("later"))
        if parts and parts[0][0] == "paragraph":  # an opening paragraph: full width, like an abstract
            flow.append(Paragraph(escape(parts[0][1]), styles["BodyText"]))
            parts = parts[1:]
        flow.append(FrameBreak())
    document = BaseDocTemplate(buffer, pagesize=A4, title=story.title, pageTemplates=templates)
    for kind, value in parts:
        if kind == "heading":
            flow.append(Paragraph(escape(value[1]), styles[f"Heading{min(value[0], 3)}"]))
        elif kind == "paragraph":
            flow.append(Paragraph(escape(value), styles["BodyText"]))
        else:
            style = styles["BodyText"].clone("cell", fontSize=7, leading=8)
            flow.append(Table([[Paragraph(escape(cell), style) for cell in row] for row in value],
                              style=[("GRID", (0, 0), (-1, -1), 0.5, "black")]))
    if layout == "book":  # enough pages for running lines to repeat
        flow = flow * BOOK_REPEATS
    document.build(flow)
    return buffer.getvalue()


def to_gapped_pdf(story: Story) -> bytes:
    """Words placed one by one with a gap and no space character between them, at 9 pt: how TeX
    and many typesetters write a line, and what ran words together in real papers."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas as pdf_canvas

    buffer = io.BytesIO()
    canvas = pdf_canvas.Canvas(buffer, pagesize=A4)
    width, height = A4
    size, gap, margin = 9.0, 9.0 * 0.25, 60
    y = height - margin
    texts = [story.title] + [value[1] if kind == "heading" else value for kind, value in story.parts
                             if kind in ("heading", "paragraph")]
    for text in texts:
        for line in pdf_fixtures.wrap_words(text.split(), width - 2 * margin, "Helvetica", size, gap):
            if y < margin:
                canvas.showPage()
                y = height - margin
            pdf_fixtures.draw_words(canvas, line, margin, y, "Helvetica", size, gap)
            y -= size * 1.3
        y -= size * 0.7
    canvas.save()
    return buffer.getvalue()


def legacy(data: bytes, suffix: str, target: str) -> bytes | None:
    """The file converted by LibreOffice to a legacy format, or ``None`` without LibreOffice."""
    return convert_with_libreoffice(data, suffix, target, LEGACY_TIMEOUT_S) if soffice_path() else None


@dataclass(frozen=True)
class Rendering:
    """One file and its reference: the words it says, in order, and the headings it has."""

    type: str
    name: str
    data: bytes
    reference: list[str]
    headings: list[str]


def renderings(story: Story, slug: str) -> list[Rendering]:
    md, text, html = to_markdown(story), to_text(story), to_html(story)
    everything, prose = story.words(), story.words(tables=False)

    def file(kind: str, suffix: str, data: bytes, reference: list[str] = everything, headed: bool = True):
        return Rendering(kind, f"{slug}{suffix}", data, reference, story.headings if headed else [])

    docx, pptx = to_docx(story), to_pptx(story)
    files = [
        file("md", ".md", md.encode()),
        file("html", ".html", html.encode()),
        file("txt", ".txt", text.encode(), headed=False),
        file("txt utf-16 bom", "-utf16.txt", text.encode("utf-16"), headed=False),
        file("txt utf-16le", "-utf16le.txt", text.encode("utf-16-le"), headed=False),
        file("txt utf-32 bom", "-utf32.txt", text.encode("utf-32"), headed=False),
        file("html cp1252", "-cp1252.html", to_html(story, "windows-1252").encode("cp1252")),
        file("md latin-1", "-latin1.md", md.encode("latin-1")),
        file("docx", ".docx", docx),
        file("pptx", ".pptx", pptx),
        file("odt", ".odt", pandoc(story, "odt", ".odt")),
        file("rtf", ".rtf", pandoc(story, "rtf", ".rtf")),
        file("epub", ".epub", pandoc(story, "epub", ".epub")),
        file("eml", ".eml", to_eml(story), headed=False),
        file("pdf 1 column", ".pdf", to_pdf(story, "single")),
        file("pdf 2 columns", "-columns.pdf", to_pdf(story, "columns")),
        file("pdf paper", "-paper.pdf", to_pdf(story, "paper")),
        file("pdf book", "-book.pdf", to_pdf(story, "book"), everything * BOOK_REPEATS),
        file("pdf word gaps", "-gaps.pdf", to_gapped_pdf(story), prose, headed=False),
    ]
    legacy_sources = [(docx, ".docx", "doc", everything, True), (pptx, ".pptx", "ppt", everything, True)]
    if story.tables:
        xlsx, csv = to_xlsx(story), to_csv(story.tables[0])
        cells = words(" ".join(cell for rows in story.tables for row in rows for cell in row))
        first = words(" ".join(cell for row in story.tables[0] for cell in row))
        files += [file("xlsx", ".xlsx", xlsx, cells, headed=False),
                  file("csv", ".csv", csv, first, headed=False),
                  file("csv utf-16 bom", "-utf16.csv", csv.decode().encode("utf-16"), first, headed=False)]
        legacy_sources.append((xlsx, ".xlsx", "xls", cells, False))
    for data, suffix, target, reference, headed in legacy_sources:
        if (converted := legacy(data, suffix, target)) is not None:
            files.append(file(target, f".{target}", converted, reference, headed))
    return files


def wide_csv(columns: int = 370, rows: int = 10) -> Rendering:
    """A table far wider than a chunk, as analytics tools export them."""
    table = [[f"metric {column} name" for column in range(columns)]]
    table += [[f"row{row} value{column}" for column in range(columns)] for row in range(rows)]
    return Rendering("csv wide", "wide.csv", to_csv(table), words(" ".join(c for r in table for c in r)), [])


def pair_recall(reference: list[str], found: list[str]) -> float:
    pairs, seen = Counter(pairwise(reference)), Counter(pairwise(found))
    return sum((pairs & seen).values()) / max(sum(pairs.values()), 1)


def header_share(chunks: list[dict]) -> float | None:
    """Of the chunks holding table rows, the share that also hold a header row (a row followed
    by the ``| --- |`` separator)."""
    with_rows = [chunk["text"] for chunk in chunks if re.search(r"^\|(?!( --- \|)+$).*\|$", chunk["text"], re.MULTILINE)]
    if not with_rows:
        return None
    return sum(bool(re.search(r"^\|.*\|\n\|( --- \|)+$", text, re.MULTILINE)) for text in with_rows) / len(with_rows)


def score(rendering: Rendering, splitter, count_tokens) -> dict:
    started = time.perf_counter()
    document = parse_document(f"file:///fidelity/{rendering.name}", rendering.data)
    seconds = time.perf_counter() - started
    chunks = chunk_document(document, source=rendering.name, doc_id="0" * 64, index_version="fidelity",
                            pii_entities={}, splitter=splitter, count_tokens=count_tokens, chunk_size=CHUNK_TOKENS)
    found = words(document.text)
    reference = rendering.reference
    overlap = Counter(reference) & Counter(found)
    sections = {part.strip().lower() for chunk in chunks for part in (chunk["section"] or "").split(" > ")}
    headings = rendering.headings
    return {
        "type": rendering.type,
        "file": rendering.name,
        "recall": sum(overlap.values()) / max(len(reference), 1),
        "order": pair_recall(reference, found),
        "noise": 1 - sum(overlap.values()) / max(len(found), 1),
        "headings": (sum(heading.lower() in sections for heading in headings) / len(headings)) if headings else None,
        "table_header": header_share(chunks),
        "chunks": len(chunks),
        "oversize": sum(chunk["token_count"] > MODEL_MAX_TOKENS for chunk in chunks) / max(len(chunks), 1),
        "seconds": seconds,
        "indexed": True,
    }


def mean(values: list) -> float | None:
    values = [value for value in values if value is not None]
    return sum(values) / len(values) if values else None


def table(rows: list[dict]) -> str:
    by_type: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_type[row["type"]].append(row)
    header = f"{'type':<16} {'indexed':>7} {'recall':>7} {'order':>7} {'noise':>7} {'headings':>9} {'table hdr':>9} " \
             f"{'oversize':>8} {'s/file':>7}"
    lines = [header, "-" * len(header)]
    for kind, group in by_type.items():
        cells = [mean([row[key] for row in group]) for key in ("recall", "order", "noise", "headings", "table_header",
                                                               "oversize", "seconds")]
        text = [f"{value:.3f}" if value is not None else "—" for value in cells]
        indexed = f"{sum(row['indexed'] for row in group)}/{len(group)}"
        lines.append(f"{kind:<16} {indexed:>7} {text[0]:>7} {text[1]:>7} {text[2]:>7} {text[3]:>9} {text[4]:>9} "
                     f"{text[5]:>8} {text[6]:>7}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=6, help="sample-corpus Markdown documents to render (max 14)")
    parser.add_argument("--json", type=Path, help="write every file's figures here")
    args = parser.parse_args()

    from resources.embedders import SentenceTransformerEmbedder

    count_tokens = SentenceTransformerEmbedder().count_tokens
    splitter = make_splitter(CHUNK_TOKENS, OVERLAP_TOKENS, count_tokens)
    rows, failures = [], []
    files = [wide_csv()]
    for path in sorted(SAMPLE_CORPUS.rglob("*.md"))[:args.stories]:
        files += renderings(story_from_markdown(path.read_text()), path.stem)
    for rendering in files:
        try:
            rows.append(score(rendering, splitter, count_tokens))
        except DocumentRejected as rejected:
            failures.append({"type": rendering.type, "file": rendering.name, "reason": rejected.reason})
            rows.append({"type": rendering.type, "file": rendering.name, "recall": 0.0, "order": 0.0,
                         "noise": None, "headings": None, "table_header": None, "chunks": 0, "oversize": None, "seconds": None,
                         "indexed": False})
    print(table(rows))
    for failure in failures:
        print(f"NOT INDEXED {failure['type']:<16} {failure['file']}: {failure['reason']}")
    if args.json:
        args.json.write_text(json.dumps({"files": rows, "not_indexed": failures}, indent=2))


if __name__ == "__main__":
    main()
