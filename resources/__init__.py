"""Dagster resources: the only code that talks to external systems."""

from resources import offline as _offline  # noqa: F401  (must run before library imports)
from resources.blob_source import AzureBlobSource
from resources.embedders import Embedder, SentenceTransformerEmbedder
from resources.evaluation_store import EvaluationStore
from resources.ledger import Ledger
from resources.llm import AzureOpenAILLM, ChatModel, OpenAICompatibleLLM
from resources.object_storage import ObjectStoreIOManager
from resources.ocr import AzureDocumentIntelligenceOcr, OcrEngine, TesseractOcr
from resources.settings import EvaluationSettings, IngestionSettings
from resources.sources import DocumentSource, LocalFolderSource
from resources.staging import Staging
from resources.vector_stores import QdrantEdgeVectorStore, QdrantVectorStore, VectorStore

__all__ = [
    "AzureBlobSource",
    "AzureDocumentIntelligenceOcr",
    "AzureOpenAILLM",
    "ChatModel",
    "DocumentSource",
    "Embedder",
    "EvaluationSettings",
    "EvaluationStore",
    "IngestionSettings",
    "Ledger",
    "LocalFolderSource",
    "ObjectStoreIOManager",
    "OcrEngine",
    "OpenAICompatibleLLM",
    "QdrantEdgeVectorStore",
    "QdrantVectorStore",
    "SentenceTransformerEmbedder",
    "Staging",
    "TesseractOcr",
    "VectorStore",
]
