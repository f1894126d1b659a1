"""The code location as `dagster dev` loads it: six ingestion assets wired in order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dagster import AssetKey

REPO = Path(__file__).resolve().parent.parent
STAGES = ["raw_documents", "clean_documents", "screened_documents", "chunks", "embeddings", "vector_index"]


def test_ingestion_assets_are_a_chain_with_descriptions_and_kinds():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    for upstream, name in zip([None, *STAGES], STAGES):
        node = graph.get(AssetKey(name))
        assert node.group_name == "ingestion"
        assert len(node.description) > 40
        assert node.kinds and "python" in node.kinds
        parents = {key.to_user_string() for key in node.parent_keys}
        assert parents == ({upstream} if upstream else set())
    assert {c.name for c in graph.get(AssetKey("vector_index")).check_keys} == {
        "failure_budget", "index_matches_ledger"
    }
    assert defs.resolve_job_def("ingest") is not None


def test_the_golden_set_job_runs_in_the_golden_sets_namespace_and_production_in_none():
    """What the UI launches: each job's default run config."""
    from pipelines.definitions import GOLDEN_SET_JOB, PRODUCTION_JOB, defs
    from pipelines.settings import GOLDEN_SETS

    resources = defs.resolve_job_def(GOLDEN_SET_JOB).run_config["resources"]
    assert resources["ingestion_settings"]["config"]["namespace"] == "eval-sample"
    assert "source" not in resources
    assert defs.resources["golden_corpus"].root == str(GOLDEN_SETS / "sample" / "corpus")
    assert resources["staging"]["config"]["root"].endswith("/namespaces/eval-sample/staging")
    assert resources["io_manager"]["config"]["root"].endswith("/namespaces/eval-sample/storage")
    assert not defs.resolve_job_def(PRODUCTION_JOB).run_config


def test_code_location_loads_from_pyproject():
    """`dagster definitions validate` reads [tool.dagster] from pyproject.toml, as `dagster dev` does."""
    dagster = Path(sys.executable).with_name("dagster")
    completed = subprocess.run([str(dagster), "definitions", "validate"], cwd=REPO,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]


def test_queued_runs_write_one_collection_at_a_time(tmp_path, monkeypatch):
    """UI, schedule and sensor runs go through the instance's run queue: its tag limit lets one
    run per collection start; the ledger's writer lease covers the runs that bypass it."""
    from dagster import DagsterInstance

    from pipelines.definitions import build_definitions
    from pipelines.instance import COLLECTION_TAG, ensure_dagster_home
    from pipelines.settings import Settings

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # restored after the test; set again below
    ensure_dagster_home(tmp_path / "dagster")
    with DagsterInstance.get() as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": COLLECTION_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    settings = Settings(data_dir=tmp_path, collection="handbook")
    definitions = build_definitions(settings)
    for job in ("ingest", "promote_production"):
        assert definitions.resolve_job_def(job).tags[COLLECTION_TAG] == "handbook"
    golden = definitions.resolve_job_def("evaluate_golden_set").tags[COLLECTION_TAG]
    assert golden == f"handbook-{settings.golden_namespace}"
