"""What a document really is, from its bytes first and its name second.

Binary formats are recognised by signature (``filetype``) and, for ZIP and OLE containers,
by their member names, so a DOCX renamed ``.pdf`` is still read as a DOCX. Text formats have
no signature, so their extension decides, unless it claims a binary format the bytes do not
have. ZIP containers are checked against the unpacking limits here, before any parser opens
them.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from pathlib import PurePosixPath

import filetype

from assets.ingestion.limits import ParseLimits
from core.types import quarantine

TEXT_EXTENSIONS = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".xhtml": "text/html",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".rst": "text/x-rst",
    ".org": "text/org",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".json": "application/json",
    ".ndjson": "application/x-ndjson",
    ".jsonl": "application/x-ndjson",
    ".xml": "application/xml",
    ".eml": "message/rfc822",
}

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"
EPUB = "application/epub+zip"
MSG = "application/vnd.ms-outlook"
RTF = "application/rtf"
PDF = "application/pdf"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
IMAGE_TYPES = {"image/png", "image/jpeg", "image/tiff"}
BINARY_TYPES = {DOCX, PPTX, XLSX, ODT, EPUB, MSG, RTF, PDF, *IMAGE_TYPES}
BINARY_EXTENSIONS = {".pdf", ".docx", ".pptx", ".xlsx", ".odt", ".epub", ".msg", ".rtf", ".png", ".jpg", ".jpeg",
                     ".tif", ".tiff", ".doc", ".xls", ".ppt"}

_ZIP_MARKERS = {"word/document.xml": DOCX, "ppt/presentation.xml": PPTX, "xl/workbook.xml": XLSX}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# The stream that makes an OLE compound file a Word, Excel (5.0: "Book") or PowerPoint file.
_OLE_MARKERS = {"WordDocument": DOC, "Workbook": XLS, "Book": XLS, "PowerPoint Document": PPT}
ENCRYPTED_OFFICE = "encrypted (password-protected) Office document; save it without a password to index it"
_EMAIL_HEADER = re.compile(r"\A(?:[A-Za-z-]+:[^\n]*\r?\n)*?(?:From|Subject|Message-ID):", re.IGNORECASE)
# UTF-32 first: its little-endian BOM begins with UTF-16's.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def detect_content_type(name: PurePosixPath, data: bytes, limits: ParseLimits) -> str:
    """The content type to parse ``data`` as, or ``DocumentRejected`` saying why not."""
    if data.startswith(b"PK\x03\x04"):
        return _zip_type(data, limits)
    if data.startswith(_OLE_MAGIC):
        return _ole_type(data)
    if data.lstrip()[:5] == b"{\\rtf":
        return RTF
    kind = filetype.guess(data[:8192])
    if kind is not None:
        if kind.mime in BINARY_TYPES:
            return kind.mime
        raise quarantine(f"unsupported file type {name.suffix or '(none)'} (content is {kind.mime})")
    claimed = TEXT_EXTENSIONS.get(name.suffix.lower())
    if claimed:
        return claimed
    sniffed = _sniff_text(data)
    if sniffed:
        return sniffed
    if name.suffix.lower() in BINARY_EXTENSIONS:
        return "text/plain"  # named as a binary format, but no signature: read it as text if it is text
    supported = sorted(set(TEXT_EXTENSIONS) | BINARY_EXTENSIONS)
    raise quarantine(f"unsupported file type {name.suffix or '(none)'}; supported: {', '.join(supported)}")


def _sniff_text(data: bytes) -> str | None:
    """Recognise markup and e-mail by their opening, for files whose name says nothing useful
    (seen through a byte-order mark or UTF-16/32)."""
    opening = data[:4096].decode(unicode_encoding(data) or "latin-1", "ignore")
    head = opening[:1024].lstrip().lower()
    if head.startswith(("<!doctype html", "<html")):
        return "text/html"
    if head.startswith("<?xml"):
        return "application/xml"
    if _EMAIL_HEADER.match(opening):
        return "message/rfc822"
    return None


def unicode_encoding(data: bytes) -> str | None:
    """The codec of text saved with a byte-order mark, or as UTF-16/32 without one; else ``None``.

    Without a mark, UTF-16 and UTF-32 are told by where their NUL bytes fall: the high bytes of
    code units are often zero (always, in UTF-32), the low bytes almost never, which no 8-bit
    encoding and no random binary shows; the opening must then also decode.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec
    sample = data[:4096]
    if b"\x00" not in sample:
        return None
    for width, codec, high, low in _NUL_PATTERNS:
        whole = sample[:len(sample) - len(sample) % width]
        if whole and all(_zero_share(whole, width, at) > 0.3 for at in high) and _zero_share(whole, width, low) < 0.02:
            try:  # incrementally: the sample may end inside a surrogate pair
                codecs.getincrementaldecoder(codec)().decode(whole)
            except UnicodeDecodeError:
                continue
            return codec
    return None


