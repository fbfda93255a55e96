"""Video (chunk-size table) readers and writers: Pensieve ``video_size_N`` folders and Sabre manifests; the
Envivio ladder.

Sizes are converted to bits and bitrates to bits per second on load. :data:`ENVIVIO_LADDER_BPS` is the
project's one copy of Pensieve's Envivio-Dash3 ladder; :func:`envivio_cbr_video` the constant-bitrate video on it
that stands in when no data directory is set.
"""

from __future__ import annotations

import json
import logging
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from traces._text import content_lines, read_text
from traces.datadir import VIDEO_SIZE_PREFIX
from traces.errors import DataDirError, VideoFormatError
from traces.types import FloatArray, Video
from traces.units import bits_to_bytes, bps_to_kbps, bytes_to_bits, kbps_to_bps, ms_to_s

logger = logging.getLogger(__name__)

MPD_FILE = "Manifest.mpd"
LADDER_FILE = "ladder.json"
_LEVEL_RE = re.compile(rf"^{VIDEO_SIZE_PREFIX}(\d+)$")
#: Optional per-chunk quality files of a Pensieve folder, one per level: SSIM in dB, one number per line.
QUALITY_PREFIX = "video_ssim_db_"
_QUALITY_RE = re.compile(rf"^{QUALITY_PREFIX}(\d+)$")
_QUALITY_EXPECTED = "one number per line: the chunk's SSIM in dB"
#: The optional key of a Sabre manifest holding the per-chunk quality (rows like ``segment_sizes_bits``).
SABRE_QUALITY_KEY = "segment_ssim_db"
_INT_RE = re.compile(r"^-?[0-9]+$")
_SIZE_EXPECTED = "one integer chunk size in bytes per line"
#: How far (as a factor, either way) a level's mean chunk rate may be from its ladder bitrate (see
#: :func:`check_level_rates`): the shared videos' levels are within 1.75x; a mismatched ladder is usually far off.
LEVEL_RATE_TOLERANCE = 3.0
#: The name error messages give the caller's ladder argument (the CLI passes ``"--ladder-kbps"``).
DEFAULT_LADDER_OPTION = "bitrates_bps"
#: Pensieve's Envivio-Dash3 ladder, in bit/s (300, 750, 1200, 1850, 2850, 4300 kbit/s).
ENVIVIO_LADDER_BPS: tuple[float, ...] = (300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3)
ENVIVIO_CHUNK_DURATION_S = 4.0
#: Chunks of the Envivio video the research simulator plays.
ENVIVIO_N_CHUNKS = 48


def envivio_cbr_video(name: str = "envivio_cbr_synthetic") -> Video:
    """A constant-bitrate stand-in for the Envivio video: its ladder, 48 chunks of 4 s.

    >>> v = envivio_cbr_video()
    >>> v.n_chunks, v.n_levels, float(v.chunk_sizes_bits[0, 0])
    (48, 6, 1200000.0)
    """
    return Video.cbr(list(ENVIVIO_LADDER_BPS), chunk_duration_s=ENVIVIO_CHUNK_DURATION_S,
                     n_chunks=ENVIVIO_N_CHUNKS, name=name)


