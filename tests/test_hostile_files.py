"""Hostile, corrupt, mislabelled and unsupported files: each a clear reason, never a crash;
and the per-document parse timeout that really stops a runaway parser."""

from __future__ import annotations

import pytest

from assets.ingestion.isolation import IsolatedParser
from assets.ingestion.limits import ParseLimits
from assets.ingestion.parsing import parse_document
from core.types import DocumentRejected
from tests import format_fixtures as fx

HOSTILE = fx.hostile()


def rejection(name: str, data: bytes, **options) -> DocumentRejected:
    with pytest.raises(DocumentRejected) as caught:
        parse_document(f"file:///corpus/{name}", data, **options)
    return caught.value


@pytest.mark.parametrize(("name", "reason"), [
    ("bomb.docx", "archive unpacks to 314,572,"),
    ("truncated.pdf", "corrupt or truncated PDF"),
    ("truncated.docx", "corrupt or truncated ZIP container"),
    ("encrypted.pdf", "encrypted PDF (password required)"),
    ("song.mp3", "unsupported file type .mp3 (content is audio/mpeg)"),
    ("clip.mp4", "unsupported file type .mp4 (content is video/mp4)"),
    ("tool.exe", "unsupported file type .exe (content is application/x-msdownload)"),
    ("archive.zip", "a ZIP archive that is not an Office, ODT or EPUB document"),
    ("legacy.doc", "LibreOffice could not convert the .doc file (corrupt or unsupported?)"),
    ("truncated.msg", "corrupt or truncated OLE compound file"),
    ("binary.txt", "binary content in a .txt file"),
    ("broken-utf16.txt", "not valid UTF-16 (bad bytes at offset 10); re-save the file as UTF-8"),
    ("empty.md", "empty file (0 bytes)"),
    ("broken.json", "invalid JSON"),
    ("laughs.xml", "no text content"),  # entities are left unexpanded, so nothing explodes
])
def test_hostile_files_are_quarantined_with_a_reason(name, reason):
    error = rejection(name, HOSTILE[name])
    assert error.status == "quarantined"
    assert reason in error.reason


def test_wrong_extension_is_read_by_content():
    document = parse_document("file:///corpus/really-a-docx.pdf", HOSTILE["really-a-docx.pdf"])
    assert document.content_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert document.title == "Travel Policy"


def test_compression_ratio_and_page_limits():
    ratio = rejection("policy.docx", fx.docx(), limits=ParseLimits(max_compression_ratio=1.5))
    assert "compression ratio" in ratio.reason
    pages = rejection("long.pdf", fx.text_pdf(pages=4), limits=ParseLimits(max_pages=3))
    assert pages.reason == "PDF has 4 pages, above the limit of 3"


def test_a_parse_past_its_deadline_is_stopped_and_the_next_document_still_parses():
    """A CSV of a million rows takes many seconds to parse; past the 1 s deadline its worker
    is killed and replaced, and the next document parses in the fresh worker."""
    big_csv = ("id,name,comment\n" + "".join(f"{i},name {i},a comment for row {i}\n" for i in range(1_000_000))).encode()
    with IsolatedParser(parse_document, timeout_s=1.0) as parser:
        with pytest.raises(DocumentRejected) as caught:
            parser.parse("file:///corpus/big.csv", big_csv)
        assert caught.value.status == "quarantined"
        assert "parsing took longer than 1s and was stopped" in caught.value.reason
        assert parser.parse("file:///corpus/policy.md", fx.markdown()).title == "Travel Policy"


def test_worker_rejections_and_failures_keep_their_status():
    def parse_or_crash(source, data):
        if source.endswith("crash.md"):
            raise OSError("disk read error")
        return parse_document(source, data)

    with IsolatedParser(parse_or_crash, timeout_s=60) as parser:
        with pytest.raises(DocumentRejected) as empty:
            parser.parse("file:///corpus/empty.md", b"")
        with pytest.raises(DocumentRejected) as crash:
            parser.parse("file:///corpus/crash.md", b"# Fine")
    assert (empty.value.status, empty.value.reason) == ("quarantined", "empty file (0 bytes)")
    assert (crash.value.status, crash.value.reason) == ("failed", "OSError: disk read error")


