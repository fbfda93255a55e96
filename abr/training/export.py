"""Export of a trained policy for embedding (a browser player, another language): ONNX, JSON weights, tests.

:func:`export_policy` writes to ``out_dir``:

* ``policy.onnx``: input ``obs`` (float32 ``[batch, 6, W]``), outputs ``logits`` and ``probs``
  (``[batch, n_levels]``): the actor's logits path (features -> actor layers -> action head) and its softmax;
* ``weights.json``: the same network as plain JSON (:mod:`abr.training.weights` describes the format and
  evaluates it with numpy);
* ``encoder_spec.json``: how to build the observation from a player's history: every row, its unit,
  normalisation constant and column layout (:func:`encoder_spec`);
* ``encoder_vectors.json``: the encoder's test: whole sessions of the policy (the video's sizes and every
  chunk outcome) with the observation before each chunk (:func:`abr.training.vectors.encoder_vectors`), which a
  re-implemented encoder must reproduce exactly (float32);
* ``test_vectors.json``: observations (from real sessions of the policy and random ones) with the SB3
  policy's logits, action probabilities and greedy actions, which any re-implementation must reproduce to
  :data:`TOLERANCE`;
* ``model_inference.zip``: the SB3 model for playing only (:func:`abr.training.inference.write_inference_model`):
  the same actor, a zeroed critic and no optimiser state, a third of the size (the form the shipped policy is
  kept in);
* ``export.json``: what was exported, from which model, with which versions.

:func:`verify_export` re-evaluates the test vectors with the JSON weights (numpy) and with ONNX
(onnxruntime) and fails if any probability differs by more than :data:`TOLERANCE`.

The files are written and verified in a temporary folder inside ``out_dir``, then moved into place with
``export.json`` last; a folder already holding files of another model's export (or files no export wrote) is
refused unless ``overwrite`` (``abr export --overwrite``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abr.common.atomic import write_atomic, write_json_atomic
from abr.common.provenance import package_versions, utc_timestamp
from abr.errors import ConfigError, MissingExtraError, PolicyExportError
from abr.training.inference import write_inference_model
from abr.training.vectors import TOLERANCE, encoder_vectors, test_vectors, vector_observations
from abr.training.weights import numpy_logits, policy_weights, softmax
from agents.rl import RLPolicy, policy_logits
from simulator import observation as obs_encoding
from traces.types import Trace, Video

logger = logging.getLogger(__name__)

FILES = {"onnx": "policy.onnx", "weights": "weights.json", "encoder": "encoder_spec.json",
         "vectors": "test_vectors.json", "encoder_vectors": "encoder_vectors.json", "manifest": "export.json",
         "inference_model": "model_inference.zip"}
ONNX_OPSET = 17


@dataclass(frozen=True, slots=True)
class ExportCheck:
    """The agreement of the exported forms with the SB3 policy on the test vectors."""

    n_vectors: int
    max_abs_diff_numpy: float
    max_abs_diff_onnx: float | None  # None: onnxruntime not installed, ONNX not checked

    @property
    def is_ok(self) -> bool:
        worst = max(self.max_abs_diff_numpy, self.max_abs_diff_onnx or 0.0)
        return worst <= TOLERANCE


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The files written by :func:`export_policy` (by role, keys of :data:`FILES`) and their check."""

    out_dir: Path
    files: dict[str, Path]
    check: ExportCheck


