"""Fixtures of the real-player tests: DASH content made once per test session with the real ffmpeg.

What these tests need beyond Python is checked here: ffmpeg (content) and, for ``browser``-marked tests, the
``player`` extra's Playwright, Debian's chromium and dash.js from npm; missing, they skip on a partial install and
fail under ``ABR_REQUIRE_EXTRAS`` (see ``tests/_requirements.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from abr.player.content import Content, make_content
from traces.types import Trace

from ..._requirements import require_browser, require_ffmpeg

#: Test content: 20 segments of 4 s (80 s) on the Envivio ladder, a quarter of a minute and a half at 4x.
TEST_CONTENT_S = 80.0


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("browser") is not None:
        require_browser()


@pytest.fixture(scope="session")
def player_content(tmp_path_factory: pytest.TempPathFactory) -> Content:
    require_ffmpeg()
    # The default source (seeded scenes) without the SSIM pass, which test_content_quality.py covers on small
    # encodes: measuring 80 s at up to 1080p would add a minute to every suite that uses this content.
    return make_content(tmp_path_factory.mktemp("content") / "envivio80", duration_s=TEST_CONTENT_S,
                        measure_quality=False)


def constant_trace(mbps: float, name: str, seconds: int = 600) -> Trace:
    return Trace(np.arange(0.0, seconds + 1.0), np.full(seconds + 1, mbps * 1e6), name=name)


def step_trace(low_mbps: float, high_mbps: float, at_s: int, name: str, seconds: int = 600) -> Trace:
    t = np.arange(0.0, seconds + 1.0)
    return Trace(t, np.where(t <= at_s, low_mbps * 1e6, high_mbps * 1e6), name=name)