def test_the_ingest_job_indexes_good_files_and_records_bad_ones_with_reasons(tmp_path, capsys):
    """Through the real job (forked parse worker, OCR engine resource, ledger): no crash,
    every file indexed with chunks or recorded with its reason."""
    import json
    import shutil

    from pipelines.cli import main
    from resources.ledger import Ledger

    files = {"policy.docx": fx.docx(), "rates.xlsx": fx.xlsx(), "scan.pdf": fx.scanned_pdf(),
             "bomb.docx": HOSTILE["bomb.docx"], "song.mp3": HOSTILE["song.mp3"],
             "encrypted.pdf": HOSTILE["encrypted.pdf"]}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in files.items():
        (corpus / name).write_bytes(data)
    assert main(["ingest", "--json", "--source", str(corpus), "--data-dir", str(tmp_path / "data")]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = Ledger(url=f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite'}").rows(summary["index_version"])
    outcome = {source.rsplit("/", 1)[-1]: (row.status, row.chunk_count, row.reason) for source, row in rows.items()}
    scan_expected = "indexed" if shutil.which("tesseract") else "quarantined"
    assert {name: status for name, (status, _, _) in outcome.items()} == {
        "policy.docx": "indexed", "rates.xlsx": "indexed", "scan.pdf": scan_expected,
        "bomb.docx": "quarantined", "song.mp3": "quarantined", "encrypted.pdf": "quarantined",
    }
    assert all(count > 0 for status, count, _ in outcome.values() if status == "indexed")
    assert all(reason for status, _, reason in outcome.values() if status != "indexed")
    assert "zip bomb" in outcome["bomb.docx"][2]


def test_a_hidden_text_scan_that_hangs_or_crashes_costs_one_document(tmp_path, monkeypatch):
    """The hidden-text scan re-reads HTML and PDF markup with BeautifulSoup and pdfplumber;
    it runs in the forked parse worker (which inherits this patch), so a scan that hangs is
    stopped at the parse deadline and one whose process is killed is caught, each
    quarantining its own document while the others are indexed."""
    import os
    import signal
    import time

    from assets.ingestion import stages
    from pipelines.cli import run_ingest
    from pipelines.settings import Settings
    from resources.ledger import Ledger

    real_scan = stages.hidden_text

    def scan_or_misbehave(content_type, data):
        if b"hang here" in data:
            time.sleep(600)
        if b"crash here" in data:
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
        return real_scan(content_type, data)

    monkeypatch.setattr(stages, "hidden_text", scan_or_misbehave)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "hangs.html").write_text("<html><body><h1>Rooms</h1><p>hang here</p></body></html>")
    (corpus / "crashes.html").write_text("<html><body><h1>Desks</h1><p>crash here</p></body></html>")
    (corpus / "rooms.html").write_text("<html><body><h1>Rooms</h1><p>Book rooms on Mondays.</p></body></html>")
    (corpus / "policy.md").write_bytes(fx.markdown())

    summary = run_ingest(Settings(data_dir=tmp_path / "data", source_dir=corpus, parse_timeout_s=3))
    assert summary["success"], summary["errors"]
    rows = Ledger(url=f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite'}").rows(summary["index_version"])
    outcome = {source.rsplit("/", 1)[-1]: (row.status, row.reason) for source, row in rows.items()}
    assert outcome["hangs.html"][0] == "quarantined"
    assert "took longer than 3s and was stopped" in outcome["hangs.html"][1]
    assert outcome["crashes.html"][0] == "quarantined"
    assert "process died" in outcome["crashes.html"][1]
    assert outcome["rooms.html"][0] == outcome["policy.md"][0] == "indexed"
