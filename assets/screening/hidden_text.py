"""Text a reader never sees: hidden or white-on-white HTML and HTML comments, tiny or white
text in PDFs and DOCX, hidden PPTX slides, hidden XLSX sheets, rows and columns, and text
whose words invisible characters split.

Parsing keeps HTML and PDF hidden text (it is in the markup) but cannot say it was hidden,
and cleaning discards the markup; so for those this reads the original bytes, beside the
parser. Office loaders leave hidden parts out of the text themselves (they cannot be told
apart afterwards) with the helpers here, and hand them on as hidden text. Invisible
characters are measured on the loader's text before cleaning strips them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable

from assets.ingestion.encodings import decode_html, parse_eml, part_text
from assets.screening.poisoning import invisible_characters
from core.types import DocumentRejected

_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|opacity\s*:\s*0(?:\.0+)?\s*(?:;|$)"
    r"|font-size\s*:\s*(?:0|0?\.\d+|1)(?:px|pt|em|rem)?\s*(?:;|$)",
    re.IGNORECASE,
)
_COLOR = re.compile(r"(?<![-\w])color\s*:\s*([^;]+)", re.IGNORECASE)
_BACKGROUND = re.compile(r"background(?:-color)?\s*:\s*([^;]+)", re.IGNORECASE)
_WHITE = {"white", "#fff", "#ffffff", "rgb(255,255,255)", "rgba(255,255,255,1)"}
_TINY_PDF_FONT = 3.0  # points; body text is 8 or more


def hidden_text(content_type: str | None, data: bytes) -> list[str]:
    """The hidden fragments of an HTML, e-mail (its HTML body) or PDF document (empty for
    other types)."""
    if content_type == "text/html":
        return _hidden_html(decode_html(data, ".html"))
    if content_type == "message/rfc822":
        return _hidden_html(html) if (html := _html_body(data)) else []
    if content_type == "application/pdf":
        return _hidden_pdf(data)
    return []


def _html_body(data: bytes) -> str:
    """The HTML part, decoded as the e-mail loader decodes it (UTF-16 files, declared charsets)."""
    body = parse_eml(data).get_body(preferencelist=("html",))
    try:
        return part_text(body) if body is not None else ""
    except DocumentRejected:
        return ""  # not indexed either: the loader took the plain part


def _hidden_html(markup: str) -> list[str]:
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(markup, "lxml")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    fragments = [text for comment in soup.find_all(string=lambda s: isinstance(s, Comment))
                 if (text := " ".join(comment.split()))]
    for element in soup.find_all(True):
        if any(is_hidden_element(parent) for parent in element.parents if parent.name):
            continue  # its text is already taken with the hidden ancestor
        if is_hidden_element(element) and (text := element.get_text(" ", strip=True)):
            fragments.append(text)
    return fragments


def is_hidden_element(element) -> bool:
    """An HTML element styled out of sight: hidden, transparent, tiny, or its background's colour."""
    style = element.get("style") or ""
    if element.has_attr("hidden") or _HIDDEN_STYLE.search(style):
        return True
    color = _COLOR.search(style)
    return bool(color) and _normalise_color(color.group(1)) == _background_of(element)


def _background_of(element) -> str:
    for node in [element, *element.parents]:
        if node.name and (match := _BACKGROUND.search(node.get("style") or "")):
            return _normalise_color(match.group(1))
    return "white"


def _normalise_color(value: str) -> str:
    compact = re.sub(r"\s+|!important", "", value.lower())
    return "white" if compact in _WHITE else compact


def _hidden_pdf(data: bytes) -> list[str]:
    import pdfplumber

    fragments = []
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            hidden = [char["text"] for char in page.chars if is_invisible_pdf_char(char)]
            page.close()  # frees the page's parsed objects: a 600-page PDF otherwise holds 4 GB
            if text := "".join(hidden).strip():
                fragments.append(text)
    return fragments


_WHITE_PDF_COLORS = {(1,), (1, 1, 1), (0, 0, 0, 0)}  # gray, RGB, CMYK


