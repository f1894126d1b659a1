"""E-mail: EML with the standard library's parser, Outlook MSG through unstructured.

Subject, sender and date come from the message headers; the body is the plain-text part,
or the HTML part cleaned like any web page. Attachments are not indexed.
"""

from __future__ import annotations

import io
import re
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from assets.ingestion.detection import MSG
from assets.ingestion.loaders import ParseRequest, loader
from assets.ingestion.loaders.markup import parse_html
from assets.ingestion.loaders.office import blocks_from_elements
from assets.ingestion.loaders.unstructured_runtime import partitioner
from core.types import Block, ParsedDocument


@loader("message/rfc822")
def load_eml(request: ParseRequest) -> ParsedDocument:
    message = BytesParser(policy=policy.default).parsebytes(request.data)
    body = message.get_body(preferencelist=("plain", "html"))
    content = body.get_content() if body is not None else ""
    if body is not None and body.get_content_type() == "text/html":
        blocks = parse_html(content, request.fallback_title).blocks
    else:
        blocks = [Block(text=p) for p in re.split(r"\n\s*\n", content) if p.strip()]
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
