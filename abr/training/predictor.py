"""Training the learned transmission-time predictor of ``predictor-mpc`` (Fugu-style; :mod:`agents.ttp`).

Data: sessions played in this simulator over the **training** traces only (by default the train splits of
fcc, norway, oboe and belgium4g, and the mahimahi cellular traces, as the shipped PPO policy), each by a
behaviour policy drawn from ``behaviour`` (by default bba, robustmpc and random, so that many chunk sizes are
tried on every kind of link), from a start offset drawn at random, all from ``seed``. Every decision point
``t`` of a session gives one row per lookahead ``k`` in 0..4: the history before chunk ``t``, the size of
chunk ``t + k`` as downloaded, and its download time as the label. A seeded tenth of the traces (by trace)
is kept aside as the validation set that picks the best epoch.

Refused: any trace set of a ``held_out`` family (default lumos5g, nyu_lte, ucc5g: the generalisation
protocol's held-out families), any test split, and ``genet_benchmark`` (it shares content with fcc/test).

Model: an MLP (``hidden_sizes``, ReLU) from the :data:`agents.ttp.NUM_FEATURES` standardised features to
logits over the download-time bins, trained with cross-entropy and Adam (weight decay) in float64 on one
CPU thread, deterministic for one seed. The run writes ``predictor.npz`` + ``predictor.json`` (settings,
data counts, bins, provenance with the content hash of every training and validation trace, versions, git
state) and ``training_log.csv`` (one row per epoch). torch is imported only when a run starts.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from abr.common.atomic import write_json_atomic
from abr.common.inputs import load_trace_set, load_video
from abr.common.provenance import git_state, package_versions, utc_timestamp
from abr.errors import ConfigError
from agents.provenance import build_provenance, spec_family
from agents.registry import make_agent
from agents.ttp import (
    DEFAULT_EDGES_S,
    MAX_LOOKAHEAD,
    NUM_FEATURES,
    PAST_CHUNKS,
    TTP_FORMAT,
    bin_index,
    feature_rows,
    history_features,
    metadata_path,
)
from simulator.config import SimConfig, preset
from simulator.records import ChunkOutcome
from simulator.rollout import run_session
from traces.types import Trace, Video

logger = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]

DEFAULT_TRAIN_SETS: tuple[str, ...] = ("fcc/train", "norway/train", "oboe/train", "belgium4g/train",
                                       "mahimahi_cellular")
#: The generalisation protocol's held-out families: never trained on.
DEFAULT_HELD_OUT: tuple[str, ...] = ("lumos5g", "nyu_lte", "ucc5g")
#: Families that share content with test splits (genet_benchmark holds copies of fcc/test traces).
CONTAMINATED_FAMILIES: tuple[str, ...] = ("genet_benchmark",)
WEIGHTS_FILE = "predictor.npz"
LOG_FILE = "training_log.csv"


@dataclass(frozen=True, slots=True)
class PredictorTrainConfig:
    """Settings of a predictor training run (every default is the shipped model's).

    Args:
        traces: training trace sets (names under the data directory, or paths).
        held_out: families refused as training data.
        video: the video whose chunks are played.
        preset: the simulator preset of the sessions.
        behaviour: agents that play the sessions, one drawn per session.
        sessions_per_trace: sessions played on every trace (each with its own policy and start offset).
        val_fraction: share of the traces (by trace) whose rows only pick the best epoch.
        hidden_sizes: widths of the hidden layers.
        epochs: passes over the training rows.
        batch_size: rows per gradient step.
        learning_rate: Adam's step size.
        weight_decay: Adam's L2 weight decay (Fugu: 1e-4).
        seed: the seed of every random choice (policies, offsets, split, initialisation, batches).
    """

    traces: tuple[str, ...] = DEFAULT_TRAIN_SETS
    held_out: tuple[str, ...] = DEFAULT_HELD_OUT
    video: str = "envivio_dash3"
    preset: str = "pensieve"
    behaviour: tuple[str, ...] = ("bba", "robustmpc", "random")
    sessions_per_trace: int = 1
    val_fraction: float = 0.1
    hidden_sizes: tuple[int, ...] = (64, 64)
    epochs: int = 12
    batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.traces:
            raise ConfigError("traces is empty: give at least one training trace set")
        if not self.behaviour:
            raise ConfigError("behaviour is empty: give at least one agent to play the sessions")
        for name, value in (("sessions_per_trace", self.sessions_per_trace), ("epochs", self.epochs),
                            ("batch_size", self.batch_size)):
            if value < 1:
                raise ConfigError(f"{name}={value} must be >= 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction={self.val_fraction} must be in (0, 1)")
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise ConfigError(f"hidden_sizes={list(self.hidden_sizes)} must be one or more widths >= 1")
        if not (self.learning_rate > 0 and self.weight_decay >= 0):
            raise ConfigError(f"learning_rate={self.learning_rate} must be > 0 and weight_decay="
                              f"{self.weight_decay} >= 0")
        if self.seed < 0:
            raise ConfigError(f"seed={self.seed} must be >= 0")


def load_predictor_config(path: str | Path, **overrides: Any) -> PredictorTrainConfig:
    """A :class:`PredictorTrainConfig` from a TOML file of its fields, with ``overrides`` (``None`` ignored).

    Raises:
        ConfigError: the file is unreadable, or a key is not a field (the message names the file and the fields).
    """
    import tomllib

    where = Path(path)
    try:
        values = tomllib.loads(where.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"predictor config {where}: not readable TOML ({exc})") from None
    return config_with(values, where=str(where), **overrides)


def config_with(values: dict[str, Any], *, where: str = "predictor config", **overrides: Any) -> PredictorTrainConfig:
    """A config from ``values`` (TOML-like: lists for tuples) and ``overrides``; unknown keys are refused.

    >>> config_with({"epochs": 3}, seed=5).epochs, config_with({}, seed=5).seed
    (3, 5)
    """
    allowed = {f.name for f in dataclasses.fields(PredictorTrainConfig)}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed keys: {', '.join(sorted(allowed))}")
    merged = {**values, **{k: v for k, v in overrides.items() if v is not None}}
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()}
    return PredictorTrainConfig(**fields)


def _split_parts(spec: str) -> list[str]:
    """The path components that name a split: all of a data-set name, the last one (two for a file) of a path.

    >>> _split_parts("genet_benchmark/fcc-test"), _split_parts("/tmp/test_run/train")
    (['genet_benchmark', 'fcc-test'], ['train'])
    """
    path = Path(str(spec)).expanduser()
    if not path.is_absolute():
        return list(path.parts)
    return [path.parent.name, path.name] if path.is_file() else [path.name]


def check_training_sets(specs: Sequence[str], held_out: Sequence[str], data_dir: str | Path | None = None) -> None:
    """Refuse held-out families, test splits and sets that share content with test splits.

    >>> check_training_sets(["fcc/train"], ["lumos5g"])
    >>> check_training_sets(["fcc/test"], ["lumos5g"])
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: trace set 'fcc/test' is a test split; train the predictor on training traces only
    """
    for spec in specs:
        family = spec_family(spec, data_dir)
        if family in held_out:
            raise ConfigError(f"trace set {spec!r} belongs to the held-out family {family!r} (held_out = "
                              f"{list(held_out)}); remove it from the training sets")
        if family in CONTAMINATED_FAMILIES:
            raise ConfigError(f"trace set {spec!r}: the family {family!r} shares content with test splits; "
                              "remove it from the training sets")
        if any("test" in part.lower() for part in _split_parts(spec)):
            raise ConfigError(f"trace set {spec!r} is a test split; train the predictor on training traces only")


def session_rows(outcomes: Sequence[ChunkOutcome]) -> tuple[FloatArray, FloatArray]:
    """The rows (unstandardised features) and labels (download times, s) of one played session.

    >>> from simulator.records import ChunkOutcome
    >>> o = [ChunkOutcome(i, 0, 1e6, 2e6, 0, 1, 1.0, 2e6, 0, 0, 4, 0) for i in range(3)]
    >>> x, y = session_rows(o); x.shape, y.tolist()
    ((3, 22), [1.0, 1.0, 1.0])
    """
    sizes = np.array([o.size_bits for o in outcomes])
    times = np.array([o.download_time_s for o in outcomes])
    xs, ys = [], []
    for t in range(1, len(outcomes)):
        history = history_features(sizes[max(0, t - PAST_CHUNKS):t], times[max(0, t - PAST_CHUNKS):t])
        steps = min(MAX_LOOKAHEAD, len(outcomes) - t)
        xs.append(feature_rows(history, sizes[t:t + steps][:, None]))  # row k: lookahead k, size of chunk t + k
        ys.append(times[t:t + steps])
    if not xs:
        return np.zeros((0, NUM_FEATURES)), np.zeros(0)
    return np.concatenate(xs), np.concatenate(ys)


def play_sessions(traces: Sequence[Trace], video: Video, config: SimConfig, behaviour: Sequence[str],
                  sessions_per_trace: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray, dict[str, int]]:
    """Rows and labels of ``sessions_per_trace`` seeded sessions on every trace, and the sessions per agent."""
    xs, ys = [], []
    counts = dict.fromkeys(behaviour, 0)
    for trace in traces:
        for _ in range(sessions_per_trace):
            agent = behaviour[int(rng.integers(len(behaviour)))]
            start_idx = int(rng.integers(1, trace.times_s.size)) if trace.times_s.size > 2 else 1
            session_rng = np.random.default_rng(int(rng.integers(2**63)))
            outcomes = run_session(make_agent(agent), trace, video, config, rng=session_rng, start_idx=start_idx,
                                   core="fast")
            x, y = session_rows(outcomes)
            xs.append(x)
            ys.append(y)
            counts[agent] += 1
    return np.concatenate(xs), np.concatenate(ys), counts


def bin_values(labels_s: FloatArray, edges_s: FloatArray) -> FloatArray:
    """The mean label of each bin (the bin's geometric middle where it is empty), in seconds.

    >>> bin_values(np.array([0.05, 0.07, 5.0]), np.array([0.1, 1.0])).round(3).tolist()
    [0.06, 0.316, 5.0]
    """
    idx = bin_index(labels_s, edges_s)
    n_bins = edges_s.size + 1
    sums = np.bincount(idx, weights=labels_s, minlength=n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    ratio = edges_s[-1] / edges_s[-2] if edges_s.size > 1 else 2.0
    lower = np.concatenate([[edges_s[0] / ratio], edges_s])
    upper = np.concatenate([edges_s, [edges_s[-1] * ratio]])
    middle = np.sqrt(lower * upper)
    return np.where(counts > 0, sums / np.maximum(counts, 1), middle)


def _split_traces(sets: list[tuple[str, tuple[Trace, ...]]], fraction: float, rng: np.random.Generator
                  ) -> tuple[list[tuple[str, list[Trace]]], list[tuple[str, list[Trace]]]]:
    train, val = [], []
    for spec, traces in sets:
        order = rng.permutation(len(traces))
        n_val = max(1, int(round(fraction * len(traces)))) if len(traces) > 1 else 0
        chosen = set(order[:n_val].tolist())
        train.append((spec, [t for i, t in enumerate(traces) if i not in chosen]))
        val.append((spec, [t for i, t in enumerate(traces) if i in chosen]))
    return train, val


def _fit(x: FloatArray, labels: npt.NDArray[np.int64], x_val: FloatArray, y_val: npt.NDArray[np.int64],
         n_bins: int, cfg: PredictorTrainConfig, log: Callable[[dict[str, float]], None]
         ) -> list[tuple[FloatArray, FloatArray]]:
    """Train the MLP; returns the best epoch's ``(W [in, out], b)`` per layer (by validation loss)."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    widths = [NUM_FEATURES, *cfg.hidden_sizes, n_bins]
    layers: list[torch.nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).double()
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(labels)
    xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val)
    generator = torch.Generator().manual_seed(cfg.seed)
    best: tuple[float, list[tuple[FloatArray, FloatArray]]] = (float("inf"), [])
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(xt.shape[0], generator=generator)
        total = 0.0
        for i in range(0, xt.shape[0], cfg.batch_size):
            batch = order[i:i + cfg.batch_size]
            loss = loss_fn(model(xt[batch]), yt[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * batch.numel()
        model.eval()
        with torch.no_grad():
            val_logits = model(xv)
            val_loss = float(loss_fn(val_logits, yv))
            val_acc = float((val_logits.argmax(dim=1) == yv).double().mean())
        log({"epoch": epoch, "train_loss": total / xt.shape[0], "val_loss": val_loss, "val_bin_accuracy": val_acc,
             "seconds": time.perf_counter() - start})
        if val_loss < best[0]:
            linears = [m for m in model if isinstance(m, torch.nn.Linear)]
            best = (val_loss, [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears])
    return best[1]


def train_predictor(cfg: PredictorTrainConfig, out_dir: str | Path, *, data_dir: str | Path | None = None,
                    command: str | None = None) -> dict[str, Any]:
    """Play the training sessions, train the predictor and write it to ``out_dir`` (see the module docstring).

    Returns:
        The metadata written to ``predictor.json``.

    Raises:
        ConfigError: a refused trace set (held out, test split) or bad settings.
    """
    check_training_sets(cfg.traces, cfg.held_out, data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    sets = [(spec, load_trace_set(spec, data_dir).traces) for spec in cfg.traces]
    train_sets, val_sets = _split_traces(sets, cfg.val_fraction, rng)
    video = load_video(cfg.video, data_dir)
    config = preset(cfg.preset)
    start = time.perf_counter()
    x, y, counts = play_sessions([t for _, ts in train_sets for t in ts], video, config, cfg.behaviour,
                                 cfg.sessions_per_trace, rng)
    x_val, y_val, val_counts = play_sessions([t for _, ts in val_sets for t in ts], video, config, cfg.behaviour,
                                             cfg.sessions_per_trace, rng)
    play_s = time.perf_counter() - start
    logger.info("played sessions: %d training rows, %d validation rows in %.1f s", y.size, y_val.size, play_s)
    edges = np.asarray(DEFAULT_EDGES_S)
    values = bin_values(y, edges)
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    rows: list[dict[str, float]] = []
    layers = _fit((x - mean) / std, bin_index(y, edges), (x_val - mean) / std, bin_index(y_val, edges),
                  edges.size + 1, cfg, rows.append)
    arrays = {"feature_mean": mean, "feature_std": std, "bin_edges_s": edges, "bin_values_s": values}
    for i, (w, b) in enumerate(layers):
        arrays[f"w{i}"], arrays[f"b{i}"] = w, b
    weights = out / WEIGHTS_FILE
    np.savez(weights, **arrays)
    with (out / LOG_FILE).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: round(v, 6) for k, v in row.items()} for row in rows)
    best = min(rows, key=lambda r: r["val_loss"])
    metadata = {
        "format": TTP_FORMAT,
        "created": utc_timestamp(),
        "command": command,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()},
        "features": {"past_chunks": PAST_CHUNKS, "max_lookahead": MAX_LOOKAHEAD, "n_features": NUM_FEATURES,
                     "layout": "log2 size (Mbit) and log2 download time (s) of the last 8 chunks, oldest first; "
                               "log2 candidate size (Mbit); one-hot lookahead 0..4"},
        "bins": {"n_bins": int(values.size), "edges_s": edges.tolist(), "values_s": values.round(6).tolist()},
        "data": {"train_rows": int(y.size), "val_rows": int(y_val.size), "train_sessions_by_agent": counts,
                 "val_sessions_by_agent": val_counts, "play_seconds": round(play_s, 1)},
        "best_epoch": {k: round(v, 6) for k, v in best.items()},
        "provenance": build_provenance(train_sets, val_sets, data_dir=data_dir),
        "versions": package_versions(),
        "git": git_state(),
    }
    write_json_atomic(metadata_path(weights), metadata)
    return metadata


__all__ = ["DEFAULT_HELD_OUT", "DEFAULT_TRAIN_SETS", "PredictorTrainConfig", "bin_values", "check_training_sets",
           "config_with", "load_predictor_config", "play_sessions", "session_rows", "train_predictor"]
