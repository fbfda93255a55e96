"""The generalisation protocol of a trained model: in-distribution and held-out trace sets, scaled and unscaled.

:func:`run_generalization` takes a trained model file (it does not train) and a list of trace sets, and:

1. classifies every trace by content (:mod:`agents.provenance`): a trace whose fingerprint the model was
   trained or validated on is *seen*, under whatever name or folder; a set is *in-distribution* when its
   family is in the model's provenance, *out-of-distribution* otherwise (its seen traces, if any, are left
   out of it, so seen content is never reported as out-of-distribution), and *unknown* when the model records
   no (or an incomplete) provenance;
2. evaluates the model (agent ``ppo:<path>``), the heuristics and the offline ``optimal`` on every set, once
   as recorded (``unscaled``) and once with each set scaled by one factor to a time-weighted mean of
   ``scale_mean_mbps`` (``scaled``), through the evaluation harness (:func:`abr.evaluation.harness.evaluate`: its
   engines, its journal, so an interrupted run resumes), into ``<out>/unscaled`` and ``<out>/scaled``;
   ``scalings`` (``--scalings``) may skip one of the two;
3. computes per (set, scaling, agent) the statistics of :class:`GeneralizationRow` from the sessions, and
   the acceptance checks of :class:`AcceptanceCriteria` (:mod:`abr.evaluation.generalization_stats`; a video other than
   the default ``envivio_dash3`` adds the titles check, and a check that needs a skipped scaling is n/a);
4. writes ``generalization.csv``, ``generalization.json``, ``generalization.md`` and ``generalization.png``
   (:mod:`abr.evaluation.generalization_report`).

Default sets: the test split of every family of :data:`DEFAULT_FAMILIES` found in the data directory, and for
every one of those families the model's provenance does not contain (held out entirely), all its files
(train and test), as the set ``<family>/all``. QoE is ``qoe_excl_first`` throughout (chunks 2..N, the
literature's convention).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abr.common.inputs import TraceSetInput, load_trace_set, load_video, parse_ladder_kbps, rescaled_trace_set
from abr.common.run_folder import LOCK_FILE, RECORD_FILE, RunFolder, read_record
from abr.errors import ConfigError
from abr.evaluation.generalization_stats import (
    METRIC,
    POOL_SEPARATOR,
    AcceptanceCriteria,
    GeneralizationRow,
    acceptance_checks,
    group_rows,
    pool,
    pooled_name,
)
from abr.evaluation.harness import EvaluationResult, ProgressCallback, evaluate
from abr.evaluation.identity import update_with_traces
from abr.evaluation.tables import session_row
from agents.provenance import is_complete, model_provenance, seen_families, seen_fingerprints, spec_family
from agents.registry import GUARD_PREFIX, MODEL_AGENTS, make_agent, unguarded
from agents.rl import load_model
from simulator.config import preset
from simulator.qoe import QoEWeights
from traces.datadir import available_trace_sets
from traces.datadir import data_dir as resolve_data_dir
from traces.fingerprint import trace_fingerprint
from traces.types import Trace, Video
from traces.units import bps_to_kbps

logger = logging.getLogger(__name__)

#: The shared data set's families whose test split is evaluated by default.
DEFAULT_FAMILIES: tuple[str, ...] = ("fcc", "norway", "oboe", "belgium4g", "lumos5g", "ucc5g", "nyu_lte")
#: The heuristics the model is compared with by default (``optimal`` is always added).
DEFAULT_HEURISTICS: tuple[str, ...] = ("robustmpc", "bola-e", "dynamic", "bba", "rb")
#: The heuristics of the paired comparisons; they always play.
COMPARED: tuple[str, ...] = ("robustmpc", "bola-e")
OPTIMUM = "optimal"
#: Time-weighted mean of the scaled sets, Mbit/s: that of fcc/test + norway/test.
DEFAULT_SCALE_MEAN_MBPS = 1.25
SCALINGS: tuple[str, ...] = ("unscaled", "scaled")
#: Suffix of a held-out family's set of all its files.
HELD_OUT_SET = "all"
IN_DISTRIBUTION, OUT_OF_DISTRIBUTION, UNKNOWN = "in-distribution", "out-of-distribution", "unknown"


@dataclass(frozen=True, slots=True)
class ProtocolSet:
    """A trace set of the protocol and the classification of its traces.

    Attributes:
        name: the set's name in results (``"fcc/test"``, ``"oboe/all"``, or the spec given).
        family: its family (:func:`agents.provenance.spec_family`).
        specs: the specs it was read from (a held-out family's ``<family>/<split>`` folders).
        traces: every trace read, sorted by name.
        seen: per trace, whether the model was trained or validated on its content.
        label: :data:`IN_DISTRIBUTION`, :data:`OUT_OF_DISTRIBUTION` or :data:`UNKNOWN`.
        held_out: whether it is a held-out family's ``<family>/all`` set.
    """

    name: str
    family: str
    specs: tuple[str, ...]
    traces: tuple[Trace, ...]
    seen: tuple[bool, ...]
    label: str
    held_out: bool = False

    @property
    def n_seen(self) -> int:
        return sum(self.seen)

    @property
    def evaluated(self) -> tuple[Trace, ...]:
        """The traces played: all of them, less the seen ones in an out-of-distribution set."""
        if self.label != OUT_OF_DISTRIBUTION:
            return self.traces
        return tuple(t for t, s in zip(self.traces, self.seen, strict=True) if not s)

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (no traces)."""
        return {"name": self.name, "family": self.family, "specs": list(self.specs), "label": self.label,
                "held_out": self.held_out, "n_traces": len(self.traces), "n_seen": self.n_seen,
                "n_evaluated": len(self.evaluated)}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """The model under test: its file, agent name and provenance (``None`` when it records none)."""

    path: Path
    agent: str
    provenance: dict[str, Any] | None

    @property
    def is_known(self) -> bool:
        """Whether its provenance is recorded for it and every model it was fine-tuned from."""
        return is_complete(self.provenance)


@dataclass(frozen=True, slots=True)
class GeneralizationResult:
    """What :func:`run_generalization` produced."""

    out_dir: Path
    model: ModelInfo
    sets: tuple[ProtocolSet, ...]
    rows: tuple[GeneralizationRow, ...]
    checks: tuple[dict[str, Any], ...]
    evaluations: dict[str, EvaluationResult]
    files: dict[str, Path]
    scale_factors: dict[str, dict[str, float]]
    skipped_sets: tuple[str, ...] = ()
    #: the folder already held this run's results: nothing was played or written.
    nothing_to_do: bool = False


def load_model_info(model: str | Path, algorithm: str = "ppo") -> ModelInfo:
    """Load a model file's provenance and its agent name (``<algorithm>:<absolute path>``).

    Raises:
        PolicyLoadError: the file is missing or not a model of ``algorithm`` (the message names it).
        ConfigError: ``algorithm`` is not a model agent.
    """
    key = algorithm.strip().lower()
    if key not in MODEL_AGENTS:
        raise ConfigError(f"algorithm={algorithm!r} is not one of {', '.join(MODEL_AGENTS)}")
    path = Path(model).expanduser().resolve()
    loaded, _ = load_model(path, key)
    return ModelInfo(path, f"{key}:{path}", model_provenance(loaded))


def check_scalings(scalings: str | Sequence[str]) -> tuple[str, ...]:
    """The scalings to evaluate, from ``"unscaled,scaled"`` (the CLI form) or names, in :data:`SCALINGS` order.

    Raises:
        ConfigError: none given, or a name that is not ``unscaled`` or ``scaled``.

    >>> check_scalings("scaled, unscaled")
    ('unscaled', 'scaled')
    >>> check_scalings(["unscaled"])
    ('unscaled',)
    """
    names = scalings.split(",") if isinstance(scalings, str) else list(scalings)
    wanted = [str(n).strip().lower() for n in names if str(n).strip()]
    unknown = [n for n in wanted if n not in SCALINGS]
    if unknown or not wanted:
        raise ConfigError(f"--scalings {scalings!r}: give {' and/or '.join(SCALINGS)}, comma-separated "
                          f"(e.g. --scalings unscaled)", field="scalings", value=scalings)
    return tuple(s for s in SCALINGS if s in wanted)


def agent_list(model_agent: str, heuristics: Sequence[str]) -> list[str]:
    """The agents of the protocol: the model, the heuristics, then the compared ones and ``optimal`` if missing.

    >>> agent_list("ppo:/m.zip", ["bba"])
    ['ppo:/m.zip', 'bba', 'robustmpc', 'bola-e', 'optimal']
    """
    names = [model_agent]
    for name in [*heuristics, *COMPARED, OPTIMUM]:
        key = name.strip().lower()
        inner = unguarded(key)
        if inner in MODEL_AGENTS or inner.partition(":")[0] in MODEL_AGENTS:
            raise ConfigError(f"agent {name!r}: the protocol evaluates one model, given as MODEL; "
                              "--agent takes heuristics only")
        if key not in names:
            make_agent(key)  # fail fast on an unknown agent
            names.append(key)
    return names


def classify(name: str, family: str, specs: Sequence[str], traces: Sequence[Trace], model: ModelInfo,
             held_out: bool = False) -> ProtocolSet:
    """A :class:`ProtocolSet`: its traces classified seen/unseen by content and the set labelled."""
    ordered = tuple(sorted(traces, key=lambda t: t.name))
    fingerprints = seen_fingerprints(model.provenance)
    seen = tuple(trace_fingerprint(t) in fingerprints for t in ordered)
    if not model.is_known:
        label = UNKNOWN
    elif family in seen_families(model.provenance) or all(seen):
        label = IN_DISTRIBUTION
    else:
        label = OUT_OF_DISTRIBUTION
    return ProtocolSet(name, family, tuple(specs), ordered, seen, label, held_out)


def held_out_families(model: ModelInfo, requested: Sequence[str], data_dir: str | Path | None,
                      *, automatic: bool) -> list[str]:
    """The held-out families: those asked for, plus (``automatic``) the default ones the model never saw.

    Raises:
        ConfigError: a requested family is not in the data directory, or the model was trained on it.
    """
    available = _families(data_dir) if (requested or automatic) else {}
    seen = seen_families(model.provenance)
    for family in requested:
        if family not in available:
            raise ConfigError(f"--held-out: family {family!r} not found under {_traces_root(data_dir)}; "
                              f"available families: {', '.join(sorted(available)) or 'none'}")
        if model.is_known and family in seen:
            raise ConfigError(f"--held-out: the model was trained or validated on family {family!r} (its "
                              "provenance), so it is not held out; drop it from --held-out")
    auto = [f for f in DEFAULT_FAMILIES if automatic and model.is_known and f not in seen and f in available]
    return list(dict.fromkeys([*requested, *auto]))


def resolve_protocol_sets(model: ModelInfo, specs: Sequence[str] | None, held_out: Sequence[str],
                          data_dir: str | Path | None) -> tuple[list[ProtocolSet], list[str]]:
    """The sets of the protocol (see the module docstring) and the default sets not found (skipped).

    Raises:
        DataDirError: a given set is not found (the message lists the available ones).
        ConfigError: a held-out family is not found or not held out; two sets share a name.
    """
    skipped: list[str] = []
    is_default = specs is None
    if specs is None:
        available = set(available_trace_sets(data_dir))
        specs = [f"{f}/test" for f in DEFAULT_FAMILIES if f"{f}/test" in available]
        skipped = [f"{f}/test" for f in DEFAULT_FAMILIES if f"{f}/test" not in available]
        for name in skipped:
            logger.warning("default set %s is not in the data directory: skipped", name)
    sets = []
    for spec in specs:
        loaded = load_trace_set(spec, data_dir)
        sets.append(classify(loaded.name, spec_family(spec, _data_root(data_dir)), [spec], loaded.traces, model))
    for family in held_out_families(model, held_out, data_dir, automatic=is_default):
        sets.append(_held_out_set(family, model, data_dir))
    if not sets:
        raise ConfigError("no trace sets: none of the default sets (<family>/test of "
                          f"{', '.join(DEFAULT_FAMILIES)}) is in the data directory; give --traces SPEC")
    names = [s.name for s in sets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"trace set {repeated[0]!r} is given twice; name each set once")
    return sets, skipped


def _held_out_set(family: str, model: ModelInfo, data_dir: str | Path | None) -> ProtocolSet:
    """Every file of ``family`` (all its splits), each trace named ``<split>/<name>``."""
    specs = [s for s in available_trace_sets(data_dir) if s.split("/", 1)[0] == family and "/" in s]
    traces = [dataclasses.replace(t, name=f"{spec.split('/', 1)[1]}/{t.name}")
              for spec in specs for t in load_trace_set(spec, data_dir).traces]
    return classify(f"{family}/{HELD_OUT_SET}", family, specs, traces, model, held_out=True)


def _families(data_dir: str | Path | None) -> dict[str, list[str]]:
    families: dict[str, list[str]] = {}
    for spec in available_trace_sets(data_dir):
        families.setdefault(spec.split("/", 1)[0], []).append(spec)
    return families


def _data_root(data_dir: str | Path | None) -> Path | None:
    try:
        return resolve_data_dir(data_dir)
    except FileNotFoundError:
        return None


def _traces_root(data_dir: str | Path | None) -> str:
    root = _data_root(data_dir)
    return str(root / "traces") if root is not None else "the data directory (none configured)"


def run_generalization(model: str | Path, out_dir: str | Path, *, sets: Sequence[str] | None = None,
                       held_out: Sequence[str] = (), heuristics: Sequence[str] = DEFAULT_HEURISTICS,
                       video: str | None = None, ladder_kbps: str | Sequence[float] | None = None,
                       scalings: str | Sequence[str] = SCALINGS, preset_name: str = "pensieve",
                       scale_mean_mbps: float = DEFAULT_SCALE_MEAN_MBPS, algorithm: str = "ppo",
                       guard: bool = False, data_dir: str | Path | None = None, seed: int = 0,
                       engine: str = "local", workers: int = 1,
                       ray_address: str | None = None, criteria: AcceptanceCriteria | None = None,
                       progress: ProgressCallback | None = None, command: str | None = None,
                       overwrite: bool = False) -> GeneralizationResult:
    """Run the generalisation protocol of a trained model and write its report (see the module docstring).

    Every input is checked before anything is evaluated or written. ``out_dir`` is claimed for this run
    (:mod:`abr.common.run_folder`): another run's results there are refused unless ``overwrite``. An interrupted run
    resumes when the same call is made again (each evaluation keeps its journal in ``<out>/<scaling>``); a
    finished one reads its evaluations back and writes nothing.

    Args:
        model: the model zip (``best_model.zip`` of ``abr train``, or an export's inference copy).
        out_dir: the output folder (``unscaled/`` and ``scaled/`` evaluations, as run, and the
            ``generalization.*`` files).
        sets: trace-set specs (``"fcc/test"``, a path); ``None``: the defaults (module docstring).
        held_out: families to evaluate whole as held out (``<family>/all``), besides those found automatically
            with the default sets.
        heuristics: the agents the model is compared with (``robustmpc``, ``bola-e`` and ``optimal`` are added
            when missing).
        video: a video spec (default: ``envivio_dash3`` from the data directory). Any other title adds the
            titles check (:func:`abr.evaluation.generalization_stats.titles_check`).
        ladder_kbps: the video's bitrate ladder in kbit/s (``"300,750,..."`` or numbers), overriding the folder's
            (:func:`abr.common.inputs.load_video`); needed for a folder without one, such as the MERINA titles.
        scalings: the scalings evaluated, ``"unscaled"`` and/or ``"scaled"`` (default both); checks that need
            a skipped one are n/a.
        preset_name: the simulator preset (noise-free, since ``optimal`` plays).
        scale_mean_mbps: the time-weighted mean of every scaled set, in Mbit/s.
        algorithm: the model's algorithm, ``"ppo"`` or ``"a2c"``.
        guard: evaluate the model inside :class:`agents.guard.GuardedPolicy` (agent ``guarded:<model agent>``),
            the provenance still the model file's.
        data_dir: the data directory (else ``$ABR_DATA_DIR``).
        seed: the seed of the evaluations and bootstraps.
        engine: where sessions run (``"local"`` processes, ``"serial"``, ``"ray"``; see :mod:`abr.evaluation.engines`).
        workers: local worker processes.
        ray_address: a Ray cluster for ``engine="ray"``.
        criteria: the acceptance thresholds (default :class:`AcceptanceCriteria`).
        progress: called with (sessions done, total, description) during each evaluation.
        command: the command line, recorded in the report.
        overwrite: replace another run's results in ``out_dir`` (only the files it recorded are removed), or
            run this one again.

    Returns:
        The sets, rows, checks, evaluations and files.

    Raises:
        PolicyLoadError: the model file is missing or unusable.
        ConfigError: a bad agent, preset, scale, scaling, ladder, held-out family or output folder.
        DataDirError: a trace set or video is not found.
        VideoFormatError: the video has no ladder (give ``ladder_kbps``) or one of another level count.
        EvaluationError: a session failed (the journal keeps the finished ones).
    """
    from abr.evaluation.generalization_report import OUTPUT_FILES, write_generalization_files

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is an existing file; give a folder for the results")
    if not (isinstance(scale_mean_mbps, int | float) and 0 < scale_mean_mbps < float("inf")):
        raise ConfigError(f"--scale-mean-mbps {scale_mean_mbps} must be a number > 0")
    run_scalings = check_scalings(scalings)
    ladder = parse_ladder_kbps(ladder_kbps)
    info = load_model_info(model, algorithm)
    if guard:
        info = dataclasses.replace(info, agent=f"{GUARD_PREFIX}{info.agent}")
    agents = agent_list(info.agent, heuristics)
    sim_config, weights = preset(preset_name), QoEWeights()
    the_video = load_video(video, data_dir, ladder_kbps=ladder)
    video_ladder_kbps = [float(k) for k in bps_to_kbps(the_video.bitrates_bps)]
    protocol_sets, skipped = resolve_protocol_sets(info, sets, held_out, data_dir)
    unscaled = {s.name: TraceSetInput(s.name, None, s.evaluated) for s in protocol_sets}
    inputs = {"unscaled": unscaled}
    if "scaled" in run_scalings:
        inputs["scaled"] = {name: rescaled_trace_set(t, scale_mean_mbps) for name, t in unscaled.items()}
    inputs = {scaling: inputs[scaling] for scaling in run_scalings}
    factors = {scaling: {name: t.scale_factor for name, t in by_name.items()} for scaling, by_name in inputs.items()}
    settings = {"preset": preset_name, "video": the_video.name, "video_spec": video,
                "ladder_kbps": None if ladder is None else list(ladder), "video_ladder_kbps": video_ladder_kbps,
                "scalings": list(run_scalings), "scale_mean_mbps": scale_mean_mbps, "agents": agents, "seed": seed,
                "metric": METRIC, "algorithm": algorithm, "data_dir": None if data_dir is None else str(data_dir)}
    criteria = criteria or AcceptanceCriteria()
    run_fingerprint = _run_fingerprint(info, settings, criteria, protocol_sets, inputs, the_video)
    with RunFolder(out, kind="generalization", fingerprint=run_fingerprint, command=command,
                   may_write=OUTPUT_FILES.values(), overwrite=overwrite) as folder:
        evaluations = {}
        for scaling, by_name in inputs.items():
            metadata = {"preset": preset_name, "protocol": "abr generalization", "scaling": scaling,
                        "scale_mean_mbps": scale_mean_mbps if scaling == "scaled" else None,
                        "trace_scale_factors": factors[scaling], "video_specs": [video] if video else None,
                        "ladder_kbps": None if ladder is None else list(ladder),
                        "video_ladders_kbps": {the_video.name: video_ladder_kbps}}
            evaluations[scaling] = evaluate(
                agents, {name: list(t.traces) for name, t in by_name.items()}, the_video, sim_config, weights,
                out / scaling, seed=seed, progress=_tagged(progress, scaling), command=command, metadata=metadata,
                engine=engine, workers=workers, ray_address=ray_address, baseline=COMPARED[0], overwrite=overwrite)
            nested = read_record(out / scaling)
            if folder.finished is None and nested is not None:
                folder.will_write(*(f"{scaling}/{name}" for name in (*nested.outputs, RECORD_FILE, LOCK_FILE)))
        rows = protocol_rows(evaluations, protocol_sets, factors, info.agent, criteria, seed)
        held = {s.family: s.name for s in protocol_sets if s.held_out}
        family_sets: dict[str, list[str]] = {}
        for s in sorted(protocol_sets, key=lambda s: not s.held_out):
            family_sets.setdefault(s.family, []).append(s.name)
        checks = acceptance_checks(rows, info.agent, family_sets, held, criteria, scalings=run_scalings,
                                   video=None if video is None else the_video.name)
        if folder.finished is not None:
            files = {role: out / name for role, name in OUTPUT_FILES.items() if (out / name).exists()}
        else:
            folder.will_write(*OUTPUT_FILES.values())
            files = write_generalization_files(out, model=info, sets=protocol_sets, rows=rows, checks=checks,
                                               skipped=skipped, scale_factors=factors, settings=settings,
                                               command=command)
            folder.done(failed=sum(len(e.failures) for e in evaluations.values()))
    return GeneralizationResult(out, info, tuple(protocol_sets), tuple(rows), tuple(checks), evaluations, files,
                                factors, tuple(skipped), folder.finished is not None)


def _run_fingerprint(info: ModelInfo, settings: Mapping[str, Any], criteria: AcceptanceCriteria,
                     sets: Sequence[ProtocolSet], inputs: Mapping[str, Mapping[str, TraceSetInput]],
                     video: Video) -> str:
    """A hash of everything that determines a protocol run's results (the model file's content included)."""
    digest = hashlib.sha256(info.path.read_bytes())
    digest.update(repr((sorted(settings.items()), criteria, [(s.name, s.family, s.label, s.held_out) for s in sets]))
                  .encode())
    digest.update(video.bitrates_bps.tobytes() + video.chunk_sizes_bits.tobytes())
    for scaling, by_name in inputs.items():
        for name, trace_set in by_name.items():
            digest.update(f"{scaling}/{name}".encode())
            update_with_traces(digest, trace_set.traces)
    return digest.hexdigest()


def protocol_rows(evaluations: Mapping[str, EvaluationResult], sets: Sequence[ProtocolSet],
                  factors: Mapping[str, Mapping[str, float]], model_agent: str, criteria: AcceptanceCriteria,
                  seed: int) -> list[GeneralizationRow]:
    """The rows of every set (and the pooled in-distribution group, when all its sets played) at every scaling."""
    by_name = {s.name: s for s in sets}
    pooled = [n for n in criteria.in_distribution_sets if n in by_name]
    rows: list[GeneralizationRow] = []
    for scaling, result in evaluations.items():
        sessions = [session_row(s) for s in result.sessions]
        for s in sets:
            group = [r for r in sessions if r["trace_set"] == s.name]
            rows += group_rows(group, group=s.name, kind="set", family=s.family, label=s.label, scaling=scaling,
                               scale_factor=factors[scaling][s.name], model_agent=model_agent, seed=seed)
        if pooled and len(pooled) == len(criteria.in_distribution_sets) and len(pooled) > 1:
            name = pooled_name(pooled)
            labels = {by_name[n].label for n in pooled}
            rows += group_rows(pool(sessions, pooled, name), group=name, kind="pooled",
                               family=POOL_SEPARATOR.join(dict.fromkeys(by_name[n].family for n in pooled)),
                               label=labels.pop() if len(labels) == 1 else "mixed", scaling=scaling,
                               scale_factor=float("nan"), model_agent=model_agent, seed=seed)
    return rows


def _tagged(progress: ProgressCallback | None, scaling: str) -> ProgressCallback | None:
    if progress is None:
        return None
    report: Callable[[int, int, str], None] = progress

    def tagged(done: int, total: int, what: str) -> None:
        report(done, total, f"{scaling}: {what}")

    return tagged
