"""Turn a document's bytes into a ParsedDocument (title, metadata, sectioned blocks).

Bad input raises ``DocumentRejected`` with a reason an operator can act on.
"""

from __future__ import annotations

import io
import re
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse

import yaml

from assets.ingestion.cleaning import clean_text, detect_language
from assets.ingestion.documents import Block, ParsedDocument, quarantine

CONTENT_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".pdf": "application/pdf",
}
_TEXT_TYPES = {"text/markdown", "text/html", "text/plain"}


def source_name(source: str) -> PurePosixPath:
    return PurePosixPath(unquote(urlparse(source).path))


def content_type_of(source: str) -> str | None:
    return CONTENT_TYPES.get(source_name(source).suffix.lower())


def default_title(source: str) -> str:
    return re.sub(r"[-_]+", " ", source_name(source).stem).strip().capitalize()


def parse_document(source: str, data: bytes) -> ParsedDocument:
    content_type = content_type_of(source)
    if content_type is None:
        suffix = source_name(source).suffix or "(none)"
        raise quarantine(
            f"unsupported file type {suffix}; supported: {', '.join(sorted(CONTENT_TYPES))}"
        )
    if not data:
        raise quarantine("empty file (0 bytes)")
    if content_type in _TEXT_TYPES:
        text = decode_text(data, source_name(source).suffix)
        parser = {"text/markdown": parse_markdown, "text/html": parse_html, "text/plain": parse_plain_text}
        document = parser[content_type](text, default_title(source))
    else:
        document = parse_pdf(data, default_title(source))
    document.blocks = [
        Block(text=cleaned, section=block.section, page=block.page)
        for block in document.blocks
        if (cleaned := clean_text(block.text))
    ]
    if not document.blocks:
        raise quarantine("no text content after parsing and cleaning")
    document.language = document.language or detect_language(document.text)
    return document


def decode_text(data: bytes, suffix: str) -> str:
    """Strict UTF-8: a wrong encoding must be fixed at the source, not guessed silently."""
    sample = data[:8192]
    if b"\x00" in sample or _control_ratio(sample) > 0.1:
        raise quarantine(f"binary content in a {suffix} file (not text); check the file type")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise quarantine(
            f"not valid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "re-save the file as UTF-8"
        ) from None


def _control_ratio(sample: bytes) -> float:
    if not sample:
        return 0.0
    controls = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13))
    return controls / len(sample)


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)
_ATX_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(text: str, fallback_title: str) -> ParsedDocument:
    meta: dict = {}
    if match := _FRONT_MATTER.match(text):
        try:
            loaded = yaml.safe_load(match.group(1))
            meta = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError:
            meta = {}
        text = text[match.end():]
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False
    first_h1: str | None = None

    def flush() -> None:
        if any(line.strip() for line in lines):
            blocks.append(Block(text="\n".join(lines).strip(), section=" > ".join(t for _, t in path)))
        lines.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _ATX_HEADING.match(line)
        if heading:
            flush()
            level, title = len(heading.group(1)), heading.group(2).strip()
            first_h1 = first_h1 or (title if level == 1 else None)
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
            lines.append(title)
        else:
            lines.append(line)
    flush()
    return ParsedDocument(
        title=str(meta.get("title") or first_h1 or fallback_title),
        content_type="text/markdown",
        blocks=blocks,
        author=_optional_str(meta.get("author")),
        date=_optional_str(meta.get("date")),
        acl=_acl(meta.get("acl")),
    )


def _optional_str(value) -> str | None:
    return None if value in (None, "") else str(value)


def _acl(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(item) for item in value]


_HTML_NOISE = ["script", "style", "noscript", "nav", "footer", "header", "aside", "form", "template", "svg"]
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_HTML_TEXT_TAGS = ["p", "li", "pre", "blockquote", "dt", "dd", "figcaption", "td", "th", "caption"]


def parse_html(text: str, fallback_title: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "lxml")
    for tag in soup(_HTML_NOISE):
        tag.decompose()
    title_tag = soup.find("title")
    first_h1 = soup.find("h1")
    meta = {m.get("name", "").lower(): m.get("content") for m in soup.find_all("meta") if m.get("name")}
    body = soup.body or soup
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    for element in body.find_all(list(_HTML_HEADINGS) + ["table"] + _HTML_TEXT_TAGS):
        if element.find_parent("table") is not None and element.name != "table":
            continue  # table cells are rendered with their table
        if element.name in _HTML_HEADINGS:
            level, heading = _HTML_HEADINGS[element.name], element.get_text(" ", strip=True)
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, heading)]
            content = heading
        elif element.name == "table":
            content = _html_table_markdown(element)
        elif element.find_parent(_HTML_TEXT_TAGS) is not None:
            continue  # nested inside a block already taken (a <p> in an <li>)
        else:
            content = element.get_text(" ", strip=True)
        if content:
            blocks.append(Block(text=content, section=" > ".join(t for _, t in path)))
    title = (title_tag.get_text(strip=True) if title_tag else "") or (
        first_h1.get_text(strip=True) if first_h1 else ""
    )
    return ParsedDocument(
        title=title or fallback_title,
        content_type="text/html",
        blocks=blocks,
        author=meta.get("author"),
        date=meta.get("date"),
    )


def _html_table_markdown(table) -> str:
    rows = [
        [cell.get_text(" ", strip=True).replace("|", "\\|") for cell in row.find_all(["th", "td"])]
        for row in table.find_all("tr")
    ]
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def parse_plain_text(text: str, fallback_title: str) -> ParsedDocument:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    title = first_line if 0 < len(first_line) <= 120 else fallback_title
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return ParsedDocument(
        title=title, content_type="text/plain", blocks=[Block(text=p) for p in paragraphs]
    )


def parse_pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    import pdfplumber
    from pdfminer.pdfdocument import PDFPasswordIncorrect
    from pdfplumber.utils.exceptions import PdfminerException

    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            info = pdf.metadata or {}
            pages = [(number, page.extract_text() or "") for number, page in enumerate(pdf.pages, 1)]
    except PdfminerException as error:  # pdfplumber wraps pdfminer's own exceptions
        cause = error.args[0] if error.args else error
        if isinstance(cause, PDFPasswordIncorrect):
            raise quarantine("encrypted PDF (password required)") from None
        raise quarantine(f"corrupt or truncated PDF ({cause})") from None
    blocks = [Block(text=text, page=number) for number, text in pages if text.strip()]
    if not blocks:
        raise quarantine(f"PDF has no extractable text on any of its {len(pages)} pages (needs OCR)")
    return ParsedDocument(
        title=_pdf_str(info.get("Title")) or fallback_title,
        content_type="application/pdf",
        blocks=blocks,
        author=_pdf_str(info.get("Author")),
        date=_pdf_date(info.get("CreationDate")),
    )


def _pdf_str(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.strip() or None if isinstance(value, str) else None


def _pdf_date(value) -> str | None:
    """PDF dates look like ``D:20250314120000+00'00'``; keep the calendar date."""
    text = _pdf_str(value) or ""
    match = re.match(r"(?:D:)?(\d{4})(\d{2})(\d{2})", text)
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}" if match else None
