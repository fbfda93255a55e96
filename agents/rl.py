"""Learned bitrate policies: a stable-baselines3 model (PPO or A2C) as a :class:`~agents.base.Policy`.

A model file is the zip that ``model.save`` writes (``abr train`` writes ``best_model.zip`` and
``model.zip``). Models trained by :mod:`abr.training.run` carry their observation layout (attribute
:data:`LAYOUT_ATTR`: encoder id, history length, ladder size and the normalisation constants of
:mod:`simulator.observation`); loading checks it against this version of the encoder, so a model made for
another layout fails with a :class:`~agents.errors.PolicyLoadError` instead of choosing nonsense.

The policy encodes the player context with :func:`simulator.observation.encode_observation` (the encoder of
the environment) and plays greedily (argmax of the action probabilities) unless ``sample=True``, when it
draws the action with the generator given to ``reset``.

torch and stable-baselines3 are imported only when a model is loaded (the ``rl`` extra). Loading sets
``torch.set_num_threads(1)``: one thread per process, as evaluation workers need on a small machine.

Loading for play (:func:`load_model`'s default) replaces the training schedules stored in a model file
(learning rate, clip range, entropy weight: :data:`INFERENCE_OBJECTS`) by constants without unpickling them,
so a file pickled with the training code's own schedule class (``abr.train.LinearSchedule``, in files saved
before runs used stable-baselines3's) plays without importing ``abr``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import pickletools
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agents.errors import PolicyLoadError
from simulator import observation as obs_encoding
from simulator.context import PlayerContext
from simulator.errors import ConfigError, MissingExtraError

logger = logging.getLogger(__name__)

#: Model attribute (saved inside the zip by ``model.save``) holding the observation layout.
LAYOUT_ATTR = "abr_observation_layout"
#: SB3 policy parameters only the critic uses (with separate actor and critic extractors, as ``abr train`` builds).
CRITIC_PREFIXES = ("vf_features_extractor.", "mlp_extractor.value_net.", "value_net.")
#: Identifier of the default observation encoder (``simulator.observation.ENCODERS`` lists every one a model
#: may record; a new encoder gets a new id, so old models keep loading with theirs).
ENCODER_ID = obs_encoding.DEFAULT_ENCODER
#: Algorithms a model file may hold, by registry key.
ALGORITHMS: tuple[str, ...] = ("ppo", "a2c")
#: Saved model attributes that only training reads, and the constants :func:`load_model` puts in their place
#: (as SB3's ``custom_objects``: never unpickled) when loading for play. SB3 turns the floats into its own
#: constant schedules; keys a file lacks (A2C has no clip range) are ignored.
INFERENCE_OBJECTS: dict[str, Any] = {
    "learning_rate": 0.0,  # no learning
    "lr_schedule": 0.0,  # rebuilt by SB3 from learning_rate
    "clip_range": 0.2,  # SB3's PPO default; PPO only
    "clip_range_vf": None,  # as abr train leaves it (no value clipping)
    "ent_coef": 0.0,
}


def observation_layout(n_levels: int, history_len: int = obs_encoding.DEFAULT_HISTORY_LEN,
                       encoder: str = ENCODER_ID) -> dict[str, Any]:
    """The observation layout a model is trained on (stored in the model, checked when it is loaded).

    >>> layout = observation_layout(6)
    >>> layout["shape"], layout["history_len"], layout["normalisation"]["throughput_norm_bps"]
    ([6, 8], 8, 8000000.0)
    >>> observation_layout(6, encoder="abr-6row-v2")["normalisation"]["log2_throughput_high"]
    4.0
    """
    obs_encoding.check_encoder(encoder)
    if encoder == obs_encoding.ENCODER_V1:
        normalisation: dict[str, Any] = {
            "buffer_norm_s": obs_encoding.BUFFER_NORM_S,
            "throughput_norm_bps": obs_encoding.THROUGHPUT_NORM_BPS,
            "download_time_norm_s": obs_encoding.DOWNLOAD_TIME_NORM_S,
            "chunk_size_norm_bits": obs_encoding.CHUNK_SIZE_NORM_BITS,
        }
    else:
        normalisation = {
            "buffer_norm_s": obs_encoding.BUFFER_NORM_S,
            "log2_throughput_low": obs_encoding.LOG2_THROUGHPUT_LOW,
            "log2_throughput_high": obs_encoding.LOG2_THROUGHPUT_HIGH,
            "download_time_norm_s": obs_encoding.DOWNLOAD_TIME_NORM_S,
            "download_time_clip": obs_encoding.DOWNLOAD_TIME_CLIP,
            "chunk_size_norm": "top_bitrate_x_chunk_duration",
        }
    return {
        "encoder": encoder,
        "shape": list(obs_encoding.observation_shape(n_levels, history_len)),
        "history_len": int(history_len),
        "n_levels": int(n_levels),
        "normalisation": normalisation,
    }


def algorithm_class(algorithm: str) -> Any:
    """The stable-baselines3 class of ``algorithm`` (``"ppo"`` or ``"a2c"``), imported lazily.

    >>> algorithm_class("ppo").__name__
    'PPO'
    """
    key = algorithm.strip().lower()
    if key not in ALGORITHMS:
        raise ConfigError(f"algorithm={algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    try:
        import stable_baselines3
    except ImportError as exc:
        raise MissingExtraError("stable-baselines3", "rl") from exc
    return getattr(stable_baselines3, key.upper())


def single_thread_torch() -> None:
    """Import torch and give it one thread (call in every process that runs a policy or trains one).

    >>> single_thread_torch()
    >>> import torch; torch.get_num_threads()
    1
    """
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError("torch", "rl") from exc
    torch.set_num_threads(1)


def load_model(path: str | Path, algorithm: str = "ppo", *, inference: bool = True) -> tuple[Any, dict[str, Any]]:
    """Load a model file and check its observation layout.

    Args:
        path: the model zip written by ``model.save`` (``.zip`` may be omitted, as SB3 allows).
        algorithm: ``"ppo"`` or ``"a2c"``.
        inference: load for play: the training schedules become the constants of :data:`INFERENCE_OBJECTS`
            (not unpickled, so the file's pickled training objects are never imported). ``False`` restores
            them, for code that continues training the model (it may then need the package that pickled them).

    Returns:
        The model (on the CPU) and its observation layout.

    Raises:
        PolicyLoadError: the file is missing, not a model zip, not loadable as ``algorithm``, or made for
            another observation layout (the message names the file and the fix).
        MissingExtraError: stable-baselines3 or torch is not installed.

    >>> load_model("/no/such/model.zip")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    agents.errors.PolicyLoadError: policy file /no/such/model.zip does not exist; ...
    """
    file = _model_file(Path(path))
    cls = algorithm_class(algorithm)
    saved = saved_algorithm(file)
    if saved is not None and saved != algorithm:
        raise PolicyLoadError(f"policy file {file} was saved by {saved.upper()}, not {algorithm.upper()}; load it as "
                              f"{saved}:{file} (or --algo {saved})")
    single_thread_torch()
    try:
        model = cls.load(str(file), device="cpu", custom_objects=dict(INFERENCE_OBJECTS) if inference else None)
    except Exception as exc:  # SB3 raises many types (KeyError, RuntimeError, pickle errors) for bad files
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise PolicyLoadError(
            f"policy file {file} cannot be loaded as a {algorithm.upper()} model ({reason}); check that it "
            f"was saved by stable-baselines3 with algorithm {algorithm!r}, or train it again with `abr train`"
        ) from exc
    return model, check_layout(model, file)


def saved_algorithm(file: str | Path) -> str | None:
    """The algorithm a stable-baselines3 model zip was saved by (``"ppo"`` or ``"a2c"``), ``None`` if unknown.

    Read from the zip's ``data`` record without unpickling anything: PPO saves a ``clip_range``, A2C does not.
    """
    try:
        with zipfile.ZipFile(file) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    if not isinstance(data, dict) or "vf_coef" not in data:
        return None
    return "ppo" if "clip_range" in data else "a2c"


def _model_file(path: Path) -> Path:
    file = path if path.exists() or path.suffix == ".zip" else path.with_name(path.name + ".zip")
    if not file.exists():
        raise PolicyLoadError(
            f"policy file {path} does not exist; give the model zip written by `abr train` "
            "(<out>/best_model.zip or <out>/model.zip)"
        )
    if not file.is_file() or not zipfile.is_zipfile(file):
        raise PolicyLoadError(
            f"policy file {file} is not a stable-baselines3 model zip (corrupt, truncated or another format); "
            "give the model zip written by `abr train`, or train it again"
        )
    return file


def check_layout(model: Any, file: str | Path) -> dict[str, Any]:
    """The observation layout of ``model``, checked against this version of the encoder.

    A model without a stored layout (trained outside :mod:`abr.training.run`) is accepted when its observation
    space is the default layout for its action count (``history_len`` = 8).

    Raises:
        PolicyLoadError: the spaces or the stored layout do not match the encoder.
    """
    space, actions = model.observation_space, model.action_space
    shape = tuple(getattr(space, "shape", None) or ())
    n_levels = int(getattr(actions, "n", 0))
    if type(actions).__name__ != "Discrete" or n_levels < 1:
        raise PolicyLoadError(f"policy file {file}: action space {actions} is not Discrete(n_levels); "
                              "a bitrate policy chooses one quality index")
    stored = getattr(model, LAYOUT_ATTR, None)
    if stored is None:
        expected = observation_layout(n_levels)
        if list(shape) != expected["shape"]:
            raise PolicyLoadError(
                f"policy file {file}: observation shape {shape} is not the Pensieve layout "
                f"{tuple(expected['shape'])} for {n_levels} levels (rows: {obs_encoding.N_ROWS}, history 8); "
                "train the model on abr/Abr-v0 with `abr train`"
            )
        logger.warning("policy file %s stores no observation layout; assuming %s", file, expected)
        return expected
    if not isinstance(stored, Mapping):
        raise PolicyLoadError(f"policy file {file}: {LAYOUT_ATTR} is {stored!r}, not a layout mapping")
    encoder = stored.get("encoder")
    if encoder not in obs_encoding.ENCODERS:
        raise PolicyLoadError(
            f"policy file {file} was trained with observation encoder {encoder!r}, which this version does not "
            f"know (known: {', '.join(obs_encoding.ENCODERS)}); use the version of abr it was trained with"
        )
    expected = observation_layout(n_levels, int(stored.get("history_len", -1)), encoder)
    problems = [f"{key}={stored.get(key)!r} (this encoder: {value!r})"
                for key, value in expected.items() if stored.get(key) != value]
    if list(shape) != expected["shape"]:
        problems.append(f"observation space shape {shape} (expected {tuple(expected['shape'])})")
    if problems:
        raise PolicyLoadError(
            f"policy file {file} was trained for another observation layout: {'; '.join(problems)}; "
            "retrain it with this version (`abr train`) or use the version of abr it was trained with"
        )
    return dict(expected)


def pickled_modules(path: str | Path) -> dict[str, set[str]]:
    """The modules each pickled attribute of a model file refers to (what unpickling it would import).

    Reads the ``data`` member of the zip without unpickling anything: the pickle opcodes of every
    ``:serialized:`` attribute are scanned for the modules of the classes and functions they name.

    Args:
        path: the model zip.

    Returns:
        ``{attribute: {module, ...}}`` for every pickled attribute.

    Raises:
        PolicyLoadError: the file is missing, not a zip, or has no readable ``data`` member.

    >>> pickled_modules("/no/such/model.zip")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    agents.errors.PolicyLoadError: policy file /no/such/model.zip does not exist; ...
    """
    file = _model_file(Path(path))
    try:
        with zipfile.ZipFile(file) as archive:
            data = json.loads(archive.read("data"))
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise PolicyLoadError(f"policy file {file} has no readable 'data' member ({exc}); give a model zip "
                              "written by stable-baselines3") from exc
    modules: dict[str, set[str]] = {}
    for key, item in data.items():
        if isinstance(item, dict) and ":serialized:" in item:
            try:
                modules[key] = _pickle_modules(base64.b64decode(item[":serialized:"]))
            except (binascii.Error, ValueError) as exc:
                raise PolicyLoadError(f"policy file {file}: attribute {key!r} is not a readable pickle ({exc})"
                                      ) from exc
    return modules


def _pickle_modules(blob: bytes) -> set[str]:
    """Modules named by the GLOBAL/STACK_GLOBAL opcodes of a pickle (strings followed through the memo)."""
    memo: dict[int, object] = {}
    pushed: list[object] = [None, None]  # the values pushed, strings kept and anything else as None
    modules: set[str] = set()
    for opcode, arg, _ in pickletools.genops(blob):
        name = opcode.name
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed.append(arg)
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(int(str(arg))))
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1]
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(str(arg))] = pushed[-1]
        elif name == "STACK_GLOBAL":
            if isinstance(pushed[-2], str):
                modules.add(pushed[-2])
            pushed.append(None)
        elif name == "GLOBAL":
            modules.add(str(arg).split(" ", 1)[0])
            pushed.append(None)
        else:
            pushed.append(None)
    return modules


class RLPolicy:
    """A trained stable-baselines3 policy playing as a bitrate agent.

    Args:
        model: the SB3 model (``PPO`` or ``A2C``).
        layout: its observation layout (see :func:`observation_layout`).
        name: the agent's name in results.
        sample: draw the action from the policy's distribution (with the generator given to ``reset``)
            instead of taking the most probable one.
        source: the model file, if the model was loaded from one (for messages and pickling).
        algorithm: the algorithm key, for pickling.

    >>> RLPolicy.from_file("/no/such.zip")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    agents.errors.PolicyLoadError: policy file /no/such.zip does not exist; ...
    """

    def __init__(self, model: Any, layout: Mapping[str, Any], *, name: str = "ppo", sample: bool = False,
                 source: str | Path | None = None, algorithm: str = "ppo") -> None:
        self.model = model
        self.layout = dict(layout)
        self.name = name
        self.sample = sample
        self.source = None if source is None else str(source)
        self.algorithm = algorithm
        self.history_len = int(self.layout["history_len"])
        self.n_levels = int(self.layout["n_levels"])
        self.encoder = str(self.layout.get("encoder", ENCODER_ID))
        self._shape = tuple(self.layout["shape"])
        self._rng = np.random.default_rng(0)

    @classmethod
    def from_file(cls, path: str | Path, *, algorithm: str = "ppo", sample: bool = False,
                  name: str | None = None) -> RLPolicy:
        """Load the model at ``path`` (see :func:`load_model`); the name defaults to ``"<algorithm>:<path>"``."""
        model, layout = load_model(path, algorithm)
        return cls(model, layout, name=name or f"{algorithm}:{path}", sample=sample, source=path,
                   algorithm=algorithm)

    def __reduce__(self) -> tuple[Any, ...]:
        if self.source is None:
            raise TypeError("an RLPolicy built from an in-memory model cannot be pickled; load it from a file")
        return (_policy_from_file, (self.source, self.algorithm, self.sample, self.name))

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """Start a session; ``rng`` draws the actions when ``sample`` is set (default: a generator seeded 0)."""
        self._rng = rng if rng is not None else np.random.default_rng(0)

    def select(self, context: PlayerContext) -> int:
        if context.video.n_levels != self.n_levels:
            raise ConfigError(
                f"policy {self.name!r} was trained for a {self.n_levels}-level ladder but the video "
                f"{context.video.name!r} has {context.video.n_levels} levels; train a model for this ladder"
            )
        probs = self.action_probabilities(obs_encoding.encode_observation(context, self.history_len,
                                                                                 self.encoder))[0]
        if self.sample:
            return int(self._rng.choice(self.n_levels, p=probs / probs.sum()))
        return int(np.argmax(probs))

    def action_probabilities(self, observations: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Action probabilities ``[batch, n_levels]`` for observations ``[batch, *shape]`` (or one observation)."""
        return policy_probabilities(self.model.policy, observations, self._shape)


def _policy_from_file(path: str, algorithm: str, sample: bool, name: str) -> RLPolicy:
    return RLPolicy.from_file(path, algorithm=algorithm, sample=sample, name=name)


def policy_probabilities(policy: Any, observations: npt.ArrayLike,
                         shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """Action probabilities of an SB3 actor-critic policy for a batch of observations (float64 copy)."""
    import torch

    obs = torch.as_tensor(np.asarray(observations, dtype=np.float32).reshape(-1, *shape))
    with torch.no_grad():
        probs = policy.get_distribution(obs).distribution.probs
    return np.asarray(probs.numpy(), dtype=np.float64)


def policy_logits(policy: Any, observations: Any) -> Any:
    """The logits path of an SB3 actor-critic policy: features -> actor layers -> action head (torch)."""
    from stable_baselines3.common.policies import BaseModel

    # BaseModel's extract_features: the actor's extractor only, whether or not it is shared with the critic.
    features = BaseModel.extract_features(policy, observations, policy.pi_features_extractor)
    return policy.action_net(policy.mlp_extractor.forward_actor(features))


__all__ = [
    "ALGORITHMS",
    "CRITIC_PREFIXES",
    "ENCODER_ID",
    "INFERENCE_OBJECTS",
    "LAYOUT_ATTR",
    "RLPolicy",
    "algorithm_class",
    "check_layout",
    "load_model",
    "observation_layout",
    "pickled_modules",
    "policy_logits",
    "policy_probabilities",
    "single_thread_torch",
]
