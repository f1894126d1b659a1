"""deploy/ checked offline: no Docker engine, Helm, Terraform or cluster runs here.

The Helm values are turned into what the chart would hand dagster-k8s (the run launcher's config
and the code location's container context), validated by dagster-k8s's own config schemas, merged
with each step's placement tags as the k8s job executor merges them, built into the exact step
Job with ``construct_dagster_k8s_job`` and validated against the Kubernetes schemas. What this
does not prove: that the chart renders these values as assumed (its templates are read, not run),
that the image builds, or that the Terraform applies (its text is checked against placement.py).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy
import yaml
from dagster._config import process_config
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import UserDefinedDagsterK8sConfig
from dagster_postgres.utils import get_conn_string

from assets.placement import GPU_RESOURCE, GPU_STEP, GPU_TAINT_KEY, HEAVY_CPU_STEP, LIGHT_CPU_STEP, POOL_LABEL
from pipelines.instance import COLLECTION_TAG
from pipelines.settings import Settings
from tests.k8s_jobs import step_job, validate

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SPOT_TAINT = ("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule")
# Words in a variable name that make its value a secret: such variables come from a Secret.
SECRET_WORDS = ("KEY", "PASSWORD", "SECRET", "TOKEN", "SALT", "CONNECTION_STRING", "LEDGER_URL")


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


@pytest.fixture(scope="module")
def code_location(values) -> dict:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


@pytest.fixture(scope="module")
def env(code_location) -> dict[str, dict]:
    return {item["name"]: item for item in code_location["env"]}


# --- Kubernetes manifests ------------------------------------------------------------------

def test_every_manifest_in_deploy_validates():
    manifests = [document for path in sorted(DEPLOY.rglob("*.yaml")) if path.parent.name != "helm"
                 for document in yaml.safe_load_all(path.read_text()) if document]
    assert manifests, "deploy/k8s holds the namespace manifest"
    for manifest in manifests:
        validate(manifest)


def test_namespace_is_the_one_runs_launch_into(values):
    namespace = yaml.safe_load((DEPLOY / "k8s" / "namespace.yaml").read_text())
    assert namespace["metadata"]["name"] == values["runLauncher"]["config"]["k8sRunLauncher"]["jobNamespace"]


# --- Helm values: secrets, settings, run queue ---------------------------------------------

def test_values_reference_secrets_by_name_only(values, env):
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["postgresql"]["enabled"] is False
    assert "postgresqlPassword" not in values["postgresql"]
    for name, item in env.items():
        if any(word in name for word in SECRET_WORDS):
            assert set(item) == {"name", "valueFrom"}, f"{name} must come from a Secret"
            assert set(item["valueFrom"]["secretKeyRef"]) == {"name", "key"}

    def walk(node, path=""):
        if isinstance(node, dict):
            for key, child in node.items():
                if re.search(r"password|secret|token|apikey", key, re.IGNORECASE) and isinstance(child, str):
                    assert key.endswith("SecretName"), f"{path}.{key} holds a literal value"
                walk(child, f"{path}.{key}")
        elif isinstance(node, list):
            for child in node:
                walk(child, path)

    walk(values)


def test_dagster_storage_url_from_the_values_loads_an_installed_driver(values):
    """dagster-postgres builds its URL from the chart's postgresql values; SQLAlchemy 2.1 reads a
    bare postgresql:// as psycopg 3, which is not installed. create_engine imports the DBAPI and
    does not connect."""
    postgresql = values["postgresql"]
    url = get_conn_string(username=postgresql["postgresqlUsername"], password="dummy",
                          hostname=postgresql["postgresqlHost"], db_name=postgresql["postgresqlDatabase"],
                          port=str(postgresql["service"]["port"]), params=postgresql["postgresqlParams"],
                          scheme=postgresql.get("postgresqlScheme", "postgresql"))
    engine = sqlalchemy.create_engine(url)
    assert engine.dialect.driver == "psycopg2"


def test_env_names_are_declared_settings_the_k8s_profile_accepts(env):
    declared = {item.metadata["setting"].env for item in fields(Settings)}
    assert set(env) <= declared, set(env) - declared
    assert env["RAGPIPE_PROFILE"]["value"] == "k8s"
    # What the Secret holds, in the form the k8s profile requires.
    stand_ins = {"RAGPIPE_LEDGER_URL": "postgresql+psycopg2://ragpipe@ledger.example/ragpipe"}
    settings = Settings.from_env({name: item.get("value") or stand_ins[name] for name, item in env.items()})
    assert settings.production and settings.shards == int(env["RAGPIPE_SHARDS"]["value"])


def test_run_queue_runs_one_run_per_shard_and_every_shard_at_once(values, env):
    """The collection tag's value names the shard, so a limit of 1 per value keeps two runs of
    one shard apart while the shards of a backfill run side by side."""
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    (limit,) = queued["tagConcurrencyLimits"]
    assert limit["key"] == COLLECTION_TAG
    assert limit["value"] == {"applyLimitPerUniqueValue": True}
    assert limit["limit"] == 1
    assert queued["maxConcurrentRuns"] >= int(env["RAGPIPE_SHARDS"]["value"])


def test_telemetry_off_and_one_workload_identity(values, code_location):
    assert values["telemetry"]["enabled"] is False
    assert values["global"]["serviceAccountName"] == values["serviceAccount"]["name"]
    assert "azure.workload.identity/client-id" in values["serviceAccount"]["annotations"]
    assert code_location["labels"] == {"azure.workload.identity/use": "true"}


# --- Helm values to the exact step Jobs ------------------------------------------------------

@pytest.fixture(scope="module")
def launcher_context(values) -> K8sContainerContext:
    """The K8sRunLauncher as the chart configures it (templates/helpers/instance/_run-launcher.tpl),
    through dagster-k8s's config schema."""
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s = launcher["runK8sConfig"]
    config = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "job_namespace": launcher["jobNamespace"],
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": values["global"]["serviceAccountName"],
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": "ragpipe-dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "env_secrets": [secret["name"] for secret in launcher["envSecrets"]],
        "volume_mounts": launcher["volumeMounts"],
        "volumes": launcher["volumes"],
        "labels": launcher["labels"],
        "run_k8s_config": {"container_config": run_k8s["containerConfig"],
                           "pod_spec_config": run_k8s["podSpecConfig"],
                           "job_spec_config": run_k8s["jobSpecConfig"]},
    }
    processed = process_config(K8sRunLauncher.config_type(), config)
    assert processed.success, processed.errors
    value = processed.value
    return K8sContainerContext(
        service_account_name=value["service_account_name"], env_secrets=value["env_secrets"],
        volume_mounts=value["volume_mounts"], volumes=value["volumes"], labels=value["labels"],
        namespace=value["job_namespace"],
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(value["run_k8s_config"]))


