"""A learned transmission-time predictor in the manner of Fugu's (Yan et al., NSDI 2020, Puffer), in numpy.

Fugu's Transmission Time Predictor (TTP) is a small fully connected network that maps the recent history of a
connection (the sizes and transmission times of the last 8 chunks, plus TCP statistics) and the size of a
candidate chunk to a probability distribution over discretised transmission-time bins; it is trained with a
cross-entropy loss and one network is kept per lookahead step (1 to 5 chunks ahead). This module is the
inference half of that idea for this simulator; the training half is ``abr.training.predictor`` (torch).

What differs here, and why:

* **No TCP statistics.** The simulator has none (no congestion window, RTT samples or delivery rate); the
  inputs are the last :data:`PAST_CHUNKS` chunks' sizes and download times and the candidate's size.
* **A throughput forecaster.** In this simulator a download's time is set by the trace, the chunk's size and
  the RTT (plus the optional noise), so predicting it from the history is forecasting the link's throughput;
  nothing about the transport is learned.
* **One network for every lookahead step**, with the step (0 = the next chunk) as a one-hot input, instead of
  Fugu's five networks.
* **Log-spaced bins.** Fugu's bins are 0.5 s wide up to 10 s; download times here span 0.1 s to minutes
  (a 17 Mbit chunk on a 0.2 Mbit/s link), so the bin edges are :data:`DEFAULT_EDGES_S` (0.1 s x 2^(i/3),
  i = 0..30), i.e. 32 bins whose width is 26% of their value. Each bin is represented by the mean download time of
  the training samples that fell in it (``bin_values_s`` in the weights file).

Features of a row (``log2`` of sizes in Mbit and of times in seconds, then standardised with the training
mean and standard deviation stored in the file): ``[log2 size_1, log2 time_1, ..., log2 size_8, log2 time_8,
log2 candidate size, one-hot lookahead (5)]``, past chunks oldest first. A session with fewer than 8 chunks
behind it repeats its oldest chunk, as Fugu pads with the nearest chunk.

The model file is a pair: ``NAME.npz`` (arrays ``w0, b0, w1, b1, ...``, ``feature_mean``, ``feature_std``,
``bin_edges_s``, ``bin_values_s``) and ``NAME.json`` (``{"format": "abr-ttp-v1", ...}``: the training settings
and the provenance of the training traces, :mod:`agents.provenance`). No torch is needed to load or run it.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agents.errors import PolicyLoadError
from simulator.context import PlayerContext

FloatArray = npt.NDArray[np.float64]

#: Past chunks in a row's history (Fugu: 8).
PAST_CHUNKS = 8
#: Lookahead steps the predictor is trained for (Fugu: 5; the MPC horizon).
MAX_LOOKAHEAD = 5
#: Features of one row: size and time of each past chunk, the candidate's size, the one-hot lookahead.
NUM_FEATURES = 2 * PAST_CHUNKS + 1 + MAX_LOOKAHEAD
#: Interior bin edges in seconds: 0.1 s x 2^(i/3) for i = 0..30 (0.1 s to 102.4 s); 32 bins with the two open ends.
DEFAULT_EDGES_S: tuple[float, ...] = tuple(0.1 * 2.0 ** (i / 3.0) for i in range(31))
#: The ``format`` of the metadata JSON.
TTP_FORMAT = "abr-ttp-v1"
_BITS_PER_MBIT = 1e6
_MIN_STD = 1e-6  # a constant feature is left unscaled rather than divided by zero
_ARRAY_KEYS = ("feature_mean", "feature_std", "bin_edges_s", "bin_values_s")


def metadata_path(weights_path: str | Path) -> Path:
    """The metadata JSON beside a weights file: ``x.npz`` -> ``x.json``.

    >>> metadata_path("agents/models/ttp.npz").name
    'ttp.json'
    """
    return Path(weights_path).with_suffix(".json")


def bin_index(download_time_s: npt.ArrayLike, edges_s: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The bin of each download time: 0 below the first edge, ``len(edges)`` at or above the last.

    >>> bin_index([0.05, 0.1, 150.0], DEFAULT_EDGES_S).tolist()
    [0, 1, 31]
    """
    return np.searchsorted(np.asarray(edges_s, dtype=np.float64), np.asarray(download_time_s, np.float64),
                           side="right").astype(np.int64)


