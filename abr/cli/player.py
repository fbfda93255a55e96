"""Real-player commands of the ``abr`` CLI: ``abr player content``, ``abr player serve``, ``abr play``,
``abr fidelity``.

They need the ``player`` extra (aiohttp, Playwright), ffmpeg (content), Debian's chromium (``play``,
``fidelity``) and the npm packages of ``package.json`` (dash.js); ``scripts/setup.sh`` installs all of them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from abr.cli.common import ENVIVIO_LADDER_KBPS_TEXT, DataDirOption, OverwriteOption, QoEKind, reported_errors
from abr.common import inputs
from abr.errors import ConfigError
from simulator.config import preset
from simulator.qoe import QoEWeights
from traces.units import bps_to_kbps

player_app = typer.Typer(help="The real web player: DASH content and the trace-shaped server.",
                         no_args_is_help=True)

#: Every file ``abr play`` writes into --out (abr.player.browser.write_session) and its policy folder.
PLAY_OUTPUTS: tuple[str, ...] = ("sessions.csv", "chunks.csv", "decisions.csv", "transfers.csv", "player_log.json",
                                 "policy")
DEFAULT_CONTENT_S = 192.0  # 48 segments of 4 s, as the Envivio video of the research simulator
SpeedOption = Annotated[float, typer.Option(
    "--speed", min=0.25, max=8.0, help="Playback speed; the trace is played as fast and scaled to match.")]
ContentOption = Annotated[Path | None, typer.Option("--content", help="Content folder (default: made once).")]
QoEOption = Annotated[QoEKind, typer.Option("--qoe", help="QoE variant.")]
PresetOption = Annotated[str, typer.Option(
    "--preset", help="Link and player parameters (RTT, payload share, buffer target); compare with the same "
    "preset in the simulator.")]


@player_app.command("content")
def content_command(
    out: Annotated[Path, typer.Argument(help="The content folder to create (must be new or empty).")],
    ladder: Annotated[str, typer.Option(
        "--ladder-kbps", "--ladder", help="Bitrates in kbit/s, ascending, comma-separated.")
                      ] = ENVIVIO_LADDER_KBPS_TEXT,
    duration: Annotated[float, typer.Option("--duration", min=0.0, help="Seconds of content (0: a whole --source).")
                        ] = DEFAULT_CONTENT_S,
    segment: Annotated[float, typer.Option("--segment", min=0.5, help="Segment duration, seconds.")] = 4.0,
    fps: Annotated[int, typer.Option("--fps", min=1, help="Frame rate.")] = 24,
    source: Annotated[Path | None, typer.Option("--source", help="Package this video instead of a synthetic source.")
                      ] = None,
    audio_kbps: Annotated[float | None, typer.Option("--audio-kbps", help="Add an AAC audio track of this rate.")
                          ] = None,
    pattern: Annotated[str, typer.Option(
        "--pattern", help="Synthetic source: 'scenes' (seeded scenes of varying complexity) or 'testsrc2' (the old "
                          "constant pattern).")] = "scenes",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the scene sequence.")] = 0,
    quality: Annotated[bool, typer.Option(
        "--quality/--no-quality", help="Measure each segment's SSIM (dB) against the source into OUT/sizes.")] = True,
    max_height: Annotated[int | None, typer.Option(
        "--max-height", min=90, help="Cap every rendition's frame height (pixels, even), e.g. 180 for a quick try.")
                          ] = None,
) -> None:
    """Make H.264 DASH content with ffmpeg, and its chunk-size and SSIM table for the simulator (OUT/sizes)."""
    with reported_errors():
        from abr.player.content import make_content

        start = time.monotonic()
        ladder_kbps = list(inputs.parse_ladder_kbps(ladder) or ())
        c = make_content(out, ladder_kbps=ladder_kbps, duration_s=duration, segment_s=segment, fps=fps,
                         source=source, audio_kbps=audio_kbps, pattern=pattern, seed=seed, measure_quality=quality,
                         max_height=max_height)
        Console().print(f"{c.folder}: {c.n_segments} segments x {len(c.ladder_kbps)} renditions in "
                        f"{time.monotonic() - start:.0f} s; simulator video: --video {c.folder / 'sizes'}")
        if c.ssim_db is not None:
            means = ", ".join(f"{sum(row[k] for row in c.ssim_db) / len(c.ssim_db):.1f}"
                              for k in range(len(c.ladder_kbps)))
            Console().print(f"mean SSIM per level (dB): {means}; play it with --qoe ssim")


def _content(content: Path | None):  # type: ignore[no-untyped-def]
    """The given content folder, or the default one (made once under the cache folder)."""
    from abr.player.content import make_content, read_content

    if content is not None:
        return read_content(content)
    cache = Path(os.environ.get("ABR_CACHE_DIR", Path.home() / ".cache" / "abr")) / "content" / "envivio-scenes-192s"
    if not (cache / "content.json").is_file():
        Console(stderr=True).print(f"making the default content in {cache} (once; a few minutes)")
        return make_content(cache, duration_s=DEFAULT_CONTENT_S)
    return read_content(cache)


def _trace(spec: str, data_dir: Path | None):  # type: ignore[no-untyped-def]
    traces = inputs.load_trace_set(spec, data_dir).traces
    if len(traces) != 1:
        raise ConfigError(f"--trace {spec!r} names {len(traces)} traces; give one trace file")
    return traces[0]


@player_app.command("serve")
def serve_command(
    agent: Annotated[str, typer.Option("--agent", "-a", help="Agent with a browser rule: ppo, ppo:PATH, bba, ...")],
    trace: Annotated[str, typer.Option("--trace", help="The trace file that shapes the link.")],
    content: ContentOption = None,
    speed: SpeedOption = 1.0,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any).")] = 8000,
    out: Annotated[Path, typer.Option("--out", "-o", help="Each finished session is written to OUT/001, 002, ...")
                   ] = Path("runs/serve"),
    preset_name: PresetOption = "realistic",
    qoe: QoEOption = QoEKind.linear,
    data_dir: DataDirOption = None,
) -> None:
    """Serve the player page and the content on 127.0.0.1, shaped to TRACE, until Ctrl-C; write each session."""
    with reported_errors():
        import tempfile

        from abr.player.agents import browser_agent
        from abr.player.browser import session_writer
        from abr.player.server import PlayerServer

        c, shaping = _content(content), _trace(trace, data_dir)
        writer = session_writer(out, agent=agent, trace=shaping, content=c, qoe=QoEWeights(kind=qoe.value))
        with tempfile.TemporaryDirectory(prefix="abr-serve-") as work:
            server = PlayerServer(c, shaping, browser_agent(agent, work), preset(preset_name), speed=speed,
                                  port=port, on_log=writer)
            with server:
                Console().print(f"serving {server.url} (agent {agent}, trace {server.trace.name}, {speed:g}x); "
                                f"sessions go to {out}/NNN; open it in a browser, Ctrl-C to stop")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass


def play_command(
    agent: Annotated[str, typer.Option("--agent", "-a", help="Agent with a browser rule: ppo, ppo:PATH, bba, ...")],
    trace: Annotated[str, typer.Option("--trace", help="The trace file that shapes the link.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (sessions.csv, chunks.csv, logs).")],
    content: ContentOption = None,
    speed: SpeedOption = 4.0,
    show: Annotated[bool, typer.Option("--show", help="Open a visible browser window to watch.")] = False,
    backend: Annotated[str, typer.Option(
        "--backend", help="RL policies: json (plain JS from weights.json) or onnx (ONNX Runtime Web).")] = "json",
    preset_name: PresetOption = "realistic",
    qoe: QoEOption = QoEKind.linear,
    overwrite: OverwriteOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Play one session in a real browser (headless chromium) and write it in the schema of abr evaluate."""
    with reported_errors():
        from abr.common.run_folder import claim_for_command
        from abr.player.browser import play_session, write_session

        c = _content(content)
        the_trace = _trace(trace, data_dir)
        command = ["abr", "play", "--agent", agent, "--trace", trace, "--out", str(out), "--content", str(c.folder),
                   "--speed", f"{speed:g}", "--backend", backend, "--preset", preset_name, "--qoe", qoe.value]
        with claim_for_command(out, kind="play", command=command, may_write=PLAY_OUTPUTS, overwrite=overwrite,
                               inputs=[p for p in (the_trace.source,) if p]) as folder:
            if folder.finished is not None:
                Console().print(f"nothing to do: {out} already holds this session (--overwrite plays it again)")
                return
            folder.will_write(*PLAY_OUTPUTS)
            r = play_session(agent, the_trace, c, preset(preset_name), QoEWeights(kind=qoe.value),
                             speed=speed, show=show, work_dir=out / "policy", backend=backend)
            write_session([r], out)
            folder.done(failed=int(not r.complete or bool(r.undecided)))
        m = r.result.metrics
        table = Table(title=f"{agent} on {r.result.trace} in chromium ({speed:g}x)")
        for header in ("QoE", "bitrate kbps", "rebuffer s", "startup s", "switches", "segments", "decision ms"):
            table.add_column(header, justify="right")
        table.add_row(f"{m.qoe:.2f}", f"{bps_to_kbps(m.avg_bitrate_bps):.0f}", f"{m.rebuffer_s:.2f}",
                      f"{m.startup_delay_s:.2f}", str(m.switch_count), f"{m.n_chunks}/{c.n_segments}",
                      f"p50 {r.decision_ms_p50:.3f}, max {r.decision_ms_max:.3f}")
        Console().print(table)
        if r.benchmark is not None:
            b = r.benchmark
            Console().print(f"decision time in chromium, {int(b['n'])} decisions back to back after playback: "
                            f"mean {b['mean_ms']:.3f} ms, p50 {b['p50_ms']:.3f}, p99 {b['p99_ms']:.3f}, "
                            f"max {b['max_ms']:.3f}")
        if not r.complete or r.undecided:
            raise ConfigError(f"the session is incomplete ({r.log.get('reason')}) or has segments not decided by "
                              f"the rule ({r.undecided}); see {out / 'player_log.json'}")
        Console().print(f"wrote {out}")


