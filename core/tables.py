"""Tables as Markdown: one line per row, so a row is the unit nothing may split."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

_CELL_BORDER = re.compile(r"(?<!\\)\|")  # a cell's own pipes are escaped (``_cell``)


def markdown_table(rows: list[list[str]]) -> str:
    """Render rows (the first is the header) as a Markdown table; empty rows are dropped."""
    cells = [[_cell(value) for value in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return ""
    width = max(len(row) for row in cells)
    cells = [row + [""] * (width - len(row)) for row in cells]
    return "\n".join([_row_line(cells[0]), _separator(width), *(_row_line(row) for row in cells[1:])])


def table_parts(table: str) -> tuple[str, list[str]]:
    """Split a Markdown table into its header (header row and separator) and its body rows."""
    lines = table.split("\n")
    return "\n".join(lines[:2]), lines[2:]


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _row_line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _separator(width: int) -> str:
    return "|" + " --- |" * width


def row_cells(line: str) -> list[str]:
    """The cells of one Markdown table line, escaped pipes kept inside their cell."""
    return [cell.strip() for cell in _CELL_BORDER.split(line.strip())[1:-1]]


def split_table(table: str, max_tokens: int, count_tokens: Callable[[str], int]) -> list[str]:
    """Split a Markdown table into chunks of at most ``max_tokens``, each under its header.

    When every row fits under the header, the table is split into row groups. When a row does
    not, its columns are split into groups first (``column_groups``), each a table of its own
    whose first column, the row's key, is repeated so a chunk still says which row a cell is
    in; then each is split into row groups. Neither a row of a group nor a cell is ever split:
    a single row or cell over the budget is a chunk of its own, over the budget."""
    header, rows = table_parts(table)
    header_tokens = count_tokens(header)
    if all(header_tokens + count_tokens(row) <= max_tokens for row in rows):
        return _row_groups(header, rows, max_tokens, count_tokens)
    lines = [row_cells(line) for line in table.split("\n")]
    del lines[1]  # the separator is rebuilt for each group's width
    width = max(len(cells) for cells in lines)
    lines = [cells + [""] * (width - len(cells)) for cells in lines]
    costs = _column_costs(lines, count_tokens)
    border = count_tokens("|")
    # A narrower group leaves room for more rows under its header: take the widths that give
    # the fewest chunks (370 columns by 10 rows at 256 tokens: 123 chunks, not 262).
    candidates = (column_groups(costs, border, max_tokens // share) for share in (1, 2, 3, 4))
    groups = min(candidates, key=lambda found: _chunk_count(costs, found, border, max_tokens))
    chunks = []
    for group in groups:
        picked = [[cells[column] for column in group] for cells in lines]
        group_header = "\n".join([_row_line(picked[0]), _separator(len(group))])
        chunks += _row_groups(group_header, [_row_line(cells) for cells in picked[1:]], max_tokens, count_tokens)
    return chunks


def _column_costs(lines: list[list[str]], count_tokens: Callable[[str], int]) -> list[list[int]]:
    """Per column, the tokens of each line's cell (header, rows, then the separator's), each
    with its left border. A line's tokens are the sum of its cells' plus its closing pipe:
    exact for tokenizers that split on punctuation, as the embedders' do. Each distinct cell
    text is counted once, so a wide table costs one count per distinct value."""
    cost = cache(lambda text: count_tokens(f"| {text} "))
    return [[cost(cells[column]) for cells in lines] + [cost("---")] for column in range(len(lines[0]))]


def column_groups(costs: list[list[int]], border: int, max_tokens: int) -> list[list[int]]:
    """Column indexes grouped, in order, so the header line, the separator and the widest row
    of each group fit ``max_tokens``; column 0 (the key) starts every group. A column that
    does not fit even beside the key alone is a group of its own with the key, over the budget."""
    key = costs[0]
    groups, used = [[0]], key  # used: per line, the current group's tokens
    for column in range(1, len(costs)):
        added = [total + cell for total, cell in zip(used, costs[column], strict=True)]
        if len(groups[-1]) > 1 and not _fits(added, border, max_tokens):
            groups.append([0])
            added = [total + cell for total, cell in zip(key, costs[column], strict=True)]
        groups[-1].append(column)
        used = added
    return groups


def _fits(line_costs: list[int], border: int, max_tokens: int) -> bool:
    """Whether the header, the separator and the widest body row fit, each line with its border."""
    header, *rows, separator = line_costs
    return header + separator + max(rows, default=0) + 3 * border <= max_tokens


def _chunk_count(costs: list[list[int]], groups: list[list[int]], border: int, max_tokens: int) -> int:
    """How many chunks ``_row_groups`` would make of these column groups, from the cell costs."""
    count = 0
    for group in groups:
        header, *rows, separator = (sum(line) + border for line in zip(*(costs[c] for c in group), strict=True))
        count += len(_packed(rows, max_tokens - header - separator)) if rows else 0
    return count


def _row_groups(header: str, rows: list[str], max_tokens: int, count_tokens: Callable[[str], int]) -> list[str]:
    """Rows in groups of at most ``max_tokens`` under ``header``; a row over the budget alone."""
    groups = _packed([count_tokens(row) for row in rows], max_tokens - count_tokens(header))
    return ["\n".join([header, *(rows[index] for index in group)]) for group in groups]


def _packed(costs: list[int], budget: int) -> list[list[int]]:
    """Indexes of ``costs`` in order, in groups whose costs sum to at most ``budget``; an item
    over the budget is a group of its own (no items: one empty group)."""
    groups: list[list[int]] = [[]]
    used = 0
    for index, cost in enumerate(costs):
        if groups[-1] and used + cost > budget:
            groups.append([])
            used = 0
        groups[-1].append(index)
        used += cost
    return groups
