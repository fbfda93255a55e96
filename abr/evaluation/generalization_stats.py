"""Statistics and acceptance checks of the generalisation protocol (:mod:`abr.evaluation.generalization`).

Every figure is of ``qoe_excl_first`` (the QoE of chunks 2..N) per session, from the session rows the
evaluation harness wrote (``sessions.csv``), grouped by (trace set, scaling, agent):

* ``mean`` with its 95% percentile-bootstrap CI (:mod:`abr.evaluation.stats`, seeded), ``median``, ``p10`` (10th
  percentile of the sessions), ``worst5_mean`` (mean of the worst 5% of sessions, at least one), the mean
  ``rebuffer_ratio``;
* the share of the optimum, ``100 * mean / optimum mean`` (:func:`abr.evaluation.compare.percent_of_optimum`), only
  where the optimum's mean is positive (blank otherwise), and always ``diff_vs_optimum`` (mean − optimum mean);
* paired differences (:func:`abr.evaluation.compare.paired_comparisons`, same traces, bootstrap CI, win rate) against
  ``robustmpc``, ``bola-e`` and, per set, the better of the two by mean (``best``).

A pooled group (``fcc/test+norway/test``) pools the sessions of several sets, pairing by (set, trace).

The acceptance checks (:func:`acceptance_checks`) were set for the default title, ``envivio_dash3``. A run on
any other video (``--video``, e.g. a MERINA title) adds the *titles* check ``titles:<video>``: the model's mean
QoE >= robustmpc's on the pooled in-distribution sets, unscaled, with the paired 95% CI shown (per title, not
per set: one pooled figure per video). A check that needs a scaling the run skipped (``--scalings``) is n/a.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from abr.evaluation.compare import PairedRow, paired_comparisons, percent_of_optimum
from abr.evaluation.stats import bootstrap_ci, bootstrap_generator

METRIC = "qoe_excl_first"
OPTIMUM = "optimal"
#: The paired baselines: column prefix -> agent (``best``: the better of the two per set).
BASELINES: dict[str, str] = {"robustmpc": "robustmpc", "bola_e": "bola-e"}
BEST = "best"
WORST_SHARE = 0.05
LOW_PERCENTILE = 10.0
POOL_SEPARATOR = "+"

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class GeneralizationRow:
    """The figures of one agent on one trace set (or pooled group) at one scaling; QoE excl. the first chunk."""

    trace_set: str
    kind: str
    family: str
    label: str
    scaling: str
    scale_factor: float
    agent: str
    role: str
    n: int
    mean: float
    ci_low: float
    ci_high: float
    median: float
    p10: float
    worst5_mean: float
    rebuffer_ratio: float
    optimum_mean: float | None
    pct_of_optimum: float | None
    diff_vs_optimum: float | None
    vs: dict[str, PairedRow] = field(default_factory=dict)  # abr.evaluation.compare's rows, by baseline key

    def as_record(self) -> dict[str, Any]:
        """A flat dict (``vs_<baseline>_<figure>`` columns; ``None`` for blanks), as in the CSV."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "vs"}
        for prefix in (*BASELINES, BEST):
            diff = self.vs.get(prefix)
            record[f"vs_{prefix}_baseline"] = diff.baseline if diff else None
            for name in ("mean_diff", "ci_low", "ci_high", "win_rate"):
                record[f"vs_{prefix}_{name}"] = getattr(diff, name) if diff else None
        return record


#: ``generalization.csv`` columns.
ROW_COLUMNS: tuple[str, ...] = (*(f.name for f in fields(GeneralizationRow) if f.name != "vs"),
                                *(f"vs_{p}_{name}" for p in (*BASELINES, BEST)
                                  for name in ("baseline", "mean_diff", "ci_low", "ci_high", "win_rate")))


def pooled_name(set_names: Sequence[str]) -> str:
    """The name of a pooled group.

    >>> pooled_name(["fcc/test", "norway/test"])
    'fcc/test+norway/test'
    """
    return POOL_SEPARATOR.join(set_names)


def pool(rows: Sequence[Row], set_names: Sequence[str], name: str) -> list[dict[str, Any]]:
    """The session rows of ``set_names`` as one group ``name`` (traces named ``<set>:<trace>``, so they pair)."""
    wanted = set(set_names)
    return [{**r, "trace_set": name, "trace": f"{r['trace_set']}:{r['trace']}"} for r in rows
            if r["trace_set"] in wanted]


