"""QoE models: per-chunk utility minus rebuffering and smoothness penalties.

QoE of chunk n = u(q_n) - rebuffer_penalty_per_s * rebuffer_n - smoothness_weight * |u(q_n) - u(q_{n-1})|,
with u the utility of a quality level and q_0 taken equal to q_1 (the first chunk has no smoothness cost).
Startup delay is reported separately and is not part of the sum (unless the simulator counts it as
rebuffering, as the research simulator does). Variants (Mao et al., SIGCOMM 2017; Yin et al., SIGCOMM 2015):

* ``linear``: u = bitrate in Mbit/s; rebuffer penalty :data:`REBUFFER_PENALTY_PER_S` (4.3, the top bitrate of
  the Envivio ladder in Mbit/s) per second.
* ``log``: u = ln(bitrate / top bitrate); rebuffer penalty 4.3 per second.
* ``hd``: u = a per-level score table, by default (1, 2, 3, 12, 15, 20) for the 6-level Envivio ladder;
  rebuffer penalty 4.3 per second, as in the research simulator's reference results.
* ``ssim``: the perceptual QoE of Puffer/Fugu (Yan et al., NSDI 2020, section 4.3: QoE of chunk i =
  Q(K_i) - lambda |Q(K_i) - Q(K_i-1)| - mu T(K_i)), u = the chunk's own SSIM in dB at the chosen level
  (``Video.ssim_db``, per chunk AND level, measured by ``abr player content``); rebuffer penalty
  :data:`SSIM_REBUFFER_PENALTY_PER_S` (mu = 100 per second of stall) and smoothness weight lambda = 1 (the
  default ``smoothness_weight``), parametrised from Puffer's Fugu controller (StanfordSNR/puffer:
  ``src/abr/puffer.hh``, ``REBUFFER_LENGTH_COEFF = 100``, ``SSIM_DIFF_COEFF = 1``). A video without quality
  is refused by this kind only (:meth:`QoEWeights.chunk_utilities`).

The first three kinds give every chunk of a level the same utility; ``ssim`` gives each chunk its own, so the
per-chunk computations (:func:`qoe_terms`, :func:`chunk_qoe`, the environments' reward, MPC and the offline
optimum) take a ``[n_chunks, n_levels]`` utility table (:meth:`QoEWeights.chunk_utilities`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from simulator.errors import ConfigError
from simulator.records import ChunkOutcome
from traces.types import Video
from traces.units import bps_to_mbps

QoEKind = Literal["linear", "log", "hd", "ssim"]
QOE_KINDS: tuple[str, ...] = ("linear", "log", "hd", "ssim")
#: The kinds whose utility is per chunk (read from the video), not per level.
PER_CHUNK_KINDS: tuple[str, ...] = ("ssim",)
#: mu of the ``ssim`` kind: penalty per second of stall, in SSIM dB (Puffer's Fugu, ``REBUFFER_LENGTH_COEFF``).
SSIM_REBUFFER_PENALTY_PER_S = 100.0
HD_UTILITIES: tuple[float, ...] = (1.0, 2.0, 3.0, 12.0, 15.0, 20.0)  # Pensieve's HD reward table
#: The rebuffering penalty per second of stall of every variant, as the reference results use (MPC plans with it).
REBUFFER_PENALTY_PER_S = 4.3
_DEFAULT_REBUFFER_PENALTY_PER_S = {"linear": REBUFFER_PENALTY_PER_S, "log": REBUFFER_PENALTY_PER_S,
                                   "hd": REBUFFER_PENALTY_PER_S, "ssim": SSIM_REBUFFER_PENALTY_PER_S}


@dataclass(frozen=True, slots=True)
class QoEWeights:
    """Which QoE variant and how much each term weighs.

    Args:
        kind: ``"linear"``, ``"log"``, ``"hd"`` or ``"ssim"`` (per-chunk SSIM dB; needs a video with quality).
        rebuffer_penalty_per_s: penalty per second of stall; ``None`` takes the variant's default
            (4.3 for the bitrate variants, as the reference results use; 100 for ``ssim``, as Puffer's Fugu).
        smoothness_weight: weight of the absolute utility change between consecutive chunks (lambda = 1).
        hd_utilities: the per-level utilities of the ``hd`` variant (one per ladder level).

    >>> QoEWeights().rebuffer_penalty
    4.3
    >>> QoEWeights(kind="hd").utilities([1, 2, 3, 4, 5, 6]).tolist()
    [1.0, 2.0, 3.0, 12.0, 15.0, 20.0]
    """

    kind: QoEKind = "linear"
    rebuffer_penalty_per_s: float | None = None
    smoothness_weight: float = 1.0
    hd_utilities: tuple[float, ...] = HD_UTILITIES

    def __post_init__(self) -> None:
        if self.kind not in QOE_KINDS:
            raise ConfigError(f"qoe kind={self.kind!r} is not one of {', '.join(QOE_KINDS)}")
        pen = self.rebuffer_penalty_per_s
        if pen is not None and not (math.isfinite(pen) and pen >= 0):
            raise ConfigError(f"rebuffer_penalty_per_s={pen} must be >= 0")
        if not (math.isfinite(self.smoothness_weight) and self.smoothness_weight >= 0):
            raise ConfigError(f"smoothness_weight={self.smoothness_weight} must be >= 0")

    @property
    def rebuffer_penalty(self) -> float:
        if self.rebuffer_penalty_per_s is not None:
            return float(self.rebuffer_penalty_per_s)
        return _DEFAULT_REBUFFER_PENALTY_PER_S[self.kind]

    @property
    def is_per_chunk(self) -> bool:
        """Whether the utility differs from chunk to chunk (``ssim``), so callers need :meth:`chunk_utilities`."""
        return self.kind in PER_CHUNK_KINDS

    def chunk_utilities(self, video: Video) -> npt.NDArray[np.float64]:
        """Utility of every chunk at every level, ``[n_chunks, n_levels]`` (read-only).

        For the bitrate kinds every row is :meth:`utilities` of the ladder; for ``ssim`` it is the video's
        ``ssim_db``.

        Raises:
            ConfigError: ``ssim`` on a video without per-chunk quality (the message names the video and the fix).

        >>> v = Video.cbr([300e3, 750e3], chunk_duration_s=4.0, n_chunks=2)
        >>> QoEWeights().chunk_utilities(v).tolist()
        [[0.3, 0.75], [0.3, 0.75]]
        """
        if self.kind in PER_CHUNK_KINDS:
            if video.ssim_db is None:
                raise ConfigError(
                    f"qoe kind={self.kind!r} needs the per-chunk quality (SSIM dB) of video {video.name!r} "
                    f"({video.source or 'built in memory'}), which has only chunk sizes; make content with its "
                    "quality with `abr player content` (its sizes/ folder holds video_ssim_db_N files), or choose "
                    f"another qoe kind ({', '.join(k for k in QOE_KINDS if k not in PER_CHUNK_KINDS)})",
                    field="qoe", value=self.kind,
                )
            return video.ssim_db
        table = np.broadcast_to(self.utilities(video.bitrates_bps), (video.n_chunks, video.n_levels))
        return table

    def utilities(self, bitrates_bps: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Utility of each ladder level (the bitrate kinds; ``ssim`` has per-chunk utilities only).

        >>> QoEWeights().utilities([300e3, 4300e3]).tolist()
        [0.3, 4.3]
        """
        if self.kind in PER_CHUNK_KINDS:
            raise ConfigError(
                f"qoe kind={self.kind!r} has no per-level utility: its utility is each chunk's quality; use "
                "QoEWeights.chunk_utilities(video) (and pass the Video, not its bitrates, to qoe_terms)",
                field="qoe", value=self.kind,
            )
        rates = np.asarray(bitrates_bps, dtype=np.float64)
        if self.kind == "linear":
            return bps_to_mbps(rates)
        if self.kind == "log":
            return np.log(rates / rates[-1])
        if len(self.hd_utilities) != rates.size:
            raise ConfigError(
                f"hd_utilities has {len(self.hd_utilities)} entries but the ladder has {rates.size} levels; "
                "give one utility per level"
            )
        return np.asarray(self.hd_utilities, dtype=np.float64)


class QoETerms(NamedTuple):
    """Per-chunk QoE terms (arrays over chunks). ``qoe = utility - rebuffer_penalty - smoothness_penalty``."""

    utility: npt.NDArray[np.float64]
    rebuffer_penalty: npt.NDArray[np.float64]
    smoothness_penalty: npt.NDArray[np.float64]

    @property
    def qoe(self) -> npt.NDArray[np.float64]:
        return self.utility - self.rebuffer_penalty - self.smoothness_penalty


def qoe_terms(outcomes: Sequence[ChunkOutcome], bitrates_bps: npt.ArrayLike | Video, weights: QoEWeights) -> QoETerms:
    """Per-chunk QoE terms of a session.

    Args:
        outcomes: the session's chunk records, in order.
        bitrates_bps: the ladder (bits per second), or the :class:`~traces.types.Video` played; the ``ssim`` kind
            needs the video (its per-chunk quality, looked up by each outcome's ``chunk_idx``).
        weights: the QoE model.

    >>> from simulator.records import ChunkOutcome
    >>> o = [ChunkOutcome(0, 1, 750e3, 3e6, 0, 1, 1, 3e6, 1.0, 0, 4, 0),
    ...      ChunkOutcome(1, 0, 300e3, 1e6, 1, 2, 1, 1e6, 0.0, 0, 7, 0)]
    >>> t = qoe_terms(o, [300e3, 750e3], QoEWeights())
    >>> [round(float(x), 6) for x in t.qoe]
    [-3.55, -0.15]
    """
    levels = np.fromiter((o.quality_idx for o in outcomes), dtype=np.int64, count=len(outcomes))
    rebuffer = np.fromiter((o.rebuffer_s for o in outcomes), dtype=np.float64, count=len(outcomes))
    if isinstance(bitrates_bps, Video) and weights.is_per_chunk:
        chunks = np.fromiter((o.chunk_idx for o in outcomes), dtype=np.int64, count=len(outcomes))
        utility = weights.chunk_utilities(bitrates_bps)[chunks, levels]
    else:
        ladder = bitrates_bps.bitrates_bps if isinstance(bitrates_bps, Video) else bitrates_bps
        utility = weights.utilities(ladder)[levels]
    previous = np.concatenate([utility[:1], utility[:-1]])
    return QoETerms(
        utility=utility,
        rebuffer_penalty=weights.rebuffer_penalty * rebuffer,
        smoothness_penalty=weights.smoothness_weight * np.abs(utility - previous),
    )


def chunk_qoe(quality_idx: int, previous_quality_idx: int, rebuffer_s: float,
              utilities: npt.NDArray[np.float64], weights: QoEWeights, *,
              previous_utilities: npt.NDArray[np.float64] | None = None) -> tuple[float, float, float]:
    """The (utility, rebuffer penalty, smoothness penalty) of one chunk, for step-wise rewards.

    Args:
        quality_idx: the chunk's level.
        previous_quality_idx: the previous chunk's level (the chunk's own for the first chunk).
        rebuffer_s: seconds of stall while it downloaded.
        utilities: utility of each level for this chunk (a row of :meth:`QoEWeights.chunk_utilities`).
        weights: the QoE model.
        previous_utilities: utility of each level for the previous chunk (per-chunk kinds; default ``utilities``).

    >>> chunk_qoe(0, 1, 0.5, QoEWeights().utilities([300e3, 750e3]), QoEWeights())
    (0.3, 2.15, 0.45)
    """
    u = float(utilities[quality_idx])
    before = utilities if previous_utilities is None else previous_utilities
    return (u, weights.rebuffer_penalty * rebuffer_s,
            weights.smoothness_weight * abs(u - float(before[previous_quality_idx])))
