"""Incremental-ingestion benchmark: unchanged reruns over many small documents, and the latency
from a blob upload to its chunks being searchable with the Blob-event sensor and daemon running.

    .venv/bin/python bench/automation_bench.py [--files N] [--blobs N] [--trials K]
        [--sensor-interval S] [--skip-local] [--skip-blob] [--skip-latency]

1. local: N small Markdown files in a folder; a first full ingest, then an unchanged full rerun.
2. blob: the same N documents as blobs in Azurite; AzureBlobSource configured by settings
   (RAGPIPE_BLOB_CONTAINER, RAGPIPE_BLOB_CONNECTION_STRING); the Blob SDK's list and download
   calls are counted by wrapping them.
3. latency: `ragpipe ui` (dagster dev: webserver, daemon, run queue) with the Blob source and the
   event queue on Azurite, automation running and Qdrant as a server (the contract server of
   tests/qdrant_server.py, in this process). Each trial uploads a blob holding a unique phrase,
   puts its Event Grid message on the queue (Azurite emits no Event Grid events) and polls
   Qdrant until the blob's chunks, with the phrase, are there.

Everything stays in a temporary directory and on loopback. Prints one JSON object on stdout and
a short human summary on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient

from pipelines.cli import run_ingest
from pipelines.definitions import BLOB_CONNECTION_STRING_ENV, EVENT_QUEUE_CONNECTION_STRING_ENV
from pipelines.settings import Settings
from resources.blob_source import blob_uri
from tests.azurite import ACCOUNT, Azurite, counted_sdk_calls, running_azurite
from tests.blob_event_messages import CREATED, blob_event, body
from tests.corpus import prose
from tests.qdrant_server import qdrant_contract_server

# Near-duplicate detection stays at its default (mark: flag, never drop). Each document is
# four sentences drawn with its own seed, so two documents share hardly any 5-word shingle;
# the run's near_duplicates_marked count is reported to show it.
NEAR_DUPLICATES = "mark"
UPLOAD_THREADS = 16
SEED_BLOBS = 20
LATENCY_TIMEOUT_S = 600


def document(seed: int, phrase: str = "") -> bytes:
    """A small Markdown note of a few hundred bytes, its text drawn from its own seed."""
    heading = f"# Note {seed}" + (f": {phrase}" if phrase else "")
    return f"{heading}\n\n{prose(seed, 4)}\n".encode()


def ingest(settings: Settings, **options) -> dict:
    """One ingest run's summary, its wall time including building the definitions, and the
    near-duplicates its clean step marked."""
    from dagster import AssetKey, DagsterInstance

    started = time.monotonic()
    summary = run_ingest(settings, log_level="WARNING", **options)
    elapsed = time.monotonic() - started
    if not summary["success"]:
        raise RuntimeError(f"ingest run failed: {summary['errors']}")
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey("clean_documents"))
    marked = event.asset_materialization.metadata.get("near_duplicates_marked") if event else None
    return {
        "run_seconds": summary["wall_seconds"], "call_seconds": round(elapsed, 2),
        "documents": {k: v for k, v in summary["documents"].items() if v},
        "chunks": summary["chunks"], "embedded": summary["embedded"], "upserted": summary["upserted"],
        "source_bytes_read": summary["source_bytes_read"], "collection": summary["collection"],
        "near_duplicates_marked": getattr(marked, "value", marked) if event and event.run_id == summary["run_id"]
        else None,
        "stage_seconds": summary["stage_seconds"],
    }


def first_and_rerun(settings: Settings, calls: Counter | None = None) -> dict:
    first = ingest(settings)
    if calls is not None:
        first["sdk_calls"] = totals(calls)
        calls.clear()
    rerun = ingest(settings)
    if calls is not None:
        rerun["sdk_calls"] = totals(calls)
    return {"first_ingest": first, "unchanged_rerun": rerun}


def totals(calls: Counter) -> dict[str, int]:
    """The SDK call counts without the per-blob download counts."""
    return {name: count for name, count in calls.items() if ":" not in name}


def bench_local(n: int, workdir: Path) -> dict:
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True)
    started = time.monotonic()
    for seed in range(n):
        (corpus / f"note-{seed:05}.md").write_bytes(document(seed))
    setup = time.monotonic() - started
    settings = Settings.from_env(data_dir=workdir / "data", source_dir=corpus, near_duplicates=NEAR_DUPLICATES)
    return {"documents": n, "corpus_bytes": sum(p.stat().st_size for p in corpus.iterdir()),
            "setup_seconds": round(setup, 2), **first_and_rerun(settings)}


def upload(container: ContainerClient, blobs: dict[str, bytes]) -> float:
    """Upload in parallel threads; returns the seconds it took."""
    started = time.monotonic()
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(pool.map(lambda item: container.upload_blob(item[0], item[1], overwrite=True), blobs.items()))
    return time.monotonic() - started


def bench_blob(n: int, workdir: Path, azurite: Azurite) -> dict:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container("bench-blobs")
    setup = upload(container, {f"notes/note-{seed:05}.md": document(seed) for seed in range(n)})
    os.environ[BLOB_CONNECTION_STRING_ENV] = azurite.connection_string
    settings = Settings.from_env(data_dir=workdir / "data", blob_container=container.container_name,
                                 near_duplicates=NEAR_DUPLICATES)
    with counted_sdk_calls() as calls:
        result = first_and_rerun(settings, calls)
    service.close()
    return {"documents": n, "upload_seconds": round(setup, 2), "upload_threads": UPLOAD_THREADS, **result}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def dagster_dev(env: dict[str, str], data_dir: Path, log: Path) -> Iterator[dict]:
    """`ragpipe ui` (which execs dagster dev) in its own process group. Yields a dict that
    says, once the block has ended, how the group stopped: SIGTERM, or SIGKILL if it had not
    exited 30 s later."""
    port, state = free_port(), {}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "ui", "--data-dir", str(data_dir), "--port", str(port)],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster dev did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield state
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            state["exit_code"] = process.wait(timeout=30)
            state["stopped_by"] = "SIGTERM"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            state["exit_code"] = process.wait()
            state["stopped_by"] = "SIGKILL"
        state["group_exited_within_s"] = _group_exit(process.pid, timeout=30)


def _group_exit(group: int, timeout: float) -> float | None:
    """Seconds until every process of the group has exited, or None (and SIGKILL) if some
    remain after ``timeout``: the webserver, daemon and code server exit after the leader."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return round(time.monotonic() - started, 2)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    return None