def encoder_spec(n_levels: int, history_len: int = obs_encoding.DEFAULT_HISTORY_LEN,
                 encoder: str = obs_encoding.DEFAULT_ENCODER) -> dict[str, Any]:
    """The observation encoder as data: shape, column layout and every row with its transform and constants.

    Each row is ``transform(quantity, scale)`` rounded to float32, computed in float64:

    * ``ratio``: quantity / scale;
    * ``ratio_clip``: min(quantity / scale, ``clip``);
    * ``log2_ratio_clip``: (log2(quantity / scale) - ``low``) / (``high`` - ``low``) clipped to [0, 1]
      (a zero quantity reads 0).

    A scale is a number or the name of a video property: ``top_bitrate_bps`` (the highest bitrate of the
    ladder), ``top_chunk_bits`` (top bitrate x chunk duration) or ``n_chunks``.

    Args:
        n_levels: levels of the ladder.
        history_len: past chunks in the observation.
        encoder: the model's encoder (``RLPolicy.encoder``, one of ``simulator.observation.ENCODERS``).

    >>> spec = encoder_spec(6)
    >>> spec["shape"], [r["scale"] for r in spec["rows"]][1:5]
    ([6, 8], [10.0, 8000000.0, 10.0, 8000000.0])
    >>> [r["transform"] for r in encoder_spec(6, encoder="abr-6row-v2")["rows"]][2:4]
    ['log2_ratio_clip', 'ratio_clip']
    """
    obs_encoding.check_encoder(encoder)
    past = "each of the last history_len chunks"
    rows: list[dict[str, Any]] = [
        {"row": 0, "name": "bitrate", "quantity": f"nominal bitrate of {past}", "unit": "bit/s",
         "transform": "ratio", "scale": "top_bitrate_bps", "scale_meaning": "the highest bitrate of the ladder"},
        {"row": 1, "name": "buffer", "quantity": f"buffer level after {past} (after any idle time)",
         "unit": "s", "transform": "ratio", "scale": obs_encoding.BUFFER_NORM_S, "constant": "BUFFER_NORM_S"},
        {"row": 2, "name": "throughput", "quantity": f"measured throughput of {past}: size_bits / "
         "download_time_s (download time including the request RTT)", "unit": "bit/s"},
        {"row": 3, "name": "download_time", "quantity": f"download time of {past}, RTT included", "unit": "s"},
        {"row": 4, "name": "next_chunk_sizes", "quantity": "size of the next chunk at each level (column = "
         "level)", "unit": "bit", "transform": "ratio"},
        {"row": 5, "name": "chunks_remaining", "quantity": f"chunks left after {past}: n_chunks - chunk_idx - 1",
         "unit": "chunks", "transform": "ratio", "scale": "n_chunks", "scale_meaning": "chunks in the video"},
    ]
    if encoder == obs_encoding.ENCODER_V1:
        rows[2].update(transform="ratio", scale=obs_encoding.THROUGHPUT_NORM_BPS, constant="THROUGHPUT_NORM_BPS")
        rows[3].update(transform="ratio", scale=obs_encoding.DOWNLOAD_TIME_NORM_S, constant="DOWNLOAD_TIME_NORM_S")
        rows[4].update(scale=obs_encoding.CHUNK_SIZE_NORM_BITS, constant="CHUNK_SIZE_NORM_BITS")
    else:
        rows[2].update(transform="log2_ratio_clip", scale="top_bitrate_bps",
                       scale_meaning="the highest bitrate of the ladder", low=obs_encoding.LOG2_THROUGHPUT_LOW,
                       high=obs_encoding.LOG2_THROUGHPUT_HIGH,
                       constant="LOG2_THROUGHPUT_LOW, LOG2_THROUGHPUT_HIGH")
        rows[3].update(transform="ratio_clip", scale=obs_encoding.DOWNLOAD_TIME_NORM_S,
                       clip=obs_encoding.DOWNLOAD_TIME_CLIP, constant="DOWNLOAD_TIME_NORM_S, DOWNLOAD_TIME_CLIP")
        rows[4].update(scale="top_chunk_bits", scale_meaning="top bitrate x chunk duration: one chunk at the "
                       "highest bitrate")
    return {
        "encoder": encoder,
        "shape": list(obs_encoding.observation_shape(n_levels, history_len)),
        "dtype": "float32",
        "history_len": history_len,
        "n_levels": n_levels,
        "layout": (
            "rows 0-3 and 5 are histories: column history_len-1 holds the newest chunk, older chunks to its left; "
            "columns before the first downloaded chunk are 0, and columns >= history_len are 0. Row 4 column k "
            "holds the next chunk's size at level k for k < n_levels, 0 elsewhere and after the last chunk. "
            "Each value is the row's transform of quantity and scale, computed in float64 and rounded to "
            "float32. Transforms: ratio = quantity / scale; ratio_clip = min(quantity / scale, clip); "
            "log2_ratio_clip = clip((log2(quantity / scale) - low) / (high - low), 0, 1)."
        ),
        "rows": rows,
        "action": "quality index 0..n_levels-1 (0 = lowest); greedy play takes argmax(probs)",
        "onnx": {"input": "obs", "outputs": ["logits", "probs"], "batch_axis": 0},
    }