@pytest.fixture(scope="module")
def location_context(values, code_location) -> K8sContainerContext:
    """What includeConfigInLaunchedRuns hands every run and step of the code location
    (charts/dagster-user-deployments, dagsterUserDeployments.k8sContainerContext)."""
    return K8sContainerContext.create_from_config({"k8s": {
        "image_pull_policy": code_location["image"]["pullPolicy"],
        "env_secrets": [secret["name"] for secret in code_location["envSecrets"]],
        "volume_mounts": code_location["volumeMounts"],
        "volumes": code_location["volumes"],
        "labels": code_location["labels"],
        "resources": code_location["resources"],
        "namespace": values["runLauncher"]["config"]["k8sRunLauncher"]["jobNamespace"],
        "service_account_name": values["global"]["serviceAccountName"],
        "env": code_location["env"],
    }})


def values_step_job(launcher_context, location_context, values, tags: dict) -> dict:
    """The step Job the k8s job executor would create for a step with these op tags (a step's
    tags arrive as strings: Dagster serialises dict-valued op tags to JSON)."""
    launcher = SimpleNamespace(job_image=None, dagster_home="/opt/dagster/dagster_home",
                               instance_config_map="ragpipe-dagster-instance",
                               postgres_password_secret=values["global"]["postgresqlSecretName"])
    return step_job(launcher_context.merge(location_context), {key: json.dumps(value) for key, value in tags.items()},
                    "ragpipeacr.azurecr.io/ragpipe:test-cuda", launcher, name="dagster-step-test",
                    args=["dagster", "api", "execute_step"])


@pytest.mark.parametrize("tags, pool", [(GPU_STEP, "gpu"), (HEAVY_CPU_STEP, "cpu"), (LIGHT_CPU_STEP, "cpu")],
                         ids=["gpu", "heavy-cpu", "light-cpu"])
