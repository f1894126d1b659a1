"""Pipeline settings shared by every ingestion stage (no I/O: configuration only)."""

from __future__ import annotations

from dagster import ConfigurableResource


class SettingsError(ValueError):
    """A setting that cannot work, named with its variable or path: the CLI exits 2 on it."""


class IngestionSettings(ConfigurableResource):
    """Knobs that shape the index; those that change vectors feed the index version."""

    collection: str = "knowledge"
    chunk_size_tokens: int = 200
    chunk_overlap_tokens: int = 30
    max_document_bytes: int = 50 * 1024 * 1024
    failure_budget: float = 0.05
    poisoning_threshold: float = 0.8
    allow_empty_source: bool = False
    parse_timeout_s: float = 120.0
    # Added to the parse deadline per page the loader reports: dense text PDF pages measured
    # 0.33-0.6 s each on a loaded 2-core machine (a real 619-page PDF 0.24 s), so twice the worst.
    parse_timeout_per_page_s: float = 1.0
    max_pages: int = 2000
    near_duplicates: str = "mark"
    near_duplicate_threshold: float = 0.9
    # How long a run waits for another run writing the same collection before it gives up.
    writer_wait_s: float = 10.0
    # Set only by the golden-set evaluation job: its own collections, alias and ledger scope
    # (the namespace feeds the index version), so evaluation never writes the serving index.
    namespace: str = ""

    @property
    def alias(self) -> str:
        """The alias readers query, and the base of this namespace's collection names."""
        return f"{self.collection}-{self.namespace}" if self.namespace else self.collection

    def validate_against(self, max_input_tokens: int, model_name: str) -> None:
        """Reject settings the embedder cannot honour, before any work starts."""
        if self.chunk_size_tokens > max_input_tokens:
            raise ValueError(
                f"chunk_size_tokens={self.chunk_size_tokens} exceeds the embedder's limit of "
                f"{max_input_tokens} tokens ({model_name} max_seq_length minus 2 special tokens); "
                "longer chunks would be silently truncated when embedded. Set "
                f"RAGPIPE_CHUNK_SIZE (or --chunk-size) to at most {max_input_tokens}, "
                "or use an embedder with a longer max_seq_length."
            )
        if self.chunk_size_tokens < 16:
            raise ValueError(f"chunk_size_tokens={self.chunk_size_tokens} is too small; use at least 16")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_size_tokens:
            raise ValueError(
                f"chunk_overlap_tokens={self.chunk_overlap_tokens} must be at least 0 and below "
                f"chunk_size_tokens={self.chunk_size_tokens}"
            )
        if self.near_duplicates not in ("off", "mark", "skip"):
            raise ValueError(f"near_duplicates={self.near_duplicates!r} must be one of off, mark, skip")
        if self.parse_timeout_s <= 0:
            raise ValueError(f"parse_timeout_s={self.parse_timeout_s} must be positive")
        if self.parse_timeout_per_page_s < 0:
            raise ValueError(f"parse_timeout_per_page_s={self.parse_timeout_per_page_s} must be 0 or more")
        if not 0 <= self.failure_budget <= 1:
            raise ValueError(f"failure_budget={self.failure_budget} must be a fraction between 0 and 1")


def parse_cutoffs(text: str) -> tuple[int, ...]:
    """Comma-separated k values as sorted distinct positive integers; ValueError says what is wrong."""
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        values = []
    if not values or values[0] < 1:
        raise ValueError(f"RAGPIPE_HIT_CUTOFFS must list positive integers, e.g. 1,3,5,10, not {text!r}")
    return tuple(values)


class EvaluationSettings(ConfigurableResource):
    """Which golden set and retriever the evaluation uses, and the promotion gate's thresholds."""

    golden_set_dir: str
    retriever: str = "hybrid"  # dense + BM25 fused by reciprocal rank (the store's own where it has one), or "dense"
    top_k: int = 5  # chunks a generator reads: RAGAS and the generation tier score these
    hit_cutoffs: str = "1,3,5,10"  # the k of the hit@k metrics, comma separated
    faithfulness_threshold: float = 0.85
    composite_threshold: float = 0.78
    max_recall_drop: float = 0.05
    min_retrieval_recall: float = 0.75
    min_scored_share: float = 0.9  # a metric scored on fewer of the questions it applies to fails its check
    require_generation: bool = False
    keep_versions: int = 3
    # Who sees a chunk whose document has no acl: everyone ("public") or no caller with groups ("deny").
    unlabelled_access: str = "public"

    def cutoffs(self) -> tuple[int, ...]:
        return parse_cutoffs(self.hit_cutoffs)
