"""A trained actor as plain JSON weights, and its evaluation with numpy (the reference re-implementation).

Format ``abr-policy-weights-v1`` (``weights.json``)::

    {"format": "abr-policy-weights-v1", "algorithm": "ppo", "observation_shape": [6, W], "n_levels": L,
     "extractor": {"type": "flatten"}                      # row-major flattening of the observation
               or {"type": "pensieve", "history_len": H, "n_levels": L, "n_filters": F,
                   "scalar": [{"row": 0, "weight": T, "bias": T}, {"row": 1, ...}, {"row": 5, ...}],
                   "history_conv": [{"row": 2, "weight": T, "bias": T}, {"row": 3, ...}],
                   "size_conv": {"row": 4, "weight": T, "bias": T},
                   "concat": ["scalar:0", "scalar:1", "history_conv:2", "history_conv:3", "size_conv:4",
                              "scalar:5"]},
     "actor": [{"type": "linear", "weight": T, "bias": T}, {"type": "relu"} or {"type": "tanh"}, ...],
     "action_head": {"type": "linear", "weight": T, "bias": T},
     "output": "probs = softmax(logits)"}

A tensor ``T`` is ``{"shape": [...], "data": [...]}`` with the values in row-major order: float32 values
written as the shortest decimal that reads back as the same float32 (read them as float32 for the exact
weights; reading them as doubles changes the probabilities by far less than the test tolerance).
``linear``: ``y = x @ weight.T + bias`` (weight ``[out, in]``). The Pensieve extractor
(:mod:`agents.features`): ``scalar`` entries apply ``relu(x[row, H-1] * weight[:, 0] + bias)``;
convolutions (weight ``[F, 1, k]``) slide over ``x[row, :H]`` (history) or ``x[4, :L]`` (sizes):
``out[f, p] = relu(bias[f] + sum_j weight[f, 0, j] * x[row, p + j])``, flattened filter-major
(``out[0, :], out[1, :], ...``); the parts are concatenated in ``concat`` order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from abr.errors import PolicyExportError

FORMAT = "abr-policy-weights-v1"
_ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh"}


def _tensor(param: Any) -> dict[str, Any]:
    array = param.detach().cpu().numpy().astype(np.float32)
    # The shortest decimal that reads back as the same float32 (str of a numpy float32).
    return {"shape": list(array.shape), "data": [float(str(v)) for v in array.ravel()]}


def _array(tensor: Mapping[str, Any]) -> npt.NDArray[np.float64]:
    return np.asarray(tensor["data"], dtype=np.float32).astype(np.float64).reshape(tensor["shape"])


def _sequential(modules: Any) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = []
    for module in modules:
        kind = type(module).__name__
        if kind == "Linear":
            layers.append({"type": "linear", "weight": _tensor(module.weight), "bias": _tensor(module.bias)})
        elif kind in _ACTIVATIONS:
            layers.append({"type": _ACTIVATIONS[kind]})
        else:
            raise PolicyExportError(f"cannot export a {kind} layer of the actor; only Linear, ReLU and Tanh")
    return layers


def _extractor(extractor: Any) -> dict[str, Any]:
    kind = type(extractor).__name__
    if kind == "FlattenExtractor":
        return {"type": "flatten"}
    if kind != "PensieveExtractor":
        raise PolicyExportError(f"cannot export a {kind} feature extractor; only PensieveExtractor and the MLP's "
                                "FlattenExtractor")
    from agents.features import HISTORY_CONV_ROWS, SCALAR_ROWS, SIZE_ROW

    def layer(row: int, module: Any) -> dict[str, Any]:
        return {"row": row, "weight": _tensor(module.weight), "bias": _tensor(module.bias)}

    return {
        "type": "pensieve", "history_len": extractor.history_len, "n_levels": extractor.n_levels,
        "n_filters": int(extractor.size_conv.out_channels),
        "scalar": [layer(r, m) for r, m in zip(SCALAR_ROWS, extractor.scalar_dense)],
        "history_conv": [layer(r, m) for r, m in zip(HISTORY_CONV_ROWS, extractor.history_convs)],
        "size_conv": layer(SIZE_ROW, extractor.size_conv),
        "concat": ["scalar:0", "scalar:1", "history_conv:2", "history_conv:3", "size_conv:4", "scalar:5"],
    }


def policy_weights(policy: Any, *, algorithm: str, layout: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON weights (format in the module docstring) of an SB3 actor-critic policy's logits path."""
    head = policy.action_net
    return {
        "format": FORMAT,
        "algorithm": algorithm,
        "observation_shape": list(layout["shape"]),
        "n_levels": int(layout["n_levels"]),
        "extractor": _extractor(policy.pi_features_extractor),
        "actor": _sequential(policy.mlp_extractor.policy_net),
        "action_head": {"type": "linear", "weight": _tensor(head.weight), "bias": _tensor(head.bias)},
        "output": "probs = softmax(logits)",
    }


def _pensieve_features(spec: Mapping[str, Any], obs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    h, n = int(spec["history_len"]), int(spec["n_levels"])
    parts: dict[str, npt.NDArray[np.float64]] = {}
    for entry in spec["scalar"]:
        w, b = _array(entry["weight"]), _array(entry["bias"])
        parts[f"scalar:{entry['row']}"] = np.maximum(obs[:, entry["row"], h - 1 : h] @ w.T + b, 0.0)
    convs = [("history_conv", e, h) for e in spec["history_conv"]] + [("size_conv", spec["size_conv"], n)]
    for kind, entry, length in convs:
        w, b = _array(entry["weight"]), _array(entry["bias"])  # [F, 1, k], [F]
        windows = np.lib.stride_tricks.sliding_window_view(obs[:, entry["row"], :length], w.shape[2], axis=1)
        out = np.einsum("bpk,fk->bfp", windows, w[:, 0, :]) + b[None, :, None]  # [B, F, positions]
        parts[f"{kind}:{entry['row']}"] = np.maximum(out, 0.0).reshape(len(obs), -1)
    return np.concatenate([parts[name] for name in spec["concat"]], axis=1)


def numpy_logits(weights: Mapping[str, Any], observations: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Evaluate JSON weights on observations ``[batch, 6, W]`` with numpy (float64); the logits.

    >>> w = {"format": FORMAT, "observation_shape": [1, 2], "extractor": {"type": "flatten"}, "actor": [],
    ...      "action_head": {"type": "linear", "weight": {"shape": [1, 2], "data": [1.0, -1.0]},
    ...                      "bias": {"shape": [1], "data": [0.5]}}}
    >>> numpy_logits(w, [[[2.0, 1.0]]]).tolist()
    [[1.5]]
    """
    if weights.get("format") != FORMAT:
        raise PolicyExportError(f"weights format {weights.get('format')!r} is not {FORMAT!r}")
    obs = np.asarray(observations, dtype=np.float64).reshape(-1, *weights["observation_shape"])
    extractor = weights["extractor"]
    x = obs.reshape(len(obs), -1) if extractor["type"] == "flatten" else _pensieve_features(extractor, obs)
    for layer in [*weights["actor"], weights["action_head"]]:
        if layer["type"] == "linear":
            x = x @ _array(layer["weight"]).T + _array(layer["bias"])
        elif layer["type"] == "relu":
            x = np.maximum(x, 0.0)
        elif layer["type"] == "tanh":
            x = np.tanh(x)
        else:
            raise PolicyExportError(f"unknown layer type {layer['type']!r} in the weights")
    return x


def softmax(logits: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Row-wise softmax.

    >>> softmax([[0.0, 0.0]]).tolist()
    [[0.5, 0.5]]
    """
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float64)
