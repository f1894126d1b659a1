"""Rule-based detection of indirect prompt injection (RAG poisoning) in document text.

Text is scanned as it is, then as the model would read it once obfuscation is undone:
invisible characters dropped and homoglyphs mapped to ASCII (Unicode TR39 confusables),
and payloads hidden in base64, hex, URL-encoding or rot13 decoded and rescanned. Each
finding has a rule id (``rule`` or ``rule/view`` for an obfuscated hit), a score in [0, 1]
and the offending span in the original text; a text's score is its highest finding.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from urllib.parse import parse_qsl, unquote_plus, urlsplit

# Bump when rules change: quarantine decisions, hence index contents, change with them.
SCREENING_VERSION = "3"


@dataclass(frozen=True)
class Finding:
    rule_id: str
    score: float
    start: int
    end: int


@dataclass(frozen=True)
class Rule:
    rule_id: str
    score: float
    regex: re.Pattern


def _rule(rule_id: str, score: float, pattern: str) -> Rule:
    return Rule(rule_id, score, re.compile(pattern, re.IGNORECASE))


_ROLE_WORDS = (
    r"(?:AI|A\.I\.|artificial intelligence|(?:large )?language model|LLM|chatbot|chat ?bot|GPT|AI assistant|"
    r"AI model|AI system|copilot)"
)
_DATA_WORDS = (
    r"(?:conversation|chat(?: history)?|history|user'?s?|password|credentials?|secrets?|api[ _-]?keys?|"
    r"tokens?|session|cookies?|personal (?:data|information)|e-?mail address(?:es)?|previous messages|"
    r"the above|system prompt|context)"
)

RULES = (
    _rule(
        "instruction_override", 0.95,
        r"\b(?:ignore|disregard|forget|override|bypass|skip|abandon)\b[^.\n]{0,40}"
        r"\b(?:previous|prior|above|earlier|preceding|all|any|your|original|system)\b[^.\n]{0,30}"
        r"\b(?:instructions?|prompts?|directives|guardrails|programming|system messages?|commands)\b",
    ),
    _rule(
        "instruction_revocation", 0.9,
        r"\b(?:do not|don't|never|stop)\s+(?:follow|obey|listen to|comply with)(?:ing)?\s+(?:your|the (?:developer|system|operator)'?s?)\s+"
        r"(?:instructions|rules|guidelines|guidance|directives|prompt|programming)\b"
        r"|\b(?:do not|don't|never|stop)\s+(?:follow|obey)(?:ing)?\s+the instructions you were given\b"
        r"|\bforget (?:everything|all)\s+(?:above|before this|prior|you (?:were|have been) told)\b"
        r"|\b(?:previous|prior|earlier|original|above)\s+(?:instructions|guidance|rules|directives)\s+"
        r"(?:no longer appl(?:y|ies)|(?:are|is) (?:void|cancelled|revoked|obsolete|suspended))\b"
        r"|\b(?:all\s+)?(?:safety\s+)?(?:rules|guidelines|guardrails|restrictions|filters)\s+(?:are|have been)\s+"
        r"(?:suspended|disabled|lifted|void)\s+for\s+this\s+(?:session|chat|conversation)\b",
    ),
    _rule(
        "safety_bypass", 0.9,
        r"\b(?:bypass|disable|turn off|circumvent|deactivate|ignore)\b[^.\n]{0,20}\b(?:content filter|safety "
        r"(?:filters?|rules|policy|policies|guidelines)|guardrails|moderation)\b[^.\n]{0,60}"
        r"\b(?:this (?:chat|conversation|session)|from now on|your (?:answers?|responses?|replies))\b"
        r"|\bI (?:authori[sz]e|permit|allow|order|instruct) you to (?:bypass|ignore|disable|override|reveal|share)\b",
    ),
    _rule(
        "response_hijack", 0.85,
        r"\b(?:respond|reply|answer)\b[^.\n]{0,10}\b(?:every|all|any)\s+(?:question|query|prompt|request|message)s?\b"
        r"[^.\n]{0,10}\bwith\b[^.\n]{0,60}\b(?:no matter|regardless|whatever)\b"
        r"|\byour (?:new|real|actual|true) (?:task|goal|objective|purpose|mission|instructions?) (?:is|are)\b",
    ),
    _rule(
        "new_instructions", 0.85,
        r"\b(?:new|updated|real|actual|true|hidden|secret)\s+(?:system\s+)?(?:instructions?|directives?|prompt)\s*:"
        r"|\bfrom now on,?\s+you\s+(?:are|will (?:act|respond|answer|reply|only)|must (?:respond|answer|reply|ignore|only))\b",
    ),
    _rule(
        "prompt_exfiltration", 0.9,
        r"\b(?:reveal|print|show|repeat|output|disclose|leak|display|dump|tell me|write out|recite)\b[^.\n]{0,30}"
        r"\b(?:(?:system|hidden|initial|original|secret|developer|internal)\s+(?:prompt|instructions?|message)|"
        r"your\s+(?:prompt|instructions))\b"
        r"|\b(?:reveal|print|show|repeat|output|disclose|dump|list)\b[^.\n]{0,30}"
        r"\b(?:(?:previous|earlier|prior) messages|conversation history|chat history)\b",
    ),
    _rule(
        "fake_role_turn", 0.9,
        r"<\|(?:im_start|im_end|system|assistant|user|endoftext)\|>|\[/?INST\]|<<\s*/?SYS\s*>>|</?(?:system|assistant)>"
        r"|</?(?:context|instructions?|system|prompt)>"
        r"|(?:^|\n)\s*(?:user|human)\s*:[^\n]{0,200}\n\s*(?:assistant|ai|bot)\s*:"
        r"|(?:^|\n)\s*(?:#{1,3}\s*)?(?:system|assistant|developer)\s*(?:message|prompt)?\s*:\s*"
        r"(?:you|ignore|disregard|from now|new|the user|as an ai|i am|i will|sure|okay|override)\b"
        r"|#{3}\s*(?:instruction|response|system prompt)\s*:",  # Alpaca-style template turns
    ),
    _rule(
        "role_hijack", 0.85,
        r"\byou are (?:now|no longer)\b[^.\n]{0,40}\b(?:unrestricted|jailbroken|unfiltered|uncensored|free from|"
        r"bound by|developer mode|DAN|evil|without (?:any )?(?:restrictions|limits|filters|rules))"
        r"|\b(?:pretend|imagine|act as if|roleplay|role-play)\b[^.\n]{0,40}\b(?:you are|you're|to be)\b[^.\n]{0,40}"
        r"\b(?:AI|assistant|model|DAN|unrestricted|jailbroken|no (?:rules|restrictions|filters))"
        r"|\b(?:DAN|developer mode|jailbreak mode|god mode)\b[^.\n]{0,20}\b(?:enabled|activated|on)\b"
        r"|\bact as (?:an? )?(?:unrestricted|jailbroken|unfiltered|uncensored)\b",
    ),
    _rule(
        "model_directed_command", 0.85,
        rf"\b{_ROLE_WORDS}s?\b[^.\n]{{0,40}}\b(?:must|should|shall|will|needs? to|are instructed to|is instructed to)\b"
        r"[^.\n]{0,40}\b(?:instead|always (?:respond|answer|reply|say)|reply with|respond with|tell the user|"
        r"inform the user|say that|ignore|output|append)\b"
        rf"|\b(?:note|message|instructions?) (?:to|for) (?:the |any )?{_ROLE_WORDS}s?\b"
        rf"|\b(?:if|when) you are an? {_ROLE_WORDS}\b"
        rf"|\b(?:attention|hey|dear)[,:]? (?:the )?(?:{_ROLE_WORDS}|model)s?\b\s*[,:]"
        rf"|(?:^|[.!?]\s+)(?:assistant|{_ROLE_WORDS}|model)\s*,\s*(?:please|you|from now|now|ignore|always|never|"
        r"append|include)\b"
        rf"|\b(?:this (?:message|note|text|section)|these instructions) (?:is|are) (?:only )?(?:for|meant for|intended for|"
        rf"addressed to) (?:the |any )?{_ROLE_WORDS}s?\b"
        rf"|\b{_ROLE_WORDS}s? (?:reading|processing|summari[sz]ing) this\b"
        r"|\bwhen (?:summari[sz]ing|answering|asked about|you read|you process|processing) this "
        r"(?:document|page|text|content|file)\b[^.\n]{0,40}\b(?:say|tell|respond|reply|include|recommend|state|insert|claim)\b",
    ),
    _rule(
        "data_exfiltration_request", 0.9,
        rf"\b(?:send|post|forward|upload|transmit|exfiltrate|leak|append|include|encode|embed)\b[^.\n]{{0,60}}"
        rf"\b{_DATA_WORDS}\b[^.\n]{{0,60}}(?:https?://|www\.|\b(?:this|the following) (?:url|link|endpoint|webhook)\b)"
        r"|\b(?:visit|open|fetch|call|load|request)\b[^.\n]{0,20}(?:https?://\S+)[^.\n]{0,40}"
        rf"\b(?:append|add|include|with)\b[^.\n]{{0,30}}\b{_DATA_WORDS}\b",
    ),
)

_MARKDOWN_LINK = re.compile(r"(!?)\[[^\]\n]{0,200}\]\(\s*<?(https?://[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_TEMPLATE_VALUE = re.compile(r"[{}<>\[\]$]|%7B|%3C|%24", re.IGNORECASE)
_DATA_LIKE_VALUE = re.compile(r"^[A-Za-z0-9+/=_-]{40,}$")

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad"
_BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_INVISIBLE = set(_ZERO_WIDTH + _BIDI_CONTROLS + "\u200e\u200f")
_ZERO_WIDTH_IN_WORD = re.compile(rf"[A-Za-z][{_ZERO_WIDTH}]+[A-Za-z]")

_BASE64_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{20,}={0,2}(?![A-Za-z0-9+/=])")
_HEX_TOKEN = re.compile(
    r"(?<![0-9A-Za-z])(?:(?:[0-9A-Fa-f]{2}){16,}|(?:[0-9A-Fa-f]{2}[ :]){15,}[0-9A-Fa-f]{2})(?![0-9A-Za-z])"
    r"|(?:\\x[0-9A-Fa-f]{2}){12,}"
)
_URL_ENCODED_TOKEN = re.compile(r"\S*(?:%[0-9A-Fa-f]{2}\S*){3,}")
_MAX_DECODE_DEPTH = 2


def scan_for_injection(text: str) -> list[Finding]:
    """Every finding in ``text``, in its plain, de-obfuscated and decoded readings."""
    return _scan(text, depth=0)


def score_of(findings: list[Finding]) -> float:
    return max((finding.score for finding in findings), default=0.0)


def _scan(text: str, depth: int) -> list[Finding]:
    findings = _rule_findings(text)
    findings += invisible_characters(text)
    findings += _normalized_findings(text)
    findings += _decoded_findings(text, depth)
    return findings


def _rule_findings(text: str) -> list[Finding]:
    """What the text says: instruction rules and exfiltrating links, in one reading."""
    findings = [
        Finding(rule.rule_id, rule.score, match.start(), match.end())
        for rule in RULES
        for match in rule.regex.finditer(text)
    ]
    return findings + _markdown_exfiltration(text)


def _markdown_exfiltration(text: str) -> list[Finding]:
    """Links and images whose query strings carry template slots or data-like payloads:
    a model that renders them sends whatever it filled in to the link's host."""
    findings = []
    for match in _MARKDOWN_LINK.finditer(text):
        is_image, url = match.group(1) == "!", match.group(2)
        values = [value for _, value in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
        if any(_TEMPLATE_VALUE.search(value) or _DATA_LIKE_VALUE.match(value) for value in values):
            rule_id = "markdown_image_exfiltration" if is_image else "markdown_link_exfiltration"
            findings.append(Finding(rule_id, 0.9 if is_image else 0.85, match.start(), match.end()))
    return findings


def invisible_characters(text: str) -> list[Finding]:
    """Zero-width characters inside words split keywords apart; bidi controls reorder
    what a reader sees. Neither alone proves an attack, so both score below the default
    threshold; the de-obfuscated rescan catches the instructions they hide."""
    findings = [Finding("zero_width_in_word", 0.6, m.start(), m.end()) for m in _ZERO_WIDTH_IN_WORD.finditer(text)]
    findings += [Finding("bidi_control", 0.5, i, i + 1) for i, char in enumerate(text) if char in _BIDI_CONTROLS]
    return findings


@cache
def _ascii_confusables() -> dict[str, str]:
    """Unicode TR39 confusables, each non-ASCII character mapped to its ASCII look-alike."""
    from confusable_homoglyphs import utils

    table = {}
    for char, homoglyphs in utils.load("confusables.json").items():
        ascii_forms = [h["c"] for h in homoglyphs if h["c"].isascii() and h["c"].isalnum()]
        if not char.isascii() and ascii_forms:
            table[char] = ascii_forms[0]
    return table


def normalize_obfuscation(text: str) -> tuple[str, list[int]]:
    """The text without invisible characters and with homoglyphs folded to ASCII, and
    for each character of it, its offset in the original."""
    table = _ascii_confusables()
    chars, offsets = [], []
    for index, char in enumerate(text):
        if char in _INVISIBLE or unicodedata.category(char) == "Mn" and index and text[index - 1].isascii():
            continue
        chars.append(table.get(char, char))
        offsets.append(index)
    return "".join(chars), offsets


def _normalized_findings(text: str) -> list[Finding]:
    if text.isascii():
        return []
    normalized, offsets = normalize_obfuscation(text)
    if normalized == text:
        return []
    plain = {(f.rule_id, f.start, f.end) for f in _rule_findings(text)}
    offsets.append(len(text))
    return [
        Finding(f"{f.rule_id}/deobfuscated", f.score, offsets[f.start], offsets[f.end - 1] + 1)
        for f in _rule_findings(normalized)
        if (f.rule_id, offsets[f.start], offsets[f.end - 1] + 1) not in plain
    ]


def _decoded_findings(text: str, depth: int) -> list[Finding]:
    """Decode what looks like an encoded payload and rescan it; findings point at the
    encoded span. Rot13 applies to the whole text (it has no tell-tale alphabet)."""
    if depth >= _MAX_DECODE_DEPTH:
        return []
    findings = []
    decoders = ((_BASE64_TOKEN, _from_base64, "base64"), (_HEX_TOKEN, _from_hex, "hex"),
                (_URL_ENCODED_TOKEN, _from_url_encoding, "urlencoded"))
    for pattern, decode, view in decoders:
        for match in pattern.finditer(text):
            decoded = decode(match.group())
            if decoded and _looks_like_text(decoded):
                findings += [
                    Finding(f"{f.rule_id.split('/')[0]}/{view}", min(1.0, f.score + 0.05), match.start(), match.end())
                    for f in _scan(decoded, depth + 1)
                    if f.rule_id.split("/")[0] in _RULE_IDS
                ]
    if depth == 0:
        rotated = codecs.decode(text, "rot13")
        findings += [Finding(f"{f.rule_id}/rot13", f.score, f.start, f.end) for f in _rule_findings(rotated)]
    return findings


_RULE_IDS = {rule.rule_id for rule in RULES} | {"markdown_image_exfiltration", "markdown_link_exfiltration"}


def _from_base64(token: str) -> str | None:
    try:
        return base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _from_hex(token: str) -> str | None:
    try:
        return bytes.fromhex(re.sub(r"\\x|[ :]", "", token)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _from_url_encoding(token: str) -> str | None:
    decoded = unquote_plus(token)
    return decoded if decoded != token else None


def _looks_like_text(decoded: str) -> bool:
    printable = sum(1 for char in decoded if char.isprintable() or char in "\n\t")
    return len(decoded) >= 8 and printable / len(decoded) > 0.95
