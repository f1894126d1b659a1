"""The Kubernetes launch path end to end, without a cluster.

A run of the ``ingest`` job is launched the way ``dagster job launch`` launches it (the code
location served by a gRPC code server, the run created from its snapshot and submitted to the
instance), through ``K8sRunLauncher`` configured in a real ``dagster.yaml`` against the Kubernetes
API contract server (tests/kube_api_server.py). The server runs the Job it receives as a local
process (``dagster api execute_run``, with the Job's env and env-from-secret), and the run's
events land in Dagster storage on a real PostgreSQL. In the k8s profile the run worker's
``k8s_job_executor`` creates one more Job per step through the same server.

What this does not prove: that a real scheduler places the pods (node pools, taints, GPU
requests are asserted on the Jobs, never enforced), that the image holds this code and starts
(the processes run from the repository with this venv), volumes or the instance ConfigMap mount
(the processes share this machine's DAGSTER_HOME), RBAC and service accounts, networking from a
pod to PostgreSQL or storage, and any Kubernetes API behaviour beyond the calls the contract
server serves.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from pipelines.settings import REPO_ROOT
from tests.azure_search_server import AzureSearchContractServer
from tests.conftest import blob_names
from tests.contract_http import self_signed
from tests.corpus import write_corpus
from tests.kube_api_server import Image, KubeApiServer

NAMESPACE = "ragpipe"
IMAGE = "ragpipe:contract"
SETTINGS_SECRET = "ragpipe-settings"
SECRET_COLLECTION = "fromsecret"  # RAGPIPE_COLLECTION, delivered to the run only through the secret
RUN_TIMEOUT_S = 120
STEPS_RUN_TIMEOUT_S = 420  # one process per step, each importing dagster and torch


@pytest.fixture
def kube(tmp_path: Path):
    """The contract server; its one image runs this repository with this venv, like deploy/Dockerfile."""
    image = Image(env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT),
                       "HOME": os.environ.get("HOME", "/root"), "PYTHONUNBUFFERED": "1"},
                  working_dir=REPO_ROOT)
    with KubeApiServer({IMAGE: image}, namespaces=("default", NAMESPACE)) as server:
        yield server


def write_instance(home: Path, postgres_url: str, kubeconfig: Path, env_vars: list[str]) -> Path:
    """A Dagster instance as the Helm chart's ConfigMap would hold it: Postgres storage, K8sRunLauncher."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(json.dumps({
        "storage": {"postgres": {"postgres_url": postgres_url}},
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": {
            "load_incluster_config": False, "kubeconfig_file": str(kubeconfig),
            "job_namespace": NAMESPACE, "job_image": IMAGE, "image_pull_policy": "IfNotPresent",
            "service_account_name": "ragpipe-run", "instance_config_map": "dagster-instance",
            "dagster_home": str(home), "env_secrets": [SETTINGS_SECRET], "env_vars": env_vars,
            "labels": {"app.kubernetes.io/part-of": "ragpipe"},
        }},
        # the Helm chart queues runs for the daemon; here submission launches at once
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
        "telemetry": {"enabled": False},
    }), encoding="utf-8")
    return home


def configure_launch(tmp_path: Path, monkeypatch, kube: KubeApiServer, postgres_url: str,
                     settings_env: dict[str, str], secret: dict[str, str]) -> Path:
    """Deliver settings as the Helm values would: plain variables on the K8sRunLauncher, which passes
    them (and its env-from secret) to every Job it and ``k8s_job_executor`` create, and to this
    process, whose code server sees what the pods see; ``secret`` only in the Kubernetes secret.
    Returns DAGSTER_HOME, set for this process."""
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    kube.add_secret(NAMESPACE, SETTINGS_SECRET, secret)
    home = write_instance(tmp_path / "dagster_home", postgres_url, kube.kubeconfig(tmp_path / "kubeconfig"),
                          [f"{name}={value}" for name, value in settings_env.items()])
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def launch(instance, job_name: str):
    """Create and submit a run as ``dagster job launch -m pipelines.definitions -j <job>`` does."""
    from dagster._cli.job import execute_launch_command
    from dagster_shared.cli import WorkspaceOpts

    return execute_launch_command(instance=instance, job_name=job_name, workspace_opts=WorkspaceOpts(
        module_name=("pipelines.definitions",), working_directory=str(REPO_ROOT)))


def wait_for_run_worker(instance, run_id: str, kube: KubeApiServer, timeout_s: float = RUN_TIMEOUT_S):
    """Poll the run worker's Job through the launcher (``read_namespaced_job_status``) until it finishes."""
    from dagster._core.launcher import WorkerStatus

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = instance.run_launcher.check_run_worker_health(instance.get_run_by_id(run_id))
        if health.status in (WorkerStatus.SUCCESS, WorkerStatus.FAILED):
            return health
        time.sleep(0.5)
    raise AssertionError(f"run worker still running after {timeout_s}s\n{kube.logs()}")


