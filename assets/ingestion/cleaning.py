"""Text normalisation applied to every block, PDF-specific repairs, and language detection."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# Soft hyphens, zero-width spaces and joiners, BOMs: invisible, and they break tokens apart.
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
# C0 and C1 control characters (NUL, escapes, DEL...) but tab and the line breaks handled apart.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
# Vertical tab, form feed and NEL end a line: a newline keeps the words on either side apart.
_LINE_BREAK_CONTROLS = re.compile("[\x0b\x0c\x85]")
_HYPHEN_BREAK = re.compile(r"(\w)[-\u2010]\n(\w)")


# NFKC turns "5½" into "51⁄2" and "m²" into "m2": different text, different numbers.
_KEPT_COMPATIBILITY_TAGS = ("<fraction>", "<super>", "<sub>")


@cache
def _kept_characters() -> re.Pattern:
    kept = "".join(
        chr(code) for code in range(0x30000)
        if unicodedata.decomposition(chr(code)).startswith(_KEPT_COMPATIBILITY_TAGS)
    )
    return re.compile(f"([{re.escape(kept)}])")


def normalize_compatibility(text: str) -> str:
    """NFKC (ligatures, full-width and other compatibility forms folded) except for vulgar
    fractions, superscripts and subscripts, which keep their meaning only as written."""
    if unicodedata.is_normalized("NFKC", text):
        return text
    pieces = _kept_characters().split(text)
    return "".join(piece if index % 2 else unicodedata.normalize("NFKC", piece) for index, piece in enumerate(pieces))


def clean_text(text: str) -> str:
    """Normalise compatibility forms (``normalize_compatibility``), drop invisible and control
    characters (the output never holds a NUL), fold runs of spaces, trim blank runs."""
    text = normalize_compatibility(text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROLS.sub("", _LINE_BREAK_CONTROLS.sub("\n", _INVISIBLE.sub("", text)))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def dehyphenate(text: str) -> str:
    """Join words a PDF line break split with a hyphen ("infor-\\nmation" → "information").

    Only a lowercase continuation is joined, so "COVID-\\n19" and "e-\\nMail" keep theirs.
    """
    return _HYPHEN_BREAK.sub(lambda m: m.group(1) + m.group(2) if m.group(2).islower() else m.group(0), text)


MIN_LANGUAGE_CONFIDENCE = 0.9
_TABLE_SYNTAX = re.compile(r"^\|(?: --- \|)+$|\|", re.MULTILINE)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code, from a model that ships inside the package (no download), or ``None``
    when the text is too short or the model unsure (a table of names and numbers): no
    language is better than a wrong one in a payload filter."""
    sample = _TABLE_SYNTAX.sub(" ", text[:5000]).strip()
    if len(sample) < 20:
        return None
    language, confidence = _language_identifier().classify(sample)
    return language if confidence >= MIN_LANGUAGE_CONFIDENCE else None


@cache
def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