# (code unit width, codec, offsets of the high bytes, offset of the low byte) in each code unit.
_NUL_PATTERNS = ((4, "utf-32-le", (2, 3), 0), (4, "utf-32-be", (0, 1), 3),
                 (2, "utf-16-le", (1,), 0), (2, "utf-16-be", (0,), 1))


def _zero_share(sample: bytes, width: int, offset: int) -> float:
    column = sample[offset::width]
    return column.count(0) / len(column)


def _zip_type(data: bytes, limits: ParseLimits) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise quarantine(f"corrupt or truncated ZIP container ({error})") from None
    check_archive(members, len(data), limits)
    names = {member.filename for member in members}
    for marker, content_type in _ZIP_MARKERS.items():
        if marker in names:
            return content_type
    if "mimetype" in names:
        declared = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
        if declared in (ODT, EPUB):
            return declared
        raise quarantine(f"unsupported packaged document type {declared!r}")
    raise quarantine("unsupported file type: a ZIP archive that is not an Office, ODT or EPUB document")


def check_archive(members: list[zipfile.ZipInfo], packed_bytes: int, limits: ParseLimits) -> None:
    """Refuse zip bombs before anything inflates them.

    ``zipfile`` never inflates a member past its declared size, so the declared sizes bound
    what any parser reading through it can allocate.
    """
    if len(members) > limits.max_archive_members:
        raise quarantine(f"archive has {len(members):,} members, above the limit of {limits.max_archive_members:,}")
    unpacked = sum(member.file_size for member in members)
    if unpacked > limits.max_unpacked_bytes:
        raise quarantine(
            f"archive unpacks to {unpacked:,} bytes, above the limit of {limits.max_unpacked_bytes:,} (zip bomb?)"
        )
    ratio = unpacked / max(packed_bytes, 1)
    if ratio > limits.max_compression_ratio:
        raise quarantine(
            f"archive compression ratio {ratio:,.0f}:1 is above the limit of {limits.max_compression_ratio:,.0f}:1 "
            "(zip bomb?)"
        )


def _ole_type(data: bytes) -> str:
    """An Outlook message or a legacy Word, Excel or PowerPoint file, told by its streams.
    A password-protected OOXML file is an OLE container too (EncryptionInfo and
    EncryptedPackage streams); legacy files flag encryption inside their streams, which
    msoffcrypto-tool reads."""
    import msoffcrypto
    import olefile

    try:
        with olefile.OleFileIO(data) as ole:
            streams = {"/".join(entry) for entry in ole.listdir()}
    except (OSError, ValueError) as error:
        raise quarantine(f"corrupt or truncated OLE compound file ({type(error).__name__})") from None
    if any(stream.startswith("__substg1.0_") for stream in streams):
        return MSG
    if {"EncryptionInfo", "EncryptedPackage"} <= streams:
        raise quarantine(ENCRYPTED_OFFICE)
    content_type = next((kind for marker, kind in _OLE_MARKERS.items() if marker in streams), None)
    if content_type is None:
        raise quarantine("unsupported OLE container: not a Word, Excel, PowerPoint or Outlook file")
    try:
        encrypted = msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted()
    except Exception as error:  # noqa: BLE001  (its parsers raise anything on a malformed stream)
        raise quarantine(f"corrupt legacy Office file ({type(error).__name__}: {error})") from None
    if encrypted:
        raise quarantine(ENCRYPTED_OFFICE)
    return content_type
