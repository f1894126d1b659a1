"""Golden sets: ``golden_sets/<name>/questions.jsonl`` beside the ``corpus/`` it asks about,
and optionally ``acl.yaml``, the corpus's ACL mapping file (glob: [groups], as RAGPIPE_ACL_FILE).
A question may carry ``groups``: it is then asked as a caller in those groups, and the gate
checks that none of its retrieved chunks is one those groups may not see. It may carry
``answers``, short answer spans (a list of strings, or SQuAD's ``{"text": [...]}``): they are
scored by answer-in-chunk, beside the reference contexts' coverage.

Every row is validated on load and all bad rows are reported together, each with its
line number, so a broken set is fixed in one pass rather than one error at a time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assets.evaluation.relevance import MIN_COVERAGE_WORDS, too_short_for_coverage

QUESTIONS_FILE = "questions.jsonl"
CORPUS_DIR = "corpus"
ACL_FILE = "acl.yaml"


class GoldenSetError(ValueError):
    """A golden set that cannot be used, with every problem found (line numbers included)."""


@dataclass(frozen=True)
class GoldenQuestion:
    id: str
    question: str
    ground_truth: str
    reference_contexts: tuple[str, ...]
    reference_sources: tuple[str, ...]  # corpus-relative paths
    answerable: bool
    tags: tuple[str, ...]
    groups: tuple[str, ...] | None = None  # the caller's groups; None: an unrestricted caller
    answers: tuple[str, ...] = ()  # answer spans, scored by answer-in-chunk


@dataclass(frozen=True)
class GoldenSet:
    name: str
    root: Path
    questions: tuple[GoldenQuestion, ...]
    fingerprint: str  # sha256 prefix of questions.jsonl: evaluations compare only on the same set
    notes: tuple[str, ...] = ()  # what the loader changed about how some rows are scored

    @property
    def corpus(self) -> Path:
        return self.root / CORPUS_DIR

    def source_uri(self, relative_path: str) -> str:
        """The ``source`` payload value the ingestion gives a corpus file."""
        return (self.corpus / relative_path).resolve().as_uri()


def _strings(row: dict[str, Any], key: str) -> tuple[str, ...]:
    value = row.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError(f"'{key}' must be a list of non-empty strings")
    return tuple(value)


def _answers(row: dict[str, Any]) -> tuple[str, ...]:
    value = row.get("answers", [])
    if isinstance(value, dict):  # SQuAD / Hugging Face: {"text": [...], "answer_start": [...]}
        value = value.get("text", [])
    return _strings({"answers": value}, "answers")


def parse_question(row: Any, corpus: Path) -> GoldenQuestion:
    """One row of questions.jsonl; ValueError says what is wrong with it."""
    if not isinstance(row, dict):
        raise ValueError("each line must be a JSON object")
    for key in ("id", "question"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ValueError(f"'{key}' must be a non-empty string")
    answerable = row.get("answerable", True)
    if not isinstance(answerable, bool):
        raise ValueError("'answerable' must be true or false")
    ground_truth = row.get("ground_truth", "")
    if not isinstance(ground_truth, str) or not ground_truth.strip():
        raise ValueError("'ground_truth' (the reference answer) must be a non-empty string")
    contexts, sources = _strings(row, "reference_contexts"), _strings(row, "reference_sources")
    answers = _answers(row)
    if answerable and not (contexts or sources or answers):
        raise ValueError("an answerable question needs reference_contexts, reference_sources or answers")
    missing = [source for source in sources if not (corpus / source).is_file()]
    if missing:
        raise ValueError(f"reference_sources not in the corpus: {', '.join(missing)}")
    return GoldenQuestion(
        id=row["id"], question=row["question"], ground_truth=ground_truth,
        reference_contexts=contexts, reference_sources=sources, answerable=answerable,
        tags=_strings(row, "tags"), groups=_strings(row, "groups") if "groups" in row else None, answers=answers,
    )


def loading_notes(questions: tuple[GoldenQuestion, ...]) -> tuple[str, ...]:
    """What an operator should know about how rows will be scored, said once at load time."""
    short = [q.id for q in questions if any(too_short_for_coverage(c) for c in q.reference_contexts)]
    if not short:
        return ()
    listed = ", ".join(short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
    note = (f"{len(short)} question(s) have a reference context of fewer than {MIN_COVERAGE_WORDS} words "
            f"({listed}): too short for coverage scoring, such a context is scored by answer-in-chunk "
            "(its words together in the chunk) instead")
    return (note,)


def load_golden_set(root: Path) -> GoldenSet:
    root = Path(root)
    path = root / QUESTIONS_FILE
    if not path.is_file():
        raise GoldenSetError(f"golden set {root.name!r}: {path} not found")
    questions, problems, seen = [], [], set()
    raw = path.read_bytes()
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            question = parse_question(json.loads(line), root / CORPUS_DIR)
            if question.id in seen:
                raise ValueError(f"duplicate id {question.id!r}")
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            problems.append(f"{path.name} line {number}: {error}")
            continue
        seen.add(question.id)
        questions.append(question)
    if not questions and not problems:
        problems.append(f"{path.name}: no questions")
    if problems:
        raise GoldenSetError(f"golden set {root.name!r} is invalid:\n" + "\n".join(problems))
    return GoldenSet(root.name, root, tuple(questions), hashlib.sha256(raw).hexdigest()[:12],
                     loading_notes(tuple(questions)))
