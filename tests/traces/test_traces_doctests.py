"""Run the doctest examples of the data-layer modules (also reachable with ``pytest --doctest-modules``)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "traces._text",
    "traces.datadir",
    "traces.download",
    "traces.readers",
    "traces.synthetic",
    "traces.units",
    "traces.videos",
]


@pytest.mark.parametrize("module_name", MODULES)
def test_doctests(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module_name} has no doctest examples"
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {module_name}"
