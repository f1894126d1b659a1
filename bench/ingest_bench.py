"""Ingestion timings: first run, unchanged rerun, and where the first run's time goes.

    .venv/bin/python bench/ingest_bench.py [--source DIR] [--chunk-size N]

Runs the same job as `ragpipe ingest` twice on a fresh data directory and prints one JSON
object: wall times, documents, chunks, embedding throughput and each stage's share.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.cli import run_ingest  # noqa: E402
from pipelines.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, help="corpus folder (default: the sample corpus)")
    parser.add_argument("--chunk-size", type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings.from_env(data_dir=Path(data_dir), source_dir=args.source,
                                     chunk_size_tokens=args.chunk_size)
        first, second = run_ingest(settings), run_ingest(settings)
    stages = first["stage_seconds"]
    print(json.dumps({
        "documents": sum(first["documents"][k] for k in ("new", "changed", "retry")),
        "chunks": first["chunks"],
        "tokens": first["tokens"],
        "first_run_s": first["wall_seconds"],
        "second_run_s": second["wall_seconds"],
        "second_run_embedded": second["embedded"],
        "second_run_upserted": second["upserted"],
        "embedding_share_of_first_run": round(stages["embeddings"] / first["wall_seconds"], 3),
        "parse_clean_share_of_first_run": round(stages["clean_documents"] / first["wall_seconds"], 3),
        "embedded_chunks_per_s": round(first["embedded"] / stages["embeddings"], 1),
        "stage_seconds": stages,
    }, indent=2))


if __name__ == "__main__":
    main()
