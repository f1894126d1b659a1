"""PII detection and anonymisation, offline.

Three layers, merged into one span per entity: a spaCy NER model (the pinned package by
default, see ``ner.py``) for PERSON, ORGANIZATION and LOCATION; recognizers that need
structure or context for phones, cards, IBANs, street addresses and dates of birth
(``pii_patterns.py``); Presidio's pattern recognizers for e-mail, IP, SSN, ITIN, crypto and
MAC addresses, plus configured custom ones. Each entity type has an action: ``redact``
(``<EMAIL_ADDRESS>``), ``mask`` (all but the last four characters), ``hash`` (stable salted
sha256), ``quarantine`` (the document is kept out of the index) or ``keep`` (counted, left in
the text: the default for places and organisations). Callers keep counts per entity type,
never values.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

from assets.screening.names import find_person_names
from assets.screening.ner import (
    TransformersNer,
    blank_tokenizer,
    load_spacy_ner,
    name_bearing,
    plausible,
    spacy_entities,
)
from assets.screening.pii_patterns import STRUCTURED_FINDERS, find_denied
from core.types import NER_ENTITIES, CustomRecognizer, Detection, PiiConfig

_LANGUAGE = "en"
# Presidio's own recognizers for the types whose patterns are unambiguous.
_PRESIDIO_RECOGNIZERS = ("IpRecognizer", "UsSsnRecognizer", "UsItinRecognizer", "CryptoRecognizer",
                         "MacAddressRecognizer")
_NUMBER_GOES_ON_BEFORE = re.compile(r"\d[\-–/]$")
_NUMBER_GOES_ON_AFTER = re.compile(r"^[\-–/]\d")


def _whole_number(text: str, detection: Detection) -> bool:
    """Presidio's SSN and ITIN patterns match inside longer hyphenated numbers (an ISBN's
    "978-10-9925-8575-3"): a match must be the whole number."""
    return not (_NUMBER_GOES_ON_BEFORE.search(text[max(0, detection.start - 2):detection.start])
                or _NUMBER_GOES_ON_AFTER.match(text[detection.end:detection.end + 2]))

# Presidio logs the words around each match (document text, PII included) at DEBUG.
for _logger in ("presidio-analyzer", "presidio-anonymizer"):
    logging.getLogger(_logger).setLevel(logging.WARNING)


@dataclass
class PiiResult:
    text: str
    counts: Counter
    quarantined_entities: set[str]


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


def _resolve_overlaps(found: list[Detection]) -> list[Detection]:
    """One entity per span. A model's guess at a name, place or organisation gives way to a
    match by structure ("64391 Jason Expressway" is an address, not a person); then the
    highest score wins, then the longer span (an IBAN over the card-like digits inside it,
    an SSN over the phone-like reading of it). Deny-listed values (score 1) always win."""
    kept: list[Detection] = []
    for candidate in sorted(found, key=lambda d: (d.entity in NER_ENTITIES and d.score < 1, -d.score, d.start - d.end)):
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
    """The PII policy of a ``PiiConfig``. The configuration is checked at once; the models
    and Presidio (seconds to import) load on first use, so a run with nothing to screen never
    pays for them. Texts are screened in batches: the NER model runs once over all of them."""

    def __init__(self, config: PiiConfig, hash_salt: str = ""):
        config.validate(hash_salt)
        self.config = config
        self._hash_salt = hash_salt
        entities = set(config.entities)
        self._presidio_entities = [e for e in config.entities if e not in STRUCTURED_FINDERS and e not in NER_ENTITIES]
        self._finders = [finder for entity, finder in STRUCTURED_FINDERS.items() if entity in entities]
        self._allowed = {value.casefold() for value in config.allow_list}

    @cached_property
    def _nlp(self):
        return blank_tokenizer()

    @cached_property
    def _spacy_ner(self):
        return load_spacy_ner(self.config.spacy_model_path)

    @cached_property
    def _transformers(self) -> TransformersNer:
        return TransformersNer(self.config.transformers_model_path)

    @cached_property
    def _prepared_nlp(self):
        from presidio_analyzer.nlp_engine import NlpEngine

        nlp = self._nlp

        class PreparedNlpEngine(NlpEngine):
            """Presidio reads NlpArtifacts from our batched spaCy pass and never runs a model."""

            def load(self) -> None: ...
            def is_loaded(self) -> bool: return True
            def process_text(self, text, language): raise NotImplementedError
            def process_batch(self, texts, language, **kwargs): raise NotImplementedError
            def is_stopword(self, word, language): return nlp.vocab[word].is_stop
            def is_punct(self, word, language): return nlp.vocab[word].is_punct
            def get_supported_entities(self): return []
            def get_supported_languages(self): return [_LANGUAGE]

        return PreparedNlpEngine()

    @cached_property
    def _analyzer(self):
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer import predefined_recognizers as predefined

        registry = RecognizerRegistry(supported_languages=[_LANGUAGE])
        registry.add_recognizer(_offline_email_recognizer())
        for name in _PRESIDIO_RECOGNIZERS:
            registry.add_recognizer(getattr(predefined, name)())
        for custom in self.config.custom_recognizers:
            registry.add_recognizer(_pattern_recognizer(custom))
        return AnalyzerEngine(
            registry=registry, nlp_engine=self._prepared_nlp, supported_languages=[_LANGUAGE],
            default_score_threshold=self.config.score_threshold,
        )

    def detect_many(self, texts: Sequence[str]) -> list[list[Detection]]:
        """PII spans of each text, one span per character range, allow-listed values dropped."""
        from presidio_analyzer.nlp_engine import NlpArtifacts
        from spacy.attrs import IDX, LOWER

        docs = list(self._nlp.pipe(texts, batch_size=64))
        strings = self._nlp.vocab.strings
        ner = self._ner_entities(texts)
        results = []
        for text, doc, entities in zip(texts, docs, ner, strict=True):
            found = list(entities)
            for finder in self._finders:
                found += finder(text)
            found += find_denied(text, self.config.deny_list)
            if self._presidio_entities:
                indices, lowers = doc.to_array([IDX, LOWER]).T.tolist() if len(doc) else ([], [])
                artifacts = NlpArtifacts(entities=[], tokens=doc, tokens_indices=indices,
                                         lemmas=[strings[key] for key in lowers], nlp_engine=self._prepared_nlp,
                                         language=_LANGUAGE)
                presidio = [Detection(r.entity_type, r.start, r.end, r.score) for r in self._analyzer.analyze(
                    text=text, language=_LANGUAGE, entities=self._presidio_entities, nlp_artifacts=artifacts)]
                found += [d for d in presidio if _whole_number(text, d)]
            kept = [d for d in found if d.score >= self.config.score_threshold
                    and text[d.start:d.end].strip().casefold() not in self._allowed]
            results.append(_resolve_overlaps(kept))
        return results

    def _ner_entities(self, texts: Sequence[str]) -> list[list[Detection]]:
        """Model entities of each text, from its name-bearing sentences in one batch, and the
        gazetteer's person names (the model's and the gazetteer's overlaps are resolved later)."""
        if not self.config.ner:
            return [[] for _ in texts]
        pieces = [(index, start, end) for index, text in enumerate(texts) for start, end in name_bearing(text)]
        sentences = [texts[index][start:end] for index, start, end in pieces]
        if self.config.transformers_model_path:
            per_sentence = self._transformers.entities(sentences)
        else:
            per_sentence = (spacy_entities(doc) for doc in self._spacy_ner.pipe(sentences, batch_size=64))
        found: list[list[Detection]] = [[] for _ in texts]
        for (index, start, _), entities in zip(pieces, per_sentence, strict=True):
            text = texts[index]
            found[index] += [
                Detection(d.entity, d.start + start, d.end + start, d.score) for d in entities
                if plausible(d.entity, text, d.start + start, d.end + start)
            ]
        return [entities + find_person_names(text) for text, entities in zip(texts, found, strict=True)]

    def detect(self, text: str) -> list[Detection]:
        return self.detect_many([text])[0]

    def anonymize_many(self, texts: Sequence[str], external: Sequence[Iterable[Detection]] | None = None
                       ) -> list[PiiResult]:
        """Apply each entity's action to the findings in each text plus any external ones
        (Azure AI Language); ``keep`` entities are counted and left in place."""
        external = external if external is not None else [()] * len(texts)
        detected = self.detect_many(texts)
        return [self._apply(text, found, extra) for text, found, extra in zip(texts, detected, external, strict=True)]

    def anonymize(self, text: str, external: Iterable[Detection] = ()) -> PiiResult:
        return self._apply(text, self.detect(text), external)

    def _apply(self, text: str, found: list[Detection], external: Iterable[Detection]) -> PiiResult:
        from presidio_anonymizer.entities import RecognizerResult

        found = _resolve_overlaps([*found, *(d for d in external if d.score >= self.config.score_threshold)])
        counts = Counter(d.entity for d in found)
        quarantined = {e for e in counts if self.config.action_for(e) == "quarantine"}
        changed = [d for d in found if self.config.action_for(d.entity) != "keep"]
        if not changed:
            return PiiResult(text, counts, quarantined)
        results = [RecognizerResult(d.entity, d.start, d.end, d.score) for d in changed]
        anonymized = self._anonymizer.anonymize(text=text, analyzer_results=results, operators=self._operators(changed))
        return PiiResult(anonymized.text, counts, quarantined)

    @cached_property
    def _anonymizer(self):
        from presidio_anonymizer import AnonymizerEngine

        return AnonymizerEngine()

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
    """The default policy's engine, for previews and reasons."""
    return PiiEngine(PiiConfig())


def redact_pii(text: str) -> tuple[str, Counter]:
    """Text with the default policy applied (each redacted type replaced by its tag), and
    counts per type.

    Used for previews and rejection reasons that reach Dagster metadata: the same engine
    as the index, so nothing a preview shows would have been redacted from the index."""
    result = default_engine().anonymize(text)
    return result.text, result.counts


def redacted_preview(text: str, length: int = 160) -> str:
    """A short, PII-redacted preview for logs and metadata."""
    redacted, _ = redact_pii(" ".join(text[: length * 2].split()))
    return redacted[:length] + ("…" if len(redacted) > length else "")
