"""Chat LLM endpoints for the evaluation: the generator that answers golden questions and
the judge RAGAS asks. Any OpenAI-compatible server (vLLM, TGI, llama.cpp, OpenAI) or Azure
OpenAI. API keys come from the environment (dagster ``EnvVar``) and are never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from dagster import ConfigurableResource
from pydantic import PrivateAttr


@dataclass(frozen=True)
class Completion:
    texts: list[str]
    prompt_tokens: int
    completion_tokens: int


class ChatModel(Protocol):
    def identity(self) -> dict[str, str]: ...

    def complete(self, messages: list[dict[str, str]], n: int = 1) -> Completion: ...

    def langchain_model(self) -> Any: ...


class _OpenAIChat(ConfigurableResource):
    """What both OpenAI flavours share: one client per resource, deterministic sampling."""

    temperature: float = 0.0
    max_tokens: int = 512
    timeout_s: float = 120.0
    max_retries: int = 2
    _client: Any = PrivateAttr(default=None)

    def identity(self) -> dict[str, str]:
        raise NotImplementedError("each endpoint kind names itself")

    def _new_client(self) -> Any:
        raise NotImplementedError("each endpoint kind builds its own client")

    def complete(self, messages: list[dict[str, str]], n: int = 1) -> Completion:
        if self._client is None:
            self._client = self._new_client()
        response = self._client.chat.completions.create(
            model=self.identity()["model"], messages=messages, n=n,
            temperature=self.temperature, max_tokens=self.max_tokens,
        )
        usage = response.usage
        return Completion(
            texts=[choice.message.content or "" for choice in response.choices],
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )


class OpenAICompatibleLLM(_OpenAIChat):
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint, e.g. vLLM's ``--api-key`` server."""

    base_url: str
    model: str
    api_key: str = "not-needed"  # local servers often take any key; set via EnvVar otherwise

    def identity(self) -> dict[str, str]:
        return {"kind": "openai-compatible", "endpoint": self.base_url, "model": self.model}

    def _new_client(self) -> Any:
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s,
                      max_retries=self.max_retries)

    def langchain_model(self) -> Any:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(base_url=self.base_url, api_key=self.api_key, model=self.model,
                          temperature=self.temperature, max_tokens=self.max_tokens,
                          timeout=self.timeout_s, max_retries=self.max_retries)


class AzureOpenAILLM(_OpenAIChat):
    """An Azure OpenAI deployment (``https://<resource>.openai.azure.com``)."""

    endpoint: str
    deployment: str
    api_key: str
    api_version: str = "2024-10-21"

    def identity(self) -> dict[str, str]:
        return {"kind": "azure-openai", "endpoint": self.endpoint, "model": self.deployment}

    def _new_client(self) -> Any:
        from openai import AzureOpenAI

        return AzureOpenAI(azure_endpoint=self.endpoint, azure_deployment=self.deployment,
                           api_key=self.api_key, api_version=self.api_version,
                           timeout=self.timeout_s, max_retries=self.max_retries)

    def langchain_model(self) -> Any:
        from langchain_openai import AzureChatOpenAI

        return AzureChatOpenAI(azure_endpoint=self.endpoint, azure_deployment=self.deployment,
                               api_key=self.api_key, api_version=self.api_version,
                               temperature=self.temperature, max_tokens=self.max_tokens,
                               timeout=self.timeout_s, max_retries=self.max_retries)
