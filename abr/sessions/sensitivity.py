"""How an A/B conclusion moves with the parameters no publication gives: each one at the low and high end of
its plausible range (the others at their defaults), next to the run with every default.

The parameters (:data:`SENSITIVITY`) are the unpublished parts of the return model
(:data:`abr.sessions.retention.UNPUBLISHED`) and the sizes of the confounders
(:class:`~abr.sessions.engagement.Confounding`, whose directions are published and sizes are not). Every run
is the same A/B run (same seed, viewers, traces and random numbers) with one value changed, so the rows differ
by the parameter alone. Each row gives the paired ``b - a`` difference of watch hours per viewer (and relative
to arm A), churned share and active days, with the paired bootstrap CIs of :mod:`abr.sessions.outcomes`.

Writes ``sensitivity.csv``, ``sensitivity.md`` and ``sensitivity.png`` (:func:`write_sensitivity`). Each finished
run's A/B summary goes into a journal (``sensitivity.journal.json``) as soon as it ends, so that an interrupted
analysis (thirteen population runs, an hour or more at 5,000 viewers x 28 days) resumes where it stopped: the
runs it finished are read back, not run again.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from abr.common.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from abr.common.plotting import save_figure
from abr.common.tables import markdown_table
from abr.errors import ConfigError
from abr.sessions.outcomes import retention_summary
from abr.sessions.retention import UNPUBLISHED
from abr.sessions.simulate import SessionsConfig

#: (part of the config, parameter, low, high): the range each unpublished parameter is tried across.
SENSITIVITY: tuple[tuple[str, str, float, float], ...] = (
    *(("returns", name, low, high) for name, low, _, high in UNPUBLISHED),
    ("confounding", "slow_grace_shift_s", 0.0, 3.0),
    ("confounding", "slow_intent_shift", 0.0, 0.3),
    ("confounding", "complexity_intent_gain", 0.0, 1.0),
)

SENSITIVITY_COLUMNS: tuple[str, ...] = (
    "parameter", "value", "is_default", "watch_hours_a", "watch_hours_difference", "watch_hours_ci_low",
    "watch_hours_ci_high", "watch_hours_relative", "churned_a", "churned_difference", "churned_ci_low",
    "churned_ci_high", "active_days_difference", "active_days_ci_low", "active_days_ci_high",
)

RunFunction = Callable[[SessionsConfig], Any]
#: The journal of finished runs, in the output folder.
JOURNAL_FILE = "sensitivity.journal.json"


def variants(config: SessionsConfig) -> list[tuple[str, float, SessionsConfig]]:
    """``(parameter, value, config)`` of every run: the defaults (``parameter`` ``"default"``), then each
    parameter at its low and high value."""
    out: list[tuple[str, float, SessionsConfig]] = [("default", math.nan, config)]
    for part, name, low, high in SENSITIVITY:
        for value in (low, high):
            current = getattr(config, part)
            typed = type(getattr(current, name))(value)
            out.append((f"{part}.{name}", float(typed),
                        dataclasses.replace(config, **{part: dataclasses.replace(current, **{name: typed})})))
    return out


def run_sensitivity(config: SessionsConfig, run: RunFunction, *,
                    progress: Callable[[int, int, str], None] | None = None,
                    finished: dict[str, dict[str, Any]] | None = None,
                    record: Callable[[str, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every variant of ``config`` with ``run`` (``config -> SimulationResult``) and return the table rows.

    ``finished`` holds the A/B summaries of variants run before (by :func:`variant_key`), which are not run again;
    ``record(key, summary)`` is called after each variant that is.

    Raises:
        ConfigError: ``config`` does not have two arms.
    """
    if len(config.agents) != 2:
        raise ConfigError(f"agents={list(config.agents)}: a sensitivity analysis compares two policies (an A/B run)")
    rows = []
    todo = variants(config)
    defaults = {f"{part}.{name}": float(getattr(getattr(config, part), name)) for part, name, _, _ in SENSITIVITY}
    for i, (parameter, value, variant) in enumerate(todo):
        key = variant_key(parameter, value)
        ab = (finished or {}).get(key)
        if ab is None:
            ab = retention_summary(run(variant))["ab"]
            if record is not None:
                record(key, ab)
        if parameter == "default":
            rows += [_row(p, v, True, ab) for p, v in defaults.items()]
        else:
            rows.append(_row(parameter, value, False, ab))
        if progress is not None:
            progress(i + 1, len(todo), f"{parameter} {'' if math.isnan(value) else value}".strip())
    return sorted(rows, key=lambda r: (r["parameter"], r["value"]))


def variant_key(parameter: str, value: float) -> str:
    """A variant's name in the journal.

    >>> variant_key("default", math.nan), variant_key("returns.churn_idle_days", 7.0)
    ('default', 'returns.churn_idle_days=7.0')
    """
    return parameter if parameter == "default" else f"{parameter}={value!r}"


