"""The one Markdown table writer (:mod:`abr.common.tables`)."""

from __future__ import annotations

import pytest

from abr.common.tables import markdown_table


def test_a_table_is_a_header_an_alignment_row_and_a_line_a_row() -> None:
    assert markdown_table(["agent", "n", "mid"], [["bba", 3, "x"], ["rb", 12.5, ""]], align="lrc") == [
        "| agent | n | mid |",
        "|---|---:|:---:|",
        "| bba | 3 | x |",
        "| rb | 12.5 |  |",
    ]


def test_columns_are_left_aligned_unless_told_and_a_table_may_be_empty() -> None:
    assert markdown_table(("a", "b"), []) == ["| a | b |", "|---|---|"]


def test_a_pipe_inside_a_cell_cannot_end_it() -> None:
    assert markdown_table(["reason"], [["timeout | retry"]])[2] == "| timeout / retry |"


@pytest.mark.parametrize(("rows", "align", "match"), [
    ([["only one"]], None, "row 0 has 1 cells for 2 columns"),
    ([], "l", "align='l'"),
    ([], "lx", "align='lx'"),
])
def test_a_ragged_row_or_a_bad_alignment_is_refused(rows: list[list[str]], align: str | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        markdown_table(["a", "b"], rows, align=align)
