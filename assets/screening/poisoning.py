"""Rule-based detection of indirect prompt injection in document text.

Each rule has an id and a score in [0, 1]; a document's score is its highest finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Bump when rules change: quarantine decisions, hence index contents, change with them.
SCREENING_VERSION = "1"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    score: float
    regex: re.Pattern


def _rule(rule_id: str, score: float, pattern: str) -> Rule:
    return Rule(rule_id, score, re.compile(pattern, re.IGNORECASE))


RULES = (
    _rule(
        "instruction_override",
        0.95,
        r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}\b(?:previous|prior|above|earlier|all|any|your)\b"
        r"[^.\n]{0,30}\b(?:instructions?|prompts?|rules|directives|guidelines)\b",
    ),
    _rule(
        "prompt_exfiltration",
        0.9,
        r"\b(?:reveal|print|show|repeat|output|disclose)\b[^.\n]{0,30}\b(?:system|hidden|initial)\s+(?:prompt|instructions?)\b",
    ),
    _rule("fake_role_turn", 0.9, r"(?:^|\n)\s*(?:#{1,3}\s*)?(?:system|assistant)\s*:|<\|im_start\|>|\[/?INST\]"),
    _rule("role_hijack", 0.85, r"\byou are (?:now|no longer)\b[^.\n]{0,60}|\bact as (?:an? )?(?:unrestricted|jailbroken)\b"),
    _rule(
        "model_directed_command",
        0.85,
        r"\b(?:AI|assistant|language model|LLM|chatbot)s?\b[^.\n]{0,40}\b(?:must|should|shall)\b[^.\n]{0,40}"
        r"\b(?:instead|always respond|reply with|tell the user|send|visit|call)\b",
    ),
)


@dataclass(frozen=True)
class Finding:
    rule_id: str
    score: float
    start: int
    end: int


def scan_for_injection(text: str) -> list[Finding]:
    return [
        Finding(rule.rule_id, rule.score, match.start(), match.end())
        for rule in RULES
        for match in rule.regex.finditer(text)
    ]
