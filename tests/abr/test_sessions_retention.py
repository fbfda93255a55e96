"""Return and churn: the failed-start effect has the stated size, the churn rule its stated day, and the
outcome statistics (Kaplan-Meier, paired differences, power, ROC AUC) their textbook values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from abr.sessions import SessionsConfig, run_population
from abr.sessions.outcomes import arm_outcomes, retention_summary, survival_curves
from abr.sessions.retention import (
    FAILED_VISIT_RETURN_DROP,
    DayExperience,
    ReturnModel,
    ReturnState,
    ViewerOutcomes,
    failed_start_log_rate,
    kaplan_meier,
    paired_outcomes,
    poisson_count,
    power_table,
    roc_auc,
    viewers_needed,
    weekly_return_probability,
)

Z_95, Z_80 = 1.959964, 0.841621


def _experience(n: int, failed: dict[int, int]) -> DayExperience:
    """One day where the users in ``failed`` had that many failed starts and one clean started view each."""
    users, is_failed = [], []
    for u, k in failed.items():
        users += [u] * (k + 1)
        is_failed += [True] * k + [False]
    return DayExperience.collect(n, users, is_failed, [0.0] * len(users), [0.5] * len(users), [0.5] * len(users))


def test_a_failed_start_lowers_the_weekly_return_by_the_stated_points() -> None:
    """Monte Carlo through the simulator's own state and count draws: viewers with Gamma(2) activities around
    0.8 views a day; those with views on day 0 have one of them fail (or none) and return within 7 days less
    often by 2.32 percentage points (Krishnan & Sitaraman, read as points), counted per day-0 view."""
    n = 100_000
    rng = np.random.default_rng(5)
    activity = rng.gamma(2.0, 0.4, n)
    uniforms = rng.random((8, n))
    day0 = np.array([poisson_count(uniforms[0, u], activity[u]) for u in range(n)])
    seen = np.flatnonzero(day0 > 0)
    returned = {}
    for arm, failures in (("clean", 0), ("failed", 1)):
        state = ReturnState(ReturnModel(), n)
        state.record(0, DayExperience.collect(n, np.repeat(seen, day0[seen]), np.zeros(day0.sum(), dtype=bool),
                                              np.zeros(day0.sum()), np.ones(day0.sum()), np.ones(day0.sum())))
        if failures:
            state.failed[0, seen] = 1  # one of each viewer's day-0 views failed
        back = np.zeros(n, dtype=bool)
        for day in range(1, 8):
            rates = state.rates(day, activity)
            counts = np.zeros(n, dtype=int)
            counts[seen] = [poisson_count(uniforms[day, u], rates[u]) for u in seen]
            back |= counts > 0
            state.record(day, DayExperience.collect(n, [], [], [], [], []))
        returned[arm] = float(np.average(back[seen], weights=day0[seen]))
    drop = returned["clean"] - returned["failed"]
    assert returned["clean"] == pytest.approx(weekly_return_probability(), abs=0.002)
    assert drop == pytest.approx(FAILED_VISIT_RETURN_DROP, abs=0.0015), drop


def test_the_published_drop_read_as_points_or_relative() -> None:
    points, relative = failed_start_log_rate(), failed_start_log_rate(relative=True)
    assert ReturnModel().per_failed_start == points
    m = math.exp(-points)
    assert weekly_return_probability() - weekly_return_probability(m) == pytest.approx(0.0232, abs=1e-12)
    p = weekly_return_probability()
    assert weekly_return_probability() - weekly_return_probability(math.exp(-relative)) == pytest.approx(0.0232 * p)
    assert 0.9 < p < 1.0 and relative < points  # nearly every viewer returns within a week: the readings nearly agree


def test_the_rate_multiplier_and_its_week_of_memory() -> None:
    model = ReturnModel(per_failed_start=0.4, per_rebuffer_pct=0.05, per_unwatched_share=0.5)
    state = ReturnState(model, 3)
    # User 0: two failed starts; user 1: started views with 2% rebuffering that cut a 0.8 intent to 0.7.
    state.record(0, DayExperience.collect(3, [0, 0, 1, 1], [True, True, False, False], [0.0, 0.0, 0.02, 0.02],
                                          [0.8] * 4, [0.0, 0.0, 0.7, 0.7]))
    m = state.multiplier()
    assert m[0] == pytest.approx(math.exp(-0.8))
    assert m[1] == pytest.approx(math.exp(-(0.05 * 2.0 + 0.5 * 0.125)))
    assert m[2] == 1.0
    for day in range(1, 7):
        state.record(day, DayExperience.collect(3, [], [], [], [], []))
        assert state.multiplier()[0] == pytest.approx(math.exp(-0.8))  # remembered for the days 1..7 after
    state.record(7, DayExperience.collect(3, [], [], [], [], []))
    assert np.all(state.multiplier() == 1.0)  # day 0 left the memory: day 8's rate is whole again
    assert np.all(ReturnState(ReturnModel(is_enabled=False), 3).multiplier() == 1.0)


def test_the_churn_rule_fires_on_the_stated_day_and_is_absorbing() -> None:
    state = ReturnState(ReturnModel(churn_idle_days=14), 2)
    activity = np.array([1.0, 1.0])
    state.record(0, _experience(2, {0: 0}))  # user 0 views on day 0, user 1 never
    for day in range(1, 14):
        assert np.all(state.rates(day, activity) > 0), day
        state.record(day, DayExperience.collect(2, [], [], [], [], []))
    assert state.rates(14, activity).tolist() == [1.0, 0.0]  # user 1: days 0..13 idle, churned on day 14
    assert state.churn_day.tolist() == [-1, 14]
    state.record(14, DayExperience.collect(2, [1], [False], [0.0], [0.5], [0.5]))  # a view changes nothing
    assert state.rates(15, activity).tolist() == [0.0, 0.0]  # user 0: days 1..14 idle
    assert state.churn_day.tolist() == [15, 14]
    off = ReturnState(ReturnModel(is_enabled=False), 1)
    assert off.rates(100, np.array([0.7])).tolist() == [0.7] and off.churn_day.tolist() == [-1]


def test_each_sensitivity_run_changes_one_parameter() -> None:
    import dataclasses

    from abr.sessions.sensitivity import SENSITIVITY, variants

    base = SessionsConfig(users=10, days=3, agents=("bba", "rb"))
    runs = variants(base)
    assert len(runs) == 1 + 2 * len(SENSITIVITY) and runs[0][2] == base
    for parameter, value, config in runs[1:]:
        part, name = parameter.split(".")
        assert getattr(getattr(config, part), name) == value
        assert dataclasses.replace(config, **{part: getattr(base, part)}) == base  # nothing else changed
        assert dataclasses.replace(getattr(config, part), **{name: getattr(getattr(base, part), name)}) \
            == getattr(base, part)
    assert {p for p, _, _ in runs[1:]} >= {"returns.per_rebuffer_pct", "returns.per_unwatched_share",
                                           "returns.churn_idle_days"}
    assert isinstance(dict((p, c) for p, _, c in runs)["returns.churn_idle_days"].returns.churn_idle_days, int)


def test_poisson_counts_by_inversion() -> None:
    u = (np.arange(20_000) + 0.5) / 20_000
    counts = np.array([poisson_count(x, 2.5) for x in u])
    assert counts.mean() == pytest.approx(2.5, abs=0.01) and counts.var() == pytest.approx(2.5, abs=0.03)
    lower = np.array([poisson_count(x, 1.5) for x in u])
    assert np.all(lower <= counts)  # a lower rate never gives more views for the same draw


def test_kaplan_meier_with_censoring_and_greenwood_bounds() -> None:
    km = kaplan_meier([2, 3, 3, 5, 5, 5], [True, True, False, True, False, False], horizon=5)
    assert km.at_risk.tolist() == [6, 6, 5, 3, 3] and km.events.tolist() == [0, 1, 1, 0, 1]
    assert km.survival == pytest.approx([1.0, 5 / 6, 2 / 3, 2 / 3, 4 / 9])
    greenwood = 1 / (6 * 5) + 1 / (5 * 4) + 1 / (3 * 2)
    sigma = math.sqrt(greenwood) / abs(math.log(4 / 9))
    assert km.ci_low[-1] == pytest.approx((4 / 9) ** math.exp(Z_95 * sigma))
    assert km.ci_high[-1] == pytest.approx((4 / 9) ** math.exp(-Z_95 * sigma))
    assert km.ci_low[0] == km.ci_high[0] == 1.0  # no event yet: no width


def test_paired_differences_and_the_power_formula() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    a_hours = rng.normal(10.0, 2.0, n)
    b_hours = a_hours + 0.5 + rng.normal(0.0, 0.5, n)
    a = ViewerOutcomes(a_hours, np.zeros(n, dtype=bool), np.full(n, 7))
    b = ViewerOutcomes(b_hours, rng.random(n) < 0.1, np.full(n, 7))
    paired = paired_outcomes(a, b, lambda: np.random.default_rng(0))
    assert paired["watch_hours"]["difference"] == pytest.approx(float(np.mean(b_hours - a_hours)))
    low, high = paired["watch_hours"]["ci95"]
    assert low < 0.5 < high and high - low == pytest.approx(2 * Z_95 * 0.5 / math.sqrt(n), rel=0.15)
    assert paired["churned"]["difference"] == pytest.approx(float(np.mean(b.is_churned)))
    rows = {(r["outcome"], r["relative_effect"]): r for r in power_table([(7, a, b)])}
    r = rows[("watch_hours", 0.01)]
    assert r["absolute_effect"] == pytest.approx(0.01 * a_hours.mean())
    expected = 2 * ((Z_95 + Z_80) * r["sd_viewer"] / r["absolute_effect"]) ** 2
    assert r["viewers_per_arm_randomised"] == math.ceil(expected)
    assert r["viewers_paired_simulation"] == math.ceil(((Z_95 + Z_80) * r["sd_paired_difference"]
                                                        / r["absolute_effect"]) ** 2)
    assert math.isnan(rows[("active_days", 0.05)]["viewers_per_arm_randomised"])  # no variation, no answer


def test_the_power_table_gives_80_percent_power_by_simulation() -> None:
    """400 simulated randomised A/B tests of the table's size reject at alpha 0.05 about 80% of the time."""
    rng = np.random.default_rng(2)
    sd, effect = 3.0, 0.6
    n = int(math.ceil(viewers_needed(sd, effect)))
    a = rng.normal(0.0, sd, (400, n))
    b = rng.normal(effect, sd, (400, n))
    z = (b.mean(axis=1) - a.mean(axis=1)) / np.sqrt(a.var(axis=1, ddof=1) / n + b.var(axis=1, ddof=1) / n)
    assert np.mean(np.abs(z) > Z_95) == pytest.approx(0.80, abs=0.06)


