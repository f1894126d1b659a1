"""The code location: one Definitions object, built from a profile's settings."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    Definitions,
    EnvVar,
    FilesystemIOManager,
    define_asset_job,
    in_process_executor,
)

from assets.ingestion.assets import INGESTION_ASSETS
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
        ),
        "ocr": (
            AzureDocumentIntelligenceOcr(endpoint=settings.azure_di_endpoint, api_key=EnvVar("RAGPIPE_AZURE_DI_KEY"))
            if settings.azure_di_endpoint
            else TesseractOcr()
        ),
        "io_manager": FilesystemIOManager(base_dir=str(settings.dagster_home / "storage")),
    }


def build_definitions(settings: Settings, resource_overrides: dict | None = None) -> Definitions:
    """The code location for a profile; ``resource_overrides`` swaps backends by key."""
    ingest = define_asset_job(
        INGEST_JOB,
        selection=AssetSelection.groups("ingestion"),
        description="Bring the vector index up to date with the source, incrementally.",
    )
    return Definitions(
        assets=INGESTION_ASSETS,
        jobs=[ingest],
        resources={**build_resources(settings), **(resource_overrides or {})},
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
