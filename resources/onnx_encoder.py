"""ONNX Runtime inference of a sentence-transformers model, an opt-in faster path on CPUs.

The model's transformer is exported once from the installed folder (offline: no hub, no
optimum, whose releases pin transformers 4) with torch's TorchScript exporter, cached under a
folder keyed by the model's fingerprint and ONNX Runtime's version, and run with the model's
own tokenizer, truncation, pooling and normalisation. onnxruntime and onnx are the ``onnx``
extra; nothing here is imported on the default (torch) path.
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from resources.settings import SettingsError

logger = logging.getLogger(__name__)

ONNX_BACKENDS = ("onnx", "onnx-int8")
BACKENDS = ("torch", *ONNX_BACKENDS)
_POOLING_KEYS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
                 "max": "pooling_mode_max_tokens"}
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OUTPUT = "last_hidden_state"


@dataclass(frozen=True)
class OnnxPlan:
    """Which exported file runs on which execution providers, and the device and precision it means."""

    variant: str  # the cached file's name: onnx (float32), onnx-fp16 or onnx-int8
    providers: tuple[str, ...]
    device: str
    dtype: str


def plan_onnx(backend: str, requested_device: str, available_providers: list[str]) -> OnnxPlan:
    """CUDA in float16 when ONNX Runtime offers it (and the device is not pinned to the CPU), else
    the CPU in float32; int8 always on the CPU: dynamic quantisation's integer kernels are CPU ones."""
    if backend not in ONNX_BACKENDS:
        raise SettingsError(f"RAGPIPE_EMBEDDER_BACKEND={backend!r} must be one of {', '.join(BACKENDS)}")
    cuda = _CUDA in available_providers
    if requested_device == "cuda" and (backend == "onnx-int8" or not cuda):
        reason = ("runs on the CPU only (ONNX Runtime's dynamic int8 kernels are CPU kernels); use "
                  "RAGPIPE_EMBEDDER_BACKEND=onnx on a GPU" if backend == "onnx-int8" else
                  "but ONNX Runtime offers no CUDAExecutionProvider (install onnxruntime-gpu)")
        raise SettingsError(f"RAGPIPE_EMBEDDER_DEVICE=cuda with RAGPIPE_EMBEDDER_BACKEND={backend}: {reason}; "
                            "or set RAGPIPE_EMBEDDER_DEVICE=auto")
    if backend == "onnx-int8":
        return OnnxPlan("onnx-int8", (_CPU,), "cpu", "int8")
    if cuda and requested_device != "cpu":
        return OnnxPlan("onnx-fp16", (_CUDA, _CPU), "cuda", "float16")
    return OnnxPlan("onnx", (_CPU,), "cpu", "float32")


def pooling_mode(config: dict) -> str:
    """The pooling a sentence-transformers ``1_Pooling/config.json`` asks for, if supported here."""
    enabled = [key for key, value in config.items() if key.startswith("pooling_mode_") and value is True]
    modes = [mode for mode, key in _POOLING_KEYS.items() if enabled == [key]]
    if not modes:
        raise SettingsError(f"the ONNX backends pool by exactly one of {', '.join(_POOLING_KEYS)}; this model's "
                            f"pooling config is {config}: use RAGPIPE_EMBEDDER_BACKEND=torch")
    return modes[0]


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Token states (batch, sequence, dim) to one vector per text, ignoring padding, as
    sentence-transformers' Pooling module does."""
    if mode == "cls":
        return hidden[:, 0]
    weights = mask[..., None].astype(hidden.dtype)
    if mode == "max":
        return np.where(weights > 0, hidden, np.finfo(hidden.dtype).min).max(axis=1)
    return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)


def normalise(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """``write`` to a temporary sibling, then rename: a crash never leaves a half-written model."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.stem}.{os.getpid()}.tmp.onnx")
    try:
        write(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def export_float32(model_path: Path, target: Path) -> None:
    """The model's transformer as ONNX (dynamic batch and sequence axes), token states out."""
    import torch
    from sentence_transformers import SentenceTransformer

    transformer = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)[0].auto_model.eval()
    accepted = inspect.signature(transformer.forward).parameters
    names = [name for name in _INPUTS if name in accepted]

    class TokenStates(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs):
            return self.transformer(**dict(zip(names, inputs, strict=True))).last_hidden_state

    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*names, _OUTPUT)}

    def write(path: Path) -> None:
        # dynamo=False: the TorchScript exporter needs no onnxscript and exports this encoder exactly.
        # Its TracerWarnings are about transformers' mask and causality checks, which compare shapes
        # that are equal for every input here (the mask is the ids' own shape; an encoder is never causal).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(TokenStates(), example, str(path), input_names=names, output_names=[_OUTPUT],
                              dynamic_axes=axes, opset_version=17, dynamo=False)

    _write_atomically(target, write)


