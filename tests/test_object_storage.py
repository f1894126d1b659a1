"""State that survives pods: with RAGPIPE_DATA_URL set, step outputs, staged batches and
evaluation results live on shared object storage (a real Azurite here), and nothing a step
hands on is written to the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance, EnvVar, asset, materialize

from core.types import Manifest
from pipelines.definitions import DATA_CONNECTION_STRING_ENV
from pipelines.settings import Settings
from resources.evaluation_store import EvaluationStore
from resources.object_storage import ObjectStoreIOManager, is_pod_local, storage_path
from tests.conftest import blob_names


@asset
def upstream() -> Manifest:
    return Manifest(stage="chunks", run_id="r1", paths=["az://c/r1/chunks/batch-00000.jsonl"], count=3)


@asset
def downstream(upstream: Manifest) -> int:
    return upstream.count * 2


def test_step_outputs_round_trip_through_object_storage(data_url, azurite, tmp_path):
    """Dagster's UPath IO manager on adlfs: a later run (another pod) loads what an earlier one stored."""
    io_manager = ObjectStoreIOManager(root=f"{data_url}/storage", connection_string=EnvVar(DATA_CONNECTION_STRING_ENV))
    with DagsterInstance.ephemeral(tempdir=str(tmp_path)) as instance:
        first = materialize([upstream, downstream], resources={"io_manager": io_manager}, instance=instance)
        assert first.success
        assert blob_names(azurite, f"{data_url}/storage") == ["ragpipe/storage/downstream", "ragpipe/storage/upstream"]
        alone = materialize([upstream, downstream], selection=[downstream], resources={"io_manager": io_manager},
                            instance=instance)
    assert alone.success and alone.output_for_node("downstream") == 6
    assert azurite.connection_string not in repr(alone.all_events)
    path = storage_path(f"{data_url}/storage/upstream", EnvVar(DATA_CONNECTION_STRING_ENV))
    assert path.stat().st_size > 0 and not is_pod_local(str(path))


def test_evaluation_results_and_promotions_on_object_storage(data_url, azurite):
    store = EvaluationStore(root=f"{data_url}/evaluations", connection_string=EnvVar(DATA_CONNECTION_STRING_ENV))
    assert store.latest_summary("kb__v1", {}) is None and store.promotions("kb") == []
    questions = store.save_run("run-1", {"collection": "kb__v1", "golden_set": "sample", "recall": 0.5},
                               [{"id": "q1", "recall": 0.5}])
    store.save_run("run-2", {"collection": "kb__v1", "golden_set": "sample", "recall": 0.9}, [])
    store.save_run("run-3", {"collection": "kb__v1", "golden_set": "other", "recall": 0.1}, [])

    assert questions == f"{data_url}/evaluations/runs/run-1/questions.jsonl"
    assert storage_path(questions, EnvVar(DATA_CONNECTION_STRING_ENV)).read_text() == '{"id": "q1", "recall": 0.5}\n'
    assert store.latest_summary("kb__v1", {"golden_set": "sample"})["recall"] == 0.9
    store.record_promotion("kb", "kb__v1", "run-2", "gate passed")
    store.record_promotion("kb-eval-sample", "kb-eval-sample__v1", "run-4", "gate passed")
    store.record_promotion("kb", "kb__v0", "run-5", "rollback")
    assert [(p["collection"], p["reason"]) for p in store.promotions("kb")] == [
        ("kb__v1", "gate passed"), ("kb__v0", "rollback")]
    assert blob_names(azurite, f"{data_url}/evaluations") == [
        "ragpipe/evaluations/promotions.jsonl",
        *(f"ragpipe/evaluations/runs/run-{n}/{name}" for n in (1, 2, 3) for name in ("questions.jsonl", "summary.json")),
    ]


def test_an_azure_url_without_an_account_needs_a_connection_string():
    assert storage_path("az://data/p", "UseDevelopmentStorage=true").storage_options == {
        "connection_string": "UseDevelopmentStorage=true"}
    located = storage_path("abfs://data@acct.dfs.core.windows.net/p")
    assert located.storage_options == {"account_name": "acct", "anon": False}  # DefaultAzureCredential
    with pytest.raises(ValueError, match="names no storage account"):
        storage_path("az://data/p")


def test_ingest_writes_every_step_output_to_the_data_url(tmp_path, corpus, data_url, azurite):
    """The ingest job (Qdrant local mode: this is not the k8s profile) with RAGPIPE_DATA_URL on
    Azurite: its batches and step outputs are blobs, and the data directory holds none of them."""
    from pipelines.cli import run_ingest

    settings = Settings(data_dir=tmp_path / "data", source_dir=corpus, data_url=data_url)
    summary = run_ingest(settings)

    assert summary["success"], summary["errors"]
    assert summary["upserted"] > 0
    data = settings.data_path
    for local in (data / "staging", data / "evaluations", data / "namespaces"):
        assert not local.exists(), local
    # the local instance keeps its compute logs in its storage folder too: no step output is there
    assert {path.parent.name for path in (data / "dagster" / "storage").rglob("*") if path.is_file()} == {
        "compute_logs"}
    blobs = blob_names(azurite, data_url)
    run_id = summary["run_id"]
    stages = ("raw_documents", "clean_documents", "screened_documents", "chunks", "embeddings")
    assert {f"ragpipe/storage/{stage}" for stage in (*stages, "vector_index")} <= set(blobs)
    for stage in stages:
        assert f"ragpipe/staging/{run_id}/{stage}/batch-00000.jsonl" in blobs
    with DagsterInstance.get() as instance:  # the data directory's instance, which the run used
        run = instance.get_run_by_id(run_id)
        logs = instance.all_logs(run_id)
    assert azurite.connection_string not in repr(run.run_config) + repr(logs)
    again = run_ingest(settings)  # prunes on Azurite, then finds everything unchanged
    assert again["success"] and again["upserted"] == 0


def test_the_local_profile_keeps_its_data_directory_layout(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert (settings.staging_root, settings.storage_root, settings.evaluations_root) == (
        str(tmp_path / "staging"), str(tmp_path / "dagster" / "storage"), str(tmp_path / "evaluations"))
    assert settings.namespace_root("eval-sample") == str(tmp_path / "namespaces" / "eval-sample")
    assert all(Path(root).is_absolute() for root in (settings.staging_root, settings.storage_root))
