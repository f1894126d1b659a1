"""The code location: one Definitions object, built from a profile's settings."""

from __future__ import annotations

import os

from dagster import (
    AssetSelection,
    Definitions,
    EnvVar,
    FilesystemIOManager,
    define_asset_job,
    in_process_executor,
)

from assets.ingestion.assets import INGESTION_ASSETS
from assets.screening.assets import SCREENING_ASSETS
from pipelines.settings import Settings
from resources import (
    AzureDocumentIntelligenceOcr,
    IngestionSettings,
    Ledger,
    LocalFolderSource,
    LocalStaging,
    QdrantVectorStore,
    SentenceTransformerEmbedder,
    TesseractOcr,
)
from resources.azure_ai import AzureLanguagePiiDetector, AzurePromptShield
from resources.screening import HASH_SALT_ENV, ScreeningSettings, load_screening_file

INGEST_JOB = "ingest"


def build_resources(settings: Settings) -> dict:
    qdrant = (
        QdrantVectorStore(url=settings.qdrant_url, api_key=EnvVar("RAGPIPE_QDRANT_API_KEY"))
        if settings.qdrant_url
        else QdrantVectorStore(path=str(settings.qdrant_path))
    )
    return {
        "source": LocalFolderSource(root=str(settings.source_dir)),
        "embedder": SentenceTransformerEmbedder(model_path=settings.embedder_path),
        "vector_store": qdrant,
        "ledger": Ledger(url=settings.ledger),
        "staging": LocalStaging(root=str(settings.staging_path)),
        "ingestion_settings": IngestionSettings(
            collection=settings.collection,
            chunk_size_tokens=settings.chunk_size_tokens,
            chunk_overlap_tokens=settings.chunk_overlap_tokens,
            max_document_bytes=settings.max_document_bytes,
            failure_budget=settings.failure_budget,
            allow_empty_source=settings.allow_empty_source,
            parse_timeout_s=settings.parse_timeout_s,
            max_pages=settings.max_pages,
            near_duplicates=settings.near_duplicates,
            poisoning_threshold=settings.poisoning_threshold,
        ),
        "screening_settings": build_screening_settings(settings),
        "pii_detector": AzureLanguagePiiDetector(
            endpoint=settings.azure_language_endpoint,
            api_key=EnvVar("RAGPIPE_AZURE_LANGUAGE_KEY") if settings.azure_language_endpoint else "",
        ),
        "injection_shield": AzurePromptShield(
            endpoint=settings.content_safety_endpoint,
            api_key=EnvVar("RAGPIPE_CONTENT_SAFETY_KEY") if settings.content_safety_endpoint else "",
        ),
        "ocr": (
            AzureDocumentIntelligenceOcr(endpoint=settings.azure_di_endpoint, api_key=EnvVar("RAGPIPE_AZURE_DI_KEY"))
            if settings.azure_di_endpoint
            else TesseractOcr()
        ),
        "io_manager": FilesystemIOManager(base_dir=str(settings.dagster_home / "storage")),
    }


def build_screening_settings(settings: Settings) -> ScreeningSettings:
    """The screening file's policy plus env overrides; secrets stay behind EnvVar."""
    fields = load_screening_file(settings.screening_config) if settings.screening_config else {}
    if settings.spacy_model_path:
        fields["spacy_model_path"] = settings.spacy_model_path
    fields["quarantine_rate_warn"] = settings.quarantine_rate_warn
    salt = EnvVar(HASH_SALT_ENV) if os.environ.get(HASH_SALT_ENV) else ""
    return ScreeningSettings(**fields, pii_hash_salt=salt)


def build_definitions(settings: Settings, resource_overrides: dict | None = None) -> Definitions:
    """The code location for a profile; ``resource_overrides`` swaps backends by key."""
    ingest = define_asset_job(
        INGEST_JOB,
        selection=AssetSelection.groups("ingestion", "screening"),
        description="Bring the vector index up to date with the source, incrementally.",
    )
    return Definitions(
        assets=INGESTION_ASSETS + SCREENING_ASSETS,
        jobs=[ingest],
        resources={**build_resources(settings), **(resource_overrides or {})},
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
