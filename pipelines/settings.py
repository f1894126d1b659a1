"""Profiles: where the embedded default keeps its data, and how env vars override it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from resources.screening import ScreeningSettings
from resources.settings import EvaluationSettings, IngestionSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDEN_SETS = REPO_ROOT / "golden_sets"
SAMPLE_CORPUS = GOLDEN_SETS / "sample" / "corpus"

def _default(resource: type, name: str):
    """A knob's default is its resource's: the profile only says where values come from."""
    return resource.model_fields[name].default


_ENV = {
    "data_dir": "RAGPIPE_DATA_DIR",
    "source_dir": "RAGPIPE_SOURCE_DIR",
    "ledger_url": "RAGPIPE_LEDGER_URL",
    "qdrant_url": "RAGPIPE_QDRANT_URL",
    "embedder_path": "RAGPIPE_EMBEDDER_PATH",
    "collection": "RAGPIPE_COLLECTION",
    "chunk_size_tokens": "RAGPIPE_CHUNK_SIZE",
    "chunk_overlap_tokens": "RAGPIPE_CHUNK_OVERLAP",
    "max_document_bytes": "RAGPIPE_MAX_DOCUMENT_BYTES",
    "failure_budget": "RAGPIPE_FAILURE_BUDGET",
    "allow_empty_source": "RAGPIPE_ALLOW_EMPTY_SOURCE",
    "parse_timeout_s": "RAGPIPE_PARSE_TIMEOUT",
    "max_pages": "RAGPIPE_MAX_PAGES",
    "near_duplicates": "RAGPIPE_NEAR_DUPLICATES",
    "azure_di_endpoint": "RAGPIPE_AZURE_DI_ENDPOINT",
    "profile": "RAGPIPE_PROFILE",
    "golden_set": "RAGPIPE_GOLDEN_SET",
    "retriever": "RAGPIPE_RETRIEVER",
    "top_k": "RAGPIPE_TOP_K",
    "faithfulness_threshold": "RAGPIPE_FAITHFULNESS_THRESHOLD",
    "composite_threshold": "RAGPIPE_COMPOSITE_THRESHOLD",
    "max_recall_drop": "RAGPIPE_MAX_RECALL_DROP",
    "min_retrieval_recall": "RAGPIPE_MIN_RETRIEVAL_RECALL",
    "min_scored_share": "RAGPIPE_MIN_SCORED_SHARE",
    "require_generation": "RAGPIPE_REQUIRE_GENERATION",
    "keep_versions": "RAGPIPE_KEEP_VERSIONS",
    "generator_kind": "RAGPIPE_GENERATOR_KIND",
    "generator_url": "RAGPIPE_GENERATOR_URL",
    "generator_model": "RAGPIPE_GENERATOR_MODEL",
    "judge_kind": "RAGPIPE_JUDGE_KIND",
    "judge_url": "RAGPIPE_JUDGE_URL",
    "judge_model": "RAGPIPE_JUDGE_MODEL",
    "azure_openai_api_version": "RAGPIPE_AZURE_OPENAI_API_VERSION",
    "poisoning_threshold": "RAGPIPE_POISONING_THRESHOLD",
    "screening_config": "RAGPIPE_SCREENING_CONFIG",
    "spacy_model_path": "RAGPIPE_SPACY_MODEL_PATH",
    "quarantine_rate_warn": "RAGPIPE_QUARANTINE_RATE_WARN",
    "azure_language_endpoint": "RAGPIPE_AZURE_LANGUAGE_ENDPOINT",
    "content_safety_endpoint": "RAGPIPE_CONTENT_SAFETY_ENDPOINT",
}


@dataclass(frozen=True)
class Settings:
    """The embedded default: everything under one data directory, nothing remote."""

    data_dir: Path = Path(".rag_data")
    source_dir: Path = SAMPLE_CORPUS
    ledger_url: str = ""
    qdrant_url: str = ""
    embedder_path: str = ""
    collection: str = _default(IngestionSettings, "collection")
    chunk_size_tokens: int = _default(IngestionSettings, "chunk_size_tokens")
    chunk_overlap_tokens: int = _default(IngestionSettings, "chunk_overlap_tokens")
    max_document_bytes: int = _default(IngestionSettings, "max_document_bytes")
    failure_budget: float = _default(IngestionSettings, "failure_budget")
    allow_empty_source: bool = _default(IngestionSettings, "allow_empty_source")
    parse_timeout_s: float = _default(IngestionSettings, "parse_timeout_s")
    max_pages: int = _default(IngestionSettings, "max_pages")
    near_duplicates: str = _default(IngestionSettings, "near_duplicates")
    azure_di_endpoint: str = ""
    # Evaluation and promotion; the production profile requires the generation tier.
    profile: str = "local"
    golden_set: str = "sample"  # a folder under golden_sets/, or a path to one
    retriever: str = _default(EvaluationSettings, "retriever")
    top_k: int = _default(EvaluationSettings, "top_k")
    faithfulness_threshold: float = _default(EvaluationSettings, "faithfulness_threshold")
    composite_threshold: float = _default(EvaluationSettings, "composite_threshold")
    max_recall_drop: float = _default(EvaluationSettings, "max_recall_drop")
    min_retrieval_recall: float = _default(EvaluationSettings, "min_retrieval_recall")
    min_scored_share: float = _default(EvaluationSettings, "min_scored_share")
    require_generation: bool = _default(EvaluationSettings, "require_generation")
    keep_versions: int = _default(EvaluationSettings, "keep_versions")
    generator_kind: str = "openai"  # or "azure" (then url is the endpoint, model the deployment)
    generator_url: str = ""
    generator_model: str = ""
    judge_kind: str = "openai"
    judge_url: str = ""
    judge_model: str = ""
    azure_openai_api_version: str = "2024-10-21"
    poisoning_threshold: float = _default(IngestionSettings, "poisoning_threshold")
    screening_config: str = ""
    spacy_model_path: str = _default(ScreeningSettings, "spacy_model_path")
    quarantine_rate_warn: float = _default(ScreeningSettings, "quarantine_rate_warn")
    azure_language_endpoint: str = ""
    content_safety_endpoint: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        environ = os.environ if environ is None else environ
        values = {}
        for item in fields(cls):
            variable = _ENV.get(item.name)
            if variable and environ.get(variable, "") != "":
                values[item.name] = _coerce(item.type, environ[variable])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("profile") == "production":
            values.setdefault("require_generation", True)
        return cls(**values)

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def dagster_home(self) -> Path:
        return self.data_path / "dagster"

    @property
    def ledger(self) -> str:
        return self.ledger_url or f"sqlite:///{self.data_path / 'ledger.sqlite'}"

    @property
    def qdrant_path(self) -> Path:
        return self.data_path / "qdrant"

    @property
    def staging_path(self) -> Path:
        return self.data_path / "staging"

    @property
    def golden_set_path(self) -> Path:
        named = GOLDEN_SETS / self.golden_set
        return named if named.is_dir() else Path(self.golden_set).expanduser().resolve()

    @property
    def golden_namespace(self) -> str:
        """The golden set's own namespace: its collections, alias, ledger scope and staging."""
        return "eval-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.golden_set_path.name)

    def namespace_path(self, namespace: str) -> Path:
        """Where a namespace keeps its staged batches and Dagster step outputs."""
        return self.data_path / "namespaces" / namespace

    @property
    def evaluations_path(self) -> Path:
        return self.data_path / "evaluations"


def _coerce(type_name, raw: str):
    kind = str(type_name)
    if kind == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "Path":
        return Path(raw)
    return raw
