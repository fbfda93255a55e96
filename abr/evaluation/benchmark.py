"""The benchmark: every agent over a fixed suite of trace sets and titles, ranked per suite member.

:func:`run_benchmark` is the generalisation protocol's machinery run over a fixed suite: a set of evaluations
(:func:`abr.evaluation.harness.evaluate`, on local processes, this process or Ray; each with its journal, so an
interrupted run resumes and gives the same tables), one per (video, scaling) group of the suite, into
``<out>/<video>/<scaling>/``; then per suite member (a trace set played with a video at a scaling) and agent the
statistics of :func:`abr.evaluation.generalization_stats.group_rows` (mean with its 95% bootstrap CI, median,
p10, the mean of the worst 5%, rebuffer ratio, share of the optimum, paired differences to RobustMPC and
BOLA-E) and a rank; written as ``leaderboard.csv``, ``leaderboard.json``, ``leaderboard.md`` and
``leaderboard.png`` (:mod:`abr.evaluation.benchmark_report`).

Ranks: per member, on QoE without the first chunk (``qoe_excl_first``), an agent's rank is one plus the number of
agents better than it on the same traces: the 95% paired-bootstrap CI of the mean per-trace difference lies above
zero (:func:`paired_ranks`). Agents not told apart share a rank. Every agent plays the same traces, so the paired
difference is the comparison that counts; the CIs of the agents' own means (shown) are several times wider, since
most of their width is how traces differ, and would tie nearly everyone. The offline
optimum plays everywhere but is an upper bound, not a player: it is shown and never ranked. A learned policy is
never ranked on a member whose traces it was trained or validated on (by content hash, from the provenance
its model file records, :mod:`agents.provenance`): its row is shown, marked ``trained on``. Members marked
unranked (``genet_benchmark``, whose files share content with ``fcc/test`` and the FCC and Norway train traces)
are shown with the published reference results of the Pensieve simulator beside ours.

The standard suite (:func:`standard_suite`): the Envivio title (``envivio_dash3``) on the test split of every
shared family, unscaled and scaled to 1.25 Mbit/s (the fcc + norway test mean); the MERINA titles
(``merina_avengers``, ``merina_ssb_sita_sings_the_blues``, Envivio ladder) and ``sabre_bbb/bbb.json`` (10 levels) on
``fcc/test`` and ``norway/test``; and ``genet_benchmark``'s FCC and Norway test sets, unranked. Agents that
play one ladder only (a trained policy's level count) sit out the titles of another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from abr.common.inputs import TraceSetInput, load_trace_set, load_video, rescaled_trace_set
from abr.common.run_folder import LOCK_FILE, RECORD_FILE, RunFolder, read_record
from abr.errors import ConfigError
from abr.evaluation.benchmark_report import OUTPUT_FILES, REFERENCE_FILE, read_reference, write_leaderboard
from abr.evaluation.generalization import DEFAULT_FAMILIES, DEFAULT_SCALE_MEAN_MBPS, OPTIMUM
from abr.evaluation.generalization_stats import BASELINES, GeneralizationRow, group_rows
from abr.evaluation.harness import EvaluationResult, ProgressCallback, evaluate
from abr.evaluation.identity import agent_code, update_with_traces
from abr.evaluation.stats import bootstrap_generator, bootstrap_means, percentile_interval
from abr.evaluation.tables import session_row
from agents.provenance import seen_fingerprints
from agents.registry import agent_model_file, make_agent, unguarded
from simulator.config import preset
from simulator.qoe import QoEWeights
from traces.datadir import available_trace_sets, available_videos
from traces.fingerprint import trace_fingerprint
from traces.types import Video

logger = logging.getLogger(__name__)

#: Every agent of the zoo, the learned ones and the offline optimum (the default of ``abr benchmark``).
DEFAULT_AGENTS: tuple[str, ...] = ("bba", "rb", "throughput", "bola", "bola-e", "dynamic", "robustmpc", "fastmpc",
                                   "soda", "predictor-mpc", "comyco", "ppo", OPTIMUM)
#: The Envivio ladder (kbit/s) of the MERINA titles, whose folders have none (their PROVENANCE.md names it).
ENVIVIO_LADDER_KBPS: tuple[float, ...] = (300.0, 750.0, 1200.0, 1850.0, 2850.0, 4300.0)
DEFAULT_VIDEO = "envivio_dash3"
TITLES: tuple[tuple[str, tuple[float, ...] | None], ...] = (
    ("merina_avengers", ENVIVIO_LADDER_KBPS), ("merina_ssb_sita_sings_the_blues", ENVIVIO_LADDER_KBPS),
    ("sabre_bbb/bbb.json", None))
TITLE_SETS: tuple[str, ...] = ("fcc/test", "norway/test")
#: genet_benchmark's sets and the name of each in the reference results (``pensieve_fixed_env_results.csv``).
GENET_SETS: dict[str, str] = {"genet_benchmark/fcc-test": "fcc-test", "genet_benchmark/norway-test": "norway-test"}
METRIC = "qoe_excl_first"
TRAINED_ON = "trained on"


@dataclass(frozen=True, slots=True)
class SuiteMember:
    """One entry of the suite: a trace set played with a video at a scaling.

    Attributes:
        trace_set: the trace-set spec (``"fcc/test"``).
        video: the video spec (a name under ``<data dir>/videos`` or a path).
        scaling: ``"unscaled"`` or ``"scaled"`` (every trace scaled by one factor to the suite's mean).
        ladder_kbps: the video's ladder when its folder has none.
        ranked: ``False`` for a comparison shown without ranks (``genet_benchmark``).
        reference: the set's name in the published reference results, if it has one.
    """

    trace_set: str
    video: str = DEFAULT_VIDEO
    scaling: str = "unscaled"
    ladder_kbps: tuple[float, ...] | None = None
    ranked: bool = True
    reference: str | None = None

    @property
    def name(self) -> str:
        return f"{self.video} · {self.trace_set} · {self.scaling}"

    @property
    def group(self) -> str:
        """The evaluation it is played in (``<video>/<scaling>``; a video spec's slashes become ``_``).

        >>> SuiteMember("fcc/test", "sabre_bbb/bbb.json").group
        'sabre_bbb_bbb/unscaled'
        """
        return f"{self.video.strip('/').replace('/', '_').removesuffix('.json')}/{self.scaling}"


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    """One agent on one suite member."""

    member: SuiteMember
    stats: GeneralizationRow
    #: 1 + the agents better on the same traces (paired CI); None: not ranked (the optimum, trained-on, unranked).
    rank: int | None
    note: str = ""

    def record(self) -> dict[str, Any]:
        s = self.stats
        vs = {BASELINES[k]: v for k, v in s.vs.items() if k in BASELINES}  # robustmpc, bola-e
        return {"video": self.member.video, "trace_set": self.member.trace_set, "scaling": self.member.scaling,
                "member": self.member.name, "ranked_member": self.member.ranked, "agent": s.agent, "n": s.n,
                "mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high, "median": s.median, "p10": s.p10,
                "worst_5pct": s.worst5_mean, "rebuffer_ratio": s.rebuffer_ratio, "pct_of_optimum": s.pct_of_optimum,
                **{f"minus_{k}": v.mean_diff for k, v in vs.items()},
                **{f"minus_{k}_ci_low": v.ci_low for k, v in vs.items()},
                **{f"minus_{k}_ci_high": v.ci_high for k, v in vs.items()},
                "rank": self.rank, "note": self.note}


@dataclass(frozen=True, slots=True)
class BenchmarkResult:
    """What :func:`run_benchmark` produced."""

    out_dir: Path
    agents: tuple[str, ...]
    members: tuple[SuiteMember, ...]
    rows: tuple[LeaderboardRow, ...]
    evaluations: dict[str, EvaluationResult]
    files: dict[str, Path]
    skipped: tuple[str, ...] = ()
    runtime_s: float = 0.0
    nothing_to_do: bool = False
    reference: dict[str, dict[str, float]] = field(default_factory=dict)


def standard_suite(data_dir: str | Path | None = None) -> tuple[list[SuiteMember], list[str]]:
    """The standard suite's members found in the data directory, and a note for each one missing.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     members, missing = standard_suite(d)
    >>> members, len(missing) > 0
    ([], True)
    """
    sets = set(available_trace_sets(data_dir))
    videos = set(available_videos(data_dir))
    members: list[SuiteMember] = []
    missing: list[str] = []
    if DEFAULT_VIDEO not in videos:
        missing.append(f"video {DEFAULT_VIDEO} (every Envivio member)")
    for family in DEFAULT_FAMILIES:
        spec = f"{family}/test"
        if spec not in sets:
            missing.append(f"trace set {spec}")
        elif DEFAULT_VIDEO in videos:
            members += [SuiteMember(spec, scaling=s) for s in ("unscaled", "scaled")]
    for title, ladder in TITLES:
        if title not in videos:
            missing.append(f"video {title}")
            continue
        members += [SuiteMember(spec, title, ladder_kbps=ladder) for spec in TITLE_SETS if spec in sets]
    for spec, reference in GENET_SETS.items():
        if spec not in sets:
            missing.append(f"trace set {spec}")
        elif DEFAULT_VIDEO in videos:
            members.append(SuiteMember(spec, ranked=False, reference=reference))
    return members, missing


def paired_ranks(values: Mapping[str, Sequence[float]], seed: int) -> dict[str, int]:
    """Rank of each agent from its per-trace values (every agent's in the same trace order): 1 + the agents that
    are better than it on the same traces, with a 95% paired-bootstrap CI of the mean difference above zero.

    Agents not told apart (the CI of their difference spans zero) share a rank; the bootstrap draws one set of
    trace resamples from ``seed`` and uses it for every pair.

    >>> paired_ranks({"a": [3.0, 5.0, 7.0, 9.0], "b": [2.9, 5.0, 6.9, 9.1], "c": [1.0, 2.0, 3.0, 4.0]}, 0)
    {'a': 1, 'b': 1, 'c': 3}
    """
    agents = list(values)
    data = {a: np.asarray(values[a], dtype=np.float64) for a in agents}
    pairs = [(a, b) for a in agents for b in agents if a != b]
    if not pairs:
        return {a: 1 for a in agents}
    differences = np.stack([data[b] - data[a] for a, b in pairs])
    means = bootstrap_means(differences, bootstrap_generator(seed))
    better = dict.fromkeys(agents, 0)
    for (a, _), resampled in zip(pairs, means, strict=True):
        low, _ = percentile_interval(resampled)
        better[a] += int(low > 0)
    return {a: 1 + better[a] for a in agents}


def learned_seen(agent: str) -> frozenset[str] | None:
    """The content hashes of the traces a learned agent was trained or validated on (``None``: not learned).

    Model agents (``ppo``, ``ppo:PATH``, ...) read their model file's provenance; ``predictor-mpc`` that of its
    predictor (the ``.json`` beside the weights).
    """
    file = agent_model_file(agent)
    if file is None:
        return None
    if file.suffix == ".npz":
        metadata = file.with_suffix(".json")
        if not metadata.is_file():
            return frozenset()
        return seen_fingerprints(json.loads(metadata.read_text()).get("provenance"))
    from agents.provenance import model_provenance
    from agents.rl import load_model

    algorithm = "a2c" if unguarded(agent).partition(":")[0].strip().lower() == "a2c" else "ppo"
    model, _ = load_model(file, algorithm)
    return seen_fingerprints(model_provenance(model))


def _check_agents(agents: Sequence[str]) -> dict[str, int | None]:
    """The agents (the optimum added), each made once: the ladder size a trained policy is fixed to, else ``None``."""
    levels: dict[str, int | None] = {}
    for name in agents:
        key = name.strip()
        if not key:
            raise ConfigError("an empty agent name was given; name each agent (e.g. --agent bba)")
        if key in levels:
            raise ConfigError(f"agent {key!r} is given twice; name each agent once")
        fixed = getattr(make_agent(key), "n_levels", None)  # fail fast: an unknown agent, a missing model or module
        levels[key] = None if fixed is None else int(fixed)
    if OPTIMUM not in [n.lower() for n in levels]:
        levels[OPTIMUM] = None
    return levels


def _plays(levels: int | None, video: Video) -> bool:
    """Whether an agent fixed to ``levels`` (``None``: any) can play a video's ladder."""
    return levels is None or levels == video.n_levels


def _fingerprint(agents: Sequence[str], members: Sequence[SuiteMember], settings: Mapping[str, Any],
                 inputs: Mapping[str, Mapping[str, TraceSetInput]], videos: Mapping[str, Video]) -> str:
    digest = hashlib.sha256(repr((list(agents), list(members), sorted(settings.items()))).encode())
    for agent in agents:
        model, code = agent_code(agent)
        if model is not None:
            digest.update(model)
        if code is not None:
            digest.update(code.encode())
    for name, video in sorted(videos.items()):
        digest.update(name.encode() + video.bitrates_bps.tobytes() + video.chunk_sizes_bits.tobytes())
    for group, by_name in sorted(inputs.items()):
        for name, trace_set in sorted(by_name.items()):
            digest.update(f"{group}/{name}".encode())
            update_with_traces(digest, trace_set.traces)
    return digest.hexdigest()


def run_benchmark(out_dir: str | Path, *, agents: Sequence[str] = DEFAULT_AGENTS,
                  members: Sequence[SuiteMember] | None = None, data_dir: str | Path | None = None,
                  reference_dir: str | Path | None = None, preset_name: str = "pensieve",
                  scale_mean_mbps: float = DEFAULT_SCALE_MEAN_MBPS, seed: int = 0, engine: str = "local",
                  workers: int = 1, ray_address: str | None = None, core: str = "fast",
                  progress: ProgressCallback | None = None, command: str | None = None,
                  overwrite: bool = False) -> BenchmarkResult:
    """Run every agent over the suite and write the leaderboard (see the module docstring).

    Everything is checked before anything is played: the agents (a ``py:`` agent is imported), every trace set
    and video. ``out_dir`` is claimed for this run (:mod:`abr.common.run_folder`); an interrupted run resumes
    when the same call is made again, and a finished one reads its evaluations back and writes nothing.

    Args:
        out_dir: the output folder.
        agents: agent names (registry names, model agents, ``py:MODULE:NAME``); ``optimal`` is added.
        members: the suite (default :func:`standard_suite`).
        data_dir: the data directory (else ``$ABR_DATA_DIR``).
        reference_dir: the folder of ``pensieve_fixed_env_results.csv`` for the unranked comparison (default
            ``<data dir>/../reference`` when it exists).
        preset_name: the simulator preset (noise-free: the optimum plays).
        scale_mean_mbps: the time-weighted mean of every scaled set, in Mbit/s.
        seed: the seed of the evaluations and the bootstraps.
        engine, workers, ray_address: where sessions run (:mod:`abr.evaluation.engines`).
        core: the session core, ``"fast"`` (default: equal to the SimPy core to 1e-9) or ``"simpy"``.
        progress: called with (sessions done, total, description).
        command: the command line, recorded in the outputs.
        overwrite: replace another run's results in ``out_dir``.

    Raises:
        ConfigError: a bad agent, preset, scaling, output folder, or an empty suite.
        DataDirError: a trace set or video is not found.
        EvaluationError: a worker died (the journals keep the finished sessions).
    """
    started = time.monotonic()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is an existing file; give a folder for the results")
    if not (isinstance(scale_mean_mbps, int | float) and 0 < scale_mean_mbps < float("inf")):
        raise ConfigError(f"--scale-mean-mbps {scale_mean_mbps} must be a number > 0")
    skipped: list[str] = []
    if members is None:
        members, skipped = standard_suite(data_dir)
    members = list(members)
    if not members:
        raise ConfigError("the suite is empty: the data directory holds none of its trace sets and videos "
                          "(set --data-dir or ABR_DATA_DIR to the shared data)")
    agent_levels = _check_agents(agents)
    names = list(agent_levels)
    sim_config, weights = preset(preset_name), QoEWeights()
    videos: dict[str, Video] = {}
    for m in members:
        if m.video not in videos:
            videos[m.video] = load_video(m.video, data_dir, ladder_kbps=m.ladder_kbps)
    unscaled_sets: dict[str, TraceSetInput] = {}
    for m in members:
        if m.trace_set not in unscaled_sets:
            unscaled_sets[m.trace_set] = load_trace_set(m.trace_set, data_dir)
    inputs: dict[str, dict[str, TraceSetInput]] = {}
    for m in members:
        base = unscaled_sets[m.trace_set]
        inputs.setdefault(m.group, {})[m.trace_set] = (
            base if m.scaling == "unscaled" else rescaled_trace_set(base, scale_mean_mbps))
    seen = {a: learned_seen(a) for a in names}
    group_agents = {m.group: [a for a in names if _plays(agent_levels[a], videos[m.video])] for m in members}
    sat_out = {m.group: [a for a in names if a not in group_agents[m.group]] for m in members}
    settings = {"preset": preset_name, "scale_mean_mbps": scale_mean_mbps, "seed": seed, "metric": METRIC,
                "core": core}
    fingerprint = _fingerprint(names, members, settings, inputs, videos)
    reference = read_reference(reference_dir, data_dir, REFERENCE_FILE)
    with RunFolder(out, kind="benchmark", fingerprint=fingerprint, command=command,
                   may_write=OUTPUT_FILES.values(), overwrite=overwrite) as folder:
        evaluations: dict[str, EvaluationResult] = {}
        for group, by_name in inputs.items():
            video = videos[next(m.video for m in members if m.group == group)]
            evaluations[group] = evaluate(
                group_agents[group], {name: list(t.traces) for name, t in by_name.items()}, video, sim_config,
                weights, out / group, seed=seed, progress=_tagged(progress, group), command=command,
                metadata={"preset": preset_name, "benchmark": group,
                          "trace_scale_factors": {n: t.scale_factor for n, t in by_name.items()}},
                engine=engine, workers=workers, ray_address=ray_address, core=core, overwrite=overwrite,
                baseline="robustmpc" if "robustmpc" in group_agents[group] else None)
            nested = read_record(out / group)
            if folder.finished is None and nested is not None:
                folder.will_write(*(f"{group}/{name}" for name in (*nested.outputs, RECORD_FILE, LOCK_FILE)))
        rows = leaderboard_rows(members, evaluations, unscaled_sets, seen, seed)
        runtime = time.monotonic() - started
        if folder.finished is not None:
            files = {role: out / name for role, name in OUTPUT_FILES.items() if (out / name).exists()}
        else:
            folder.will_write(*OUTPUT_FILES.values())
            files = write_leaderboard(out, rows=rows, members=members, agents=names, sat_out=sat_out,
                                      skipped=skipped, settings=settings, reference=reference, command=command,
                                      runtime_s=runtime,
                                      read_back=[g for g, e in evaluations.items() if e.nothing_to_do])
            folder.done(failed=sum(len(e.failures) for e in evaluations.values()))
    return BenchmarkResult(out, tuple(names), tuple(members), tuple(rows), evaluations, files, tuple(skipped),
                           runtime, folder.finished is not None, reference)


def leaderboard_rows(members: Sequence[SuiteMember], evaluations: Mapping[str, EvaluationResult],
                     unscaled_sets: Mapping[str, TraceSetInput], seen: Mapping[str, frozenset[str] | None],
                     seed: int) -> list[LeaderboardRow]:
    """The statistics and rank of every agent on every member."""
    rows: list[LeaderboardRow] = []
    for m in members:
        result = evaluations[m.group]
        sessions = [session_row(s) for s in result.sessions if s.trace_set == m.trace_set]
        stats = group_rows(sessions, group=m.trace_set, kind="set", family=m.trace_set.split("/")[0], label="",
                           scaling=m.scaling, scale_factor=float("nan"), model_agent="", seed=seed)
        fingerprints = {trace_fingerprint(t) for t in unscaled_sets[m.trace_set].traces}
        trained_on = {s.agent for s in stats if fingerprints & (seen.get(s.agent) or frozenset())}
        rankable = [s.agent for s in stats if m.ranked and s.agent != OPTIMUM and s.agent not in trained_on]
        ranks = paired_ranks(_per_trace(sessions, rankable), seed)
        for s in stats:
            note = ("upper bound" if s.agent == OPTIMUM else TRAINED_ON if s.agent in trained_on
                    else "" if m.ranked else "unranked")
            rows.append(LeaderboardRow(m, s, ranks.get(s.agent), note))
    return rows


def _per_trace(sessions: Sequence[Mapping[str, Any]], agents: Sequence[str]) -> dict[str, list[float]]:
    """Each agent's ``qoe_excl_first`` on the traces every one of them finished, in trace order."""
    by_agent = {a: {str(r["trace"]): float(r[METRIC]) for r in sessions if r["agent"] == a} for a in agents}
    common = sorted(set.intersection(*(set(v) for v in by_agent.values()))) if by_agent else []
    return {a: [by_agent[a][t] for t in common] for a in agents}


def _tagged(progress: ProgressCallback | None, group: str) -> ProgressCallback | None:
    if progress is None:
        return None
    report = progress

    def tagged(done: int, total: int, what: str) -> None:
        report(done, total, f"{group}: {what}")

    return tagged

