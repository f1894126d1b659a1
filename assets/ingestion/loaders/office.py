"""Office and markup documents through unstructured's partitioners: DOCX, PPTX, ODT, RTF,
EPUB, reStructuredText and Org (the last five are converted by the pandoc binary that
``pypandoc-binary`` ships). Their elements become blocks: Title elements open sections at
their depth, Table elements become Markdown tables, headers and footers are dropped.
"""

from __future__ import annotations

import io
import re
import zipfile

from assets.ingestion.detection import DOCX, EPUB, ODT, PPTX, RTF
from assets.ingestion.encodings import decode_text
from assets.ingestion.loaders import ParseRequest, loader
from assets.ingestion.loaders.markup import html_table_markdown, optional_str
from assets.ingestion.loaders.unstructured_runtime import partitioner
from assets.screening.hidden_text import WORD_NS, hidden_slides, remove_hidden_runs
from core.types import Block, ParsedDocument, enter_heading, section_path

_PARTITIONERS = {
    DOCX: ("docx", "partition_docx"),
    PPTX: ("pptx", "partition_pptx"),
    ODT: ("odt", "partition_odt"),
    RTF: ("rtf", "partition_rtf"),
    EPUB: ("epub", "partition_epub"),
    "text/x-rst": ("rst", "partition_rst"),
    "text/org": ("org", "partition_org"),
}
_SKIPPED = {"Header", "Footer", "PageBreak", "PageNumber"}
_TEXT_MARKUP = {"text/x-rst", "text/org"}


@loader(*_PARTITIONERS)
def load_with_unstructured(request: ParseRequest) -> ParsedDocument:
    """Hidden DOCX runs and hidden PPTX slides are left out of the blocks and handed on as
    hidden text (scanned for instructions, never indexed)."""
    module, function = _PARTITIONERS[request.content_type]
    data, hidden = request.data, []
    if request.content_type == DOCX:
        data, hidden = _prepared_docx(data)
    elif request.content_type in _TEXT_MARKUP:  # pandoc reads UTF-8 only
        data = decode_text(data, request.name.suffix).encode()
    elements = partitioner(module, function)(file=io.BytesIO(data))
    if request.content_type == PPTX and (slides := hidden_slides(data)):
        hidden = [e.text for e in elements if e.metadata.page_number in slides and e.text.strip()]
        elements = [e for e in elements if e.metadata.page_number not in slides]
    blocks, first_title = blocks_from_elements(elements)
    title, author, date = _core_properties(request)
    return ParsedDocument(
        title=title or first_title or request.fallback_title,
        content_type=request.content_type,
        blocks=blocks,
        author=author,
        date=date,
        hidden_text=hidden,
    )


_WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"
_DOCX_BODY = "word/document.xml"
_DOCX_STYLES = "word/styles.xml"


