"""Registration of the environment ids with Gymnasium (idempotent; also run by the entry point)."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = ("abr/Abr-v0",)


def register_envs() -> None:
    """Register the ``abr/`` environments with Gymnasium; calling it again does nothing."""
    if "abr/Abr-v0" in gym.registry:
        return
    gym.register(id="abr/Abr-v0", entry_point="simulator.env:AbrEnv")
