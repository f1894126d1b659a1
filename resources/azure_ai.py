"""Optional Azure AI screening backends: Language PII detection and Content Safety Prompt
Shields. Each is off while its endpoint is empty; the local scanners always run."""

from __future__ import annotations

from typing import Protocol

import requests
from dagster import ConfigurableResource

from core.types import Detection

# Azure AI Language names PII categories its own way; ours are Presidio's.
_LANGUAGE_CATEGORIES = {
    "Person": "PERSON",
    "Organization": "ORGANIZATION",
    "Address": "LOCATION",
    "Email": "EMAIL_ADDRESS",
    "PhoneNumber": "PHONE_NUMBER",
    "IPAddress": "IP_ADDRESS",
    "CreditCardNumber": "CREDIT_CARD",
    "USSocialSecurityNumber": "US_SSN",
    "InternationalBankingAccountNumber": "IBAN_CODE",
}


class PiiDetector(Protocol):
    """A PII detector beside Presidio: one list of detections per text."""

    @property
    def configured(self) -> bool: ...

    def detect(self, texts: list[str]) -> list[list[Detection]]: ...


class InjectionShield(Protocol):
    """A prompt-injection classifier for retrieved documents: one verdict per text."""

    @property
    def configured(self) -> bool: ...

    def attacks(self, texts: list[str]) -> list[bool]: ...


def _batches(texts: list[str], max_items: int, max_chars: int) -> list[list[tuple[int, str]]]:
    """Consecutive batches within the service's per-request limits; longer texts are cut
    to ``max_chars``, since a detector must see every text rather than refuse the batch."""
    batches, current, size = [], [], 0
    for index, text in enumerate(texts):
        text = text[:max_chars]
        if current and (len(current) == max_items or size + len(text) > max_chars):
            batches.append(current)
            current, size = [], 0
        current.append((index, text))
        size += len(text)
    return batches + ([current] if current else [])


class _AzureAiService(ConfigurableResource):
    """An Azure AI service REST endpoint; off while ``endpoint`` is empty."""

    endpoint: str = ""
    api_key: str = ""
    timeout_s: float = 30.0

    @property
    def configured(self) -> bool:
        return bool(self.endpoint)

    def _post(self, path: str, api_version: str, body: dict) -> dict:
        response = requests.post(
            f"{self.endpoint.rstrip('/')}{path}",
            params={"api-version": api_version},
            headers={"Ocp-Apim-Subscription-Key": self.api_key},
            json=body,
            timeout=self.timeout_s,
        )
        response.raise_for_status()
        return response.json()


class AzureLanguagePiiDetector(_AzureAiService):
    """Azure AI Language PII entity recognition (REST ``:analyze-text``)."""

    api_version: str = "2024-11-01"
    language: str = "en"

    def detect(self, texts: list[str]) -> list[list[Detection]]:
        found: list[list[Detection]] = [[] for _ in texts]
        # 5 documents of up to 5,120 characters per synchronous request.
        for batch in _batches(texts, max_items=5, max_chars=5120):
            body = {
                "kind": "PiiEntityRecognition",
                "parameters": {"modelVersion": "latest", "stringIndexType": "UnicodeCodePoint"},
                "analysisInput": {
                    "documents": [{"id": str(i), "language": self.language, "text": t} for i, t in batch]
                },
            }
            results = self._post("/language/:analyze-text", self.api_version, body)["results"]
            if results.get("errors"):
                codes = sorted({e.get("error", {}).get("code", "unknown") for e in results["errors"]})
                raise RuntimeError(f"Azure AI Language rejected documents: {', '.join(codes)}")
            for document in results["documents"]:
                found[int(document["id"])] = [
                    Detection(
                        entity=_LANGUAGE_CATEGORIES.get(e["category"], e["category"].upper()),
                        start=e["offset"],
                        end=e["offset"] + e["length"],
                        score=e["confidenceScore"],
                    )
                    for e in document["entities"]
                ]
        return found


class AzurePromptShield(_AzureAiService):
    """Azure AI Content Safety Prompt Shields, document analysis (``text:shieldPrompt``)."""

    api_version: str = "2024-09-01"

    def attacks(self, texts: list[str]) -> list[bool]:
        verdicts = [False] * len(texts)
        # A request may carry up to 10,000 characters in all (prompt plus documents).
        for batch in _batches(texts, max_items=5, max_chars=10_000):
            body = {"userPrompt": "", "documents": [text for _, text in batch]}
            analysis = self._post("/contentsafety/text:shieldPrompt", self.api_version, body)["documentsAnalysis"]
            for (index, _), verdict in zip(batch, analysis, strict=True):
                verdicts[index] = bool(verdict["attackDetected"])
        return verdicts
