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

from assets.evaluation.assets import EVALUATION_ASSETS
from assets.ingestion.assets import INGESTION_ASSETS
from assets.promotion.assets import PROMOTION_ASSETS, rollback
from assets.screening.assets import SCREENING_ASSETS
from pipelines.instance import COLLECTION_TAG
from pipelines.settings import Settings
from resources import (
    AzureDocumentIntelligenceOcr,
    AzureOpenAILLM,
    EvaluationSettings,
    EvaluationStore,
    IngestionSettings,
    Ledger,
    LocalFolderSource,
    LocalStaging,
    OpenAICompatibleLLM,
    QdrantVectorStore,
    SentenceTransformerEmbedder,
    TesseractOcr,
)
from resources.azure_ai import AzureLanguagePiiDetector, AzurePromptShield
from resources.screening import HASH_SALT_ENV, ScreeningSettings, load_screening_file

INGEST_JOB = "ingest"
EVAL_JOB = "evaluate"
QDRANT_API_KEY_ENV = "RAGPIPE_QDRANT_API_KEY"


def _optional_secret(variable: str) -> EnvVar | None:
    """Read a key through EnvVar (never into run config) when it is set; a keyless server
    is then configured without one instead of failing on the missing variable."""
    return EnvVar(variable) if os.environ.get(variable) else None


def build_llm(kind: str, url: str, model: str, role: str, api_version: str):
    """The generator or judge endpoint, or None when not configured. The API key is read
    by Dagster from RAGPIPE_<ROLE>_API_KEY at run time, so it never enters run config."""
    if not (url and model):
        return None
    key = f"RAGPIPE_{role.upper()}_API_KEY"
    if kind == "azure":
        return AzureOpenAILLM(endpoint=url, deployment=model, api_key=EnvVar(key), api_version=api_version)
    if os.environ.get(key):
        return OpenAICompatibleLLM(base_url=url, model=model, api_key=EnvVar(key))
    return OpenAICompatibleLLM(base_url=url, model=model)


def build_resources(settings: Settings) -> dict:
    qdrant = (
        QdrantVectorStore(url=settings.qdrant_url, api_key=_optional_secret(QDRANT_API_KEY_ENV))
        if settings.qdrant_url
        else QdrantVectorStore(path=str(settings.qdrant_path))
    )
    return {
        "source": LocalFolderSource(root=str(settings.source_dir)),
        "embedder": SentenceTransformerEmbedder(model_path=settings.embedder_path),
        "vector_store": qdrant,
        "ledger": Ledger(url=settings.ledger),
        "staging": LocalStaging(root=str(settings.staging_path)),
        "ingestion_settings": IngestionSettings(**settings.values_for(IngestionSettings)),
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
        "evaluation_settings": EvaluationSettings(golden_set_dir=str(settings.golden_set_path),
                                                  **settings.values_for(EvaluationSettings)),
        "evaluation_store": EvaluationStore(root=str(settings.evaluations_path)),
        "generator": build_llm(settings.generator_kind, settings.generator_url, settings.generator_model,
                               "generator", settings.azure_openai_api_version),
        "judge": build_llm(settings.judge_kind, settings.judge_url, settings.judge_model,
                           "judge", settings.azure_openai_api_version),
        "io_manager": FilesystemIOManager(base_dir=str(settings.dagster_home / "storage")),
    }


def build_screening_settings(settings: Settings) -> ScreeningSettings:
    """The screening file's policy plus env overrides; secrets stay behind EnvVar."""
    fields = load_screening_file(settings.screening_config) if settings.screening_config else {}
    defaults = ScreeningSettings.model_fields
    fields.update({name: value for name, value in settings.values_for(ScreeningSettings).items()
                   if value != defaults[name].default})
    salt = EnvVar(HASH_SALT_ENV) if os.environ.get(HASH_SALT_ENV) else ""
    return ScreeningSettings(**fields, pii_hash_salt=salt)


def build_definitions(settings: Settings, resource_overrides: dict | None = None) -> Definitions:
    """The code location for a profile; ``resource_overrides`` swaps backends by key."""
    writer = {COLLECTION_TAG: settings.collection}  # one queued run per collection at a time
    ingest = define_asset_job(
        INGEST_JOB,
        selection=AssetSelection.groups("ingestion", "screening"),
        description="Bring the vector index up to date with the source, incrementally.",
        tags=writer,
    )
    evaluate = define_asset_job(
        EVAL_JOB,
        selection=AssetSelection.groups("ingestion", "screening", "evaluation", "promotion"),
        description="Bring the candidate index up to date, score it on the golden set, promote it if the gate passes.",
        tags=writer,
    )
    return Definitions(
        assets=[*INGESTION_ASSETS, *SCREENING_ASSETS, *EVALUATION_ASSETS, *PROMOTION_ASSETS],
        jobs=[ingest, evaluate, rollback],
        resources={**build_resources(settings), **(resource_overrides or {})},
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
