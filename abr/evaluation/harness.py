"""The evaluation harness: every agent plays every trace of every trace set; results, summary and report.

Traces are played in name order within each set and sets in the order given, so a run is deterministic.
Each session gets its own generator, ``default_rng(SeedSequence(seed, spawn_key=(agent_idx, set_idx,
trace_idx)))`` (indices in the order of ``agent_names``, ``trace_sets`` and the sorted traces), so noisy
presets are reproducible and a session does not depend on the ones played before it. Each agent is one
policy instance per process, reset at the start of every session (by :func:`simulator.rollout.run_session`).
Sessions run on an engine of :mod:`abr.evaluation.engines` (this process, local worker processes, or Ray) with
identical results, and are journaled as they finish so an interrupted run resumes (:mod:`abr.evaluation.journal`).

Files written to ``out_dir`` (each atomically: a crash never leaves a half-written file):

* ``sessions.csv``: one row per (agent, trace), columns :data:`SESSION_COLUMNS`.
* ``chunks.csv``: one row per downloaded chunk, columns :data:`CHUNK_COLUMNS` (every ``ChunkOutcome`` field).
* ``summary.csv``: long format, one row per (agent, trace set, metric) with ``n, mean, median, p5, p95,
  ci_low, ci_high``; ``trace_set == "all"`` pools every set of the agent. See :mod:`abr.evaluation.stats`.
* ``paired.csv``: every agent against the baseline, per trace set: mean difference with CI, win rate
  (:mod:`abr.evaluation.compare`); ``optimum.csv``: % of the offline optimum, when the ``optimal`` agent plays.
* ``config.json``: the resolved configuration, package versions, git commit and creation time.
* ``failures.csv``: the sessions that failed, with their reason (only when one did).
* ``report.md`` with its plots: see :mod:`abr.evaluation.report`.
* ``.abr-run.json`` / ``.abr-run.lock``: the run's record and lock (:mod:`abr.common.run_folder`).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from abr.common.atomic import write_csv_atomic, write_json_atomic
from abr.common.memory import check_fits
from abr.common.provenance import git_state, package_versions, utc_timestamp
from abr.common.run_folder import RunFolder
from abr.errors import ConfigError
from abr.evaluation import report
from abr.evaluation.compare import (
    OPTIMUM_COLUMNS,
    PAIRED_COLUMNS,
    OptimumRow,
    PairedRow,
    paired_comparisons,
    percent_of_optimum,
)
from abr.evaluation.engines import check_reachable, run_tasks
from abr.evaluation.journal import JOURNAL_FILE, Journal, fingerprint
from abr.evaluation.stats import BOOTSTRAP_RESAMPLES, CI_LEVEL, SUMMARY_COLUMNS, SummaryRow, summarize
from abr.evaluation.tables import CHUNK_COLUMNS, session_row, write_session_tables
from abr.evaluation.tasks import EvaluationJob, SessionFailure, SessionResult
from agents.base import ClairvoyantPolicy, Policy
from agents.registry import MODEL_AGENTS, make_agent
from simulator.config import SimConfig
from simulator.des import Session
from simulator.link import check_trace_feasible
from simulator.metrics import session_metrics
from simulator.qoe import QoEWeights
from simulator.records import ChunkOutcome
from simulator.rollout import check_core, run_session
from traces.types import Trace, Video

logger = logging.getLogger(__name__)

#: ``progress(completed_sessions, total_sessions, description)``; called once before the first session.
ProgressCallback = Callable[[int, int, str], None]

ALL_SETS = "all"
DEFAULT_BASELINE = "robustmpc"
FAILURES_FILE = "failures.csv"
FAILURE_COLUMNS: tuple[str, ...] = ("agent", "trace_set", "trace", "video", "reason")
SUMMARY_METRICS: tuple[str, ...] = (
    "qoe", "qoe_excl_first", "utility", "rebuffer_penalty", "smoothness_penalty", "avg_bitrate_kbps",
    "rebuffer_s", "rebuffer_excl_first_s", "rebuffer_ratio", "smoothness_mbps", "switch_count", "startup_delay_s",
)


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """What :func:`evaluate` produced.

    Attributes:
        out_dir: the output folder.
        sessions: one result per (agent, trace), in play order.
        summary: the ``summary.csv`` rows.
        files: the files written, by role (``"sessions"``, ``"chunks"``, ``"summary"``, ``"config"``,
            ``"report"``, ``"qoe_cdf"``, ``"tradeoff"``).
    """

    out_dir: Path
    sessions: tuple[SessionResult, ...]
    summary: tuple[SummaryRow, ...]
    files: dict[str, Path] = field(default_factory=dict)
    paired: tuple[PairedRow, ...] = ()
    optimum: tuple[OptimumRow, ...] = ()
    #: sessions that failed (recorded with their reason; the CLI then exits with 1).
    failures: tuple[SessionFailure, ...] = ()
    #: the folder already held this evaluation's results, read back rather than played again.
    nothing_to_do: bool = False

    def stat(self, agent: str, trace_set: str, metric: str) -> SummaryRow:
        """The summary row of ``metric`` for ``agent`` on ``trace_set`` (or ``"all"``)."""
        for row in self.summary:
            if (row.agent, row.trace_set, row.metric) == (agent, trace_set, metric):
                return row
        raise KeyError(f"no summary row for agent={agent!r}, trace_set={trace_set!r}, metric={metric!r}")


@dataclass(frozen=True, slots=True)
class _Plan:
    agents: dict[str, Policy]
    trace_sets: list[tuple[str, list[Trace]]]
    set_videos: list[int]

    @property
    def n_sessions(self) -> int:
        return len(self.agents) * sum(len(traces) for _, traces in self.trace_sets)


#: Every result file an evaluation may write (``failures.csv`` only when a session failed).
RESULT_FILES: tuple[str, ...] = (
    "sessions.csv", "chunks.csv", "summary.csv", "config.json", "paired.csv", "optimum.csv", FAILURES_FILE,
    *report.REPORT_FILES,
)


def evaluate(agent_names: Sequence[str], trace_sets: Mapping[str, Sequence[Trace]], video: Video | Sequence[Video],
             sim_config: SimConfig, qoe: QoEWeights, out_dir: str | Path, *, seed: int = 0,
             progress: ProgressCallback | None = None, command: str | None = None,
             metadata: Mapping[str, Any] | None = None, engine: str = "serial", workers: int = 1,
             ray_address: str | None = None, baseline: str | None = None, core: str = "simpy",
             overwrite: bool = False, reuse_finished: bool = False) -> EvaluationResult:
    """Run every agent over every trace of every set and write the results to ``out_dir``.

    ``out_dir`` is claimed for this evaluation (:mod:`abr.common.run_folder`): a folder holding another run's results
    is refused unless ``overwrite``; the same evaluation, finished, has nothing to do (its results are read
    back); interrupted (killed, Ctrl-C), it resumes from its journal, playing only the sessions still missing
    (see :mod:`abr.evaluation.journal`). Everything that can be checked is checked before the journal exists:
    the agents' parameters (each agent plays one session of each video on a fast constant link), every trace's
    feasibility for every video, and the Ray address. A session that still fails is recorded with its reason
    (:attr:`EvaluationResult.failures`, ``failures.csv``, the report) and the run goes on; comparisons pair only
    the traces both agents finished.

    Args:
        agent_names: registry names of the agents (see ``agents.agent_names()``).
        trace_sets: trace set name -> traces (played in name order). ``"all"`` is reserved.
        video: the video every session plays, or several: then every trace set is played with every video,
            as the groups ``<set>@<video name>`` (video names must be unique).
        sim_config: the link and player model.
        qoe: the QoE model.
        out_dir: the output folder (created if missing).
        seed: non-negative seed of the session generators and of the bootstrap.
        progress: called with (sessions done, total, description) before the first and after each session.
        command: the command line that started the run, recorded in ``config.json`` and ``report.md``.
        metadata: extra JSON-serialisable facts recorded in ``config.json`` (e.g. the preset name).
        engine: ``"serial"``, ``"local"`` (worker processes) or ``"ray"`` (see :mod:`abr.evaluation.engines`); every
            engine gives identical results.
        workers: worker processes of the local engine (CPUs of a new local Ray instance).
        ray_address: a running Ray cluster for ``engine="ray"`` (``None``: start a local instance).
        baseline: the agent the others are compared with in ``paired.csv`` (default: ``robustmpc`` if it
            plays, else the first agent).
        core: the session core, ``"simpy"`` (the reference) or ``"fast"`` (the batched core's arithmetic,
            equal to 1e-9 relative; see :func:`simulator.rollout.run_session`).
        overwrite: replace the results of another run in ``out_dir`` (only the files it recorded are removed),
            or rerun this one.
        reuse_finished: continue an interrupted run of a different evaluation in ``out_dir`` (its inputs since
            corrected), keeping its finished sessions that this evaluation would play identically.

    Returns:
        The sessions, the failures, the summary and the paths of the files written.

    Raises:
        ConfigError: unknown or repeated agent, an agent that cannot play a video, empty or reserved trace set,
            repeated trace name, a trace too slow for a video, bad seed, a baseline that does not play, an
            unreachable Ray address, another run's results in ``out_dir``, or a config that does not fit the
            video (nothing is run).
        EvaluationError: a worker process died (the journal keeps the sessions that finished).
    """
    videos = [video] if isinstance(video, Video) else list(video)
    plan = _validate(agent_names, trace_sets, videos, sim_config, qoe, out_dir, seed)
    baseline = _baseline(list(plan.agents), baseline)
    if ray_address is not None and engine != "ray":
        raise ConfigError(f"ray_address={ray_address!r} is given but engine={engine!r}: pass --engine ray, or drop "
                          "--ray-address")
    out = Path(out_dir)
    job = EvaluationJob(tuple(plan.agents), tuple((n, tuple(t)) for n, t in plan.trace_sets), tuple(videos),
                        sim_config, qoe, int(seed), tuple(plan.set_videos), check_core(core))
    _check_memory(plan, videos)
    _preflight(plan, videos, sim_config, qoe, job.core)
    if engine == "ray" and ray_address is not None:
        check_reachable(ray_address)
    with RunFolder(out, kind="evaluate", fingerprint=fingerprint(job), command=command, may_write=RESULT_FILES,
                   overwrite=overwrite, reuse=reuse_finished, reuse_option="--reuse-finished") as folder:
        if folder.finished is not None:
            logger.info("nothing to do: %s already holds the results of this evaluation", out)
            sessions, failures = read_finished(out, job)
            return _results(out, job, plan, sessions, failures, baseline, None, {}, nothing_to_do=True)
        folder.will_write(JOURNAL_FILE)
        logger.info("evaluating %d agents on %d traces (%d sessions)", len(plan.agents),
                    sum(len(t) for _, t in plan.trace_sets), plan.n_sessions)
        journal = Journal(out, job)
        sessions, failures = _run(job, journal, plan, progress, engine=engine, workers=workers,
                                  ray_address=ray_address, reuse=folder.adopted)
        config = _resolved_config(plan, videos, sim_config, qoe, seed, command, metadata)
        config["baseline"] = baseline
        config["core"] = job.core
        result = _results(out, job, plan, sessions, failures, baseline, config, {}, folder=folder)
        journal.remove()
        folder.done(failed=len(failures))
    logger.info("wrote %s to %s", ", ".join(sorted(p.name for p in result.files.values())), out)
    return result


def _results(out: Path, job: EvaluationJob, plan: _Plan, sessions: Sequence[SessionResult],
             failures: Sequence[SessionFailure], baseline: str | None, config: dict[str, Any] | None,
             files: dict[str, Path], *, folder: RunFolder | None = None,
             nothing_to_do: bool = False) -> EvaluationResult:
    """The summary and comparisons of ``sessions``; written to ``out`` when ``config`` is given."""
    seed = job.seed
    rows = [session_row(s) for s in sessions]
    summary = tuple(summarize(rows, SUMMARY_METRICS, seed=seed, all_sets_label=ALL_SETS))
    paired = tuple(paired_comparisons(rows, baseline, seed=seed, all_sets_label=ALL_SETS)) if baseline else ()
    optimum = tuple(percent_of_optimum(rows, seed=seed, all_sets_label=ALL_SETS))
    if config is None:  # nothing to do: the files are there
        files = {role: out / name for role, name in _result_names(bool(paired), bool(optimum), bool(failures)).items()
                 if (out / name).exists()}
    else:
        names = _result_names(bool(paired), bool(optimum), bool(failures))
        if folder is not None:
            folder.will_write(*names.values())
        files = _write_tables(out, sessions, rows, summary, config)
        if paired:
            files["paired"] = write_csv_atomic(out / "paired.csv", PAIRED_COLUMNS, (r.as_tuple() for r in paired))
        if optimum:
            files["optimum"] = write_csv_atomic(out / "optimum.csv", OPTIMUM_COLUMNS,
                                                (r.as_tuple() for r in optimum))
        if failures:
            files["failures"] = write_csv_atomic(out / FAILURES_FILE, FAILURE_COLUMNS,
                                                 ((f.agent, f.trace_set, f.trace, f.video, f.reason)
                                                  for f in failures))
        files.update(report.write_report(out, rows, summary, command=config.get("command"), config=config,
                                         paired=paired, optimum=optimum,
                                         failures=[(f.agent, f.trace_set, f.trace, f.reason) for f in failures]))
    return EvaluationResult(out, tuple(sessions), summary, files, paired, optimum, tuple(failures), nothing_to_do)


def _result_names(paired: bool, optimum: bool, failures: bool) -> dict[str, str]:
    names = {"sessions": "sessions.csv", "chunks": "chunks.csv", "summary": "summary.csv", "config": "config.json"}
    if paired:
        names["paired"] = "paired.csv"
    if optimum:
        names["optimum"] = "optimum.csv"
    if failures:
        names["failures"] = FAILURES_FILE
    names.update(report.report_file_names(optimum=optimum))
    return names


def read_finished(out: Path, job: EvaluationJob) -> tuple[list[SessionResult], list[SessionFailure]]:
    """The sessions and failures of a finished evaluation of ``job``, read back from its ``chunks.csv`` and
    ``failures.csv`` (floats there round-trip exactly, so the metrics are recomputed identically)."""
    keys = {(job.agents[a], job.trace_sets[s][0], job.trace_sets[s][1][t].name): (a, s, t)
            for a, s, t in (task.key for task in job.tasks())}
    outcomes: dict[tuple[int, int, int], list[ChunkOutcome]] = {}
    field_types = [int if name in ("chunk_idx", "quality_idx") else float for name in ChunkOutcome._fields]
    try:
        with open(out / "chunks.csv", encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            if tuple(next(reader)) != CHUNK_COLUMNS:
                raise ValueError("its columns are not an abr evaluation's")
            for row in reader:
                key = keys[(row[0], row[1], row[2])]
                values = [kind(v) for kind, v in zip(field_types, row[4:], strict=True)]
                outcomes.setdefault(key, []).append(ChunkOutcome(*values))  # type: ignore[arg-type]
        failures: list[SessionFailure] = []
        if (out / FAILURES_FILE).exists():
            with open(out / FAILURES_FILE, encoding="utf-8", newline="") as handle:
                for agent, trace_set, trace, video_name, reason in list(csv.reader(handle))[1:]:
                    key = keys[(agent, trace_set, trace)]
                    failures.append(SessionFailure(agent, trace_set, trace, reason, key, video_name))
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise ConfigError(f"{out} is recorded as a finished evaluation of this command but its chunks.csv / "
                          f"{FAILURES_FILE} cannot be read back ({type(exc).__name__}: {exc}); rerun with "
                          "--overwrite") from None
    sessions = []
    for key in sorted(outcomes):
        agent, (set_name, traces) = job.agents[key[0]], job.trace_sets[key[1]]
        video = job.video_of(key[1])
        chunks = tuple(outcomes[key])
        metrics = session_metrics(chunks, video, job.qoe, chunk_duration_s=video.chunk_duration_s)
        sessions.append(SessionResult(agent, set_name, traces[key[2]].name, metrics, chunks, key, video.name))
    return sessions, failures


def _baseline(agents: list[str], baseline: str | None) -> str | None:
    if baseline is None:
        if len(agents) < 2:
            return None
        return DEFAULT_BASELINE if DEFAULT_BASELINE in agents else agents[0]
    key = baseline.strip().lower()
    if key not in agents:
        raise ConfigError(f"baseline {baseline!r} is not one of the agents of the run ({', '.join(agents)})")
    return key


def _validate(agent_names: Sequence[str], trace_sets: Mapping[str, Sequence[Trace]], videos: Sequence[Video],
              sim_config: SimConfig, qoe: QoEWeights, out_dir: str | Path, seed: int) -> _Plan:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be a non-negative integer")
    if not agent_names:
        raise ConfigError("no agents given: name at least one (e.g. --agent bba)")
    agents: dict[str, Policy] = {}
    for name in agent_names:
        key = _agent_key(str(name))
        if key in agents:
            raise ConfigError(f"agent {name!r} is given twice; name each agent once")
        agents[key] = make_agent(key)
        twin = next((k for k, p in agents.items() if k != key and p.name == agents[key].name), None)
        if twin is not None:
            raise ConfigError(f"agents {twin!r} and {name!r} are the same policy ({agents[key].name!r}); name it once")
        if isinstance(agents[key], ClairvoyantPolicy) and sim_config.is_noisy:
            raise ConfigError(f"agent {key!r} knows the future and is defined for noise-free presets only; "
                              "drop it or choose a preset without download noise (e.g. --preset pensieve)")
    if not trace_sets:
        raise ConfigError("no trace sets given: pass at least one (e.g. --traces fcc/test or --synthetic 10)")
    sets = [(str(name), _sorted_traces(str(name), traces)) for name, traces in trace_sets.items()]
    if not videos:
        raise ConfigError("no video given: pass at least one (e.g. --video envivio_dash3)")
    names = [v.name for v in videos]
    if len(videos) > 1 and len(set(names)) != len(names):
        raise ConfigError(f"video names must be unique when several videos play; got {', '.join(names)}")
    for video in videos:
        qoe.chunk_utilities(video)  # raises ConfigError if the QoE model does not fit the ladder (or lacks quality)
        Session(sets[0][1][0], video, sim_config, rng=np.random.default_rng(0))  # checks config vs video
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir={str(out)!r} is an existing file; give a folder for the results")
    if len(videos) == 1:
        return _Plan(agents, sets, [0] * len(sets))
    groups = [(f"{name}@{video.name}", traces, v) for name, traces in sets for v, video in enumerate(videos)]
    return _Plan(agents, [(label, traces) for label, traces, _ in groups], [v for _, _, v in groups])


def _agent_key(name: str) -> str:
    """The registry key of an agent name: lowercase, except a file path after ``ppo:``/``a2c:``/``predictor-mpc:``
    and the import path of a ``py:`` agent.

    >>> _agent_key("BBA"), _agent_key("ppo:Runs/M.zip"), _agent_key("PY:My_Mod:MyPolicy")
    ('bba', 'ppo:Runs/M.zip', 'py:My_Mod:MyPolicy')
    """
    head, sep, tail = name.strip().partition(":")
    if sep and (head.lower() in MODEL_AGENTS or head.lower() in ("predictor-mpc", "py")):
        return f"{head.lower()}:{tail}"
    return name.strip().lower()


def _sorted_traces(set_name: str, traces: Sequence[Trace]) -> list[Trace]:
    if set_name == ALL_SETS:
        raise ConfigError(f"trace set name {ALL_SETS!r} is reserved for the pooled summary; rename the set")
    if not traces:
        raise ConfigError(f"trace set {set_name!r} is empty; give it at least one trace")
    ordered = sorted(traces, key=lambda t: t.name)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.name == after.name:
            raise ConfigError(
                f"trace set {set_name!r} has two traces named {after.name!r} "
                f"({before.source or '?'} and {after.source or '?'}); trace names must be unique in a set"
            )
    return ordered


def _run(job: EvaluationJob, journal: Journal, plan: _Plan, progress: ProgressCallback | None, *,
         engine: str, workers: int, ray_address: str | None,
         reuse: bool = False) -> tuple[list[SessionResult], list[SessionFailure]]:
    done = journal.load(reuse=reuse)
    failed: dict[tuple[int, int, int], SessionFailure] = {}
    total = plan.n_sessions
    if progress is not None:
        progress(len(done), total, "resuming" if done else "starting")
    tasks = [t for t in job.tasks() if t.key not in done]

    def finished(result: SessionResult | SessionFailure) -> None:
        journal.append(result)
        if isinstance(result, SessionFailure):
            failed[result.key] = result
        else:
            done[result.key] = result
        if progress is not None:
            what = "FAILED " if isinstance(result, SessionFailure) else ""
            progress(len(done) + len(failed), total, f"{what}{result.agent} on {result.trace_set}/{result.trace}")

    with journal:
        run_tasks(job, tasks, finished, engine=engine, workers=workers, policies=plan.agents,
                  ray_address=ray_address)
    return [done[key] for key in sorted(done)], [failed[key] for key in sorted(failed)]


#: Memory an evaluation holds per downloaded chunk until its tables are written (outcomes, rows, journal
#: record), measured with tracemalloc at about 1.7 KiB on 48-chunk sessions, rounded up.
BYTES_PER_CHUNK = 2048


def _check_memory(plan: _Plan, videos: Sequence[Video]) -> None:
    """Refuse up front an evaluation whose results would not fit in memory (with the estimate)."""
    chunks = sum(len(plan.agents) * len(traces) * videos[v].n_chunks
                 for (_, traces), v in zip(plan.trace_sets, plan.set_videos, strict=True))
    check_fits(f"an evaluation of {plan.n_sessions:,} sessions ({chunks:,} chunks)", chunks * BYTES_PER_CHUNK,
               "evaluate fewer agents or traces per run (split --traces over several --out folders)")


def _preflight(plan: _Plan, videos: Sequence[Video], sim_config: SimConfig, qoe: QoEWeights, core: str) -> None:
    """Refuse, before any session runs, an agent that cannot play a video or a trace too slow for one.

    Each agent plays one session of each video on a constant link four times the top bitrate (an agent's
    parameters are checked against the ladder only once it plays, e.g. ``fixed:9`` on six levels).
    """
    for (set_name, traces), v in zip(plan.trace_sets, plan.set_videos, strict=True):
        for trace in traces:
            check_trace_feasible(trace, videos[v], sim_config.payload_efficiency, trace_set=set_name)
    for video in videos:
        rate = 4.0 * float(video.bitrates_bps[-1])
        duration = 4.0 * video.n_chunks * video.chunk_duration_s
        link = Trace(np.array([0.0, duration]), np.array([rate, rate]), name="preflight")
        for key, policy in plan.agents.items():
            try:
                run_session(policy, link, video, sim_config, rng=np.random.default_rng(0), qoe=qoe, core=core)
            except Exception as exc:
                raise ConfigError(f"agent {key!r} cannot play video {video.name!r}: {type(exc).__name__}: "
                                  f"{exc}") from None


def _write_tables(out: Path, sessions: Sequence[SessionResult], rows: Sequence[Mapping[str, object]],
                  summary: Sequence[SummaryRow], config: Mapping[str, Any]) -> dict[str, Path]:
    return {
        **write_session_tables(out, sessions, rows),
        "summary": write_csv_atomic(out / "summary.csv", SUMMARY_COLUMNS, (r.as_tuple() for r in summary)),
        "config": write_json_atomic(out / "config.json", config),
    }


def _resolved_config(plan: _Plan, videos: Sequence[Video], sim_config: SimConfig, qoe: QoEWeights, seed: int,
                     command: str | None, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "created_utc": utc_timestamp(),
        "command": command,
        "seed": int(seed),
        "agents": list(plan.agents),
        "trace_sets": {name: _trace_set_info(traces) for name, traces in plan.trace_sets},
        "videos": [{
            "name": video.name, "source": video.source, "n_chunks": video.n_chunks,
            "n_levels": video.n_levels, "bitrates_bps": video.bitrates_bps.tolist(),
            "chunk_duration_s": video.chunk_duration_s,
        } for video in videos],
        "sim_config": dataclasses.asdict(sim_config),
        "qoe": {**dataclasses.asdict(qoe), "rebuffer_penalty_per_s": qoe.rebuffer_penalty,
                "hd_utilities": list(qoe.hd_utilities)},
        "bootstrap": {"method": "percentile", "resamples": BOOTSTRAP_RESAMPLES, "level": CI_LEVEL},
        "session_seeding": "default_rng(SeedSequence(seed, spawn_key=(agent_idx, set_idx, trace_idx)))",
        "metadata": dict(metadata or {}),
        "versions": package_versions(),
        "git": git_state(),
    }


def _trace_set_info(traces: Sequence[Trace]) -> dict[str, Any]:
    sources = [t.source for t in traces]
    folders = sorted({str(Path(s).parent) for s in sources if s})
    return {
        "path": folders[0] if len(folders) == 1 else (folders or None),
        "count": len(traces),
        "total_hours": sum(t.duration_s for t in traces) / 3600.0,
        "families": sorted({t.family for t in traces}),
        "traces": [t.name for t in traces],
    }
