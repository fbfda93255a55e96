"""Agents by name: lowercase registry keys, each a factory of a fresh policy.

Some agents take one parameter after a colon, ``"name:value"``:

===============  ===============================================  =====================
form             meaning                                          example
===============  ===============================================  =====================
``fixed:K``      always level K (negative: from the top)          ``fixed:3``
``throughput:F`` bandwidth safety factor F in (0, 1]              ``throughput:0.8``
``bola:T``       BOLA-BASIC with buffer target T seconds          ``bola:30``
``bola-e:T``     BOLA-E with buffer target T seconds              ``bola-e:12``
``dynamic:T``    DYNAMIC with ``bufferTimeDefault`` T seconds     ``dynamic:12``
``soda:T``       SODA with buffer target T seconds                ``soda:30``
``ppo:PATH``     a trained PPO model zip (greedy; ``agents.rl``)  ``ppo:runs/a/best_model.zip``
``a2c:PATH``     a trained A2C model zip (greedy)                 ``a2c:runs/b/model.zip``
``predictor-mpc:PATH`` predictor-mpc over another predictor ``.npz``  ``predictor-mpc:runs/p/predictor.npz``
``py:MOD:NAME``  the user's Policy class or factory NAME in module  ``py:my_abr:MyPolicy``,
                 MOD, or in a file (``agents.external``)           ``py:code/mine.py:MyPolicy``
``guarded:AGENT`` AGENT, with BOLA-E deciding while the throughput  ``guarded:ppo``,
                 is unpredictable (``agents.guard``)               ``guarded:ppo:runs/a/best_model.zip``
===============  ===============================================  =====================

Shipped policies (``agents/models``; :data:`SHIPPED_MODELS`, listed by ``abr agents``):

===============  =============================================================  ===============================
name             policy                                                         file
===============  =============================================================  ===============================
``ppo``          the shipped PPO policy, :data:`SHIPPED_PPO_MODEL` (recipe      ``ppo_robust.zip``
                 ``ppo_robust.toml``, ``scripts/train_robust.sh``)
``ppo-v1``       the first shipped PPO policy (stage 3 of                       ``ppo_pensieve_v1.zip``
                 ``ppo_pensieve_v1.toml``/``.tune.toml``), kept for comparison
``comyco``       Comyco-style (Huang et al., MM 2019): imitation of a solver that  ``comyco.zip``
                 knows the next 5 chunks' throughput, no RL step (recipe
                 ``comyco.toml``, ``scripts/train_comyco.sh``)
``predictor-mpc`` Fugu-style stochastic MPC over a learned download-time         ``predictor_mpc.npz`` (+ ``.json``)
                 predictor (``agents.predictor_mpc``; ``abr predictor train``);
                 numpy only, in :data:`AGENTS`
===============  =============================================================  ===============================

``ppo`` alone loads the shipped policy :data:`SHIPPED_PPO_MODEL` (if one is shipped). Model agents split on
the first colon only and keep the path's case (``ppo:C:/x.zip`` is the path ``C:/x.zip``); torch is imported
only when such an agent is made.

A policy's ``name`` is its key, lowercase and with the parameter as given (``make_agent("Fixed:3").name ==
"fixed:3"``); ``"mpc"`` is an alias of ``"robustmpc"`` and gives a policy named ``"robustmpc"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from agents.base import Policy
from agents.bba import BBA
from agents.bola import Bola, BolaE
from agents.dynamic import Dynamic
from agents.external import is_external, make_external
from agents.guard import GuardedPolicy
from agents.mpc import fast_mpc, robust_mpc
from agents.optimal import OfflineOptimal
from agents.predictor_mpc import SHIPPED_PREDICTOR, PredictorMPC, predictor_mpc
from agents.rate_based import RateBased
from agents.simple import FixedQuality, RandomQuality
from agents.soda import SodaPolicy
from agents.throughput import ThroughputRule
from simulator.errors import ConfigError


def _fixed_top() -> FixedQuality:
    """Always the top level of the ladder (``FixedQuality(-1)``)."""
    return FixedQuality(-1, name="fixed-top")


AGENTS: dict[str, Callable[[], Policy]] = {
    "bba": BBA,
    "bola": Bola,
    "bola-e": BolaE,
    "dynamic": Dynamic,
    "fastmpc": fast_mpc,
    "fixed": FixedQuality,
    "fixed-top": _fixed_top,
    "mpc": robust_mpc,
    "optimal": OfflineOptimal,
    "predictor-mpc": predictor_mpc,
    "random": RandomQuality,
    "rb": RateBased,
    "robustmpc": robust_mpc,
    "soda": SodaPolicy,
    "throughput": ThroughputRule,
}

#: Agents that take a ``:value`` suffix: (factory from the parsed value and the name, parser, allowed form).
_PARAMETERISED: dict[str, tuple[Callable[[float, str], Policy], Callable[[str], float], str]] = {
    "fixed": (lambda v, n: FixedQuality(int(v), name=n), int, "fixed:<level_idx> with an integer level_idx"),
    "throughput": (lambda v, n: ThroughputRule(safety_factor=v, name=n), float,
                   "throughput:<safety_factor> with a number in (0, 1]"),
    "bola": (lambda v, n: Bola(buffer_target_s=v, name=n), float, "bola:<buffer_target_s> with seconds > 0"),
    "bola-e": (lambda v, n: BolaE(buffer_target_s=v, name=n), float,
               "bola-e:<buffer_target_s> with seconds > 0"),
    "dynamic": (lambda v, n: Dynamic(buffer_time_default_s=v, name=n), float,
                "dynamic:<buffer_time_default_s> with seconds > 0"),
    "soda": (lambda v, n: SodaPolicy(target_buffer_s=v, name=n), float,
             "soda:<target_buffer_s> with seconds in (0, 60]"),
}


#: Prefix of a guarded agent, ``guarded:AGENT`` (:class:`agents.guard.GuardedPolicy` around ``AGENT``).
GUARD_PREFIX = "guarded:"


def guarded_inner(name: str) -> str | None:
    """The agent inside ``guarded:AGENT`` (its case kept), ``None`` for any other name.

    >>> guarded_inner("guarded:ppo:runs/A.zip"), guarded_inner("ppo") is None
    ('ppo:runs/A.zip', True)
    """
    key = name.strip()
    return key[len(GUARD_PREFIX):].strip() if key.lower().startswith(GUARD_PREFIX) else None


def unguarded(name: str) -> str:
    """The agent that decides outside the guard: ``AGENT`` for ``guarded:AGENT``, else ``name`` itself."""
    inner = guarded_inner(name)
    return name if inner is None else unguarded(inner)


#: Agents that load a trained model file (``"ppo:PATH"``); not in :data:`AGENTS` (they need the ``rl`` extra).
MODEL_AGENTS: tuple[str, ...] = ("ppo", "a2c")
#: The shipped PPO policy loaded by ``make_agent("ppo")``.
SHIPPED_PPO_MODEL = Path(__file__).resolve().parent / "models" / "ppo_robust.zip"
#: The first shipped PPO policy, ``make_agent("ppo-v1")``: the stage-3 policy of ``ppo_pensieve_v1.tune.toml``,
#: re-saved as an inference model that pickles no ``abr`` object (it plays as first shipped).
SHIPPED_PPO_V1_MODEL = Path(__file__).resolve().parent / "models" / "ppo_pensieve_v1.zip"
#: The Comyco-style policy, ``make_agent("comyco")``: imitation of the instant solver (``comyco.toml``).
SHIPPED_COMYCO_MODEL = Path(__file__).resolve().parent / "models" / "comyco.zip"
#: Shipped policies other than ``ppo``, by agent name: (algorithm, model file).
SHIPPED_MODELS: dict[str, tuple[str, Path]] = {"ppo-v1": ("ppo", SHIPPED_PPO_V1_MODEL),
                                               "comyco": ("ppo", SHIPPED_COMYCO_MODEL)}


def shipped_model_agents() -> dict[str, Path]:
    """The shipped policies present, by agent name (``ppo``, ``ppo-v1``, ``comyco``), with their model files.

    >>> sorted(shipped_model_agents())
    ['comyco', 'ppo', 'ppo-v1']
    """
    shipped = {"ppo": SHIPPED_PPO_MODEL, **{name: path for name, (_, path) in SHIPPED_MODELS.items()}}
    return {name: path for name, path in shipped.items() if path.is_file()}


def _model_agent(algorithm: str, path: str | None) -> Policy:
    from agents.rl import RLPolicy  # imports torch and stable-baselines3 lazily

    if path is None:
        if algorithm != "ppo" or not SHIPPED_PPO_MODEL.is_file():
            raise ConfigError(
                f"agent {algorithm!r}: no shipped {algorithm.upper()} policy exists yet; train one with "
                f"`abr train --algo {algorithm} --out runs/{algorithm}` and use '{algorithm}:runs/{algorithm}/"
                "best_model.zip'"
            )
        return RLPolicy.from_file(SHIPPED_PPO_MODEL, algorithm="ppo", name="ppo")
    if not path:
        raise ConfigError(f"agent {algorithm!r}: give a model file, as {algorithm}:<path/to/model.zip>")
    return RLPolicy.from_file(path, algorithm=algorithm, name=f"{algorithm}:{path}")


def agent_model_file(name: str) -> Path | None:
    """The model file a model agent plays (``ppo``, ``ppo-v1``, ``ppo:PATH``; the predictor ``.npz`` of
    ``predictor-mpc`` and ``predictor-mpc:PATH``), ``None`` for the other agents.

    >>> agent_model_file("bba") is None, agent_model_file("ppo:runs/a/best_model.zip")
    (True, PosixPath('runs/a/best_model.zip'))
    >>> agent_model_file("predictor-mpc").name
    'predictor_mpc.npz'
    """
    key = unguarded(name).strip()
    if key.lower() in SHIPPED_MODELS:
        return SHIPPED_MODELS[key.lower()][1]
    base, has_path, path = key.partition(":")
    if base.strip().lower() == "predictor-mpc":
        return Path(path.strip()) if has_path and path.strip() else SHIPPED_PREDICTOR
    if base.strip().lower() not in MODEL_AGENTS:
        return None
    return Path(path.strip()) if has_path and path.strip() else SHIPPED_PPO_MODEL


def make_agent(name: str) -> Policy:
    """A new policy by registry name, optionally with a ``:value`` parameter (see the module docstring).

    >>> make_agent("bba").name, make_agent("Fixed:3").level_idx
    ('bba', 3)
    """
    inner = guarded_inner(name)
    if inner is not None:
        if not inner or guarded_inner(inner) is not None:
            raise ConfigError(f"agent {name.strip()!r}: give one agent to guard, as guarded:<agent> "
                              "(e.g. guarded:ppo or guarded:ppo:runs/a/best_model.zip)")
        return GuardedPolicy(make_agent(inner))
    if is_external(name):
        return make_external(name)
    if name.strip().lower() in SHIPPED_MODELS:
        from agents.rl import RLPolicy  # imports torch and stable-baselines3 lazily

        algorithm, file = SHIPPED_MODELS[name.strip().lower()]
        return RLPolicy.from_file(file, algorithm=algorithm, name=name.strip().lower())
    model_base, has_path, path = name.strip().partition(":")
    if model_base.strip().lower() == "predictor-mpc" and has_path:  # keeps the path's case, as model agents
        if not path.strip():
            raise ConfigError("agent 'predictor-mpc': give a predictor file, as predictor-mpc:<path/to/predictor.npz>")
        return PredictorMPC.from_file(path.strip(), name=f"predictor-mpc:{path.strip()}")
    if model_base.strip().lower() in MODEL_AGENTS:
        return _model_agent(model_base.strip().lower(), path.strip() if has_path else None)
    key = name.strip().lower()
    base, has_value, value = key.partition(":")
    base = base.strip()
    if base not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; available agents: {', '.join(sorted(AGENTS))}")
    if not has_value:
        return AGENTS[base]()
    if base not in _PARAMETERISED:
        forms = ", ".join(form.split(" ")[0] for _, _, form in _PARAMETERISED.values())
        raise ConfigError(f"agent {base!r} takes no parameter: use {base!r} (parameters exist for {forms})")
    factory, parse, form = _PARAMETERISED[base]
    try:
        parsed = parse(value.strip())
    except ValueError:
        raise ConfigError(f"agent {base!r}: bad parameter {value.strip()!r}; use {form}") from None
    if not math.isfinite(parsed):  # inf, nan, 1e999: no parameter of an agent is meaningful there
        raise ConfigError(f"agent {base!r}: parameter {value.strip()!r} must be a finite number; use {form}")
    try:
        return factory(parsed, f"{base}:{value.strip()}")
    except ConfigError as error:
        raise ConfigError(f"agent {base!r}: {error}; use {form}") from None


def agent_names() -> list[str]:
    """The registry keys, sorted (parameterised forms are not listed).

    >>> "bola-e" in agent_names()
    True
    """
    return sorted(AGENTS)
