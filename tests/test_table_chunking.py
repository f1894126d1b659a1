"""Tables in chunks: whole rows only, the header row repeated in every chunk of a table; rows
wider than a chunk split by column groups under their own header, never inside a cell."""

from __future__ import annotations

import io

import pytest

from assets.ingestion.chunking import chunk_document, make_splitter
from core.tables import markdown_table, row_cells, split_table
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


def chunk_parsed(document: ParsedDocument, source: str, count_tokens, size: int) -> list[dict]:
    return chunk_document(document, source=source, doc_id="d" * 64, index_version="v1", pii_entities={},
                          splitter=make_splitter(size, 16, count_tokens), count_tokens=count_tokens, chunk_size=size)


def cells_by_key_and_column(chunks: list[dict]) -> dict[tuple[str, str], str]:
    """(row key, column name) -> cell, read back from table chunks; each pair must appear once
    (the key column itself is in every chunk, so it is left out)."""
    found: dict[tuple[str, str], str] = {}
    for chunk in chunks:
        header, _, *rows = [row_cells(line) for line in chunk["text"].split("\n")]
        for cells in rows:
            for column, value in zip(header[1:], cells[1:], strict=True):
                assert (cells[0], column) not in found, (cells[0], column)
                found[cells[0], column] = value
    return found


def test_a_wide_csv_is_split_by_column_groups_each_under_its_header_with_the_key(count_tokens):
    """370 columns by 10 rows: every chunk fits the budget, is a column group's header row, its
    separator and whole rows, starts with the key column, and together they hold every cell once."""
    from assets.ingestion.parsing import parse_document

    rows = [["Sample"] + [f"Measure {c} (mg/l)" for c in range(369)]]
    rows += [[f"S-{r}"] + [f"{(r * 369 + c) % 997}.{c % 10}" for c in range(369)] for r in range(10)]
    data = "\n".join(",".join(row) for row in rows).encode()
    document = parse_document("file:///c/wide.csv", data)
    chunks = chunk_parsed(document, "file:///c/wide.csv", count_tokens, 200)

    assert 20 < len(chunks) < 196  # today's mid-row split made 196 chunks of 10 rows
    for chunk in chunks:
        lines = chunk["text"].split("\n")
        header = row_cells(lines[0])
        assert header[0] == "Sample" and len(header) > 1
        assert header[1:] == rows[0][rows[0].index(header[1]):][:len(header) - 1]  # consecutive columns
        assert lines[1] == "|" + " --- |" * len(header)
        assert all(len(row_cells(line)) == len(header) for line in lines[2:]) and len(lines) > 2
        assert chunk["token_count"] <= 200
    expected = {(row[0], name): value for row in rows[1:] for name, value in zip(rows[0][1:], row[1:], strict=True)}
    assert cells_by_key_and_column(chunks) == expected


def test_a_cell_over_the_budget_is_a_group_of_its_own_and_stays_whole(count_tokens):
    huge = " ".join(["refrigerated"] * 80)
    table = markdown_table([["Key", "Short", "Long", "Tail"], ["k1", "a", huge, "z"], ["k2", "b", "c", "y"]])
    parts = split_table(table, 40, count_tokens)
    assert [row_cells(part.split("\n")[0]) for part in parts] == [["Key", "Short"], ["Key", "Long"], ["Key", "Long"],
                                                                    ["Key", "Tail"]]
    assert "| k1 | " + huge + " |" in parts[1]
    assert parts[2].endswith("| k2 | c |")
    assert all(count_tokens(part) <= 40 for part in parts if huge not in part)


def test_every_chunk_of_a_multi_sheet_xlsx_carries_its_sheet_and_header_through_screening(count_tokens):
    """parse -> screen (PII rewritten in a cell) -> chunk with the real tokenizer: each chunk's
    section is its sheet's title and its text starts with that sheet's (column group's) header."""
    import openpyxl

    from assets.ingestion.parsing import parse_document
    from assets.screening.pii import PiiEngine
    from assets.screening.screen import Screener
    from core.types import PiiConfig

    depots = [["Region", "Depot", "Manager", "Phone extension", "Notes"]] + [
        [f"Region {i % 7}", f"Depot {i}", f"Manager number {i}", f"x{4000 + i}",
         f"Opens at {6 + i % 4} am; dock {i % 12} handles refrigerated freight"] for i in range(40)]
    depots[3][2] = "jane.roe@contoso.com"
    readings = [["Sensor"] + [f"Reading at hour {h}" for h in range(60)]]
    readings += [[f"T-{s}"] + [f"{(s * 7 + h) % 40}.5 C" for h in range(60)] for s in range(4)]
    workbook = openpyxl.Workbook()
    workbook.active.title = "Depots"
    for row in depots:
        workbook.active.append(row)
    sheet = workbook.create_sheet("Cold store readings")
    for row in readings:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)

    parsed = parse_document("file:///c/network.xlsx", buffer.getvalue())
    screened, pii = Screener(pii=PiiEngine(PiiConfig()), threshold=0.8).screen_document(parsed, "d" * 64)
    assert pii.get("EMAIL_ADDRESS") == 1
    assert [(block.section, block.kind) for block in screened.blocks] == [("Depots", "table"),
                                                                          ("Cold store readings", "table")]
    chunks = chunk_parsed(screened, "file:///c/network.xlsx", count_tokens, 128)

    by_sheet = {name: [c for c in chunks if c["section"] == name] for name in ("Depots", "Cold store readings")}
    assert sum(map(len, by_sheet.values())) == len(chunks)
    assert len(by_sheet["Depots"]) > 3 and len(by_sheet["Cold store readings"]) > 3
    assert all(c["text"].startswith(HEADER + "\n") for c in by_sheet["Depots"])
    depot_rows = [line for c in by_sheet["Depots"] for line in c["text"].split("\n")[2:]]
    assert depot_rows == markdown_table(depots).replace("jane.roe@contoso.com", "<EMAIL_ADDRESS>").split("\n")[2:]
    assert all(row_cells(c["text"].split("\n")[0])[0] == "Sensor" for c in by_sheet["Cold store readings"])
    expected = {(row[0], name): value for row in readings[1:]
                for name, value in zip(readings[0][1:], row[1:], strict=True)}
    assert cells_by_key_and_column(by_sheet["Cold store readings"]) == expected
    assert all(c["token_count"] <= 128 for c in chunks)
