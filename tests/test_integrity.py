"""The index stays true to the ledger whatever happens to a run: a SIGKILL of its process
group, an unreadable folder, a stage materialised on its own, a re-execution from failure.

Real components throughout: `ragpipe ingest` in its own process, Qdrant local mode, SQLite,
the bundled embedder; the SIGKILL test runs again on the Azure AI Search contract-test server.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    FilesystemIOManager,
    ReexecutionOptions,
    RunsFilter,
    execute_job,
    materialize,
    reconstructable,
)

from assets.ingestion.assets import INGESTION_ASSETS
from assets.ingestion.changes import RETRY_BACKOFF
from assets.ingestion.chunking import embedding_text
from assets.ingestion.documents import point_id
from assets.screening.assets import SCREENING_ASSETS
from pipelines.definitions import INGEST_JOB, build_definitions, build_resources
from pipelines.instance import ensure_dagster_home
from pipelines.settings import Settings
from resources.azure_search import index_name
from resources.ledger import Ledger
from resources.staging import Manifest, Staging
from tests.conftest import EVERY_STORE
from tests.corpus import markdown_doc, prose
from tests.test_pipeline import payloads

RAGPIPE = str(Path(sys.executable).with_name("ragpipe"))
SMALL_CHUNKS = {"chunk_size_tokens": 32, "chunk_overlap_tokens": 4}


def ragpipe_ingest(settings: Settings, prefix: tuple[str, ...] = (), **env: str) -> subprocess.Popen:
    """`ragpipe ingest --json` on ``settings`` in its own session (its own process group)."""
    command = [RAGPIPE, "ingest", "--json", "--source", str(settings.source_dir), "--data-dir",
               str(settings.data_dir), "--chunk-size", str(settings.chunk_size_tokens)]
    return subprocess.Popen(
        [*prefix, *command], start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "RAGPIPE_CHUNK_OVERLAP": str(settings.chunk_overlap_tokens), **env},
    )


def stored_point_count(settings: Settings, collection: str, request) -> int:
    """Points in the collection while another process writes it: in the AI Search contract
    server's memory, or read from a local-mode collection's SQLite file."""
    if settings.azure_search_endpoint:
        index = request.getfixturevalue("azure_search").indexes.get(index_name(collection))
        return len(index.documents) if index else -1
    path = settings.qdrant_path / "collection" / collection / "storage.sqlite"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05) as connection:
            return connection.execute("SELECT count(*) FROM points").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or locked by the writer for a moment
        return -1


def own_point_ids(row) -> set[str]:
    return {point_id(row.source, row.indexed_doc_id, index) for index in range(row.chunk_count)}


@EVERY_STORE
def test_rerun_after_a_sigkill_repairs_every_drift_and_embeds_only_what_was_not(ingest, settings, corpus,
                                                                                 index_state, request):
    small = replace(settings, **SMALL_CHUNKS)
    seeded = ingest(small)
    collection = seeded["collection"]
    reverted, edited, deleted = corpus / "procedure-1.md", corpus / "procedure-5.md", corpus / "notes-3.txt"
    recorded = reverted.read_bytes()
    reverted.write_text(markdown_doc(1) + "\n## Later\n\n" + prose(901, 10) + "\n", encoding="utf-8")
    (corpus / "bulk").mkdir()
    for number in range(24):  # enough upserts for the kill to land in the middle of them
        (corpus / "bulk" / f"note-{number}.txt").write_text(prose(1000 + number, 8), encoding="utf-8")

    run = ragpipe_ingest(small, RAGPIPE_AZURE_SEARCH_ENDPOINT=small.azure_search_endpoint)
    while stored_point_count(small, collection, request) <= seeded["points"]:
        assert run.poll() is None, f"the run ended before it could be killed: {run.communicate()}"
        time.sleep(0.005)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    ensure_dagster_home(small.dagster_home)
    with DagsterInstance.get() as instance:  # as Dagster's run monitoring records a run whose process died,
        [killed] = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        instance.report_run_failed(killed)  # so its writer lease goes now, not when it expires

    ids, expected, rows = index_state(small)
    assert ids != expected  # the kill left drift behind
    incomplete = {s for s, r in rows.items() if r.indexed_doc_id and not own_point_ids(r) <= ids}
    removed = (ids - expected) | {i for s in incomplete for i in own_point_ids(rows[s]) & ids}

    reverted.write_bytes(recorded)
    deleted.unlink()
    edited.write_text(markdown_doc(55), encoding="utf-8")
    rerun = ingest(small)

    assert rerun["success"], rerun["errors"]
    ids, expected, rows = index_state(small)
    assert ids == expected  # zero orphan or stale points
    assert rerun["repaired"] == {"orphan_sources": rerun["repaired"]["orphan_sources"],
                                 "removed_points": len(removed), "incomplete_documents": len(incomplete)}
    assert rerun["repaired"]["orphan_sources"] >= 1
    assert rows[reverted.resolve().as_uri()].indexed_doc_id == rows[reverted.resolve().as_uri()].doc_id
    assert rows[deleted.resolve().as_uri()].status == "deleted"
    # the killed run embedded every chunk it had (its index stage had started): only text it
    # did not have, the edited document's, is embedded
    killed_texts = {embedding_text(json.loads(line)["payload"])
                    for batch in (Path(small.staging_root) / killed.run_id / "embeddings").glob("*.jsonl")
                    for line in batch.read_text(encoding="utf-8").splitlines()}
    edited_texts = {embedding_text(p) for p in payloads(small, collection).values()
                    if p["source"] == edited.resolve().as_uri()}
    assert rerun["embedded"] == len(edited_texts - killed_texts) > 0
    assert len(killed_texts) > 64  # more than one batch
    assert ingest(small)["upserted"] == 0


def test_a_run_after_a_clean_one_compares_every_point_only_when_counts_differ_or_asked(ingest, settings,
                                                                                       index_state):
    """The census reads every point of the index: the one cost of an unchanged rerun that grows
    with the index. After a run that released its writer lease (all its writes landed) and with
    the point counts agreeing there is nothing for it to find, and it is skipped. Drift that keeps
    the count is repaired by a census run (``ragpipe ingest --census``, the nightly reconcile's
    tag); drift that changes the count, by any run."""
    from qdrant_client import models

    from core.types import Point
    from pipelines.cli import run_ingest

    collection = ingest()["collection"]
    ids, expected, rows = index_state()
    swapped = min(ids)
    [swapped_row] = [row for row in rows.values() if swapped in own_point_ids(row)]

    def add_orphan(number: int) -> None:
        store = build_resources(settings)["vector_store"]
        vector = store.vectors(collection, [swapped])[swapped] if swapped in ids else [0.1] * 384
        store.upsert(collection, [Point(id=f"00000000-0000-4000-8000-{number:012d}", vector=vector,
                                        payload={"source": f"file:///gone-{number}.md", "doc_id": "x", "bucket": 0})])
        store.close()

    add_orphan(1)
    store = build_resources(settings)["vector_store"]
    store.client().delete(collection, points_selector=models.PointIdsList(points=[swapped]))
    store.close()
    nothing = {"orphan_sources": 0, "removed_points": 0, "incomplete_documents": 0}
    assert ingest()["repaired"] == nothing  # the count agrees: not compared

    census = run_ingest(settings, census=True)  # the orphan goes; the document missing a point is indexed again
    assert census["repaired"] == {"orphan_sources": 2, "removed_points": 1 + swapped_row.chunk_count - 1,
                                  "incomplete_documents": 1}
    ids, expected, _ = index_state()
    assert ids == expected and swapped in ids

    add_orphan(2)  # one point more than the ledger accounts for: found without asking
    assert ingest()["repaired"] == {"orphan_sources": 1, "removed_points": 1, "incomplete_documents": 0}
    assert index_state()[0] == expected
    assert ingest()["repaired"] == nothing


WITHOUT_FILE_CAPABILITIES = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--")


@pytest.mark.skipif(os.geteuid() != 0, reason="a non-root user cannot read a mode-000 folder anyway; "
                                               "run as root, the run below drops the capabilities that bypass it")
def test_an_unreadable_folder_keeps_its_documents_and_says_why(ingest, settings, corpus, index_state):
    first = ingest()
    ids_before, _, rows_before = index_state()
    (corpus / "pages").chmod(0)
    try:  # root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH: file modes apply to it like to anyone
        run = ragpipe_ingest(settings, prefix=WITHOUT_FILE_CAPABILITIES)
        out, err = run.communicate(timeout=300)
    finally:
        (corpus / "pages").chmod(0o755)
    assert run.returncode == 0, err
    summary = json.loads(out)
    pages = {s for s in rows_before if "/pages/" in s}
    assert summary["documents"]["unknown"] == len(pages) == 2
    assert summary["documents"]["deleted"] == 0 and summary["documents"]["unchanged"] == 6
    [part] = summary["unlisted"]
    assert part["part"] == (corpus / "pages").resolve().as_uri() + "/" and "Permission denied" in part["reason"]
    ids, expected, rows = index_state()
    assert ids == expected == ids_before and summary["points"] == first["points"]
    assert all(rows[s].status == "indexed" for s in pages)


def test_vector_index_alone_applies_no_older_manifest(ingest, settings, corpus, index_state, tmp_path):
    ingest()
    edited = corpus / "procedure-1.md"
    original = edited.read_bytes()
    edited.write_text(markdown_doc(1) + "\n## Addendum\n\n" + prose(77, 6) + "\n", encoding="utf-8")
    assert ingest()["documents"]["changed"] == 1  # its manifests are what the IO manager holds
    edited.write_bytes(original)
    # a newer run whose outputs live elsewhere (another deployment's IO storage)
    newer = ingest(io_manager=FilesystemIOManager(base_dir=str(tmp_path / "elsewhere")))
    assert newer["documents"]["changed"] == 1
    ids_before, expected, rows_before = index_state()
    assert ids_before == expected

    ensure_dagster_home(settings.dagster_home)
    with DagsterInstance.get() as instance:
        result = materialize([*INGESTION_ASSETS, *SCREENING_ASSETS], selection=["vector_index"],
                             resources=build_resources(settings), instance=instance, raise_on_error=False)
    ids_after, _, rows_after = index_state()
    assert ids_after == ids_before and rows_after == rows_before
    assert result.success
    materialization = result.asset_materializations_for_node("vector_index")[0]
    assert materialization.metadata["stale_manifest_skipped"].value is True


def test_pruned_staging_is_a_clear_error(tmp_path):
    staging = Staging(root=str(tmp_path))
    pruned = tmp_path / "r-old" / "chunks" / "batch-00000.jsonl"
    manifest = Manifest(stage="chunks", run_id="r-old", paths=[str(pruned)])
    with pytest.raises(FileNotFoundError, match="chunks batches of run r-old are gone.*whole ingest job"):
        next(staging.read(manifest))


def ingest_job():
    """The ingest job as a re-execution reconstructs it, from RAGPIPE_* variables."""
    return build_definitions(Settings.from_env()).resolve_job_def(INGEST_JOB)


def test_failure_budget_counts_the_logical_run_and_known_bad_files_back_off(settings, monkeypatch, ingest,
                                                                            index_state):
    import assets.ingestion.stages as stages

    real_parse, real_embed = stages.load_document, stages.embed_stage
    crashes = iter([True])

    def parse_or_fail(source, data, **options):
        if source.endswith(".txt"):
            raise OSError("disk read error")
        return real_parse(source, data, **options)

    def embed_crashing_once(*args, **kwargs):
        if next(crashes, False):
            raise ConnectionError("GPU node went away")
        return real_embed(*args, **kwargs)

    monkeypatch.setattr(stages, "load_document", parse_or_fail)
    monkeypatch.setattr(stages, "embed_stage", embed_crashing_once)
    monkeypatch.setenv("RAGPIPE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RAGPIPE_SOURCE_DIR", str(settings.source_dir))
    ensure_dagster_home(settings.dagster_home)
    with DagsterInstance.get() as instance:
        first = execute_job(reconstructable(ingest_job), instance=instance)
        assert not first.success  # the embeddings step crashed, after 2 of 8 documents failed to parse
        retried = execute_job(reconstructable(ingest_job), instance=instance,
                              reexecution_options=ReexecutionOptions.from_failure(first.run_id, instance))
        [budget] = [e.event_specific_data for e in retried.all_events
                    if e.event_type_value == "ASSET_CHECK_EVALUATION"
                    and e.event_specific_data.check_name == "failure_budget"]
    assert not budget.passed and not retried.success  # 2 of 8 (the logical run's), not 0 of 0
    assert (budget.metadata["failed"].value, budget.metadata["attempted"].value) == (2, 8)
    ids, expected, rows = index_state()  # the re-execution finished the logical run's work
    assert ids == expected and sum(r.status == "indexed" for r in rows.values()) == 6

    unchanged = ingest()  # the 2 known-bad files wait for their backoff
    assert unchanged["success"], unchanged["errors"]
    assert (unchanged["documents"]["deferred"], unchanged["documents"]["unchanged"]) == (2, 6)

    ledger = build_resources(settings)["ledger"]
    from resources.ledger import failures

    with ledger.engine().begin() as connection:  # the backoff passes
        connection.execute(sa.update(failures).values(last_failed_at=datetime.now(UTC) - RETRY_BACKOFF
                                                      - timedelta(seconds=1)))
    retry = ingest()
    assert (retry["documents"]["retry"], retry["documents"]["failed"]) == (2, 2)
    assert retry["success"], retry["errors"]  # failed again, but not for the first time: counted once
    version = retry["index_version"]
    records = Ledger(url=settings.ledger).failures(version, [s for s in ledger.rows(version)])
    assert sorted(r.attempts for r in records.values()) == [2, 2]
