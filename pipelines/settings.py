"""Profiles: where the embedded default keeps its data, and how env vars override it."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = REPO_ROOT / "golden_sets" / "sample" / "corpus"

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
    collection: str = "knowledge"
    chunk_size_tokens: int = 200
    chunk_overlap_tokens: int = 30
    max_document_bytes: int = 50 * 1024 * 1024
    failure_budget: float = 0.05
    allow_empty_source: bool = False
    parse_timeout_s: float = 120.0
    max_pages: int = 2000
    near_duplicates: str = "mark"
    azure_di_endpoint: str = ""
    poisoning_threshold: float = 0.8
    screening_config: str = ""
    spacy_model_path: str = ""
    quarantine_rate_warn: float = 0.01
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
