"""DASH test content made with ffmpeg, and its chunk-size table for the simulator.

:func:`make_content` encodes a synthetic scene (or packages a user's video) as H.264 DASH: one
rendition per ladder level, fixed-length segments with exactly one keyframe each (``-g`` = fps x segment,
no scene-cut keyframes, forced keyframes on the segment grid), exact 16:9 frame sizes (a source of another
shape is letterboxed, never stretched), and constant-bitrate rate control (x264 ``nal-hrd=cbr``) so each
segment weighs about its nominal bitrate. Audio is optional (``audio_kbps``); by default the content is
video only, so the link carries only what the ABR rule decides.

The default source (``pattern="scenes"``) is built from ffmpeg's own sources, a seeded sequence of scenes of 1 to 3
segments each whose motion and texture change from scene to scene (:data:`SCENE_KINDS`, :func:`scene_plan`):
``testsrc2`` (moving graphics); ``soft`` (testsrc2 rendered at a quarter size, Gaussian-blurred and scaled up:
smooth, easy; ffmpeg's ``gradients`` source would fit but is not reproducible from its seed); ``life`` (Conway's
game of life: dense texture, everything moves); ``cellauto`` (a scrolling elementary cellular automaton, rule 30,
90, 110 or 150: dense texture, steady motion); ``noise`` (testsrc2 under temporal noise of a drawn strength 20-60:
very hard); ``pan`` (testsrc2 scrolled sideways by 1-4% of the width per frame: a fast pan). The scenes are
rendered at the top level's frame size (``life``, ``cellauto`` and ``soft`` at a quarter of it, scaled up). At one
bitrate the complex scenes then look worse, so the per-segment quality varies with the content, not only with
the level. ``pattern="testsrc2"`` keeps the old constant test pattern.

Each segment's quality is measured against its source with ffmpeg's ``ssim`` filter (:func:`measure_ssim_db`):
every rendition is decoded, scaled back to the source frame (the top level's size, bicubic) and compared frame by
frame; a segment's SSIM is the mean luma (Y) SSIM of its frames, stored in dB as Puffer does
(``-10 log10(1 - SSIM)``, capped at :data:`MAX_SSIM_DB`). It goes into ``sizes/video_ssim_db_<level>``
(``docs/video-tables.md``), which the simulator reads into ``Video.ssim_db`` for the ``ssim`` QoE. SSIM, not
VMAF: this machine's ffmpeg (Debian's 5.1) is built without libvmaf (it has ``ssim``, ``psnr`` and only the
``vmafmotion`` part of VMAF), and no maintained registry package adds it to ffmpeg here; SSIM is also the metric
Puffer/Fugu deployed.

The content folder::

    manifest.mpd                  the DASH manifest (SegmentTemplate, $Number$ addressing)
    init-<level>.m4s              initialisation segment of each rendition (level 0 = lowest bitrate)
    chunk-<level>-<nnnnn>.m4s     media segments, numbered from 1 (with audio: representation <n_levels>)
    sizes/video_size_<level>      the chunk-size table (bytes per segment, one per line) ...
    sizes/video_ssim_db_<level>   ... each segment's SSIM in dB (one per line; when measured) ...
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
import numpy.typing as npt

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
#: The source patterns: a seeded sequence of scenes of varying complexity (default), or ffmpeg's testsrc2 alone.
PATTERNS: tuple[str, ...] = ("scenes", "testsrc2")
#: The scene kinds of the ``scenes`` pattern (see the module docstring).
SCENE_KINDS: tuple[str, ...] = ("testsrc2", "soft", "life", "cellauto", "noise", "pan")
DEFAULT_SCENE_SEED = 0
#: Scene length, in segments: drawn uniformly from 1..this.
MAX_SCENE_SEGMENTS = 3
#: Highest SSIM stored, in dB (SSIM 0.999999): a lossless segment would otherwise be infinite.
MAX_SSIM_DB = 60.0
_CELLAUTO_RULES: tuple[int, ...] = (30, 90, 110, 150)


@dataclass(frozen=True, slots=True)
class Content:
    """A content folder made by :func:`make_content` (or read back by :func:`read_content`)."""

    folder: Path
    ladder_kbps: tuple[float, ...]
    segment_s: float
    n_segments: int
    sizes_bytes: tuple[tuple[int, ...], ...]  # [segment][level]
    has_audio: bool
    ssim_db: tuple[tuple[float, ...], ...] | None = None  # [segment][level], when measured

    @property
    def manifest(self) -> Path:
        return self.folder / MANIFEST

    def video(self) -> Video:
        """The chunk-size table (and quality) as a :class:`~traces.types.Video` (for the simulator), from memory."""
        quality = None if self.ssim_db is None else np.asarray(self.ssim_db, dtype=np.float64)
        return Video(kbps_to_bps(np.asarray(self.ladder_kbps)), self.segment_s,
                     np.asarray(self.sizes_bytes, dtype=np.float64) * 8.0, name=self.folder.name,
                     source=str(self.folder / SIZES_DIR), ssim_db=quality)


@dataclass(frozen=True, slots=True)
class Scene:
    """One scene of the ``scenes`` source: a kind of :data:`SCENE_KINDS`, its length and its drawn parameters.

    Attributes:
        kind: the scene kind.
        duration_s: its length in seconds (whole segments).
        seed: the seed of its ffmpeg source (life, cellauto) or noise filter.
        strength: the noise strength (``noise``, 20-60), the pan speed in fractions of the width per frame
            (``pan``, 0.01-0.04) or the cellular automaton's rule (``cellauto``); 0 for the others.
    """

    kind: str
    duration_s: float
    seed: int
    strength: float

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "duration_s": self.duration_s, "seed": self.seed, "strength": self.strength}


def frame_size(kbps: float, max_height: int | None = None) -> tuple[int, int]:
    """The exact 16:9 frame size (width, height) of a rendition of ``kbps``, at most ``max_height`` tall.

    >>> [frame_size(k) for k in (300, 1200, 4300)]
    [(320, 180), (768, 432), (1920, 1080)]
    >>> frame_size(4300, max_height=180)
    (320, 180)
    """
    height = next(h for bound, h in _HEIGHTS if kbps < bound)
    if max_height is not None:
        height = min(height, max_height)
    return height * 16 // 9, height


def scene_plan(duration_s: float, segment_s: float, seed: int = DEFAULT_SCENE_SEED) -> list[Scene]:
    """The seeded scene sequence of the ``scenes`` source: scenes of 1..:data:`MAX_SCENE_SEGMENTS` segments,
    kinds taken from shuffled rounds of :data:`SCENE_KINDS` (no kind twice in a row), covering ``duration_s``.

    >>> [s.kind for s in scene_plan(24.0, 4.0, seed=0)] == [s.kind for s in scene_plan(24.0, 4.0, seed=0)]
    True
    >>> sum(s.duration_s for s in scene_plan(30.0, 4.0, seed=3))
    30.0
    """
    rng = np.random.default_rng(seed)
    scenes: list[Scene] = []
    kinds: list[str] = []
    left = duration_s
    while left > 1e-9:
        if not kinds:
            kinds = [SCENE_KINDS[i] for i in rng.permutation(len(SCENE_KINDS))]
            if scenes and kinds[0] == scenes[-1].kind:
                kinds.append(kinds.pop(0))
        kind = kinds.pop(0)
        length = min(float(rng.integers(1, MAX_SCENE_SEGMENTS + 1)) * segment_s, left)
        scene_seed = int(rng.integers(0, 2**31 - 1))
        strength = {"noise": lambda: float(round(rng.uniform(20.0, 60.0), 1)),
                    "pan": lambda: float(round(rng.uniform(0.01, 0.04), 3)),
                    "cellauto": lambda: float(_CELLAUTO_RULES[int(rng.integers(len(_CELLAUTO_RULES)))])}.get(
                        kind, lambda: 0.0)()
        scenes.append(Scene(kind, round(length, 6), scene_seed, strength))
        left -= length
    return scenes


def _scene_filter(scene: Scene, width: int, height: int, fps: int) -> str:
    """The lavfi chain of one scene, ``width`` x ``height`` at ``fps``, ``scene.duration_s`` long."""
    small = f"{max(16, width // 4 // 2 * 2)}x{max(16, height // 4 // 2 * 2)}"  # rendered small, scaled up
    full = f"{width}x{height}"
    kind, seed = scene.kind, scene.seed
    if kind == "testsrc2":
        chain = f"testsrc2=s={full}:r={fps}"
    elif kind == "soft":
        chain = f"testsrc2=s={small}:r={fps},gblur=sigma=2,scale={width}:{height}:flags=bicubic"
    elif kind == "life":
        chain = (f"life=s={small}:r={fps}:seed={seed}:ratio=0.35:mold=10:life_color=#f0f0a0:death_color=#102040:"
                 f"mold_color=#206040,scale={width}:{height}:flags=neighbor")
    elif kind == "cellauto":
        chain = (f"cellauto=s={small}:r={fps}:seed={seed}:rule={int(scene.strength)}:random_fill_ratio=0.5,"
                 f"scale={width}:{height}:flags=neighbor")
    elif kind == "noise":
        chain = f"testsrc2=s={full}:r={fps},noise=alls={scene.strength:g}:allf=t+u:all_seed={seed % 2**16}"
    elif kind == "pan":
        chain = f"testsrc2=s={full}:r={fps},scroll=horizontal={scene.strength:g}"
    else:
        raise ConfigError(f"unknown scene kind {kind!r}; expected one of {', '.join(SCENE_KINDS)}")
    return f"{chain},format=yuv420p,setsar=1,trim=duration={scene.duration_s:g},setpts=PTS-STARTPTS"


def source_graph(scenes: Sequence[Scene], width: int, height: int, fps: int, label: str = "src") -> str:
    """The filter graph that renders ``scenes`` one after another into the pad ``[label]``.

    >>> source_graph([Scene("testsrc2", 4.0, 0, 0.0)], 320, 180, 24).endswith("concat=n=1:v=1:a=0[src]")
    True
    """
    chains = [f"{_scene_filter(scene, width, height, fps)}[sc{i}]" for i, scene in enumerate(scenes)]
    pads = "".join(f"[sc{i}]" for i in range(len(scenes)))
    return ";".join(chains) + f";{pads}concat=n={len(scenes)}:v=1:a=0[{label}]"


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
                   fps: int, source: Path | None, audio_kbps: float | None, threads: int = 0,
                   scenes: Sequence[Scene] | None = None, max_height: int | None = None) -> list[str]:
    """The ffmpeg command line that encodes the content into ``out_dir`` (see the module docstring).

    ``scenes`` is the synthetic source (:func:`scene_plan`; ``None``: testsrc2 alone) when ``source`` is ``None``.
    """
    gop = int(round(fps * segment_s))
    cmd = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    src_w, src_h = frame_size(ladder_kbps[-1], max_height)
    if source is None:
        scenes = scenes if scenes is not None else [Scene("testsrc2", duration_s, 0, 0.0)]
        graph_in = source_graph(scenes, src_w, src_h, fps, label="in0") + ";[in0]"
    else:
        cmd += ["-t", f"{duration_s:g}", "-i", str(source)] if duration_s > 0 else ["-i", str(source)]
        graph_in = "[0:v]"
    if audio_kbps is not None:
        if source is None:
            cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration_s:g}"]
    n = len(ladder_kbps)
    split = "".join(f"[v{k}]" for k in range(n))
    filters = [f"{graph_in}fps={fps},split={n}{split}"]
    for k, kbps in enumerate(ladder_kbps):
        w, h = frame_size(kbps, max_height)
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
        # A synthetic source has no input file: the sine is input 0.
        cmd += ["-map", "0:a" if source is None else "0:a?", "-c:a", "aac", "-b:a", f"{audio_kbps:g}k", "-ac", "2"]
        sets += " id=1,streams=a"
    cmd += ["-f", "dash", "-seg_duration", f"{segment_s:g}", "-use_template", "1", "-use_timeline", "0",
            "-adaptation_sets", sets, "-init_seg_name", "init-$RepresentationID$.m4s",
            "-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s", str(out_dir / MANIFEST)]
    return cmd


def make_content(out_dir: str | Path, *, ladder_kbps: Sequence[float] = ENVIVIO_LADDER_KBPS,
                 duration_s: float = 192.0, segment_s: float = DEFAULT_SEGMENT_S, fps: int = DEFAULT_FPS,
                 source: str | Path | None = None, audio_kbps: float | None = None, pattern: str = "scenes",
                 seed: int = DEFAULT_SCENE_SEED, measure_quality: bool = True,
                 max_height: int | None = None, threads: int = 0) -> Content:
    """Encode DASH content into ``out_dir`` (which must not exist or be empty) and write its size and quality table.

    Args:
        out_dir: the content folder to create.
        ladder_kbps: the bitrate of each rendition, kbit/s, ascending (the Envivio ladder by default).
        duration_s: length of the content in seconds (for a ``source``: cut to this; 0 = the whole file).
        segment_s: segment duration in seconds (one keyframe per segment).
        fps: frame rate of the output.
        source: a video file to package; ``None`` encodes the synthetic ``pattern``.
        audio_kbps: add an AAC audio track of this bitrate (``None``: video only).
        pattern: the synthetic source: ``"scenes"`` (scenes of varying complexity, :func:`scene_plan`) or
            ``"testsrc2"`` (ffmpeg's test pattern alone, the old default).
        seed: the seed of the scene sequence (``pattern="scenes"``).
        measure_quality: measure each segment's SSIM against the source (:func:`measure_ssim_db`) and write it
            into the table (``sizes/video_ssim_db_<level>``).
        max_height: cap the frame height of every rendition (e.g. 180 for a quick test); ``None``: the ladder's
            own sizes (up to 1080p for 4300 kbit/s).
        threads: x264 threads (0: ffmpeg's choice). x264's rate control under VBV is not bit-exact across runs
            with several threads (sizes and SSIM differ by a few hundredths of a dB); 1 makes them reproducible.

    Raises:
        ConfigError: a bad parameter, ffmpeg missing, or ffmpeg failing (its message is included).
    """
    ladder = _check_ladder(ladder_kbps)
    if pattern not in PATTERNS:
        raise ConfigError(f"pattern={pattern!r} is not one of {', '.join(PATTERNS)}")
    if max_height is not None and not (max_height >= 90 and max_height % 2 == 0):
        raise ConfigError(f"max_height={max_height} must be an even number of pixels >= 90")
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
    scenes = None
    if src is None:
        scenes = (scene_plan(duration_s, segment_s, seed) if pattern == "scenes"
                  else [Scene("testsrc2", duration_s, 0, 0.0)])
    try:
        cmd = ffmpeg_command(work, ladder_kbps=ladder, duration_s=duration_s, segment_s=segment_s, fps=fps,
                             source=src, audio_kbps=audio_kbps, scenes=scenes, max_height=max_height,
                             threads=threads)
        logger.info("encoding %d renditions: %s", len(ladder), " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ConfigError(f"ffmpeg failed (exit {proc.returncode}) making {out}: {proc.stderr.strip()[-800:]}")
        sizes = _segment_sizes(work, len(ladder))
        quality = None
        if measure_quality:
            quality = measure_ssim_db(work, ladder_kbps=ladder, n_segments=len(sizes), segment_s=segment_s, fps=fps,
                                      duration_s=duration_s, source=src, scenes=scenes, max_height=max_height)
        video = Video(kbps_to_bps(np.asarray(ladder)), segment_s, np.asarray(sizes, dtype=np.float64) * 8.0,
                      name=out.name, ssim_db=quality)
        write_pensieve_video(video, work / SIZES_DIR)
        described = str(src) if src else ("ffmpeg scenes" if pattern == "scenes" else "ffmpeg testsrc2")
        info: dict[str, Any] = {
            "format": "abr-dash-content-v1", "ladder_kbps": list(ladder), "segment_s": segment_s, "fps": fps,
            "n_segments": len(sizes), "frame_sizes": [list(frame_size(k, max_height)) for k in ladder],
            "audio_kbps": audio_kbps, "source": described,
            "pattern": None if src else pattern, "seed": seed if src is None and pattern == "scenes" else None,
            "scenes": [sc.as_dict() for sc in scenes] if scenes else None,
            "quality": None if quality is None else {
                "metric": "ssim_db", "definition": "-10*log10(1 - mean luma SSIM of the segment's frames)",
                "reference": "the source at the top level's frame size; renditions scaled up bicubic",
                "cap_db": MAX_SSIM_DB,
                "mean_ssim_db": [float(x) for x in quality.mean(axis=0)],
                "min_ssim_db": [float(x) for x in quality.min(axis=0)],
                "max_ssim_db": [float(x) for x in quality.max(axis=0)]},
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


def measure_ssim_db(folder: Path, *, ladder_kbps: Sequence[float], n_segments: int, segment_s: float, fps: int,
                    duration_s: float, source: Path | None, scenes: Sequence[Scene] | None,
                    max_height: int | None = None) -> npt.NDArray[np.float64]:
    """Each segment's SSIM in dB against the source, ``[n_segments, n_levels]``, with ffmpeg's ``ssim`` filter.

    One ffmpeg run renders the source again (the same seeded scenes, or the user's file cut and letterboxed like
    the renditions) at the top level's frame size, decodes every rendition (its init segment and media segments
    joined), scales it up to that size (bicubic) and compares the two frame by frame. A segment's value is
    ``-10 log10(1 - mean Y SSIM)`` over its frames, capped at :data:`MAX_SSIM_DB`.

    Raises:
        ConfigError: ffmpeg failed, or its SSIM log misses frames of a segment.
    """
    n = len(ladder_kbps)
    width, height = frame_size(ladder_kbps[-1], max_height)
    gop = int(round(fps * segment_s))
    with tempfile.TemporaryDirectory(prefix="abr-ssim-") as scratch:
        tmp = Path(scratch)
        cmd = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        for level in range(n):
            joined = tmp / f"level{level}.mp4"
            with open(joined, "wb") as out:
                out.write((folder / f"init-{level}.m4s").read_bytes())
                for i in range(1, n_segments + 1):
                    out.write((folder / f"chunk-{level}-{i:05d}.m4s").read_bytes())
            cmd += ["-i", joined.name]
        if source is None:
            reference = source_graph(scenes or [Scene("testsrc2", duration_s, 0, 0.0)], width, height, fps, "ref")
            reference += ";[ref]"
        else:
            cmd += (["-t", f"{duration_s:g}"] if duration_s > 0 else []) + ["-i", str(source.resolve())]
            reference = (f"[{n}:v]scale={width}:{height}:force_original_aspect_ratio=decrease,"
                         f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p,")
        refs = "".join(f"[r{k}]" for k in range(n))
        graph = [f"{reference}fps={fps},split={n}{refs}"]
        for k in range(n):
            graph.append(f"[{k}:v]scale={width}:{height}:flags=bicubic,format=yuv420p,setsar=1[d{k}]")
            graph.append(f"[d{k}][r{k}]ssim=stats_file=ssim{k}.log[x{k}]")
        cmd += ["-filter_complex", ";".join(graph)]
        for k in range(n):
            cmd += ["-map", f"[x{k}]", "-f", "null", "-"]
        logger.info("measuring SSIM of %d renditions: %s", n, " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp)
        if proc.returncode != 0:
            raise ConfigError(f"ffmpeg failed (exit {proc.returncode}) measuring SSIM in {folder}: "
                              f"{proc.stderr.strip()[-800:]}")
        columns = [_segment_ssim_db(tmp / f"ssim{k}.log", n_segments, gop) for k in range(n)]
    return np.column_stack(columns)


_SSIM_LINE = re.compile(r"^n:(\d+) Y:([0-9.]+)")


def _segment_ssim_db(log: Path, n_segments: int, gop: int) -> npt.NDArray[np.float64]:
    """Per-segment SSIM dB from an ``ssim`` stats file (frame ``n`` is 1-based; segment i holds gop frames)."""
    sums, counts = np.zeros(n_segments), np.zeros(n_segments)
    for line in log.read_text(encoding="utf-8").splitlines():
        if (m := _SSIM_LINE.match(line)) is None:
            continue
        seg = (int(m[1]) - 1) // gop
        if seg < n_segments:
            sums[seg] += float(m[2])
            counts[seg] += 1
    if np.any(counts == 0):
        missing = int(np.argmax(counts == 0)) + 1
        raise ConfigError(f"the SSIM log {log.name} has no frame of segment {missing} (of {n_segments}); the "
                          "renditions and the source differ in length: make the content again")
    ssim = np.clip(sums / counts, 0.0, 1.0)
    return np.minimum(-10.0 * np.log10(np.maximum(1.0 - ssim, 10.0 ** (-MAX_SSIM_DB / 10.0))), MAX_SSIM_DB)


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
    quality = None if video.ssim_db is None else tuple(tuple(float(v) for v in row) for row in video.ssim_db)
    return Content(root, ladder, segment_s, video.n_chunks, tuple(tuple(int(v) for v in row) for row in sizes),
                   bool(meta.get("audio_kbps")), quality)


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
