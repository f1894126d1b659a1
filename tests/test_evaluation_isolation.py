"""The two evaluation jobs on one data directory, through the CLI's code paths:
`ragpipe eval` (the golden set's corpus, in its own namespace) never touches the production
index, ledger or alias; `ragpipe promote` moves the serving alias only when the gate passes."""

import shutil
from dataclasses import replace

import pytest

from pipelines.cli import run_eval, run_promote, status
from pipelines.definitions import build_resources
from pipelines.settings import Settings
from tests.golden_fixture import write_golden_set


@pytest.fixture
def production(tmp_path) -> Settings:
    """A production corpus that holds the golden set's documents (so its questions apply),
    at other paths than the golden corpus, plus one document the golden set does not have."""
    golden = tmp_path / "golden"
    write_golden_set(golden)
    corpus = tmp_path / "production"
    shutil.copytree(golden / "corpus", corpus)
    (corpus / "canteen.md").write_text("# Canteen\n\nThe canteen serves soup on Tuesdays.\n", encoding="utf-8")
    return Settings(data_dir=tmp_path / "data", source_dir=corpus, golden_set=str(golden), top_k=3)


def production_state(settings: Settings) -> dict:
    """Everything a serving reader or the next production ingest depends on."""
    resources = build_resources(settings)
    store, ledger = resources["vector_store"], resources["ledger"]
    try:
        versions = ledger.status_counts()
        return {
            "alias": store.alias_target(settings.collection),
            "ledger": {version: ledger.rows(version) for version in versions},
            "points": {name: store.point_ids(name) for name in store.collections()},
        }
    finally:
        store.close()


def test_eval_on_a_production_data_dir_leaves_production_untouched(production):
    promoted = run_promote(production)
    assert promoted["gate_passed"] and promoted["promotion"]["alias"] == "knowledge"
    before = production_state(production)
    assert before["alias"] == promoted["evaluation"]["collection"]
    assert {row.status for rows in before["ledger"].values() for row in rows.values()} == {"indexed"}

    report = run_eval(production)

    assert report["success"] and report["gate_passed"]
    candidate = report["evaluation"]["collection"]
    assert candidate.startswith("knowledge-eval-golden__") and candidate not in before["points"]
    assert (report["promotion"]["alias"], report["promotion"]["collection"]) == ("knowledge-eval-golden", candidate)
    after = production_state(production)
    assert after["alias"] == before["alias"]
    assert {v: after["ledger"][v] for v in before["ledger"]} == before["ledger"]
    assert {name: after["points"][name] for name in before["points"]} == before["points"]
    assert set(after["points"]) == set(before["points"]) | {candidate}
    golden_rows = [rows for version, rows in after["ledger"].items() if version not in before["ledger"]]
    assert len(golden_rows) == 1 and len(golden_rows[0]) == 5  # the golden corpus, in its own ledger scope
    assert all("/golden/corpus/" in source for source in golden_rows[0])

    rerun = run_eval(production)  # the golden candidate is reused, production still untouched
    assert rerun["ingest"]["documents"]["unchanged"] == 5 and rerun["ingest"]["embedded"] == 0
    assert production_state(production) == after


def test_promote_moves_the_serving_alias_only_when_the_gate_passes(production):
    first = run_promote(production)
    serving = first["evaluation"]["collection"]
    assert first["gate_passed"] and status(production)["alias"]["target"] == serving
    assert first["ingest"]["documents"]["new"] == 6  # the production corpus, golden files included

    tiny_chunks = replace(production, chunk_size_tokens=16, chunk_overlap_tokens=0)
    failed = run_promote(tiny_chunks)

    assert not failed["success"] and failed["gate_passed"] is False and failed["promotion"] is None
    assert failed["evaluation"]["collection"] != serving
    assert not next(v for v in failed["evaluation"]["gate"] if v["check"] == "retrieval_floor")["passed"]
    assert status(production)["alias"]["target"] == serving
