"""Training: the run (:func:`train`), its config, the environments it builds, its callbacks (validation,
checkpoints), the policy export for the player and the plain-weights evaluator.

* :mod:`abr.training.run`: :func:`train` (SB3 PPO/A2C on the simulator's environments);
* :mod:`abr.training.config`: :class:`TrainConfig` and its TOML form;
* :mod:`abr.training.envs`: the training and validation environments of a config;
* :mod:`abr.training.callbacks`: validation, best model, patience, checkpoints;
* :mod:`abr.training.export`: ONNX, JSON weights, the encoder spec, and the export folder;
* :mod:`abr.training.vectors`: the test and encoder vectors an export ships;
* :mod:`abr.training.inference`: the inference copy of a model (what ships);
* :mod:`abr.training.weights`: a policy's weights evaluated with numpy.

Importing this package does not import torch or stable-baselines3 (they load when a run starts).
"""

from abr.training.config import TrainConfig
from abr.training.run import train

__all__ = ["TrainConfig", "train"]
