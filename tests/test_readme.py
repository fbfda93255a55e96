"""The README's Python snippets run, each in a fresh interpreter with a time limit.

The snippets read as one session: snippet ``k`` runs after the snippets before it (the player snippet's names,
``real`` and ``content``, are used by none after it). What the README leaves to the reader is filled in here,
and each of these stand-ins must still be found in the README:

* the data paths ``../shared/data/...`` point at the data folder the tests use (``ABR_DATA_DIR``);
* the placeholder ``<file>`` is the first trace file of ``fcc/test``;
* names a snippet uses without defining them: ``traces`` (the reader's traces: ``[trace]``) and ``my_actions``
  (the reader's policy: level 1 everywhere);
* the snippet whose comment says it ``needs the player setup`` (chromium, ffmpeg, dash.js) runs only as a
  ``browser`` test, on 24 s of content instead of 192 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ._requirements import require_browser, require_ffmpeg

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
PLAYER_MARK = "needs the player setup"
#: Names the README leaves to the reader, and what stands in for them (inserted before the first snippet that
#: uses the name without assigning it).
READER_NAMES = {
    "traces": "traces = [trace]",
    "my_actions": "import numpy as np\nmy_actions = np.full(1024, 1)",
}
#: The player snippet's content length: shortened so the browser session takes seconds, not a minute.
PLAYER_SHORTENING = ("duration_s=192", "duration_s=24")
SNIPPET_TIMEOUT_S = 300


def python_snippets() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL)


SNIPPETS = python_snippets()


def _uses_undefined(snippet: str, name: str) -> bool:
    code = re.sub(r"#.*|\"[^\"\n]*\"|'[^'\n]*'", "", snippet)  # without comments and strings
    uses = re.search(rf"(?<![\w.]){name}(?![\w.])", code) is not None  # `from traces.x import` is no use
    return uses and re.search(rf"^\s*{name}\s*=", code, flags=re.MULTILINE) is None


def _program(k: int, data_dir: Path) -> str:
    """Snippets 0..k as one program (earlier player snippets left out), with the stand-ins filled in."""
    trace_files = sorted(p.name for p in (data_dir / "traces" / "fcc" / "test").iterdir() if p.is_file())
    parts, defined = [], set()
    for i, snippet in enumerate(SNIPPETS[: k + 1]):
        is_player = PLAYER_MARK in snippet
        if is_player and i < k:
            continue
        if is_player:
            assert PLAYER_SHORTENING[0] in snippet, "the player snippet's content length changed: update the test"
            snippet = snippet.replace(*PLAYER_SHORTENING)
        for name, stand_in in READER_NAMES.items():
            if name not in defined and _uses_undefined(snippet, name):
                parts.append(stand_in)
                defined.add(name)
        parts.append(snippet)
    program = "\n\n".join(parts)
    program = program.replace('"../shared/data/', f'"{data_dir}/').replace("<file>", trace_files[0])
    return program


def test_the_readme_has_its_snippets_and_every_stand_in_is_still_used() -> None:
    text = "\n".join(SNIPPETS)
    assert len(SNIPPETS) >= 4 and sum(PLAYER_MARK in s for s in SNIPPETS) == 1
    assert '"../shared/data/' in text and "<file>" in text
    assert all(any(_uses_undefined(s, name) for s in SNIPPETS) for name in READER_NAMES)


def _run(k: int, data_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ABR_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-c", _program(k, data_dir)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=SNIPPET_TIMEOUT_S)


@pytest.mark.parametrize("k", [k for k, s in enumerate(SNIPPETS) if PLAYER_MARK not in s],
                         ids=lambda k: f"snippet{k + 1}")
def test_a_readme_snippet_runs(k: int, data_dir: Path, tmp_path: Path) -> None:
    proc = _run(k, data_dir, tmp_path)
    assert proc.returncode == 0, f"README snippet {k + 1} failed:\n{SNIPPETS[k]}\n{proc.stderr[-3000:]}"


@pytest.mark.browser
@pytest.mark.parametrize("k", [k for k, s in enumerate(SNIPPETS) if PLAYER_MARK in s], ids=lambda k: f"snippet{k + 1}")
def test_the_readme_player_snippet_runs(k: int, data_dir: Path, tmp_path: Path) -> None:
    require_ffmpeg()
    require_browser()
    proc = _run(k, data_dir, tmp_path)
    assert proc.returncode == 0, f"README snippet {k + 1} failed:\n{SNIPPETS[k]}\n{proc.stderr[-3000:]}"
    assert "True" in proc.stdout  # print(real.result.metrics, real.complete, ...): the session completed
