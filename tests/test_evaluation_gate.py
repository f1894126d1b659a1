"""End to end through Dagster: the evaluate job (ingestion → rag_evaluation and its blocking
gate checks → promoted_index) and the rollback job, on a golden set the tests write.

The generation tier runs against ``openai_server.ChatServer``, a local HTTP server speaking
the OpenAI chat-completions wire format (no LLM can run on this machine)."""

import json
from pathlib import Path

import pytest

from pipelines.cli import status
from pipelines.definitions import EVAL_JOB, build_definitions
from pipelines.settings import Settings
from tests.golden_fixture import write_golden_set
from tests.openai_server import ChatServer

API_KEY = "sk-test-not-a-real-key"


@pytest.fixture
def golden(tmp_path):
    root = tmp_path / "golden"
    return root, write_golden_set(root)


def settings_for(tmp_path: Path, golden_root: Path, server: ChatServer | None = None, **overrides) -> Settings:
    llm = {}
    if server is not None:
        llm = {"generator_url": server.url, "generator_model": "generator-model",
               "judge_url": server.url, "judge_model": "judge-model"}
    return Settings(data_dir=tmp_path / "data", source_dir=golden_root / "corpus", golden_set=str(golden_root),
                    top_k=3, **llm, **overrides)


def run_eval(settings: Settings):
    return build_definitions(settings).resolve_job_def(EVAL_JOB).execute_in_process(raise_on_error=False)


def checks(result) -> dict[str, tuple[bool, str]]:
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    return {e.check_name: (e.passed, e.description) for e in evaluations if e.asset_key.to_user_string() == "rag_evaluation"}


def alias_target(settings: Settings) -> str | None:
    return status(settings)["alias"]["target"]


def test_passing_generation_run_promotes(tmp_path, golden, monkeypatch):
    monkeypatch.setenv("RAGPIPE_GENERATOR_API_KEY", API_KEY)
    root, answers = golden
    with ChatServer(answers) as server:
        settings = settings_for(tmp_path, root, server)
        result = run_eval(settings)
    assert result.success
    summary = result.output_for_node("rag_evaluation")
    aggregates = summary["aggregates"]
    assert summary["generation_tier"] and summary["gate_passed"]
    assert aggregates["faithfulness"] == 1.0 and aggregates["context_recall"] == 1.0
    assert aggregates["context_precision"] > 0.3
    assert aggregates["answer_relevancy"] > 0.99  # the judge regenerates the exact question
    assert aggregates["composite"] > 0.78
    assert aggregates["abstention_rate"] == 1.0  # both unanswerable questions got "I don't know"
    assert aggregates["hit_rate"] == 1.0 and aggregates["non_llm_context_recall"] == 1.0
    assert summary["tokens"]["generator_tokens"] > 0 and summary["tokens"]["judge_tokens"] > 0
    assert all(passed for passed, _ in checks(result).values()) and len(checks(result)) == 4
    # answer relevancy asked for three completions in one request
    assert any(request.get("n") == 3 for request in server.requests)
    # the generator's key reached the server (only there: the judge has none configured)
    generator_calls = [h.get("authorization") for r, h in zip(server.requests, server.headers)
                       if r["model"] == "generator-model"]
    assert len(generator_calls) == 8 and set(generator_calls) == {f"Bearer {API_KEY}"}
    assert API_KEY not in repr(result.all_events)
    metadata = result.asset_materializations_for_node("rag_evaluation")[0].metadata
    assert metadata["faithfulness"].value == 1.0 and metadata["judge_tokens"].value > 0  # plotted by the UI
    assert metadata["retrieval_latency_p95_ms"].value >= metadata["retrieval_latency_p50_ms"].value > 0
    assert metadata["worst_questions"].value.startswith("| id | tags |")
    assert metadata["models"].value["judge"] == {"kind": "openai-compatible", "endpoint": server.url,
                                                 "model": "judge-model"}
    results_file = Path(metadata["results"].value)
    lines = [json.loads(line) for line in results_file.read_text().splitlines()]
    assert len(lines) == 8 and {line["id"] for line in lines} == {f"q{i}" for i in range(1, 9)}
    assert alias_target(settings) == summary["collection"]
    assert status(settings)["versions_kept"] == [summary["collection"]]


