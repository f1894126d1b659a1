"""Markdown, HTML and plain text: parsed here, with headings kept as section paths."""

from __future__ import annotations

import re

import yaml

from assets.ingestion.encodings import decode_html, decode_text
from assets.ingestion.loaders import ParseRequest, loader
from assets.screening.hidden_text import is_hidden_element
from core.tables import markdown_table
from core.types import Block, ParsedDocument, enter_heading, section_path

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)
_ATX_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


@loader("text/markdown")
def load_markdown(request: ParseRequest) -> ParsedDocument:
    text = decode_text(request.data, request.name.suffix)
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

    def flush(kind: str = "text") -> None:
        if any(line.strip() for line in lines):
            blocks.append(Block(text="\n".join(lines).strip(), section=section_path(path), kind=kind))
        lines.clear()

    source_lines = text.splitlines()
    index = 0
    while index < len(source_lines):
        line = source_lines[index]
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _ATX_HEADING.match(line)
        following = source_lines[index + 1] if index + 1 < len(source_lines) else ""
        if heading:
            flush()
            level, title = len(heading.group(1)), heading.group(2).strip()
            first_h1 = first_h1 or (title if level == 1 else None)
            path = enter_heading(path, level, title)
            lines.append(title)
        elif not in_fence and _TABLE_LINE.match(line) and _TABLE_SEPARATOR.match(following):
            flush()
            table = [line, following]
            index += 2
            while index < len(source_lines) and _TABLE_LINE.match(source_lines[index]):
                table.append(source_lines[index])
                index += 1
            lines.extend(table)
            flush("table")
            continue
        else:
            lines.append(line)
        index += 1
    flush()
    return ParsedDocument(
        title=str(meta.get("title") or first_h1 or request.fallback_title),
        content_type="text/markdown",
        blocks=blocks,
        author=optional_str(meta.get("author")),
        date=optional_str(meta.get("date")),
    )


def optional_str(value) -> str | None:
    return None if value in (None, "") else str(value)


_HTML_NOISE = ["script", "style", "noscript", "nav", "footer", "header", "aside", "form", "template",
               "svg", "iframe", "button"]
# Boilerplate marked by class, id, role or aria-label rather than by tag (cookie banners, menus).
_HTML_NOISE_MARKERS = re.compile(
    r"(?:^|[\s_-])(?:cookies?|consent|gdpr|banner|breadcrumbs?|navbar|nav|menu|sidebar|footer|"
    r"skip-link|newsletter|share|social|ads?|advert\w*)(?:$|[\s_-])",
    re.IGNORECASE,
)
_HTML_NOISE_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog"}
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_HTML_TEXT_TAGS = ["p", "li", "pre", "blockquote", "dt", "dd", "figcaption", "td", "th", "caption"]


@loader("text/html")
def load_html(request: ParseRequest) -> ParsedDocument:
    return parse_html(decode_html(request.data, request.name.suffix), request.fallback_title)


def parse_html(text: str, fallback_title: str, content_type: str = "text/html") -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "lxml")
    title_tag = soup.find("title")
    meta = {m.get("name", "").lower(): m.get("content") for m in soup.find_all("meta") if m.get("name")}
    _strip_boilerplate(soup)
    _alt_text_as_text(soup)
    first_h1 = soup.find("h1")
    body = soup.body or soup
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    for element in body.find_all(list(_HTML_HEADINGS) + ["table"] + _HTML_TEXT_TAGS):
        if element.find_parent("table") is not None:
            continue  # a nested table's cells are rendered with their outer table
        kind = "text"
        if element.name in _HTML_HEADINGS:
            level, heading = _HTML_HEADINGS[element.name], element.get_text(" ", strip=True)
            path = enter_heading(path, level, heading)
            content = heading
        elif element.name == "table":
            content, kind = html_table_markdown(element), "table"
        elif element.find_parent(_HTML_TEXT_TAGS) is not None:
            continue  # nested inside a block already taken (a <p> in an <li>)
        else:
            content = element.get_text(" ", strip=True)
        if content:
            blocks.append(Block(text=content, section=section_path(path), kind=kind))
    title = (title_tag.get_text(strip=True) if title_tag else "") or (
        first_h1.get_text(strip=True) if first_h1 else ""
    )
    return ParsedDocument(
        title=title or fallback_title,
        content_type=content_type,
        blocks=blocks,
        author=meta.get("author"),
        date=meta.get("date"),
    )


def _strip_boilerplate(soup) -> None:
    """Remove what is not content: scripts, styles, navigation, headers, footers, banners,
    and what is styled out of sight (the hidden-text scan reads it from the bytes)."""
    for tag in soup(_HTML_NOISE):
        tag.decompose()
    for tag in soup.find_all(True):
        if tag.decomposed or tag.name in ("html", "body", "main", "article"):
            continue
        attrs = tag.attrs or {}
        markers = " ".join([*attrs.get("class", []), attrs.get("id", ""), attrs.get("aria-label", "")])
        hidden = attrs.get("hidden") is not None or attrs.get("aria-hidden") == "true" or is_hidden_element(tag)
        if hidden or attrs.get("role") in _HTML_NOISE_ROLES or _HTML_NOISE_MARKERS.search(markers):
            tag.decompose()


def _alt_text_as_text(soup) -> None:
    """An image's alt text is what a reader gets in its place (a screen reader, an image that
    did not load): it becomes text where the image stands, so it is indexed and screened."""
    enclosing = [*_HTML_HEADINGS, "table", *_HTML_TEXT_TAGS]
    for image in soup.find_all("img"):
        alt = " ".join((image.get("alt") or "").split())
        if not alt:
            continue
        if image.find_parent(enclosing) is None:
            paragraph = soup.new_tag("p")
            paragraph.string = alt
            image.replace_with(paragraph)
        else:
            image.replace_with(f" {alt} ")


def html_table_markdown(table) -> str:
    return markdown_table(
        [[cell.get_text(" ", strip=True) for cell in row.find_all(["th", "td"])] for row in table.find_all("tr")]
    )


@loader("text/plain")
def load_plain_text(request: ParseRequest) -> ParsedDocument:
    text = decode_text(request.data, request.name.suffix)
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    title = first_line if 0 < len(first_line) <= 120 else request.fallback_title
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return ParsedDocument(title=title, content_type="text/plain", blocks=[Block(text=p) for p in paragraphs])
