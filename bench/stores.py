"""The embedded vector stores at scale: Qdrant local mode (QdrantVectorStore on a folder, the
default) against Qdrant Edge (QdrantEdgeVectorStore, qdrant-edge-py), through ragpipe's own
store classes, as ingest and queries use them.

    .venv/bin/python bench/stores.py [--sizes 10000,100000,1000000] [--local-max 100000]
                                     [--queries 200] [--json]

For each store and size, in fresh subprocesses (so each peak RSS is its own):
- build: N random normalised 384-d points with payloads like ours (source, doc_id, chunk_id,
  ~800 characters of text, an acl list of one of 10 groups or none, bucket) upserted in batches
  of 256; then the store is closed (Qdrant Edge optimises there: merges segments, builds HNSW);
  then reopened, 1% of the points rewritten and one source per 100 deleted, and closed again
  (an incremental run's write and close);
- open: the store reopened and counted (the time and RSS of opening), then top-10 searches,
  unfiltered and with the ACL filter of a caller in one group (unlabelled public), p50/p95 over
  ``--queries`` queries; every filtered hit is checked against the rule; then the (source, doc_id)
  of every point streamed, as each untargeted ingest's repair_index does (its census).
Peak RSS is each subprocess's VmHWM; disk is the store folder's blocks in use after the build.
Local mode above ``--local-max`` is not run: its figure is extrapolated from the largest size
run (upsert rate, RSS per point) and printed as such. Prints a Markdown table, or --json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from core.access import AccessFilter
from core.types import Point
from resources import offline  # noqa: F401  (air-gap defaults before library imports)
from resources.vector_stores import QdrantEdgeVectorStore, QdrantVectorStore

DIMENSION = 384
BATCH = 256
GROUPS = 10
COLLECTION = "bench__v1"
STORES = {"qdrant-local": QdrantVectorStore, "qdrant-edge": QdrantEdgeVectorStore}
TEXT = ("Quarterly travel policy: economy class for flights under six hours, business above; hotels within "
        "the city's published rate; receipts scanned within thirty days. ") * 6


def unit_vectors(rng: np.random.Generator, count: int) -> list[list[float]]:
    vectors = rng.standard_normal((count, DIMENSION), dtype=np.float32)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).tolist()


def batch_points(start: int, count: int, rng: np.random.Generator, revision: int = 0) -> list[Point]:
    """Points ``start`` to ``start + count``: 8 chunks per document, a tenth of documents unlabelled."""
    points = []
    for i, vector in zip(range(start, start + count), unit_vectors(rng, count), strict=True):
        document = i // 8
        acl = [] if document % 10 == 0 else [f"group-{document % GROUPS}"]
        points.append(Point(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"doc-{document}#{i % 8}")), vector=vector,
            payload={"source": f"file:///corpus/doc-{document}.md", "doc_id": f"{document:016x}{revision}",
                     "chunk_id": i % 8, "text": f"{i} {TEXT[:780]}", "acl": acl, "bucket": document % 1024}))
    return points


def peak_rss_mb() -> float:
    return int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024


def rss_mb() -> float:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024


def build(kind: str, folder: str, size: int) -> dict:
    rng = np.random.default_rng(7)
    store = STORES[kind](path=folder)
    store.ensure_collection(COLLECTION, DIMENSION)
    upsert_s = 0.0
    for start in range(0, size, BATCH):
        points = batch_points(start, min(BATCH, size - start), rng)
        started = time.perf_counter()
        store.upsert(COLLECTION, points)
        upsert_s += time.perf_counter() - started
    started = time.perf_counter()
    store.close()
    close_s = time.perf_counter() - started

    started = time.perf_counter()
    changed = max(BATCH, size // 100)
    for start in range(0, changed, BATCH):  # the first 1% of points rewritten with new vectors
        store.upsert(COLLECTION, batch_points(start, min(BATCH, changed - start), rng, revision=1))
    for document in range(size // 8 - size // 800, size // 8):  # the last 1% of documents deleted
        store.delete_source(COLLECTION, f"file:///corpus/doc-{document}.md")
    store.close()
    return {"upsert_points_per_s": round(size / upsert_s), "upsert_s": round(upsert_s, 1),
            "close_s": round(close_s, 1), "incremental_1pct_s": round(time.perf_counter() - started, 1),
            "build_peak_rss_mb": round(peak_rss_mb())}


def latencies(store, vectors: list[list[float]], access: AccessFilter | None) -> dict:
    times = []
    for vector in vectors:
        started = time.perf_counter()
        [hits] = store.search_many(COLLECTION, [vector], 10, accesses=[access])
        times.append((time.perf_counter() - started) * 1000)
        assert len(hits) == 10, "a top-10 search returned fewer hits"
        assert access is None or all(access.allows(hit.payload.get("acl")) for hit in hits), "a filtered hit leaked"
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(sorted(times)[int(0.95 * (len(times) - 1))], 2)}


def open_and_search(kind: str, folder: str, size: int, queries: int) -> dict:
    started = time.perf_counter()
    store = STORES[kind](path=folder)
    count = store.count(COLLECTION)
    open_s = time.perf_counter() - started
    open_rss = rss_mb()
    expected = size - size // 800 * 8
    assert count == expected, f"{count} points after the build, expected {expected}"
    vectors = unit_vectors(np.random.default_rng(11), queries)
    result = {"open_s": round(open_s, 2), "open_rss_mb": round(open_rss),
              "search": latencies(store, vectors, None),
              "search_acl": latencies(store, vectors, AccessFilter(("group-3",), "public"))}
    started = time.perf_counter()
    assert sum(1 for _ in store.point_sources(COLLECTION)) == expected
    result["census_s"] = round(time.perf_counter() - started, 2)
    store.close()
    return {**result, "open_peak_rss_mb": round(peak_rss_mb())}


def disk_mb(folder: Path) -> float:
    """Blocks in use, as du counts them (Qdrant preallocates sparse files larger than their data)."""
    return sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file()) / 2**20


def in_subprocess(phase: str, kind: str, folder: Path, size: int, queries: int) -> dict:
    command = [sys.executable, __file__, f"--{phase}", kind, str(folder), str(size), str(queries)]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode:
        raise RuntimeError(f"{phase} {kind} {size}: {finished.stderr[-2000:]}")
    return json.loads(finished.stdout)


def measure(kind: str, size: int, queries: int, workdir: Path) -> dict:
    folder = workdir / f"{kind}-{size}"
    try:
        built = in_subprocess("build", kind, folder, size, queries)
        disk = disk_mb(folder)
        opened = in_subprocess("open", kind, folder, size, queries)
        return {"store": kind, "points": size, **built, "disk_mb": round(disk), **opened}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def extrapolated(run: dict, size: int) -> dict:
    """What a size not run would take at the largest run's upsert rate and RSS per point."""
    scale = size / run["points"]
    return {"store": run["store"], "points": size, "not_run": True,
            "upsert_s_estimate": round(size / run["upsert_points_per_s"]),
            "build_peak_rss_mb_estimate": round(run["build_peak_rss_mb"] * scale),
            "open_rss_mb_estimate": round(run["open_rss_mb"] * scale)}


