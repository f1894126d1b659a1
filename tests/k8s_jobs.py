"""Step Jobs as dagster-k8s's ``k8s_job_executor`` builds them, offline, and the Kubernetes
versions every manifest of this project must validate against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes_validate
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import construct_dagster_k8s_job, get_user_defined_k8s_config
from kubernetes.client import ApiClient

# The oldest Kubernetes minor the manifests must be valid for, and the newest schema installed.
KUBERNETES_VERSIONS = ("1.33", kubernetes_validate.latest_version())


def validate(manifest: dict) -> None:
    """Raise kubernetes_validate.ValidationError unless ``manifest`` is valid for every version."""
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


def step_job(context: K8sContainerContext, tags: Mapping[str, str], image: str, run_launcher: Any, *, name: str,
             args: Sequence[str], labels: Mapping[str, str] | None = None,
             env_vars: Sequence[Mapping[str, Any]] = ()) -> dict:
    """The Job ``K8sStepHandler.launch_step`` creates for a step with these op ``tags`` (strings,
    as Dagster serialises them) in the executor's container ``context``, as the API receives it."""
    merged = context.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags)))
    job = construct_dagster_k8s_job(
        job_config=merged.get_k8s_job_config(image, run_launcher), args=list(args), job_name=name, pod_name=name,
        component="step_worker", user_defined_k8s_config=merged.run_k8s_config, labels=labels,
        env_vars=list(env_vars))
    return ApiClient().sanitize_for_serialization(job)