def _prepared_docx(data: bytes) -> tuple[bytes, list[str]]:
    """The DOCX as unstructured should read it: its hidden runs removed (returned as hidden
    text), each picture's description (alt text) as text where the picture stands
    (unstructured drops pictures, a screen reader reads their descriptions), and headings
    marked the one way unstructured reads them (``_mark_headings``). The bytes come back
    unchanged when none of these applies."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        root = etree.fromstring(archive.read(_DOCX_BODY), parser)
        names = set(archive.namelist())
        styles = etree.fromstring(archive.read(_DOCX_STYLES), parser) if _DOCX_STYLES in names else None
        hidden = remove_hidden_runs(root)
        described = _alt_text_as_text(root)
        marked = _mark_headings(root, styles) if styles is not None else 0
        if not (hidden or described or marked):
            return data, []
        rewritten_parts = {_DOCX_BODY: root, _DOCX_STYLES: styles}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as rewritten:
            for member in archive.infolist():
                part = rewritten_parts.get(member.filename)
                content = (etree.tostring(part, xml_declaration=True, encoding="UTF-8", standalone=True)
                           if part is not None else archive.read(member))
                rewritten.writestr(member, content)
    return buffer.getvalue(), hidden


_BUILT_IN_HEADING = re.compile(r"heading ([1-9])", re.IGNORECASE)


def _mark_headings(root, styles) -> int:
    """Give every heading paragraph the built-in "Heading N" style; how many changed.

    unstructured knows a heading only by that style's name, but corporate templates derive
    their own heading styles from it ("Corp Heading 2" based on "Heading 2") or give a style
    or a paragraph an outline level, which is what Word's navigation pane reads. Missed, such
    a heading leaves every block after it under the previous, stale heading."""
    from lxml import etree

    defined = {}
    for style in styles.iter(f"{WORD_NS}style"):
        if style.get(f"{WORD_NS}type") == "paragraph":
            defined[style.get(f"{WORD_NS}styleId")] = style
    built_in = {int(match.group(1)): style_id for style_id, style in defined.items()
                if (match := _BUILT_IN_HEADING.fullmatch(_child_value(style, "name") or ""))}

    def level(style_id: str | None, seen: frozenset = frozenset()) -> int | None:
        style = defined.get(style_id)
        if style is None or style_id in seen:
            return None
        if match := _BUILT_IN_HEADING.fullmatch(_child_value(style, "name") or ""):
            return int(match.group(1))
        if (outline := _outline_level(style.find(f"{WORD_NS}pPr"))) is not None:
            return outline
        return level(_child_value(style, "basedOn"), seen | {style_id})

    levels = {style_id: level(style_id) for style_id in defined}
    changed = 0
    for paragraph in root.iter(f"{WORD_NS}p"):
        properties = paragraph.find(f"{WORD_NS}pPr")
        style_element = properties.find(f"{WORD_NS}pStyle") if properties is not None else None
        style_id = style_element.get(f"{WORD_NS}val") if style_element is not None else None
        heading = _outline_level(properties)
        heading = heading if heading is not None else levels.get(style_id)
        if heading is None or built_in.get(heading) == style_id:
            continue
        if heading not in built_in:
            built_in[heading] = f"Heading{heading}"
            style = etree.SubElement(styles, f"{WORD_NS}style", {f"{WORD_NS}type": "paragraph",
                                                                   f"{WORD_NS}styleId": built_in[heading]})
            etree.SubElement(style, f"{WORD_NS}name", {f"{WORD_NS}val": f"heading {heading}"})
        if properties is None:
            properties = etree.Element(f"{WORD_NS}pPr")
            paragraph.insert(0, properties)
        if style_element is None:
            style_element = etree.Element(f"{WORD_NS}pStyle")
            properties.insert(0, style_element)
        style_element.set(f"{WORD_NS}val", built_in[heading])
        changed += 1
    return changed


def _child_value(element, tag: str) -> str | None:
    child = element.find(f"{WORD_NS}{tag}")
    return child.get(f"{WORD_NS}val") if child is not None else None


def _outline_level(properties) -> int | None:
    """A paragraph's or style's outline level as a heading level (``w:outlineLvl`` 0 is
    heading 1; 9 is body text)."""
    value = _child_value(properties, "outlineLvl") if properties is not None else None
    return int(value) + 1 if value is not None and value.isdigit() and int(value) < 9 else None


def _alt_text_as_text(root) -> int:
    """Replace each described picture (``wp:docPr/@descr``) with its description; how many."""
    from lxml import etree

    replaced = 0
    for drawing in list(root.iter(f"{WORD_NS}drawing")):
        properties = drawing.find(f".//{_WP}docPr")
        description = " ".join((properties.get("descr") or "").split()) if properties is not None else ""
        if description:
            text = etree.Element(f"{WORD_NS}t")
            text.text = f" {description} "
            text.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
            drawing.getparent().replace(drawing, text)
            replaced += 1
    return replaced


def blocks_from_elements(elements) -> tuple[list[Block], str | None]:
    """Blocks with heading paths from unstructured elements, and the first title seen."""
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    first_title = None
    for element in elements:
        text, metadata = element.text.strip(), element.metadata
        if element.category in _SKIPPED or not text:
            continue
        page = metadata.page_number
        if element.category == "Title":
            first_title = first_title or text
            path = enter_heading(path, metadata.category_depth or 0, text)
            blocks.append(Block(text=text, section=section_path(path), page=page))
        elif element.category == "Table" and metadata.text_as_html:
            blocks.append(Block(text=_html_table(metadata.text_as_html), section=section_path(path), page=page,
                                kind="table"))
        else:
            prefix = "- " if element.category == "ListItem" else ""
            blocks.append(Block(text=prefix + text, section=section_path(path), page=page))
    return blocks, first_title


def _html_table(html: str) -> str:
    from bs4 import BeautifulSoup

    return html_table_markdown(BeautifulSoup(html, "lxml"))


def _core_properties(request: ParseRequest) -> tuple[str | None, str | None, str | None]:
    """Title, author and date from the OOXML core properties (DOCX, PPTX)."""
    if request.content_type == DOCX:
        import docx

        properties = docx.Document(io.BytesIO(request.data)).core_properties
    elif request.content_type == PPTX:
        import pptx

        properties = pptx.Presentation(io.BytesIO(request.data)).core_properties
    else:
        return None, None, None
    date = properties.created or properties.modified
    return (optional_str(properties.title), optional_str(properties.author),
            date.date().isoformat() if date else None)
