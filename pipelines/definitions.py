"""The code location: one Definitions object, built from a profile's settings."""

from __future__ import annotations

import os

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    RunConfig,
    StaticPartitionsDefinition,
    define_asset_job,
    in_process_executor,
)
from dagster_k8s import k8s_job_executor

from assets.evaluation.assets import EVALUATION_ASSETS
from assets.evaluation.golden import ACL_FILE, CORPUS_DIR
from assets.ingestion.assets import INGESTION_ASSETS
from assets.promotion.assets import PROMOTION_ASSETS, rollback
from assets.screening.assets import SCREENING_ASSETS
from pipelines.automation import build_folder_sensor, build_schedules
from pipelines.blob_sensor import build_blob_event_sensor
from pipelines.instance import COLLECTION_TAG
from pipelines.settings import Settings
from pipelines.sharding import partitioned, shard_job_config, shard_partitions
from resources import (
    AzureBlobSource,
    AzureDocumentIntelligenceOcr,
    AzureOpenAILLM,
    EvaluationSettings,
    EvaluationStore,
    IngestionSettings,
    Ledger,
    LocalFolderSource,
    ObjectStoreIOManager,
    OpenAICompatibleLLM,
    QdrantEdgeVectorStore,
    QdrantVectorStore,
    SentenceTransformerEmbedder,
    Staging,
    TesseractOcr,
)
from resources.azure_ai import AzureLanguagePiiDetector, AzurePromptShield
from resources.azure_search import AzureAISearchStore
from resources.event_queue import AzureStorageQueue
from resources.screening import HASH_SALT_ENV, ScreeningSettings, load_screening_file

INGEST_JOB = "ingest"
GOLDEN_INGEST_JOB = "ingest_golden_set"  # with shards only: the golden corpus, shard by shard
GOLDEN_SET_JOB = "evaluate_golden_set"
PRODUCTION_JOB = "promote_production"
PIPELINE_GROUPS = ("ingestion", "screening", "evaluation", "promotion")
QDRANT_API_KEY_ENV = "RAGPIPE_QDRANT_API_KEY"
AZURE_SEARCH_KEY_ENV = "RAGPIPE_AZURE_SEARCH_KEY"
BLOB_CONNECTION_STRING_ENV = "RAGPIPE_BLOB_CONNECTION_STRING"
EVENT_QUEUE_CONNECTION_STRING_ENV = "RAGPIPE_EVENT_QUEUE_CONNECTION_STRING"
DATA_CONNECTION_STRING_ENV = "RAGPIPE_DATA_CONNECTION_STRING"


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


def build_source(settings: Settings) -> AzureBlobSource | LocalFolderSource:
    """The Blob container when one is configured, else the local folder."""
    if not settings.blob_container:
        return LocalFolderSource(root=str(settings.source_dir), acl_file=settings.acl_file)
    return AzureBlobSource(
        account_url=settings.blob_account_url,
        container=settings.blob_container,
        prefixes=[prefix.strip() for prefix in settings.blob_prefixes.split(",") if prefix.strip()],
        connection_string=_optional_secret(BLOB_CONNECTION_STRING_ENV) or "",
        acl_metadata_key=settings.blob_acl_key,
    )


def build_golden_corpus(settings: Settings) -> LocalFolderSource:
    """The golden set's corpus, with the ACLs of the golden set's own mapping file when it has one."""
    acl_file = settings.golden_set_path / ACL_FILE
    return LocalFolderSource(root=str(settings.golden_set_path / CORPUS_DIR),
                             acl_file=str(acl_file) if acl_file.is_file() else "")


def build_vector_store(settings: Settings) -> AzureAISearchStore | QdrantVectorStore | QdrantEdgeVectorStore:
    """Azure AI Search when an endpoint is configured, else a Qdrant server, else the embedded
    engine RAGPIPE_EMBEDDED_STORE names (Qdrant local mode or Qdrant Edge)."""
    if settings.azure_search_endpoint:
        return AzureAISearchStore(endpoint=settings.azure_search_endpoint, analyzer=settings.azure_search_analyzer,
                                  api_key=_optional_secret(AZURE_SEARCH_KEY_ENV))
    if settings.qdrant_url:
        return QdrantVectorStore(url=settings.qdrant_url, api_key=_optional_secret(QDRANT_API_KEY_ENV))
    if settings.embedded_store == "qdrant-edge":
        return QdrantEdgeVectorStore(path=str(settings.qdrant_edge_path))
    return QdrantVectorStore(path=str(settings.qdrant_path))


