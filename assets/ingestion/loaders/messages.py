"""E-mail: EML with the standard library's parser, Outlook MSG through unstructured.

Subject, sender and date come from the message headers; the body is the plain-text part,
or the HTML part cleaned like any web page when the plain part reads as mojibake or is
missing. Each part is decoded by its declared charset, with ``decode_text``'s fallbacks.
Attachments are not indexed.
"""

from __future__ import annotations

import io
import re
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from assets.ingestion.detection import MSG
from assets.ingestion.encodings import parse_eml, part_text
from assets.ingestion.loaders import ParseRequest, loader
from assets.ingestion.loaders.markup import parse_html
from assets.ingestion.loaders.office import blocks_from_elements
from assets.ingestion.loaders.unstructured_runtime import partitioner
from core.types import Block, DocumentRejected, ParsedDocument


@loader("message/rfc822")
def load_eml(request: ParseRequest) -> ParsedDocument:
    message = parse_eml(request.data)
    blocks = _body_blocks(message, request.fallback_title)
    headers = [f"{name}: {message[name]}" for name in ("From", "To", "Cc", "Subject") if message[name]]
    if headers and blocks:
        blocks.insert(0, Block(text="\n".join(headers)))
    return ParsedDocument(
        title=str(message["Subject"] or "").strip() or request.fallback_title,
        content_type="message/rfc822",
        blocks=blocks,
        author=str(message["From"]) if message["From"] else None,
        date=_header_date(message["Date"]),
    )


def _body_blocks(message: EmailMessage, fallback_title: str) -> list[Block]:
    """The blocks of the plain-text body, or of the HTML body when the plain part is missing,
    does not decode, or reads as more of a mess (charset-normalizer's mess ratio: mojibake such
    as "cafÃ©" scores high)."""
    from charset_normalizer.md import mess_ratio

    candidates, failures = [], []
    for subtype in ("plain", "html"):
        if (part := message.get_body(preferencelist=(subtype,))) is None:
            continue
        try:
            content = part_text(part)
        except DocumentRejected as error:
            failures.append(error)
            continue
        if subtype == "html":
            candidates.append(parse_html(content, fallback_title).blocks)
        else:
            candidates.append([Block(text=p) for p in re.split(r"\n\s*\n", content) if p.strip()])
    if failures and not candidates:
        raise failures[0]
    return min(candidates, key=lambda blocks: mess_ratio("\n".join(b.text for b in blocks), maximum_threshold=1.0),
               default=[])


def _header_date(value) -> str | None:
    try:
        return parsedate_to_datetime(str(value)).date().isoformat() if value else None
    except (TypeError, ValueError):
        return None


@loader(MSG)
def load_msg(request: ParseRequest) -> ParsedDocument:
    elements = partitioner("msg", "partition_msg")(file=io.BytesIO(request.data))
    blocks, _ = blocks_from_elements(elements)
    document = ParsedDocument(title=request.fallback_title, content_type=MSG, blocks=blocks)
    if elements:  # every element carries the message's headers
        headers = elements[0].metadata
        document.title = headers.subject or document.title
        document.author = ", ".join(headers.sent_from) if headers.sent_from else None
        document.date = headers.last_modified[:10] if headers.last_modified else None
    return document
