"""What access trimming costs a query on the embedded default, Qdrant local mode: top-k search
with and without an ACL filter. (Qdrant servers and Azure AI Search filter on an index; the
contract-test servers here would time Python, not the services, so they are not benchmarked.)

    .venv/bin/python bench/acl_bench.py [--points N] [--groups G] [--queries Q] [--k K]

N random 384-d points, each labelled with one of G groups (a tenth unlabelled). Each query is
timed unfiltered, as a caller in one group (unlabelled public), and as a caller in one group
with unlabelled denied; every filtered result is checked against the rule. Prints one JSON
object on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.access import AccessFilter
from core.types import Point
from resources import offline  # noqa: F401  (air-gap defaults before library imports)
from resources.vector_stores import QdrantVectorStore

DIMENSION = 384


def make_points(count: int, groups: int, rng: random.Random) -> list[Point]:
    points = []
    for i in range(count):
        acl = [] if i % 10 == 0 else [f"group-{rng.randrange(groups)}"]
        points.append(Point(id=str(uuid.UUID(int=i + 1)), vector=[rng.gauss(0, 1) for _ in range(DIMENSION)],
                            payload={"text": f"chunk {i}", "source": f"file:///doc-{i // 8}", "doc_id": str(i // 8),
                                     "acl": acl}))
    return points


def time_queries(store, name: str, queries: list[list[float]], k: int, access: AccessFilter | None) -> dict:
    latencies, returned = [], []
    for vector in queries:
        started = time.perf_counter()
        hits = store.search(name, vector, k, access=access)
        latencies.append((time.perf_counter() - started) * 1000)
        assert access is None or all(access.allows(hit.payload.get("acl")) for hit in hits), "a filtered hit leaked"
        returned.append(len(hits))
    return {"p50_ms": round(statistics.median(latencies), 2),
            "p95_ms": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 2),
            "mean_hits": round(statistics.fmean(returned), 2)}


def bench(store, points: list[Point], queries: list[list[float]], k: int) -> dict:
    store.ensure_collection("bench__v1", DIMENSION)
    started = time.perf_counter()
    for start in range(0, len(points), 256):
        store.upsert("bench__v1", points[start:start + 256])
    upsert_s = time.perf_counter() - started
    cases = {"unfiltered": None, "one_group_public": AccessFilter(("group-0",), "public"),
             "one_group_deny": AccessFilter(("group-0",), "deny")}
    results = {case: time_queries(store, "bench__v1", queries, k, access) for case, access in cases.items()}
    return {"upsert_points_per_s": round(len(points) / upsert_s), **results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(7)
    points = make_points(args.points, args.groups, rng)
    queries = [[rng.gauss(0, 1) for _ in range(DIMENSION)] for _ in range(args.queries)]
    report = {"points": args.points, "groups": args.groups, "queries": args.queries, "k": args.k}
    with tempfile.TemporaryDirectory() as folder:
        qdrant = QdrantVectorStore(path=folder)
        try:
            report["qdrant_local"] = bench(qdrant, points, queries, args.k)
        finally:
            qdrant.close()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
