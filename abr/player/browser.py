"""One real-player session end to end: the server, Debian's chromium (driven by Playwright), the log.

:func:`play_session` starts a :class:`~abr.player.server.PlayerServer` for (content, trace, agent), opens
the player page in chromium (headless unless ``show``), waits until the page posts its log, and turns the
log into the simulator's chunk records and session metrics (:mod:`abr.player.session_log`).
:func:`write_session` writes them in the schema of ``abr evaluate`` (``sessions.csv``, ``chunks.csv``),
with the raw ``player_log.json``, the server's ``transfers.csv`` and ``decisions.csv``.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abr.common.atomic import write_csv_atomic, write_json_atomic
from abr.errors import ConfigError, MissingExtraError
from abr.evaluation.tables import write_session_tables
from abr.evaluation.tasks import SessionResult
from abr.player.agents import browser_agent
from abr.player.content import Content
from abr.player.server import PlayerServer
from abr.player.session_log import chunk_outcomes, decision_times_ms, is_complete, undecided_segments
from simulator.config import SimConfig
from simulator.metrics import session_metrics
from simulator.qoe import QoEWeights
from traces.types import Trace

logger = logging.getLogger(__name__)

CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--disable-background-timer-throttling",
                 "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows")
#: The trace set name real sessions get in ``sessions.csv``.
PLAYER_SET = "player"


def chromium_path() -> str:
    """Debian's chromium (``$ABR_CHROMIUM``, else ``chromium`` on PATH), or a clear error."""
    path = os.environ.get("ABR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not Path(path).exists():
        raise ConfigError("chromium not found: install Debian's chromium (`apt-get install chromium`) or set "
                          "ABR_CHROMIUM to a Chromium executable")
    return path


@dataclass(frozen=True, slots=True)
class PlayResult:
    """A real-player session: its result in the evaluation's form, the raw log and the checks."""

    result: SessionResult
    log: dict[str, Any]
    complete: bool
    undecided: list[int]
    decision_ms: list[float]
    transfers: list[Any] = field(default_factory=list)

    @property
    def decision_ms_p50(self) -> float:
        return statistics.median(self.decision_ms) if self.decision_ms else float("nan")

    @property
    def decision_ms_max(self) -> float:
        return max(self.decision_ms) if self.decision_ms else float("nan")

    @property
    def benchmark(self) -> dict[str, float] | None:
        """The page's back-to-back timing of the policy over the session's contexts (None: not measured)."""
        bench = self.log.get("benchmark")
        return bench if isinstance(bench, dict) else None


def play_session(agent: str, trace: Trace, content: Content, sim_config: SimConfig, qoe: QoEWeights, *,
                 speed: float = 4.0, show: bool = False, timeout_s: float | None = None,
                 work_dir: str | Path | None = None, backend: str = "json") -> PlayResult:
    """Play ``content`` over ``trace`` with ``agent`` in a real chromium; see the module docstring.

    Args:
        agent: an agent with a browser rule (:func:`abr.player.agents.browser_agent`).
        trace: the trace that shapes the link.
        content: the DASH content (``abr player content``).
        sim_config: link parameters and buffer target (compare with the same config in the simulator).
        qoe: the QoE model for the metrics.
        speed: playback and trace speed-up.
        show: open a visible browser window (needs a display) instead of headless.
        timeout_s: give up after this many wall seconds (default: 3x the content at ``speed``, plus 60 s).
        work_dir: where the RL policy's weights are written (default: a temporary folder).
        backend: how the page evaluates an RL policy: ``json`` (plain JS) or ``onnx`` (ONNX Runtime Web).

    Raises:
        ConfigError: no chromium, no dash.js, an agent without a browser rule.
        MissingExtraError: Playwright or aiohttp are not installed.
        RuntimeError: the page failed or did not finish in time (the page's error is in the message).
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise MissingExtraError("playwright", "player") from None
    executable = chromium_path()
    video = content.video()
    limit = timeout_s if timeout_s is not None else 3.0 * video.n_chunks * video.chunk_duration_s / speed + 60.0
    with tempfile.TemporaryDirectory(prefix="abr-play-") as scratch:
        browser_form = browser_agent(agent, work_dir if work_dir is not None else scratch, backend=backend)
        console: list[str] = []
        with PlayerServer(content, trace, browser_form, sim_config, speed=speed) as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, headless=not show, args=list(CHROMIUM_ARGS))
            try:
                page = browser.new_page()
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                page.goto(server.url)
                page.wait_for_function("window.__abr && window.__abr.done === true", timeout=limit * 1000.0,
                                       polling=250)
                state = page.evaluate("window.__abr")
            except Exception as exc:
                tail = "; ".join(console[-5:])
                raise RuntimeError(f"the player page did not finish the session within {limit:.0f} s ({exc}); "
                                   f"console: {tail or 'empty'}") from None
            finally:
                browser.close()
            log = server.session.log
            transfers = list(server.session.transfers)
    if log is None:
        raise RuntimeError(f"the player page ended without posting its log: {state.get('error')}; "
                           f"console: {'; '.join(console[-5:]) or 'empty'}")
    return play_result(log, transfers, agent=agent, trace=trace, content=content, qoe=qoe)


def play_result(log: dict[str, Any], transfers: list[Any], *, agent: str, trace: Trace, content: Content,
                qoe: QoEWeights) -> PlayResult:
    """A posted log as a :class:`PlayResult` (chunk records, metrics, checks)."""
    video = content.video()
    outcomes = chunk_outcomes(log, video)
    metrics = session_metrics(outcomes, video, qoe, chunk_duration_s=video.chunk_duration_s)
    result = SessionResult(agent, PLAYER_SET, trace.name, metrics, tuple(outcomes), video=video.name)
    return PlayResult(result, log, is_complete(log, video.n_chunks), undecided_segments(log),
                      decision_times_ms(log), transfers)


def session_writer(out_dir: str | Path, *, agent: str, trace: Trace, content: Content,
                   qoe: QoEWeights) -> Callable[[dict[str, Any], list[Any]], Path]:
    """A :class:`~abr.player.server.PlayerServer` ``on_log`` callback writing each session to ``out_dir/NNN``."""
    out = Path(out_dir)
    count = [0]

    def write(log: dict[str, Any], transfers: list[Any]) -> Path:
        count[0] += 1
        folder = out / f"{count[0]:03d}"
        write_session([play_result(log, transfers, agent=agent, trace=trace, content=content, qoe=qoe)], folder)
        logger.info("session %d written to %s", count[0], folder)
        return folder

    return write


def write_session(results: list[PlayResult], out_dir: str | Path) -> dict[str, Path]:
    """Write real sessions in the schema of ``abr evaluate`` plus the raw logs (each file atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        **write_session_tables(out, [r.result for r in results]),
        "decisions": write_csv_atomic(
            out / "decisions.csv", ("agent", "trace", "chunk", "quality", "buffer_s", "decide_ms"),
            ((r.result.agent, r.result.trace, d["chunk"], d["quality"], d["buffer_s"], d["decide_ms"])
             for r in results for d in r.log["decisions"])),
        "transfers": write_csv_atomic(
            out / "transfers.csv", ("agent", "trace", "path", "size_bytes", "request_s", "first_byte_s", "end_s",
                                    "concurrent_max"),
            ((r.result.agent, r.result.trace, t.label, t.size_bytes, t.request_s, t.first_byte_s, t.end_s,
              t.concurrent_max) for r in results for t in r.transfers)),
        "log": write_json_atomic(out / "player_log.json", {"sessions": [
            {"agent": r.result.agent, "trace": r.result.trace, "complete": r.complete, "undecided": r.undecided,
             "log": r.log} for r in results]}),
    }
    return files
