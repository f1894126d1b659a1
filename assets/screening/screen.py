"""Screen a parsed document, then its chunks: quarantine poisoned text, apply the PII policy.

A quarantine carries the scanner, rule ids, score and locations, never the text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from assets.screening.pii import PiiEngine
from assets.screening.poisoning import Finding, scan_for_injection, score_of
from core.types import DocumentRejected, ParsedDocument
from resources.azure_ai import InjectionShield, PiiDetector

MAX_DESCRIBED_FINDINGS = 5
HIDDEN_TEXT_MIN_CHARS = 40  # a hidden label or icon text is normal; a hidden paragraph is not


class ScreeningQuarantine(DocumentRejected):
    """A screening decision to keep a document out, with what decided it."""

    def __init__(self, reason: str, scanner: str, rule_ids: Sequence[str], score: float | None):
        super().__init__("quarantined", reason)
        self.scanner = scanner
        self.rule_ids = sorted(set(rule_ids))
        self.score = score


@dataclass(frozen=True)
class Located:
    """A finding and where it is: ``block 3``, ``chunk 2`` or ``hidden text 0``."""

    place: str
    finding: Finding

    def describe(self) -> str:
        f = self.finding
        return f"{f.rule_id} (score {f.score:.2f}, {self.place} chars {f.start}-{f.end})"


@dataclass
class Screener:
    """Everything screening needs for one run. ``released`` holds the doc_ids an operator
    allowed past the poisoning scans; their PII policy still applies."""

    pii: PiiEngine
    threshold: float
    pii_detector: PiiDetector | None = None
    injection_shield: InjectionShield | None = None
    released: frozenset[str] = field(default_factory=frozenset)

    def screen_document(self, document: ParsedDocument, doc_id: str) -> tuple[ParsedDocument, dict[str, int]]:
        """The document with the PII policy applied to every string of it (``document_strings``),
        each distinct string once, and its hidden text dropped; and its PII counts per entity type."""
        if doc_id not in self.released:
            located = [Located(f"block {i}", f) for i, b in enumerate(document.blocks) for f in scan_for_injection(b.text)]
            located += hidden_text_findings(document.hidden_text)
            self._quarantine_above_threshold(located, "rules")
        texts = document_strings(document)
        external = self.pii_detector.detect(texts) if self.pii_detector else None
        results = self.pii.anonymize_many(texts, external)
        counts: Counter = sum((r.counts for r in results), Counter())
        quarantined = set().union(*(r.quarantined_entities for r in results))
        if quarantined:
            raise ScreeningQuarantine(
                f"contains PII the policy quarantines: {', '.join(sorted(quarantined))} "
                f"({sum(counts[e] for e in quarantined)} values)",
                scanner="pii", rule_ids=[f"pii:{e}" for e in quarantined], score=None,
            )
        screened = dict(zip(texts, (r.text for r in results), strict=True))
        return with_strings_replaced(document, screened), dict(counts)

    def screen_chunks(self, doc_id: str, texts: Sequence[str]) -> None:
        """Rescan each chunk on its own (what retrieval will hand a model), with the rules
        and, when configured, Prompt Shields."""
        if doc_id in self.released:
            return
        located = [Located(f"chunk {i}", f) for i, text in enumerate(texts) for f in scan_for_injection(text)]
        self._quarantine_above_threshold(located, "rules")
        if self.injection_shield:
            flagged = [i for i, attack in enumerate(self.injection_shield.attacks(list(texts))) if attack]
            if flagged:
                raise ScreeningQuarantine(
                    f"possible prompt injection: Prompt Shields flagged chunks {', '.join(map(str, flagged[:10]))}",
                    scanner="prompt_shields", rule_ids=["prompt_shields:attack_detected"], score=1.0,
                )

    def _quarantine_above_threshold(self, located: list[Located], scanner: str) -> None:
        over = sorted((x for x in located if x.finding.score >= self.threshold), key=lambda x: -x.finding.score)
        if over:
            described = ", ".join(x.describe() for x in over[:MAX_DESCRIBED_FINDINGS])
            more = f" and {len(over) - MAX_DESCRIBED_FINDINGS} more" if len(over) > MAX_DESCRIBED_FINDINGS else ""
            raise ScreeningQuarantine(
                f"possible prompt injection: {described}{more}",
                scanner=scanner, rule_ids=[x.finding.rule_id for x in over],
                score=score_of([x.finding for x in over]),
            )


def document_strings(document: ParsedDocument) -> list[str]:
    """Every distinct non-empty string of a document that can reach a payload, the ledger or a
    log, in one batch: block texts, each section (heading path) once however many blocks share
    it, title, author, date and language (the last three come from front matter, headers or
    blob metadata: free text). The source URI is left: it is the document's identity."""
    strings = [*(block.text for block in document.blocks), *(block.section for block in document.blocks),
               document.title, document.author, document.date, document.language]
    return [text for text in dict.fromkeys(strings) if text]


def with_strings_replaced(document: ParsedDocument, screened: dict[str, str]) -> ParsedDocument:
    """The document with each of its strings swapped for its screened form, hidden text
    dropped (it was only there to be scanned). Kind and page are kept: they steer chunking."""

    def swap(value: str | None) -> str | None:
        return screened.get(value, value) if value else value

    return replace(
        document,
        blocks=[replace(block, text=swap(block.text), section=swap(block.section)) for block in document.blocks],
        title=swap(document.title), author=swap(document.author), date=swap(document.date),
        language=swap(document.language), hidden_text=[],
    )


def hidden_text_findings(fragments: Sequence[str]) -> list[Located]:
    """Instructions in hidden text score higher than in visible text (concealment is
    intent); a hidden paragraph with no instructions is only a weak signal."""
    located = []
    for index, fragment in enumerate(fragments):
        findings = scan_for_injection(fragment)
        located += [
            Located(f"hidden text {index}", Finding(f"hidden_text/{f.rule_id}", min(1.0, f.score + 0.05), f.start, f.end))
            for f in findings
        ]
        if not findings and len(fragment) >= HIDDEN_TEXT_MIN_CHARS:
            located.append(Located(f"hidden text {index}", Finding("hidden_text", 0.5, 0, len(fragment))))
    return located
