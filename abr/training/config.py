"""The configuration of a training run (:class:`TrainConfig`) and its TOML form.

A run's ``config.toml`` holds the fields that differ from ``None`` (so the file reloads to the same config);
:func:`load_train_config` rejects unknown keys and out-of-range values with a :class:`ConfigError` naming the
file, the field and the allowed values. CLI options override file values (:func:`dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abr.common.atomic import write_atomic
from abr.common.inputs import parse_ladder_kbps
from abr.training.imitation import TEACHERS
from agents.rl import ALGORITHMS
from simulator.config import PRESETS
from simulator.errors import ConfigError
from simulator.observation import ENCODERS
from simulator.qoe import QOE_KINDS
from traces.units import bps_to_kbps
from traces.videos import ENVIVIO_LADDER_BPS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with the tomli backport
    import tomli as tomllib

POLICY_KINDS: tuple[str, ...] = ("pensieve", "mlp")
SYNTHETIC_KINDS: tuple[str, ...] = ("markov", "broad")
DEFAULT_SYNTHETIC_TRAIN_TRACES = 64  # when no training trace set is given
DEFAULT_SYNTHETIC_VAL_TRACES = 16  # when no validation trace set is given
VALIDATION_SYNTHETIC_SEED = 1_000_003  # a fixed seed: every run validates on the same synthetic traces


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """A training run: algorithm, network, inputs, hyperparameters, randomisation, evaluation.

    Args:
        algorithm: ``"ppo"`` or ``"a2c"`` (stable-baselines3).
        policy: ``"pensieve"`` (per-row encoders, :class:`agents.features.PensieveExtractor`) or ``"mlp"``.
        total_timesteps: environment steps (chunk decisions) of the whole run, over all environments; 0 (only
            with an ``imitation_teacher``): no reinforcement learning, the run is its imitation stage.
        n_envs: environments stepped together.
        seed: seed of the model, the environments and the synthetic training traces.
        preset: simulator preset (``abr presets``). Validation plays it as it is: without the training noise
            below, with the preset's own download-time noise (none in ``pensieve``, U(0.9, 1.1) in
            ``pensieve-train``).
        qoe: reward and validation QoE: ``"linear"``, ``"log"`` or ``"hd"``.
        video: video spec (path or name under the data dir); ``None``: the default video.
        ladder_kbps: the video's bitrate ladder in kbit/s, one per level, ascending; it overrides the folder's
            ``ladder.json`` and ``Manifest.mpd`` (``None``: the folder's ladder). Folders with neither, such as
            the MERINA videos, need it.
        traces: training trace set specs (paths or names under ``<data dir>/traces``).
        trace_repeats: how many times each set of ``traces`` enters the training pool (one integer per set;
            empty: once each). Episodes draw traces uniformly from the pool, so this weights the sets.
        synthetic_traces: seeded synthetic training traces to add; ``None``: 64 if ``traces`` is empty, else 0.
        synthetic_kind: the generator of the synthetic training traces: ``"markov"``
            (:mod:`traces.synthetic`, the ladder's range) or ``"broad"`` (:mod:`traces.synthetic_broad`: slow
            to very fast, steady to bursty, outages).
        val_traces: validation trace set specs.
        val_synthetic_traces: synthetic validation traces (fixed seed); ``None``: 16 if ``val_traces`` is empty.
        learning_rate: optimiser step size (at the start, with ``learning_rate_end``).
        learning_rate_end: step size at the end of training, reached linearly; ``None``: constant.
        n_steps: steps per environment per rollout.
        batch_size: PPO minibatch size (A2C uses whole rollouts).
        n_epochs: PPO epochs per rollout.
        gamma: discount factor per chunk.
        gae_lambda: GAE lambda.
        clip_range: PPO clipping.
        vf_coef: value-loss weight.
        max_grad_norm: gradient clipping norm.
        ent_coef_start: entropy bonus weight at the start.
        ent_coef_end: entropy bonus weight at the end of the decay.
        ent_decay_fraction: fraction of ``total_timesteps`` over which the weight moves linearly to the end value.
        reward_scale: factor on the per-chunk QoE before the learner sees it (logs and validation stay in QoE).
        share_features: one feature extractor for the actor and the critic (``False``: one each, as Pensieve).
        hidden_sizes: hidden layers of the actor and of the critic (after the feature extractor).
        n_filters: width of each Pensieve row encoder.
        kernel_size: width of the Pensieve 1-D convolutions.
        history_len: past chunks in the observation.
        observation: the observation encoder (``simulator.observation.ENCODERS``), recorded in the model.
        held_out: trace families the run must never train or validate on (kept for ``abr generalization``); a
            trace set of one of them in ``traces`` or ``val_traces`` is refused.
        train_noise_low: lower bound of the training download-time noise U(low, high).
        train_noise_high: upper bound of that noise.
        throughput_scale_low: lowest per-episode throughput scale factor (log-uniform draw).
        throughput_scale_high: highest factor; 1/1 disables scaling.
        eval_freq_steps: environment steps between validations (0: only before and after training).
        patience: stop training early once this many validations in a row have not improved on the best one
            (0: never; the schedules still run over ``total_timesteps``, so the models up to the stop are those
            of the full run).
        env_core: the session core of the training environments: ``"simpy"`` (``AbrEnv`` instances) or
            ``"fast"`` (the batched numpy core, :mod:`simulator.sb3_vec_env`; it draws the throughput scale
            factors as ``AbrEnv`` does).
        tensorboard: write TensorBoard logs under ``<out>/tb`` (needs the ``tensorboard`` package).
        init_from: a model zip (``abr train``'s ``best_model.zip``, say) whose policy weights, actor and critic,
            the run starts from: a fine-tuning stage. The optimiser, the step count and the schedules start
            fresh; the network fields and the observation layout must match the file's. ``None``: a new network.
        rescaled_traces: trace sets of ``traces`` (or ``"synthetic"``, the run's synthetic traces) whose
            traces enter the pool once more, each scaled to its own time-weighted mean throughput, drawn
            log-uniformly in ``[rescaled_mean_low_mbps, rescaled_mean_high_mbps]`` (seeded by ``seed``): fast,
            bursty networks at the ladder's rates, which per-episode factors cannot reach from their means.
        rescaled_mean_low_mbps: lowest mean of a rescaled copy, in Mbit/s.
        rescaled_mean_high_mbps: highest mean of a rescaled copy, in Mbit/s.
        imitation_teacher: a first stage before reinforcement learning (:mod:`abr.training.imitation`):
            ``"optimal"`` clones the offline optimum's decisions on the training pool (Comyco-style),
            ``"horizon-mpc"`` those of Comyco's instant solver (the true throughput of the next
            ``imitation_horizon`` chunks, :mod:`agents.instant_solver`), ``"none"`` skips it. The run writes
            what the stage did to ``imitation.json``.
        imitation_horizon: chunks the ``"horizon-mpc"`` teacher plans ahead (Comyco's code: 8).
        imitation_sessions: sessions of the demonstrations, drawn uniformly from the training pool (0: each
            entry of the pool ``imitation_demos_per_trace`` times).
        imitation_demos_per_trace: teacher demonstrations per entry of the training pool, each at a throughput
            scale and start offset drawn as training episodes draw them.
        imitation_epochs: passes of the cloning stage over the demonstrations.
        imitation_learning_rate: Adam step size of the cloning stage.
        imitation_dagger_rounds: DAgger rounds after the first fit: the student plays the demonstrations'
            sessions, the teacher labels states it reached, and the fit continues on everything so far.
        imitation_dagger_states: decisions per session the teacher labels in a DAgger round.
        imitation_teacher_discount: the ``"horizon-mpc"`` teacher plans on the trace's throughput times this
            factor in ``(0, 1]`` (the sessions play the true trace): a stall-averse teacher, as the linear-QoE
            version of Comyco's solver does with 0.9. 1: the true throughput.
        imitation_keep_best: after every fit (the first and each DAgger round's), the student plays the
            demonstrations' sessions greedily; the stage ends with the weights of the fit whose mean QoE there
            was best (model selection on training sessions). False: the last fit's weights.

    >>> TrainConfig(n_envs=8).n_envs
    8
    >>> TrainConfig(policy="cnn")
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: policy='cnn' is not one of pensieve, mlp
    """

    algorithm: str = "ppo"
    policy: str = "pensieve"
    total_timesteps: int = 200_000
    n_envs: int = 4
    seed: int = 0
    preset: str = "pensieve"
    qoe: str = "linear"
    video: str | None = None
    ladder_kbps: tuple[float, ...] | None = None
    traces: tuple[str, ...] = ()
    trace_repeats: tuple[int, ...] = ()
    synthetic_traces: int | None = None
    synthetic_kind: str = "markov"
    val_traces: tuple[str, ...] = ()
    val_synthetic_traces: int | None = None
    learning_rate: float = 3e-4
    learning_rate_end: float | None = None
    n_steps: int = 256
    batch_size: int = 256
    n_epochs: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    ent_coef_start: float = 0.1
    ent_coef_end: float = 0.01
    ent_decay_fraction: float = 0.8
    reward_scale: float = 1.0
    share_features: bool = False
    hidden_sizes: tuple[int, ...] = (128,)
    n_filters: int = 128
    kernel_size: int = 4
    history_len: int = 8
    observation: str = "pensieve-6row-v1"
    held_out: tuple[str, ...] = ()
    train_noise_low: float = 0.9  # Pensieve NOISE_LOW
    train_noise_high: float = 1.1  # Pensieve NOISE_HIGH
    throughput_scale_low: float = 1.0
    throughput_scale_high: float = 1.0
    eval_freq_steps: int = 10_000
    patience: int = 0
    env_core: str = "simpy"
    tensorboard: bool = True
    init_from: str | None = None
    rescaled_traces: tuple[str, ...] = ()
    rescaled_mean_low_mbps: float = 0.6
    rescaled_mean_high_mbps: float = 2.5
    imitation_teacher: str = "none"
    imitation_demos_per_trace: int = 1
    imitation_epochs: int = 10
    imitation_learning_rate: float = 1e-3
    imitation_dagger_rounds: int = 0
    imitation_dagger_states: int = 4
    imitation_horizon: int = 5
    imitation_sessions: int = 0
    imitation_teacher_discount: float = 1.0
    imitation_keep_best: bool = False

    def __post_init__(self) -> None:
        for name, (item_type, what, example) in _LIST_FIELDS.items():
            value = getattr(self, name)
            if value is not None or name not in _OPTIONAL_LIST_FIELDS:
                object.__setattr__(self, name, _as_list(name, value, item_type, what, example))
        _choice("algorithm", self.algorithm, ALGORITHMS)
        _choice("policy", self.policy, POLICY_KINDS)
        _choice("preset", self.preset, tuple(PRESETS))
        _choice("qoe", self.qoe, QOE_KINDS)
        _choice("env_core", self.env_core, ("simpy", "fast"))
        _choice("synthetic_kind", self.synthetic_kind, SYNTHETIC_KINDS)
        _choice("observation", self.observation, ENCODERS)
        _choice("imitation_teacher", self.imitation_teacher, TEACHERS)
        if self.trace_repeats and (len(self.trace_repeats) != len(self.traces) or any(
                isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in self.trace_repeats)):
            raise ConfigError(f"trace_repeats={list(self.trace_repeats)!r} must list one integer >= 1 for each "
                              f"of the {len(self.traces)} trace sets in traces")
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs", "n_filters", "kernel_size",
                     "history_len", "imitation_demos_per_trace", "imitation_epochs",
                     "imitation_dagger_states", "imitation_horizon"):
            _at_least(name, getattr(self, name), 1)
        _at_least("total_timesteps", self.total_timesteps, 0 if self.imitation_teacher != "none" else 1)
        for name in ("seed", "eval_freq_steps", "patience", "imitation_dagger_rounds", "imitation_sessions"):
            _at_least(name, getattr(self, name), 0)
        for name in ("synthetic_traces", "val_synthetic_traces"):
            if getattr(self, name) is not None:
                _at_least(name, getattr(self, name), 0)
        if self.learning_rate_end is not None:
            _in_range("learning_rate_end", self.learning_rate_end, 0.0, math.inf, low_open=True)
        for name in ("learning_rate", "clip_range", "max_grad_norm", "ent_decay_fraction", "train_noise_low",
                     "throughput_scale_low", "reward_scale", "imitation_learning_rate",
                     "rescaled_mean_low_mbps"):
            _in_range(name, getattr(self, name), 0.0, math.inf, low_open=True)
        for name in ("gamma", "gae_lambda"):
            _in_range(name, getattr(self, name), 0.0, 1.0)
        for name in ("vf_coef", "ent_coef_start", "ent_coef_end"):
            _in_range(name, getattr(self, name), 0.0, math.inf)
        _in_range("ent_decay_fraction", self.ent_decay_fraction, 0.0, 1.0, low_open=True)
        _in_range("train_noise_high", self.train_noise_high, self.train_noise_low, math.inf)
        _in_range("throughput_scale_high", self.throughput_scale_high, self.throughput_scale_low, math.inf)
        _in_range("rescaled_mean_high_mbps", self.rescaled_mean_high_mbps, self.rescaled_mean_low_mbps, math.inf)
        _in_range("imitation_teacher_discount", self.imitation_teacher_discount, 0.0, 1.0, low_open=True)
        _boolean("imitation_keep_best", self.imitation_keep_best)
        self._check_rescaled()
        if self.ladder_kbps is not None:
            object.__setattr__(self, "ladder_kbps", parse_ladder_kbps(self.ladder_kbps, option="ladder_kbps"))
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from.strip()):
            raise ConfigError(f"init_from={self.init_from!r} must be the path of a model zip (a string)")
        if not self.hidden_sizes or any(not isinstance(h, int) or h < 1 for h in self.hidden_sizes):
            raise ConfigError(f"hidden_sizes={self.hidden_sizes!r} must be a non-empty list of integers >= 1")

    @property
    def n_synthetic_train(self) -> int:
        """Synthetic training traces actually used."""
        if self.synthetic_traces is not None:
            return self.synthetic_traces
        return 0 if self.traces else DEFAULT_SYNTHETIC_TRAIN_TRACES

    @property
    def n_synthetic_val(self) -> int:
        """Synthetic validation traces actually used."""
        if self.val_synthetic_traces is not None:
            return self.val_synthetic_traces
        return 0 if self.val_traces else DEFAULT_SYNTHETIC_VAL_TRACES

    def entropy_coef(self, timesteps: int) -> float:
        """The entropy weight after ``timesteps`` steps (linear decay, then constant).

        >>> TrainConfig(total_timesteps=100, ent_coef_start=1.0, ent_coef_end=0.0, ent_decay_fraction=0.5
        ...             ).entropy_coef(25)
        0.5
        """
        if self.total_timesteps == 0:  # an imitation-only run: no schedule
            return self.ent_coef_end
        progress = min(1.0, timesteps / (self.total_timesteps * self.ent_decay_fraction))
        return self.ent_coef_start + (self.ent_coef_end - self.ent_coef_start) * progress

    def _check_rescaled(self) -> None:
        unknown = [spec for spec in self.rescaled_traces if spec not in (*self.traces, "synthetic")]
        if unknown:
            raise ConfigError(f"rescaled_traces={list(self.rescaled_traces)!r}: {unknown[0]!r} is not one of traces "
                              f"{list(self.traces)} nor 'synthetic'; list sets the run trains on")

    def as_dict(self) -> dict[str, Any]:
        """The fields as JSON/TOML-ready values (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


#: The list fields: the type of their items, what they list and an example (for messages).
_LIST_FIELDS: dict[str, tuple[type | tuple[type, ...], str, str]] = {
    "ladder_kbps": ((int, float), "kbit/s numbers", str([int(bps_to_kbps(b)) for b in ENVIVIO_LADDER_BPS])),
    "traces": (str, "trace set names", '["fcc/train"]'),
    "trace_repeats": (int, "integers >= 1", "[1, 2]"),
    "val_traces": (str, "trace set names", '["fcc/test"]'),
    "hidden_sizes": (int, "layer sizes", "[128]"),
    "held_out": (str, "trace family names", '["norway"]'),
    "rescaled_traces": (str, "trace set names", '["belgium4g/train", "synthetic"]'),
}
_OPTIONAL_LIST_FIELDS = frozenset({"ladder_kbps"})


def _as_list(name: str, value: object, item_type: type | tuple[type, ...], what: str, example: str
             ) -> tuple[Any, ...]:
    """``value`` as a tuple, refusing anything but a list (or tuple) of ``item_type`` items.

    A string is refused rather than read as a list of its characters (``traces = "fcc/train"`` in a TOML file).

    >>> _as_list("traces", ["fcc/train"], str, "trace set names", "")
    ('fcc/train',)
    >>> _as_list("traces", "fcc/x", str, "trace set names", "")
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: traces='fcc/x' must be a list of trace set names, not a string; write traces = ["fcc/x"]
    """
    if not isinstance(value, list | tuple):
        kinds = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", dict: "a table"}
        kind = kinds.get(type(value), f"a {type(value).__name__}")
        fix = _toml_value([value]) if isinstance(value, item_type) and not isinstance(value, bool) else example
        raise ConfigError(f"{name}={value!r} must be a list of {what}, not {kind}; write {name} = {fix}",
                          field=name, value=value)
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, item_type)]
    if bad:
        raise ConfigError(f"{name}={list(value)!r} must be a list of {what}; {bad[0]!r} is not one (e.g. "
                          f"{name} = {example})", field=name, value=value)
    return tuple(value)


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")


def _boolean(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be true or false", field=name, value=value)


def _at_least(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}")


def _in_range(name: str, value: object, low: float, high: float, *, low_open: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        assert isinstance(value, int | float)
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        raise ConfigError(f"{name}={value!r} must be a number {bound}" + (f" and <= {high:g}" if high < math.inf
                                                                          else ""))


def train_config_from_dict(values: dict[str, Any], *, where: str = "train config") -> TrainConfig:
    """Build a :class:`TrainConfig` from a mapping (TOML values), rejecting unknown keys.

    >>> train_config_from_dict({"n_envs": 2, "traces": ["fcc/train"]}).traces
    ('fcc/train',)
    >>> train_config_from_dict({"n_env": 2})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: train config: unknown key 'n_env'; allowed keys: algorithm, batch_size, ...
    """
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(sorted(fields))}")
        if isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, int) and not isinstance(value, bool) and isinstance(fields[key].default, float):
            value = float(value)
        kwargs[key] = value
    try:
        return TrainConfig(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a training config from a TOML file (every key optional; see :class:`TrainConfig`).

    >>> load_train_config("/no/such.toml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: training config /no/such.toml does not exist
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"training config {file} does not exist")
    try:
        values = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc})") from None
    return train_config_from_dict(values, where=str(file))


def train_config_toml(config: TrainConfig) -> str:
    """The TOML text of ``config`` (``None`` fields are left out and reload as ``None``).

    >>> print(train_config_toml(TrainConfig(traces=("fcc/train",))).splitlines()[8])
    traces = ["fcc/train"]
    """
    lines = ["# abr training run configuration (see abr.training.config.TrainConfig)"]
    for key, value in config.as_dict().items():
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def save_train_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as TOML to ``path`` (atomically).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     load_train_config(save_train_config(TrainConfig(seed=3), Path(d) / "c.toml")).seed
    3
    """
    text = train_config_toml(config)
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
