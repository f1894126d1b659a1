"""Office and markup documents through unstructured's partitioners: DOCX, PPTX, ODT, RTF,
EPUB, reStructuredText and Org (the last five are converted by the pandoc binary that
``pypandoc-binary`` ships). Their elements become blocks: Title elements open sections at
their depth, Table elements become Markdown tables, headers and footers are dropped.
"""

from __future__ import annotations

import io
import zipfile

from assets.ingestion.detection import DOCX, EPUB, ODT, PPTX, RTF
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


@loader(*_PARTITIONERS)
def load_with_unstructured(request: ParseRequest) -> ParsedDocument:
    """Hidden DOCX runs and hidden PPTX slides are left out of the blocks and handed on as
    hidden text (scanned for instructions, never indexed)."""
    module, function = _PARTITIONERS[request.content_type]
    data, hidden = request.data, []
    if request.content_type == DOCX:
        data, hidden = _prepared_docx(data)
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


def _prepared_docx(data: bytes) -> tuple[bytes, list[str]]:
    """The DOCX as unstructured should read it: its hidden runs removed (returned as hidden
    text), and each picture's description (alt text) as text where the picture stands:
    unstructured drops pictures, a screen reader reads their descriptions. The bytes come
    back unchanged when there is neither."""
    from lxml import etree

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        root = etree.fromstring(archive.read(_DOCX_BODY), etree.XMLParser(resolve_entities=False))
        hidden = remove_hidden_runs(root)
        described = _alt_text_as_text(root)
        if not (hidden or described):
            return data, []
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as rewritten:
            for member in archive.infolist():
                content = (etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
                           if member.filename == _DOCX_BODY else archive.read(member))
                rewritten.writestr(member, content)
    return buffer.getvalue(), hidden


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
