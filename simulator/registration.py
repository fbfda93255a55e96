"""Registration of the environment ids with Gymnasium (idempotent; also run by the entry point)."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = ("abr/Abr-v0",)


def register_envs() -> None:
    """Register the ``abr/`` environments with Gymnasium; calling it again does nothing."""
    if "abr/Abr-v0" in gym.registry:
        return
    # gymnasium.make_vec("abr/Abr-v0", num_envs=N) builds the batched AbrVectorEnv; vectorization_mode="sync"
    # still gives a SyncVectorEnv of AbrEnv copies.
    gym.register(id="abr/Abr-v0", entry_point="simulator.env:AbrEnv",
                 vector_entry_point="simulator.vector_env:AbrVectorEnv")
