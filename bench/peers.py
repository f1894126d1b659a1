"""ragpipe side by side with LangChain ``index()`` and LlamaIndex ``IngestionPipeline``, and the floor.

    .venv/bin/python bench/peers.py [--docs 1000] [--systems ...] [--scenarios full rerun change]
                                    [--workdir DIR] [--seed 0] [--json]

One generated Markdown corpus per document count (``bench/golden_generator.py``, 300 documents
a seed, as many seeds as needed), the same model (the bundled all-MiniLM-L6-v2 through
sentence-transformers, batch 32, normalised), 200-token chunks with a 30-token overlap counted
with the model's tokenizer, and Qdrant local mode on disk for every system. Scenarios, in order
on one working directory per system: ``full`` (empty store), ``rerun`` (nothing changed) and
``change`` (1% of the documents rewritten, another 1% deleted, chosen by the seed).

Each system runs each scenario in a fresh process; the figure is that process's wall time, start
to exit, and its own peak RSS (VmHWM). ragpipe parses in forked worker processes: they are not in
that figure; the JSON rows carry the largest one's peak as ``children_peak_rss_mb`` (it counts the
pages shared with the parent, so the two must not be added).
LangChain runs with ``cleanup="full"``: the change scenario deletes documents, and only full
cleanup removes the vectors of a source that is no longer listed. The floor is a process that
loads the model and encodes exactly the texts ragpipe embedded in that scenario (read back from
ragpipe's store), nothing else; in the rerun there are none, so its floor is start-up and model load. After each run the store is read back and its distinct documents
counted: a system that silently indexed nothing shows it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYSTEMS = ("ragpipe", "ragpipe-noscreen", "langchain", "llamaindex", "floor")
PEERS = ("langchain", "llamaindex")
SCENARIOS = ("full", "rerun", "change")
CHUNK_SIZE, CHUNK_OVERLAP, BATCH_SIZE = 200, 30, 32
DOCS_PER_SEED = 300  # the generator's entity lists hold 384 documents a seed
CHANGED_SHARE = 0.01
COLLECTION = "peers"
# Screening's two models, off in the "ragpipe-noscreen" row to show what they cost.
NO_SCREENING = {"RAGPIPE_PII_NER": "false", "RAGPIPE_INJECTION_CLASSIFIER": "false"}
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "ANONYMIZED_TELEMETRY": "false", "DO_NOT_TRACK": "1"}


# ---- the corpus -------------------------------------------------------------------------------

def make_corpus(corpus: Path, documents: int, seed: int) -> None:
    """``documents`` generated Markdown files under ``corpus``, in folders of up to 300, each its own seed."""
    from bench.golden_generator import generate_golden_set

    corpus.mkdir(parents=True)
    for part in range(math.ceil(documents / DOCS_PER_SEED)):
        count = min(DOCS_PER_SEED, documents - part * DOCS_PER_SEED)
        with tempfile.TemporaryDirectory() as scratch:
            generate_golden_set(Path(scratch), documents=count, questions=0, seed=seed + part)
            shutil.move(Path(scratch) / "corpus", corpus / f"part-{part:03d}")


def corpus_files(corpus: Path) -> list[str]:
    return sorted(str(path.relative_to(corpus)) for path in corpus.rglob("*.md"))


def change_corpus(corpus: Path, seed: int) -> dict[str, list[str]]:
    """Rewrite one paragraph's worth (a new section) in 1% of the documents and delete another 1%."""
    files = corpus_files(corpus)
    count = max(1, round(len(files) * CHANGED_SHARE))
    picked = random.Random(seed).sample(files, 2 * count)
    modified, deleted = sorted(picked[:count]), sorted(picked[count:])
    for name in modified:
        with open(corpus / name, "a", encoding="utf-8") as file:
            file.write(f"\n## Revision\n\nThe page {name} was revised after the annual review; the figures "
                       "above replace those of the previous edition and apply from the next quarter.\n")
    for name in deleted:
        (corpus / name).unlink()
    return {"modified": modified, "deleted": deleted}


# ---- what runs in each child process ------------------------------------------------------------

def peak_rss_mb() -> float:
    """This process's own peak resident set (VmHWM), in MB."""
    kb = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)
    return int(kb) / 1024


