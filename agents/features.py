"""Feature extractors of the learned bitrate policies (torch modules for stable-baselines3).

:class:`PensieveExtractor` is the network of Mao et al. (SIGCOMM 2017) in front of the actor and critic
heads: each row of the ``[6, W]`` observation (see :mod:`simulator.observation`) has its own encoder, and
the encodings are concatenated in row order:

====  =====================================  ===========================================================
row   input                                  encoder
====  =====================================  ===========================================================
0     last chunk's bitrate (column H-1)      dense 1 -> F, ReLU
1     buffer after the last chunk (H-1)      dense 1 -> F, ReLU
2     throughput history (columns 0..H-1)    1-D convolution, F filters of width k, ReLU, flattened
3     download-time history (0..H-1)         1-D convolution, F filters of width k, ReLU, flattened
4     next chunk sizes (columns 0..L-1)      1-D convolution, F filters of width min(k, L), ReLU, flattened
5     chunks remaining after the last (H-1)  dense 1 -> F, ReLU
====  =====================================  ===========================================================

(H = ``history_len``, L = ``n_levels``, F = ``n_filters``, k = ``min(kernel_size, H)``; flattening is
filter-major, as ``torch.flatten`` of ``[F, positions]``.) Paper defaults: F = 128, k = 4.

This module imports torch and stable-baselines3 when it is imported; ``agents`` and ``agents.registry``
import it only when a learned policy is built or loaded.
"""

from __future__ import annotations

from typing import Any

from simulator.errors import ConfigError, MissingExtraError
from simulator.observation import N_ROWS

try:
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without the rl extra
    raise MissingExtraError(exc.name or "torch", "rl") from exc

SCALAR_ROWS: tuple[int, ...] = (0, 1, 5)
HISTORY_CONV_ROWS: tuple[int, ...] = (2, 3)
SIZE_ROW = 4
DEFAULT_N_FILTERS = 128  # Pensieve's layer width
DEFAULT_KERNEL_SIZE = 4  # Pensieve's 1-D convolution width


def pensieve_features_dim(history_len: int, n_levels: int, n_filters: int = DEFAULT_N_FILTERS,
                          kernel_size: int = DEFAULT_KERNEL_SIZE) -> int:
    """Length of the concatenated encoding.

    >>> pensieve_features_dim(8, 6)  # 3 dense x 128 + 2 x 128 x 5 + 128 x 3
    2048
    """
    k_hist = min(kernel_size, history_len)
    k_size = min(kernel_size, n_levels)
    return n_filters * (len(SCALAR_ROWS) + 2 * (history_len - k_hist + 1) + (n_levels - k_size + 1))


class PensieveExtractor(BaseFeaturesExtractor):
    """Per-row encoders over the Pensieve observation, concatenated (see the module docstring).

    Args:
        observation_space: the ``Box`` of shape ``(6, max(history_len, n_levels))``.
        history_len: past chunks in the observation (columns ``0..history_len-1`` of the history rows).
        n_levels: levels of the ladder (columns ``0..n_levels-1`` of row 4).
        n_filters: width of every encoder (dense units and convolution filters).
        kernel_size: width of the 1-D convolutions (clipped to the row's length).

    >>> import gymnasium as gym, numpy as np
    >>> space = gym.spaces.Box(0.0, 1e4, (6, 8), np.float32)
    >>> extractor = PensieveExtractor(space, history_len=8, n_levels=6, n_filters=4)
    >>> extractor(torch.zeros(2, 6, 8)).shape
    torch.Size([2, 64])
    """

    def __init__(self, observation_space: Any, history_len: int, n_levels: int,
                 n_filters: int = DEFAULT_N_FILTERS, kernel_size: int = DEFAULT_KERNEL_SIZE) -> None:
        shape = tuple(observation_space.shape)
        width = max(history_len, n_levels)
        if shape != (N_ROWS, width):
            raise ConfigError(
                f"PensieveExtractor: observation shape {shape} does not match history_len={history_len} and "
                f"n_levels={n_levels}, which give {(N_ROWS, width)}"
            )
        if n_filters < 1 or kernel_size < 1:
            raise ConfigError(f"n_filters={n_filters} and kernel_size={kernel_size} must be >= 1")
        super().__init__(observation_space, pensieve_features_dim(history_len, n_levels, n_filters, kernel_size))
        self.history_len = history_len
        self.n_levels = n_levels
        k_hist = min(kernel_size, history_len)
        self.scalar_dense = nn.ModuleList(nn.Linear(1, n_filters) for _ in SCALAR_ROWS)
        self.history_convs = nn.ModuleList(nn.Conv1d(1, n_filters, k_hist) for _ in HISTORY_CONV_ROWS)
        self.size_conv = nn.Conv1d(1, n_filters, min(kernel_size, n_levels))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        h, n = self.history_len, self.n_levels
        last = observations[:, :, h - 1 : h]  # [B, 6, 1]: the newest column
        dense = [torch.relu(layer(last[:, row])) for layer, row in zip(self.scalar_dense, SCALAR_ROWS)]
        convs = [torch.relu(conv(observations[:, row : row + 1, :h])).flatten(1)
                 for conv, row in zip(self.history_convs, HISTORY_CONV_ROWS)]
        sizes = torch.relu(self.size_conv(observations[:, SIZE_ROW : SIZE_ROW + 1, :n])).flatten(1)
        return torch.cat([dense[0], dense[1], *convs, sizes, dense[2]], dim=1)


__all__ = ["PensieveExtractor", "pensieve_features_dim"]
