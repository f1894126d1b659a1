"""Parsing in a worker process with a deadline, so no document can hang or crash a run.

A parser stuck in a pathological file (a regex or layout loop inside a library) cannot be
interrupted from a thread, and one that segfaults or exhausts memory takes its process with
it. So documents are parsed in a pebble process pool: a task past its deadline has its
worker killed (SIGTERM, then SIGKILL) and a fresh worker takes the next document.

Two workers parse side by side (the stage schedules a whole batch before awaiting the
first result); each is forked, and reused between documents. A spawned worker would first re-import
the run's main module and Dagster (3-5 s per stage, a third of the ingestion time of a
small corpus); a forked one starts in milliseconds with the parsers already imported, and
receives the parse function as it is, closures and Dagster resources included (they do not
pickle). The worker runs only parsing code, never Dagster's, and the locks Python itself
holds (imports, logging) are reset in the child; a child that still hung would meet the
deadline like any runaway parse. Forked workers also inherit whatever the parent patched
(the air-gap test's socket guard covers them).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from assets.ingestion.cleaning import detect_language
from core.types import DocumentRejected, ParsedDocument, failure_reason, quarantine

Parse = Callable[[str, bytes], ParsedDocument]
WORKERS = min(2, os.cpu_count() or 1)
_worker_parse: Parse | None = None  # this worker's parse function, set by the pool's initializer


def _set_parse(parse: Parse) -> None:
    global _worker_parse
    _worker_parse = parse


def _parse_in_worker(source: str, data: bytes) -> tuple[str, object]:
    """Runs in the worker. Returns plain data: library exceptions may not survive pickling."""
    try:
        return "parsed", _worker_parse(source, data).to_dict()
    except DocumentRejected as rejected:
        return rejected.status, rejected.reason
    except Exception as error:  # noqa: BLE001 - reported as the document's failure reason
        return "failed", failure_reason(error)


def _warm_up() -> None:
    """Import the parsers every corpus needs, in the parent, so every forked worker starts
    with them; families used rarely (unstructured's) load on first use, inside that
    document's deadline."""
    import pdfplumber  # noqa: F401
    from bs4 import BeautifulSoup  # noqa: F401

    detect_language("Loads the language model once, before any deadline runs.")


class IsolatedParser:
    """Runs ``parse(source, data)`` in worker processes, each document stopped after
    ``timeout_s`` seconds of parsing (a context manager)."""

    def __init__(self, parse: Parse, timeout_s: float):
        self.parse_function, self.timeout_s, self._pool = parse, timeout_s, None

    def __enter__(self) -> IsolatedParser:
        from pebble import ProcessPool

        _warm_up()
        self._pool = ProcessPool(max_workers=WORKERS, initializer=_set_parse, initargs=(self.parse_function,),
                                 context=multiprocessing.get_context("fork"))
        return self

    def __exit__(self, *exc_info) -> None:
        self._pool.stop()
        self._pool.join()

    def parse(self, source: str, data: bytes) -> ParsedDocument:
        return self.result(self.schedule(source, data))

    def schedule(self, source: str, data: bytes) -> Future:
        """Queue a document; its deadline starts when a worker picks it up."""
        return self._pool.schedule(_parse_in_worker, args=(source, data), timeout=self.timeout_s)

    def result(self, future: Future) -> ParsedDocument:
        """The parsed document, or ``DocumentRejected`` with the reason it was not."""
        from pebble import ProcessExpired

        try:
            status, value = future.result()
        except FutureTimeout:
            raise quarantine(
                f"parsing took longer than {self.timeout_s:g}s and was stopped "
                "(raise RAGPIPE_PARSE_TIMEOUT if the file is legitimately slow)"
            ) from None
        except ProcessExpired as error:
            raise quarantine(f"the parser process died on this file (exit code {error.exitcode})") from None
        if status == "parsed":
            return ParsedDocument.from_dict(value)
        raise DocumentRejected(status, value)
