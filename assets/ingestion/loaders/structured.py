"""Data formats: CSV/TSV and XLSX as Markdown tables, JSON/NDJSON and XML as key paths.

These need no layout analysis, so the standard library (and openpyxl) read them exactly;
unstructured's partitioners for them would add pandas and a classification pass that can
only lose structure.
"""

from __future__ import annotations

import csv
import io
import json

from assets.ingestion.detection import XLSX
from assets.ingestion.encodings import decode_text
from assets.ingestion.loaders import ParseRequest, loader
from assets.ingestion.loaders.markup import optional_str
from assets.screening.hidden_text import hidden_rows_and_columns
from core.tables import markdown_table
from core.types import Block, ParsedDocument, quarantine

_DELIMITERS = {"text/csv": ",", "text/tab-separated-values": "\t"}


@loader(*_DELIMITERS)
def load_delimited(request: ParseRequest) -> ParsedDocument:
    content_type = request.content_type
    text = decode_text(request.data, request.name.suffix)
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=_DELIMITERS[content_type]))
    except csv.Error as error:
        raise quarantine(f"malformed {request.name.suffix or 'CSV'} ({error})") from None
    table = markdown_table(rows)
    return ParsedDocument(title=request.fallback_title, content_type=content_type,
                          blocks=[Block(text=table, kind="table")] if table else [])


@loader(XLSX)
def load_xlsx(request: ParseRequest) -> ParsedDocument:
    """Visible sheets as tables; hidden sheets, rows and columns are handed on as hidden text
    (scanned for instructions, never indexed). Read in full (not read-only) mode: only it
    knows which rows and columns are hidden."""
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(request.data), data_only=True)
    try:
        blocks, hidden = [], []
        for sheet in workbook.worksheets:
            rows, columns = hidden_rows_and_columns(sheet)
            visible, concealed = [], []
            for number, row in enumerate(sheet.iter_rows(values_only=True), 1):
                cells = ["" if value is None else str(value) for value in row]
                if sheet.sheet_state != "visible" or number in rows:
                    concealed.append(" ".join(cell for cell in cells if cell))
                    continue
                visible.append([cell for index, cell in enumerate(cells, 1) if index not in columns])
                concealed.append(" ".join(cell for index, cell in enumerate(cells, 1) if index in columns and cell))
            if table := markdown_table(visible):
                blocks.append(Block(text=table, section=sheet.title, kind="table"))
            if text := "\n".join(line for line in concealed if line):
                hidden.append(text)
        properties = workbook.properties
    finally:
        workbook.close()
    return ParsedDocument(
        title=optional_str(properties.title) or request.fallback_title,
        content_type=XLSX,
        blocks=blocks,
        author=optional_str(properties.creator),
        date=properties.created.date().isoformat() if properties.created else None,
        hidden_text=hidden,
    )


@loader("application/json")
def load_json(request: ParseRequest) -> ParsedDocument:
    value = _json(decode_text(request.data, request.name.suffix), "JSON")
    if isinstance(value, dict):
        blocks = [Block(text="\n".join(_key_paths(item, key)), section=key) for key, item in value.items()]
        title = value.get("title") if isinstance(value.get("title"), str) else None
    else:
        blocks, title = [Block(text="\n".join(_key_paths(value, "")))], None
    return ParsedDocument(title=title or request.fallback_title, content_type="application/json",
                          blocks=[block for block in blocks if block.text.strip()])


@loader("application/x-ndjson")
def load_ndjson(request: ParseRequest) -> ParsedDocument:
    blocks = []
    for number, line in enumerate(decode_text(request.data, request.name.suffix).splitlines(), 1):
        if line.strip():
            record = _json(line, f"NDJSON line {number}")
            blocks.append(Block(text="\n".join(_key_paths(record, ""))))
    return ParsedDocument(title=request.fallback_title, content_type="application/x-ndjson", blocks=blocks)


def _json(text: str, what: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise quarantine(f"invalid {what} ({error.msg} at line {error.lineno} column {error.colno})") from None


def _key_paths(value, prefix: str) -> list[str]:
    """``a.b[0].c: value`` lines: every scalar with the path that gives it meaning."""
    if isinstance(value, dict):
        return [line for key, item in value.items() for line in _key_paths(item, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(value, list):
        return [line for index, item in enumerate(value) for line in _key_paths(item, f"{prefix}[{index}]")]
    if value is None or value == "":
        return []
    return [f"{prefix}: {value}" if prefix else str(value)]


@loader("application/xml")
def load_xml(request: ParseRequest) -> ParsedDocument:
    from lxml import etree

    # No entity expansion, no DTD or network fetches: billion-laughs and XXE files stay inert.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(request.data, parser)
    except etree.XMLSyntaxError as error:
        raise quarantine(f"malformed XML ({error})") from None
    blocks = []
    for child in root:
        if isinstance(child.tag, str):
            lines = [f"{path}: {text}" for path, text in _xml_leaves(child, etree.QName(child).localname)]
            blocks.append(Block(text="\n".join(lines), section=etree.QName(child).localname))
    if not blocks and (root.text or "").strip():
        blocks.append(Block(text=root.text.strip()))
    title = root.findtext("{*}title") or root.findtext("title")
    return ParsedDocument(title=(title or "").strip() or request.fallback_title, content_type="application/xml",
                          blocks=[block for block in blocks if block.text.strip()])


def _xml_leaves(element, path: str):
    from lxml import etree

    if (element.text or "").strip():
        yield path, element.text.strip()
    for name, value in element.attrib.items():
        yield f"{path}@{etree.QName(name).localname}", value
    for child in element:
        if isinstance(child.tag, str):
            yield from _xml_leaves(child, f"{path}.{etree.QName(child).localname}")
