"""A local transformers text-classification model folder (for teams that mirror an injection
model internally): loaded with ``local_files_only``, never from a hub."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from resources.embedders import model_fingerprint
from resources.settings import SettingsError

BATCH_SIZE = 32
MAX_TOKENS = 256


@cache
def _load(path: str):
    # Imported here: torch costs seconds to import and runs without a model folder skip it.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
    return tokenizer, model.eval()


class TextClassifierFolder:
    """Probability of one label (e.g. ``INJECTION``) for each text."""

    def __init__(self, path: str, label: str):
        self.path = Path(path).expanduser()
        if not (self.path / "config.json").is_file():
            raise SettingsError(f"RAGPIPE_INJECTION_MODEL_PATH: no transformers model at {self.path} "
                                "(config.json missing)")
        self.label = label

    def fingerprint(self) -> str:
        return model_fingerprint(self.path)[:16]

    def _label_index(self, model) -> int:
        labels = {name.lower(): int(index) for index, name in model.config.id2label.items()}
        if self.label.lower() not in labels:
            raise SettingsError(f"RAGPIPE_INJECTION_MODEL_LABEL={self.label!r} is not a label of the model at "
                                f"{self.path} (labels: {', '.join(sorted(model.config.id2label.values()))})")
        return labels[self.label.lower()]

    def scores(self, texts: list[str]) -> list[float]:
        import torch

        tokenizer, model = _load(str(self.path.resolve()))
        index = self._label_index(model)
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(texts), BATCH_SIZE):
                batch = tokenizer(texts[start:start + BATCH_SIZE], padding=True, truncation=True,
                                  max_length=MAX_TOKENS, return_tensors="pt")
                scores += model(**batch).logits.softmax(dim=-1)[:, index].tolist()
        return scores
