"""The requirement helpers of tests/_requirements.py: a partial install skips, ABR_REQUIRE_EXTRAS makes it fail.

The subprocess tests run real test files of the suite with one extra hidden (``sys.modules[name] = None``, which
makes importing it raise ModuleNotFoundError), as a CI machine missing that extra would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ._requirements import (
    REQUIRE_EXTRAS_ENV,
    extras_required,
    require_browser,
    require_executable,
    require_ffmpeg,
    require_installed,
    require_module,
    require_npm_package,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
ABSENT = "abr_test_no_such_module"


@pytest.fixture(params=[None, "0", "1", "yes"], ids=["unset", "0", "1", "yes"])
def setting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """ABR_REQUIRE_EXTRAS in each form; the value is whether requirements must then be met."""
    if request.param is None:
        monkeypatch.delenv(REQUIRE_EXTRAS_ENV, raising=False)
    else:
        monkeypatch.setenv(REQUIRE_EXTRAS_ENV, request.param)
    return request.param in ("1", "yes")


def _outcome(setting: bool) -> type[BaseException]:
    return pytest.fail.Exception if setting else pytest.skip.Exception


def test_the_setting_is_read_from_the_environment(setting: bool) -> None:
    assert extras_required() is setting


def test_a_missing_module_skips_or_fails_with_its_extra(setting: bool) -> None:
    with pytest.raises(_outcome(setting)) as raised:
        require_module(ABSENT, extra="rl")
    message = str(raised.value)
    assert repr(ABSENT) in message and 'pip install -e ".[rl]"' in message and "scripts/setup.sh" in message
    assert (REQUIRE_EXTRAS_ENV in message) is setting


def test_a_present_module_is_returned(setting: bool) -> None:
    assert require_module("json", extra="rl") is json


def test_a_broken_module_is_an_error_not_a_missing_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "abr_test_broken.py").write_text("from json import no_such_name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(REQUIRE_EXTRAS_ENV, raising=False)
    with pytest.raises(ImportError, match="no_such_name"):
        require_module("abr_test_broken", extra="rl")


def test_require_installed_finds_a_module_without_importing_it(
        setting: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "abr_test_explodes.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    require_installed("abr_test_explodes", extra="ray")  # found, and not imported (it would raise)
    assert "abr_test_explodes" not in sys.modules
    with pytest.raises(_outcome(setting), match=f"{ABSENT!r} of the 'ray' extra.*pip install"):
        require_installed(ABSENT, extra="ray")


def test_executables_are_found_on_path_or_through_their_variable(
        setting: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "bin" / "abr-test-tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tool.parent))
    assert require_executable("abr-test-absent", "abr-test-tool", hint="h") == str(tool)  # an alternative name
    with pytest.raises(_outcome(setting), match="'abr-test-absent'.*apt-get install it"):
        require_executable("abr-test-absent", hint="apt-get install it")
    monkeypatch.setenv("ABR_TEST_TOOL", str(tool))
    assert require_executable("abr-test-absent", env="ABR_TEST_TOOL", hint="h") == str(tool)
    monkeypatch.setenv("ABR_TEST_TOOL", str(tmp_path / "nowhere"))  # set, but wrong: not silently replaced
    with pytest.raises(_outcome(setting), match=r"nowhere.*\$ABR_TEST_TOOL"):
        require_executable("abr-test-tool", env="ABR_TEST_TOOL", hint="h")


def test_the_players_tools_are_required_by_name(
        setting: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.delenv("ABR_CHROMIUM", raising=False)
    with pytest.raises(_outcome(setting), match="'ffmpeg'.*apt-get install ffmpeg"):
        require_ffmpeg()
    monkeypatch.setitem(sys.modules, "playwright", None)
    with pytest.raises(_outcome(setting), match="'playwright' of the 'player' extra"):
        require_browser()


def test_npm_packages_are_looked_up_in_node_modules(
        setting: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dashjs").mkdir()
    (tmp_path / "dashjs" / "package.json").write_text("{}")
    monkeypatch.setenv("ABR_NODE_MODULES", str(tmp_path))
    assert require_npm_package("dashjs") == tmp_path / "dashjs"
    with pytest.raises(_outcome(setting), match="'onnxruntime-web'.*npm ci"):
        require_npm_package("onnxruntime-web")


def _pytest_with_hidden(module: str, test_file: str, *, required: bool) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``test_file`` in a fresh interpreter where importing ``module`` fails."""
    code = (f"import sys; sys.modules[{module!r}] = None; import pytest; "
            f"sys.exit(pytest.main([{test_file!r}, '-p', 'no:cacheprovider', '-q', '-rs']))")
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_EXTRAS_ENV}
    if required:
        env[REQUIRE_EXTRAS_ENV] = "1"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize(("module", "test_file", "extra"), [
    ("stable_baselines3", "tests/agents/test_rl.py", "rl"),
    ("onnxruntime", "tests/abr/test_export.py", "export"),
])
def test_with_the_setting_a_hidden_extra_fails_the_run_loudly(module: str, test_file: str, extra: str) -> None:
    proc = _pytest_with_hidden(module, test_file, required=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out  # a collection error stops the run
    assert f"ERROR collecting {test_file}" in out and "passed" not in out and "skipped" not in out, out
    assert f"Python module {module!r} of the {extra!r} extra" in out and f'pip install -e ".[{extra}]"' in out
    assert f"{REQUIRE_EXTRAS_ENV} is set, so this is a failure, not a skip" in out


def test_without_the_setting_a_hidden_extra_skips_the_file_with_the_hint() -> None:
    proc = _pytest_with_hidden("stable_baselines3", "tests/agents/test_rl.py", required=False)
    out = proc.stdout + proc.stderr
    # Skipped as a module (twice with --doctest-modules: its tests and its doctests), nothing run or failed.
    assert proc.returncode == pytest.ExitCode.NO_TESTS_COLLECTED and re.search(r"\b\d+ skipped in", out), out
    assert not re.search(r"passed|failed|error", out), out
    assert "Python module 'stable_baselines3' of the 'rl' extra" in out and 'pip install -e ".[rl]"' in out
