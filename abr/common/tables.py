"""The Markdown table writer every report uses (evaluation, generalisation, sessions, fidelity).

A table is a header row, an alignment row and one line a row, cells separated by ``" | "``:

>>> print("\\n".join(markdown_table(["agent", "n"], [["bba", 3], ["rb", 12]], align="lr")))
| agent | n |
|---|---:|
| bba | 3 |
| rb | 12 |
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: The alignment row's cell of each alignment letter: left, right, centre.
ALIGN_RULES = {"l": "---", "r": "---:", "c": ":---:"}


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> list[str]:
    """The lines of a Markdown table.

    Args:
        headers: the column names.
        rows: the cells of each row, one per column, written with ``str`` (format numbers before).
        align: one letter a column, ``l`` (left), ``r`` (right) or ``c`` (centre); ``None``: all ``l``.

    Returns:
        The header line, the alignment line and one line a row (no trailing newline).

    Raises:
        ValueError: ``align`` or a row does not have one entry a column, or ``align`` has another letter.

    A ``|`` inside a cell would end the cell early; it is written as ``/``.

    >>> markdown_table(["reason"], [["a | b"]])[2]
    '| a / b |'
    """
    align = "l" * len(headers) if align is None else align
    if len(align) != len(headers) or not set(align) <= ALIGN_RULES.keys():
        raise ValueError(f"align={align!r}: give one of {''.join(ALIGN_RULES)} for each of the {len(headers)} columns")
    lines = [_row(headers), "|" + "|".join(ALIGN_RULES[a] for a in align) + "|"]
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"row {i} has {len(row)} cells for {len(headers)} columns: {list(row)!r}")
        lines.append(_row(row))
    return lines


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"
