"""Text normalisation applied to every block, and per-document language detection."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """NFKC-normalise (ligatures, full-width forms), fold runs of spaces, trim blank runs."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def detect_language(text: str) -> str | None:
    """ISO 639-1 code, from a model that ships inside the package (no download)."""
    import py3langid

    sample = text[:5000].strip()
    if len(sample) < 20:
        return None
    language, _score = py3langid.classify(sample)
    return language