def quantise_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the MatMul weights, per channel: per-tensor scales (the
    default) put this model's vectors at cosine 0.94-0.97 of float32, per-channel at 0.98-0.99."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _write_atomically(target, lambda path: quantize_dynamic(source, path, weight_type=QuantType.QInt8,
                                                            per_channel=True, op_types_to_quantize=["MatMul"]))


def convert_float16(source: Path, target: Path) -> None:
    """float16 weights for CUDA, float32 inputs and outputs kept."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    _write_atomically(target, lambda path: onnx.save(convert_float_to_float16(onnx.load(source), keep_io_types=True),
                                                     path))


def cached_model(model_path: Path, folder: Path, variant: str) -> Path:
    """The variant's file under ``folder`` (``<variant>-ort<version>.onnx``), made from the installed
    model if missing; the float16 and int8 files are derived from the float32 one."""
    import onnxruntime

    file = folder / f"{variant}-ort{onnxruntime.__version__}.onnx"
    if file.is_file():
        return file
    if variant == "onnx":
        logger.info("exporting %s to ONNX at %s (once per model)", model_path, file)
        export_float32(model_path, file)
    else:
        derive = quantise_int8 if variant == "onnx-int8" else convert_float16
        derive(cached_model(model_path, folder, "onnx"), file)
    return file


@cache
def _session(file: str, mtime_ns: int, providers: tuple[str, ...]):
    """One session per file version and providers; (mtime) in the key reopens a replaced file."""
    import onnxruntime

    return onnxruntime.InferenceSession(file, providers=list(providers))


def open_session(model_path: Path, folder: Path, plan: OnnxPlan):
    """The cached variant's session; an unreadable cached file (a disk error, a hand edit) is
    logged, deleted and exported again rather than failing every run."""
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, InvalidProtobuf

    file = cached_model(model_path, folder, plan.variant)
    try:
        return _session(str(file), file.stat().st_mtime_ns, plan.providers)
    except (Fail, InvalidGraph, InvalidProtobuf) as error:
        logger.warning("the cached ONNX model %s does not load (%s); exporting it again", file, error)
        file.unlink()
        file = cached_model(model_path, folder, plan.variant)
        return _session(str(file), file.stat().st_mtime_ns, plan.providers)


@cache
def truncating_tokenizer(model_path: str, max_length: int):
    """The model's tokenizer truncating to its ``max_seq_length`` (special tokens included), and its pad id."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
    pad_id = (tokenizer.padding or {}).get("pad_id", 0)
    tokenizer.no_padding()  # padded per batch below, to the batch's longest text
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer, pad_id


def encode(session, tokenizer, pad_id: int, texts: list[str], batch_size: int, mode: str) -> np.ndarray:
    """Unit vectors of ``texts``; batches of similar token lengths, so little of each is padding."""
    encodings = tokenizer.encode_batch(texts)
    wanted = {node.name for node in session.get_inputs()}
    order = np.argsort([len(encoding.ids) for encoding in encodings], kind="stable")
    vectors: np.ndarray | None = None
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        width = max(len(encodings[row].ids) for row in rows)
        feed = {name: np.zeros((len(rows), width), dtype=np.int64) for name in _INPUTS}
        feed["input_ids"].fill(pad_id)
        for line, row in enumerate(rows):
            encoding = encodings[row]
            length = len(encoding.ids)
            feed["input_ids"][line, :length] = encoding.ids
            feed["attention_mask"][line, :length] = encoding.attention_mask
            feed["token_type_ids"][line, :length] = encoding.type_ids
        hidden = session.run([_OUTPUT], {name: array for name, array in feed.items() if name in wanted})[0]
        pooled = pool(hidden.astype(np.float32), feed["attention_mask"], mode)
        if vectors is None:
            vectors = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
        vectors[rows] = pooled
    return normalise(vectors) if vectors is not None else np.empty((0, 0), dtype=np.float32)
