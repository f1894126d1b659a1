"""Documents in every supported format, and hostile ones, built in memory by the tests.

Each builder returns the file's bytes. The text is a small travel-policy story so tests can
assert on sections, tables and metadata across formats. ``bench/robustness.py`` writes the
same files to a folder for the robustness run.
"""

from __future__ import annotations

import codecs
import io
import json
import struct
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

PARAGRAPH = (
    "Employees book all business travel through the corporate portal at least fourteen days "
    "before departure, and keep every receipt for the expense report."
)
HOTEL = "Hotel stays are capped per night; the cap depends on the city of the stay."
RATES = [["City", "Nightly cap"], ["Paris", "250 EUR"], ["Rome", "180 EUR"], ["Berlin", "200 EUR"]]


def markdown() -> bytes:
    rows = "\n".join(f"| {a} | {b} |" for a, b in RATES[1:])
    return (
        "---\ntitle: Travel Policy\nauthor: Jane Roe\ndate: 2026-03-01\n---\n"
        f"# Travel Policy\n\n## Booking\n\n{PARAGRAPH}\n\n## Hotels\n\n{HOTEL}\n\n"
        f"| City | Nightly cap |\n| --- | --- |\n{rows}\n"
    ).encode()


def html() -> bytes:
    rows = "".join(f"<tr><td>{a}</td><td>{b}</td></tr>" for a, b in RATES[1:])
    return (
        "<html><head><title>Travel Policy</title><meta name='author' content='Jane Roe'>"
        "<style>p{color:red}</style><script>track('visit')</script></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/hr'>HR</a></nav>"
        "<div class='cookie-banner'>We use cookies to improve your experience. Accept all?</div>"
        f"<main><h1>Travel Policy</h1><h2>Booking</h2><p>{PARAGRAPH}</p><h2>Hotels</h2><p>{HOTEL}</p>"
        f"<table><tr><th>City</th><th>Nightly cap</th></tr>{rows}</table></main>"
        "<footer>Copyright 2026 Example Corp. All rights reserved.</footer></body></html>"
    ).encode()


def plain_text() -> bytes:
    return f"Travel Policy\n\n{PARAGRAPH}\n\n{HOTEL}\n".encode()


def rst() -> bytes:
    return (
        f"Travel Policy\n=============\n\nBooking\n-------\n\n{PARAGRAPH}\n\nHotels\n------\n\n{HOTEL}\n\n"
        "+--------+-------------+\n| City   | Nightly cap |\n+========+=============+\n"
        "| Paris  | 250 EUR     |\n+--------+-------------+\n| Rome   | 180 EUR     |\n+--------+-------------+\n"
    ).encode()


def org() -> bytes:
    return (f"#+TITLE: Travel Policy\n#+AUTHOR: Jane Roe\n\n* Booking\n\n{PARAGRAPH}\n\n"
            f"* Hotels\n\n{HOTEL}\n\n| City | Nightly cap |\n|------+-------------|\n| Paris | 250 EUR |\n").encode()


def docx() -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.core_properties.title = "Travel Policy"
    document.core_properties.author = "Jane Roe"
    document.add_heading("Booking", 1)
    document.add_paragraph(PARAGRAPH)
    document.add_heading("Hotels", 1)
    document.add_heading("Caps", 2)
    document.add_paragraph(HOTEL)
    add_docx_table(document, RATES)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def add_docx_table(document, rows: list[list[str]]) -> None:
    """Append ``rows`` (the first is the header) to a python-docx document as a table."""
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for row, values in zip(table.rows, rows, strict=True):
        for cell, value in zip(row.cells, values, strict=False):
            cell.text = value


