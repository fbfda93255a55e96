"""Which of abr's agents run in the browser plug-in, and the files the page needs for them.

The plug-in (``abr/player/web``) implements BBA, RobustMPC and FastMPC in JS (``rules.js``, the same
arithmetic as ``agents/bba.py`` and ``agents/mpc.py``) and evaluates RL policies (``ppo``, ``ppo:PATH``,
``a2c:PATH``) from the JSON weights and encoder specification of :mod:`abr.training.export`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abr.common.atomic import write_json_atomic
from abr.errors import ConfigError
from abr.training.export import FILES, encoder_spec, export_onnx
from abr.training.weights import policy_weights
from agents.registry import MODEL_AGENTS, SHIPPED_MODELS, make_agent
from agents.rl import RLPolicy

#: Heuristics with a JS rule, by agent name (default parameters only, as the Python agent's defaults).
BROWSER_HEURISTICS: tuple[str, ...] = ("bba", "robustmpc", "fastmpc")
#: Other names of those agents in the registry.
_ALIASES = {"mpc": "robustmpc"}


def has_browser_rule(name: str) -> bool:
    """Whether agent ``name`` (a registry name or ``ppo:PATH``-style model agent) runs in the player."""
    base = name.split(":", 1)[0].strip().lower()
    return ((_ALIASES.get(base, base) in BROWSER_HEURISTICS or base in SHIPPED_MODELS) and ":" not in name
            or base in MODEL_AGENTS)


@dataclass(frozen=True, slots=True)
class BrowserAgent:
    """An agent as the player page runs it.

    Attributes:
        name: the agent name as ``abr evaluate`` knows it (the simulator plays the same name).
        kind: ``"rl"`` or one of :data:`BROWSER_HEURISTICS`.
        policy_dir: for ``rl``: the folder holding ``weights.json`` and ``encoder_spec.json``.
    """

    name: str
    kind: str
    policy_dir: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    backend: str = "json"

    def page_config(self) -> dict[str, Any]:
        """The agent part of the page's ``/session/config``."""
        config: dict[str, Any] = {"name": self.name, "kind": self.kind, "params": self.params,
                                  "backend": self.backend}
        if self.kind == "rl":
            config["weights"] = f"/policy/{FILES['weights']}"
            config["encoder_spec"] = f"/policy/{FILES['encoder']}"
            if self.backend == "onnx":
                config["onnx"] = f"/policy/{FILES['onnx']}"
        return config


#: How the page evaluates an RL policy: ``json`` (plain JS from weights.json, synchronous, the default) or
#: ``onnx`` (ONNX Runtime Web, asynchronous: see ``plugin.js``).
BACKENDS: tuple[str, ...] = ("json", "onnx")


def browser_agent(name: str, work_dir: str | Path, *, backend: str = "json") -> BrowserAgent:
    """The browser form of agent ``name``; an RL policy's weights (and ONNX model) are written under ``work_dir``.

    Raises:
        ConfigError: the agent has no browser rule (the message lists those that do).
        PolicyLoadError: the RL model file is missing, corrupt or of another observation layout.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    base = name.split(":", 1)[0].strip().lower()
    base = _ALIASES.get(base, base)
    if base in BROWSER_HEURISTICS and ":" not in name:
        if backend != "json":
            raise ConfigError(f"agent {name!r} is a JS heuristic; the {backend} backend is for RL policies only")
        return BrowserAgent(name, base)
    if base in MODEL_AGENTS or (base in SHIPPED_MODELS and ":" not in name):
        policy = make_agent(name)  # raises PolicyLoadError with the file's name
        assert isinstance(policy, RLPolicy), f"{name} is a model agent but did not load as an RLPolicy"
        folder = Path(work_dir) / ("policy-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name))
        folder.mkdir(parents=True, exist_ok=True)
        weights = policy_weights(policy.model.policy, algorithm=policy.algorithm, layout=policy.layout)
        write_json_atomic(folder / FILES["weights"], weights)
        write_json_atomic(folder / FILES["encoder"], encoder_spec(policy.n_levels, policy.history_len,
                                                                   policy.encoder))
        if backend == "onnx":
            export_onnx(policy, folder / FILES["onnx"])
        return BrowserAgent(name, "rl", folder, backend=backend)
    have = ", ".join([*BROWSER_HEURISTICS, "ppo", *SHIPPED_MODELS, "ppo:PATH", "a2c:PATH"])
    raise ConfigError(f"agent {name!r} has no browser rule; the player runs: {have}")
