"""Embedding throughput of the bundled model on this machine's CPU: the capacity model's input.

    .venv/bin/python bench/embed_bench.py [--chunks 2000] [--tokens 200] [--device auto] [--batch-size 0]
        [--backend torch|onnx|onnx-int8] [--processes 1] [--cache-dir ~/.cache/ragpipe/models]

Cuts the sample corpus's text into windows of ``--tokens`` model tokens (the default chunk
size), repeats them up to ``--chunks`` texts, embeds one batch to load the model, then times
``SentenceTransformerEmbedder.embed`` over all of them and prints one JSON object with the
device plan it ran with. Device and batch size default to the embedder's (auto: CUDA in float16
on a GPU node, with the GPU's batch size), so run in a GPU pod it measures the GPU figure
docs/capacity.md assumes. ``--backend`` and ``--processes`` time the opt-in paths (the ONNX
export, if not cached yet, happens in the untimed warm-up).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import cycle, islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tokenizers import Tokenizer

from pipelines.settings import SAMPLE_CORPUS
from resources.embedders import SentenceTransformerEmbedder, default_model_path


def token_windows(tokens: int) -> list[str]:
    """The sample corpus's plain-text files as consecutive windows of ``tokens`` model tokens."""
    tokenizer = Tokenizer.from_file(str(Path(default_model_path()) / "tokenizer.json"))
    tokenizer.no_truncation()  # the shipped tokenizer.json truncates to 128
    text = "\n".join(path.read_text() for path in sorted(SAMPLE_CORPUS.rglob("*"))
                     if path.suffix in (".md", ".txt"))
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    return [tokenizer.decode(ids[start:start + tokens]) for start in range(0, len(ids) - tokens, tokens)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=0, help="0: the device's")
    parser.add_argument("--backend", default="torch", help="torch, onnx or onnx-int8")
    parser.add_argument("--processes", type=int, default=1, help="encoding processes (torch backend)")
    parser.add_argument("--cache-dir", default="", help="where ONNX exports are cached")
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder(device=args.device, batch_size=args.batch_size, backend=args.backend,
                                           processes=args.processes, cache_dir=args.cache_dir)
    texts = list(islice(cycle(token_windows(args.tokens)), args.chunks))
    try:
        # Load (or export) the model, start any worker processes, and warm up.
        embedder.embed(texts[:embedder.device_plan().batch_size * args.processes])
        started = time.perf_counter()
        embedder.embed(texts)
        seconds = time.perf_counter() - started
    finally:
        embedder.close()
    tokens = sum(embedder.count_tokens(text) for text in texts)
    print(json.dumps({
        "chunks": len(texts),
        "mean_tokens_per_chunk": round(tokens / len(texts), 1),
        **embedder.device_metadata(),
        "torch_threads": torch.get_num_threads() if (torch := sys.modules.get("torch")) else None,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(len(texts) / seconds, 1),
        "tokens_per_s": round(tokens / seconds),
    }, indent=2))


if __name__ == "__main__":
    main()
