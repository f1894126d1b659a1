"""Each step's Kubernetes Job, built offline the way dagster-k8s's ``k8s_job_executor`` builds it:
the executor's container context (image, env from the secret and config map, service account,
namespace) merged with the step's ``dagster-k8s/config`` op tags, then dagster-k8s's own
``construct_dagster_k8s_job`` with the step's real command and environment. The Jobs are checked
for placement and resources, and validated against the Kubernetes API schema.

What this does not prove: that the cluster has the pools, labels, taints and secrets named here
(deploy/ creates them), that the NVIDIA device plugin advertises the GPU, or that the pods start.
"""

from __future__ import annotations

from types import SimpleNamespace

import kubernetes_validate
import pytest
from dagster._core.definitions.op_definition import OpDefinition
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._grpc.types import ExecuteStepArgs
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import get_k8s_job_name
from kubernetes.utils import parse_quantity

from assets.placement import GPU_RESOURCE, GPU_TAINT_KEY, POOL_LABEL
from pipelines.definitions import build_definitions
from pipelines.settings import Settings
from tests.k8s_jobs import step_job, validate

PLACEMENT_TAG = "dagster-k8s/config"
RUN_ID = "5f6d2c1e-4b7a-4c8e-9d0f-1a2b3c4d5e6f"
IMAGE = "ragpipeacr.azurecr.io/ragpipe:1.0.0-cuda"
SECRET, CONFIG_MAP, SERVICE_ACCOUNT, NAMESPACE = "ragpipe-secrets", "ragpipe-env", "ragpipe", "ragpipe"
# The executor's run config, as the k8s profile would give it (``execution: config:``).
EXECUTOR_CONFIG = {"job_image": IMAGE, "image_pull_policy": "IfNotPresent", "env_secrets": [SECRET],
                   "env_config_maps": [CONFIG_MAP], "service_account_name": SERVICE_ACCOUNT, "job_namespace": NAMESPACE}
# What the executor reads from the K8sRunLauncher (the Dagster Helm chart's defaults).
RUN_LAUNCHER = SimpleNamespace(job_image=None, dagster_home="/opt/dagster/dagster_home",
                               instance_config_map="dagster-instance", postgres_password_secret="dagster-postgresql-secret")
K8S_ENV = {"RAGPIPE_PROFILE": "k8s", "RAGPIPE_DATA_URL": "abfs://ragpipe@ragpipedata.dfs.core.windows.net/data",
           "RAGPIPE_LEDGER_URL": "postgresql+psycopg2://ragpipe@postgres:5432/ragpipe",
           "RAGPIPE_QDRANT_URL": "http://qdrant:6333"}


def placed_step_job(job_name: str, step_key: str, tags: dict[str, str], origin) -> dict:
    """The Job ``K8sStepHandler.launch_step`` would create for this step, as the API receives it."""
    executor_context = K8sContainerContext(
        image_pull_policy=EXECUTOR_CONFIG["image_pull_policy"],
        service_account_name=EXECUTOR_CONFIG["service_account_name"],
        env_config_maps=EXECUTOR_CONFIG["env_config_maps"],
        env_secrets=EXECUTOR_CONFIG["env_secrets"],
        namespace=EXECUTOR_CONFIG["job_namespace"],
    )
    args = ExecuteStepArgs(job_origin=origin, run_id=RUN_ID, step_keys_to_execute=[step_key], should_verify_step=True)
    return step_job(
        executor_context, tags, EXECUTOR_CONFIG["job_image"], RUN_LAUNCHER,
        name=f"dagster-step-{get_k8s_job_name(RUN_ID, step_key)}",
        args=args.get_command_args(skip_serialized_namedtuple=True),
        labels={"dagster/job": job_name, "dagster/op": step_key, "dagster/run-id": RUN_ID,
                "dagster/code-location": "ragpipe"},
        env_vars=[*args.get_command_env(), {"name": "DAGSTER_RUN_JOB_NAME", "value": job_name},
                  {"name": "DAGSTER_RUN_STEP_KEY", "value": step_key}],
    )