def test_low_faithfulness_is_blocked_and_leaves_the_alias(tmp_path, golden):
    root, answers = golden
    with ChatServer(answers) as server:
        promoted = run_eval(settings_for(tmp_path, root, server)).output_for_node("rag_evaluation")["collection"]
        server.faithful = False
        candidate_settings = settings_for(tmp_path, root, server, chunk_size_tokens=120)
        result = run_eval(candidate_settings)
    assert not result.success
    summary = result.output_for_node("rag_evaluation")
    assert summary["collection"] != promoted
    passed, reason = checks(result)["faithfulness"]
    assert not passed and reason == "faithfulness 0.000 <= threshold 0.85"
    assert not checks(result)["composite"][0]
    assert not result.asset_materializations_for_node("promoted_index")
    assert alias_target(candidate_settings) == promoted


def test_context_recall_regression_is_blocked(tmp_path, golden):
    root, _ = golden
    baseline = settings_for(tmp_path, root, min_retrieval_recall=0.0)
    promoted = run_eval(baseline).output_for_node("rag_evaluation")["collection"]
    candidate = settings_for(tmp_path, root, min_retrieval_recall=0.0, chunk_size_tokens=16, chunk_overlap_tokens=0)
    result = run_eval(candidate)
    assert not result.success
    passed, reason = checks(result)["context_recall_regression"]
    assert not passed
    assert reason.startswith("non_llm_context_recall 0.") and f"below the promoted {promoted}'s 1.000" in reason
    assert checks(result)["retrieval_floor"][0]  # the floor is off here: the regression alone blocks
    assert alias_target(candidate) == promoted


def test_require_generation_without_a_judge_fails(tmp_path, golden):
    root, _ = golden
    settings = settings_for(tmp_path, root, require_generation=True)
    result = run_eval(settings)
    assert not result.success
    for check in ("faithfulness", "composite"):
        passed, reason = checks(result)[check]
        assert not passed and "require_generation is on" in reason
    assert alias_target(settings) is None


def test_production_profile_requires_generation():
    assert Settings.from_env({"RAGPIPE_PROFILE": "production"}).require_generation
    assert not Settings.from_env({"RAGPIPE_PROFILE": "production", "RAGPIPE_REQUIRE_GENERATION": "0"}).require_generation
    assert not Settings.from_env({}).require_generation


def test_rollback_job_points_the_alias_back_and_old_versions_are_dropped(tmp_path, golden):
    root, _ = golden
    first = settings_for(tmp_path, root, keep_versions=2)
    first_collection = run_eval(first).output_for_node("rag_evaluation")["collection"]
    second = settings_for(tmp_path, root, keep_versions=2, chunk_size_tokens=150)
    second_collection = run_eval(second).output_for_node("rag_evaluation")["collection"]
    assert alias_target(second) == second_collection
    assert status(second)["versions_kept"] == [second_collection, first_collection]

    rollback = build_definitions(second).resolve_job_def("rollback").execute_in_process(
        run_config={"ops": {"roll_back_alias": {"config": {"version": first_collection.split("__")[1]}}}},
    )
    assert rollback.success and alias_target(second) == first_collection
    unknown = build_definitions(second).resolve_job_def("rollback").execute_in_process(
        run_config={"ops": {"roll_back_alias": {"config": {"version": "0000000000"}}}}, raise_on_error=False,
    )
    assert not unknown.success and alias_target(second) == first_collection

    third = settings_for(tmp_path, root, keep_versions=2, chunk_size_tokens=100)
    third_collection = run_eval(third).output_for_node("rag_evaluation")["collection"]
    report = status(third)
    assert report["versions_kept"] == [third_collection, first_collection]
    assert second_collection not in report["collections"]  # promoted once, now beyond the last 2
