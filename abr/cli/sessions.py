"""``abr sessions``: simulate a viewer population (``simulate``), the sensitivity of an A/B run to the unpublished
parameters (``sensitivity``) and check the recommender (``recommender``)."""

from __future__ import annotations

import hashlib
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from abr.cli.common import (
    SEED_MAX,
    DataDirOption,
    Engine,
    LadderOption,
    OverwriteOption,
    progress_bar,
    reported_errors,
)
from abr.errors import ConfigError
from traces.datadir import configured_data_dir

#: Every file ``abr sessions simulate`` may write into --out (abr.sessions.outputs, abr.sessions.plots).
SESSIONS_OUTPUTS: tuple[str, ...] = (
    "sessions.csv", "users.csv", "policies.csv", "recommender.csv", "validation.json", "retention.csv",
    "outcomes.json", "power.csv", "ab.json", "config.json", "report.md", "retention.png", "watch_hours.png",
    "engagement.png", "recommender.png",
)

sessions_app = typer.Typer(help="Viewing sessions: recommender, population on shared links, engagement.",
                           no_args_is_help=True)


@sessions_app.command("simulate")
def simulate_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    agent: Annotated[list[str] | None, typer.Option(
        "--agent", "-a", help="ABR policy; give two for an A/B run on the same population and seeds.")] = None,
    users: Annotated[int, typer.Option("--users", help="Number of viewers (>= 1).")] = 1000,
    days: Annotated[int, typer.Option("--days", help="Days to simulate (>= 1).")] = 7,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX, help="Seed of every random choice.")] = 0,
    sessions_per_day: Annotated[float, typer.Option(
        "--sessions-per-day", help="Mean views per viewer per day.")] = 0.8,
    horizon_min: Annotated[float, typer.Option(
        "--horizon-min", help="Minutes of each view played on the link (the window's QoE stands for the view).")
    ] = 10.0,
    retrain_days: Annotated[int, typer.Option("--retrain-days", help="Retrain the recommender every N days.")] = 1,
    catalog: Annotated[str, typer.Option(
        "--catalog", help="Titles: movielens (data dir), synthetic, or auto (MovieLens when present).")] = "auto",
    viewers: Annotated[str, typer.Option(
        "--viewers", help="clones of the catalog's raters (with replacement), or drawn: each rater once, then "
        "viewers drawn from the fitted taste model with histories of their own (abr.sessions.population).")
    ] = "clones",
    network: Annotated[list[str] | None, typer.Option(
        "--network", help="Trace set of a network profile; repeatable (default: fcc/test, norway/test, "
        "belgium4g/test, or synthetic traces without a data dir).")] = None,
    video: Annotated[str | None, typer.Option("--video", help="Base chunk-size table (default: envivio_dash3).")
                     ] = None,
    ladder_kbps: LadderOption = None,
    engine: Annotated[Engine, typer.Option(
        "--engine", help="Where household-days are played: local processes, this process (serial) or a Ray "
        "cluster; every engine writes the same tables.")] = Engine.local,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-j", min=1, help="Worker processes (default: the CPUs available).")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster address for --engine ray (default: start a local Ray).")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the PNG plots.")] = True,
    confounding: Annotated[bool, typer.Option(
        "--confounding/--no-confounding", help="Slow-connection viewers and complex titles differ in patience and "
        "intent (abr.sessions.engagement.Confounding).")] = True,
    return_model: Annotated[bool, typer.Option(
        "--return-model/--no-return-model", help="Return rates answer experience and idle viewers churn "
        "(abr.sessions.retention); off: every viewer keeps their rate.")] = True,
    churn_idle_days: Annotated[int, typer.Option(
        "--churn-idle-days", min=1, help="Days without a view after which a viewer has churned.")] = 14,
    overwrite: OverwriteOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Run the population: recommendations, choices, shared-link playback, engagement, return and churn; write the
    reports.

    --out is claimed for the run (abr.common.run_folder): another run's results there are refused unless --overwrite,
    and the same command on a finished folder has nothing to do.
    """
    from abr.common.run_folder import RunFolder
    from abr.evaluation.engines import default_workers
    from abr.sessions import SessionsConfig, run_population
    from abr.sessions.engagement import Confounding
    from abr.sessions.retention import ReturnModel

    with reported_errors():
        agents = tuple(agent or ["bba"])
        if len(agents) > 2:
            raise ConfigError(f"--agent given {len(agents)} times: give one policy, or two for an A/B run")
        config = SessionsConfig(users=users, days=days, agents=agents, seed=seed, sessions_per_day=sessions_per_day,
                                horizon_s=horizon_min * 60.0, retrain_days=retrain_days,
                                workers=workers or default_workers(),
                                returns=ReturnModel(churn_idle_days=churn_idle_days, is_enabled=return_model),
                                confounding=Confounding(is_enabled=confounding))
        args = ["abr", "sessions", "simulate", "--out", str(out), "--users", str(users), "--days", str(days),
                "--seed", str(seed), "--sessions-per-day", str(sessions_per_day), "--horizon-min", str(horizon_min),
                "--retrain-days", str(retrain_days), "--catalog", catalog, "--churn-idle-days", str(churn_idle_days),
                "--confounding" if confounding else "--no-confounding",
                "--return-model" if return_model else "--no-return-model"]
        if viewers != "clones":
            args += ["--viewers", viewers]
        for name in agents:
            args += ["--agent", name]
        for spec in network or []:
            args += ["--network", spec]
        if video:
            args += ["--video", video]
        if ladder_kbps:
            args += ["--ladder-kbps", ladder_kbps]
        started = time.perf_counter()
        # Everything that determines the results: the settings (the command without --out, --engine, --workers and
        # --ray-address, which change nothing) and the data directory they were read from.
        settings = [a for a in args if a != str(out)] + ["--plots" if plots else "--no-plots",
                                                         str(configured_data_dir(data_dir))]
        fingerprint = hashlib.sha256(repr(settings).encode()).hexdigest()
        with RunFolder(out, kind="sessions simulate", fingerprint=fingerprint, command=shlex.join(args),
                       may_write=SESSIONS_OUTPUTS, overwrite=overwrite) as folder:
            if folder.finished is not None:
                Console().print(f"nothing to do: {out} already holds the results of this run (--overwrite runs it "
                                "again)")
                return
            folder.will_write(*SESSIONS_OUTPUTS)
            with progress_bar("simulating days") as progress:
                run = run_population(config, out, catalog=catalog, networks=tuple(network) if network else None,
                                     video=video, ladder_kbps=ladder_kbps, data_dir=data_dir,
                                     command=shlex.join(args), plots=plots,
                                     progress=progress, engine=engine.value, ray_address=ray_address,
                                     viewers=viewers)
            folder.done()
        elapsed_s = time.perf_counter() - started
        console = Console() if Console().is_terminal else Console(width=160)
        table = Table(title=f"Viewing sessions: {users} users x {days} days")
        for header in ("policy", "views", "watch h", "startup abandon", "rebuffer ratio", "kbps", "churned"):
            table.add_column(header, justify="left" if header == "policy" else "right")
        for p in run.summary["policies"]:
            table.add_row(p["agent"], str(p["views"]), f"{p['watch_hours']:.1f}",
                          f"{p['startup_abandonment_rate']:.3f}", f"{p['mean_rebuffer_ratio']:.4f}",
                          f"{p['mean_bitrate_kbps']:.0f}", f"{p['churned_share']:.3f}")
        console.print(table)
        if "ab" in run.summary:
            ab = run.summary["ab"]
            console.print(f"A/B {ab['b']} - {ab['a']}: {ab['delta_watch_hours_per_user']:+.4f} watch h/user "
                          f"(95% CI {ab['delta_ci95'][0]:+.4f} to {ab['delta_ci95'][1]:+.4f})")
        console.print(f"results written to {out}; elapsed {elapsed_s:.1f} s "
                      f"(simulation {run.result.elapsed_s:.1f} s, {len(run.result.views)} views)")


@sessions_app.command("sensitivity")
def sensitivity_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    agent: Annotated[list[str], typer.Option("--agent", "-a", help="The two ABR policies of the A/B run.")],
    users: Annotated[int, typer.Option("--users", help="Number of viewers (>= 1).")] = 5000,
    days: Annotated[int, typer.Option("--days", help="Days to simulate (>= 1).")] = 28,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX, help="Seed of every random choice.")] = 0,
    sessions_per_day: Annotated[float, typer.Option(
        "--sessions-per-day", help="Mean views per viewer per day.")] = 0.8,
    horizon_min: Annotated[float, typer.Option(
        "--horizon-min", help="Minutes of each view played on the link.")] = 10.0,
    catalog: Annotated[str, typer.Option(
        "--catalog", help="Titles: movielens (data dir), synthetic, or auto (MovieLens when present).")] = "auto",
    network: Annotated[list[str] | None, typer.Option(
        "--network", help="Trace set of a network profile; repeatable (default as for simulate).")] = None,
    viewers: Annotated[str, typer.Option(
        "--viewers", help="clones of the catalog's raters, or drawn from the fitted taste model (as for "
        "simulate).")] = "clones",
    engine: Annotated[Engine, typer.Option("--engine", help="Where household-days are played.")] = Engine.local,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-j", min=1, help="Worker processes (default: the CPUs available).")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw sensitivity.png.")] = True,
    overwrite: OverwriteOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Run an A/B run once with every default and once with each unpublished parameter at either end of its range;
    write sensitivity.csv, sensitivity.md and sensitivity.png (abr.sessions.sensitivity). An interrupted analysis
    resumes when the same command is run again (its finished runs are kept in sensitivity.journal.json)."""
    from abr.common.run_folder import RunFolder
    from abr.evaluation.engines import default_workers
    from abr.sessions import SessionsConfig
    from abr.sessions.sensitivity import JOURNAL_FILE, sensitivity_analysis

    with reported_errors():
        agents = tuple(agent)
        if len(agents) != 2:
            raise ConfigError(f"--agent given {len(agents)} times: a sensitivity analysis compares two policies")
        config = SessionsConfig(users=users, days=days, agents=agents, seed=seed, sessions_per_day=sessions_per_day,
                                horizon_s=horizon_min * 60.0, workers=workers or default_workers())
        args = ["abr", "sessions", "sensitivity", "--out", str(out), "--users", str(users), "--days", str(days),
                "--seed", str(seed), "--sessions-per-day", str(sessions_per_day), "--horizon-min", str(horizon_min),
                "--catalog", catalog, "--agent", agents[0], "--agent", agents[1]]
        for spec in network or []:
            args += ["--network", spec]
        if viewers != "clones":
            args += ["--viewers", viewers]
        settings = [a for a in args if a != str(out)] + ["--plots" if plots else "--no-plots",
                                                         str(configured_data_dir(data_dir))]
        files = ("sensitivity.csv", "sensitivity.md", "sensitivity.png", JOURNAL_FILE)
        fingerprint = hashlib.sha256(repr(settings).encode()).hexdigest()
        with RunFolder(out, kind="sessions sensitivity", fingerprint=fingerprint, command=shlex.join(args),
                       may_write=files, overwrite=overwrite) as folder:
            if folder.finished is not None:
                Console().print(f"nothing to do: {out} already holds the results of this run (--overwrite runs it "
                                "again)")
                return
            folder.will_write(*files)
            with progress_bar("sensitivity runs") as progress:
                rows = sensitivity_analysis(config, out, command=shlex.join(args), plots=plots, progress=progress,
                                            catalog=catalog, networks=tuple(network) if network else None,
                                            data_dir=data_dir, engine=engine.value, viewers=viewers)
            folder.done()
        table = Table(title=f"A/B {agents[1]} - {agents[0]}: sensitivity ({users} viewers x {days} days)")
        for header in ("parameter", "value", "watch h/viewer", "relative", "churned share"):
            table.add_column(header, justify="left" if header == "parameter" else "right")
        for r in rows:
            table.add_row(r["parameter"], f"{r['value']:g}" + (" *" if r["is_default"] else ""),
                          f"{r['watch_hours_difference']:+.4f}", f"{r['watch_hours_relative']:+.2%}",
                          f"{r['churned_difference']:+.4f}")
        console = Console() if Console().is_terminal else Console(width=160)
        console.print(table)
        console.print(f"results written to {out} (* the default)")


@sessions_app.command("recommender")
def recommender_command(
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX, help="Seed of the ALS initialisation.")] = 0,
    data_dir: DataDirOption = None,
) -> None:
    """ALS against popularity on a time-based hold-out of MovieLens (precision, recall, NDCG at 10)."""
    from abr.sessions import offline_evaluation

    with reported_errors():
        metrics = offline_evaluation(data_dir, seed=seed)
        table = Table(title="MovieLens time hold-out (each user's last 20%), k = 10")
        for header in ("model", "precision@10", "recall@10", "NDCG@10", "users"):
            table.add_column(header)
        for name, m in metrics.items():
            table.add_row(name, f"{m.precision:.4f}", f"{m.recall:.4f}", f"{m.ndcg:.4f}", str(m.n_users))
        Console().print(table)