@pytest.fixture(scope="module")
def definitions(tmp_path_factory):
    return build_definitions(Settings.from_env({**K8S_ENV, "RAGPIPE_DATA_DIR": str(tmp_path_factory.mktemp("data"))}))


@pytest.fixture(scope="module")
def step_jobs(definitions) -> dict[tuple[str, str], dict]:
    """Every job's every step, keyed (job, step), with the Job its pod would get. A step is an
    op node and carries the node's tags, as in the job's execution plan (which needs run config)."""
    repository = ReconstructableRepository.for_module("pipelines.definitions", "defs")
    jobs = {}
    for job in definitions.get_repository_def().get_all_jobs():
        origin = repository.get_reconstructable_job(job.name).get_python_origin()
        for handle in job.graph.iterate_node_handles():
            node = job.graph.get_node(handle)
            if isinstance(node.definition, OpDefinition):
                jobs[job.name, str(handle)] = placed_step_job(job.name, str(handle), node.tags, origin)
    return jobs


def pod_spec(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


def resources(job: dict) -> dict:
    (container,) = pod_spec(job)["containers"]
    return container["resources"]


def test_every_asset_and_op_states_its_placement(definitions, step_jobs):
    repository = definitions.get_repository_def()
    untagged = sorted({str(handle) for job in repository.get_all_jobs() for handle in job.graph.iterate_node_handles()
                       if PLACEMENT_TAG not in job.graph.get_node(handle).tags})
    assert untagged == [], f"steps without a {PLACEMENT_TAG} tag (see assets/placement.py): {untagged}"
    asset_steps = {assets_def.node_def.name for assets_def in repository.assets_defs_by_key.values()}
    assert asset_steps <= {step for _, step in step_jobs}
    assert "roll_back_alias" in {step for _, step in step_jobs}


def test_embedding_is_the_one_step_on_the_gpu_pool(step_jobs):
    on_gpu = {step for (_, step), job in step_jobs.items() if pod_spec(job)["nodeSelector"] != {POOL_LABEL: "cpu"}}
    assert on_gpu == {"embeddings"}
    for (_, step), job in step_jobs.items():
        if step == "embeddings":
            spec = pod_spec(job)
            assert spec["nodeSelector"] == {POOL_LABEL: "gpu"}
            assert spec["tolerations"] == [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
            assert GPU_RESOURCE not in {toleration["key"] for toleration in spec["tolerations"]}
            assert resources(job)["requests"][GPU_RESOURCE] == resources(job)["limits"][GPU_RESOURCE] == "1"


def test_every_other_step_is_sized_for_the_cpu_pool(step_jobs):
    for (job_name, step), job in step_jobs.items():
        if step == "embeddings":
            continue
        where = f"{job_name}/{step}"
        spec, sizes = pod_spec(job), resources(job)
        assert spec["nodeSelector"] == {POOL_LABEL: "cpu"}, where
        assert not spec.get("tolerations"), where
        assert set(sizes["requests"]) == set(sizes["limits"]) == {"cpu", "memory"}, where
        for name, request in sizes["requests"].items():
            assert parse_quantity(request) <= parse_quantity(sizes["limits"][name]), f"{where}: {name}"


def test_every_step_runs_the_image_with_the_secret_and_config_map(step_jobs):
    for (job_name, step), job in step_jobs.items():
        spec = pod_spec(job)
        (container,) = spec["containers"]
        assert (container["image"], spec["serviceAccountName"]) == (IMAGE, SERVICE_ACCOUNT)
        assert {"secretRef": {"name": SECRET}} in container["envFrom"]
        assert {"configMapRef": {"name": CONFIG_MAP}} in container["envFrom"]
        env = {variable["name"]: variable for variable in container["env"]}
        assert env["DAGSTER_RUN_STEP_KEY"]["value"] == step and env["DAGSTER_RUN_JOB_NAME"]["value"] == job_name
        assert "DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS" in env
        assert container["args"] == ["dagster", "api", "execute_step"]


def test_every_step_job_is_a_valid_kubernetes_job(step_jobs):
    for key, job in step_jobs.items():
        try:
            validate(job)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{key}: {error.message} at {'/'.join(map(str, error.path))}")