def build_resources(settings: Settings) -> dict:
    data_secret = _optional_secret(DATA_CONNECTION_STRING_ENV) or ""
    return {
        "source": build_source(settings),
        "golden_corpus": build_golden_corpus(settings),
        "embedder": SentenceTransformerEmbedder(model_path=settings.embedder_path, device=settings.embedder_device,
                                                batch_size=settings.embedder_batch_size,
                                                backend=settings.embedder_backend,
                                                processes=settings.embedder_processes,
                                                cache_dir=settings.model_cache),
        "vector_store": build_vector_store(settings),
        "ledger": Ledger(url=settings.ledger),
        "staging": Staging(root=settings.staging_root, connection_string=data_secret),
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
        "evaluation_store": EvaluationStore(root=settings.evaluations_root, connection_string=data_secret),
        "generator": build_llm(settings.generator_kind, settings.generator_url, settings.generator_model,
                               "generator", settings.azure_openai_api_version),
        "judge": build_llm(settings.judge_kind, settings.judge_url, settings.judge_model,
                           "judge", settings.azure_openai_api_version),
        "io_manager": ObjectStoreIOManager(root=settings.storage_root, connection_string=data_secret),
        **({"event_queue": AzureStorageQueue(
            queue_name=settings.event_queue, account_url=settings.event_queue_account_url,
            connection_string=_optional_secret(EVENT_QUEUE_CONNECTION_STRING_ENV) or "",
        )} if settings.event_queue else {}),
    }


def build_screening_settings(settings: Settings) -> ScreeningSettings:
    """The screening file's policy plus env overrides; secrets stay behind EnvVar."""
    fields = load_screening_file(settings.screening_config) if settings.screening_config else {}
    defaults = ScreeningSettings.model_fields
    fields.update({name: value for name, value in settings.values_for(ScreeningSettings).items()
                   if value != defaults[name].default})
    salt = EnvVar(HASH_SALT_ENV) if os.environ.get(HASH_SALT_ENV) else ""
    return ScreeningSettings(**fields, pii_hash_salt=salt)


def golden_set_run_config(settings: Settings, resources: dict) -> RunConfig:
    """The golden-set job's resources: the production ones, moved into the golden set's
    namespace (its own collections, alias, ledger scope, staged batches and step outputs; in a
    namespace ingestion reads the ``golden_corpus``), so the job cannot write the serving index
    or its ledger rows."""
    namespace = settings.golden_namespace
    root = settings.namespace_root(namespace)
    return RunConfig(resources={
        "ingestion_settings": resources["ingestion_settings"].model_copy(update={"namespace": namespace}),
        "staging": resources["staging"].model_copy(update={"root": f"{root}/staging"}),
        "io_manager": resources["io_manager"].model_copy(update={"root": f"{root}/storage"}),
    })


def build_definitions(settings: Settings, resource_overrides: dict | None = None) -> Definitions:
    """The code location for a profile; ``resource_overrides`` swaps backends by key.

    The two evaluation jobs run the same assets and differ only in where their data lives, so
    the golden-set job carries its namespace as job-level run config (the default config the
    UI's launchpad shows and launches, and the CLI runs as is) rather than a second, prefixed
    copy of the asset graph: one definition per asset, two places its data can be. The step
    outputs live under the namespace too, so neither job ever reads the other's manifests.

    With shards (RAGPIPE_SHARDS > 1) the ingestion and screening assets are partitioned by
    bucket range, still one definition each (see ``build_sharded_jobs``).
    """
    resources = {**build_resources(settings), **(resource_overrides or {})}
    partitions = shard_partitions(settings.shards)
    jobs = (build_jobs(settings, resources) if partitions is None
            else build_sharded_jobs(settings, resources, partitions))
    ingest = jobs[0]
    return Definitions(
        assets=[*partitioned([*INGESTION_ASSETS, *SCREENING_ASSETS], partitions), *EVALUATION_ASSETS,
                *PROMOTION_ASSETS],
        jobs=[*jobs, rollback],
        sensors=build_sensors(settings, ingest, resources),
        schedules=build_schedules(ingest, settings.reconcile_cron, settings.incremental_cron,
                                  DefaultScheduleStatus.RUNNING if settings.automation_running
                                  else DefaultScheduleStatus.STOPPED, settings.shards),
        resources=resources,
        executor=k8s_job_executor if settings.profile == "k8s" else in_process_executor,
    )


