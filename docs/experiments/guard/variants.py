"""The guard thresholds compared by scripts/guard.sh (agents py:docs/experiments/guard/variants.py:NAME).

Each is the shipped policy inside :class:`agents.guard.GuardedPolicy` with BOLA-E as fallback; only the threshold
on RobustMPC's recent relative prediction error differs (``guarded:ppo`` is ``max_error_1_0``).
"""

from agents.guard import GuardedPolicy
from agents.registry import make_agent


def _guarded(max_error: float) -> GuardedPolicy:
    return GuardedPolicy(make_agent("ppo"), max_error=max_error, name=f"guard-{max_error:g}")


def max_error_0_5() -> GuardedPolicy:
    return _guarded(0.5)


def max_error_0_7() -> GuardedPolicy:
    return _guarded(0.7)


def max_error_1_0() -> GuardedPolicy:
    return _guarded(1.0)


def max_error_2_0() -> GuardedPolicy:
    return _guarded(2.0)
