"""End to end through Dagster: the golden-set job (ingestion → rag_evaluation and its blocking
gate checks → promoted_index, in the golden set's namespace) and the rollback job, on a golden
set the tests write.

The generation tier runs against ``openai_server.ChatServer``, a local HTTP server speaking
the OpenAI chat-completions wire format (no LLM can run on this machine)."""

import json
from pathlib import Path

import pytest

from assets.promotion.versions import kept_collections
from pipelines.cli import _print_evaluation, status
from pipelines.definitions import GOLDEN_SET_JOB, PRODUCTION_JOB, build_definitions, build_resources
from pipelines.settings import Settings
from resources.llm import OpenAICompatibleLLM
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
                    **{"top_k": 3, **llm, **overrides})


def run_eval(settings: Settings, job: str = GOLDEN_SET_JOB, **resource_overrides):
    definitions = build_definitions(settings, resource_overrides or None)
    return definitions.resolve_job_def(job).execute_in_process(raise_on_error=False)


def check_evaluations(result) -> dict:
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    return {e.check_name: e for e in evaluations if e.asset_key.to_user_string() == "rag_evaluation"}


def checks(result) -> dict[str, tuple[bool, str]]:
    return {name: (e.passed, e.description) for name, e in check_evaluations(result).items()}


def golden_alias(settings: Settings) -> str:
    return f"{settings.collection}-{settings.golden_namespace}"


def alias_target(settings: Settings) -> str | None:
    """Where the golden set's namespace alias points (the job never moves the serving one)."""
    store = build_resources(settings)["vector_store"]
    try:
        return store.alias_target(golden_alias(settings))
    finally:
        store.close()


def versions_kept(settings: Settings) -> list[str]:
    history = build_resources(settings)["evaluation_store"].promotions(golden_alias(settings))
    return kept_collections(history, settings.keep_versions)


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
    assert aggregates["hit@5"] == 1.0 and aggregates["non_llm_context_recall"] == 1.0
    assert summary["tokens"]["generator_tokens"] > 0 and summary["tokens"]["judge_tokens"] > 0
    assert all(passed for passed, _ in checks(result).values()) and len(checks(result)) == 5
    assert checks(result)["no_acl_leak"] == (True, "no golden question carries groups: access trimming not checked")
    # answer relevancy asked for three completions in one request
    assert any(request.get("n") == 3 for request in server.requests)
    # the generator's key reached the server (only there: the judge has none configured)
    generator_calls = [h.get("authorization") for r, h in zip(server.requests, server.headers)
                       if r["model"] == "generator-model"]
    assert len(generator_calls) == 8 and set(generator_calls) == {f"Bearer {API_KEY}"}
    assert API_KEY not in repr(result.all_events)
    metadata = result.asset_materializations_for_node("rag_evaluation")[0].metadata
    assert metadata["faithfulness"].value == 1.0 and metadata["judge_tokens"].value > 0  # plotted by the UI
    assert set(metadata["seconds"].value) == {"embedding", "search", "scoring", "generation"}
    assert metadata["seconds"].value["generation"] > 0 and metadata["chunks"].value > 0
    assert metadata["worst_questions"].value.startswith("| id | question | expected | top retrieved | reason |")
    assert metadata["models"].value["judge"] == {"kind": "openai-compatible", "endpoint": server.url,
                                                 "model": "judge-model"}
    results_file = Path(metadata["results"].value)
    lines = [json.loads(line) for line in results_file.read_text().splitlines()]
    assert len(lines) == 8 and {line["id"] for line in lines} == {f"q{i}" for i in range(1, 9)}
    assert alias_target(settings) == summary["collection"]
    assert versions_kept(settings) == [summary["collection"]]


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


def test_context_recall_regression_is_blocked_across_a_retriever_and_top_k_change(tmp_path, golden):
    """The baseline is the promoted version's evaluation on the same golden set, even though
    it used another retriever and k: that change is what the check exists to judge."""
    root, _ = golden
    baseline = settings_for(tmp_path, root, min_retrieval_recall=0.0, retriever="dense")
    promoted = run_eval(baseline).output_for_node("rag_evaluation")["collection"]
    candidate = settings_for(tmp_path, root, min_retrieval_recall=0.0, chunk_size_tokens=16, chunk_overlap_tokens=0,
                             retriever="hybrid", top_k=4)
    result = run_eval(candidate)
    assert not result.success
    regression = check_evaluations(result)["context_recall_regression"]
    assert not regression.passed
    assert regression.description.startswith("non_llm_context_recall 0.")
    assert f"below the promoted {promoted}'s 1.000" in regression.description
    baseline_setup = {key: regression.metadata[f"baseline_{key}"].value for key in ("collection", "retriever", "top_k")}
    assert baseline_setup == {"collection": promoted, "retriever": "dense", "top_k": 3}
    assert checks(result)["retrieval_floor"][0]  # the floor is off here: the regression alone blocks
    assert alias_target(candidate) == promoted


