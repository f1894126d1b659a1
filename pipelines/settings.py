"""Profiles: where the embedded default keeps its data, and how env vars override it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fsspec import available_protocols
from fsspec.utils import get_protocol

from core.access import UNLABELLED_POLICIES
from resources.azure_search import AzureAISearchStore
from resources.blob_source import AzureBlobSource
from resources.devices import DEVICES
from resources.embedders import SentenceTransformerEmbedder
from resources.object_storage import is_pod_local
from resources.onnx_encoder import BACKENDS
from resources.screening import ScreeningSettings
from resources.settings import EvaluationSettings, IngestionSettings, SettingsError, parse_cutoffs

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDEN_SETS = REPO_ROOT / "golden_sets"
SAMPLE_CORPUS = GOLDEN_SETS / "sample" / "corpus"


PRODUCTION_PROFILES = ("production", "k8s")
MAX_SHARDS = 256  # each shard keeps at least 256 of the 65,536 buckets, so shards stay even
FROM_RESOURCE = object()  # the default is the configured resource's


@dataclass(frozen=True)
class Setting:
    """A setting's declaration: its environment variable, the resource whose field of the same
    name it configures (and whose default it takes), and the values it accepts."""

    env: str
    default: Any = FROM_RESOURCE
    resource: type | None = field(default=None, kw_only=True)
    choices: tuple[str, ...] = field(default=(), kw_only=True)


def declared(cls: type) -> type:
    """Turn a class of ``Setting`` declarations into a frozen dataclass whose fields carry them."""
    for name in cls.__annotations__:
        declaration: Setting = cls.__dict__[name]
        default = (declaration.resource.model_fields[name].default
                   if declaration.default is FROM_RESOURCE else declaration.default)
        setattr(cls, name, field(default=default, metadata={"setting": declaration}))
    return dataclass(frozen=True)(cls)


@declared
class Settings:
    """The embedded default: everything under one data directory, nothing remote."""

    data_dir: Path = Setting("RAGPIPE_DATA_DIR", Path(".rag_data"))
    source_dir: Path = Setting("RAGPIPE_SOURCE_DIR", SAMPLE_CORPUS)
    # Azure Blob Storage replaces the folder as the source when a container is set.
    blob_account_url: str = Setting("RAGPIPE_BLOB_ACCOUNT_URL", "")
    blob_container: str = Setting("RAGPIPE_BLOB_CONTAINER", "")
    blob_prefixes: str = Setting("RAGPIPE_BLOB_PREFIXES", "")  # comma separated
    blob_acl_key: str = Setting("RAGPIPE_BLOB_ACL_KEY", AzureBlobSource.model_fields["acl_metadata_key"].default)
    # The folder source's ACLs: a YAML file of glob (relative to the folder): [groups], last match wins.
    acl_file: str = Setting("RAGPIPE_ACL_FILE", "")
    ledger_url: str = Setting("RAGPIPE_LEDGER_URL", "")
    qdrant_url: str = Setting("RAGPIPE_QDRANT_URL", "")
    # The engine in-process when no store server is set: Qdrant's local mode, or Qdrant Edge (beta),
    # which indexes (HNSW, payload fields) and keeps points in its files rather than in RAM.
    embedded_store: str = Setting("RAGPIPE_EMBEDDED_STORE", "qdrant-local", choices=("qdrant-local", "qdrant-edge"))
    # Azure AI Search replaces Qdrant as the vector store when an endpoint is set.
    azure_search_endpoint: str = Setting("RAGPIPE_AZURE_SEARCH_ENDPOINT", "")
    azure_search_analyzer: str = Setting("RAGPIPE_AZURE_SEARCH_ANALYZER",
                                         AzureAISearchStore.model_fields["analyzer"].default)
    embedder_path: str = Setting("RAGPIPE_EMBEDDER_PATH", "")
    # auto: CUDA when the pod has a GPU (float16), else the CPU; batch size 0: the device's.
    embedder_device: str = Setting("RAGPIPE_EMBEDDER_DEVICE", SentenceTransformerEmbedder.model_fields["device"].default,
                                   choices=DEVICES)
    embedder_batch_size: int = Setting("RAGPIPE_EMBEDDER_BATCH_SIZE",
                                       SentenceTransformerEmbedder.model_fields["batch_size"].default)
    # Opt-in faster paths (the onnx extra): onnx matches torch's vectors; onnx-int8 gets its own index version.
    embedder_backend: str = Setting("RAGPIPE_EMBEDDER_BACKEND",
                                    SentenceTransformerEmbedder.model_fields["backend"].default, choices=BACKENDS)
    embedder_processes: int = Setting("RAGPIPE_EMBEDDER_PROCESSES",
                                      SentenceTransformerEmbedder.model_fields["processes"].default)
    collection: str = Setting("RAGPIPE_COLLECTION", resource=IngestionSettings)
    chunk_size_tokens: int = Setting("RAGPIPE_CHUNK_SIZE", resource=IngestionSettings)
    chunk_overlap_tokens: int = Setting("RAGPIPE_CHUNK_OVERLAP", resource=IngestionSettings)
    max_document_bytes: int = Setting("RAGPIPE_MAX_DOCUMENT_BYTES", resource=IngestionSettings)
    failure_budget: float = Setting("RAGPIPE_FAILURE_BUDGET", resource=IngestionSettings)
    allow_empty_source: bool = Setting("RAGPIPE_ALLOW_EMPTY_SOURCE", resource=IngestionSettings)
    parse_timeout_s: float = Setting("RAGPIPE_PARSE_TIMEOUT", resource=IngestionSettings)
    parse_timeout_per_page_s: float = Setting("RAGPIPE_PARSE_TIMEOUT_PER_PAGE", resource=IngestionSettings)
    max_pages: int = Setting("RAGPIPE_MAX_PAGES", resource=IngestionSettings)
    near_duplicates: str = Setting("RAGPIPE_NEAR_DUPLICATES", resource=IngestionSettings)
    poisoning_threshold: float = Setting("RAGPIPE_POISONING_THRESHOLD", resource=IngestionSettings)
    writer_wait_s: float = Setting("RAGPIPE_WRITER_WAIT", resource=IngestionSettings)
    azure_di_endpoint: str = Setting("RAGPIPE_AZURE_DI_ENDPOINT", "")
    # Automation: "auto" runs sensors and schedules in the production profile, stops them locally.
    automation: str = Setting("RAGPIPE_AUTOMATION", "auto", choices=("auto", "running", "stopped"))
    reconcile_cron: str = Setting("RAGPIPE_RECONCILE_CRON", "0 2 * * *")
    incremental_cron: str = Setting("RAGPIPE_INCREMENTAL_CRON", "")  # e.g. "*/15 * * * *"; unset: none
    sensor_interval_s: int = Setting("RAGPIPE_SENSOR_INTERVAL", 30)
    # The Storage Queue Event Grid delivers the container's blob events to (Blob source only).
    event_queue: str = Setting("RAGPIPE_EVENT_QUEUE", "")
    event_queue_account_url: str = Setting("RAGPIPE_EVENT_QUEUE_ACCOUNT_URL", "")
    event_batch_size: int = Setting("RAGPIPE_EVENT_BATCH", 32)
    max_targeted_sources: int = Setting("RAGPIPE_MAX_TARGETED_SOURCES", 1000)
    # Evaluation and promotion; the production profiles require the generation tier. "k8s" is
    # production on Kubernetes: steps in their own pods, state on shared storage (see deploy/).
    profile: str = Setting("RAGPIPE_PROFILE", "local", choices=("local", "production", "k8s"))
    # Shared object storage (e.g. abfs://container@account.dfs.core.windows.net/prefix) for staged
    # batches, step outputs and evaluation results; unset: under the data directory.
    data_url: str = Setting("RAGPIPE_DATA_URL", "")
    # Static partitions of the corpus by a stable hash of each source URI; 1: unpartitioned.
    shards: int = Setting("RAGPIPE_SHARDS", 1)
    golden_set: str = Setting("RAGPIPE_GOLDEN_SET", "sample")  # a folder under golden_sets/, or a path
    retriever: str = Setting("RAGPIPE_RETRIEVER", resource=EvaluationSettings, choices=("dense", "hybrid"))
    top_k: int = Setting("RAGPIPE_TOP_K", resource=EvaluationSettings)
    hit_cutoffs: str = Setting("RAGPIPE_HIT_CUTOFFS", resource=EvaluationSettings)
    faithfulness_threshold: float = Setting("RAGPIPE_FAITHFULNESS_THRESHOLD", resource=EvaluationSettings)
    composite_threshold: float = Setting("RAGPIPE_COMPOSITE_THRESHOLD", resource=EvaluationSettings)
    max_recall_drop: float = Setting("RAGPIPE_MAX_RECALL_DROP", resource=EvaluationSettings)
    min_retrieval_recall: float = Setting("RAGPIPE_MIN_RETRIEVAL_RECALL", resource=EvaluationSettings)
    min_scored_share: float = Setting("RAGPIPE_MIN_SCORED_SHARE", resource=EvaluationSettings)
    require_generation: bool = Setting("RAGPIPE_REQUIRE_GENERATION", resource=EvaluationSettings)
    keep_versions: int = Setting("RAGPIPE_KEEP_VERSIONS", resource=EvaluationSettings)
    # Chunks without an acl: public in the local demo, denied in the production profile.
    unlabelled_access: str = Setting("RAGPIPE_UNLABELLED_ACCESS", resource=EvaluationSettings,
                                     choices=UNLABELLED_POLICIES)
    # "azure": the url is the endpoint and the model the deployment.
    generator_kind: str = Setting("RAGPIPE_GENERATOR_KIND", "openai", choices=("openai", "azure"))
    generator_url: str = Setting("RAGPIPE_GENERATOR_URL", "")
    generator_model: str = Setting("RAGPIPE_GENERATOR_MODEL", "")
    judge_kind: str = Setting("RAGPIPE_JUDGE_KIND", "openai", choices=("openai", "azure"))
    judge_url: str = Setting("RAGPIPE_JUDGE_URL", "")
    judge_model: str = Setting("RAGPIPE_JUDGE_MODEL", "")
    azure_openai_api_version: str = Setting("RAGPIPE_AZURE_OPENAI_API_VERSION", "2024-10-21")
    screening_config: str = Setting("RAGPIPE_SCREENING_CONFIG", "")
    spacy_model_path: str = Setting("RAGPIPE_SPACY_MODEL_PATH", resource=ScreeningSettings)
    transformers_model_path: str = Setting("RAGPIPE_TRANSFORMERS_NER_PATH", resource=ScreeningSettings)
    pii_ner: bool = Setting("RAGPIPE_PII_NER", resource=ScreeningSettings)
    quarantine_rate_warn: float = Setting("RAGPIPE_QUARANTINE_RATE_WARN", resource=ScreeningSettings)
    injection_classifier: bool = Setting("RAGPIPE_INJECTION_CLASSIFIER", resource=ScreeningSettings)
    injection_threshold: float = Setting("RAGPIPE_INJECTION_THRESHOLD", resource=ScreeningSettings)
    injection_model_path: str = Setting("RAGPIPE_INJECTION_MODEL_PATH", resource=ScreeningSettings)
    injection_model_label: str = Setting("RAGPIPE_INJECTION_MODEL_LABEL", resource=ScreeningSettings)
    injection_model_threshold: float = Setting("RAGPIPE_INJECTION_MODEL_THRESHOLD", resource=ScreeningSettings)
    azure_language_endpoint: str = Setting("RAGPIPE_AZURE_LANGUAGE_ENDPOINT", "")
    content_safety_endpoint: str = Setting("RAGPIPE_CONTENT_SAFETY_ENDPOINT", "")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Settings from RAGPIPE_* variables, then ``overrides`` (CLI flags) where not None.
        Raises SettingsError naming the variable of any value that cannot work."""
        environ = os.environ if environ is None else environ
        values = {}
        for item in fields(cls):
            variable = item.metadata["setting"].env
            if environ.get(variable, "") != "":
                values[item.name] = _coerce(item.type, variable, environ[variable])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("profile") in PRODUCTION_PROFILES:
            values.setdefault("require_generation", True)
            values.setdefault("unlabelled_access", "deny")
        return cls(**values)

    def __post_init__(self) -> None:
        for item in fields(self):
            declaration, value = item.metadata["setting"], getattr(self, item.name)
            if declaration.choices and value not in declaration.choices:
                raise SettingsError(f"{declaration.env}={value!r} must be one of {', '.join(declaration.choices)}")
        if self.top_k < 1:
            raise SettingsError(f"RAGPIPE_TOP_K={self.top_k} must be at least 1")
        try:
            parse_cutoffs(self.hit_cutoffs)
        except ValueError as error:
            raise SettingsError(str(error)) from None
        if not 1 <= self.shards <= MAX_SHARDS:
            raise SettingsError(f"RAGPIPE_SHARDS={self.shards} must be between 1 and {MAX_SHARDS}")
        if self.qdrant_url and self.azure_search_endpoint:
            raise SettingsError("RAGPIPE_QDRANT_URL and RAGPIPE_AZURE_SEARCH_ENDPOINT each choose the vector store; "
                                "set one of them")
        if self.data_url and get_protocol(self.data_url) not in available_protocols():
            raise SettingsError(f"RAGPIPE_DATA_URL={self.data_url!r}: no filesystem for {get_protocol(self.data_url)!r} "
                                "(e.g. abfs://<container>@<account>.dfs.core.windows.net/<prefix>)")
        if self.profile == "k8s":
            self._check_nothing_on_pod_disk()

    def _check_nothing_on_pod_disk(self) -> None:
        """The k8s profile runs each step in its own pod: whatever a step writes or hands on must
        be on servers every pod reaches, so none of the data directory's embedded defaults apply."""
        if not self.ledger_url.startswith("postgresql"):
            raise SettingsError("the k8s profile needs a PostgreSQL ledger: set RAGPIPE_LEDGER_URL "
                                "(postgresql+psycopg2://user@host/db)")
        if not (self.qdrant_url or self.azure_search_endpoint):
            raise SettingsError("the k8s profile needs a vector store server (Qdrant local mode lives on one pod's "
                                "disk): set RAGPIPE_QDRANT_URL or RAGPIPE_AZURE_SEARCH_ENDPOINT")
        if not self.data_url or is_pod_local(self.data_url):
            raise SettingsError("the k8s profile needs shared object storage for staged batches, step outputs and "
                                "evaluation results: set RAGPIPE_DATA_URL "
                                "(abfs://<container>@<account>.dfs.core.windows.net/<prefix>)")

    def values_for(self, resource: type) -> dict[str, Any]:
        """The settings that configure ``resource``'s fields of the same name."""
        return {item.name: getattr(self, item.name) for item in fields(self)
                if item.metadata["setting"].resource is resource}

    @property
    def automation_running(self) -> bool:
        return self.automation == "running" or (self.automation == "auto" and self.production)

    @property
    def production(self) -> bool:
        return self.profile in PRODUCTION_PROFILES

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
    def qdrant_edge_path(self) -> Path:
        return self.data_path / "qdrant-edge"

    @property
    def model_cache(self) -> str:
        """Where the embedder's ONNX exports are cached: under the data directory; when steps write
        to shared storage (pods), in the pod's own cache (empty: the embedder's default), since an
        export is rebuilt from the image's model in seconds and is not state."""
        return "" if self.data_url else str(self.data_path / "models")

    @property
    def data_root(self) -> str:
        """Where steps write: the shared object storage URL, else the data directory."""
        return self.data_url.rstrip("/") or str(self.data_path)

    @property
    def staging_root(self) -> str:
        return f"{self.data_root}/staging"

    @property
    def storage_root(self) -> str:
        """Dagster step outputs: beside the local instance, or on the shared storage."""
        return f"{self.data_root}/storage" if self.data_url else str(self.dagster_home / "storage")

    @property
    def golden_set_path(self) -> Path:
        named = GOLDEN_SETS / self.golden_set
        return named if named.is_dir() else Path(self.golden_set).expanduser().resolve()

    @property
    def golden_namespace(self) -> str:
        """The golden set's own namespace: its collections, alias, ledger scope and staging."""
        return "eval-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.golden_set_path.name)

    def namespace_root(self, namespace: str) -> str:
        """Where a namespace keeps its staged batches and Dagster step outputs."""
        return f"{self.data_root}/namespaces/{namespace}"

    @property
    def evaluations_root(self) -> str:
        return f"{self.data_root}/evaluations"


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _coerce(type_name: str, variable: str, raw: str):
    try:
        if type_name == "bool":
            if raw.strip().lower() not in _TRUE | _FALSE:
                raise ValueError(f"expected one of {', '.join(sorted(_TRUE | _FALSE))}")
            return raw.strip().lower() in _TRUE
        if type_name in ("int", "float"):
            return {"int": int, "float": float}[type_name](raw)
    except ValueError as error:
        raise SettingsError(f"{variable}={raw!r} is not a valid {type_name}: {error}") from None
    return Path(raw) if type_name == "Path" else raw
