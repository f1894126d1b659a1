"""unstructured, made offline and silent before its first use.

Telemetry is switched off by the environment ``resources.offline`` sets (DO_NOT_TRACK,
SCARF_NO_ANALYTICS), which must happen before unstructured is imported.
"""

from __future__ import annotations

import importlib
from functools import cache

from resources import offline  # noqa: F401  (environment first)


@cache
def _offline_nlp():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


@cache
def partitioner(module: str, function: str):
    """``unstructured.partition.<module>.<function>``, with the spaCy pipeline replaced.

    unstructured pip-installs ``en_core_web_sm`` from GitHub on first use, which fails (and
    must not be tried) offline. Its tokenizer looks the pipeline up through
    ``_get_nlp`` at call time, so a blank English pipeline with a sentencizer is put in its
    place: sentence splitting works; without POS tags some paragraphs classify as
    UncategorizedText rather than NarrativeText, which the loaders treat alike.
    """
    from unstructured.nlp import tokenize

    tokenize._get_nlp = _offline_nlp
    return getattr(importlib.import_module(f"unstructured.partition.{module}"), function)
