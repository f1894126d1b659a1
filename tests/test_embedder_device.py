"""The embedder's device: CUDA (float16, a batch size by GPU memory) when present, else the CPU;
planned from a device report, so the GPU cases run here with fake reports. The device never
changes the index version."""

from __future__ import annotations

from dataclasses import replace

import pytest
from dagster import AssetKey, DagsterInstance

from assets.ingestion.stages import current_index_version
from pipelines.definitions import build_resources
from pipelines.settings import Settings
from resources.devices import DevicePlan, DeviceReport, plan_device, read_device_report
from resources.embedders import SentenceTransformerEmbedder
from resources.settings import SettingsError

CPU_ONLY = DeviceReport(cuda_available=False)
T4 = DeviceReport(cuda_available=True, name="Tesla T4", memory_bytes=15_828_320_256)
A10 = DeviceReport(cuda_available=True, name="NVIDIA A10", memory_bytes=23_827_906_560)
A100_40GB = DeviceReport(cuda_available=True, name="NVIDIA A100-SXM4-40GB", memory_bytes=42_505_273_344)
A100_80GB = DeviceReport(cuda_available=True, name="NVIDIA A100-SXM4-80GB", memory_bytes=85_094_400_000)


@pytest.mark.parametrize(("report", "plan"), [
    (CPU_ONLY, DevicePlan("cpu", "float32", 32)),
    (T4, DevicePlan("cuda", "float16", 128, "Tesla T4")),
    (A10, DevicePlan("cuda", "float16", 128, "NVIDIA A10")),
    (A100_40GB, DevicePlan("cuda", "float16", 256, "NVIDIA A100-SXM4-40GB")),
    (A100_80GB, DevicePlan("cuda", "float16", 512, "NVIDIA A100-SXM4-80GB")),
    (DeviceReport(cuda_available=True, name="unknown memory"), DevicePlan("cuda", "float16", 128, "unknown memory")),
])
def test_auto_takes_the_gpu_when_there_is_one_with_a_batch_by_its_memory(report, plan):
    assert plan_device(report) == plan


def test_an_explicit_batch_size_wins_on_every_device():
    assert plan_device(A100_80GB, batch_size=48) == DevicePlan("cuda", "float16", 48, "NVIDIA A100-SXM4-80GB")
    assert plan_device(CPU_ONLY, batch_size=8) == DevicePlan("cpu", "float32", 8)


def test_forcing_a_device():
    assert plan_device(T4, "cpu") == DevicePlan("cpu", "float32", 32)
    assert plan_device(T4, "cuda") == DevicePlan("cuda", "float16", 128, "Tesla T4")
    with pytest.raises(SettingsError, match="RAGPIPE_EMBEDDER_DEVICE=cuda but torch sees no CUDA device"):
        plan_device(CPU_ONLY, "cuda")
    with pytest.raises(SettingsError, match="RAGPIPE_EMBEDDER_DEVICE='mps' must be one of auto, cpu, cuda"):
        plan_device(T4, "mps")


def test_the_setting_reaches_the_embedder(tmp_path):
    embedder = build_resources(Settings.from_env({"RAGPIPE_EMBEDDER_DEVICE": "cuda", "RAGPIPE_EMBEDDER_BATCH_SIZE": "64",
                                                  "RAGPIPE_DATA_DIR": str(tmp_path)}))["embedder"]
    assert (embedder.device, embedder.batch_size) == ("cuda", 64)
    assert build_resources(Settings(data_dir=tmp_path))["embedder"].device == "auto"
    with pytest.raises(SettingsError, match="RAGPIPE_EMBEDDER_DEVICE='gpu' must be one of auto, cpu, cuda"):
        Settings.from_env({"RAGPIPE_EMBEDDER_DEVICE": "gpu"})


def test_the_index_version_does_not_depend_on_the_device(tmp_path):
    """A GPU pod (float16) and a CPU pod (float32) of one model write the same index version.
    Nothing here touches a GPU: the identity is read from the model's files."""
    settings = Settings(data_dir=tmp_path)
    versions = set()
    for device, batch_size in (("auto", 0), ("cpu", 32), ("cuda", 0), ("cuda", 512)):
        resources = build_resources(replace(settings, embedder_device=device, embedder_batch_size=batch_size))
        versions.add(current_index_version(resources["embedder"], resources["ingestion_settings"], {}))
    assert len(versions) == 1
    assert (SentenceTransformerEmbedder(device="cuda", batch_size=7).identity()
            == SentenceTransformerEmbedder(device="cpu").identity())


@pytest.fixture
def cpu_only():
    if read_device_report().cuda_available:
        pytest.skip("this machine has a CUDA device; these tests describe one without")


def test_on_a_machine_without_gpu_the_embedder_runs_float32_on_the_cpu(cpu_only):
    embedder = SentenceTransformerEmbedder()
    assert embedder.device_metadata() == {"device": "cpu", "dtype": "float32", "batch_size": 32, "gpu": "",
                                          "backend": "torch", "processes": 1}
    model = embedder._model()
    assert (model.device.type, str(model.dtype)) == ("cpu", "torch.float32")
    assert len(embedder.embed(["a pump", "a valve"])[1]) == 384


def test_the_embeddings_step_records_the_device_it_used(cpu_only, ingest, settings):
    def device_metadata():
        with DagsterInstance.from_config(str(settings.dagster_home)) as instance:
            event = instance.get_latest_materialization_event(AssetKey("embeddings"))
            return event.asset_materialization.metadata.get("device")

    first = ingest()
    assert first["success"] and first["embedded"] > 0, first["errors"]
    assert device_metadata().data == {"device": "cpu", "dtype": "float32", "batch_size": 32, "gpu": "",
                                      "backend": "torch", "processes": 1}
    rerun = ingest()  # nothing to embed: no model loaded, no device to report
    assert rerun["success"] and rerun["embedded"] == 0
    assert device_metadata() is None