def spread(items: list, n: int) -> list:  # type: ignore[type-arg]
    """``n`` items evenly spaced over ``items`` (all of them when there are not more than ``n``).

    >>> spread(list(range(10)), 3)
    [0, 4, 9]
    """
    if len(items) <= n:
        return items
    if n == 1:
        return items[:1]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def fidelity_command(
    agents: Annotated[list[str], typer.Option("--agent", "-a", help="Agent (repeatable).")],
    traces: Annotated[str, typer.Option("--traces", "-t", help="Trace set (path or name under <data dir>/traces).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    limit: Annotated[int, typer.Option(
        "--limit", min=1, help="Play N traces spread evenly over the set (in name order, first and last included).")
                     ] = 10,
    content: ContentOption = None,
    speed: SpeedOption = 4.0,
    preset_name: PresetOption = "realistic",
    qoe: QoEOption = QoEKind.linear,
    overwrite: OverwriteOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Play the same (agent, trace) pairs in chromium and in the simulator; report each component's gap."""
    with reported_errors():
        from abr.common.run_folder import claim_for_command
        from abr.player.fidelity import OUTPUT_FILES, fidelity, summarize

        c = _content(content)
        chosen = spread(list(inputs.load_trace_set(traces, data_dir).traces), limit)
        console = Console(stderr=True)

        def progress(done: int, total: int, what: str) -> None:
            console.print(f"[{done}/{total}] {what}")

        command = ["abr", "fidelity", *(f"--agent={a}" for a in agents), "--traces", traces, "--out", str(out),
                   "--limit", str(limit), "--content", str(c.folder), "--speed", f"{speed:g}", "--preset", preset_name,
                   "--qoe", qoe.value]
        with claim_for_command(out, kind="fidelity", command=command, may_write=OUTPUT_FILES, overwrite=overwrite,
                               inputs=[t.source for t in chosen if t.source]) as folder:
            if folder.finished is not None:
                Console().print(f"nothing to do: {out} already holds this comparison, {out / 'fidelity.md'} "
                                "(--overwrite plays it again)")
                return
            folder.will_write(*OUTPUT_FILES)
            rows = fidelity(agents, chosen, c, preset(preset_name), QoEWeights(kind=qoe.value), out, speed=speed,
                            progress=progress)
            folder.done()
        table = Table(title=f"real player - simulator, {len(chosen)} traces of {traces} ({speed:g}x)")
        for header in ("agent", "metric", "n", "mean gap", "mean |gap|"):
            table.add_column(header, justify="right")
        for agent, metric, n, gap, abs_gap in summarize(rows):
            table.add_row(agent, metric, str(n), f"{gap:+.4g}", f"{abs_gap:.4g}")
        Console().print(table)
        Console().print(f"wrote {out / 'fidelity.md'}")
