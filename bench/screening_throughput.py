"""Screening throughput on the sample corpus: documents and chunks per second, warm.

    .venv/bin/python bench/screening_throughput.py [--repeat 3]

Parsing and chunking happen before the clock starts; the screener's models are loaded by
a first pass that is not timed. The timed passes run what the `screened_documents` and
`chunks` stages run per document: ``screen_document`` then ``screen_chunks``.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import resources  # noqa: E402,F401  (offline defaults before library imports)
from assets.ingestion.chunking import chunk_document, make_splitter  # noqa: E402
from assets.ingestion.parsing import parse_document  # noqa: E402
from assets.screening.injection_classifier import build_injection_classifier  # noqa: E402
from assets.screening.pii import PiiEngine  # noqa: E402
from assets.screening.screen import Screener, ScreeningQuarantine  # noqa: E402
from pipelines.settings import SAMPLE_CORPUS  # noqa: E402
from resources.screening import ScreeningSettings  # noqa: E402
from resources.settings import IngestionSettings  # noqa: E402


def _count_tokens(text: str) -> int:
    return len(text.split())


def _screen_all(screener: Screener, documents) -> tuple[int, int]:
    """Chunks screened and documents quarantined (a quarantined document stops where the stage stops it)."""
    splitter = make_splitter(200, 30, _count_tokens)
    chunks = quarantined = 0
    for source, document in documents:
        try:
            screened, pii = screener.screen_document(document, source)
            payloads = chunk_document(screened, source=source, doc_id=source, index_version="bench",
                                      pii_entities=pii, splitter=splitter, count_tokens=_count_tokens, chunk_size=200)
            screener.screen_chunks(source, [p["text"] for p in payloads])
        except ScreeningQuarantine:
            quarantined += 1
            continue
        chunks += len(payloads)
    return chunks, quarantined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = sorted(p for p in SAMPLE_CORPUS.rglob("*") if p.is_file())
    documents = [(str(p.relative_to(SAMPLE_CORPUS)), parse_document(p.name, p.read_bytes())) for p in files]
    settings = ScreeningSettings()
    screener = Screener(pii=PiiEngine(settings.pii_config()), threshold=IngestionSettings().poisoning_threshold,
                        injection_classifier=build_injection_classifier(settings))
    started = time.monotonic()
    _screen_all(screener, documents)
    print(f"first pass (loads models): {time.monotonic() - started:.2f} s")
    for _ in range(args.repeat):
        started = time.monotonic()
        chunks, quarantined = _screen_all(screener, documents)
        seconds = time.monotonic() - started
        print(f"{len(documents)} documents ({quarantined} quarantined), {chunks} chunks in {seconds:.2f} s: "
              f"{len(documents) / seconds:.1f} documents/s, {chunks / seconds:.1f} chunks/s")


if __name__ == "__main__":
    main()
