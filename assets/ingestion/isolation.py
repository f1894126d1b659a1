"""Parsing in a worker process with a deadline, so no document can hang or crash a run.

A parser stuck in a pathological file (a regex or layout loop inside a library) cannot be
interrupted from a thread, and one that segfaults or exhausts memory takes its process with
it. So documents are parsed in a pebble process pool: a task past its deadline is cancelled,
which has pebble kill its worker (SIGTERM, then SIGKILL), and a fresh worker takes the next
document.

The deadline is ``timeout_s`` plus ``timeout_per_page_s`` for each page the document has:
a 600-page report legitimately parses for minutes, a one-page memo never should. A paged
loader tells its page count through ``report_pages`` as soon as it knows it; the worker
posts it, and when it picked the document up, on a pipe the parent drains while it waits
for results in short slices. A document that hangs before reporting its pages meets the
base deadline. The same pipe carries nothing else: the parse's result and its measured
seconds come back through pebble.

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

import itertools
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from assets.ingestion.cleaning import detect_language
from core.types import DocumentRejected, ParsedDocument, ParseStat, failure_reason, quarantine

Parse = Callable[[str, bytes], ParsedDocument]
WORKERS = min(2, os.cpu_count() or 1)
POLL_S = 0.1  # how often the parent checks the deadlines of the documents being parsed
# Set in each worker by the pool's initializer: the parse function and the pipe to the parent.
_worker_parse: Parse | None = None
_to_parent = None
_current_task: int | None = None  # the task this worker is parsing
_reported_pages: int | None = None


def report_pages(pages: int) -> None:
    """Called by the parse function (through ``ParseRequest.report_pages``) once it knows the
    document's page count: the parent extends the document's deadline by the per-page time.
    Does nothing outside a worker."""
    global _reported_pages
    if _current_task is not None:
        _reported_pages = pages
        _to_parent.send((_current_task, "pages", pages))


def _set_worker(parse: Parse, to_parent) -> None:
    global _worker_parse, _to_parent
    _worker_parse, _to_parent = parse, to_parent


def _parse_in_worker(task: int, source: str, data: bytes) -> tuple[str, object, float, int | None]:
    """Runs in the worker. Returns plain data: library exceptions may not survive pickling."""
    global _current_task, _reported_pages
    _current_task, _reported_pages = task, None
    started = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    _to_parent.send((task, "started", started))
    try:
        document = _worker_parse(source, data)
        status, value = "parsed", document.to_dict()
        pages = _reported_pages or max((block.page or 0 for block in document.blocks), default=0) or None
    except DocumentRejected as rejected:
        status, value, pages = rejected.status, rejected.reason, _reported_pages
    except Exception as error:  # noqa: BLE001 - reported as the document's failure reason
        status, value, pages = "failed", failure_reason(error), _reported_pages
    finally:
        _current_task = None
    return status, value, time.monotonic() - started, pages


def _warm_up() -> None:
    """Import the parsers every corpus needs, in the parent, so every forked worker starts
    with them; families used rarely (unstructured's) load on first use, inside that
    document's deadline."""
    import pdfplumber  # noqa: F401
    from bs4 import BeautifulSoup  # noqa: F401

    detect_language("Loads the language model once, before any deadline runs.")


@dataclass
class Scheduled:
    """A document handed to the workers, as the parent follows it."""

    id: int
    source: str
    future: Future
    started: float | None = None
    pages: int | None = None
    stopped_after: float | None = None  # the seconds it was given, once its deadline passed


class IsolatedParser:
    """Runs ``parse(source, data)`` in worker processes, each document stopped once it has
    parsed for ``timeout_s`` plus ``timeout_per_page_s`` per reported page (a context manager)."""

    def __init__(self, parse: Parse, timeout_s: float, timeout_per_page_s: float = 0.0):
        self.parse_function, self.timeout_s, self.timeout_per_page_s = parse, timeout_s, timeout_per_page_s
        self._pool, self._tasks, self._ids = None, {}, itertools.count()

    def __enter__(self) -> IsolatedParser:
        return self

    def _start(self) -> None:
        """The worker pool, started with the first document: a run with nothing to parse (an
        unchanged rerun) imports no parser and forks no worker."""
        from pebble import ProcessPool

        _warm_up()
        # A pipe, not a multiprocessing.Queue: a worker killed while putting would leave the
        # queue's shared lock held, whereas a pipe write under PIPE_BUF bytes is atomic, so
        # the workers share the writing end without a lock.
        self._from_workers, to_parent = multiprocessing.Pipe(duplex=False)
        self._pool = ProcessPool(max_workers=WORKERS, initializer=_set_worker,
                                 initargs=(self.parse_function, to_parent),
                                 context=multiprocessing.get_context("fork"))
        self._to_parent = to_parent  # kept open: workers forked later inherit it

    def __exit__(self, *exc_info) -> None:
        if self._pool is None:
            return
        self._pool.stop()
        self._pool.join()
        self._from_workers.close()
        self._to_parent.close()

    def parse(self, source: str, data: bytes) -> ParsedDocument:
        return self.result(self.schedule(source, data))

    def schedule(self, source: str, data: bytes) -> Scheduled:
        """Queue a document; its deadline starts when a worker picks it up."""
        if self._pool is None:
            self._start()
        task_id = next(self._ids)
        task = Scheduled(task_id, source, self._pool.schedule(_parse_in_worker, args=(task_id, source, data)))
        self._tasks[task_id] = task
        return task

    def result(self, task: Scheduled) -> ParsedDocument:
        """The parsed document, or ``DocumentRejected`` with the reason it was not."""
        outcome, _ = self.timed_result(task)
        if isinstance(outcome, DocumentRejected):
            raise outcome
        return outcome

    def timed_result(self, task: Scheduled) -> tuple[ParsedDocument | DocumentRejected, ParseStat]:
        """The parsed document or why it was not, with the time its parse took (or was given)."""
        try:
            return self._await(task)
        finally:
            del self._tasks[task.id]

    def _await(self, task: Scheduled) -> tuple[ParsedDocument | DocumentRejected, ParseStat]:
        from pebble import ProcessExpired

        while True:
            try:
                status, value, seconds, pages = task.future.result(timeout=POLL_S)
                break
            except FutureTimeout:
                self._stop_overdue()
            except CancelledError:
                return self._stopped(task), ParseStat(task.source, task.stopped_after, task.pages, "quarantined")
            except ProcessExpired as error:
                self._drain()
                seconds = time.monotonic() - task.started if task.started is not None else 0.0
                return (quarantine(f"the parser process died on this file (exit code {error.exitcode})"),
                        ParseStat(task.source, seconds, task.pages, "quarantined"))
        timing = ParseStat(task.source, seconds, pages, status)
        if status == "parsed":
            return ParsedDocument.from_dict(value), timing
        return DocumentRejected(status, value), timing

    def deadline_s(self, pages: int | None) -> float:
        """The seconds a document of ``pages`` pages (``None``: not reported) may parse for."""
        return self.timeout_s + self.timeout_per_page_s * (pages or 0)

    def _drain(self) -> None:
        """Note which documents the workers picked up, and the page counts they reported."""
        while self._from_workers.poll():
            task_id, kind, value = self._from_workers.recv()
            task = self._tasks.get(task_id)
            if task is None:
                continue  # its result was already consumed
            if kind == "started":
                task.started = value
            else:
                task.pages = value

    def _stop_overdue(self) -> None:
        """Cancel every running document past its deadline (pebble then kills its worker),
        not only the one awaited: the other worker's document may be overdue too."""
        self._drain()
        now = time.monotonic()
        for task in self._tasks.values():
            given = self.deadline_s(task.pages)
            overdue = task.started is not None and task.stopped_after is None and now - task.started > given
            if overdue and task.future.cancel():  # False: it finished meanwhile
                task.stopped_after = given

    def _stopped(self, task: Scheduled) -> DocumentRejected:
        if task.pages:
            pages = f"{task.pages:,} page{'s' if task.pages > 1 else ''}"
            why = (f"{pages} at RAGPIPE_PARSE_TIMEOUT={self.timeout_s:g}s + "
                   f"RAGPIPE_PARSE_TIMEOUT_PER_PAGE={self.timeout_per_page_s:g}s per page; raise them")
        else:
            why = "before reporting a page count; raise RAGPIPE_PARSE_TIMEOUT"
        return quarantine(f"parsing took longer than {task.stopped_after:g}s and was stopped "
                          f"({why} if the file is legitimately slow)")
