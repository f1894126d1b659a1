"""Images (PNG, JPEG, TIFF): text only through OCR."""

from __future__ import annotations

from assets.ingestion.detection import IMAGE_TYPES
from assets.ingestion.loaders import ParseRequest, loader
from assets.ingestion.loaders.pdf import ocr_blocks
from core.types import ParsedDocument


@loader(*IMAGE_TYPES)
def load_image(request: ParseRequest) -> ParsedDocument:
    blocks = ocr_blocks(request, f"{request.content_type} image")
    return ParsedDocument(title=request.fallback_title, content_type=request.content_type, blocks=blocks)
