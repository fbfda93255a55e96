"""The trace-shaped streaming server: content, the player page and the plug-in, on 127.0.0.1.

Routes (all ``GET`` but the log):

* ``/``: the player page; ``/plugin/<file>``: the plug-in's JS; ``/lib/dash.all.min.js``: dash.js (from
  ``node_modules``, see :func:`node_modules_dir`);
* ``/content/<file>``: the content folder. Media segments (``chunk-*.m4s``) go through the shared
  trace-shaped link (:class:`~abr.player.shaping.PlayerLink`); the manifest and the initialisation segments
  are served at once. ``Range: bytes=a-b`` is honoured for single ranges (416 when unsatisfiable, 400 when
  malformed);
* ``/policy/<file>``: the RL policy's ``weights.json`` and ``encoder_spec.json``;
* ``/session/config``: the page's configuration (agent, speed, video model, buffer target); fetching it
  starts a new session (the trace clock restarts at the next media request);
* ``/session/stats``: how the link has shared its capacity in the session (:class:`~abr.player.shaping.LinkStats`:
  the bits offered, the bits granted to each client, the spread of the shares of backlogged transfers); a
  client is named by its ``X-Abr-Client`` header, else its address;
* ``POST /session/log``: the player's log at the end of the session (JSON, at most
  :data:`MAX_LOG_BYTES`), checked by :func:`abr.player.session_log.parse_log`.

Only files inside the content, plug-in and policy folders are served: a path that resolves outside them
(``..``, an absolute path, a symbolic link pointing out) gets 403, an unknown file 404, any other method
405, an oversized body 413; HTTP the server cannot parse gets aiohttp's 400. The server runs in a thread
of its own (:class:`PlayerServer`), so a test or the CLI can start and stop it around a browser session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abr.errors import ConfigError
from abr.player.agents import BrowserAgent
from abr.player.content import MANIFEST, SEGMENT_RE, Content
from abr.player.shaping import PlayerLink, TransferRecord
from simulator.config import SimConfig
from traces.types import Trace

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
MAX_LOG_BYTES = 8 * 1024 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: The request header that names a client in the link's accounting (``/session/stats``); else its address.
CLIENT_HEADER = "X-Abr-Client"
_CONTENT_TYPES = {".mpd": "application/dash+xml", ".m4s": "video/iso.segment", ".mp4": "video/mp4",
                  ".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html",
                  ".json": "application/json", ".wasm": "application/wasm", ".onnx": "application/octet-stream"}
_NODE_FILES = {"dash.all.min.js": ("dashjs", "dist", "modern", "umd", "dash.all.min.js")}
#: ONNX Runtime Web files the page may load (the optional onnx backend), from onnxruntime-web/dist.
_ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")


async def _isolation_headers(request: Any, response: Any) -> None:
    # Cross-origin isolation: the page's performance.now() then has microsecond resolution (Chromium coarsens
    # it to 100 us otherwise), so the decision times in the log mean something. Everything is same-origin.
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Embedder-Policy"] = "require-corp"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"


def node_modules_dir() -> Path:
    """The ``node_modules`` folder holding dash.js: ``$ABR_NODE_MODULES``, else beside the repository root.

    Raises:
        ConfigError: dash.js is not installed there (the message says how to install it).
    """
    env = os.environ.get("ABR_NODE_MODULES")
    candidates = [Path(env)] if env else [Path(__file__).resolve().parents[2] / "node_modules",
                                          Path.cwd() / "node_modules"]
    for folder in candidates:
        if (folder / "dashjs" / "package.json").is_file():
            return folder
    raise ConfigError(f"dash.js not found in {', '.join(map(str, candidates))}: run `npm ci` in the repository "
                      "(package.json pins dashjs 5), or set ABR_NODE_MODULES to a node_modules folder with dashjs")


def safe_path(root: Path, relative: str) -> Path | None:
    """``root / relative`` if it is a file inside ``root`` (symbolic links resolved), else ``None``.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("x")
    >>> safe_path(d, "a.txt") == (d / "a.txt").resolve(), safe_path(d, "../etc/passwd"), safe_path(d, "/etc/passwd")
    (True, None, None)
    """
    if "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    base = root.resolve()
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base):
        return None
    return target


def parse_range(header: str, size: int) -> tuple[int, int]:
    """The ``[start, end)`` byte span of a ``Range: bytes=a-b`` header for a file of ``size`` bytes.

    Raises:
        ValueError: malformed (or several ranges) — answer 400.
        IndexError: unsatisfiable — answer 416.

    >>> parse_range("bytes=0-9", 100), parse_range("bytes=90-", 100), parse_range("bytes=-10", 100)
    ((0, 10), (90, 100), (90, 100))
    """
    m = _RANGE_RE.match(header.strip())
    if not m or (m[1] == "" and m[2] == ""):
        raise ValueError(f"malformed Range header {header!r}: expected one range 'bytes=START-END'")
    if m[1] == "":
        suffix = int(m[2])
        if suffix == 0:
            raise IndexError("empty suffix range")
        return max(size - suffix, 0), size
    start = int(m[1])
    if m[2] != "" and int(m[2]) < start:
        raise ValueError(f"malformed Range header {header!r}: the end is before the start")
    if start >= size:
        raise IndexError(f"range starts at {start}, past the end of the {size}-byte file")
    end = size - 1 if m[2] == "" else int(m[2])
    return start, min(end, size - 1) + 1


@dataclass(slots=True)
class SessionState:
    """What the server knows of the current session."""

    session_id: str
    log: dict[str, Any] | None = None
    transfers: list[TransferRecord] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class PlayerServer:
    """The server in a background thread: ``start()``, play, ``wait_for_log()``, ``stop()`` (or ``with``).

    Args:
        content: the content to serve.
        trace: the trace that shapes the link.
        agent: the agent the page runs.
        sim_config: link parameters (RTT, payload efficiency) and the buffer target (``max_buffer_s``).
        speed: time scale (see :mod:`abr.player.shaping`).
        port: TCP port on 127.0.0.1 (0: any free port).
        on_log: called with each session's checked log and the link's transfer records when the page posts
            it (in the server's thread; ``abr player serve`` writes the session there).
    """

    def __init__(self, content: Content, trace: Trace, agent: BrowserAgent, sim_config: SimConfig, *,
                 speed: float = 1.0, port: int = 0,
                 on_log: Callable[[dict[str, Any], list[TransferRecord]], object] | None = None) -> None:
        self.content = content
        self.trace = trace
        self.agent = agent
        self.sim_config = sim_config
        self.speed = speed
        self.port = port
        self.on_log = on_log
        self.dash_js = node_modules_dir()
        self.link: PlayerLink | None = None
        self.session = SessionState(uuid.uuid4().hex)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> PlayerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout_s: float = 10.0) -> PlayerServer:
        """Start serving; returns once the port is bound."""
        self._thread = threading.Thread(target=self._serve, name="abr-player-server", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise RuntimeError(f"the player server did not start within {timeout_s} s")
        if self._error is not None:
            raise ConfigError(f"the player server could not start on 127.0.0.1:{self.port}: {self._error}")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (in-flight responses are cancelled)."""
        stop_event = getattr(self, "_stop_event", None)
        if self._loop is not None and stop_event is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(stop_event.set)
            self._thread.join(10.0)

    def wait_for_log(self, timeout_s: float) -> dict[str, Any] | None:
        """The current session's log once the page posted it (``None`` after ``timeout_s``)."""
        return self.session.log if self.session.done.wait(timeout_s) else None

    def new_session(self) -> SessionState:
        """Start a new session (the page does this when it fetches its config)."""
        self.session = SessionState(uuid.uuid4().hex)
        if self.link is not None:
            self.link.reset()
        return self.session

    # --- the event loop thread ------------------------------------------------------------------------------

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start() or logged
            self._error = exc
            self._started.set()
            logger.debug("player server stopped with %r", exc)
        finally:
            loop.close()

    async def _main(self) -> None:
        from aiohttp import web

        self._stop_event = asyncio.Event()
        self.link = PlayerLink(self.trace, payload_efficiency=self.sim_config.payload_efficiency,
                               rtt_s=self.sim_config.link_rtt_s, speed=self.speed)
        app = web.Application(client_max_size=MAX_LOG_BYTES)
        app.on_response_prepare.append(_isolation_headers)
        app.router.add_get("/", self._index)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/plugin/{path:.*}", self._plugin)
        app.router.add_get("/lib/{name}", self._lib)
        app.router.add_get("/lib/ort/{name}", self._ort)
        app.router.add_get("/content/{path:.*}", self._content)
        app.router.add_get("/policy/{path:.*}", self._policy)
        app.router.add_get("/session/config", self._config)
        app.router.add_get("/session/stats", self._stats)
        app.router.add_post("/session/log", self._post_log)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr,attr-defined]
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        self._started.set()
        try:
            await self._stop_event.wait()
        finally:
            await runner.cleanup()

    # --- handlers --------------------------------------------------------------------------------------------

    async def _health(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response({"ok": True, "session_id": self.session.session_id})

    async def _index(self, request: Any) -> Any:
        return await self._file(request, WEB_DIR / "index.html")

    async def _plugin(self, request: Any) -> Any:
        return await self._serve_from(request, WEB_DIR, request.match_info["path"])

    async def _policy(self, request: Any) -> Any:
        from aiohttp import web

        if self.agent.policy_dir is None:
            raise web.HTTPNotFound(text=f"agent {self.agent.name} has no policy files")
        return await self._serve_from(request, self.agent.policy_dir, request.match_info["path"])

    async def _lib(self, request: Any) -> Any:
        from aiohttp import web

        parts = _NODE_FILES.get(request.match_info["name"])
        if parts is None:
            raise web.HTTPNotFound(text="unknown library file")
        return await self._file(request, self.dash_js.joinpath(*parts))

    async def _ort(self, request: Any) -> Any:
        from aiohttp import web

        name = request.match_info["name"]
        if name not in _ORT_FILES:
            raise web.HTTPNotFound(text="unknown ONNX Runtime Web file")
        return await self._file(request, self.dash_js / "onnxruntime-web" / "dist" / name)

    async def _config(self, request: Any) -> Any:
        from aiohttp import web

        session = self.new_session()
        video = self.content.video()
        return web.json_response({
            "session_id": session.session_id,
            "agent": self.agent.page_config(),
            "speed": self.speed,
            "manifest": f"/content/{MANIFEST}",
            "buffer_target_s": self.sim_config.max_buffer_s,
            "video": {"bitrates_bps": video.bitrates_bps.tolist(), "chunk_duration_s": video.chunk_duration_s,
                      "n_chunks": video.n_chunks, "sizes_bits": video.chunk_sizes_bits.tolist()},
        })

    async def _stats(self, request: Any) -> Any:
        from aiohttp import web

        link = self.link
        assert link is not None
        return web.json_response({"session_id": self.session.session_id, **link.stats.as_dict()})

    async def _post_log(self, request: Any) -> Any:
        from aiohttp import web

        from abr.player.session_log import LogError, parse_log

        if request.content_length is not None and request.content_length > MAX_LOG_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_LOG_BYTES, actual_size=request.content_length)
        body = await request.read()  # aiohttp answers 413 past client_max_size
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise web.HTTPBadRequest(text=f"the session log is not JSON: {exc}") from None
        try:
            log = parse_log(data, n_chunks=self.content.n_segments, n_levels=len(self.content.ladder_kbps))
        except LogError as exc:
            raise web.HTTPBadRequest(text=f"bad session log: {exc}") from None
        if log["session_id"] != self.session.session_id:
            raise web.HTTPConflict(text=f"session {log['session_id']!r} is not the current session "
                                        f"{self.session.session_id!r}")
        if self.link is not None:
            self.session.transfers = list(self.link.records)
        self.session.log = log
        self.session.done.set()
        if self.on_log is not None:
            try:
                self.on_log(log, self.session.transfers)
            except Exception as exc:  # the log is kept; say why it could not be written
                logger.error("could not write the session log: %s", exc)
                raise web.HTTPInternalServerError(
                    text=f"the log was received but could not be written: {exc}") from None
        return web.json_response({"ok": True, "segments": len(log["segments"])})

    async def _content(self, request: Any) -> Any:
        from aiohttp import web

        relative = request.match_info["path"]
        path = self._checked(self.content.folder, relative)
        if not SEGMENT_RE.match(path.name):
            return await self._file(request, path)
        data = path.read_bytes()
        start, end = self._range(request, len(data))
        response = web.StreamResponse(status=206 if (start, end) != (0, len(data)) else 200)
        response.content_type = _CONTENT_TYPES[".m4s"]
        response.content_length = end - start
        response.headers["Cache-Control"] = "no-store"
        if response.status == 206:
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        await response.prepare(request)
        assert self.link is not None
        client = request.headers.get(CLIENT_HEADER) or request.remote or ""
        await self.link.send(data[start:end], response.write, label=relative, client=client)
        await response.write_eof()
        return response

    # --- helpers ---------------------------------------------------------------------------------------------

    def _checked(self, root: Path, relative: str) -> Path:
        from aiohttp import web

        path = safe_path(root, relative)
        if path is None:
            raise web.HTTPForbidden(text="the path leaves the served folder")
        if not path.is_file():
            raise web.HTTPNotFound(text=f"no such file: {relative}")
        return path

    async def _serve_from(self, request: Any, root: Path, relative: str) -> Any:
        return await self._file(request, self._checked(root, relative))

    def _range(self, request: Any, size: int) -> tuple[int, int]:
        from aiohttp import web

        header = request.headers.get("Range")
        if header is None:
            return 0, size
        try:
            return parse_range(header, size)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        except IndexError as exc:
            raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"},
                                                     text=str(exc)) from None

    async def _file(self, request: Any, path: Path) -> Any:
        from aiohttp import web

        if not path.is_file():
            raise web.HTTPNotFound(text="no such file")
        data = path.read_bytes()
        start, end = self._range(request, len(data))
        status = 206 if (start, end) != (0, len(data)) else 200
        headers: Mapping[str, str] = {"Cache-Control": "no-store"}
        if status == 206:
            headers = {**headers, "Content-Range": f"bytes {start}-{end - 1}/{len(data)}"}
        return web.Response(body=data[start:end], status=status, headers=headers,
                            content_type=_CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
