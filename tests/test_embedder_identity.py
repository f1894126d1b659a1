"""The embedder's identity comes from the model's own files, so another model means another index."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from assets.ingestion.chunking import embedding_text
from resources.embedders import SentenceTransformerEmbedder, default_model_path
from tests.test_pipeline import payloads

REPO = Path(__file__).resolve().parent.parent


def perturbed_copy(target: Path) -> Path:
    """The bundled model with one weight changed: same name, configs and dimension."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    shutil.copytree(default_model_path(), target)
    weights = target / "model.safetensors"
    with safe_open(str(weights), framework="numpy") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - not a dict
    name = next(n for n in sorted(tensors) if n.endswith("attention.self.query.weight"))
    tensors[name] = tensors[name] * 1.5
    save_file(tensors, str(weights), metadata=metadata)
    return target


@pytest.fixture(scope="module")
def model_folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    return shutil.copytree(default_model_path(), root / "copy"), perturbed_copy(root / "tuned")


def test_identity_follows_the_weights_not_the_folder(model_folders):
    copy, tuned = model_folders
    bundled = SentenceTransformerEmbedder().identity()
    assert SentenceTransformerEmbedder(model_path=str(copy)).identity() == bundled
    tuned_identity = SentenceTransformerEmbedder(model_path=str(tuned)).identity()
    assert tuned_identity["dimension"] == bundled["dimension"] == 384
    assert tuned_identity["fingerprint"] != bundled["fingerprint"]


def test_identity_is_read_without_loading_torch(model_folders):
    code = ("import sys; from resources.embedders import SentenceTransformerEmbedder as E; "
            f"print(E(model_path={str(model_folders[1])!r}).identity()['fingerprint']); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    completed = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_two_models_of_equal_dimension_get_two_indexes_and_share_no_vectors(ingest, settings, model_folders,
                                                                          index_state):
    first = ingest(replace(settings, embedder_path=str(model_folders[0])))
    second = ingest(replace(settings, embedder_path=str(model_folders[1])))
    assert first["success"] and second["success"], first["errors"] + second["errors"]
    assert first["index_version"] != second["index_version"]
    assert first["collection"] != second["collection"]
    assert second["documents"]["new"] == first["documents"]["new"] == 8
    assert second["chunks"] == second["points"] > 8
    # every distinct embedding input embedded by the second model: only repeats within its own run are reused
    distinct_texts = len({embedding_text(p) for p in payloads(settings, second["collection"]).values()})
    assert second["embedded"] == distinct_texts
    assert second["reused_vectors"] == second["chunks"] - distinct_texts
    for summary in (first, second):
        ids, expected, _ = index_state(version=summary["index_version"])
        assert ids == expected
