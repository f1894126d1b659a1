"""The parse deadline grows with the pages a loader reports, and every parse's seconds and
pages reach the ledger and the clean stage's metadata.

The deadline tests inject a parse function that reports pages and sleeps, so the timings are
the test's own (a second or two), not those of a real parser on a loaded machine.
"""

from __future__ import annotations

import base64
import time

import pytest
from dagster import DagsterInstance, materialize

from assets.ingestion import isolation, stages
from assets.ingestion.isolation import IsolatedParser
from core.types import Block, DocumentRejected, ParsedDocument
from resources.ledger import Ledger
from resources.settings import IngestionSettings
from resources.staging import Staging
from tests import format_fixtures as fx

BASE_S, PER_PAGE_S = 0.6, 0.2


def reporting_and_sleeping(source: str, data: bytes) -> ParsedDocument:
    """Parses ``b"<pages reported> <seconds to sleep> <highest block page>"``; 0 pages: none reported."""
    pages, seconds, block_page = data.split()
    if int(pages):
        isolation.report_pages(int(pages))
    time.sleep(float(seconds))
    return ParsedDocument(title=source, content_type="text/plain",
                          blocks=[Block(text="Rooms are booked on Mondays.", page=int(block_page) or None)])


@pytest.fixture(scope="module")
def parser():
    with IsolatedParser(reporting_and_sleeping, BASE_S, PER_PAGE_S) as running:
        yield running


def test_a_document_with_many_pages_may_parse_past_the_base_deadline(parser):
    document, stat = parser.timed_result(parser.schedule("file:///c/report.pdf", b"20 1.2 0"))
    assert isinstance(document, ParsedDocument) and document.title == "file:///c/report.pdf"
    assert (stat.source, stat.pages, stat.status) == ("file:///c/report.pdf", 20, "parsed")
    assert 1.2 <= stat.seconds < BASE_S + 20 * PER_PAGE_S


def test_a_one_page_document_as_slow_is_stopped_with_the_settings_to_raise(parser):
    started = time.monotonic()
    rejection, stat = parser.timed_result(parser.schedule("file:///c/memo.pdf", b"1 1.2 0"))
    assert time.monotonic() - started < 1.2  # stopped at 0.8 s, not left to finish
    assert isinstance(rejection, DocumentRejected) and rejection.status == "quarantined"
    assert rejection.reason == (
        "parsing took longer than 0.8s and was stopped (1 page at RAGPIPE_PARSE_TIMEOUT=0.6s + "
        "RAGPIPE_PARSE_TIMEOUT_PER_PAGE=0.2s per page; raise them if the file is legitimately slow)")
    assert (stat.seconds, stat.pages, stat.status) == (0.8, 1, "quarantined")  # the time it was given


def test_a_document_hanging_before_it_reports_pages_meets_the_base_deadline(parser):
    started = time.monotonic()
    with pytest.raises(DocumentRejected) as caught:
        parser.result(parser.schedule("file:///c/hangs.pdf", b"0 600 0"))
    assert time.monotonic() - started < 2
    assert caught.value.reason == ("parsing took longer than 0.6s and was stopped (before reporting a page "
                                   "count; raise RAGPIPE_PARSE_TIMEOUT if the file is legitimately slow)")
    assert parser.parse("file:///c/next.md", b"0 0 0").title == "file:///c/next.md"  # a fresh worker took over


def test_the_other_workers_overdue_document_is_stopped_while_the_first_is_awaited(parser):
    """Results are consumed in order, but every running document's deadline is watched: a
    hang scheduled second is stopped while the first (legitimately slow) one is awaited."""
    slow = parser.schedule("file:///c/long.pdf", b"30 1.5 0")
    hang = parser.schedule("file:///c/hangs.pdf", b"0 600 0")
    assert isinstance(parser.timed_result(slow)[0], ParsedDocument)
    awaited = time.monotonic()
    rejection, stat = parser.timed_result(hang)
    assert time.monotonic() - awaited < 0.3  # already stopped
    assert "was stopped" in rejection.reason and stat.seconds == BASE_S


def test_pages_come_from_the_blocks_when_the_loader_reports_none(parser):
    _, stat = parser.timed_result(parser.schedule("file:///c/slides.pptx", b"0 0 7"))
    assert stat.pages == 7
    _, stat = parser.timed_result(parser.schedule("file:///c/notes.txt", b"0 0 0"))
    assert stat.pages is None


