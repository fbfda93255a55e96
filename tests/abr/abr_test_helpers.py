"""Helpers of the application-layer tests: tiny cooked traces and video folders on disk, CSV reading."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from traces.types import Trace

ENVIVIO_LADDER_KBPS = [300, 750, 1200, 1850, 2850, 4300]
#: Throughput levels (Mbit/s) of the tiny traces: slow, medium, fast, and two that vary.
TINY_PATTERNS_MBPS = {
    "a_slow": [0.4, 0.5, 0.3, 0.6],
    "b_medium": [1.2, 0.8, 1.5, 1.0],
    "c_fast": [4.0, 5.0, 3.5, 4.5],
    "d_swing": [0.3, 3.0, 0.5, 4.0],
    "e_ramp": [0.5, 1.0, 2.0, 3.0],
}


def write_cooked(path: Path, times_s: list[float], rates_mbps: list[float]) -> Path:
    """Write a cooked trace file (``time_s<TAB>Mbit/s``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{t}\t{r}\n" for t, r in zip(times_s, rates_mbps, strict=True)))
    return path


def write_tiny_trace_dir(folder: Path, names: list[str] | None = None) -> Path:
    """Cooked traces of 20 samples, 2 s apart, cycling through each pattern of TINY_PATTERNS_MBPS."""
    for name in names or list(TINY_PATTERNS_MBPS):
        pattern = TINY_PATTERNS_MBPS[name]
        times = [2.0 * i for i in range(20)]
        rates = [pattern[i % len(pattern)] for i in range(20)]
        write_cooked(folder / name, times, rates)
    return folder


def write_tiny_video_dir(folder: Path, n_chunks: int = 8) -> Path:
    """A Pensieve video folder (``video_size_N`` in bytes, ``ladder.json``), VBR sizes around the ladder."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    for level, kbps in enumerate(ENVIVIO_LADDER_KBPS):
        sizes = (kbps * 1000 / 8 * 4.0 * rng.uniform(0.8, 1.2, n_chunks)).astype(int)
        (folder / f"video_size_{level}").write_text("".join(f"{s}\n" for s in sizes))
    (folder / "ladder.json").write_text(json.dumps({"bitrates_kbps": ENVIVIO_LADDER_KBPS}))
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def extreme_trace() -> Trace:
    """1 Gbit/s for 60 s (top-bitrate chunks measure > 16x the top bitrate despite the RTT), then 20 kbit/s
    (1/215 of it: chunks take over 40 s) until 3000 s, then 2 Mbit/s."""
    t = np.arange(0.0, 4001.0)
    return Trace(t, np.select([t <= 60, t <= 3000], [1e9, 20e3], 2e6), name="extreme")


def train_tiny_model(config: Any, out_dir: Path, observation: str) -> Path:
    """Train ``config`` (a tiny ``TrainConfig``) on the observation encoder ``observation``; the model file."""
    import dataclasses

    from abr.training.run import train

    return Path(train(dataclasses.replace(config, observation=observation), out_dir).model_path)
