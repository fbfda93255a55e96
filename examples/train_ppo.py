"""Train a small PPO bitrate policy, evaluate it against BBA and RobustMPC, and export it for embedding.

Covers: ``abr.training.run.train`` (the Python API behind ``abr train``), loading the model as the agent
``ppo:<path>``, ``abr.evaluation.harness.evaluate`` and ``abr.training.export.export_policy``.

Scenario: 64 seeded synthetic traces for training, 16 (another seed) for validation, the CBR Envivio ladder
(no data directory needed). About half a minute on one core with the defaults below; pass ``--timesteps`` for a
longer run, ``--traces fcc/train`` (repeatable) for real traces from the data directory.

    python examples/train_ppo.py --out runs/example
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from abr.common.inputs import envivio_cbr_video
from abr.evaluation.harness import evaluate
from abr.training.config import TrainConfig
from abr.training.export import export_policy
from abr.training.run import train
from simulator.config import preset
from simulator.qoe import QoEWeights
from traces.synthetic import generate_trace_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/example"), help="run folder")
    parser.add_argument("--timesteps", type=int, default=100_000, help="environment steps")  # ~30 s
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--traces", action="append", default=[], help="training trace set (repeatable)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    config = TrainConfig(total_timesteps=args.timesteps, seed=args.seed, traces=tuple(args.traces), n_envs=8,
                         n_steps=128, batch_size=256, learning_rate=1e-3, reward_scale=0.1, n_filters=32,
                         hidden_sizes=(64,), ent_coef_start=0.05, ent_coef_end=0.005, eval_freq_steps=20_000)
    result = train(config, args.out / "train", progress=_print_progress)
    for point in result.evaluations:
        logging.info("step %7d: validation QoE %7.2f", point.timesteps, point.mean_qoe)

    agent = f"ppo:{result.best_model_path}"
    evaluation = evaluate([agent, "bba", "robustmpc"], {"synthetic": generate_trace_set(123, 20)},
                          envivio_cbr_video(), preset("pensieve"), QoEWeights(), args.out / "eval")
    for name in (agent, "bba", "robustmpc"):
        logging.info("%s: mean QoE %.2f", name, evaluation.stat(name, "all", "qoe").mean)

    exported = export_policy(result.best_model_path, args.out / "export")
    logging.info("exported to %s (max |dprob| numpy %.1e)", exported.out_dir, exported.check.max_abs_diff_numpy)


def _print_progress(done: int, total: int, mean_qoe: float | None) -> None:
    if done and done % 16_384 < 1024:  # about every 16k steps
        logging.info("%d/%d steps (last validation QoE %s)", done, total,
                     "-" if mean_qoe is None else f"{mean_qoe:.2f}")


if __name__ == "__main__":
    main()
