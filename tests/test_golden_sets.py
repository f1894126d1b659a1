"""Golden set loading: valid sets load; every bad row is reported with its line number."""

import json

import pytest

from assets.evaluation.golden import GoldenSetError, load_golden_set
from pipelines.settings import GOLDEN_SETS, Settings
from resources.settings import EvaluationSettings, SettingsError
from tests.golden_fixture import write_golden_set


def test_the_generated_set_loads(tmp_path):
    write_golden_set(tmp_path)
    golden = load_golden_set(tmp_path)
    assert len(golden.questions) == 8
    assert [q.answerable for q in golden.questions].count(False) == 2
    assert golden.questions[0].reference_sources == ("telescopes.md",)
    assert len(golden.fingerprint) == 12


def test_bad_rows_are_all_reported_with_line_numbers(tmp_path):
    write_golden_set(tmp_path)
    good = (tmp_path / "questions.jsonl").read_text().splitlines()
    bad = [
        good[0],
        "{not json",
        json.dumps({"id": "x1", "question": "", "ground_truth": "a"}),
        json.dumps({"id": "x2", "question": "q?", "ground_truth": "a", "answerable": True}),
        json.dumps({"id": "x3", "question": "q?", "ground_truth": "a", "reference_sources": ["nope.md"]}),
        json.dumps({"id": "x4", "question": "q?", "ground_truth": "a", "answerable": "yes"}),
        good[0],
    ]
    (tmp_path / "questions.jsonl").write_text("\n".join(bad) + "\n")
    with pytest.raises(GoldenSetError) as error:
        load_golden_set(tmp_path)
    message = str(error.value)
    assert "line 1:" not in message
    assert "questions.jsonl line 2:" in message
    assert "line 3: 'question' must be a non-empty string" in message
    assert "line 4: an answerable question needs reference_contexts, reference_sources or answers" in message
    assert "line 5: reference_sources not in the corpus: nope.md" in message
    assert "line 6: 'answerable' must be true or false" in message
    assert "line 7: duplicate id 'q1'" in message


def test_missing_questions_file(tmp_path):
    with pytest.raises(GoldenSetError, match="questions.jsonl not found"):
        load_golden_set(tmp_path)


def test_the_shipped_sample_set_is_valid():
    golden = load_golden_set(GOLDEN_SETS / "sample")
    assert len(golden.questions) >= 50
    assert any(not q.answerable for q in golden.questions)


def test_answer_spans_load_in_either_shape_and_bad_cutoffs_are_refused(tmp_path):
    rows = [{"id": "a", "question": "q?", "ground_truth": "x", "answers": ["1990", "the year 1990"]},
            {"id": "b", "question": "q?", "ground_truth": "x", "answers": {"text": ["Paris"], "answer_start": [4]}}]
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    golden = load_golden_set(tmp_path)
    assert [q.answers for q in golden.questions] == [("1990", "the year 1990"), ("Paris",)]
    assert golden.notes == ()
    with pytest.raises(SettingsError, match="RAGPIPE_HIT_CUTOFFS must list positive integers, e.g. 1,3,5,10, not '0,5'"):
        Settings.from_env({"RAGPIPE_HIT_CUTOFFS": "0,5"})
    with pytest.raises(SettingsError, match="RAGPIPE_TOP_K=0 must be at least 1"):
        Settings.from_env({"RAGPIPE_TOP_K": "0"})
    settings = Settings.from_env({"RAGPIPE_HIT_CUTOFFS": "10, 1,5,5"})
    assert EvaluationSettings(golden_set_dir="x", **settings.values_for(EvaluationSettings)).cutoffs() == (1, 5, 10)
