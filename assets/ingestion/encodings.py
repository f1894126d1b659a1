"""Bytes to text: byte-order marks, UTF-16/32 without one, UTF-8, declared charsets and
detected legacy encodings, for text formats and e-mail parts alike. Loaders and the hidden-text
scan decode through here, so both read the same text."""

from __future__ import annotations

import codecs
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from assets.ingestion.detection import unicode_encoding
from core.types import quarantine


def decode_text(data: bytes, suffix: str, declared: str | None = None) -> str:
    """The text of ``data``: by its byte-order mark or UTF-16/32 pattern, else as UTF-8, else in
    the ``declared`` charset (an HTML meta tag, a MIME part's label), else in the legacy
    encoding charset-normalizer finds. UTF-8 is tried before a declared legacy charset because
    non-ASCII text in a legacy encoding is practically never valid UTF-8, while UTF-8 labelled
    latin-1 is common and would be read as mojibake. Binary content is quarantined."""
    if codec := unicode_encoding(data):
        try:
            return data.decode(codec)
        except UnicodeDecodeError as error:
            raise quarantine(f"not valid {codec.removesuffix('-sig').upper()} (bad bytes at offset {error.start}); "
                             "re-save the file as UTF-8") from None
    sample = data[:8192]
    if b"\x00" in sample or _control_ratio(sample) > 0.1:
        raise quarantine(f"binary content in a {suffix or 'text'} file (not text); check the file type")
    legacy = _legacy_codec(declared)
    # A declared 7-bit charset (ISO-2022-JP, UTF-7) goes first: its text is valid UTF-8 too.
    for codec in [legacy, "utf-8"] if legacy and data.isascii() else ["utf-8", legacy]:
        if codec and (text := _decoded(data, codec)) is not None:
            return text
    return _detected_legacy_text(data, suffix)


def _decoded(data: bytes, codec: str) -> str | None:
    """``data`` in ``codec``; ``None`` when it does not decode or the codec is no text encoding
    (a document may declare "base64" or "zlib": Python codecs, but not charsets)."""
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError):
        return None


def _legacy_codec(label: str | None) -> str | None:
    """The Python codec for a declared charset label, as browsers read labels (WHATWG Encoding
    Standard): ``None`` when unknown or UTF-16/32 (real UTF-16/32 is recognised by its bytes, so
    the label is wrong); Windows-1252 for Latin-1 and ASCII, whose documents use its printable
    0x80-0x9F range (€, curly quotes), which Latin-1 has as control characters."""
    try:
        codec = codecs.lookup(label).name if label else None
    except (LookupError, ValueError):  # ValueError: a label with a NUL or a lone surrogate
        return None
    if codec and codec.startswith(("utf-16", "utf-32")):
        return None
    return "cp1252" if codec in ("iso8859-1", "ascii") else codec


def _detected_legacy_text(data: bytes, suffix: str) -> str:
    """Decoded in the legacy encoding charset-normalizer finds least messy. Short samples leave
    several encodings tied; Windows-1252, the commonest legacy encoding, wins a tie."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise quarantine(f"unknown text encoding in a {suffix or 'text'} file (not UTF-8 and no legacy encoding "
                         "fits); re-save the file as UTF-8")
    best = matches[0]
    tied = [match for match in matches if (match.chaos, match.coherence) == (best.chaos, best.coherence)]
    chosen = next((match for match in tied if "cp1252" in match.could_be_from_charset), best)
    return str(chosen)


def _control_ratio(sample: bytes) -> float:
    if not sample:
        return 0.0
    controls = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13))
    return controls / len(sample)


def decode_html(data: bytes, suffix: str) -> str:
    """HTML decoded with the charset its ``<meta>`` tag (or XML declaration) declares."""
    from bs4.dammit import EncodingDetector

    return decode_text(data, suffix, EncodingDetector.find_declared_encoding(data, is_html=True))


def parse_eml(data: bytes) -> EmailMessage:
    """The message. A file saved whole as UTF-16/32 is decoded first (the MIME parser reads
    bytes of an ASCII-compatible encoding); its parts are then UTF-8, whatever they declare."""
    if unicode_encoding(data):
        data = decode_text(data, ".eml").encode("utf-8")
    return BytesParser(policy=policy.default).parsebytes(data)


def part_text(part: EmailMessage) -> str:
    """A text part's payload decoded by its declared charset, with ``decode_text``'s fallbacks
    (a part labelled iso-8859-1 that is really UTF-8 is read as UTF-8)."""
    return decode_text(part.get_payload(decode=True) or b"", ".eml", part.get_content_charset())