def chunks_with(client, collection: str, uri: str, phrase: str) -> int:
    """How many of the blob's points in Qdrant hold the phrase."""
    from qdrant_client import models

    records, _ = client.scroll(collection, limit=64, with_payload=["text"], with_vectors=False,
                               scroll_filter=models.Filter(must=[
                                   models.FieldCondition(key="source", match=models.MatchValue(value=uri))]))
    return sum(phrase in (record.payload or {}).get("text", "") for record in records)


def finished_run(instance, uri: str, created_after: datetime, deadline: float):
    """The run record of the Dagster run that upserted ``uri``, once that run has ended (so the
    next trial does not queue behind it); None if there is none by the deadline."""
    from dagster import RunsFilter

    while time.monotonic() < deadline:
        for record in instance.get_run_records(RunsFilter(job_name="ingest", created_after=created_after)):
            targets = record.dagster_run.run_config.get("ops", {}).get("raw_documents", {}).get("config", {})
            if uri in targets.get("upsert", []) and record.dagster_run.is_finished:
                return record
        time.sleep(0.5)
    return None


def run_timings(record, uploaded_at: float, searchable_at: float | None) -> dict:
    """Where the time went: the sensor's request (run created), the run queue and the launch of
    the run's process (run started), and the run itself (run ended)."""
    if record is None:
        return {"run_id": None}
    created, run = record.create_timestamp.timestamp(), record.dagster_run
    timings = {"run_id": run.run_id, "run_status": run.status.value,
               "upload_to_run_created_s": round(created - uploaded_at, 2),
               "run_created_to_started_s": round(record.start_time - created, 2),
               "run_started_to_ended_s": round(record.end_time - record.start_time, 2)}
    if searchable_at is not None:
        timings["run_started_to_searchable_s"] = round(searchable_at - record.start_time, 2)
    return timings


def latency_trial(container: ContainerClient, queue: QueueClient, qdrant, instance, collection: str,
                  trial: int) -> dict:
    phrase = f"quokka{uuid.uuid4().hex[:12]}"
    name = f"bulletins/trial-{trial:02}-{phrase}.md"
    uri = blob_uri(ACCOUNT, container.container_name, name)
    created_after = datetime.now(UTC)
    uploaded_at, started = time.time(), time.monotonic()
    deadline = started + LATENCY_TIMEOUT_S
    container.upload_blob(name, document(10_000_000 + trial, phrase))
    queue.send_message(body(blob_event(CREATED, ACCOUNT, container.container_name, name, 1000 + trial)))
    searchable_at = None
    while time.monotonic() < deadline:
        if found := chunks_with(qdrant, collection, uri, phrase):
            searchable_at = time.time()
            break
        time.sleep(0.2)
    searchable = round(searchable_at - uploaded_at, 2) if searchable_at else None
    record = finished_run(instance, uri, created_after, deadline)
    return {"trial": trial, "uri": uri, "searchable_s": searchable, "chunks": found if searchable_at else 0,
            **run_timings(record, uploaded_at, searchable_at)}


