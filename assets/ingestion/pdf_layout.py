"""PDF page text into blocks: glyph garbage out, running headers and page numbers out, headings
from font size and weight into section paths. Pure functions over lines already in reading
order (the loader gets them from pdfminer's layout analysis)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from assets.ingestion.cleaning import dehyphenate
from core.types import Block, enter_heading, section_path

_GLYPH_CODE = re.compile(r"\(cid:\d+\)")
# C0 controls except tab and newline, DEL, and the replacement character of an unmapped glyph.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffd]")
_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(
    r"(?:page\s+)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?|[-\u2013\u2014]\s*\d{1,4}\s*[-\u2013\u2014]|[ivxlc]{1,7}",
    re.IGNORECASE,
)
_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
MAX_HEADING_LEVELS = 6
MAX_HEADING_CHARS = 150


@dataclass(frozen=True)
class TextLine:
    """One line of a page as read: its text, median glyph size (points) and whether it is bold."""

    text: str
    size: float = 10.0
    bold: bool = False


@dataclass
class PageText:
    """What a page contributes: its lines in reading order and its tables as Markdown."""

    number: int
    lines: list[TextLine]
    tables: list[str]


def is_bold_font(fontname: str) -> bool:
    return bool(_BOLD_FONT.search(fontname))


def strip_glyph_garbage(text: str) -> tuple[str, int]:
    """``text`` without unmapped glyph codes (``(cid:12)``), control characters and U+FFFD,
    and how many such glyphs there were (to judge whether the page is garbage)."""
    codes = len(_GLYPH_CODE.findall(text))
    text = _GLYPH_CODE.sub("", text)
    controls = len(_CONTROL.findall(text))
    return _CONTROL.sub("", text), codes + controls


def is_garbage_page(glyphs: int, garbage: int) -> bool:
    """Of a page's ``glyphs``, ``garbage`` are unreadable: if that is much of the page (a font
    without a Unicode map), OCR reads it better."""
    return garbage > 20 and garbage >= 0.3 * glyphs


def is_page_number(text: str) -> bool:
    """ "12", "Page 3 of 9", "3/9", "- 4 -", "xiv"."""
    return bool(_PAGE_NUMBER.fullmatch(text.strip()))


def remove_running_lines(pages: list[list[TextLine]], edge_lines: int = 2, min_share: float = 0.6) -> list[list[TextLine]]:
    """Drop running headers and footers: page numbers among the first or last ``edge_lines``
    lines of a page, and edge lines that repeat (numbers aside, so "Chapter 3" matches
    "Chapter 4") on at least ``min_share`` of all pages, of the odd pages or of the even pages
    (book headers alternate). A line that repeats mid-page is content and stays."""
    def key(line: TextLine) -> str:
        return _DIGITS.sub("#", " ".join(line.text.split()).lower())

    def edges(lines: list[TextLine]) -> set[int]:
        return set(range(min(edge_lines, len(lines)))) | set(range(max(len(lines) - edge_lines, 0), len(lines)))

    running: set[str] = set()
    if len(pages) >= 2:  # a two-page letter or paper has its running header on both pages
        for parity in (None, 0, 1):
            chosen = [lines for number, lines in enumerate(pages) if parity is None or number % 2 == parity]
            seen = Counter(k for lines in chosen for k in {key(lines[i]) for i in edges(lines)})
            running |= {k for k, count in seen.items() if count >= 2 and count >= min_share * len(chosen)}
    return [
        [line for i, line in enumerate(lines) if not (i in edges(lines) and (key(line) in running or is_page_number(line.text)))]
        for lines in pages
    ]


def body_size(pages: list[list[TextLine]]) -> float:
    """The size most of the text is set in, weighted by characters."""
    sizes = Counter()
    for lines in pages:
        for line in lines:
            sizes[round(line.size, 1)] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def heading_levels(pages: list[list[TextLine]], body: float) -> dict[tuple[float, bool], int]:
    """Heading level by style (size, bold): styles larger than the body text, or bold at body
    size, ranked largest first (1 = top level), at most ``MAX_HEADING_LEVELS``."""
    styles = {
        (round(line.size, 1), line.bold)
        for lines in pages for line in lines
        if _heading_like(line, body)
    }
    ranked = sorted(styles, key=lambda style: (-style[0], not style[1]))[:MAX_HEADING_LEVELS]
    return {style: level for level, style in enumerate(ranked, 1)}


def _heading_like(line: TextLine, body: float) -> bool:
    short = 0 < len(line.text) <= MAX_HEADING_CHARS and any(c.isalpha() for c in line.text)
    larger = line.size >= body * 1.15
    return short and (larger or (line.bold and line.size >= body * 0.95 and not line.text.rstrip().endswith(".")))


def page_blocks(pages: list[PageText]) -> list[Block]:
    """Blocks for the document: running lines removed, a new block at each heading (heading
    text first, its path as ``section``), each block on one page; tables after their page's
    text, under the heading in force."""
    kept = remove_running_lines([page.lines for page in pages])
    body = body_size(kept)
    levels = heading_levels(kept, body)
    path: list[tuple[int, str]] = []
    blocks: list[Block] = []
    for page, lines in zip(pages, kept, strict=True):
        groups = list(_heading_groups(lines, path, levels, body))
        for heading_path, group in groups:
            if text := dehyphenate("\n".join(group)).strip():
                blocks.append(Block(text=text, section=section_path(heading_path), page=page.number))
        path = groups[-1][0]
        blocks += [Block(text=table, section=section_path(path), page=page.number, kind="table") for table in page.tables]
    return blocks


def _heading_groups(lines: list[TextLine], path: list[tuple[int, str]], levels: dict, body: float):
    """A page's lines cut at each heading: (heading path, lines) pairs, starting under ``path``
    (the path in force at the end of the previous page). A heading wrapped over two lines of
    the same style is one heading."""
    group: list[str] = []
    previous_style = None
    for line in lines:
        style = (round(line.size, 1), line.bold)
        level = levels.get(style) if _heading_like(line, body) else None
        if level is not None and style == previous_style and len(group) == 1:
            group[0] = f"{group[0]} {line.text}"
            path = [*path[:-1], (level, group[0])]
            continue
        if level is not None:
            yield path, group
            path, group = enter_heading(path, level, line.text.strip()), []
        previous_style = style if level is not None else None
        group.append(line.text)
    yield path, group
