"""Screen a parsed document: quarantine poisoned text, redact PII, count entities."""

from __future__ import annotations

from collections import Counter

from assets.ingestion.documents import Block, ParsedDocument, quarantine
from assets.screening.pii import redact_pii
from assets.screening.poisoning import scan_for_injection


def screen_document(document: ParsedDocument, threshold: float) -> tuple[ParsedDocument, dict[str, int]]:
    """Return the redacted document and PII counts per entity type.

    Raises ``DocumentRejected`` (quarantined) when an injection finding scores at or
    above ``threshold``; the reason names rules and locations, never the text.
    """
    findings = [
        (index, finding)
        for index, block in enumerate(document.blocks)
        for finding in scan_for_injection(block.text)
        if finding.score >= threshold
    ]
    if findings:
        described = ", ".join(
            f"{finding.rule_id} (score {finding.score:.2f}, block {index} chars {finding.start}-{finding.end})"
            for index, finding in findings[:5]
        )
        raise quarantine(f"possible prompt injection: {described}")
    counts: Counter = Counter()
    blocks = []
    for block in document.blocks:
        text, found = redact_pii(block.text)
        counts.update(found)
        blocks.append(Block(text=text, section=block.section, page=block.page))
    title, found = redact_pii(document.title)
    counts.update(found)
    screened = ParsedDocument(**{**document.__dict__, "blocks": blocks, "title": title})
    return screened, dict(counts)