def postgres_events(postgres_url: str, run_id: str) -> list[tuple[str, str | None]]:
    """(event type, asset key) of the run's events, read straight from Postgres."""
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(
                "SELECT dagster_event_type, asset_key FROM event_logs WHERE run_id = :run_id ORDER BY id"),
                {"run_id": run_id})]
    finally:
        engine.dispose()


def test_run_launched_through_k8s_run_launcher_completes_into_postgres(
        tmp_path, monkeypatch, kube, postgres_url):
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus

    data_dir, corpus = tmp_path / "data", write_corpus(tmp_path / "corpus", count=3)
    settings_env = {"RAGPIPE_DATA_DIR": str(data_dir), "RAGPIPE_SOURCE_DIR": str(corpus)}
    home = configure_launch(tmp_path, monkeypatch, kube, postgres_url, settings_env,
                            {"RAGPIPE_COLLECTION": SECRET_COLLECTION})

    with DagsterInstance.get() as instance:
        run = launch(instance, "ingest")
        health = wait_for_run_worker(instance, run.run_id, kube)
        finished = instance.get_run_by_id(run.run_id)
        assert finished.status == DagsterRunStatus.SUCCESS, kube.logs()
        assert health.status.value == "SUCCESS"
        index = instance.get_latest_materialization_event(AssetKey("vector_index")).asset_materialization

    events = postgres_events(postgres_url, run.run_id)
    assert ("ASSET_MATERIALIZATION", '["vector_index"]') in events
    assert ("PIPELINE_SUCCESS", None) in events
    # RAGPIPE_COLLECTION reached the run only through the Job's envFrom secret
    assert index.metadata["collection"].value.startswith(f"{SECRET_COLLECTION}__")
    assert index.metadata["points"].value > 0

    [job] = kube.created_jobs
    metadata, pod = job["metadata"], job["spec"]["template"]
    assert metadata["labels"]["dagster/run-id"] == run.run_id
    assert metadata["labels"]["dagster/job"] == "ingest"
    assert metadata["labels"]["app.kubernetes.io/component"] == "run_worker"
    assert pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ragpipe"
    [container] = pod["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["args"][:3] == ["dagster", "api", "execute_run"]
    assert {"secretRef": {"name": SETTINGS_SECRET}} in container["envFrom"]
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    assert env["DAGSTER_HOME"] == str(home)
    assert {name: env[name] for name in settings_env} == settings_env
    assert pod["spec"]["serviceAccountName"] == "ragpipe-run"
    assert SECRET_COLLECTION not in json.dumps(job)  # by reference only


@pytest.fixture
def search_over_https(tmp_path: Path):
    """The Azure AI Search contract server over HTTPS (the admin key travels only over TLS), with a
    key of its own: finding it anywhere means it leaked."""
    with AzureSearchContractServer(admin_key=secrets.token_urlsafe(24), certificate=self_signed(tmp_path)) as server:
        yield server


def postgres_text(postgres_url: str) -> str:
    """Every row of Dagster's run and event tables as text."""
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            return "\n".join(row for table in ("runs", "event_logs")
                             for row in connection.execute(sa.text(f"SELECT t::text FROM {table} t")).scalars())
    finally:
        engine.dispose()


def test_a_k8s_profile_run_executes_each_step_in_its_own_job(
        tmp_path, monkeypatch, kube, postgres_url, azurite, data_url, search_over_https):
    """The same launch path with the run worker in the k8s profile: ``k8s_job_executor`` (kube
    config from the K8sRunLauncher) creates one Job per step through the contract server, and each
    step process rebuilds the code location from its own environment. Step outputs and staged
    batches go to Azurite under RAGPIPE_DATA_URL, the ledger to Postgres, the index to the Azure AI
    Search contract server over HTTPS; the data connection string and the search key reach the
    pods only through the secret the Jobs take env from.

    What this does not prove, beyond the module's list: that a GPU node runs the embedding step
    (the pods all run here on the CPU; placement is asserted on the Jobs), that steps in separate
    pods share nothing but the services (they share this machine's disk: the source folder and
    DAGSTER_HOME's compute logs live there, only the data folder is checked to stay empty),
    Workload Identity (the connection string stands in), and step retries or concurrent steps.
    """
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus

    from assets.placement import GPU_RESOURCE, GPU_TAINT_KEY, POOL_LABEL
    from pipelines.definitions import AZURE_SEARCH_KEY_ENV, DATA_CONNECTION_STRING_ENV
    from resources.azure_search import index_name
    from tests.azurite import ACCOUNT_KEY

    search = search_over_https
    data_dir, corpus = tmp_path / "data", write_corpus(tmp_path / "corpus", count=3)
    settings_env = {"RAGPIPE_PROFILE": "k8s", "RAGPIPE_LEDGER_URL": postgres_url, "RAGPIPE_DATA_URL": data_url,
                    "RAGPIPE_AZURE_SEARCH_ENDPOINT": search.endpoint, "REQUESTS_CA_BUNDLE": str(search.certificate),
                    "RAGPIPE_DATA_DIR": str(data_dir), "RAGPIPE_SOURCE_DIR": str(corpus)}
    secret = {DATA_CONNECTION_STRING_ENV: azurite.connection_string, AZURE_SEARCH_KEY_ENV: search.admin_key}
    configure_launch(tmp_path, monkeypatch, kube, postgres_url, settings_env, secret)

    with DagsterInstance.get() as instance:
        run = launch(instance, "ingest")
        wait_for_run_worker(instance, run.run_id, kube, timeout_s=STEPS_RUN_TIMEOUT_S)
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.SUCCESS, kube.logs()
        steps = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id).step_keys_to_execute
        index = instance.get_latest_materialization_event(AssetKey("vector_index")).asset_materialization

    step_jobs = [job for job in kube.created_jobs
                 if job["metadata"]["labels"]["app.kubernetes.io/component"] == "step_worker"]
    by_op = {job["metadata"]["labels"]["dagster/op"]: job for job in step_jobs}
    assert len(step_jobs) == len(steps) and sorted(by_op) == sorted(steps) and "embeddings" in steps
    for op, job in by_op.items():
        assert job["metadata"]["labels"]["dagster/run-id"] == run.run_id
        pod = job["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["args"][:3] == ["dagster", "api", "execute_step"]
        assert {"secretRef": {"name": SETTINGS_SECRET}} in container["envFrom"]
        env = {variable["name"]: variable.get("value") for variable in container["env"]}
        assert {name: env[name] for name in settings_env} == settings_env, op
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        tolerated = {toleration["key"] for toleration in pod.get("tolerations", [])}
        if op == "embeddings":
            assert (requests[GPU_RESOURCE], limits[GPU_RESOURCE]) == ("1", "1")
            assert pod["nodeSelector"] == {POOL_LABEL: "gpu"} and GPU_TAINT_KEY in tolerated
        else:
            assert GPU_RESOURCE not in requests and GPU_RESOURCE not in limits, op
            assert pod["nodeSelector"] == {POOL_LABEL: "cpu"} and GPU_TAINT_KEY not in tolerated, op

    secret_values = [*secret.values(), ACCOUNT_KEY]
    bodies, stored = json.dumps(kube.created_jobs), postgres_text(postgres_url)
    assert run.run_id in stored and ("PIPELINE_SUCCESS", None) in postgres_events(postgres_url, run.run_id)
    assert not [value for value in secret_values if value in bodies or value in stored]

    collection = index.metadata["collection"].value
    documents = search.indexes[index_name(collection)].documents
    assert len(documents) == index.metadata["points"].value > 0
    assert {document["source"] for document in documents.values()} == {
        path.as_uri() for path in corpus.rglob("*") if path.is_file()}
    prefix = urlsplit(data_url).path.strip("/")
    assert blob_names(azurite, f"{data_url}/storage") == sorted(f"{prefix}/storage/{step}" for step in steps)
    batches = blob_names(azurite, f"{data_url}/staging/{run.run_id}")
    staged = {name.split("/")[3] for name in batches if name.endswith(".jsonl")}  # <prefix>/staging/<run>/<step>/
    assert staged == set(steps) - {"vector_index", "quarantine"}  # each stage's batches, read by the next pod
    assert not data_dir.exists()


def test_deleting_a_job_and_its_pods_stops_the_process(kube, tmp_path):
    """What ``K8sRunLauncher.terminate`` relies on: ``delete_job`` finds the Job's pods by the
    ``job-name`` label, deletes the Job (orphaning its pods) and each pod, and the process stops."""
    import kubernetes
    from dagster_k8s.client import DagsterKubernetesClient
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job

    kubernetes.config.load_kube_config(str(kube.kubeconfig(tmp_path / "kubeconfig")))
    client = DagsterKubernetesClient.production_client()
    marker = tmp_path / "started"
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image=IMAGE, dagster_home=None, instance_config_map="dagster-instance",
                            env_secrets=["absent"]),
        ["python", "-c", f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(60)"],
        "dagster-run-sleeper")
    client.create_namespaced_job_with_retries(body=job, namespace=NAMESPACE)
    [pod] = client.get_pods_in_job("dagster-run-sleeper", NAMESPACE)
    assert pod.status.phase == "Pending"  # the secret it takes env from does not exist
    assert pod.status.container_statuses[0].state.waiting.reason == "CreateContainerConfigError"
    assert client.delete_job("dagster-run-sleeper", NAMESPACE)

    kube.add_secret(NAMESPACE, "absent", {})
    client.create_namespaced_job_with_retries(body=job, namespace=NAMESPACE)
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get_job_status("dagster-run-sleeper", NAMESPACE).active == 1
    [pod] = client.get_pods_in_job("dagster-run-sleeper", NAMESPACE)
    process = kube.process(NAMESPACE, pod.metadata.name)
    assert client.delete_job("dagster-run-sleeper", NAMESPACE)
    assert process.wait(timeout=5) == -signal.SIGTERM
    assert client.get_job_status("dagster-run-sleeper", NAMESPACE) is None
    assert client.get_pods_in_job("dagster-run-sleeper", NAMESPACE) == []
