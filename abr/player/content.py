"""DASH test content made with ffmpeg, and its chunk-size table for the simulator.

:func:`make_content` encodes a synthetic test pattern (or packages a user's video) as H.264 DASH: one
rendition per ladder level, fixed-length segments with exactly one keyframe each (``-g`` = fps x segment,
no scene-cut keyframes, forced keyframes on the segment grid), exact 16:9 frame sizes (a source of another
shape is letterboxed, never stretched), and constant-bitrate rate control (x264 ``nal-hrd=cbr``) so each
segment weighs about its nominal bitrate. Audio is optional (``audio_kbps``); by default the content is
video only, so the link carries only what the ABR rule decides.

The content folder::

    manifest.mpd                  the DASH manifest (SegmentTemplate, $Number$ addressing)
    init-<level>.m4s              initialisation segment of each rendition (level 0 = lowest bitrate)
    chunk-<level>-<nnnnn>.m4s     media segments, numbered from 1 (with audio: representation <n_levels>)
    sizes/video_size_<level>      the chunk-size table (bytes per segment, one per line) ...
    sizes/ladder.json             ... and its ladder: read it with traces.videos.read_video(folder / "sizes")
    content.json                  what was made: ladder, sizes, segment duration, source, ffmpeg version

The simulator plays the same content with :func:`content_video`; the sizes are the media segments' file
sizes, the bytes the trace-shaped server delivers at the trace's rate.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abr.common.atomic import write_json_atomic
from abr.errors import ConfigError
from traces.errors import VideoFormatError
from traces.types import Video
from traces.units import bps_to_kbps, kbps_to_bps
from traces.videos import ENVIVIO_LADDER_BPS, read_pensieve_video, write_pensieve_video

logger = logging.getLogger(__name__)

#: The Envivio ladder of the research simulator, kbit/s.
ENVIVIO_LADDER_KBPS: tuple[int, ...] = tuple(int(bps_to_kbps(b)) for b in ENVIVIO_LADDER_BPS)
#: 16:9 frame heights by bitrate: the first whose upper bound (kbit/s) is above the rendition's bitrate.
_HEIGHTS: tuple[tuple[float, int], ...] = (
    (500, 180), (1000, 360), (1500, 432), (2300, 576), (3500, 720), (6000, 1080), (float("inf"), 1440),
)
MANIFEST = "manifest.mpd"
CONTENT_FILE = "content.json"
SIZES_DIR = "sizes"
SEGMENT_RE = re.compile(r"^chunk-(\d+)-(\d+)\.m4s$")
DEFAULT_SEGMENT_S = 4.0
DEFAULT_FPS = 24


@dataclass(frozen=True, slots=True)
class Content:
    """A content folder made by :func:`make_content` (or read back by :func:`read_content`)."""

    folder: Path
    ladder_kbps: tuple[float, ...]
    segment_s: float
    n_segments: int
    sizes_bytes: tuple[tuple[int, ...], ...]  # [segment][level]
    has_audio: bool

    @property
    def manifest(self) -> Path:
        return self.folder / MANIFEST

    def video(self) -> Video:
        """The chunk-size table as a :class:`~traces.types.Video` (for the simulator), from memory."""
        return Video(kbps_to_bps(np.asarray(self.ladder_kbps)), self.segment_s,
                     np.asarray(self.sizes_bytes, dtype=np.float64) * 8.0, name=self.folder.name,
                     source=str(self.folder / SIZES_DIR))


def frame_size(kbps: float) -> tuple[int, int]:
    """The exact 16:9 frame size (width, height) of a rendition of ``kbps``.

    >>> [frame_size(k) for k in (300, 1200, 4300)]
    [(320, 180), (768, 432), (1920, 1080)]
    """
    height = next(h for bound, h in _HEIGHTS if kbps < bound)
    return height * 16 // 9, height


def ffmpeg_binary() -> str:
    """The ffmpeg executable, or a clear error saying how to install it."""
    path = shutil.which("ffmpeg")
    if path is None:
        raise ConfigError("ffmpeg is not installed (or not on PATH): install it, e.g. `apt-get install ffmpeg`")
    return path


def _check_ladder(ladder_kbps: Sequence[float]) -> tuple[float, ...]:
    ladder = tuple(float(k) for k in ladder_kbps)
    if not ladder:
        raise ConfigError("the ladder is empty: give at least one bitrate in kbit/s")
    if any(not k > 0 for k in ladder) or any(b <= a for a, b in zip(ladder, ladder[1:])):
        raise ConfigError(f"ladder {list(ladder)} must be bitrates > 0 in kbit/s, strictly increasing")
    return ladder


def ffmpeg_command(out_dir: Path, *, ladder_kbps: Sequence[float], duration_s: float, segment_s: float,
                   fps: int, source: Path | None, audio_kbps: float | None, threads: int = 0) -> list[str]:
    """The ffmpeg command line that encodes the content into ``out_dir`` (see the module docstring)."""
    gop = int(round(fps * segment_s))
    cmd = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    if source is None:
        cmd += ["-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate={fps}:duration={duration_s:g}"]
    else:
        cmd += ["-t", f"{duration_s:g}", "-i", str(source)] if duration_s > 0 else ["-i", str(source)]
    if audio_kbps is not None:
        if source is None:
            cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration_s:g}"]
    n = len(ladder_kbps)
    split = "".join(f"[v{k}]" for k in range(n))
    filters = [f"[0:v]fps={fps},split={n}{split}"]
    for k, kbps in enumerate(ladder_kbps):
        w, h = frame_size(kbps)
        filters.append(f"[v{k}]scale={w}:{h}:force_original_aspect_ratio=decrease,"
                       f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[o{k}]")
    cmd += ["-filter_complex", ";".join(filters)]
    for k, kbps in enumerate(ladder_kbps):
        rate = f"{kbps:g}k"
        cmd += ["-map", f"[o{k}]", f"-c:v:{k}", "libx264", f"-b:v:{k}", rate, f"-minrate:v:{k}", rate,
                f"-maxrate:v:{k}", rate, f"-bufsize:v:{k}", f"{kbps * segment_s / 4:g}k"]
    cmd += ["-preset", "ultrafast", "-profile:v", "high", "-x264-params", "nal-hrd=cbr",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-force_key_frames", f"expr:gte(t,n_forced*{segment_s:g})", "-threads", str(threads)]
    sets = "id=0,streams=v"
    if audio_kbps is not None:
        cmd += ["-map", "1:a" if source is None else "0:a?", "-c:a", "aac", "-b:a", f"{audio_kbps:g}k", "-ac", "2"]
        sets += " id=1,streams=a"
    cmd += ["-f", "dash", "-seg_duration", f"{segment_s:g}", "-use_template", "1", "-use_timeline", "0",
            "-adaptation_sets", sets, "-init_seg_name", "init-$RepresentationID$.m4s",
            "-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s", str(out_dir / MANIFEST)]
    return cmd


def make_content(out_dir: str | Path, *, ladder_kbps: Sequence[float] = ENVIVIO_LADDER_KBPS,
                 duration_s: float = 192.0, segment_s: float = DEFAULT_SEGMENT_S, fps: int = DEFAULT_FPS,
                 source: str | Path | None = None, audio_kbps: float | None = None) -> Content:
    """Encode DASH content into ``out_dir`` (which must not exist or be empty) and write its size table.

    Args:
        out_dir: the content folder to create.
        ladder_kbps: the bitrate of each rendition, kbit/s, ascending (the Envivio ladder by default).
        duration_s: length of the content in seconds (for a ``source``: cut to this; 0 = the whole file).
        segment_s: segment duration in seconds (one keyframe per segment).
        fps: frame rate of the output.
        source: a video file to package; ``None`` encodes ffmpeg's ``testsrc2`` pattern.
        audio_kbps: add an AAC audio track of this bitrate (``None``: video only).

    Raises:
        ConfigError: a bad parameter, ffmpeg missing, or ffmpeg failing (its message is included).
    """
    ladder = _check_ladder(ladder_kbps)
    if not segment_s > 0 or not fps > 0:
        raise ConfigError(f"segment_s={segment_s} and fps={fps} must be > 0")
    if source is None and not duration_s >= segment_s:
        raise ConfigError(f"duration_s={duration_s} must be at least one segment ({segment_s} s)")
    src = Path(source) if source is not None else None
    if src is not None and not src.is_file():
        raise ConfigError(f"source video {src} does not exist; give a video file ffmpeg can read")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"content folder {out} is not empty; give a new folder (nothing was overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Encode into a scratch folder beside the target and rename it at the end: no half-made content.
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        cmd = ffmpeg_command(work, ladder_kbps=ladder, duration_s=duration_s, segment_s=segment_s, fps=fps,
                             source=src, audio_kbps=audio_kbps)
        logger.info("encoding %d renditions: %s", len(ladder), " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ConfigError(f"ffmpeg failed (exit {proc.returncode}) making {out}: {proc.stderr.strip()[-800:]}")
        sizes = _segment_sizes(work, len(ladder))
        video = Video(kbps_to_bps(np.asarray(ladder)), segment_s, np.asarray(sizes, dtype=np.float64) * 8.0,
                      name=out.name)
        write_pensieve_video(video, work / SIZES_DIR)
        info: dict[str, Any] = {
            "format": "abr-dash-content-v1", "ladder_kbps": list(ladder), "segment_s": segment_s, "fps": fps,
            "n_segments": len(sizes), "frame_sizes": [list(frame_size(k)) for k in ladder],
            "audio_kbps": audio_kbps, "source": str(src) if src else "ffmpeg testsrc2",
            "codec": "H.264 (libx264 ultrafast, CBR)", "manifest": MANIFEST,
            "mean_segment_kbps": [float(np.mean([s[k] for s in sizes]) * 8 / segment_s / 1e3)
                                  for k in range(len(ladder))],
            "ffmpeg": _ffmpeg_version(),
        }
        write_json_atomic(work / CONTENT_FILE, info)
        if out.exists():
            out.rmdir()
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a failed encoding leaves nothing behind
    return read_content(out)


def _segment_sizes(folder: Path, n_levels: int) -> list[list[int]]:
    # Video renditions are representations 0..n_levels-1; an audio track, if any, is representation n_levels.
    found: dict[int, dict[int, int]] = {}
    for p in folder.iterdir():
        if (m := SEGMENT_RE.match(p.name)) and int(m[1]) < n_levels:
            found.setdefault(int(m[1]), {})[int(m[2])] = p.stat().st_size
    if sorted(found) != list(range(n_levels)):
        raise ConfigError(f"ffmpeg wrote segments for renditions {sorted(found)}, expected 0..{n_levels - 1}")
    counts = {len(v) for v in found.values()}
    if len(counts) != 1:
        raise ConfigError(f"renditions have different segment counts {sorted(counts)}; check the source video")
    n = counts.pop()
    return [[found[level][i] for level in range(n_levels)] for i in range(1, n + 1)]


def _ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg_binary(), "-version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "unknown"


def read_content(folder: str | Path) -> Content:
    """Read a content folder made by :func:`make_content`, checking that every segment is there."""
    root = Path(folder)
    meta_path = root / CONTENT_FILE
    if not meta_path.is_file():
        raise ConfigError(f"{root} is not a content folder (no {CONTENT_FILE}); make one with `abr player content`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        ladder = tuple(float(k) for k in meta["ladder_kbps"])
        segment_s = float(meta["segment_s"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{meta_path}: malformed content description ({exc}); make the content again") from None
    video = content_video(root)
    for level in range(len(ladder)):
        for i in range(1, video.n_chunks + 1):
            if not (root / f"chunk-{level}-{i:05d}.m4s").is_file():
                raise ConfigError(f"{root}: segment chunk-{level}-{i:05d}.m4s is missing; make the content again")
    sizes = np.rint(video.chunk_sizes_bits / 8).astype(int)
    return Content(root, ladder, segment_s, video.n_chunks, tuple(tuple(int(v) for v in row) for row in sizes),
                   bool(meta.get("audio_kbps")))


def content_video(folder: str | Path) -> Video:
    """The content's chunk-size table as a :class:`~traces.types.Video` named after the folder."""
    root = Path(folder)
    try:
        meta = json.loads((root / CONTENT_FILE).read_text(encoding="utf-8"))
        segment_s = float(meta["segment_s"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VideoFormatError(f"not a content folder or a malformed {CONTENT_FILE} ({exc}); make the content "
                               "with `abr player content`", path=root) from None
    return read_pensieve_video(root / SIZES_DIR, chunk_duration_s=segment_s, name=root.name)
