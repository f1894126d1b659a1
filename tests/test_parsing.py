"""Parsing and cleaning: structure, metadata and the reasons bad input is rejected."""

from __future__ import annotations

import pytest

from assets.ingestion.parsing import parse_document
from core.types import DocumentRejected
from tests.corpus import html_doc, markdown_doc, pdf_doc


def parse(name: str, data: bytes):
    return parse_document(f"file:///corpus/{name}", data)


def rejection(name: str, data: bytes) -> DocumentRejected:
    with pytest.raises(DocumentRejected) as caught:
        parse(name, data)
    return caught.value


def test_markdown_front_matter_and_heading_paths():
    document = parse("procedure-3.md", markdown_doc(3).encode())
    assert document.title == "Procedure 3"
    assert document.author == "Operations"
    assert document.acl == []  # front matter `acl:` is ignored: only the source grants access
    assert document.date == "2025-04-13"
    assert [b.section for b in document.blocks] == [
        "Procedure 3", "Procedure 3 > Scope", "Procedure 3 > Scope > Exceptions",
    ]
    assert document.blocks[1].text.startswith("Scope\n")
    assert document.language == "en"


def test_markdown_headings_inside_code_fences_are_text():
    text = "# Guide\n\nIntro text here.\n\n```bash\n# not a heading\necho hi\n```\n\n## Next\n\nMore text.\n"
    document = parse("guide.md", text.encode())
    assert [b.section for b in document.blocks] == ["Guide", "Guide > Next"]
    assert "# not a heading" in document.blocks[0].text


def test_html_strips_chrome_and_keeps_structure_and_tables():
    document = parse("page.html", html_doc(5).encode())
    text = document.text
    assert document.title == "Handbook page 5"
    for chrome in ("Home | Search", "track(", "color: red", "Copyright 2025"):
        assert chrome not in text
    assert "| Lane | Rate |" in text and "| North | 5.50 |" in text
    assert {b.section for b in document.blocks} == {"Handbook page 5", "Handbook page 5 > Rates"}


def test_plain_text_title_is_first_line():
    document = parse("notes.txt", b"Weekly notes\n\nFirst paragraph here.\n\nSecond paragraph.")
    assert document.title == "Weekly notes"
    assert len(document.blocks) == 3


def test_pdf_pages_and_info_metadata():
    document = parse("manual.pdf", pdf_doc(4))
    assert document.title == "Manual 4"
    assert document.author == "Safety Office"
    assert [b.page for b in document.blocks] == [1, 2]
    assert document.content_type == "application/pdf"


def test_cleaning_normalises_ligatures_and_spacing():
    document = parse("x.txt", "Title\n\nThe e\ufb03cient   o\ufb00ice\u00a0hours.".encode())
    assert document.blocks[1].text == "The efficient office hours."


@pytest.mark.parametrize(
    ("name", "data", "status", "reason"),
    [
        ("empty.md", b"", "quarantined", "empty file"),
        ("binary.md", bytes(range(256)) * 4, "quarantined", "binary content in a .md file"),
        ("broken-utf32.txt", "\ufeffcafé".encode("utf-32-be") + b"\x00\x11\x00\x00", "quarantined",
         "not valid UTF-32 (bad bytes at offset 20)"),
        ("spaces.md", b"   \n\n  \n", "quarantined", "no text content"),
        ("tool.exe", b"MZ\x90\x00", "quarantined", "unsupported file type .exe"),
        ("broken.pdf", b"%PDF-1.4 truncated garbage", "quarantined", "PDF"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(name, data, status, reason):
    error = rejection(name, data)
    assert error.status == status
    assert reason in error.reason


def test_image_only_pdf_needs_ocr():
    import io

    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.rect(100, 100, 200, 200, fill=1)
    page.save()
    assert "needs OCR" in rejection("scan.pdf", buffer.getvalue()).reason