def _row(parameter: str, value: float, is_default: bool, ab: dict[str, Any]) -> dict[str, Any]:
    w, c, d = ab["watch_hours"], ab["churned"], ab["active_days"]
    return {"parameter": parameter, "value": value, "is_default": is_default, "watch_hours_a": w["a"],
            "watch_hours_difference": w["difference"], "watch_hours_ci_low": w["ci95"][0],
            "watch_hours_ci_high": w["ci95"][1], "watch_hours_relative": w["relative"], "churned_a": c["a"],
            "churned_difference": c["difference"], "churned_ci_low": c["ci95"][0], "churned_ci_high": c["ci95"][1],
            "active_days_difference": d["difference"], "active_days_ci_low": d["ci95"][0],
            "active_days_ci_high": d["ci95"][1]}


def write_sensitivity(out: Path, rows: list[dict[str, Any]], config: SessionsConfig, command: str = "", *,
                      plots: bool = True) -> None:
    """Write ``sensitivity.csv``, ``sensitivity.md`` and (with ``plots``) ``sensitivity.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out / "sensitivity.csv", SENSITIVITY_COLUMNS, [[r[c] for c in SENSITIVITY_COLUMNS] for r in rows])
    a, b = config.agents
    lines = [f"# Sensitivity of the A/B difference ({b} - {a}) to the unpublished parameters", "",
             f"`{command}`", "",
             f"{config.users} viewers x {config.days} days, seed {config.seed}; each parameter at the ends of its "
             "plausible range, the others at their defaults; paired differences by viewer with 95% bootstrap CIs.",
             "", *markdown_table(
                 ("parameter", "value", "watch h/viewer", "(95% CI)", "relative", "churned share", "(95% CI)",
                  "active days", "(95% CI)"),
                 [(r["parameter"], f"{r['value']:g}" + (" (default)" if r["is_default"] else ""),
                   f"{r['watch_hours_difference']:+.4f}",
                   f"{r['watch_hours_ci_low']:+.4f} to {r['watch_hours_ci_high']:+.4f}",
                   f"{r['watch_hours_relative']:+.2%}", f"{r['churned_difference']:+.4f}",
                   f"{r['churned_ci_low']:+.4f} to {r['churned_ci_high']:+.4f}", f"{r['active_days_difference']:+.3f}",
                   f"{r['active_days_ci_low']:+.3f} to {r['active_days_ci_high']:+.3f}") for r in rows]), ""]
    write_text_atomic(out / "sensitivity.md", "\n".join(lines))
    if plots:
        save_figure(out / "sensitivity.png", lambda fig: _draw(fig, rows, a, b), figsize_in=(11.0, 4.5), dpi=100)


def _draw(fig: Any, rows: list[dict[str, Any]], a: str, b: str) -> None:
    names = sorted({r["parameter"] for r in rows})
    panels = (("watch_hours", "watch hours per viewer"), ("churned", "churned share"))
    for k, (key, label) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        for i, name in enumerate(names):
            mine = sorted((r for r in rows if r["parameter"] == name), key=lambda r: r["value"])
            for j, r in enumerate(mine):
                y = i + (j - 1) * 0.25
                mid = r[f"{key}_difference"]
                ax.errorbar([mid], [y], xerr=[[mid - r[f"{key}_ci_low"]], [r[f"{key}_ci_high"] - mid]],
                            fmt="o", color=("C0", "k", "C3")[min(j, 2)], capsize=2,
                            label=("low", "default", "high")[min(j, 2)] if i == 0 else None)
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names if k == 0 else [""] * len(names), fontsize=8)
        ax.set_xlabel(f"{b} - {a}: {label}")
        if k == 0:
            ax.legend(fontsize=8)
    fig.tight_layout()


def sensitivity_analysis(config: SessionsConfig, out: Path | None, *, command: str = "", plots: bool = True,
                         progress: Callable[[int, int, str], None] | None = None,
                         **run_options: Any) -> list[dict[str, Any]]:
    """Run the sensitivity analysis of an A/B ``config`` (``1 + 2 x`` :data:`SENSITIVITY` population runs) and,
    with ``out``, write its files; ``run_options`` go to :func:`abr.sessions.api.run_population` (catalog,
    networks, video, data_dir, engine ...). With ``out``, each finished run is kept in its journal
    (:data:`JOURNAL_FILE`) and the runs a journal already holds are read back (the caller makes sure that the
    folder holds this same analysis: ``abr sessions sensitivity`` claims it by its settings' fingerprint).

    Raises:
        ConfigError: ``config`` does not have two arms, or a run's input is unusable.
    """
    from abr.sessions.api import run_population

    journal = out / JOURNAL_FILE if out is not None else None
    finished: dict[str, dict[str, Any]] = {}
    if journal is not None and journal.is_file():
        finished = json.loads(journal.read_text(encoding="utf-8"))["runs"]

    def record(key: str, ab: dict[str, Any]) -> None:
        if journal is not None:
            finished[key] = ab
            journal.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(journal, {"runs": finished})

    rows = run_sensitivity(config, lambda c: run_population(c, None, plots=False, **run_options).result,
                           progress=progress, finished=dict(finished), record=record)
    if out is not None:
        write_sensitivity(out, rows, config, command, plots=plots)
    return rows
