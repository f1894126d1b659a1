"""PII detection and anonymisation with Presidio, offline.

Presidio's pattern recognizers (with checksums for credit cards and IBANs) run on a blank
spaCy tokenizer, which is enough for their context words; PERSON, ORGANIZATION and
LOCATION need a spaCy NER model, so they turn on only when a model path is configured.
Each entity type has an action: ``redact`` (``<EMAIL_ADDRESS>``), ``mask`` (all but the last
four characters), ``hash`` (stable salted sha256) or ``quarantine`` (the document is kept
out of the index). Callers keep counts per entity type, never values.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

from core.types import CustomRecognizer, Detection, PiiConfig

_LANGUAGE = "en"

# Presidio logs the words around each match (document text, PII included) at DEBUG.
for _logger in ("presidio-analyzer", "presidio-anonymizer"):
    logging.getLogger(_logger).setLevel(logging.WARNING)


@dataclass
class PiiResult:
    text: str
    counts: Counter
    quarantined_entities: set[str]


def _lemma_as_lowercase(doc):
    """Presidio matches context words against lemmas; a blank pipeline has none."""
    for token in doc:
        token.lemma_ = token.lower_
    return doc


def _nlp_engine(spacy_model_path: str):
    import spacy
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from spacy.language import Language

    if "ragpipe_lowercase_lemma" not in Language.factories:
        Language.component("ragpipe_lowercase_lemma", func=_lemma_as_lowercase)

    class LocalSpacyNlpEngine(SpacyNlpEngine):
        """A spaCy model from a local path, or a blank tokenizer: never a download."""

        def load(self) -> None:
            if spacy_model_path:
                self.nlp = {_LANGUAGE: spacy.load(spacy_model_path)}
            else:
                blank = spacy.blank(_LANGUAGE)
                blank.add_pipe("ragpipe_lowercase_lemma")
                self.nlp = {_LANGUAGE: blank}

    engine = LocalSpacyNlpEngine(
        models=[{"lang_code": _LANGUAGE, "model_name": spacy_model_path or "blank"}],
        ner_model_configuration=NerModelConfiguration(
            model_to_presidio_entity_mapping={
                "PERSON": "PERSON", "PER": "PERSON", "ORG": "ORGANIZATION",
                "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION",
            },
        ),
    )
    engine.load()
    return engine


def _offline_email_recognizer():
    """Presidio's e-mail recognizer, validating domains against tldextract's bundled
    suffix list: the module-level ``tldextract.extract`` fetches the list from the web."""
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return extractor(pattern_text).fqdn != ""

    return OfflineEmailRecognizer()


def _credit_card_recognizer():
    """Presidio's credit-card recognizer (Luhn-checked) plus Mastercard's 2-series BINs
    (2221-2720, issued since 2017), which its patterns predate."""
    from presidio_analyzer import Pattern
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

    two_series = Pattern(
        "mastercard_2_series",
        r"\b2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b",
        0.3,
    )
    return CreditCardRecognizer(patterns=[*CreditCardRecognizer.PATTERNS, two_series])


_BARE_DIGITS = re.compile(r"\d{7,}")
_CONTEXT_FREE_PHONE_SCORE = 0.4  # Presidio's phone score before context words raise it


def _plausible(detection: Detection, text: str) -> bool:
    """A bare run of digits is a phone number only with one of Presidio's context words
    ("phone", "number", "mobile") nearby: without one it is more often an order, batch or
    account reference."""
    return not (
        detection.entity == "PHONE_NUMBER"
        and detection.score <= _CONTEXT_FREE_PHONE_SCORE
        and _BARE_DIGITS.fullmatch(text[detection.start:detection.end])
    )


def _resolve_overlaps(found: list[Detection]) -> list[Detection]:
    """One entity per span: the highest score wins, then the longer span (an IBAN over
    the card-like digits inside it, an SSN over the phone-like reading of it)."""
    kept: list[Detection] = []
    for candidate in sorted(found, key=lambda d: (-d.score, d.start - d.end)):
        if not any(candidate.start < k.end and k.start < candidate.end for k in kept):
            kept.append(candidate)
    return sorted(kept, key=lambda d: d.start)


def _pattern_recognizer(custom: CustomRecognizer):
    from presidio_analyzer import Pattern, PatternRecognizer

    return PatternRecognizer(
        supported_entity=custom.entity,
        name=f"custom_{custom.entity.lower()}",
        patterns=[Pattern(name=custom.entity.lower(), regex=custom.pattern, score=custom.score)],
        context=list(custom.context) or None,
    )


class PiiEngine:
    """Presidio analyzer and anonymizer from a ``PiiConfig``. The configuration is checked at
    once; Presidio (seconds to import) is built on first use, so a run with nothing to screen
    never pays for it."""

    def __init__(self, config: PiiConfig, hash_salt: str = ""):
        config.validate(hash_salt)
        self.config = config
        self._hash_salt = hash_salt
        self._entities = config.entities

    @cached_property
    def _analyzer(self):
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

        nlp_engine = _nlp_engine(self.config.spacy_model_path)
        registry = RecognizerRegistry(supported_languages=[_LANGUAGE])
        registry.load_predefined_recognizers(languages=[_LANGUAGE], nlp_engine=nlp_engine)
        registry.remove_recognizer("EmailRecognizer")
        registry.add_recognizer(_offline_email_recognizer())
        registry.remove_recognizer("CreditCardRecognizer")
        registry.add_recognizer(_credit_card_recognizer())
        for custom in self.config.custom_recognizers:
            registry.add_recognizer(_pattern_recognizer(custom))
        return AnalyzerEngine(
            registry=registry, nlp_engine=nlp_engine, supported_languages=[_LANGUAGE],
            default_score_threshold=self.config.score_threshold,
        )

    @cached_property
    def _anonymizer(self):
        from presidio_anonymizer import AnonymizerEngine

        return AnonymizerEngine()

    def detect(self, text: str) -> list[Detection]:
        results = self._analyzer.analyze(text=text, language=_LANGUAGE, entities=self._entities)
        found = [Detection(r.entity_type, r.start, r.end, r.score) for r in results]
        return _resolve_overlaps([d for d in found if _plausible(d, text)])

    def anonymize(self, text: str, external: Iterable[Detection] = ()) -> PiiResult:
        """Apply each entity's action to Presidio's findings plus any external ones."""
        from presidio_anonymizer.entities import RecognizerResult

        found = _resolve_overlaps(
            [*self.detect(text), *(d for d in external if d.score >= self.config.score_threshold)]
        )
        if not found:
            return PiiResult(text, Counter(), set())
        results = [RecognizerResult(d.entity, d.start, d.end, d.score) for d in found]
        anonymized = self._anonymizer.anonymize(text=text, analyzer_results=results, operators=self._operators(found))
        counts = Counter(item.entity_type for item in anonymized.items)
        quarantined = {e for e in counts if self.config.action_for(e) == "quarantine"}
        return PiiResult(anonymized.text, counts, quarantined)

    def _operators(self, found: Sequence[Detection]) -> dict:
        from presidio_anonymizer.entities import OperatorConfig

        def operator(entity: str) -> OperatorConfig:
            action = self.config.action_for(entity)
            if action == "mask":
                return OperatorConfig("custom", {"lambda": _mask})
            if action == "hash":
                return OperatorConfig("hash", {"hash_type": "sha256", "salt": self._hash_salt})
            return OperatorConfig("replace", {"new_value": f"<{entity}>"})

        return {entity: operator(entity) for entity in {d.entity for d in found}}


def _mask(value: str) -> str:
    return "*" * max(len(value) - 4, 0) + value[-4:]


@cache
def default_engine() -> PiiEngine:
    """The default policy's engine (redact every built-in type), for previews and reasons."""
    return PiiEngine(PiiConfig())


def redact_pii(text: str) -> tuple[str, Counter]:
    """Text with each built-in PII type replaced by its tag, and counts per type.

    Used for previews and rejection reasons that reach Dagster metadata: the same engine
    as the index, so nothing a preview shows would have been redacted from the index."""
    result = default_engine().anonymize(text)
    return result.text, result.counts


def redacted_preview(text: str, length: int = 160) -> str:
    """A short, PII-redacted preview for logs and metadata."""
    redacted, _ = redact_pii(" ".join(text[: length * 2].split()))
    return redacted[:length] + ("…" if len(redacted) > length else "")
