"""The generator/judge resources against the local OpenAI-compatible contract server
(``openai_server.ChatServer``): the OpenAI-compatible and the Azure OpenAI wire routes."""

import pytest
from dagster import EnvVar

from assets.evaluation.scoring import answer_messages
from pipelines.definitions import build_llm
from pipelines.settings import Settings
from resources.llm import AzureOpenAILLM, OpenAICompatibleLLM
from resources.settings import SettingsError
from tests.openai_server import ChatServer

QUESTION = "Who runs the observatory?"
ANSWER = "Dr. Imogen Vasquez runs it."


def test_openai_compatible_completion_with_n_and_usage():
    with ChatServer({QUESTION: ANSWER}) as server:
        completion = OpenAICompatibleLLM(base_url=server.url, model="m").complete(answer_messages(QUESTION, ["ctx"]), n=2)
        chat = OpenAICompatibleLLM(base_url=server.url, model="m").langchain_model()
        reply = chat.invoke(answer_messages("Unknown question?", ["ctx"]))
    assert completion.texts == [ANSWER, ANSWER]
    assert completion.prompt_tokens > 0 and completion.completion_tokens == 2 * len(ANSWER.split())
    assert reply.content == "I don't know."
    assert server.requests[0]["n"] == 2 and server.requests[0]["temperature"] == 0.0


def test_azure_openai_uses_the_deployment_route_and_api_key_header():
    with ChatServer({QUESTION: ANSWER}) as server:
        endpoint = server.url.removesuffix("/v1")
        llm = AzureOpenAILLM(endpoint=endpoint, deployment="gpt-judge", api_key="azure-test-key")
        completion = llm.complete(answer_messages(QUESTION, ["ctx"]))
        reply = llm.langchain_model().invoke(answer_messages(QUESTION, ["ctx"]))
    assert completion.texts == [ANSWER] and reply.content == ANSWER
    assert all(path.startswith("/openai/deployments/gpt-judge/chat/completions?api-version=") for path in server.paths)
    assert {headers["api-key"] for headers in server.headers} == {"azure-test-key"}


def test_build_llm_is_none_unless_configured_and_defers_the_key_to_the_environment(monkeypatch):
    assert build_llm("openai", "", "m", "judge", "v") is None
    monkeypatch.setenv("RAGPIPE_JUDGE_API_KEY", "from-env")
    judge = build_llm("openai", "http://127.0.0.1:1/v1", "m", "judge", "v")
    assert judge.identity() == {"kind": "openai-compatible", "endpoint": "http://127.0.0.1:1/v1", "model": "m"}
    assert judge.api_key == EnvVar("RAGPIPE_JUDGE_API_KEY") and "from-env" not in repr(judge)
    azure = build_llm("azure", "https://x.openai.azure.com", "dep", "generator", "2024-10-21")
    assert isinstance(azure, AzureOpenAILLM) and azure.api_key == EnvVar("RAGPIPE_GENERATOR_API_KEY")
    with pytest.raises(SettingsError, match="RAGPIPE_JUDGE_KIND='anthropic' must be one of openai, azure"):
        Settings.from_env({"RAGPIPE_JUDGE_KIND": "anthropic"})