def _aliases(settings: Settings, resources: dict) -> tuple[str, str]:
    """The serving alias and the golden set's: the collection tag of the runs writing each."""
    ingestion = resources["ingestion_settings"]
    return ingestion.alias, ingestion.model_copy(update={"namespace": settings.golden_namespace}).alias


def build_jobs(settings: Settings, resources: dict) -> list:
    """The unsharded jobs: ingest; and the golden-set and production jobs, each of which
    ingests, scores and promotes in one run."""
    alias, golden_alias = _aliases(settings, resources)
    # One queued run per collection at a time: each job is tagged with the alias it writes.
    writer = {COLLECTION_TAG: alias}
    ingest = define_asset_job(
        INGEST_JOB,
        selection=AssetSelection.groups("ingestion", "screening"),
        description="Bring the vector index up to date with the source, incrementally.",
        tags=writer,
    )
    evaluate_golden_set = define_asset_job(
        GOLDEN_SET_JOB,
        selection=AssetSelection.groups(*PIPELINE_GROUPS),
        config=golden_set_run_config(settings, resources),
        tags={COLLECTION_TAG: golden_alias},
        description=(f"Build the golden set's own corpus ({settings.golden_set_path.name}/corpus) in its own "
                     f"namespace ({settings.golden_namespace}), score it and promote it within that namespace. "
                     "Never touches the serving alias, its collections or the production ledger."),
    )
    promote_production = define_asset_job(
        PRODUCTION_JOB,
        selection=AssetSelection.groups(*PIPELINE_GROUPS),
        description=("Bring the production candidate up to date with the source, score it with the golden "
                     "set's questions, and move the serving alias to it only if the gate passes."),
        tags=writer,
    )
    return [ingest, evaluate_golden_set, promote_production]


def build_sharded_jobs(settings: Settings, resources: dict, partitions: StaticPartitionsDefinition) -> list:
    """With shards, one job cannot both ingest (a partition) and evaluate (the whole index): a
    run of one partition would run the unpartitioned evaluation on whatever the other shards
    hold. So ingesting is partitioned (``ingest``, and ``ingest_golden_set`` in the golden
    set's namespace), one run per shard (a backfill runs them in parallel), and the two
    evaluation jobs only score and promote: the candidate must be complete, every shard's
    full reconcile done for its index version (see rag_evaluation)."""
    alias, golden_alias = _aliases(settings, resources)
    golden = golden_set_run_config(settings, resources)
    scoring = AssetSelection.groups("evaluation", "promotion")
    return [
        define_asset_job(INGEST_JOB, selection=AssetSelection.groups("ingestion", "screening"),
                         config=shard_job_config(partitions, alias),
                         description="Bring one shard of the vector index up to date with the source, incrementally."),
        define_asset_job(GOLDEN_INGEST_JOB, selection=AssetSelection.groups("ingestion", "screening"),
                         config=shard_job_config(partitions, golden_alias, golden),
                         description=(f"Build one shard of the golden set's own corpus in its namespace "
                                      f"({settings.golden_namespace}); {GOLDEN_SET_JOB} then scores it.")),
        define_asset_job(GOLDEN_SET_JOB, selection=scoring, config=golden,
                         description=(f"Score the golden set's candidate (built shard by shard by "
                                      f"{GOLDEN_INGEST_JOB}) and promote it within its namespace.")),
        define_asset_job(PRODUCTION_JOB, selection=scoring,
                         description=("Score the production candidate (built shard by shard by the ingest job) "
                                      "with the golden set's questions; move the serving alias to it only if "
                                      "every shard is complete and the gate passes.")),
    ]


def build_sensors(settings: Settings, ingest, resources: dict) -> list:
    """The folder watcher for a local folder source; the Blob-event sensor for a Blob source
    whose events reach a Storage Queue."""
    status = DefaultSensorStatus.RUNNING if settings.automation_running else DefaultSensorStatus.STOPPED
    source = resources["source"]
    if isinstance(source, LocalFolderSource):
        return [build_folder_sensor(ingest, status, settings.sensor_interval_s, settings.max_targeted_sources,
                                    settings.shards)]
    if isinstance(source, AzureBlobSource) and "event_queue" in resources:
        return [build_blob_event_sensor(ingest, source.uri_prefixes(), default_status=status,
                                        batch_size=settings.event_batch_size,
                                        minimum_interval_seconds=settings.sensor_interval_s,
                                        shards=settings.shards)]
    return []


defs = build_definitions(Settings.from_env())
