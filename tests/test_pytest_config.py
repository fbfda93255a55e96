"""A bare ``pytest`` (pyproject.toml's configuration, no arguments) collects every doctest of the four packages.

The oracle is the standard library's :class:`doctest.DocTestFinder` run over every module of the packages; only
``abr/__main__.py`` is left out, as it runs the command line when imported.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("abr", "simulator", "traces", "agents")


def _docstring_examples() -> set[str]:
    """Dotted names of every object of the packages whose docstring holds at least one example."""
    names = set()
    finder = doctest.DocTestFinder()
    for package in PACKAGES:
        root = importlib.import_module(package)
        modules = [root.__name__] + [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]
        for name in modules:
            if name.endswith(".__main__"):
                continue
            names |= {test.name for test in finder.find(importlib.import_module(name)) if test.examples}
    return names


def test_bare_pytest_collects_the_doctests_of_every_package_and_not_main() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    items = [line for line in proc.stdout.splitlines() if "::" in line]
    doctests = {item.split("::", 1)[1] for item in items if item.split("/", 1)[0] in PACKAGES}
    expected = _docstring_examples()
    assert len(expected) > 100 and {name.split(".")[0] for name in expected} == set(PACKAGES)
    assert doctests == expected
    assert any(item.startswith("tests/") for item in items)  # and the tests themselves
    assert "__main__" not in proc.stdout and "Usage:" not in proc.stdout + proc.stderr  # the CLI did not run
