"""Screen a parsed document, then its chunks: quarantine poisoned text, apply the PII policy.

A quarantine carries the scanner, rule ids, score and locations, never the text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from assets.screening.injection_classifier import InjectionClassifier
from assets.screening.pii import PiiEngine, PiiResult
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
    injection_classifier: InjectionClassifier | None = None
    released: frozenset[str] = field(default_factory=frozenset)

    def screen_document(self, document: ParsedDocument, doc_id: str) -> tuple[ParsedDocument, dict[str, int]]:
        """The document with the PII policy applied to every string of it (``document_strings``),
        each distinct string once, and its hidden text dropped; and its PII counts per entity type."""
        outcome = self.screen_documents([(document, doc_id)])[0]
        if isinstance(outcome, ScreeningQuarantine):
            raise outcome
        return outcome

    def screen_documents(self, items: Sequence[tuple[ParsedDocument, str]]
                         ) -> list[tuple[ParsedDocument, dict[str, int]] | ScreeningQuarantine]:
        """``screen_document`` of each (document, doc_id), its quarantine returned rather than
        raised. The PII pass runs once over the documents' distinct strings (a heading or boilerplate
        paragraph they share is screened once), so the NER model works on full batches rather than
        one document's few paragraphs."""
        outcomes: list[ParsedDocument | ScreeningQuarantine] = []
        strings: list[list[str]] = []
        for document, doc_id in items:
            try:
                if doc_id not in self.released:
                    self._screen_document_injection(document)
            except ScreeningQuarantine as quarantine:
                outcomes.append(quarantine)
                strings.append([])
                continue
            outcomes.append(document)
            strings.append(document_strings(document))
        distinct = list(dict.fromkeys(text for texts in strings for text in texts))
        external = self.pii_detector.detect(distinct) if self.pii_detector else None
        screened = dict(zip(distinct, self.pii.anonymize_many(distinct, external), strict=True))
        return [outcome if isinstance(outcome, ScreeningQuarantine)
                else _with_pii_policy(outcome, texts, [screened[text] for text in texts])
                for outcome, texts in zip(outcomes, strings, strict=True)]

    def screen_chunks(self, doc_id: str, texts: Sequence[str]) -> None:
        """Rescan each chunk on its own (what retrieval will hand a model), with the rules
        and, when configured, Prompt Shields."""
        if doc_id in self.released:
            return
        located = [Located(f"chunk {i}", f) for i, text in enumerate(texts) for f in scan_for_injection(text)]
        layers = [self._rules_layer(located)]
        if self.injection_shield:
            flagged = [i for i, attack in enumerate(self.injection_shield.attacks(list(texts))) if attack]
            layers.append(LayerResult("prompt_shields", 1.0 if flagged else 0.0,
                                      ["prompt_shields:attack_detected"] if flagged else [],
                                      f"flagged chunks {', '.join(map(str, flagged[:10]))}"))
        self._quarantine_injection(layers)

    def _screen_document_injection(self, document: ParsedDocument) -> None:
        """Every layer on each block and hidden fragment: one injected paragraph is named by its block."""
        located = [Located(f"block {i}", f) for i, b in enumerate(document.blocks) for f in scan_for_injection(b.text)]
        located += hidden_text_findings(document.hidden_text)
        places = [(f"block {i}", b.text) for i, b in enumerate(document.blocks)]
        places += [(f"hidden text {i}", text) for i, text in enumerate(document.hidden_text)]
        self._quarantine_injection([self._rules_layer(located), *self._classifier_layers(places)])

    def _rules_layer(self, located: list[Located]) -> LayerResult:
        over = sorted((x for x in located if x.finding.score >= self.threshold), key=lambda x: -x.finding.score)
        return LayerResult("rules", score_of([x.finding for x in located]),
                           [x.finding.rule_id for x in over], _describe(over))

    def _classifier_layers(self, places: list[tuple[str, str]]) -> list[LayerResult]:
        """The learned layers' verdicts on each paragraph (block or hidden fragment), naming the
        paragraphs over threshold."""
        if self.injection_classifier is None or not places:
            return []
        classifier = self.injection_classifier
        thresholds = {"classifier": classifier.threshold, "model": classifier.model_threshold}
        layers = []
        for name, scores in classifier.score([text for _, text in places]).items():
            located = [Located(place, Finding(f"injection_{name}", s.score, s.start, s.end))
                       for (place, _), s in zip(places, scores)]
            over = sorted((x for x in located if x.finding.score >= thresholds[name]), key=lambda x: -x.finding.score)
            layers.append(LayerResult(name, max(s.score for s in scores), [f"injection_{name}"] if over else [],
                                      _describe(over)))
        return layers

    @staticmethod
    def _quarantine_injection(layers: list[LayerResult]) -> None:
        """Quarantine when any layer decides; the record names the deciding layers (the first
        as scanner) and carries every layer's score."""
        deciding = [layer for layer in layers if layer.rule_ids]
        if deciding:
            scores = ", ".join(f"{layer.name} {layer.score:.2f}" for layer in layers)
            raise ScreeningQuarantine(
                f"possible prompt injection: {'; '.join(f'{x.name}: {x.summary}' for x in deciding)} "
                f"(layer scores: {scores})",
                scanner=deciding[0].name, rule_ids=[r for layer in deciding for r in layer.rule_ids],
                score=deciding[0].score,
            )


@dataclass(frozen=True)
class LayerResult:
    """One injection layer's verdict: its highest score, the rule ids that crossed its
    threshold (none: it passed the text) and where they are, without any of the text."""

    name: str
    score: float
    rule_ids: list[str]
    summary: str


def _describe(over: list[Located]) -> str:
    described = ", ".join(x.describe() for x in over[:MAX_DESCRIBED_FINDINGS])
    more = f" and {len(over) - MAX_DESCRIBED_FINDINGS} more" if len(over) > MAX_DESCRIBED_FINDINGS else ""
    return described + more


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


def _with_pii_policy(document: ParsedDocument, texts: list[str], results: list[PiiResult]
                     ) -> tuple[ParsedDocument, dict[str, int]] | ScreeningQuarantine:
    """The document with its strings screened, and its PII counts; or its quarantine when the
    policy quarantines an entity found in it."""
    counts: Counter = sum((r.counts for r in results), Counter())
    quarantined = set().union(*(r.quarantined_entities for r in results))
    if quarantined:
        return ScreeningQuarantine(
            f"contains PII the policy quarantines: {', '.join(sorted(quarantined))} "
            f"({sum(counts[e] for e in quarantined)} values)",
            scanner="pii", rule_ids=[f"pii:{e}" for e in quarantined], score=None,
        )
    return with_strings_replaced(document, dict(zip(texts, (r.text for r in results), strict=True))), dict(counts)


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
