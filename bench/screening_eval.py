"""Screening quality and speed on the generated evaluation set (tests/screening_corpus.py).

    .venv/bin/python bench/screening_eval.py

Prints PII recall and precision per entity type (default policy, pattern recognizers),
poisoning detection and false-positive rates at the default threshold, and throughput.
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import resources  # noqa: E402,F401  (offline defaults before library imports)
from assets.screening.pii import PiiEngine
from assets.screening.poisoning import scan_for_injection, score_of  # noqa: E402
from core.types import PiiConfig
from resources.settings import IngestionSettings  # noqa: E402
from tests.screening_corpus import build_eval_set, pii_scores, poison_scores  # noqa: E402


def main() -> None:
    evaluation = build_eval_set()
    started = time.monotonic()
    engine = PiiEngine(PiiConfig())
    print(f"PII engine ready in {time.monotonic() - started:.1f} s (Presidio import and recognizers)")
    started = time.monotonic()
    scores = pii_scores(evaluation.pii, lambda t: [(d.entity, d.start, d.end) for d in engine.detect(t)])
    pii_seconds = time.monotonic() - started
    print(f"\nPII ({len(evaluation.pii)} samples)      recall  precision")
    for entity in sorted(scores.recall):
        print(f"  {entity:<18} {scores.recall[entity]:7.3f}  {scores.precision.get(entity, 0.0):9.3f}")
    for entity in sorted(set(scores.precision) - set(scores.recall)):
        print(f"  {entity:<18} {'-':>7}  {scores.precision[entity]:9.3f}  (unlabelled type: every hit is a false positive)")
    chars = sum(len(s.text) for s in evaluation.pii)
    print(f"  {len(evaluation.pii) / pii_seconds:.0f} texts/s, {chars / pii_seconds / 1000:.0f} k chars/s")

    threshold = IngestionSettings().poisoning_threshold
    started = time.monotonic()
    poison = poison_scores(evaluation.poison, lambda t: score_of(scan_for_injection(t)) >= threshold)
    scan_seconds = time.monotonic() - started
    clean = sum(not s.poisoned for s in evaluation.poison)
    print(f"\nPoisoning (threshold {threshold}): {len(evaluation.poison) - clean} injected, {clean} clean")
    print(f"  detection rate      {poison.detection_rate:.3f}")
    print(f"  false positive rate {poison.false_positive_rate:.3f}")
    for kind, rate in poison.detection_by_kind.items():
        note = {"held_out": "  (phrasings never used to tune the rules)",
                "held_out_seen": "  (held out in round 1, seen when writing round-2 rules)"}.get(kind, "")
        print(f"    {kind:<12} {rate:.3f}{note}")
    chars = sum(len(s.text) for s in evaluation.poison)
    print(f"  {len(evaluation.poison) / scan_seconds:.0f} docs/s, {chars / scan_seconds / 1000:.0f} k chars/s")


if __name__ == "__main__":
    main()
