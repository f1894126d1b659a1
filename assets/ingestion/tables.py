"""Tables as Markdown: one line per row, so a row is the unit nothing may split."""

from __future__ import annotations


def markdown_table(rows: list[list[str]]) -> str:
    """Render rows (the first is the header) as a Markdown table; empty rows are dropped."""
    cells = [[_cell(value) for value in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return ""
    width = max(len(row) for row in cells)
    cells = [row + [""] * (width - len(row)) for row in cells]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def table_parts(table: str) -> tuple[str, list[str]]:
    """Split a Markdown table into its header (header row and separator) and its body rows."""
    lines = table.split("\n")
    return "\n".join(lines[:2]), lines[2:]


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")