class CountingModel:
    """The one SentenceTransformer every system embeds with, counting the texts and model tokens it is given."""

    def __init__(self):
        from sentence_transformers import SentenceTransformer

        from resources.embedders import SentenceTransformerEmbedder, default_model_path

        self.model = SentenceTransformer(default_model_path(), device="cpu", local_files_only=True)
        self.counter = TokenCounter(SentenceTransformerEmbedder(device="cpu"))

    def encode(self, texts: list[str]) -> list[list[float]]:
        self.counter.add(texts)
        return self.model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True,
                                 show_progress_bar=False).tolist()


class TokenCounter:
    def __init__(self, embedder):
        self.embedder, self.texts, self.tokens = embedder, 0, 0

    def add(self, texts: list[str]) -> None:
        self.texts += len(texts)
        self.tokens += sum(map(self.embedder.count_tokens, texts))


def hf_tokenizer():
    from transformers import AutoTokenizer

    from resources.embedders import default_model_path

    return AutoTokenizer.from_pretrained(default_model_path(), local_files_only=True)


def read_corpus(corpus: Path) -> list[tuple[str, str]]:
    return [(name, (corpus / name).read_text(encoding="utf-8")) for name in corpus_files(corpus)]


def run_ragpipe(state: Path, corpus: Path, scenario: str) -> dict[str, Any]:
    """``ragpipe ingest`` as a user runs it (a full reconcile of the folder), settings from the environment."""
    from pipelines.cli import run_ingest
    from pipelines.instance import ensure_data_dir
    from pipelines.settings import Settings
    from resources.embedders import SentenceTransformerEmbedder

    counter = TokenCounter(SentenceTransformerEmbedder(device="cpu"))
    embed = SentenceTransformerEmbedder.embed

    def counted_embed(self, texts):  # the bench's count of what reaches the model; ragpipe's own counts chunk text only
        counter.add(texts)
        return embed(self, texts)

    SentenceTransformerEmbedder.embed = counted_embed
    settings = Settings.from_env(data_dir=state, source_dir=corpus)
    ensure_data_dir(settings.data_path)
    summary = run_ingest(settings, log_level="WARNING")
    if not summary["success"]:
        raise SystemExit(f"ragpipe {scenario} failed: {summary['errors']}")
    return {"texts": counter.texts, "tokens": counter.tokens, "collection": summary["collection"],
            "stage_seconds": summary["stage_seconds"]}


def run_langchain(state: Path, corpus: Path, scenario: str) -> dict[str, Any]:
    """LangChain's incremental indexing: ``index()`` with a SQLite record manager, full cleanup."""
    from langchain_community.indexes._sql_record_manager import SQLRecordManager  # not re-exported in 0.3.x
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.indexing import index
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from qdrant_client import QdrantClient, models

    model = CountingModel()

    class LocalEmbeddings(Embeddings):  # what langchain-huggingface's HuggingFaceEmbeddings does
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return model.encode(texts)

        def embed_query(self, text: str) -> list[float]:
            return model.encode([text])[0]

    client = QdrantClient(path=str(state / "qdrant"))
    if not client.collection_exists(COLLECTION):
        dimension = model.model.get_sentence_embedding_dimension()
        client.create_collection(COLLECTION, vectors_config=models.VectorParams(size=dimension,
                                                                               distance=models.Distance.COSINE))
    # Created just above with the model's dimension: the check would embed a dummy text on every run.
    store = QdrantVectorStore(client=client, collection_name=COLLECTION, embedding=LocalEmbeddings(),
                              validate_collection_config=False)
    records = SQLRecordManager("peers", db_url=f"sqlite:///{state / 'records.sqlite'}")
    records.create_schema()
    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        hf_tokenizer(), chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    documents = [Document(page_content=text, metadata={"source": name}) for name, text in read_corpus(corpus)]
    result = index(splitter.split_documents(documents), records, store, cleanup="full", source_id_key="source",
                   batch_size=100)
    client.close()
    return {"texts": model.counter.texts, "tokens": model.counter.tokens, "collection": COLLECTION, "index": result}


