"""Each retriever side by side on a golden set, with the tokens it hands a generator.

    .venv/bin/python bench/retrievers.py [--golden-set PATH] [--chunk-size N --chunk-overlap N] [--top-k N]

Without ``--golden-set`` it generates one (``golden_generator.py``). It builds the set's index
as ``ragpipe eval`` does (chunks embedded with their heading), copies it re-embedded from the
chunk text alone (how chunks were embedded before), and scores dense and hybrid retrieval on
both: hit@1/5/10 and MRR@10 by reference context and by answer in chunk, and the mean tokens
of the top k chunks. Prints one JSON object and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import resources  # noqa: F401  (offline defaults before library imports)
from assets.evaluation.golden import load_golden_set
from assets.evaluation.retrieval import RETRIEVERS, Retriever
from assets.evaluation.scoring import evaluate_candidate
from bench.eval_bench import METRICS, build_golden_index, cell
from bench.golden_generator import generate_golden_set
from core.types import Point
from pipelines.definitions import build_resources

TEXT_ONLY = "text-only"


def text_only_copy(store, embedder, collection: str) -> str:
    """The collection's chunks re-embedded from their text alone, in a scratch collection."""
    payloads = list(store.payloads(collection))
    vectors = embedder.embed([payload["text"] for _, payload in payloads])
    store.ensure_collection(TEXT_ONLY, embedder.dimension())
    store.upsert(TEXT_ONLY, [Point(id=point_id, vector=vector, payload=payload)
                             for (point_id, payload), vector in zip(payloads, vectors, strict=True)])
    return TEXT_ONLY


def compare(golden_dir: Path, data_dir: Path, chunk_size: int | None, chunk_overlap: int | None,
            top_k: int | None) -> dict:
    settings, collection = build_golden_index(golden_dir, data_dir, top_k=top_k, chunk_size_tokens=chunk_size,
                                              chunk_overlap_tokens=chunk_overlap)
    golden, built = load_golden_set(golden_dir), build_resources(settings)
    store, embedder, cache = built["vector_store"], built["embedder"], built["evaluation_store"]
    collections = {"text + heading": collection}
    rows = []
    try:
        collections["text only"] = text_only_copy(store, embedder, collections["text + heading"])
        for embedded, collection in collections.items():
            for mode in RETRIEVERS:
                evaluation = evaluate_candidate(golden, Retriever(store, embedder, collection, mode), settings.top_k,
                                                embedder, question_cache=cache)
                rows.append({"embedded": embedded, "retriever": mode,
                             **{name: evaluation.aggregates.get(name) for name in METRICS}})
        return {"golden_set": golden.name, "questions": len(golden.questions), "top_k": settings.top_k,
                "chunk_size": settings.chunk_size_tokens, "chunk_overlap": settings.chunk_overlap_tokens,
                "chunks": store.count(collections["text + heading"]), "rows": rows}
    finally:
        store.close()


def markdown(result: dict) -> str:
    heading = (f"{result['golden_set']}: {result['questions']} questions, {result['chunks']} chunks of "
               f"{result['chunk_size']}/{result['chunk_overlap']} tokens, top_k {result['top_k']}")
    lines = [heading, "",
             "| embedded | retriever | " + " | ".join(METRICS) + " |", "|---|---|" + "---:|" * len(METRICS)]
    for row in result["rows"]:
        cells = [cell(name, row[name]) for name in METRICS]
        lines.append(f"| {row['embedded']} | {row['retriever']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--golden-set", type=Path, help="an existing golden set folder (default: generate one)")
    parser.add_argument("--chunk-size", type=int)
    parser.add_argument("--chunk-overlap", type=int)
    parser.add_argument("--top-k", type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="retrievers-") as work:
        golden_dir = args.golden_set.resolve() if args.golden_set else generate_golden_set(Path(work) / "generated")
        result = compare(golden_dir, Path(work) / "data", args.chunk_size, args.chunk_overlap, args.top_k)
    print(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
