"""Screening configuration: the PII policy, custom recognizers and quarantine alerting.

The hash salt is a secret: pass it as ``EnvVar("RAGPIPE_PII_HASH_SALT")`` so run config
shows the variable's name, never its value.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import Config, ConfigurableResource

from core.types import CustomRecognizer, PiiConfig

HASH_SALT_ENV = "RAGPIPE_PII_HASH_SALT"


class CustomRecognizerConfig(Config):
    """An organisation's own identifier, e.g. ``EMPLOYEE_ID`` = ``EMP-\\d{6}``."""

    entity: str
    pattern: str
    context: list[str] = []
    score: float = 0.6


class ScreeningSettings(ConfigurableResource):
    """The PII policy. NER runs by default from the pinned spaCy package; ``spacy_model_path``
    or ``transformers_model_path`` (a token-classification folder) replace it, ``pii_ner:
    false`` turns it off. ``pii_allow_list`` values are never PII; ``pii_deny_list`` maps an
    entity type to values that always are."""

    pii_actions: dict[str, str] = {}
    pii_default_action: str = "redact"
    pii_score_threshold: float = 0.4
    custom_recognizers: list[CustomRecognizerConfig] = []
    spacy_model_path: str = ""
    transformers_model_path: str = ""
    pii_ner: bool = True
    pii_allow_list: list[str] = []
    pii_deny_list: dict[str, list[str]] = {}
    pii_hash_salt: str = ""
    quarantine_rate_warn: float = 0.01
    # The learned injection layer: on by default; threshold 0 takes the one shipped with its weights.
    injection_classifier: bool = True
    injection_threshold: float = 0.0
    # A local transformers text-classification folder scoring the same windows, by its label's probability.
    injection_model_path: str = ""
    injection_model_label: str = "INJECTION"
    injection_model_threshold: float = 0.5

    def pii_config(self) -> PiiConfig:
        return PiiConfig(
            actions=dict(self.pii_actions),
            default_action=self.pii_default_action,
            custom_recognizers=tuple(
                CustomRecognizer(r.entity, r.pattern, tuple(r.context), r.score) for r in self.custom_recognizers
            ),
            spacy_model_path=self.spacy_model_path,
            transformers_model_path=self.transformers_model_path,
            ner=self.pii_ner,
            score_threshold=self.pii_score_threshold,
            allow_list=tuple(self.pii_allow_list),
            deny_list=tuple((entity, tuple(values)) for entity, values in sorted(self.pii_deny_list.items())),
        )


def load_screening_file(path: str | Path) -> dict:
    """ScreeningSettings fields from a YAML file (``RAGPIPE_SCREENING_CONFIG``)."""
    loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of screening settings")
    if "pii_hash_salt" in loaded:
        raise ValueError(f"{path}: the hash salt is a secret; set {HASH_SALT_ENV} instead")
    return loaded