def markdown(rows: list[dict]) -> str:
    lines = [("| store | points | upsert pts/s | close (optimise) s | 1% update + close s | peak RSS build MB | "
              "disk MB | open s | RSS after open MB | top-10 p50/p95 ms | with ACL filter p50/p95 ms | census s |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("not_run"):
            lines.append(f"| {r['store']} | {r['points']:,} | not run: ~{r['upsert_s_estimate']:,} s of upserts, "
                         f"~{r['build_peak_rss_mb_estimate']:,} MB peak, ~{r['open_rss_mb_estimate']:,} MB to open "
                         "(extrapolated) | | | | | | | | | |")
            continue
        lines.append(f"| {r['store']} | {r['points']:,} | {r['upsert_points_per_s']:,} | {r['close_s']} | "
                     f"{r['incremental_1pct_s']} | {r['build_peak_rss_mb']:,} | {r['disk_mb']:,} | {r['open_s']} | "
                     f"{r['open_rss_mb']:,} | {r['search']['p50_ms']} / {r['search']['p95_ms']} | "
                     f"{r['search_acl']['p50_ms']} / {r['search_acl']['p95_ms']} | {r.get('census_s', '')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--local-max", type=int, default=100_000, help="largest size run on qdrant-local")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--build", nargs=4, metavar=("STORE", "FOLDER", "SIZE", "QUERIES"), help=argparse.SUPPRESS)
    parser.add_argument("--open", nargs=4, metavar=("STORE", "FOLDER", "SIZE", "QUERIES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build or args.open:
        kind, folder, size, queries = args.build or args.open
        result = (build(kind, folder, int(size)) if args.build
                  else open_and_search(kind, folder, int(size), int(queries)))
        print(json.dumps(result))
        return 0

    rows = []
    with tempfile.TemporaryDirectory(prefix="ragpipe-stores-") as workdir:
        for kind in args.stores.split(","):
            largest = None
            for size in sorted(int(s) for s in args.sizes.split(",")):
                if kind == "qdrant-local" and size > args.local_max and largest:
                    rows.append(extrapolated(largest, size))
                    continue
                largest = measure(kind, size, args.queries, Path(workdir))
                rows.append(largest)
                print(json.dumps(largest), file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=2) if args.json else markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