def test_step_jobs_from_the_values_land_on_their_pool(launcher_context, location_context, values, tags, pool):
    job = values_step_job(launcher_context, location_context, values, tags)
    validate(job)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {POOL_LABEL: pool}
    tolerated = {(toleration["key"], toleration.get("effect")) for toleration in pod.get("tolerations", [])}
    assert ((GPU_TAINT_KEY, "NoSchedule") in tolerated) == (pool == "gpu")
    assert (SPOT_TAINT[0], SPOT_TAINT[2]) in tolerated
    (container,) = pod["containers"]
    expected = tags["dagster-k8s/config"]["container_config"]["resources"]
    assert container["resources"] == expected
    assert (GPU_RESOURCE in container["resources"]["limits"]) == (pool == "gpu")
    assert pod["serviceAccountName"] == "ragpipe"
    assert job["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"


def test_step_pods_run_as_the_image_user_on_a_read_only_root(launcher_context, location_context, values,
                                                             dockerfile):
    job = values_step_job(launcher_context, location_context, values, GPU_STEP)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    uid, gid = (int(part) for part in dockerfile["runtime"]["USER"][0].split(":"))
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    image_env = dict(item.split("=", 1) for item in shlex.split(" ".join(dockerfile["runtime"]["ENV"])))
    for path in ("/tmp", image_env["DAGSTER_HOME"], image_env["HOME"]):
        assert "emptyDir" in volumes[mounts[path]], path
    env = {item["name"]: item for item in container["env"]}
    assert env["RAGPIPE_LEDGER_URL"]["valueFrom"]["secretKeyRef"] == {"name": "ragpipe-ledger", "key": "url"}
    assert {"secretRef": {"name": "ragpipe-secrets"}} in container["envFrom"]


# --- Dockerfile -----------------------------------------------------------------------------

def parse_dockerfile(text: str) -> tuple[dict[str, str], dict[str, dict[str, list[str]]]]:
    """Global ARG defaults, and each stage's base ("FROM") and instructions by keyword."""
    lines = re.sub(r"\\\n\s*", " ", text).splitlines()
    instructions = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    args: dict[str, str] = {}
    stages: dict[str, dict[str, list[str]]] = {}
    stage = None
    for instruction in instructions:
        keyword, _, rest = instruction.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = re.sub(r"\s+AS\s+", " AS ", rest, flags=re.IGNORECASE).partition(" AS ")
            stage = stages.setdefault(name.strip(), {"FROM": [base.strip()]})
        elif stage is None and keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
        elif stage is not None:
            stage.setdefault(keyword, []).append(rest)
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, dict[str, list[str]]]:
    args, stages = parse_dockerfile((DEPLOY / "Dockerfile").read_text())
    return {"ARG": args, **stages}


def stage_base(dockerfile: dict, name: str, variant: str) -> str:
    """The image a stage builds on for a VARIANT, its FROM's build args expanded and stage aliases followed."""
    args = dockerfile["ARG"] | {"VARIANT": variant}
    base = re.sub(r"\$\{(\w+)\}", lambda match: args[match.group(1)], dockerfile[name]["FROM"][0])
    return stage_base(dockerfile, base, variant) if base in dockerfile else base


@pytest.mark.parametrize("variant", ["cpu", "cuda"])
def test_each_variant_builds_on_pinned_bases_and_its_own_torch(dockerfile, variant):
    expected = r"nvidia/cuda:\d+\.\d+\.\d+-runtime-ubuntu\d+\.\d+" if variant == "cuda" else r"debian:\w+-slim"
    runtime_base = stage_base(dockerfile, "runtime", variant)
    assert re.fullmatch(expected, runtime_base), runtime_base
    for name in dockerfile.keys() - {"ARG"}:
        base = stage_base(dockerfile, name, variant)
        if base != "scratch":
            image, _, tag = base.rpartition(":")
            assert image and tag and tag != "latest", f"stage {name}: unpinned base {base}"
    torch_stage = re.sub(r"\$\{VARIANT\}", variant, dockerfile["app"]["FROM"][0])
    (install,) = dockerfile[torch_stage]["RUN"]
    assert ("--index-url https://download.pytorch.org/whl/cpu" in install) == (variant == "cpu")
    assert install.endswith(' "torch==${TORCH_VERSION}"')
    pinned_torch = re.search(r'"torch==([^"]+)"', (DEPLOY.parent / "pyproject.toml").read_text()).group(1)
    assert dockerfile["ARG"]["TORCH_VERSION"] == pinned_torch


def test_runtime_stage_is_non_root_offline_and_installs_nothing_at_start(dockerfile):
    assert list(dockerfile)[-1] == "runtime", "the last stage: the default build target"
    assert dockerfile["ARG"]["VARIANT"] == "cpu"
    stage = dockerfile["runtime"]
    (user,) = stage["USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0
    # COPY --from does not expand build args in every BuildKit version; the variant comes through FROM.
    assert {line.split()[0] for line in stage["COPY"]} == {"--from=app"}
    env = dict(item.split("=", 1) for item in shlex.split(" ".join(stage["ENV"])))
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PYTHONDONTWRITEBYTECODE", "DAGSTER_DISABLE_TELEMETRY"):
        assert env[name] == "1", name
    start = " ".join(stage.get("CMD", []) + stage.get("ENTRYPOINT", []))
    assert not re.search(r"\b(pip|uv|apt|apt-get|curl|wget|conda)\b", start)
    (cmd,) = stage["CMD"]
    assert json.loads(cmd) == ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "3030",
                               "-m", "pipelines.definitions"]
    assert any(run.startswith("--network=none ") for run in stage["RUN"]), "the offline smoke check"