def is_invisible_pdf_char(char: dict) -> bool:
    """A PDF character below 3 pt or filled white."""
    color = char.get("non_stroking_color")
    color = tuple(color) if isinstance(color, (list, tuple)) else (color,)
    return char.get("size", 12) < _TINY_PDF_FONT or color in _WHITE_PDF_COLORS


def invisible_character_texts(texts: Iterable[str]) -> list[str]:
    """The texts (as extracted, before cleaning) in which zero-width characters split words
    or bidi controls reorder what a reader sees: cleaning would strip the evidence."""
    return [text for text in texts if invisible_characters(text)]


WORD_NS = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_WHITE_HEX = {"FFFFFF", "FFFFFFFF"}
_TINY_DOCX_HALF_POINTS = 6  # w:sz is in half-points: below 3 pt


def remove_hidden_runs(root) -> list[str]:
    """Remove the hidden runs (``w:vanish``, white or below-3-pt text) from a DOCX body's XML
    tree, and return their text, one fragment per paragraph."""
    background = root.find(f"{WORD_NS}background")
    white_shows = background is not None and (background.get(f"{WORD_NS}color") or "").upper() not in (*_WHITE_HEX, "AUTO")
    hidden = [run for run in root.iter(f"{WORD_NS}r") if _hidden_run(run, white_shows)]
    by_paragraph: dict = {}
    for run in hidden:
        paragraph = next(run.iterancestors(f"{WORD_NS}p"), None)
        by_paragraph.setdefault(paragraph, []).append("".join(t.text or "" for t in run.iter(f"{WORD_NS}t")))
    for run in hidden:
        if run.getparent() is not None:
            run.getparent().remove(run)
    return [text for texts in by_paragraph.values() if (text := "".join(texts).strip())]


def _hidden_run(run, white_shows: bool) -> bool:
    """Vanished, tiny, or white where nothing suggests a dark background: white text in a
    table (cell shading often comes from a table style) or on shading stays visible."""
    properties = run.find(f"{WORD_NS}rPr")
    if properties is None:
        return False
    vanish, color, size = (properties.find(f"{WORD_NS}{name}") for name in ("vanish", "color", "sz"))
    if vanish is not None and vanish.get(f"{WORD_NS}val", "true") not in ("0", "false", "off"):
        return True
    if (color is not None and (color.get(f"{WORD_NS}val") or "").upper() in _WHITE_HEX and not white_shows
            and not _shaded(run)):
        return True
    size_value = size.get(f"{WORD_NS}val") if size is not None else None
    return bool(size_value and size_value.isdigit() and int(size_value) < _TINY_DOCX_HALF_POINTS)


def _shaded(run) -> bool:
    if any(ancestor.tag == f"{WORD_NS}tc" for ancestor in run.iterancestors()):
        return True
    shading = [run.find(f"{WORD_NS}rPr/{WORD_NS}shd"), run.find(f"{WORD_NS}rPr/{WORD_NS}highlight"),
               run.getparent().find(f"{WORD_NS}pPr/{WORD_NS}shd")]
    return any(s is not None and (s.get(f"{WORD_NS}fill") or s.get(f"{WORD_NS}val") or "").upper()
               not in (*_WHITE_HEX, "AUTO", "NONE", "WHITE", "") for s in shading)


def hidden_slides(data: bytes) -> set[int]:
    """The numbers (from 1) of a PPTX's slides hidden from the slide show."""
    import pptx

    presentation = pptx.Presentation(io.BytesIO(data))
    return {number for number, slide in enumerate(presentation.slides, 1)
            if slide.element.get("show") in ("0", "false")}


def hidden_rows_and_columns(sheet) -> tuple[set[int], set[int]]:
    """The 1-based indices of an openpyxl worksheet's hidden rows and columns."""
    rows = {index for index, dimension in sheet.row_dimensions.items() if dimension.hidden}
    columns = {index for dimension in sheet.column_dimensions.values() if dimension.hidden
               for index in range(dimension.min or 0, (dimension.max or dimension.min or 0) + 1) if index}
    return rows, columns
