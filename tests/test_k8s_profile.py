"""The k8s profile, offline: each step in its own pod (k8s_job_executor), so everything a step
writes or hands on is on servers every pod reaches — the Postgres ledger, a vector store server,
shared object storage — and a profile that would leave any of it on a pod's disk is refused.
Nothing here contacts those servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import EnvVar
from dagster_k8s import k8s_job_executor
from pydantic import BaseModel

from pipelines.definitions import DATA_CONNECTION_STRING_ENV, GOLDEN_SET_JOB, build_definitions
from pipelines.settings import GOLDEN_SETS, Settings
from resources import ObjectStoreIOManager, QdrantVectorStore
from resources.azure_search import AzureAISearchStore
from resources.settings import SettingsError
from tests.azurite import Azurite

REPO = Path(__file__).resolve().parent.parent
LEDGER = "postgresql+psycopg2://ragpipe@postgres.ragpipe.svc:5432/ragpipe"
DATA_URL = "az://ragpipe-data/prod"  # on Azurite, whose connection string names the account
STORES = {"qdrant_url": "http://qdrant.ragpipe.svc:6333",
          "azure_search_endpoint": "https://ragpipe.search.windows.net"}
K8S = {"profile": "k8s", "ledger_url": LEDGER, "data_url": DATA_URL,
       "blob_container": "documents", "blob_account_url": "https://docs.blob.core.windows.net"}


def resource_strings(resource) -> list[str]:
    """Every string a resource is configured with, nested models included."""
    if isinstance(resource, BaseModel):
        return [text for name in type(resource).model_fields for text in resource_strings(getattr(resource, name))]
    if isinstance(resource, list | tuple):
        return [text for item in resource for text in resource_strings(item)]
    if isinstance(resource, dict):
        return [text for item in resource.values() for text in resource_strings(item)]
    return [resource] if isinstance(resource, str) else []


@pytest.mark.parametrize("store", sorted(STORES))
def test_k8s_definitions_put_every_step_in_a_pod_and_its_state_on_shared_services(store, monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_CONNECTION_STRING_ENV, Azurite(10000, 10001).connection_string)
    settings = Settings(data_dir=tmp_path / "pod-disk", **K8S, **{store: STORES[store]})
    definitions = build_definitions(settings)
    resources = definitions.resources

    assert {job.name: job.executor_def for job in definitions.resolve_all_job_defs()} == {
        name: k8s_job_executor for name in ("__ASSET_JOB", "ingest", GOLDEN_SET_JOB, "promote_production", "rollback")}
    secret = EnvVar(DATA_CONNECTION_STRING_ENV)
    assert resources["io_manager"] == ObjectStoreIOManager(root=f"{DATA_URL}/storage", connection_string=secret)
    assert (resources["staging"].root, resources["staging"].connection_string) == (f"{DATA_URL}/staging", secret)
    assert (resources["evaluation_store"].root, resources["evaluation_store"].connection_string) == (
        f"{DATA_URL}/evaluations", secret)
    assert resources["ledger"].url == LEDGER
    if store == "qdrant_url":
        assert isinstance(resources["vector_store"], QdrantVectorStore)
        assert (resources["vector_store"].url, resources["vector_store"].path) == (STORES[store], "")
    else:
        assert isinstance(resources["vector_store"], AzureAISearchStore)
        assert resources["vector_store"].endpoint == STORES[store]
    golden = definitions.resolve_job_def(GOLDEN_SET_JOB).run_config["resources"]
    assert golden["staging"]["config"]["root"] == f"{DATA_URL}/namespaces/eval-sample/staging"
    assert golden["io_manager"]["config"] == {"root": f"{DATA_URL}/namespaces/eval-sample/storage",
                                              "connection_string": {"env": DATA_CONNECTION_STRING_ENV}}

    # The only local paths left are read-only inputs shipped in the image: the golden set.
    texts = [text for resource in resources.values() for text in resource_strings(resource)]
    local = [text for text in texts if os.path.isabs(text)]
    assert local and all(Path(text).is_relative_to(GOLDEN_SETS) for text in local), local
    assert not any(str(settings.data_path) in text or "sqlite" in text for text in texts)
    assert Azurite(10000, 10001).connection_string not in repr(texts) + repr(golden)
    assert not settings.data_path.exists()  # building the code location wrote nothing on the pod


MISSING = [
    ({"ledger_url": ""}, "RAGPIPE_LEDGER_URL"),
    ({"ledger_url": "sqlite:////data/ledger.sqlite"}, "RAGPIPE_LEDGER_URL"),
    ({"qdrant_url": ""}, "RAGPIPE_QDRANT_URL or RAGPIPE_AZURE_SEARCH_ENDPOINT"),
    ({"data_url": ""}, "RAGPIPE_DATA_URL"),
    ({"data_url": "/mnt/ragpipe"}, "RAGPIPE_DATA_URL"),
    ({"data_url": "memory://ragpipe"}, "RAGPIPE_DATA_URL"),
]


@pytest.mark.parametrize(("change", "variable"), MISSING, ids=[str(change) for change, _ in MISSING])
def test_the_k8s_profile_refuses_state_on_a_pods_disk(change, variable):
    complete = {**K8S, "qdrant_url": STORES["qdrant_url"]}
    Settings(**complete)
    with pytest.raises(SettingsError, match=variable):
        Settings(**{**complete, **change})
    Settings(**{**complete, **change, "profile": "production"})  # other profiles keep their local defaults


def test_k8s_settings_errors_from_the_environment_and_unknown_storage():
    with pytest.raises(SettingsError, match="RAGPIPE_LEDGER_URL"):
        Settings.from_env({"RAGPIPE_PROFILE": "k8s"})
    with pytest.raises(SettingsError, match="RAGPIPE_DATA_URL='nosuch://x'"):
        Settings.from_env({"RAGPIPE_DATA_URL": "nosuch://x"})


def test_a_pod_loads_the_k8s_code_location_from_its_environment(tmp_path):
    """What `dagster api execute_run` does in a step pod: import the module's `defs`, built from
    the pod's RAGPIPE_* variables."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("RAGPIPE_")}
    environment.update(RAGPIPE_PROFILE="k8s", RAGPIPE_LEDGER_URL=LEDGER, RAGPIPE_DATA_URL=DATA_URL,
                       RAGPIPE_AZURE_SEARCH_ENDPOINT=STORES["azure_search_endpoint"],
                       RAGPIPE_DATA_DIR=str(tmp_path / "pod-disk"), PYTHONPATH=str(REPO),
                       **{DATA_CONNECTION_STRING_ENV: Azurite(10000, 10001).connection_string})
    probe = ("from pipelines.definitions import defs; r = defs.resources; "
             "print(defs.resolve_job_def('ingest').executor_def.name, r['io_manager'].root, r['staging'].root, "
             "r['evaluation_store'].root, r['ledger'].url, type(r['vector_store']).__name__)")
    completed = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=environment, capture_output=True,
                               text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["k8s", f"{DATA_URL}/storage", f"{DATA_URL}/staging",
                                        f"{DATA_URL}/evaluations", LEDGER, "AzureAISearchStore"]
    assert not (tmp_path / "pod-disk").exists()