def test_a_judge_that_errors_on_every_call_fails_the_gate_with_its_errors(tmp_path, golden, capsys):
    root, answers = golden
    with ChatServer(answers) as server:
        server.judge_down = True
        settings = settings_for(tmp_path, root, server)
        # no client retries: every call fails the same way, and the test stays fast
        result = run_eval(settings, judge=OpenAICompatibleLLM(base_url=server.url, model="judge-model", max_retries=0))
    assert not result.success
    summary = result.output_for_node("rag_evaluation")
    assert summary["generation_tier"] and not summary["gate_passed"]
    assert summary["scored"]["faithfulness"] == {"scored": 0, "applicable": 6}
    for name in ("faithfulness", "composite"):
        check = check_evaluations(result)[name]
        assert not check.passed
        assert "faithfulness scored on 0 of 6 questions (at least 90% required)" in check.description
        assert "InternalServerError" in check.description and "not computed" not in check.description
        errors = check.metadata["errors"].value
        assert {e["where"] for e in errors} == {"faithfulness", "answer_relevancy", "context_recall",
                                                "context_precision"}
        assert {e["type"] for e in errors} == {"InternalServerError"}
        assert all("the judge model is unavailable" in e["message"] and len(e["message"]) <= 120 for e in errors)
        assert sum(e["count"] for e in errors if e["where"] == "faithfulness") == 6
    assert check_evaluations(result)["retrieval_floor"].passed  # the retrieval tier needs no judge
    assert not result.asset_materializations_for_node("promoted_index") and alias_target(settings) is None
    _print_evaluation(summary, settings)  # what `ragpipe eval` prints
    printed = capsys.readouterr().out
    assert "faithfulness scored on 0 of 6 questions" in printed
    assert "error (6×) in faithfulness: InternalServerError: Error code: 500" in printed


def test_a_judge_whose_output_scores_nan_on_most_questions_fails_on_the_scored_share(tmp_path, golden):
    root, answers = golden
    with ChatServer(answers) as server:
        server.statementless = set(list(answers.values())[:5])  # 5 of the 6 answerable questions
        result = run_eval(settings_for(tmp_path, root, server))
    assert not result.success
    summary = result.output_for_node("rag_evaluation")
    assert summary["scored"]["faithfulness"] == {"scored": 1, "applicable": 6}
    assert summary["aggregates"]["faithfulness"] == 1.0  # the one scored question alone would pass
    for name in ("faithfulness", "composite"):
        passed, reason = checks(result)[name]
        assert not passed and reason.startswith("faithfulness scored on 1 of 6 questions (at least 90% required)")
    assert checks(result)["retrieval_floor"][0] and checks(result)["context_recall_regression"][0]


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
    """On the production path: the golden set's corpus is the production source here."""
    root, _ = golden

    def promote(settings: Settings) -> str:
        return run_eval(settings, PRODUCTION_JOB).output_for_node("rag_evaluation")["collection"]

    first = settings_for(tmp_path, root, keep_versions=2)
    first_collection = promote(first)
    second = settings_for(tmp_path, root, keep_versions=2, chunk_size_tokens=150)
    second_collection = promote(second)
    assert status(second)["alias"]["target"] == second_collection
    assert status(second)["versions_kept"] == [second_collection, first_collection]

    rollback = build_definitions(second).resolve_job_def("rollback").execute_in_process(
        run_config={"ops": {"roll_back_alias": {"config": {"version": first_collection.split("__")[1]}}}},
    )
    assert rollback.success and status(second)["alias"]["target"] == first_collection
    unknown = build_definitions(second).resolve_job_def("rollback").execute_in_process(
        run_config={"ops": {"roll_back_alias": {"config": {"version": "0000000000"}}}}, raise_on_error=False,
    )
    assert not unknown.success and status(second)["alias"]["target"] == first_collection

    third = settings_for(tmp_path, root, keep_versions=2, chunk_size_tokens=100)
    third_collection = promote(third)
    report = status(third)
    assert report["versions_kept"] == [third_collection, first_collection]
    assert second_collection not in report["collections"]  # promoted once, now beyond the last 2