def export_onnx(policy: RLPolicy, path: str | Path) -> Path:
    """Write the policy's logits path and softmax as ONNX (input ``obs``, outputs ``logits`` and ``probs``)."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export(dynamo=False) needs it)
        import torch
    except ImportError as exc:
        raise MissingExtraError(exc.name or "onnx", "export") from exc

    class LogitsAndProbs(torch.nn.Module):
        def __init__(self, sb3_policy: Any) -> None:
            super().__init__()
            self.policy = sb3_policy

        def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = policy_logits(self.policy, obs)
            return logits, torch.softmax(logits, dim=-1)

    module = LogitsAndProbs(policy.model.policy).eval()
    dummy = torch.zeros((1, *policy.layout["shape"]), dtype=torch.float32)
    target = Path(path)

    def write(tmp: Path) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            # dynamo=False is the TorchScript exporter, which torch flags as legacy; it needs no onnxscript.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, (dummy,), str(tmp), input_names=["obs"], output_names=["logits", "probs"],
                              dynamic_axes={"obs": {0: "batch"}, "logits": {0: "batch"}, "probs": {0: "batch"}},
                              opset_version=ONNX_OPSET, dynamo=False)

    return write_atomic(target, write)


def export_policy(model_path: str | Path, out_dir: str | Path, *, algorithm: str = "ppo",
                  traces: Sequence[Trace] | None = None, video: Video | None = None, n_session: int = 64,
                  n_random: int = 32, seed: int = 0, overwrite: bool = False) -> ExportResult:
    """Export the model at ``model_path`` to ``out_dir`` (see the module docstring) and verify the export.

    The files are written and verified in a temporary folder inside ``out_dir`` and only then moved into place
    (``export.json`` last), so a failed or interrupted export leaves the folder as it was.

    Args:
        model_path: the SB3 model zip.
        out_dir: the folder to write (created if missing).
        algorithm: ``"ppo"`` or ``"a2c"``.
        traces: traces whose sessions give test observations (default: 4 seeded synthetic traces).
        video: the video of those sessions (default: the CBR Envivio ladder).
        n_session: test observations from sessions.
        n_random: random test observations.
        seed: seed of the random observations (and of the default traces).
        overwrite: replace files of :data:`FILES` in ``out_dir`` that another export (or anything else) wrote;
            without it only an export of the same model (same file or same content) is replaced.

    Returns:
        The files and the check of the exported forms against the SB3 policy.

    Raises:
        ConfigError: ``out_dir`` is a file, or holds files this export would replace that are not from an export
            of the same model (without ``overwrite``).
        PolicyLoadError: the model cannot be loaded or has another observation layout.
        PolicyExportError: an exported form disagrees with the SB3 policy by more than :data:`TOLERANCE`.
        MissingExtraError: torch/SB3 (``rl``) or onnx (``export``) is not installed.
    """
    policy = RLPolicy.from_file(model_path, algorithm=algorithm)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir={str(out)!r} is an existing file; give a folder for the export")
    source = {"model": str(model_path), "model_resolved": str(Path(model_path).resolve()),
              "model_sha256": _sha256(Path(model_path))}
    if not overwrite:
        _refuse_foreign_files(out, source)
    observations = vector_observations(policy, traces=traces, video=video, n_session=n_session, n_random=n_random,
                                     seed=seed)
    created = [p for p in (out, *out.parents) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".abr-export-", dir=out))
    try:
        staged = {role: staging / name for role, name in FILES.items()}
        weights = policy_weights(policy.model.policy, algorithm=algorithm, layout=policy.layout)
        write_json_atomic(staged["weights"], weights)
        write_json_atomic(staged["encoder"], encoder_spec(policy.n_levels, policy.history_len, policy.encoder))
        write_json_atomic(staged["vectors"], test_vectors(policy, observations))
        write_json_atomic(staged["encoder_vectors"], encoder_vectors(policy, traces=traces, video=video, seed=seed))
        export_onnx(policy, staged["onnx"])
        write_inference_model(model_path, staged["inference_model"], algorithm=algorithm)
        write_json_atomic(staged["manifest"], {
            "created_utc": utc_timestamp(), **source, "algorithm": algorithm,
            "observation_layout": policy.layout, "files": FILES, "tolerance": TOLERANCE,
            "versions": package_versions(), "n_test_vectors": int(observations.shape[0]),
        })
        check = verify_export(staging)
        # The old manifest first and the new one last: a manifest always describes a complete export.
        (out / FILES["manifest"]).unlink(missing_ok=True)
        for role in (*(r for r in FILES if r != "manifest"), "manifest"):
            os.replace(staged[role], out / FILES[role])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # the folders this export made, innermost first, if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)
    logger.info("exported %s to %s (%d test vectors; max |dprob| numpy %.2e, onnx %s)", model_path, out,
                check.n_vectors, check.max_abs_diff_numpy,
                "not checked" if check.max_abs_diff_onnx is None else f"{check.max_abs_diff_onnx:.2e}")
    return ExportResult(out, {role: out / name for role, name in FILES.items()}, check)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _refuse_foreign_files(out: Path, source: dict[str, str]) -> None:
    """Refuse an ``out`` holding files of :data:`FILES` that are not from an export of the same model."""
    existing = [name for name in FILES.values() if (out / name).exists()]
    if not existing:
        return
    try:
        manifest = json.loads((out / FILES["manifest"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if isinstance(manifest, dict) and isinstance(manifest.get("model"), str):
        recorded = manifest.get("model_resolved") or str(Path(manifest["model"]).resolve())  # older manifests
        if recorded == source["model_resolved"] or manifest.get("model_sha256") == source["model_sha256"]:
            return
        what = f"an export of another model ({manifest.get('model')})"
    else:
        what = f"files that are not from an abr export ({FILES['manifest']} missing or unreadable)"
    raise ConfigError(f"{out} already holds {what}: {', '.join(existing)} would be replaced; pass --overwrite to "
                      "replace them, or choose another --out", field="out_dir", value=str(out))


def verify_export(out_dir: str | Path) -> ExportCheck:
    """Re-evaluate ``test_vectors.json`` with ``weights.json`` (numpy) and ``policy.onnx`` (onnxruntime).

    Raises:
        PolicyExportError: a probability differs from the SB3 policy's by more than :data:`TOLERANCE`, or a
            greedy action differs.
    """
    out = Path(out_dir)
    vectors = json.loads((out / FILES["vectors"]).read_text(encoding="utf-8"))
    weights = json.loads((out / FILES["weights"]).read_text(encoding="utf-8"))
    obs = np.asarray(vectors["observations"], dtype=np.float32)
    expected = np.asarray(vectors["probs"], dtype=np.float64)
    numpy_probs = softmax(numpy_logits(weights, obs))
    diff_numpy = float(np.max(np.abs(numpy_probs - expected)))
    diff_onnx: float | None = None
    try:
        import onnxruntime
    except ImportError:
        logger.warning("onnxruntime is not installed: the ONNX file is not checked (pip install onnxruntime)")
    else:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(out / FILES["onnx"]), options,
                                               providers=["CPUExecutionProvider"])
        onnx_probs = session.run(["probs"], {"obs": obs})[0]
        diff_onnx = float(np.max(np.abs(onnx_probs.astype(np.float64) - expected)))
    check = ExportCheck(int(obs.shape[0]), diff_numpy, diff_onnx)
    if not check.is_ok:
        raise PolicyExportError(
            f"the export in {out} disagrees with the SB3 policy: max |dprob| numpy {diff_numpy:.3g}, onnx "
            f"{diff_onnx if diff_onnx is None else f'{diff_onnx:.3g}'} (tolerance {TOLERANCE}); "
            "the network has a layer the exporter does not translate faithfully"
        )
    top2 = np.sort(expected, axis=1)[:, -2:] if expected.shape[1] > 1 else np.zeros((len(expected), 2))
    clear = (top2[:, 1] - top2[:, 0]) > 2 * TOLERANCE  # greedy actions are compared where there is no near-tie
    greedy = np.asarray(vectors["greedy_actions"])
    if not np.array_equal(np.argmax(numpy_probs, axis=1)[clear], greedy[clear]):
        raise PolicyExportError(f"the export in {out}: numpy greedy actions differ from the SB3 policy's")
    return check