def run_llamaindex(state: Path, corpus: Path, scenario: str) -> dict[str, Any]:
    """LlamaIndex's ``IngestionPipeline`` with a docstore persisted to disk, upserts and deletes."""
    from llama_index.core import Document
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.node_parser import TokenTextSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from pydantic import PrivateAttr
    from qdrant_client import QdrantClient

    class LocalEmbedding(BaseEmbedding):  # what llama-index-embeddings-huggingface does
        _model: CountingModel = PrivateAttr()

        def __init__(self, model: CountingModel):
            super().__init__(model_name="all-MiniLM-L6-v2", embed_batch_size=BATCH_SIZE)
            self._model = model

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._model.encode([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._model.encode([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._model.encode(texts)

    model = CountingModel()
    tokenizer = hf_tokenizer()
    splitter = TokenTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP,
                                 tokenizer=lambda text: tokenizer.encode(text, add_special_tokens=False))
    client = QdrantClient(path=str(state / "qdrant"))
    pipeline = IngestionPipeline(
        transformations=[splitter, LocalEmbedding(model)],
        vector_store=QdrantVectorStore(collection_name=COLLECTION, client=client),
        docstore=SimpleDocumentStore(),
        docstore_strategy=DocstoreStrategy.UPSERTS_AND_DELETE,
    )
    persisted = state / "pipeline"
    if persisted.exists():
        pipeline.load(str(persisted))
    # The path is the id (what the docstore matches runs by) and is kept out of the embedded text.
    documents = [Document(text=text, id_=name, metadata={"source": name}, excluded_embed_metadata_keys=["source"],
                          excluded_llm_metadata_keys=["source"]) for name, text in read_corpus(corpus)]
    nodes = pipeline.run(documents=documents)
    pipeline.persist(str(persisted))
    client.close()
    return {"texts": model.counter.texts, "tokens": model.counter.tokens, "collection": COLLECTION,
            "nodes": len(nodes)}


def run_floor(state: Path, corpus: Path, scenario: str) -> dict[str, Any]:
    """The model alone on the texts ragpipe embedded in this scenario (written by the parent)."""
    texts = json.loads((state / f"{scenario}.json").read_text())
    model = CountingModel()
    if texts:
        model.encode(texts)
    return {"texts": model.counter.texts, "tokens": model.counter.tokens}


RUNNERS = {"ragpipe": run_ragpipe, "ragpipe-noscreen": run_ragpipe, "langchain": run_langchain,
           "llamaindex": run_llamaindex, "floor": run_floor}


def child_main(system: str, scenario: str, root: Path) -> None:
    result = RUNNERS[system](root / system, root / "corpus", scenario)
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({**result, "peak_rss_mb": round(peak_rss_mb(), 1),
                      "children_peak_rss_mb": round(children_kb / 1024, 1)}))


# ---- the parent: runs, store read-back, table ---------------------------------------------------

def run_child(system: str, scenario: str, root: Path) -> dict[str, Any]:
    """One system's scenario in a fresh interpreter; wall time of the whole process, start to exit."""
    env = {**os.environ, **OFFLINE, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
    if system == "ragpipe-noscreen":
        env.update(NO_SCREENING)
    (root / system).mkdir(exist_ok=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--_run", system, scenario, str(root)], env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{system} {scenario} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return {"system": system, "scenario": scenario, "wall_s": round(wall, 2),
            **json.loads(done.stdout.strip().splitlines()[-1])}


# Where each system's points name their document.
DOCUMENT_KEY = {"ragpipe": "source", "ragpipe-noscreen": "source", "langchain": "metadata.source",
                "llamaindex": "doc_id"}


def stored_payloads(path: Path, collection: str, keys: list[str]):
    """Each point's payload (only ``keys``), streamed page by page from a local-mode store."""
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(path))
    try:
        offset = None
        while True:
            points, offset = client.scroll(collection, limit=1000, offset=offset, with_payload=keys,
                                           with_vectors=False)
            yield from (point.payload or {} for point in points)
            if offset is None:
                return
    finally:
        client.close()


def stored_documents(system: str, root: Path, collection: str) -> int:
    """Distinct documents in the system's store, by its own document key."""
    key = DOCUMENT_KEY[system]
    head, _, tail = key.partition(".")
    values = set()
    for payload in stored_payloads(root / system / "qdrant", collection, [head]):
        value = payload.get(head)
        values.add(value.get(tail) if tail else value)
    return len(values - {None})


def floor_texts(root: Path, collection: str, scenario: str, modified: list[str]) -> list[str]:
    """The distinct texts ragpipe embedded: every chunk (full), none (rerun), the modified documents' (change)."""
    from assets.ingestion.chunking import embedding_text

    if scenario == "rerun":
        return []
    wanted = {(root / "corpus" / name).resolve().as_uri() for name in modified}
    texts = {
        embedding_text(payload)
        for payload in stored_payloads(root / "ragpipe" / "qdrant", collection,
                                       ["source", "text", "title", "section"])
        if scenario == "full" or payload["source"] in wanted
    }
    return sorted(texts)


def bench(documents: int, systems: list[str], scenarios: list[str], workdir: Path, seed: int,
          log=print) -> list[dict[str, Any]]:
    """Run the scenarios (each one up to the last asked for: state carries over) for every system."""
    root = workdir / f"docs-{documents}"
    shutil.rmtree(root, ignore_errors=True)
    make_corpus(root / "corpus", documents, seed)
    systems = [s for s in SYSTEMS if s in systems]
    if "floor" in systems and "ragpipe" not in systems:
        raise ValueError("the floor encodes what ragpipe embedded: run it with the ragpipe system")
    rows, collections, modified = [], {}, []
    for scenario in SCENARIOS[: max(SCENARIOS.index(s) for s in scenarios) + 1]:
        if scenario == "change":
            modified = change_corpus(root / "corpus", seed)["modified"]
        expected = len(corpus_files(root / "corpus"))
        for system in systems:
            if system == "floor":
                (root / "floor").mkdir(exist_ok=True)
                texts = floor_texts(root, collections["ragpipe"], scenario, modified)
                (root / "floor" / f"{scenario}.json").write_text(json.dumps(texts))
            row = run_child(system, scenario, root)
            if system != "floor":
                collections[system] = row["collection"]
                row["documents_stored"] = stored_documents(system, root, row["collection"])
                row["documents_expected"] = expected
            row["docs"] = documents
            log(f"{documents} docs, {scenario}, {system}: {row['wall_s']} s, {row['tokens']} tokens, "
                f"{row['peak_rss_mb']} MB" + (f", {row['documents_stored']}/{expected} documents in the store"
                                              if system != "floor" else ""))
            if scenario in scenarios:
                rows.append(row)
    add_ratios(rows)
    return rows


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's wall time and peak RSS over the floor's and the best peer's, in the same scenario."""
    for row in rows:
        same = [r for r in rows if r["docs"] == row["docs"] and r["scenario"] == row["scenario"]]
        floor = next((r for r in same if r["system"] == "floor"), None)
        peers = [r for r in same if r["system"] in PEERS]
        for figure in ("wall_s", "peak_rss_mb"):
            row[f"{figure}_x_floor"] = round(row[figure] / floor[figure], 2) if floor else None
            best = min((r[figure] for r in peers), default=None)
            row[f"{figure}_x_best_peer"] = round(row[figure] / best, 2) if best else None


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}×"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [("| docs | scenario | system | wall s | × floor | × best peer | tokens embedded | peak RSS MB "
              "| RSS × floor | RSS × best peer | documents stored |"),
             "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        stored = f"{r['documents_stored']}/{r['documents_expected']}" if "documents_stored" in r else ""
        lines.append(f"| {r['docs']} | {r['scenario']} | {r['system']} | {r['wall_s']:.1f} | {_ratio(r['wall_s_x_floor'])} "
                     f"| {_ratio(r['wall_s_x_best_peer'])} | {r['tokens']:,} | {r['peak_rss_mb']:.0f} "
                     f"| {_ratio(r['peak_rss_mb_x_floor'])} | {_ratio(r['peak_rss_mb_x_best_peer'])} | {stored} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="+", default=[1000])
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ragpipe-peers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    parser.add_argument("--_run", nargs=3, metavar=("SYSTEM", "SCENARIO", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._run:
        system, scenario, root = args._run
        child_main(system, scenario, Path(root))
        return 0
    log = (lambda message: print(message, file=sys.stderr)) if args.json else print
    rows = [row for documents in args.docs
            for row in bench(documents, args.systems, args.scenarios, args.workdir, args.seed, log)]
    print(json.dumps(rows, indent=2) if args.json else markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
