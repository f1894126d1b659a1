"""Every supported format: extracted text, sections, tables and metadata (fixtures are built
by ``tests.format_fixtures``)."""

from __future__ import annotations

import shutil

import pytest

from assets.ingestion.parsing import parse_document
from resources.ocr import TesseractOcr
from tests import format_fixtures as fx

RATES_TABLE = "| City | Nightly cap |\n| --- | --- |\n| Paris | 250 EUR |\n| Rome | 180 EUR |"
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None,
                                     reason="Debian tesseract-ocr is not installed")


def parse(name: str, data: bytes, **options):
    return parse_document(f"file:///corpus/{name}", data, **options)


def tables(document) -> list[str]:
    return [block.text for block in document.blocks if block.kind == "table"]


def section_of(document, needle: str) -> str:
    return next(block.section for block in document.blocks if needle in block.text)


def test_markdown_tables_are_table_blocks_under_their_heading():
    document = parse("policy.md", fx.markdown())
    assert (document.title, document.author, document.date) == ("Travel Policy", "Jane Roe", "2026-03-01")
    assert tables(document) == [RATES_TABLE + "\n| Berlin | 200 EUR |"]
    assert section_of(document, "| Paris |") == "Travel Policy > Hotels"
    assert section_of(document, "corporate portal") == "Travel Policy > Booking"


def test_html_drops_navigation_scripts_cookie_banners_and_footers():
    document = parse("policy.html", fx.html())
    for chrome in ("Home", "track(", "color:red", "We use cookies", "Copyright 2026"):
        assert chrome not in document.text
    assert document.author == "Jane Roe"
    assert section_of(document, "corporate portal") == "Travel Policy > Booking"
    assert RATES_TABLE in tables(document)[0]


@pytest.mark.parametrize(("name", "builder"), [("policy.rst", fx.rst), ("policy.epub", fx.epub),
                                                ("policy.odt", fx.odt), ("policy.rtf", fx.rtf)])
def test_pandoc_formats_keep_heading_paths_and_tables(name, builder):
    document = parse(name, builder())
    assert document.title == "Travel Policy"
    assert section_of(document, "corporate portal") == "Travel Policy > Booking"
    assert section_of(document, "cap depends on the city") == "Travel Policy > Hotels"
    assert tables(document) and tables(document)[0].startswith(RATES_TABLE.split("\n| Rome")[0])


def test_org_headings_become_sections():
    document = parse("policy.org", fx.org())
    assert section_of(document, "corporate portal") == "Booking"
    assert tables(document) == ["| City | Nightly cap |\n| --- | --- |\n| Paris | 250 EUR |"]


def test_docx_heading_levels_tables_and_core_properties():
    document = parse("policy.docx", fx.docx())
    assert (document.title, document.author) == ("Travel Policy", "Jane Roe")
    assert document.date is not None
    assert section_of(document, "cap depends on the city") == "Hotels > Caps"
    assert tables(document) == [RATES_TABLE + "\n| Berlin | 200 EUR |"]
    assert document.language == "en"


def test_pptx_slide_titles_are_sections_and_slides_are_pages():
    document = parse("policy.pptx", fx.pptx())
    assert (document.title, document.author) == ("Travel Policy", "Jane Roe")
    assert section_of(document, "corporate portal") == "Booking"
    table = next(block for block in document.blocks if block.kind == "table")
    assert (table.section, table.page) == ("Hotel caps", 2)
    assert table.text.startswith(RATES_TABLE)


def test_eml_headers_give_title_author_and_date():
    document = parse("notice.eml", fx.eml())
    assert document.title == "New travel policy"
    assert document.author == "Jane Roe <jane@example.com>"
    assert document.date == "2026-03-02"
    assert "corporate portal" in document.text and "Subject: New travel policy" in document.text


def test_msg_properties_give_title_author_and_date():
    document = parse("notice.msg", fx.msg())
    assert document.content_type == "application/vnd.ms-outlook"
    assert document.title == "New travel policy"
    assert document.author == "Jane Roe <jane@example.com>"
    assert document.date == "2026-03-02"
    assert "corporate portal" in document.text and "cap depends on the city" in document.text


@pytest.mark.parametrize(("name", "data", "content_type"), [
    ("rates.csv", fx.csv_file(), "text/csv"),
    ("rates.tsv", fx.csv_file("\t"), "text/tab-separated-values"),
])
def test_delimited_files_are_one_table(name, data, content_type):
    document = parse(name, data)
    assert document.content_type == content_type
    assert tables(document) == [RATES_TABLE + "\n| Berlin | 200 EUR |"]


def test_xlsx_sheets_are_sections_with_workbook_properties():
    document = parse("rates.xlsx", fx.xlsx())
    assert (document.title, document.author) == ("Hotel caps", "Jane Roe")
    assert [(block.section, block.kind) for block in document.blocks] == [("Caps", "table")]
    assert document.blocks[0].text.startswith(RATES_TABLE)


def test_json_and_ndjson_keep_key_paths():
    document = parse("policy.json", fx.json_file())
    assert document.title == "Travel Policy"
    assert "hotels[1].city: Rome" in document.text
    assert section_of(document, "hotels[0].cap: 250 EUR") == "hotels"
    records = parse("rates.ndjson", fx.ndjson())
    assert [block.text for block in records.blocks][0] == "city: Paris\ncap: 250 EUR"


def test_xml_keeps_element_paths_and_attributes():
    document = parse("policy.xml", fx.xml())
    assert document.title == "Travel Policy"
    assert "hotels.city@name: Rome" in document.text
    assert section_of(document, "corporate portal") == "booking"


def test_text_pdf_tables_pages_running_lines_and_hyphenation():
    document = parse("policy.pdf", fx.text_pdf(pages=3))
    assert (document.title, document.author) == ("Travel Policy", "Jane Roe")
    assert "Example Corp - Internal" not in document.text
    assert "Page 2 of 3" not in document.text
    assert "keep the information about every booking" in document.text
    assert "files the documents for seven years" in document.text
    assert "confirmation e-mails" in document.text  # a hyphen before a capital or in a word stays
    assert tables(document) == [RATES_TABLE + "\n| Berlin | 200 EUR |"]
    assert sorted({block.page for block in document.blocks}) == [1, 2, 3]


def test_scans_without_an_ocr_engine_are_quarantined_not_indexed_empty():
    from core.types import DocumentRejected

    class NoTesseract(TesseractOcr):
        def available(self) -> bool:
            return False

    for name, data in [("scan.pdf", fx.scanned_pdf()), ("receipt.png", fx.image("PNG"))]:
        with pytest.raises(DocumentRejected, match="needs OCR"):
            parse(name, data, ocr=NoTesseract())


@needs_tesseract
@pytest.mark.parametrize(("name", "data"), [
    ("scan.pdf", fx.scanned_pdf()), ("receipt.png", fx.image("PNG")),
    ("receipt.jpg", fx.image("JPEG")), ("receipt.tiff", fx.image("TIFF")),
])
def test_scans_are_read_with_tesseract(name, data):
    document = parse(name, data, ocr=TesseractOcr())
    assert "Scanned expense receipt" in document.text
    assert "Paris total 250 EUR" in document.text
    assert {block.page for block in document.blocks} == {1}
