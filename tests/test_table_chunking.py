"""Tables in chunks: whole rows only, the header row repeated in every chunk of a table."""

from __future__ import annotations

import pytest

from assets.ingestion.chunking import chunk_document, make_splitter
from core.tables import markdown_table, split_table
from core.types import Block, ParsedDocument
from resources.embedders import SentenceTransformerEmbedder

HEADER = "| Region | Depot | Manager | Phone extension | Notes |\n| --- | --- | --- | --- | --- |"


@pytest.fixture(scope="module")
def count_tokens():
    return SentenceTransformerEmbedder().count_tokens


def big_table(rows: int) -> str:
    return markdown_table(
        [["Region", "Depot", "Manager", "Phone extension", "Notes"]]
        + [[f"Region {i % 7}", f"Depot {i}", f"Manager number {i}", f"x{4000 + i}",
            f"Opens at {6 + i % 4} am; dock {i % 12} handles refrigerated freight"] for i in range(rows)]
    )


def test_large_table_is_split_between_rows_with_the_header_in_each_chunk(count_tokens):
    table = big_table(60)
    rows = table.split("\n")[2:]
    document = ParsedDocument(title="Depots", content_type="text/markdown", language="en", blocks=[
        Block("Depot directory for the northern network.", section="Depots"),
        Block(table, section="Depots", kind="table"),
        Block("Call the duty manager outside opening hours.", section="Depots"),
    ])
    chunks = chunk_document(document, source="file:///c/depots.md", doc_id="d" * 64, index_version="v1",
                            pii_entities={}, splitter=make_splitter(128, 16, count_tokens),
                            count_tokens=count_tokens, chunk_size=128)
    table_chunks = [c["text"] for c in chunks if c["text"].startswith("| Region")]
    assert len(table_chunks) > 3
    assert all(text.startswith(HEADER + "\n") for text in table_chunks)
    assert all(c["token_count"] <= 128 for c in chunks)
    body_rows = [line for text in table_chunks for line in text.split("\n")[2:]]
    assert body_rows == rows  # every row exactly once, whole, in order
    assert chunks[0]["text"] == "Depot directory for the northern network."
    assert chunks[-1]["text"] == "Call the duty manager outside opening hours."
    assert {c["section"] for c in chunks} == {"Depots"}


def test_a_row_longer_than_the_budget_stays_whole(count_tokens):
    long_row = "| " + " ".join(["refrigerated"] * 80) + " | x |"
    table = "| Notes | Ext |\n| --- | --- |\n| short | 1 |\n" + long_row + "\n| short again | 2 |"
    parts = split_table(table, 32, count_tokens)
    assert parts == [
        "| Notes | Ext |\n| --- | --- |\n| short | 1 |",
        "| Notes | Ext |\n| --- | --- |\n" + long_row,
        "| Notes | Ext |\n| --- | --- |\n| short again | 2 |",
    ]


def test_small_table_is_one_chunk_and_cells_with_pipes_are_escaped(count_tokens):
    table = markdown_table([["Key", "Value"], ["a|b", None], ["", ""]])
    assert table == "| Key | Value |\n| --- | --- |\n| a\\|b |  |"
    assert split_table(table, 200, count_tokens) == [table]


def test_the_ingest_job_chunks_csv_and_xlsx_tables_by_rows_under_their_header(tmp_path):
    """Through the job: screening rewrites block text (here an e-mail address in a cell)
    and keeps the block's table kind, so chunking splits the tables between rows."""
    import csv
    import io

    import openpyxl

    from pipelines.cli import run_ingest
    from pipelines.definitions import build_resources
    from pipelines.settings import Settings

    cells = [["Region", "Depot", "Manager", "Phone extension", "Notes"]] + [
        [f"Region {i % 7}", f"Depot {i}", f"Manager number {i}", f"x{4000 + i}",
         f"Opens at {6 + i % 4} am; dock {i % 12} handles refrigerated freight"] for i in range(60)]
    cells[5][2] = "jane.roe@contoso.com"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    buffer = io.StringIO()
    csv.writer(buffer).writerows(cells)
    (corpus / "depots.csv").write_text(buffer.getvalue(), encoding="utf-8")
    workbook = openpyxl.Workbook()
    for row in cells:
        workbook.active.append(row)
    workbook.save(corpus / "depots.xlsx")

    settings = Settings(data_dir=tmp_path / "data", source_dir=corpus, chunk_size_tokens=128)
    summary = run_ingest(settings)
    assert summary["success"], summary["errors"]
    store = build_resources(settings)["vector_store"]
    try:
        payloads = [payload for _, payload in store.payloads(summary["collection"])]
    finally:
        store.close()

    expected_rows = markdown_table(cells).replace("jane.roe@contoso.com", "<EMAIL_ADDRESS>").split("\n")[2:]
    for name in ("depots.csv", "depots.xlsx"):
        chunks = sorted((p for p in payloads if p["source"].endswith(name)), key=lambda p: p["chunk_id"])
        assert len(chunks) > 3
        assert all(chunk["text"].startswith(HEADER + "\n") for chunk in chunks)
        assert [line for chunk in chunks for line in chunk["text"].split("\n")[2:]] == expected_rows
