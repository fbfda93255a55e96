"""The inference copy of a model (``model_inference.zip``): the same actor, a zeroed critic, no optimiser state and
no pickled training objects, so it plays without ``abr`` installed (the form the shipped policies are kept in)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from abr.common.atomic import write_atomic
from abr.errors import PolicyExportError
from agents.rl import CRITIC_PREFIXES, load_model


def write_inference_model(model_path: str | Path, path: str | Path, *, algorithm: str = "ppo") -> Path:
    """Save the model at ``model_path`` for playing only: the actor as trained, the critic zeroed, no optimiser state.

    Greedy and sampled actions are the original's (the actor does not read the critic when the extractors are
    separate); zeros compress to almost nothing, so the file is about a third of a training checkpoint. It loads
    like any model zip (``ppo:PATH``) but cannot continue training meaningfully. The training schedules are
    stored as stable-baselines3 constants (learning rate 0, :data:`agents.rl.INFERENCE_OBJECTS`), so the file
    holds no pickled ``abr`` object and loads without this package (checked after writing).

    Raises:
        PolicyExportError: the written file would still import ``abr`` when loaded (it is removed).
    """
    import torch

    from agents.rl import pickled_modules

    model, _ = load_model(model_path, algorithm, inference=True)  # schedules as constants, never unpickled
    policy = model.policy
    with torch.no_grad():
        for name, tensor in policy.state_dict(keep_vars=True).items():
            if not policy.share_features_extractor and name.startswith(CRITIC_PREFIXES):
                tensor.zero_()
    policy.optimizer.state.clear()
    written = write_atomic(Path(path), lambda tmp: _save_deflated(model, tmp))
    leaks = sorted(f"{key} ({module})" for key, modules in pickled_modules(written).items()
                   for module in modules if module == "abr" or module.startswith("abr."))
    if leaks:
        written.unlink()
        raise PolicyExportError(f"the inference model {written} would import abr when loaded: {', '.join(leaks)}; "
                                "store plain values or stable-baselines3 objects in those model attributes")
    return written


def _save_deflated(model: Any, path: Path) -> None:
    """``model.save`` (which stores its members uncompressed), then the same members deflated."""
    stored = path.with_name(path.name + ".stored.zip")
    try:
        model.save(stored)
        with zipfile.ZipFile(stored) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
            for info in source.infolist():
                target.writestr(info.filename, source.read(info.filename))
    finally:
        stored.unlink(missing_ok=True)