def worst_mean(values: Sequence[float], share: float = WORST_SHARE) -> float:
    """Mean of the lowest ``share`` of ``values`` (at least one value).

    >>> worst_mean([5.0, 1.0, 3.0, 2.0] * 10)
    1.0
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return float(ordered[:max(1, math.ceil(share * ordered.size))].mean())


def _paired(rows: Sequence[Row], baseline: str, group: str, seed: int) -> dict[str, PairedRow]:
    found: list[PairedRow] = paired_comparisons(rows, baseline, seed=seed, metrics=(METRIC,))
    return {r.agent: r for r in found if r.trace_set == group}


def _role(agent: str, model_agent: str) -> str:
    return "model" if agent == model_agent else "optimum" if agent == OPTIMUM else "heuristic"


def group_rows(rows: Sequence[Row], *, group: str, kind: str, family: str, label: str, scaling: str,
               scale_factor: float, model_agent: str, seed: int) -> list[GeneralizationRow]:
    """The :class:`GeneralizationRow` of every agent of one group of session rows (all with ``trace_set == group``).

    Args:
        rows: ``sessions.csv`` rows of the group.
        group: the group's name; kind, family, label, scaling, scale_factor: copied into every row.
        model_agent: the agent name of the model under test (its ``role`` is ``"model"``).
        seed: the bootstrap seed (that of the evaluation).
    """
    agents = list(dict.fromkeys(str(r["agent"]) for r in rows))
    values = {a: np.array([float(r[METRIC]) for r in rows if r["agent"] == a]) for a in agents}
    means = {a: float(v.mean()) for a, v in values.items()}
    paired = {prefix: _paired(rows, agent, group, seed) for prefix, agent in BASELINES.items() if agent in agents}
    present = [b for b in BASELINES if BASELINES[b] in agents]
    if present:
        best = max(present, key=lambda b: means[BASELINES[b]])
        paired[BEST] = paired[best]
    optimum = means.get(OPTIMUM)
    shares = {r.agent: r.pct_of_optimum for r in percent_of_optimum(rows, seed=seed, metric=METRIC)
              if r.trace_set == group}
    out = []
    for agent in agents:
        data = values[agent]
        low, high = bootstrap_ci(data, bootstrap_generator(seed))
        ratios = [float(r["rebuffer_ratio"]) for r in rows if r["agent"] == agent]
        pct = shares.get(agent) if optimum is not None and optimum > 0 else None
        out.append(GeneralizationRow(
            group, kind, family, label, scaling, scale_factor, agent, _role(agent, model_agent), int(data.size),
            means[agent], low, high, float(np.median(data)), float(np.percentile(data, LOW_PERCENTILE)),
            worst_mean(data.tolist()), float(np.mean(ratios)), optimum, pct,
            None if optimum is None else means[agent] - optimum,
            {prefix: diffs[agent] for prefix, diffs in paired.items() if agent in diffs}))
    return out


@dataclass(frozen=True, slots=True)
class AcceptanceCriteria:
    """The protocol's acceptance checks (the defaults are those of the generalisation issue).

    Attributes:
        in_distribution_sets: pooled for the in-distribution check (unscaled).
        min_gain: the model's mean over robustmpc's, as a fraction of robustmpc's, with a CI excluding zero.
        min_share_pct: the model's share of the optimum there, in percent.
        near_optimal_families: families whose unscaled set needs ``near_optimal_pct`` of the optimum.
        near_optimal_pct: percent of the optimum.
        beat_heuristics_families: families whose unscaled set needs a mean >= max(robustmpc, bola-e).
        default_video: the title the checks above were set for; a run on any other video adds the titles check
            (:func:`titles_check`).
    """

    in_distribution_sets: tuple[str, ...] = ("fcc/test", "norway/test")
    min_gain: float = 0.05
    min_share_pct: float = 85.0
    near_optimal_families: tuple[str, ...] = ("belgium4g", "lumos5g")
    near_optimal_pct: float = 99.0
    beat_heuristics_families: tuple[str, ...] = ("ucc5g", "nyu_lte")
    default_video: str = "envivio_dash3"


def _find(rows: Sequence[GeneralizationRow], trace_set: str, scaling: str, agent: str) -> GeneralizationRow | None:
    return next((r for r in rows if (r.trace_set, r.scaling, r.agent) == (trace_set, scaling, agent)), None)


def _check(name: str, criterion: str, trace_set: str | None, passed: bool | None, figures: Mapping[str, Any],
           note: str = "") -> dict[str, Any]:
    return {"name": name, "criterion": criterion, "trace_set": trace_set, "passed": passed,
            "figures": {k: _clean(v) for k, v in figures.items()}, "note": note}


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _not_evaluated(name: str, criterion: str, what: str) -> dict[str, Any]:
    return _check(name, criterion, None, None, {}, f"not evaluated: {what}")


def in_distribution_check(rows: Sequence[GeneralizationRow], model: str,
                          criteria: AcceptanceCriteria) -> dict[str, Any]:
    """Model vs robustmpc on the pooled in-distribution sets (unscaled): gain, its CI, share of the optimum."""
    group = pooled_name(criteria.in_distribution_sets)
    criterion = (f"{group} (unscaled): model - robustmpc >= {criteria.min_gain:.0%} of robustmpc's mean with a 95% "
                 f"CI excluding zero, and >= {criteria.min_share_pct:g}% of the optimum")
    mine, theirs = _find(rows, group, "unscaled", model), _find(rows, group, "unscaled", "robustmpc")
    if mine is None or theirs is None or "robustmpc" not in mine.vs:
        return _not_evaluated("in_distribution", criterion, f"{group} was not part of the run")
    diff = mine.vs["robustmpc"]
    gain = diff.mean_diff / abs(theirs.mean) if theirs.mean != 0 else math.nan
    passed = (math.isfinite(gain) and gain >= criteria.min_gain and diff.ci_low > 0
              and mine.pct_of_optimum is not None and mine.pct_of_optimum >= criteria.min_share_pct)
    return _check("in_distribution", criterion, group, bool(passed), {
        "model_mean": mine.mean, "robustmpc_mean": theirs.mean, "diff": diff.mean_diff, "ci_low": diff.ci_low,
        "ci_high": diff.ci_high, "gain_pct": 100.0 * gain, "pct_of_optimum": mine.pct_of_optimum,
        "optimum_mean": mine.optimum_mean})


def titles_check(rows: Sequence[GeneralizationRow], model: str, video: str,
                 criteria: AcceptanceCriteria) -> dict[str, Any]:
    """Another title than the default: the model's mean >= robustmpc's on the pooled in-distribution sets (unscaled).

    The figures hold both means and the paired difference (model - robustmpc, same traces) with its 95% CI.
    """
    group = pooled_name(criteria.in_distribution_sets)
    name = f"titles:{video}"
    criterion = f"{group} (unscaled), video {video}: model mean >= robustmpc mean (paired 95% CI shown)"
    mine, theirs = _find(rows, group, "unscaled", model), _find(rows, group, "unscaled", "robustmpc")
    if mine is None or theirs is None or "robustmpc" not in mine.vs:
        return _not_evaluated(name, criterion, f"{group} was not part of the run")
    diff = mine.vs["robustmpc"]
    return _check(name, criterion, group, mine.mean >= theirs.mean, {
        "video": video, "n": diff.n, "model_mean": mine.mean, "robustmpc_mean": theirs.mean,
        "diff": diff.mean_diff, "ci_low": diff.ci_low, "ci_high": diff.ci_high, "win_rate": diff.win_rate,
        "pct_of_optimum": mine.pct_of_optimum, "optimum_mean": mine.optimum_mean})


def held_out_check(rows: Sequence[GeneralizationRow], model: str, family: str, trace_set: str,
                   scalings: Sequence[str] = ("unscaled", "scaled")) -> dict[str, Any]:
    """A held-out family: mean >= max(robustmpc, bola-e) and p10 >= robustmpc's, scaled and unscaled.

    n/a (with the figures of the scaling that ran) when one of the two scalings is not in ``scalings``.
    """
    criterion = (f"{trace_set}: model mean >= max(robustmpc, bola-e) and model p10 >= robustmpc p10, "
                 "scaled and unscaled")
    figures: dict[str, Any] = {}
    passed = True
    skipped = [s for s in ("unscaled", "scaled") if s not in scalings]
    for scaling in ("unscaled", "scaled"):
        if scaling in skipped:
            continue
        mine, mpc, bola = (_find(rows, trace_set, scaling, a) for a in (model, "robustmpc", "bola-e"))
        if mine is None or mpc is None or bola is None:
            return _not_evaluated(f"held_out:{family}", criterion, f"{trace_set} ({scaling}) was not part of the run")
        best = max(mpc.mean, bola.mean)
        figures[scaling] = {"model_mean": mine.mean, "robustmpc_mean": mpc.mean, "bola_e_mean": bola.mean,
                            "model_p10": mine.p10, "robustmpc_p10": mpc.p10}
        passed = passed and mine.mean >= best and mine.p10 >= mpc.p10
    if skipped:
        return _check(f"held_out:{family}", criterion, trace_set, None, figures, _skipped_note(skipped, scalings))
    return _check(f"held_out:{family}", criterion, trace_set, passed, figures)


def near_optimal_check(rows: Sequence[GeneralizationRow], model: str, family: str, trace_set: str | None,
                       pct: float) -> dict[str, Any]:
    """A family's unscaled set: the model's share of the optimum >= ``pct`` (n/a when the optimum's mean <= 0)."""
    criterion = f"{family} (unscaled): model >= {pct:g}% of the optimum"
    mine = _find(rows, trace_set, "unscaled", model) if trace_set else None
    if mine is None:
        return _not_evaluated(f"near_optimal:{family}", criterion, f"no set of family {family!r} in the run")
    figures = {"model_mean": mine.mean, "optimum_mean": mine.optimum_mean, "pct_of_optimum": mine.pct_of_optimum}
    if mine.pct_of_optimum is None:
        return _check(f"near_optimal:{family}", criterion, trace_set, None, figures,
                      "no share: the optimum's mean QoE is not positive")
    return _check(f"near_optimal:{family}", criterion, trace_set, mine.pct_of_optimum >= pct, figures)


def beats_heuristics_check(rows: Sequence[GeneralizationRow], model: str, family: str,
                           trace_set: str | None) -> dict[str, Any]:
    """A family's unscaled set: the model's mean >= max(robustmpc, bola-e)."""
    criterion = f"{family} (unscaled): model mean >= max(robustmpc, bola-e)"
    found = [_find(rows, trace_set, "unscaled", a) if trace_set else None for a in (model, "robustmpc", "bola-e")]
    mine, mpc, bola = found
    if mine is None or mpc is None or bola is None:
        return _not_evaluated(f"beats_heuristics:{family}", criterion, f"no set of family {family!r} in the run")
    return _check(f"beats_heuristics:{family}", criterion, trace_set, mine.mean >= max(mpc.mean, bola.mean),
                  {"model_mean": mine.mean, "robustmpc_mean": mpc.mean, "bola_e_mean": bola.mean})


def _skipped_note(skipped: Sequence[str], scalings: Sequence[str]) -> str:
    """The note of a check that needs a skipped scaling.

    >>> _skipped_note(["scaled"], ["unscaled"])
    'not evaluated: the scaled evaluation was skipped (--scalings unscaled)'
    """
    return f"not evaluated: the {' and '.join(skipped)} evaluation was skipped (--scalings {','.join(scalings)})"


def _unscaled_only(check: dict[str, Any], scalings: Sequence[str]) -> dict[str, Any]:
    """``check`` (of the unscaled sets), or n/a when the unscaled evaluation was skipped."""
    if "unscaled" in scalings:
        return check
    return _check(check["name"], check["criterion"], check["trace_set"], None, {},
                  _skipped_note(["unscaled"], scalings))


def acceptance_checks(rows: Sequence[GeneralizationRow], model: str, family_sets: Mapping[str, Sequence[str]],
                      held_out: Mapping[str, str], criteria: AcceptanceCriteria | None = None, *,
                      scalings: Sequence[str] = ("unscaled", "scaled"), video: str | None = None,
                      ) -> list[dict[str, Any]]:
    """Every acceptance check, each with its figures and ``passed`` (``None``: not evaluated or not applicable).

    Args:
        rows: the protocol's rows.
        model: the model's agent name.
        family_sets: family -> the names of its evaluated sets, held-out ``<family>/all`` sets first.
        held_out: held-out family -> its ``<family>/all`` set.
        criteria: the thresholds (default :class:`AcceptanceCriteria`).
        scalings: the scalings evaluated; a check that needs another one is n/a.
        video: the run's video name; ``None`` (the default video) or ``criteria.default_video``: no titles check,
            any other name: :func:`titles_check` is added, last.
    """
    criteria = criteria or AcceptanceCriteria()
    checks = [_unscaled_only(in_distribution_check(rows, model, criteria), scalings)]
    checks += [held_out_check(rows, model, family, name, scalings) for family, name in held_out.items()]
    first = {family: names[0] for family, names in family_sets.items() if names}
    checks += [_unscaled_only(near_optimal_check(rows, model, f, first.get(f), criteria.near_optimal_pct), scalings)
               for f in criteria.near_optimal_families]
    checks += [_unscaled_only(beats_heuristics_check(rows, model, f, first.get(f)), scalings)
               for f in criteria.beat_heuristics_families]
    if video is not None and video != criteria.default_video:
        checks.append(_unscaled_only(titles_check(rows, model, video, criteria), scalings))
    return checks


def clean_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with non-finite floats as ``None`` (JSON has no NaN)."""
    return {k: _clean(v) for k, v in record.items()}


__all__ = ["ROW_COLUMNS", "AcceptanceCriteria", "GeneralizationRow", "acceptance_checks",
           "clean_record", "group_rows", "pool", "pooled_name", "titles_check", "worst_mean"]
