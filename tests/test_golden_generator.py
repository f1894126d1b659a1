"""The generated golden set: deterministic, loadable, large, and every answer where it is said to be."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assets.evaluation.golden import load_golden_set
from bench.golden_generator import generate_golden_set


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate_golden_set(tmp_path_factory.mktemp("golden") / "set")


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(generated, tmp_path):
    assert _files(generate_golden_set(tmp_path / "again")) == _files(generated)
    assert _files(generate_golden_set(tmp_path / "other", seed=1)) != _files(generated)


def test_loads_as_a_golden_set_with_the_requested_sizes(generated):
    golden = load_golden_set(generated)
    assert len(golden.questions) == 1200
    assert len(list(golden.corpus.rglob("*.md"))) == 120
    assert len({q.question for q in golden.questions}) == len(golden.questions)
    assert 0 < sum(not q.answerable for q in golden.questions) < len(golden.questions) / 10
    assert all(len(q.answers) == 1 for q in golden.questions if q.answerable)


def test_every_answer_is_in_its_reference_context_and_the_context_in_its_source(generated):
    rows = [json.loads(line) for line in (generated / "questions.jsonl").read_text().splitlines()]
    for row in (r for r in rows if r["answerable"]):
        [context], [source], [answer] = row["reference_contexts"], row["reference_sources"], row["answers"]
        assert answer in context
        assert context in (generated / "corpus" / source).read_text()
    answers = [r["answers"][0] for r in rows if r["answerable"]]
    assert sum(" " not in a for a in answers) > len(answers) / 2  # mostly one-word answers, SQuAD-style
    assert any(" " in a for a in answers) and any(a.isdigit() for a in answers)


def test_documents_of_one_kind_share_their_headings(generated):
    headings = {tuple(line for line in path.read_text().splitlines() if line.startswith("## "))
                for path in (generated / "corpus" / "sites").glob("*.md")}
    assert len(headings) == 1


def test_more_documents_than_the_word_lists_allow_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at most"):
        generate_golden_set(tmp_path, documents=1000)
