"""Text a reader never sees: hidden or white-on-white HTML, tiny or white text in PDFs.

Parsing keeps such text (it is in the markup) but cannot say it was hidden, and cleaning
discards the markup; so this reads the original bytes, beside the parser.
"""

from __future__ import annotations

import io
import re

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
    """The hidden fragments of an HTML or PDF document (empty for other types)."""
    if content_type == "text/html":
        return _hidden_html(data.decode("utf-8", "replace"))
    if content_type == "application/pdf":
        return _hidden_pdf(data)
    return []


def _hidden_html(markup: str) -> list[str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    fragments = []
    for element in soup.find_all(True):
        if any(_is_hidden(parent) for parent in element.parents if parent.name):
            continue  # its text is already taken with the hidden ancestor
        if _is_hidden(element) and (text := element.get_text(" ", strip=True)):
            fragments.append(text)
    return fragments


def _is_hidden(element) -> bool:
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
            hidden = [char["text"] for char in page.chars if _invisible_pdf_char(char)]
            if text := "".join(hidden).strip():
                fragments.append(text)
    return fragments


_WHITE_PDF_COLORS = {(1,), (1, 1, 1), (0, 0, 0, 0)}  # gray, RGB, CMYK


def _invisible_pdf_char(char: dict) -> bool:
    color = char.get("non_stroking_color")
    color = tuple(color) if isinstance(color, (list, tuple)) else (color,)
    return char.get("size", 12) < _TINY_PDF_FONT or color in _WHITE_PDF_COLORS
