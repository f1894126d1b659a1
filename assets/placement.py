"""Where each step runs on Kubernetes: ``dagster-k8s/config`` op tags.

The k8s run launcher and ``k8s_job_executor`` turn these into each step pod's node selector,
tolerations and resources; the local executors ignore them. Embedding is the one GPU step:
it selects the GPU pool and tolerates its taint, whose key is this project's own so that
other workloads' GPU tolerations never land them on the pool. Every other step runs on the
CPU pool, sized by what it holds in memory (parsing holds a whole document and its pages).
"""

from __future__ import annotations

POOL_LABEL = "ragpipe/pool"  # the node label each pool carries (deploy/terraform)
GPU_TAINT_KEY = "ragpipe/gpu"  # the GPU pool's NoSchedule taint
GPU_RESOURCE = "nvidia.com/gpu"  # the NVIDIA device plugin's resource name


def k8s_placement(pool: str, cpu: str, memory: str, *, cpu_limit: str, memory_limit: str,
                  gpus: int = 0) -> dict[str, dict]:
    """The op tags that place a step on ``pool`` with these requests and limits."""
    requests = {"cpu": cpu, "memory": memory}
    limits = {"cpu": cpu_limit, "memory": memory_limit}
    pod_spec: dict = {"node_selector": {POOL_LABEL: pool}}
    if gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
        pod_spec["tolerations"] = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    return {"dagster-k8s/config": {"container_config": {"resources": {"requests": requests, "limits": limits}},
                                   "pod_spec_config": pod_spec}}


# Listing, hashing, chunking, upserts, evaluation bookkeeping: light.
LIGHT_CPU_STEP = k8s_placement("cpu", "500m", "1Gi", cpu_limit="1", memory_limit="2Gi")
# Parsing (PDF layout, OCR) and screening (NER models): a core or two and a few GiB.
HEAVY_CPU_STEP = k8s_placement("cpu", "1", "3Gi", cpu_limit="2", memory_limit="6Gi")
# Embedding: one GPU, with the CPU and memory to feed it batches.
GPU_STEP = k8s_placement("gpu", "2", "6Gi", cpu_limit="4", memory_limit="12Gi", gpus=1)