def history_features(sizes_bits: npt.ArrayLike, times_s: npt.ArrayLike) -> FloatArray:
    """The ``2 * PAST_CHUNKS`` history features (unstandardised) from the chunks so far, oldest first.

    Only the last :data:`PAST_CHUNKS` are used; fewer are padded by repeating the oldest one.

    >>> history_features([2e6], [0.5]).reshape(-1, 2)[:2].tolist()
    [[1.0, -1.0], [1.0, -1.0]]
    """
    sizes = np.asarray(sizes_bits, dtype=np.float64)[-PAST_CHUNKS:]
    times = np.asarray(times_s, dtype=np.float64)[-PAST_CHUNKS:]
    if sizes.size == 0 or sizes.size != times.size:
        raise ValueError(f"history needs as many sizes as times, at least one (got {sizes.size} and {times.size})")
    pad = PAST_CHUNKS - sizes.size
    if pad:
        sizes = np.concatenate([np.full(pad, sizes[0]), sizes])
        times = np.concatenate([np.full(pad, times[0]), times])
    out = np.empty(2 * PAST_CHUNKS)
    out[0::2] = np.log2(sizes / _BITS_PER_MBIT)
    out[1::2] = np.log2(np.maximum(times, 1e-6))
    return out


def feature_rows(history: FloatArray, candidate_sizes_bits: FloatArray) -> FloatArray:
    """Rows ``[lookahead * n_levels + level, NUM_FEATURES]`` (unstandardised) for a ``[steps, levels]`` size table.

    >>> feature_rows(history_features([2e6], [0.5]), np.array([[1e6, 4e6]])).shape
    (2, 22)
    """
    steps, levels = candidate_sizes_bits.shape
    if steps > MAX_LOOKAHEAD:
        raise ValueError(f"{steps} lookahead steps asked; the predictor knows {MAX_LOOKAHEAD}")
    rows = np.zeros((steps * levels, NUM_FEATURES))
    rows[:, :2 * PAST_CHUNKS] = history
    rows[:, 2 * PAST_CHUNKS] = np.log2(candidate_sizes_bits.reshape(-1) / _BITS_PER_MBIT)
    rows[np.arange(steps * levels), 2 * PAST_CHUNKS + 1 + np.repeat(np.arange(steps), levels)] = 1.0
    return rows