def pptx() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    presentation.core_properties.title = "Travel Policy"
    presentation.core_properties.author = "Jane Roe"
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = "Booking"
    slide.placeholders[1].text = PARAGRAPH
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    slide.shapes.title.text = "Hotel caps"
    table = slide.shapes.add_table(len(RATES), 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, values in enumerate(RATES):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def _pandoc(target: str, suffix: str) -> bytes:
    """ODT, EPUB and RTF written by pandoc (from pypandoc-binary) from the Markdown fixture."""
    import tempfile

    import pypandoc

    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / f"out{suffix}"
        pypandoc.convert_text(markdown().decode(), target, format="md", outputfile=str(output),
                              extra_args=["--standalone"])
        return output.read_bytes()


def odt() -> bytes:
    return _pandoc("odt", ".odt")


def epub() -> bytes:
    return _pandoc("epub", ".epub")


def rtf() -> bytes:
    return _pandoc("rtf", ".rtf")


def eml() -> bytes:
    message = EmailMessage()
    message["From"] = "Jane Roe <jane@example.com>"
    message["To"] = "all-staff@example.com"
    message["Subject"] = "New travel policy"
    message["Date"] = "Mon, 02 Mar 2026 09:30:00 +0000"
    message.set_content(f"Hello all,\n\n{PARAGRAPH}\n\n{HOTEL}\n")
    message.add_alternative(f"<html><body><p>{PARAGRAPH}</p></body></html>", subtype="html")
    return bytes(message)


def msg() -> bytes:
    """An Outlook .msg: MAPI properties (MS-OXMSG) in an OLE compound file."""
    headers = ("From: Jane Roe <jane@example.com>\r\nTo: all-staff@example.com\r\n"
               "Subject: New travel policy\r\nDate: Mon, 02 Mar 2026 09:30:00 +0000\r\n")
    strings = {0x0037: "New travel policy", 0x1000: f"Hello all,\n\n{PARAGRAPH}\n\n{HOTEL}\n",
               0x0C1A: "Jane Roe", 0x0C1F: "jane@example.com", 0x007D: headers}
    unicode, readable_writable = 0x001F, 6
    entries = b"".join(struct.pack("<IIII", (pid << 16) | unicode, readable_writable, len(text.encode("utf-16-le")) + 2, 0)
                       for pid, text in strings.items())
    sent = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    filetime = int((sent.timestamp() + 11_644_473_600) * 10_000_000)  # 100 ns ticks since 1601
    entries += struct.pack("<IIQ", (0x0039 << 16) | 0x0040, readable_writable, filetime)  # client submit time
    streams = {"__properties_version1.0": b"\0" * 32 + entries}
    streams.update({f"__substg1.0_{pid:04X}001F": text.encode("utf-16-le") for pid, text in strings.items()})
    return _compound_file(streams)


def _compound_file(streams: dict[str, bytes]) -> bytes:
    """A minimal MS-CFB v3 file: a root storage of small streams, all kept in the mini stream
    (each is under the 4096-byte cutoff), one FAT sector. No Python library writes these."""
    sector, mini = 512, 64
    end, free, fat_sector, no_stream = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    names = sorted(streams, key=lambda name: (len(name), name.upper()))
    mini_stream, mini_fat, starts = b"", [], {}
    for name in names:
        data = streams[name]
        count = max(1, -(-len(data) // mini))
        starts[name] = len(mini_stream) // mini
        mini_fat += [starts[name] + i + 1 for i in range(count - 1)] + [end]
        mini_stream += data.ljust(count * mini, b"\0")

    def sectors(data: bytes) -> bytes:
        return data.ljust(-(-len(data) // sector) * sector, b"\0")

    def chain(first: int, count: int) -> list[int]:
        return [first + i + 1 for i in range(count - 1)] + [end]

    def entry(name: str, kind: int, right: int, child: int, start: int, size: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le")
        return struct.pack("<64sHBBIII16sIQQIQ", encoded, len(encoded), kind, 1, no_stream, right, child,
                           b"\0" * 16, 0, 0, 0, start, size)

    mini_fat += [free] * (-len(mini_fat) % (sector // 4))
    mini_fat_bytes = struct.pack(f"<{len(mini_fat)}I", *mini_fat)
    container = sectors(mini_stream)
    dir_count = -(-(len(names) + 1) // 4)
    fat_count_mini, container_count = len(mini_fat_bytes) // sector, len(container) // sector
    first_mini_fat, first_container = 1 + dir_count, 1 + dir_count + fat_count_mini
    directory = entry("Root Entry", 5, no_stream, 1, first_container, len(mini_stream))
    for index, name in enumerate(names, 1):
        right = index + 1 if index < len(names) else no_stream
        directory += entry(name, 2, right, no_stream, starts[name], len(streams[name]))
    unused = struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, no_stream, no_stream, no_stream, b"\0" * 16, 0, 0, 0, 0, 0)
    directory += unused * (dir_count * 4 - len(names) - 1)
    fat = [fat_sector] + chain(1, dir_count) + chain(first_mini_fat, fat_count_mini) + chain(first_container, container_count)
    assert len(fat) <= sector // 4
    fat_bytes = struct.pack(f"<{sector // 4}I", *(fat + [free] * (sector // 4 - len(fat))))
    header = struct.pack("<8s16sHHHHH6sIIIIIIIII", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\0" * 16, 0x3E, 3, 0xFFFE,
                         9, 6, b"\0" * 6, 0, 1, 1, 0, 4096, first_mini_fat, fat_count_mini, end, 0)
    header += struct.pack("<109I", 0, *([free] * 108))
    return header + fat_bytes + directory + mini_fat_bytes + container


def csv_file(delimiter: str = ",") -> bytes:
    return "\n".join(delimiter.join(row) for row in RATES).encode() + b"\n"


def xlsx() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.properties.title = "Hotel caps"
    workbook.properties.creator = "Jane Roe"
    sheet = workbook.active
    sheet.title = "Caps"
    for row in RATES:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def json_file() -> bytes:
    return json.dumps({"title": "Travel Policy", "booking": {"rule": PARAGRAPH},
                       "hotels": [{"city": a, "cap": b} for a, b in RATES[1:]]}).encode()


def ndjson() -> bytes:
    return "\n".join(json.dumps({"city": a, "cap": b}) for a, b in RATES[1:]).encode()


def xml() -> bytes:
    return (f"<?xml version='1.0'?><policy><title>Travel Policy</title><booking lang='en'>{PARAGRAPH}</booking>"
            f"<hotels><city name='Paris'>250 EUR</city><city name='Rome'>180 EUR</city></hotels></policy>").encode()


# Page bodies: each breaks a word across its two lines with a hyphen.
PDF_PAGES = [
    ("Employees book travel through the portal and keep the infor-", "mation about every booking."),
    ("Finance audits a sample of trips each quarter and files the docu-", "ments for seven years."),
    ("Managers approve trips abroad and forward the confir-", "mation e-mails to the travel desk."),
]


def text_pdf(pages: int = 3, encrypt: str | None = None) -> bytes:
    """A text PDF with a running header and footer, a hyphenated line break and a ruled table."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, encrypt=encrypt)
    pdf.setTitle("Travel Policy")
    pdf.setAuthor("Jane Roe")
    for page in range(1, pages + 1):
        pdf.setFont("Helvetica", 9)
        pdf.drawString(72, 800, "Example Corp - Internal")
        pdf.drawString(72, 40, f"Page {page} of {pages}")
        pdf.setFont("Helvetica", 11)
        first, second = PDF_PAGES[(page - 1) % len(PDF_PAGES)]
        pdf.drawString(72, 740, first)
        pdf.drawString(72, 725, second)
        if page == 1:
            _ruled_table(pdf, RATES, top=680)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _ruled_table(pdf, rows: list[list[str]], top: float) -> None:
    height, widths, left = 18, [120, 120], 72
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            x, y = left + sum(widths[:c]), top - (r + 1) * height
            pdf.rect(x, y, widths[c], height)
            pdf.drawString(x + 4, y + 5, value)


def _text_image(lines: list[str]):
    from PIL import Image, ImageDraw, ImageFont
    import reportlab

    font = ImageFont.truetype(str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf"), 36)
    image = Image.new("RGB", (1400, 120 + 60 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((40, 40 + 60 * index), line, fill="black", font=font)
    return image


SCANNED_LINES = ["Scanned expense receipt", "Hotel Paris total 250 EUR"]


def image(kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    _text_image(SCANNED_LINES).save(buffer, format=kind)
    return buffer.getvalue()


def scanned_pdf() -> bytes:
    """An image-only PDF: the page is a picture of text, with no text layer."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawImage(ImageReader(_text_image(SCANNED_LINES)), 30, 500, width=540, height=110)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def zip_bomb_docx(unpacked_mb: int = 300) -> bytes:
    """A DOCX whose document.xml inflates to ``unpacked_mb`` MB of zeros (a few hundred KB packed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(unpacked_mb):
                member.write(chunk)
    return buffer.getvalue()


def legacy_doc() -> bytes:
    """An OLE compound file that is not an Outlook message, as a Word 97 .doc is."""
    return _compound_file({"WordDocument": b"\xec\xa5" + b"\0" * 510})


# File name → bytes, for every supported format (the robustness run and the air-gap test).
def every_format() -> dict[str, bytes]:
    return {
        "policy.md": markdown(), "policy.html": html(), "policy.txt": plain_text(), "policy.rst": rst(),
        "policy.org": org(), "policy.docx": docx(), "policy.pptx": pptx(), "policy.odt": odt(),
        "policy.rtf": rtf(), "policy.epub": epub(), "policy.eml": eml(), "notice.msg": msg(), "rates.csv": csv_file(),
        "rates.tsv": csv_file("\t"), "rates.xlsx": xlsx(), "policy.json": json_file(),
        "rates.ndjson": ndjson(), "policy.xml": xml(), "policy.pdf": text_pdf(),
        "scan.pdf": scanned_pdf(), "receipt.png": image("PNG"), "receipt.jpg": image("JPEG"),
        "receipt.tiff": image("TIFF"),
    }


def hostile() -> dict[str, bytes]:
    """Files that must each end as a ledger record with a reason, never a crash."""
    pdf = text_pdf()
    return {
        "bomb.docx": zip_bomb_docx(),
        "truncated.pdf": pdf[: len(pdf) // 3],
        "truncated.docx": docx()[:2000],
        "encrypted.pdf": text_pdf(encrypt="secret"),
        "really-a-docx.pdf": docx(),
        "song.mp3": b"ID3\x03\x00\x00\x00\x00\x0f\x76" + b"\xff\xfb\x90\x64" * 512,
        "clip.mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\0" * 512,
        "tool.exe": b"MZ\x90\x00\x03\x00\x00\x00" + b"\0" * 512,
        "archive.zip": _plain_zip(),
        "legacy.doc": legacy_doc(),
        "truncated.msg": msg()[:1500],
        "binary.txt": bytes(range(256)) * 8,
        # a UTF-16 byte-order mark, then a high surrogate that no low surrogate follows
        "broken-utf16.txt": codecs.BOM_UTF16_LE + "Caf\xe9".encode("utf-16-le") + b"\x00\xd8",
        "empty.md": b"",
        "broken.json": b'{"title": "Travel", ',
        "laughs.xml": (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                       b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'),
    }


def _plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return buffer.getvalue()
