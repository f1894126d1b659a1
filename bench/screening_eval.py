"""Injection screening quality and cost on ../shared/datasets/injection, per detector.

    .venv/bin/python bench/screening_eval.py [--data ../shared/datasets]

Detectors: the rules (assets/screening/poisoning.py at the default threshold), the learned
classifier (the shipped head at its threshold) and both combined (either flags). For the
indirect set: recall on injected paragraphs by wrapper and by position, and false positives
on the clean twins; for the direct set: recall per source and false positives on benign
prompts (for information: those are requests written to an assistant). Every figure is split
into the sources the classifier was tuned on and the held-out ones (the split of
scripts/train_injection_classifier.py). Then latency per 1,000 chunks, and the generated
poisoning set of tests/screening_corpus.py. Last, PII recall and precision per entity type and
source on pii/dev.jsonl (bench/pii_eval.py, which also runs on its own).
"""

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from pii_eval import evaluate_pii, format_evaluation  # noqa: E402
from train_injection_classifier import TUNE_CORPORA, TUNE_ORIGINS, held_out, load_texts, tuned_on  # noqa: E402

import resources  # noqa: E402,F401  (offline defaults before library imports)
from assets.screening.injection_classifier import build_injection_classifier  # noqa: E402
from assets.screening.poisoning import scan_for_injection, score_of  # noqa: E402
from resources.screening import ScreeningSettings  # noqa: E402
from resources.settings import IngestionSettings  # noqa: E402
from tests.screening_corpus import build_eval_set, poison_scores  # noqa: E402

DETECTORS = ("rules", "classifier", "combined")


def _rate(flags: list[bool]) -> str:
    return f"{sum(flags):>4}/{len(flags):<4} {sum(flags) / len(flags):6.3f}" if flags else f"{'-':>17}"


def _table(title: str, groups: dict[str, list[dict]], label: int) -> None:
    print(f"\n{title}")
    print(f"  {'':<22}" + "".join(f"{d:>19}" for d in DETECTORS))
    for name in sorted(groups, key=str):
        rows = [r for r in groups[name] if r["label"] == label]
        if rows:
            print(f"  {name!s:<22}" + "".join(f"{_rate([r[d] for r in rows]):>19}" for d in DETECTORS))


def _flags(texts, classifier, threshold: float) -> list[dict]:
    classified = classifier.score([t.text for t in texts])["classifier"]
    rows = []
    for text, learned in zip(texts, classified):
        rules = score_of(scan_for_injection(text.text)) >= threshold
        learned_flag = learned.score >= classifier.threshold
        rows.append({"text": text, "label": text.label, "rules": rules, "classifier": learned_flag,
                     "combined": rules or learned_flag})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets")
    args = parser.parse_args()
    classifier = build_injection_classifier(ScreeningSettings())
    threshold = IngestionSettings().poisoning_threshold
    texts = load_texts(args.data)
    print(f"rules threshold {threshold}; classifier threshold {classifier.threshold:.4f} "
          f"(head {classifier.head.fingerprint}); tuned on paragraphs {', '.join(TUNE_CORPORA)} "
          f"and injections {', '.join(TUNE_ORIGINS)}")
    rows = _flags(texts, classifier, threshold)
    for split, keep in (("held-out", held_out), ("tuned", tuned_on)):
        picked = [r for r in rows if keep(r["text"], TUNE_CORPORA, TUNE_ORIGINS)]
        indirect = [r for r in picked if r["text"].kind == "indirect"]
        direct = [r for r in picked if r["text"].kind == "direct"]
        by = defaultdict(lambda: defaultdict(list))
        for r in indirect:
            by["wrapper"][r["text"].wrapper].append(r)
            by["position"][r["text"].position].append(r)
            by["corpus"][r["text"].corpus].append(r)
            by["all"]["all"].append(r)
        print(f"\n=== {split} sources ===")
        _table(f"indirect: recall on injected paragraphs ({split})", {**by["all"], **by["corpus"]}, 1)
        _table("  by wrapper", by["wrapper"], 1)
        _table("  by position", by["position"], 1)
        _table(f"indirect: false positives on clean twins ({split})", {**by["all"], **by["corpus"]}, 0)
        decoys = {"decoy": [r for r in indirect if not r["label"] and r["text"].decoy],
                  "no decoy": [r for r in indirect if not r["label"] and not r["text"].decoy]}
        _table("  clean twins with and without a decoy", decoys, 0)
        per_source = defaultdict(list)
        for r in direct:
            per_source[r["text"].origin].append(r)
        _table(f"direct: recall per source ({split})", per_source, 1)
        _table("direct: false positives on benign prompts (information)", per_source, 0)

    chunks = [t.text for t in texts if t.kind == "indirect"]
    started = time.monotonic()
    classifier.score(chunks)
    seconds = time.monotonic() - started
    print(f"\nlatency per 1,000 chunks (indirect paragraphs, ~{sum(map(len, chunks)) // len(chunks)} chars): "
          f"classifier {1000 * seconds / len(chunks):.2f} s", end="")
    started = time.monotonic()
    for chunk in chunks:
        scan_for_injection(chunk)
    print(f", rules {1000 * (time.monotonic() - started) / len(chunks):.2f} s")

    evaluation = build_eval_set(pii_per_entity=1, pii_negatives=1)
    learned = classifier.score([s.text for s in evaluation.poison])["classifier"]
    verdicts = {id(s): (score_of(scan_for_injection(s.text)) >= threshold, score.score >= classifier.threshold)
                for s, score in zip(evaluation.poison, learned)}
    print("\ngenerated poisoning set (tests/screening_corpus.py)")
    for index, name in enumerate(("rules", "classifier")):
        scores = poison_scores(evaluation.poison, lambda t, i=index, d={s.text: s for s in evaluation.poison}:
                               verdicts[id(d[t])][i])
        kinds = ", ".join(f"{kind} {rate:.3f}" for kind, rate in scores.detection_by_kind.items())
        print(f"  {name:<10} detection {scores.detection_rate:.3f}, false positives {scores.false_positive_rate:.3f}"
              f" ({kinds})")

    print("\nPII (bench/pii_eval.py)")
    print(format_evaluation(evaluate_pii(args.data / "pii" / "dev.jsonl")))


if __name__ == "__main__":
    main()
