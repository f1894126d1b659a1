"""The opt-in embedding backends: ONNX float32 (same vectors as torch), ONNX int8 (its own index
version) and multi-process torch encoding, on the bundled model and the sample corpus's texts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pipelines.definitions import build_resources
from pipelines.settings import REPO_ROOT, SAMPLE_CORPUS, Settings
from resources.embedders import SentenceTransformerEmbedder
from resources.onnx_encoder import normalise, plan_onnx, pool, pooling_mode
from resources.settings import SettingsError

# Measured on the bundled model: 0.98-0.995 over these texts with per-channel weights.
INT8_MIN_COSINE = 0.97

PASSAGES = [
    "To reset your password, open Settings, choose Security and follow the link sent to your e-mail.",
    "Invoices are issued on the first business day of each month and are payable within 30 days.",
    "The forklift must be inspected before every shift; report hydraulic leaks to the site supervisor.",
    "Employees accrue 2.5 days of paid annual leave per month of service, up to 30 days a year.",
    "Enable multi-factor authentication on every administrator account before granting VPN access.",
]
QUERIES = [
    "How do I change my password?",
    "When do invoices have to be paid?",
    "What checks are needed on a forklift?",
    "How much holiday do staff get?",
    "Do admins need MFA for the VPN?",
]


def corpus_texts() -> list[str]:
    """The sample corpus's Markdown and text files: short and long (past the 256-token limit) texts."""
    files = sorted(path for path in SAMPLE_CORPUS.rglob("*") if path.suffix in (".md", ".txt"))
    texts = [path.read_text() for path in files[:6]]
    return texts + [line for text in texts for line in text.splitlines() if line.strip()][:20]


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def cosines(left, right) -> np.ndarray:
    return (normalise(np.asarray(left)) * normalise(np.asarray(right))).sum(axis=1)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """Both ONNX files exported once, in a fresh interpreter whose every non-loopback connection
    is refused and logged, with the Hugging Face hub offline: the export needs no network."""
    folder = tmp_path_factory.mktemp("models")
    log = folder / "airgap.log"
    script = textwrap.dedent(f"""
        import tests.airgap_guard
        from resources.embedders import SentenceTransformerEmbedder
        for backend in ("onnx", "onnx-int8"):
            SentenceTransformerEmbedder(backend=backend, cache_dir={str(folder)!r}).embed(["warm up"])
    """)
    env = {**os.environ, "AIRGAP_LOG": str(log), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not log.exists() or log.read_text() == ""
    return folder


@pytest.fixture(scope="module")
def torch_embedder():
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def reference(torch_embedder):
    """The corpus texts and their vectors from the default (torch, float32) path."""
    texts = corpus_texts()
    return texts, torch_embedder.embed(texts)


def onnx_files(cache_dir) -> dict[str, os.stat_result]:
    return {path.name: path.stat() for path in cache_dir.rglob("*.onnx")}


def test_onnx_float32_vectors_match_torch_on_real_texts(cache_dir, torch_embedder, reference):
    texts, expected = reference
    assert max(torch_embedder.count_tokens(text) for text in texts) > 256  # truncation is exercised
    onnx = SentenceTransformerEmbedder(backend="onnx", cache_dir=str(cache_dir))
    assert cosines(onnx.embed(texts), expected).min() >= 0.9999
    # Same vectors, same index version.
    assert onnx.identity() == torch_embedder.identity()
    assert onnx.device_metadata() == {"device": "cpu", "dtype": "float32", "batch_size": 32, "gpu": "",
                                      "backend": "onnx", "processes": 1}


def test_onnx_int8_stays_close_and_ranks_the_true_passage_first(cache_dir, torch_embedder, reference):
    int8 = SentenceTransformerEmbedder(backend="onnx-int8", cache_dir=str(cache_dir))
    texts, expected = reference
    assert cosines(int8.embed(texts), expected).min() >= INT8_MIN_COSINE
    for embedder in (torch_embedder, int8):
        scores = np.asarray(embedder.embed(QUERIES)) @ np.asarray(embedder.embed(PASSAGES)).T
        assert list(scores.argmax(axis=1)) == list(range(len(QUERIES)))
    # int8 vectors never share an index with float32 ones.
    assert int8.identity() == {**torch_embedder.identity(), "backend": "onnx-int8"}


def test_a_second_embedder_reuses_the_cached_export(cache_dir):
    before = onnx_files(cache_dir)
    assert set(before) == {f"{variant}-ort{__import__('onnxruntime').__version__}.onnx"
                           for variant in ("onnx", "onnx-int8")}
    for backend in ("onnx", "onnx-int8"):
        SentenceTransformerEmbedder(backend=backend, cache_dir=str(cache_dir)).embed(["a pump", "a valve"])
    after = onnx_files(cache_dir)
    assert {name: stat.st_mtime_ns for name, stat in after.items()} == \
        {name: stat.st_mtime_ns for name, stat in before.items()}


def test_a_corrupt_cached_model_is_made_again(cache_dir, torch_embedder, caplog):
    int8 = SentenceTransformerEmbedder(backend="onnx-int8", cache_dir=str(cache_dir))
    expected = int8.embed(PASSAGES)
    (file,) = cache_dir.rglob("onnx-int8-*.onnx")
    file.write_bytes(b"not a model" * 100)
    assert cosines(int8.embed(PASSAGES), expected).min() >= 0.9999
    assert "does not load" in caplog.text and str(file) in caplog.text
    assert file.stat().st_size > 10_000_000  # the quantised model again, not the garbage
    assert not list(cache_dir.rglob("*.tmp.onnx"))  # nothing half-written left behind


def test_multi_process_encoding_matches_one_process(reference):
    embedder = SentenceTransformerEmbedder(processes=2)
    texts, expected = reference
    try:
        assert cosines(embedder.embed(texts), expected).min() >= 0.9999
        workers = embedder._pool["processes"]
        assert len(workers) == 2 and all(worker.is_alive() for worker in workers)
        pids = [worker.pid for worker in workers]
        embedder.embed(PASSAGES)
        assert embedder._pool["processes"] == workers  # started once, reused
    finally:
        embedder.close()
    assert embedder._pool is None and not any(running(pid) for pid in pids)


def test_the_default_path_never_imports_onnxruntime():
    script = ("import sys; from resources.embedders import SentenceTransformerEmbedder as E; "
              "E().identity(); E().embed(['a']); print('onnxruntime' in sys.modules, 'onnx' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "False"]


def test_backend_and_processes_are_validated_with_actionable_errors(tmp_path):
    with pytest.raises(SettingsError, match=r"RAGPIPE_EMBEDDER_BACKEND='tensorrt' must be one of torch, onnx, onnx-int8"):
        Settings.from_env({"RAGPIPE_EMBEDDER_BACKEND": "tensorrt"})
    with pytest.raises(SettingsError, match="must be one of torch, onnx, onnx-int8"):
        SentenceTransformerEmbedder(backend="tensorrt").identity()
    with pytest.raises(SettingsError, match="RAGPIPE_EMBEDDER_PROCESSES=2 must be 1, or more with .*=torch"):
        SentenceTransformerEmbedder(backend="onnx", processes=2).embed(["a"])
    with pytest.raises(SettingsError, match="RAGPIPE_EMBEDDER_PROCESSES=0"):
        SentenceTransformerEmbedder(processes=0).identity()
    settings = Settings.from_env({"RAGPIPE_DATA_DIR": str(tmp_path), "RAGPIPE_EMBEDDER_BACKEND": "onnx-int8",
                                  "RAGPIPE_EMBEDDER_PROCESSES": "1"})
    embedder = build_resources(settings)["embedder"]
    assert (embedder.backend, embedder.processes) == ("onnx-int8", 1)
    assert embedder.cache_dir == str(tmp_path.resolve() / "models")


def test_provider_selection():
    cpu, cuda = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert plan_onnx("onnx", "auto", cpu).providers == ("CPUExecutionProvider",)
    on_gpu = plan_onnx("onnx", "auto", cuda)
    assert (on_gpu.variant, on_gpu.device, on_gpu.dtype, on_gpu.providers[0]) == \
        ("onnx-fp16", "cuda", "float16", "CUDAExecutionProvider")
    assert plan_onnx("onnx", "cpu", cuda).variant == "onnx"
    assert plan_onnx("onnx-int8", "auto", cuda).providers == ("CPUExecutionProvider",)
    with pytest.raises(SettingsError, match="no CUDAExecutionProvider"):
        plan_onnx("onnx", "cuda", cpu)
    with pytest.raises(SettingsError, match="int8 kernels are CPU kernels"):
        plan_onnx("onnx-int8", "cuda", cuda)


def test_pooling_ignores_padding_and_follows_the_model_config():
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0]]
    assert pool(hidden, mask, "max").tolist() == [[3.0, 4.0]]
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]
    assert pooling_mode({"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True,
                         "pooling_mode_cls_token": False}) == "mean"
    with pytest.raises(SettingsError, match="use RAGPIPE_EMBEDDER_BACKEND=torch"):
        pooling_mode({"pooling_mode_mean_sqrt_len_tokens": True})
    with pytest.raises(SettingsError, match="exactly one"):
        pooling_mode({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True})