@dataclass(frozen=True, slots=True)
class TransmissionTimePredictor:
    """The numpy forward pass of a trained predictor (ReLU hidden layers, softmax output).

    Attributes:
        weights: ``(W, b)`` per layer, ``W`` of shape ``[inputs, outputs]``.
        feature_mean: mean of each feature over the training rows.
        feature_std: standard deviation of each feature (floored at 1e-6).
        bin_edges_s: the interior bin edges in seconds (``n_bins - 1``).
        bin_values_s: the representative download time of each bin, in seconds.
        metadata: the JSON metadata (training settings, provenance); empty for a model built in code.
        path: the weights file it was loaded from, if any.
    """

    weights: tuple[tuple[FloatArray, FloatArray], ...]
    feature_mean: FloatArray
    feature_std: FloatArray
    bin_edges_s: FloatArray
    bin_values_s: FloatArray
    metadata: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def n_bins(self) -> int:
        return int(self.bin_values_s.size)

    def probabilities(self, rows: FloatArray) -> FloatArray:
        """The predicted distribution ``[rows, n_bins]`` of unstandardised feature rows."""
        x = (rows - self.feature_mean) / self.feature_std
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(self.weights):
            x = x @ w + b
            if i < last:
                np.maximum(x, 0.0, out=x)
        x -= x.max(axis=1, keepdims=True)
        np.exp(x, out=x)
        x /= x.sum(axis=1, keepdims=True)
        return x

    def distribution(self, context: PlayerContext, horizon: int) -> FloatArray:
        """The predicted distribution ``[horizon, n_levels, n_bins]`` of the next ``horizon`` chunks' download times.

        Raises:
            ValueError: no chunk has been downloaded yet (there is no history to predict from).
        """
        outcomes = context.outcomes[-PAST_CHUNKS:]
        history = history_features([o.size_bits for o in outcomes], [o.download_time_s for o in outcomes])
        sizes = context.upcoming_chunk_sizes_bits(horizon)
        return self.probabilities(feature_rows(history, sizes)).reshape(sizes.shape[0], sizes.shape[1], -1)

    @classmethod
    def from_file(cls, path: str | Path) -> TransmissionTimePredictor:
        """Load ``NAME.npz`` and its ``NAME.json`` (see the module docstring).

        Raises:
            PolicyLoadError: a file is missing, corrupt, or its arrays do not fit together (the message names
                the file and the fix).
        """
        weights_path = Path(path)
        meta_path = metadata_path(weights_path)
        fix = "retrain it with `abr predictor train --out DIR` or give the .npz that `abr predictor train` wrote"
        if not weights_path.is_file():
            raise PolicyLoadError(f"predictor weights {weights_path}: no such file; {fix}")
        if not meta_path.is_file():
            raise PolicyLoadError(f"predictor metadata {meta_path}: no such file (it must sit beside "
                                  f"{weights_path.name}); {fix}")
        try:
            metadata = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PolicyLoadError(f"predictor metadata {meta_path}: not readable JSON ({exc}); {fix}") from None
        if not isinstance(metadata, dict) or metadata.get("format") != TTP_FORMAT:
            raise PolicyLoadError(f"predictor metadata {meta_path}: 'format' is not {TTP_FORMAT!r}; {fix}")
        try:
            with np.load(weights_path, allow_pickle=False) as data:
                arrays = {key: np.asarray(data[key], dtype=np.float64) for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise PolicyLoadError(f"predictor weights {weights_path}: not a readable .npz ({exc}); {fix}") from None
        return cls(*_checked_arrays(arrays, weights_path, fix), metadata=metadata, path=weights_path)


_Layers = tuple[tuple[FloatArray, FloatArray], ...]


def _checked_arrays(arrays: dict[str, FloatArray], where: Path, fix: str
                    ) -> tuple[_Layers, FloatArray, FloatArray, FloatArray, FloatArray]:
    missing = [k for k in (*_ARRAY_KEYS, "w0", "b0") if k not in arrays]
    if missing:
        raise PolicyLoadError(f"predictor weights {where}: missing arrays {', '.join(missing)}; {fix}")
    n_layers = sum(1 for k in arrays if k.startswith("w"))
    layers = []
    width = NUM_FEATURES
    for i in range(n_layers):
        w, b = arrays.get(f"w{i}"), arrays.get(f"b{i}")
        if w is None or b is None or w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
            raise PolicyLoadError(f"predictor weights {where}: layer {i} has the wrong shape (expected w{i} "
                                  f"[{width}, n] and b{i} [n]); {fix}")
        layers.append((w, b))
        width = w.shape[1]
    values, edges = arrays["bin_values_s"], arrays["bin_edges_s"]
    if width != values.size or edges.size != values.size - 1:
        raise PolicyLoadError(f"predictor weights {where}: {width} outputs, {values.size} bin values and "
                              f"{edges.size} edges do not fit (n outputs = n values = n edges + 1); {fix}")
    if arrays["feature_mean"].shape != (NUM_FEATURES,) or arrays["feature_std"].shape != (NUM_FEATURES,):
        raise PolicyLoadError(f"predictor weights {where}: feature_mean/feature_std must have {NUM_FEATURES} "
                              f"entries; {fix}")
    for key, array in arrays.items():
        if not np.all(np.isfinite(array)):
            raise PolicyLoadError(f"predictor weights {where}: array {key} holds NaN or infinite values; {fix}")
    if np.any(np.diff(edges) <= 0) or np.any(values <= 0):
        raise PolicyLoadError(f"predictor weights {where}: bin_edges_s must increase and bin_values_s be > 0; {fix}")
    std = np.maximum(arrays["feature_std"], _MIN_STD)
    return tuple(layers), arrays["feature_mean"], std, edges, values


def predicted_mean_s(probabilities: FloatArray, bin_values_s: FloatArray) -> FloatArray:
    """The mean of each predicted distribution, in seconds.

    >>> predicted_mean_s(np.array([[0.5, 0.5]]), np.array([1.0, 3.0])).tolist()
    [2.0]
    """
    return probabilities @ bin_values_s


def predicted_cdf_at(probabilities: FloatArray, edges_s: FloatArray, values_s: npt.ArrayLike,
                     within: FloatArray) -> FloatArray:
    """The predicted CDF at each observed value (the PIT), linear inside the observed value's bin.

    Args:
        probabilities: ``[n, n_bins]``.
        edges_s: the interior edges.
        values_s: the observed download times, ``[n]``.
        within: where in its bin each value lies, in [0, 1], for the two open-ended bins (elsewhere ignored):
            a seeded uniform draw gives the randomised PIT there.

    >>> p = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> predicted_cdf_at(p, np.array([1.0]), [0.5, 3.0], np.array([0.4, 0.4])).tolist()
    [0.25, 0.7]
    """
    values = np.asarray(values_s, dtype=np.float64)
    idx = bin_index(values, edges_s)
    below = np.concatenate([np.zeros((probabilities.shape[0], 1)), np.cumsum(probabilities, axis=1)], axis=1)
    lower = np.concatenate([[0.0], edges_s])[idx]
    upper = np.concatenate([edges_s, [math.inf]])[idx]
    fraction = np.where(np.isfinite(upper) & (idx > 0), (values - lower) / (upper - lower), within)
    rows = np.arange(values.size)
    fraction = np.where(idx == 0, np.clip(values / edges_s[0], 0.0, 1.0), fraction)
    return np.asarray(below[rows, idx] + probabilities[rows, idx] * np.clip(fraction, 0.0, 1.0))


__all__ = ["DEFAULT_EDGES_S", "MAX_LOOKAHEAD", "NUM_FEATURES", "PAST_CHUNKS", "TTP_FORMAT",
           "TransmissionTimePredictor", "bin_index", "feature_rows", "history_features", "metadata_path",
           "predicted_cdf_at", "predicted_mean_s"]
