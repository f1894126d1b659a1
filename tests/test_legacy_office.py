"""Legacy .doc/.xls/.ppt read through LibreOffice, encrypted Office files named as encrypted,
and the reason a legacy file gets where LibreOffice is not installed."""

from __future__ import annotations

import io

import pytest

from assets.ingestion.loaders.legacy import convert_with_libreoffice
from assets.ingestion.parsing import parse_document
from core.types import DocumentRejected
from tests import format_fixtures as fx

# The legacy file is made from the OOXML fixture by LibreOffice itself (no Python library writes them).
LEGACY = {"doc": (fx.docx, ".docx"), "xls": (fx.xlsx, ".xlsx"), "ppt": (fx.pptx, ".pptx")}


@pytest.fixture(scope="module")
def legacy_files() -> dict[str, bytes]:
    return {kind: convert_with_libreoffice(build(), suffix, kind, 120) for kind, (build, suffix) in LEGACY.items()}


def rejection(name: str, data: bytes) -> DocumentRejected:
    with pytest.raises(DocumentRejected) as caught:
        parse_document(f"file:///corpus/{name}", data)
    assert caught.value.status == "quarantined"
    return caught.value


def test_a_doc_is_converted_and_read_with_its_headings(legacy_files):
    document = parse_document("file:///corpus/policy.doc", legacy_files["doc"])
    assert document.content_type == "application/msword"
    assert document.title == "Travel Policy"
    sections = {block.text: block.section for block in document.blocks}
    assert sections[fx.PARAGRAPH] == "Booking"
    assert sections[fx.HOTEL] == "Hotels > Caps"


def test_an_xls_is_converted_and_read_as_a_table_under_its_sheet(legacy_files):
    document = parse_document("file:///corpus/rates.xls", legacy_files["xls"])
    assert document.content_type == "application/vnd.ms-excel"
    [table] = document.blocks
    assert table.kind == "table"
    assert table.text.startswith("| City | Nightly cap |\n| --- | --- |\n")
    assert "| Paris | 250 EUR |" in table.text and "| Berlin | 200 EUR |" in table.text
    assert table.section == "Caps"  # the fixture's sheet title
    assert (document.title, document.author) == ("Hotel caps", "Jane Roe")


def test_a_ppt_is_converted_and_read_with_its_slide_text(legacy_files):
    document = parse_document("file:///corpus/deck.ppt", legacy_files["ppt"])
    assert document.content_type == "application/vnd.ms-powerpoint"
    text = document.text
    assert "Employees book all business travel through the corporate portal" in text
    assert "| Paris | 250 EUR |" in text


def test_a_password_protected_xlsx_is_quarantined_as_encrypted():
    from msoffcrypto.format.ooxml import OOXMLFile

    encrypted = io.BytesIO()
    OOXMLFile(io.BytesIO(fx.xlsx())).encrypt("secret", encrypted)
    error = rejection("rates.xlsx", encrypted.getvalue())
    assert error.reason.startswith("encrypted (password-protected) Office document")


def test_without_libreoffice_a_legacy_file_is_quarantined_saying_what_to_install(legacy_files, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without soffice
    error = rejection("rates.xls", legacy_files["xls"])
    assert error.reason == ("legacy Office file (.xls) needs LibreOffice to be read: install LibreOffice "
                            "(Debian libreoffice-calc-nogui) or save it as .xlsx")


def test_an_ole_container_of_no_office_kind_is_named_as_such():
    error = rejection("thing.bin", fx._compound_file({"Contents": b"\0" * 64}))
    assert error.reason == "unsupported OLE container: not a Word, Excel, PowerPoint or Outlook file"