def test_roc_auc_is_the_share_of_correctly_ordered_pairs() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(300), 2)  # with ties
    labels = rng.random(300) < 0.3
    pos, neg = scores[labels], scores[~labels]
    brute = np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))
    assert roc_auc(scores, labels) == pytest.approx(brute)
    assert math.isnan(roc_auc([0.1, 0.2], [False, False]))


@pytest.fixture(scope="module")
def churn_run(data_dir: Path):  # type: ignore[no-untyped-def]
    """fixed-top (most starts fail on these links) against bba, with churn after 2 idle days over 8 days."""
    config = SessionsConfig(users=150, days=8, agents=("bba", "fixed-top"), seed=4, horizon_s=60.0,
                            returns=ReturnModel(churn_idle_days=2))
    return run_population(config, None, catalog="synthetic", networks=("norway/test", "fcc/test"),
                          data_dir=data_dir)


def test_poor_streaming_loses_viewers_in_a_simulated_ab_run(churn_run) -> None:  # type: ignore[no-untyped-def]
    result = churn_run.result
    churn = result.churn_day
    assert np.all((churn == -1) | ((churn >= 2) & (churn < 8)))
    for a in (0, 1):  # a churned viewer starts no view on or after their churn day
        late = [v for v in result.views if v.arm == a and 0 <= churn[a, v.user] <= v.day]
        assert not late
    summary = retention_summary(result)
    bba, top = summary["arms"]
    assert top["churned_share"] > bba["churned_share"] + 0.05
    ab = summary["ab"]
    assert ab["churned"]["ci95"][0] > 0 and ab["active_days"]["ci95"][1] < 0 and ab["watch_hours"]["ci95"][1] < 0
    curves = survival_curves(result)
    assert curves[1].survival[-1] < curves[0].survival[-1]
    o = arm_outcomes(result, 1)
    assert curves[1].survival[-1] == pytest.approx(1 - o.is_churned.mean())  # censored only at the end
    assert np.all(np.diff(curves[1].survival) <= 0)
