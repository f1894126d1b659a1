"""Tables as Markdown: one line per row, so a row is the unit nothing may split."""

from __future__ import annotations

from collections.abc import Callable


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


def split_table(table: str, max_tokens: int, count_tokens: Callable[[str], int]) -> list[str]:
    """Split a Markdown table into row groups of at most ``max_tokens``, each under the
    table's header. A row is never split: a single row over the limit is a group of its own."""
    header, rows = table_parts(table)
    budget = max_tokens - count_tokens(header)
    groups: list[list[str]] = [[]]
    used = 0
    for row in rows:
        tokens = count_tokens(row)
        if groups[-1] and used + tokens > budget:
            groups.append([])
            used = 0
        groups[-1].append(row)
        used += tokens
    return ["\n".join([header, *group]) for group in groups]