def test_the_pdf_loader_reports_its_page_count():
    from assets.ingestion.parsing import load_document

    reported = []
    load_document("file:///c/policy.pdf", fx.text_pdf(pages=4), report_pages=reported.append)
    assert reported == [4]


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        return Ledger(url=f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    return Ledger(url=request.getfixturevalue("postgres_url"))


def staged(name: str, data: bytes) -> dict:
    source = f"file:///corpus/{name}"
    return {"source": source, "doc_id": f"id-{name}", "version": "v", "change": "new", "indexed_doc_id": None,
            "chunk_count": 0, "content_b64": base64.b64encode(data).decode(), "metadata": {}}


def test_the_clean_stage_records_each_parse_in_the_ledger_and_reports_the_slowest(ledger, tmp_path, monkeypatch):
    """Through the real clean stage and loaders: a real 4-page PDF, a Markdown file, and one
    whose parse hangs (stopped at the base deadline, recorded with the time it was given)."""
    real_load = stages.load_document

    def load_or_hang(source, data, **options):
        if source.endswith("hangs.md"):
            time.sleep(600)
        return real_load(source, data, **options)

    monkeypatch.setattr(stages, "load_document", load_or_hang)  # the forked workers inherit it
    settings = IngestionSettings(parse_timeout_s=1.0, parse_timeout_per_page_s=5.0, near_duplicates="off")
    batches = [[staged("policy.pdf", fx.text_pdf(pages=4)), staged("policy.md", fx.markdown())],
               [staged("hangs.md", b"# Rooms\n\nBook rooms on Mondays.")]]
    writer = Staging(root=str(tmp_path / "staging")).writer("clean_documents", "run-1")
    report, rejections = stages.clean_stage(iter(batches), writer, settings, None, ledger, "v1", "run-1")

    assert [(row.source, row.status) for row in rejections] == [("file:///corpus/hangs.md", "quarantined")]
    assert "parsing took longer than 1s and was stopped" in rejections[0].reason
    stored = {stat.source.rsplit("/", 1)[-1]: stat for stat in ledger.slowest_parses("v1")}
    assert {name: (stat.pages, stat.status, stat.doc_id) for name, stat in stored.items()} == {
        "hangs.md": (None, "quarantined", "id-hangs.md"),
        "policy.pdf": (4, "parsed", "id-policy.pdf"),
        "policy.md": (None, "parsed", "id-policy.md"),
    }
    assert stored["hangs.md"].seconds == 1.0
    assert 0 < stored["policy.md"].seconds < 1.0 and 0 < stored["policy.pdf"].seconds < 1.0 + 4 * 5.0
    assert report.slowest_parses == ledger.slowest_parses("v1")  # slowest first, both places
    assert [stat.source for stat in ledger.slowest_parses("v1", limit=1)] == ["file:///corpus/hangs.md"]


def test_a_rerun_replaces_a_sources_parse_stats_and_a_deletion_drops_them(ledger):
    from core.types import LedgerRow, ParseStat

    ledger.record_parse_stats("v1", "run-1", [ParseStat("s1", 4.0, 10, "quarantined", "d1")])
    ledger.record_parse_stats("v1", "run-2", [ParseStat("s1", 2.5, 10, "parsed", "d2"),
                                              ParseStat("s2", 0.1, None, "failed", "d3")])
    assert ledger.slowest_parses("v1") == [ParseStat("s1", 2.5, 10, "parsed", "d2"),
                                           ParseStat("s2", 0.1, None, "failed", "d3")]
    assert ledger.slowest_parses("v2") == []
    ledger.record("v1", [LedgerRow("s1", "deleted", "d2", reason="source no longer listed")])
    assert [stat.source for stat in ledger.slowest_parses("v1")] == ["s2"]


def test_the_clean_asset_lists_the_slowest_parses_in_its_metadata(tmp_path, monkeypatch):
    from assets.ingestion.assets import INGESTION_ASSETS
    from pipelines.definitions import build_resources
    from pipelines.instance import ensure_dagster_home
    from pipelines.settings import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "policy.pdf").write_bytes(fx.text_pdf(pages=3))
    (corpus / "policy.md").write_bytes(fx.markdown())
    settings = Settings(data_dir=tmp_path / "data", source_dir=corpus)
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))  # restored afterwards
    ensure_dagster_home(settings.dagster_home)
    with DagsterInstance.get() as instance:
        result = materialize(INGESTION_ASSETS, selection=["raw_documents", "clean_documents"],
                             resources=build_resources(settings), instance=instance)
    table = result.asset_materializations_for_node("clean_documents")[0].metadata["slowest_parses"].value
    lines = table.splitlines()
    assert lines[0] == "| source | seconds | pages | status |"
    assert {line.split(" | ")[0].rsplit("/", 1)[-1] for line in lines[2:]} == {"policy.pdf", "policy.md"}
    assert next(line for line in lines if "policy.pdf" in line).endswith("| 3 | parsed |")


def test_a_negative_per_page_time_is_refused_before_the_run():
    with pytest.raises(ValueError, match="parse_timeout_per_page_s=-1.0 must be 0 or more"):
        IngestionSettings(parse_timeout_per_page_s=-1).validate_against(254, "m")


def test_a_parser_given_nothing_to_parse_loads_no_parser(monkeypatch):
    """An unchanged rerun has nothing to parse: the parsers and the language model stay unloaded;
    the first document loads them."""
    warm_ups = []
    monkeypatch.setattr(isolation, "_warm_up", lambda: warm_ups.append(True))
    with IsolatedParser(reporting_and_sleeping, BASE_S, PER_PAGE_S):
        pass
    assert warm_ups == []
    with IsolatedParser(reporting_and_sleeping, BASE_S, PER_PAGE_S) as parser:
        parser.result(parser.schedule("a.txt", b"0 0 0"))
    assert warm_ups == [True]