# --- Terraform --------------------------------------------------------------------------------

def hcl_block(text: str, header: str) -> str:
    """The body of the block that starts with ``header`` (braces matched; no HCL parser here)."""
    opening = text.index("{", text.index(header))
    depth = 0
    for position in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[position], 0)
        if depth == 0:
            return text[opening + 1:position]
    raise ValueError(f"unbalanced block {header}")


@pytest.fixture(scope="module")
def terraform() -> str:
    text = "\n".join(path.read_text() for path in sorted((DEPLOY / "terraform").glob("*.tf")))
    locals_ = dict(re.findall(r'^\s*(\w+)\s*=\s*"([^"]*)"', hcl_block(text, "locals"), re.MULTILINE))
    return re.sub(r"\(?local\.(\w+)\)?", lambda match: f'"{locals_[match.group(1)]}"', text)


def node_pool(terraform: str, name: str) -> tuple[dict[str, str], list[str], str]:
    body = hcl_block(terraform, f'resource "azurerm_kubernetes_cluster_node_pool" "{name}"')
    labels = dict(re.findall(r'"([^"]+)"\s*=\s*"([^"]*)"', hcl_block(body, "node_labels"))) \
        if "node_labels" in body else {}
    taints = re.findall(r'"([^"]+)"', re.search(r"node_taints\s*=\s*\[([^]]*)]", body).group(1)) \
        if "node_taints" in body else []
    return labels, taints, body


def tf_default(terraform: str, variable: str) -> str:
    return re.search(r'default\s*=\s*"([^"]*)"', hcl_block(terraform, f'variable "{variable}"')).group(1)


def test_node_pools_carry_the_labels_and_taints_placement_selects(terraform, values):
    cpu_labels, cpu_taints, _ = node_pool(terraform, "cpu")
    assert cpu_labels == {POOL_LABEL: "cpu"} and cpu_taints == []
    gpu_labels, gpu_taints, gpu = node_pool(terraform, "gpu")
    assert gpu_labels == {POOL_LABEL: "gpu"}
    assert gpu_taints == [f"{GPU_TAINT_KEY}=true:NoSchedule"]
    assert re.search(r'vm_size\s*=\s*var\.gpu_vm_size', gpu)
    assert tf_default(terraform, "gpu_vm_size").startswith("Standard_NC")
    spot_labels, spot_taints, spot = node_pool(terraform, "spot")
    assert spot_labels[POOL_LABEL] == "cpu"
    assert re.search(r'priority\s*=\s*"Spot"', spot) and re.search(r'eviction_policy\s*=\s*"Delete"', spot)
    assert spot_taints == ["{}={}:{}".format(*SPOT_TAINT)]
    tolerations = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]["tolerations"]
    assert {"key": SPOT_TAINT[0], "operator": "Equal", "value": SPOT_TAINT[1], "effect": SPOT_TAINT[2]} in tolerations
    for name in ("cpu", "gpu", "spot"):
        assert re.search(r"auto_scaling_enabled\s*=\s*true", node_pool(terraform, name)[2]), name


def test_workload_identity_trusts_the_release_service_account(terraform, values, env):
    cluster = hcl_block(terraform, 'resource "azurerm_kubernetes_cluster" "this"')
    assert re.search(r"oidc_issuer_enabled\s*=\s*true", cluster)
    assert re.search(r"workload_identity_enabled\s*=\s*true", cluster)
    subject = re.search(r'subject\s*=\s*"([^"]+)"', terraform).group(1)
    assert subject == "system:serviceaccount:${var.namespace}:${var.service_account}"
    assert tf_default(terraform, "namespace") == values["runLauncher"]["config"]["k8sRunLauncher"]["jobNamespace"]
    assert tf_default(terraform, "service_account") == values["global"]["serviceAccountName"]
    data_url = (f"abfs://{tf_default(terraform, 'data_container')}@"
                f"{tf_default(terraform, 'storage_account_name')}.dfs.core.windows.net/state")
    assert env["RAGPIPE_DATA_URL"]["value"] == data_url
    assert re.search(r'role_definition_name\s*=\s*"Storage Blob Data Contributor"', terraform)
    assert re.search(r'version\s*=\s*"~> 4\.\d+"', hcl_block(terraform, "required_providers"))
