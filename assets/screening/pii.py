"""Pattern-based PII detection and redaction (structured identifiers).

Each entity is replaced by ``<ENTITY_TYPE>``; callers keep counts per type, never values.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass


def _luhn_valid(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return len(compact) >= 15 and int(numeric) % 97 == 1


def _ip_valid(candidate: str) -> bool:
    return all(0 <= int(part) <= 255 for part in candidate.split("."))


@dataclass(frozen=True)
class PiiPattern:
    entity: str
    regex: re.Pattern
    validate: object = None


PII_PATTERNS = (
    PiiPattern("EMAIL_ADDRESS", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    PiiPattern("IBAN_CODE", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), _iban_valid),
    PiiPattern("CREDIT_CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), _luhn_valid),
    PiiPattern("US_SSN", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")),
    PiiPattern("IP_ADDRESS", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), _ip_valid),
    PiiPattern(
        "PHONE_NUMBER",
        re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}\b"),
    ),
)


@dataclass(frozen=True)
class PiiMatch:
    entity: str
    start: int
    end: int


def find_pii(text: str) -> list[PiiMatch]:
    """Non-overlapping matches; earlier patterns in ``PII_PATTERNS`` win overlaps."""
    taken: list[PiiMatch] = []
    for pattern in PII_PATTERNS:
        for match in pattern.regex.finditer(text):
            if pattern.validate and not pattern.validate(match.group()):
                continue
            if any(match.start() < t.end and t.start < match.end() for t in taken):
                continue
            taken.append(PiiMatch(pattern.entity, match.start(), match.end()))
    return sorted(taken, key=lambda m: m.start)


def redact_pii(text: str) -> tuple[str, Counter]:
    """Text with each PII value replaced by its type tag, and counts per type."""
    counts: Counter = Counter()
    pieces, cursor = [], 0
    for match in find_pii(text):
        pieces += [text[cursor:match.start], f"<{match.entity}>"]
        counts[match.entity] += 1
        cursor = match.end
    pieces.append(text[cursor:])
    return "".join(pieces), counts


def redacted_preview(text: str, length: int = 160) -> str:
    """A short, PII-redacted preview for logs and metadata."""
    redacted, _ = redact_pii(" ".join(text[: length * 2].split()))
    return redacted[:length] + ("…" if len(redacted) > length else "")
