"""Where the embedder runs: CUDA when the pod has a GPU, else the CPU, with a batch size and
precision to match. The choice is a pure function of a device report, so it is tested with
fake reports on machines without a GPU."""

from __future__ import annotations

from dataclasses import dataclass

from resources.settings import SettingsError

DEVICES = ("auto", "cpu", "cuda")
CPU_BATCH_SIZE = 32
# A small encoder's batch per GPU by memory (bytes as the driver reports them: a 16 GB T4
# reports 15.8e9): larger GPUs take larger batches; anything smaller or unknown gets the last.
GPU_BATCH_SIZES = ((70e9, 512), (35e9, 256), (0, 128))


@dataclass(frozen=True)
class DeviceReport:
    """What the machine offers: its first CUDA device's name and memory, when it has one."""

    cuda_available: bool
    name: str = ""
    memory_bytes: int = 0


@dataclass(frozen=True)
class DevicePlan:
    """How the embedder runs: ``device`` and ``dtype`` as torch names, and its batch size."""

    device: str
    dtype: str
    batch_size: int
    gpu: str = ""  # the GPU's name, for the step's metadata


def plan_device(report: DeviceReport, requested: str = "auto", batch_size: int = 0) -> DevicePlan:
    """The device ``requested`` (auto: CUDA when present), float16 on a GPU (half the memory and
    several times the throughput of float32; the bundled model's float16 vectors are within
    cosine 0.99999 of its float32 ones), and the device's batch size unless ``batch_size`` is
    set (> 0). SettingsError on a request the machine cannot honour."""
    if requested not in DEVICES:
        raise SettingsError(f"RAGPIPE_EMBEDDER_DEVICE={requested!r} must be one of {', '.join(DEVICES)}")
    if requested == "cuda" and not report.cuda_available:
        raise SettingsError("RAGPIPE_EMBEDDER_DEVICE=cuda but torch sees no CUDA device (driver, image or "
                            "node pool?); use auto to fall back to the CPU")
    if requested == "cpu" or not report.cuda_available:
        return DevicePlan("cpu", "float32", batch_size or CPU_BATCH_SIZE)
    by_memory = next(size for floor, size in GPU_BATCH_SIZES if report.memory_bytes >= floor)
    return DevicePlan("cuda", "float16", batch_size or by_memory, report.name)


def read_device_report() -> DeviceReport:
    """The report of this process's torch (imported here: it costs seconds)."""
    import torch

    if not torch.cuda.is_available():
        return DeviceReport(cuda_available=False)
    properties = torch.cuda.get_device_properties(0)
    return DeviceReport(cuda_available=True, name=properties.name, memory_bytes=properties.total_memory)
