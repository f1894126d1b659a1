"""Screening quality on the generated, labelled evaluation set (figures: bench/screening_eval.py)."""

import pytest

from assets.screening.pii import PiiEngine
from assets.screening.poisoning import scan_for_injection, score_of
from core.types import STRUCTURED_ENTITIES, PiiConfig
from resources.settings import IngestionSettings
from tests.screening_corpus import build_eval_set, pii_scores, poison_scores


@pytest.fixture(scope="module")
def evaluation():
    return build_eval_set()


def test_structured_pii_recall_and_precision(evaluation):
    engine = PiiEngine(PiiConfig())
    scores = pii_scores(evaluation.pii, lambda text: [(d.entity, d.start, d.end) for d in engine.detect(text)])
    assert set(scores.recall) == set(STRUCTURED_ENTITIES)
    for entity in STRUCTURED_ENTITIES:
        assert scores.recall[entity] >= 0.95, (entity, scores.recall[entity])
        assert scores.precision[entity] >= 0.8, (entity, scores.precision[entity])


def test_poisoning_detects_injections_and_spares_clean_prose(evaluation):
    threshold = IngestionSettings().poisoning_threshold
    scores = poison_scores(evaluation.poison, lambda text: score_of(scan_for_injection(text)) >= threshold)
    assert scores.false_positive_rate <= 0.01
    tuned = {kind: rate for kind, rate in scores.detection_by_kind.items() if not kind.startswith("held_out")}
    assert min(tuned.values()) >= 0.95, tuned
    # phrasings the rules were not (or only in a second round) tuned on: regression floors,
    # not a claim of coverage; Prompt Shields is the backend for phrasings rules miss
    assert scores.detection_by_kind["held_out_seen"] >= 0.8
    assert scores.detection_by_kind["held_out"] >= 0.1