def read_pensieve_video(
    directory: str | Path,
    *,
    bitrates_bps: Sequence[float] | None = None,
    chunk_duration_s: float = 4.0,
    name: str | None = None,
    ladder_option: str = DEFAULT_LADDER_OPTION,
) -> Video:
    """Read a Pensieve video folder: ``video_size_0 .. video_size_{L-1}``, bytes per chunk, one per line.

    Level 0 is the lowest quality. Optional ``video_ssim_db_0 .. video_ssim_db_{L-1}`` files give each chunk's
    perceptual quality (SSIM in dB, one number per line, as many lines as chunks; all levels or none), read
    into ``Video.ssim_db`` (``docs/video-tables.md``). The bitrate ladder comes from, in order: ``bitrates_bps``; a
    ``ladder.json`` ``{"bitrates_kbps": [...]}`` in the folder; a ``Manifest.mpd`` in the folder (the
    ``bandwidth`` of its video ``Representation`` elements, sorted ascending). A folder holding both files is
    read only when they give the same ladder (``bitrates_bps`` overrides both). Whatever its origin, the ladder
    must hold one bitrate per level, every one > 0, strictly increasing.

    Args:
        directory: the folder.
        bitrates_bps: the ladder in bits per second, one per level, ascending.
        chunk_duration_s: playback duration of one chunk in seconds (Pensieve uses 4.0).
        name: the video name (default: the folder name).
        ladder_option: how the caller's users give ``bitrates_bps`` (``"--ladder-kbps"`` in the CLI), named in
            the error messages as the fix.

    Returns:
        The video, chunk sizes in bits.

    Raises:
        DataDirError: the folder does not exist.
        VideoFormatError: no or gapped level files, mismatched chunk counts, a bad size, no ladder, a ladder
            of the wrong length, not positive or not increasing, or a ``ladder.json`` and a ``Manifest.mpd``
            that disagree.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for level, size in enumerate((100, 200)):
    ...         _ = (Path(d) / f"video_size_{level}").write_text(f"{size}\\n{size}\\n")
    ...     v = read_pensieve_video(d, bitrates_bps=[200.0, 400.0])
    >>> v.n_chunks, v.chunk_sizes_bits[0].tolist()
    (2, [800.0, 1600.0])
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise DataDirError(f"unknown video folder {folder}: it does not exist or is not a directory")
    level_files = _level_files(folder)
    columns = [_read_sizes(p) for p in level_files]
    for path, col in zip(level_files[1:], columns[1:], strict=True):
        if col.size != columns[0].size:
            raise VideoFormatError(
                f"{level_files[0].name} has {columns[0].size} chunks but {path.name} has {col.size}; every "
                "level file must list the same chunks",
                path=folder,
            )
    ladder = _ladder(folder, len(level_files), bitrates_bps, ladder_option)
    sizes_bits = bytes_to_bits(np.column_stack(columns).astype(np.float64))
    quality = _read_quality(folder, len(level_files), columns[0].size)
    video = Video(ladder, chunk_duration_s, sizes_bits, name=name or folder.name, source=str(folder),
                  ssim_db=quality)
    origin = ladder_option if bitrates_bps is not None else (
        LADDER_FILE if (folder / LADDER_FILE).is_file() else MPD_FILE)
    check_level_rates(video.bitrates_bps, video.chunk_sizes_bits, video.chunk_duration_s, origin=origin,
                      option=ladder_option, path=folder, table="the video_size_N files", unit="bytes")
    logger.debug("read video %s: %d chunks x %d levels", video.name, video.n_chunks, video.n_levels)
    return video


def read_sabre_manifest(path: str | Path, *, name: str | None = None, bitrates_bps: Sequence[float] | None = None,
                        ladder_option: str = DEFAULT_LADDER_OPTION) -> Video:
    """Read a Sabre manifest ``{"segment_duration_ms", "bitrates_kbps", "segment_sizes_bits"}``.

    ``segment_sizes_bits`` holds one row per segment, one size (in bits) per bitrate. An optional
    ``segment_ssim_db`` holds the same rows of per-segment quality (SSIM in dB), read into ``Video.ssim_db``.

    Args:
        path: the JSON file.
        name: the video name (default: the file stem).
        bitrates_bps: a ladder in bits per second that replaces the manifest's ``bitrates_kbps`` (one per
            level, ascending).
        ladder_option: the name of ``bitrates_bps`` in error messages (the CLI's ``"--ladder-kbps"``).

    Returns:
        The video.

    Raises:
        VideoFormatError: invalid JSON, a missing key, a row of the wrong length, or a ``bitrates_bps`` of
            the wrong length, not positive or not increasing.

    >>> import tempfile
    >>> doc = '{"segment_duration_ms": 3000, "bitrates_kbps": [100, 200], "segment_sizes_bits": [[3e5, 6e5]]}'
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "m.json"
    ...     _ = p.write_text(doc)
    ...     v = read_sabre_manifest(p)
    >>> v.chunk_duration_s, v.bitrates_bps.tolist(), v.n_chunks
    (3.0, [100000.0, 200000.0], 1)
    """
    text = read_text(path, expected="a Sabre manifest JSON object", error=VideoFormatError)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VideoFormatError(f"invalid JSON ({exc.msg}, column {exc.colno}); expected a Sabre manifest",
                               path=path, line=exc.lineno) from None
    keys = ("segment_duration_ms", "bitrates_kbps", "segment_sizes_bits")
    if not isinstance(doc, dict) or any(k not in doc for k in keys):
        got = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise VideoFormatError(f"expected a JSON object with keys {list(keys)}, got {got}", path=path)
    duration_ms = _finite_number(doc["segment_duration_ms"], "segment_duration_ms", path)
    ladder_kbps = doc["bitrates_kbps"]
    if not isinstance(ladder_kbps, list) or not ladder_kbps:
        raise VideoFormatError(f"bitrates_kbps must be a non-empty list, got {ladder_kbps!r}", path=path)
    ladder = np.array([_finite_number(b, "bitrates_kbps", path) for b in ladder_kbps])
    rows = doc["segment_sizes_bits"]
    if not isinstance(rows, list) or not rows:
        raise VideoFormatError("segment_sizes_bits must be a non-empty list of rows", path=path)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != ladder.size:
            found = len(row) if isinstance(row, list) else type(row).__name__
            raise VideoFormatError(
                f"segment {i + 1} (1-based) has {found} sizes; expected {ladder.size}, one per bitrate",
                path=path,
            )
    sizes = np.array([[_finite_number(v, "segment_sizes_bits", path) for v in row] for row in rows])
    if np.any(sizes <= 0):
        seg, level = (int(i) for i in np.argwhere(sizes <= 0)[0])
        raise VideoFormatError(f"segment {seg + 1} (1-based), level {level}: size {rows[seg][level]!r} bits; "
                               "expected a number > 0", path=path)
    ladder_bps = kbps_to_bps(ladder) if bitrates_bps is None else check_ladder(
        bitrates_bps, n_levels=ladder.size, origin=ladder_option, path=path)
    quality = _sabre_quality(doc, sizes.shape, path)
    video = Video(ladder_bps, ms_to_s(duration_ms), sizes, name=name or Path(path).stem, source=str(path),
                  ssim_db=quality)
    check_level_rates(video.bitrates_bps, video.chunk_sizes_bits, video.chunk_duration_s,
                      origin="bitrates_kbps" if bitrates_bps is None else ladder_option, option=ladder_option,
                      path=path, table="segment_sizes_bits", unit="bits")
    return video


def read_video(path: str | Path, **kwargs: Any) -> Video:
    """Read a video, dispatching on its form: a ``video_size_*`` folder or a Sabre ``.json`` manifest.

    Args:
        path: the folder or manifest.
        **kwargs: passed to :func:`read_pensieve_video` or :func:`read_sabre_manifest` (both take
            ``bitrates_bps``, which overrides the ladder of the files, and ``ladder_option``).

    Returns:
        The video.

    Raises:
        DataDirError: ``path`` does not exist.
        VideoFormatError: ``path`` is neither form.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "video_size_0").write_text("500000\\n")
    ...     read_video(d, bitrates_bps=[1e6]).n_levels
    1
    """
    p = Path(path)
    if not p.exists():
        raise DataDirError(f"unknown video folder {p}: it does not exist; give a folder with video_size_* "
                           "files or a Sabre .json manifest")
    if p.is_dir():
        if any(_LEVEL_RE.match(child.name) for child in p.iterdir()):
            return read_pensieve_video(p, **kwargs)
        raise VideoFormatError(
            f"unknown video folder: no {VIDEO_SIZE_PREFIX}N files in it (has: "
            f"{', '.join(sorted(c.name for c in p.iterdir())) or 'nothing'})",
            path=p,
        )
    if p.suffix.lower() == ".json":
        return read_sabre_manifest(p, **kwargs)
    raise VideoFormatError("unknown video file: expected a folder of video_size_N files or a Sabre .json "
                           "manifest", path=p)


def check_ladder(bitrates_bps: Sequence[float] | npt.ArrayLike, *, n_levels: int | None = None,
                 origin: str = DEFAULT_LADDER_OPTION, fix: str | None = None,
                 path: str | Path | None = None) -> FloatArray:
    """A bitrate ladder, checked: one value per level, every one finite and > 0, strictly increasing.

    Args:
        bitrates_bps: the ladder in bits per second.
        n_levels: the levels of the chunk-size table it belongs to (``None``: any number).
        origin: where the ladder came from, for the message (``"--ladder-kbps"``, ``"ladder.json"``).
        fix: what to do about a bad ladder (default: ``"fix <origin>"``).
        path: the video file or folder, named in the message.

    Returns:
        The ladder as a float array (bits per second).

    Raises:
        VideoFormatError: the ladder is empty, of the wrong length, not positive or not increasing (the
            message shows it in kbit/s).

    >>> check_ladder([3e5, 7.5e5], n_levels=2).tolist()
    [300000.0, 750000.0]
    >>> check_ladder([3e5, 2e5], origin="--ladder-kbps")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    traces.errors.VideoFormatError: --ladder-kbps gives 300, 200 kbit/s: the bitrates must be strictly increasing ...
    """
    fix = fix or f"fix {origin}"
    try:
        ladder = np.asarray(bitrates_bps, dtype=np.float64)
    except (TypeError, ValueError):
        raise VideoFormatError(f"{origin} gives {bitrates_bps!r}: expected numbers; {fix}", path=path) from None
    shown = ", ".join(f"{k:g}" for k in bps_to_kbps(ladder.ravel()))
    if ladder.ndim != 1 or ladder.size == 0:
        raise VideoFormatError(f"{origin} gives no ladder ({shown or 'nothing'}); expected one bitrate per level; "
                               f"{fix}", path=path)
    if n_levels is not None and ladder.size != n_levels:
        raise VideoFormatError(
            f"{origin} gives {ladder.size} bitrates ({shown} kbit/s) but the chunk-size table has {n_levels} "
            f"levels; give one bitrate per level, ascending; {fix}",
            path=path,
        )
    if not np.all(np.isfinite(ladder) & (ladder > 0)):
        raise VideoFormatError(f"{origin} gives {shown} kbit/s: every bitrate must be a finite number > 0; {fix}",
                               path=path)
    if np.any(np.diff(ladder) <= 0):
        raise VideoFormatError(f"{origin} gives {shown} kbit/s: the bitrates must be strictly increasing (level 0 "
                               f"= lowest); {fix}", path=path)
    return ladder


def check_level_rates(ladder_bps: FloatArray, sizes_bits: FloatArray, chunk_duration_s: float, *, origin: str,
                      option: str = DEFAULT_LADDER_OPTION, path: str | Path | None = None,
                      table: str = "the chunk-size table", unit: str = "bits") -> None:
    """Refuse a level whose mean chunk rate is more than :data:`LEVEL_RATE_TOLERANCE` times off its ladder bitrate.

    Each level's MEAN rate (its chunk sizes' mean over the chunk duration) is judged, not single chunks: a VBR
    title's chunks range far below and above the nominal rate (MERINA's Avengers: 0.03x to 3.6x), but every
    level of the shared videos averages within 0.95x-1.75x of its ladder entry. A level many times off means the
    ladder and the table do not belong together (another video's ladder, kbit/s for bit/s, bits for bytes).

    Args:
        ladder_bps: the ladder, bits per second, one per level.
        sizes_bits: the table, ``[n_chunks, n_levels]`` bits.
        chunk_duration_s: playback seconds of a chunk.
        origin: where the ladder came from, for the message (``"Manifest.mpd"``, ``"--ladder-kbps"``).
        option: how the caller gives a ladder (the fix).
        path: the video, for the message.
        table: what the sizes were read from, for the message.
        unit: the unit of the sizes in ``table`` (``"bytes"`` for ``video_size_N`` files), for the message.

    Raises:
        VideoFormatError: a level's mean rate is more than the tolerance above or below its ladder bitrate.

    >>> check_level_rates(np.array([1e6]), np.array([[4e6], [3e6]]), 4.0, origin="x")  # 0.875x: fine
    >>> try:
    ...     check_level_rates(np.array([1e6, 4.3e6]), np.array([[4e6, 1.2e6]]), 4.0, origin="Manifest.mpd")
    ... except VideoFormatError as exc:
    ...     print(str(exc).split(";")[0])
    level 1 (of 2): its chunks average 300 kbit/s, 14.3x below its ladder bitrate 4300 kbit/s (from Manifest.mpd)
    """
    mean_bps = np.asarray(sizes_bits, dtype=np.float64).mean(axis=0) / chunk_duration_s
    ratio = mean_bps / np.asarray(ladder_bps, dtype=np.float64)
    off = np.flatnonzero((ratio > LEVEL_RATE_TOLERANCE) | (ratio < 1.0 / LEVEL_RATE_TOLERANCE))
    if off.size == 0:
        return
    level = int(off[np.argmax(np.abs(np.log(ratio[off])))])  # the level furthest off
    factor = ratio[level] if ratio[level] >= 1.0 else 1.0 / ratio[level]
    direction = "above" if ratio[level] >= 1.0 else "below"
    others = f"; {off.size - 1} other level(s) too" if off.size > 1 else ""
    raise VideoFormatError(
        f"level {level} (of {ratio.size}): its chunks average {_kbps(mean_bps[level])} kbit/s, "
        f"{factor:.1f}x {direction} its ladder bitrate {_kbps(float(ladder_bps[level]))} kbit/s (from "
        f"{origin}){others}; a level's mean must be within {LEVEL_RATE_TOLERANCE:g}x of its ladder bitrate: give "
        f"the video's own ladder ({option}) or fix {table} ({unit} per {chunk_duration_s:g}-s chunk)",
        path=path,
    )


def _kbps(bps: float) -> str:
    """A rate in kbit/s for messages: whole numbers from 10 kbit/s, else three significant digits."""
    kbps = float(bps_to_kbps(bps))
    return f"{kbps:.0f}" if kbps >= 10 else f"{kbps:.3g}"


def write_pensieve_video(video: Video, directory: str | Path) -> Path:
    """Write ``video`` as a Pensieve folder (``video_size_N``, integer bytes) plus a ``ladder.json``.

    A video with quality also gets its ``video_ssim_db_N`` files (SSIM dB, 6 decimals).

    Sizes that are not whole bytes are rounded to the nearest byte (logged). The chunk duration is not
    stored by this format; pass it to :func:`read_pensieve_video` when reading back.

    Args:
        video: the video to write.
        directory: the output folder (created if missing).

    Returns:
        The folder written.

    Raises:
        VideoFormatError: the folder already holds level files beyond this video's ladder.

    >>> import tempfile
    >>> v = Video.cbr([3e5, 7.5e5], chunk_duration_s=4.0, n_chunks=2)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     back = read_pensieve_video(write_pensieve_video(v, Path(d) / "v"))
    >>> back.bitrates_bps.tolist() == v.bitrates_bps.tolist()
    True
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stale = [p.name for p in folder.iterdir()
             if (m := _LEVEL_RE.match(p.name)) and int(m[1]) >= video.n_levels]
    stale += [p.name for p in folder.iterdir()
              if (m := _QUALITY_RE.match(p.name)) and (int(m[1]) >= video.n_levels or video.ssim_db is None)]
    if stale:
        raise VideoFormatError(f"the folder already holds {sorted(stale)} beyond this video's "
                               f"{video.n_levels} levels (or quality it does not have); write into an empty folder",
                               path=folder)
    sizes_bytes = np.rint(bits_to_bytes(video.chunk_sizes_bits)).astype(np.int64)
    if not np.allclose(bytes_to_bits(sizes_bytes), video.chunk_sizes_bits):
        logger.info("rounded chunk sizes of %s to whole bytes", video.name)
    for level in range(video.n_levels):
        text = "".join(f"{size}\n" for size in sizes_bytes[:, level])
        (folder / f"{VIDEO_SIZE_PREFIX}{level}").write_text(text, encoding="utf-8")
    if video.ssim_db is not None:
        for level in range(video.n_levels):
            text = "".join(f"{q:.6f}\n" for q in video.ssim_db[:, level])
            (folder / f"{QUALITY_PREFIX}{level}").write_text(text, encoding="utf-8")
    ladder_kbps = [_plain_number(b) for b in bps_to_kbps(video.bitrates_bps)]
    (folder / LADDER_FILE).write_text(json.dumps({"bitrates_kbps": ladder_kbps}) + "\n", encoding="utf-8")
    return folder


# --- helpers -----------------------------------------------------------------------------------------------


def _level_files(folder: Path) -> list[Path]:
    levels = {int(m[1]): p for p in folder.iterdir() if (m := _LEVEL_RE.match(p.name)) and p.is_file()}
    if not levels:
        raise VideoFormatError(f"unknown video folder: no {VIDEO_SIZE_PREFIX}N files in it", path=folder)
    missing = sorted(set(range(max(levels) + 1)) - set(levels))
    if missing:
        raise VideoFormatError(
            f"level files must be {VIDEO_SIZE_PREFIX}0..{VIDEO_SIZE_PREFIX}{max(levels)} without gaps; "
            f"missing levels {missing}",
            path=folder,
        )
    return [levels[k] for k in range(len(levels))]


def _read_sizes(path: Path) -> npt.NDArray[np.int64]:
    text = read_text(path, expected=_SIZE_EXPECTED, error=VideoFormatError)
    sizes: list[int] = []
    for number, line in content_lines(text):
        if not _INT_RE.match(line):
            raise VideoFormatError(f"expected {_SIZE_EXPECTED}, got {line!r}", path=path, line=number)
        size = int(line)
        if size <= 0:
            msg = f"chunk size is {size} bytes; expected an integer > 0"
            raise VideoFormatError(msg, path=path, line=number)
        sizes.append(size)
    if not sizes:
        raise VideoFormatError(f"the file is empty; expected {_SIZE_EXPECTED}", path=path)
    return np.asarray(sizes, dtype=np.int64)


def _read_quality(folder: Path, n_levels: int, n_chunks: int) -> FloatArray | None:
    """The folder's ``video_ssim_db_N`` columns as ``[n_chunks, n_levels]`` SSIM dB, or ``None`` if it has none."""
    files = {int(m[1]): p for p in folder.iterdir() if (m := _QUALITY_RE.match(p.name)) and p.is_file()}
    if not files:
        return None
    if sorted(files) != list(range(n_levels)):
        raise VideoFormatError(
            f"quality files {QUALITY_PREFIX}N must cover the levels 0..{n_levels - 1} of the size table, found "
            f"levels {sorted(files)}; give all of them or none (measure them with `abr player content`)",
            path=folder,
        )
    columns: list[FloatArray] = []
    for level in range(n_levels):
        path = files[level]
        values: list[float] = []
        for number, line in content_lines(read_text(path, expected=_QUALITY_EXPECTED, error=VideoFormatError)):
            try:
                value = float(line)
            except ValueError:
                raise VideoFormatError(f"expected {_QUALITY_EXPECTED}, got {line!r}", path=path,
                                       line=number) from None
            if not math.isfinite(value):
                raise VideoFormatError(f"quality is {line!r}; expected a finite number (SSIM dB)", path=path,
                                       line=number)
            values.append(value)
        if len(values) != n_chunks:
            raise VideoFormatError(
                f"{len(values)} quality lines but the size table has {n_chunks} chunks; expected "
                f"{_QUALITY_EXPECTED}, one per chunk",
                path=path,
            )
        columns.append(np.asarray(values, dtype=np.float64))
    return np.column_stack(columns)


def _sabre_quality(doc: dict[str, Any], shape: tuple[int, ...], path: str | Path) -> FloatArray | None:
    """The manifest's optional ``segment_ssim_db`` rows, checked like ``segment_sizes_bits``."""
    if SABRE_QUALITY_KEY not in doc:
        return None
    rows = doc[SABRE_QUALITY_KEY]
    if not isinstance(rows, list) or len(rows) != shape[0]:
        found = len(rows) if isinstance(rows, list) else type(rows).__name__
        raise VideoFormatError(f"{SABRE_QUALITY_KEY} has {found} rows; expected {shape[0]}, one per segment "
                               "(like segment_sizes_bits)", path=path)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != shape[1]:
            found = len(row) if isinstance(row, list) else type(row).__name__
            raise VideoFormatError(f"{SABRE_QUALITY_KEY}: segment {i + 1} (1-based) has {found} values; expected "
                                   f"{shape[1]}, one per bitrate", path=path)
    return np.array([[_finite_number(v, SABRE_QUALITY_KEY, path) for v in row] for row in rows])


def _ladder(folder: Path, n_levels: int, bitrates_bps: Sequence[float] | None, option: str) -> FloatArray:
    """The folder's ladder: ``bitrates_bps``, else ``ladder.json``, else ``Manifest.mpd`` (both: they must agree)."""
    if bitrates_bps is not None:
        return check_ladder(bitrates_bps, n_levels=n_levels, origin=option, path=folder)
    has_json, has_mpd = (folder / LADDER_FILE).is_file(), (folder / MPD_FILE).is_file()
    if not has_json and not has_mpd:
        provenance = " (its PROVENANCE.md may name the ladder)" if (folder / "PROVENANCE.md").is_file() else ""
        raise VideoFormatError(
            f"no bitrate ladder for the {n_levels} levels: the folder has neither a {LADDER_FILE} nor a {MPD_FILE}"
            f"{provenance}; pass {option} with {n_levels} bitrates (ascending), or put a {LADDER_FILE} "
            '(\'{"bitrates_kbps": [...]}\') in the folder',
            path=folder,
        )
    fix = f"fix the file or pass {option} (which overrides it)"
    ladders: dict[str, FloatArray] = {}
    if has_json:
        ladders[LADDER_FILE] = check_ladder(_json_ladder(folder / LADDER_FILE), n_levels=n_levels,
                                            origin=LADDER_FILE, fix=fix, path=folder)
    if has_mpd:
        ladders[MPD_FILE] = check_ladder(_mpd_ladder(folder / MPD_FILE), n_levels=n_levels, origin=MPD_FILE,
                                         fix=fix, path=folder)
    if has_json and has_mpd and not np.allclose(ladders[LADDER_FILE], ladders[MPD_FILE], rtol=1e-9, atol=0.0):
        shown = {k: ", ".join(f"{b:g}" for b in bps_to_kbps(v)) for k, v in ladders.items()}
        raise VideoFormatError(
            f"{LADDER_FILE} ({shown[LADDER_FILE]} kbit/s) and {MPD_FILE} ({shown[MPD_FILE]} kbit/s) give different "
            f"ladders; pass {option} to override both, or fix one file so that they agree",
            path=folder,
        )
    return ladders[LADDER_FILE] if has_json else ladders[MPD_FILE]


def _mpd_ladder(path: Path) -> FloatArray:
    try:
        root = ET.fromstring(read_text(path, expected="a DASH MPD (XML)", error=VideoFormatError))
    except ET.ParseError as exc:
        raise VideoFormatError(f"invalid XML ({exc}); expected a DASH MPD", path=path,
                               line=exc.position[0]) from None

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    video_sets = [a for a in root.iter() if local(a.tag) == "AdaptationSet"
                  and "video" in (a.get("mimeType", "") + a.get("contentType", ""))]
    scope = video_sets or [root]
    reps = [r for s in scope for r in s.iter() if local(r.tag) == "Representation" and r.get("bandwidth")]
    if not reps:
        raise VideoFormatError("no Representation elements with a bandwidth attribute", path=path)
    try:
        return np.sort(np.array([float(r.get("bandwidth", "")) for r in reps]))
    except ValueError:
        raise VideoFormatError("a Representation bandwidth is not a number (bits/s expected)",
                               path=path) from None


def _json_ladder(path: Path) -> FloatArray:
    try:
        doc = json.loads(read_text(path, expected='{"bitrates_kbps": [...]}', error=VideoFormatError))
    except json.JSONDecodeError as exc:
        raise VideoFormatError(f"invalid JSON ({exc.msg}); expected {{\"bitrates_kbps\": [...]}}", path=path,
                               line=exc.lineno) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("bitrates_kbps"), list):
        raise VideoFormatError('expected an object {"bitrates_kbps": [...]}', path=path)
    return kbps_to_bps(np.array([_finite_number(b, "bitrates_kbps", path) for b in doc["bitrates_kbps"]]))


def _finite_number(value: object, key: str, path: str | Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise VideoFormatError(f"{key} holds {value!r}; expected a finite number", path=path)
    return float(value)


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