def bench_latency(trials: int, interval: int, workdir: Path, azurite: Azurite) -> dict:
    from dagster import DagsterInstance
    from qdrant_client import QdrantClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container("bench-latency")
    upload(container, {f"bulletins/seed-{seed:02}.md": document(20_000_000 + seed) for seed in range(SEED_BLOBS)})
    queue = QueueClient.from_connection_string(azurite.connection_string, "bench-events")
    queue.create_queue()
    data_dir = workdir / "data"
    with qdrant_contract_server() as (qdrant_url, _requests):
        env = {
            "RAGPIPE_DATA_DIR": str(data_dir), "RAGPIPE_QDRANT_URL": qdrant_url,
            "RAGPIPE_BLOB_CONTAINER": container.container_name,
            BLOB_CONNECTION_STRING_ENV: azurite.connection_string,
            "RAGPIPE_EVENT_QUEUE": queue.queue_name, EVENT_QUEUE_CONNECTION_STRING_ENV: azurite.connection_string,
            "RAGPIPE_AUTOMATION": "running", "RAGPIPE_SENSOR_INTERVAL": str(interval),
            "RAGPIPE_NEAR_DUPLICATES": NEAR_DUPLICATES,
        }
        os.environ.update(env)
        # The container's first full reconcile, in process: the sensor's targeted runs then
        # write to the index version it created.
        seeded = ingest(Settings.from_env())
        collection = seeded["collection"]
        qdrant = QdrantClient(url=qdrant_url)
        child_env = {**os.environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(Settings.from_env().dagster_home)}
        started = time.monotonic()
        with dagster_dev(child_env, data_dir, workdir / "dagster-dev.log") as stopped, \
                DagsterInstance.get() as instance:
            up = time.monotonic() - started
            # Trial 0 warms up (the daemon's first sensor tick, the code server's imports) and
            # is reported apart from the measured trials.
            results = [latency_trial(container, queue, qdrant, instance, collection, trial)
                       for trial in range(trials + 1)]
        qdrant.close()
    service.close()
    measured = [r["searchable_s"] for r in results[1:] if r["searchable_s"] is not None]
    return {
        "sensor_interval_s": interval, "trials": trials, "seed_blobs": SEED_BLOBS, "collection": collection,
        "dagster_dev_listening_after_s": round(up, 2),
        "event_delivery": "Azurite emits no Event Grid events: the bench puts each blob's "
                          "BlobCreated message (Event Grid schema) on the queue right after the upload",
        "dagster_dev_stopped": stopped,
        "upload_to_searchable_s": {"min": min(measured), "median": round(statistics.median(measured), 2),
                                   "max": max(measured)} if measured else None,
        "timed_out": sum(r["searchable_s"] is None for r in results[1:]),
        "warmup": results[0], "results": results[1:],
    }


def human_summary(report: dict) -> list[str]:
    lines = []
    for part in ("local", "blob"):
        if part in report:
            first, rerun = report[part]["first_ingest"], report[part]["unchanged_rerun"]
            downloads = f", {rerun['sdk_calls'].get('download_blob', 0)} downloads" if "sdk_calls" in rerun else ""
            lines.append(f"{part}: {report[part]['documents']} docs, first ingest {first['run_seconds']} s; unchanged "
                         f"rerun {rerun['run_seconds']} s, {rerun['source_bytes_read']} bytes read{downloads}, "
                         f"{rerun['documents'].get('unchanged', 0)} unchanged")
    if "latency" in report:
        latency = report["latency"]
        spread = latency["upload_to_searchable_s"]
        figures = f"min {spread['min']} / median {spread['median']} / max {spread['max']} s" if spread else "no trial"
        lines.append(f"latency: upload to searchable {figures} over {latency['trials']} trials "
                     f"(sensor interval {latency['sensor_interval_s']} s, {latency['timed_out']} timed out)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000, help="local files for the unchanged rerun")
    parser.add_argument("--blobs", type=int, default=10_000, help="Azurite blobs for the unchanged rerun")
    parser.add_argument("--trials", type=int, default=5, help="upload-to-searchable trials")
    parser.add_argument("--sensor-interval", type=int, default=5, help="RAGPIPE_SENSOR_INTERVAL in seconds")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--skip-blob", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    report: dict = {"near_duplicates": NEAR_DUPLICATES}
    with tempfile.TemporaryDirectory(prefix="ragpipe-bench-") as temp:
        workdir = Path(temp)
        if not args.skip_local:
            report["local"] = bench_local(args.files, workdir / "local")
        if not (args.skip_blob and args.skip_latency):
            with running_azurite(workdir / "azurite") as azurite:
                if not args.skip_blob:
                    report["blob"] = bench_blob(args.blobs, workdir / "blob", azurite)
                if not args.skip_latency:
                    report["latency"] = bench_latency(args.trials, args.sensor_interval, workdir / "latency", azurite)
    print(json.dumps(report, indent=2))
    print("\n".join(human_summary(report)), file=sys.stderr)


if __name__ == "__main__":
    main()
