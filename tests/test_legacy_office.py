"""Legacy .doc/.xls/.ppt read through LibreOffice, encrypted Office files named as encrypted,
and the reason a legacy file gets where LibreOffice is not installed."""

from __future__ import annotations

import io
import os

import pytest

from assets.ingestion.loaders.legacy import convert_with_libreoffice
from assets.ingestion.parsing import parse_document
from core.types import DocumentRejected
from tests import format_fixtures as fx

# Each legacy file is made from the OOXML fixture by LibreOffice itself (no Python library
# writes them). The .doc goes through ODT: LibreOffice 7.4 exports python-docx's table straight
# to .doc as a paragraph of run-together cells, but keeps it as a table by way of ODT.
LEGACY = {"doc": (fx.docx, ".docx", ["odt", "doc"]), "xls": (fx.xlsx, ".xlsx", ["xls"]),
          "ppt": (fx.pptx, ".pptx", ["ppt"])}


@pytest.fixture(scope="module")
def legacy_files() -> dict[str, bytes]:
    files = {}
    for kind, (build, suffix, steps) in LEGACY.items():
        data = build()
        for target in steps:
            data, suffix = convert_with_libreoffice(data, suffix, target, 120), f".{target}"
        files[kind] = data
    return files


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
    [table] = [block for block in document.blocks if block.kind == "table"]
    assert table.text.startswith("| City | Nightly cap |\n| --- | --- |\n| Paris | 250 EUR |")


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


def test_a_conversion_over_its_timeout_is_stopped_with_every_libreoffice_process(legacy_files):
    """``soffice`` (oosplash) runs ``soffice.bin`` as a child: a timeout leaves neither running."""
    with pytest.raises(DocumentRejected) as caught:
        convert_with_libreoffice(legacy_files["ppt"], ".ppt", "pptx", 0.5)
    assert caught.value.reason == "LibreOffice did not convert the .ppt file within 0.5 s"
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and "ragpipe-soffice-" in _command_line(pid)]


def _command_line(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().decode(errors="replace")
    except OSError:  # the process ended meanwhile
        return ""


def test_converting_a_doc_with_a_linked_picture_makes_no_request():
    """LibreOffice fetches linked pictures while converting: the picture's server must see nothing."""
    import http.server
    import threading

    requests = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/picture.png"
        html = (f"<html><body><p>Linked picture below.</p><img src='{url}' width='10' height='10'>"
                "<p>After the picture.</p></body></html>").encode()
        odt = convert_with_libreoffice(html, ".html", "odt:writer8", 120)
        doc = convert_with_libreoffice(odt, ".odt", "doc:MS Word 97", 120)
        document = parse_document("file:///corpus/linked.doc", doc)
    finally:
        server.shutdown()
        server.server_close()
    assert requests == []
    assert document.text == "Linked picture below.\n\nAfter the picture."
