"""DYNAMIC: dash.js's default ABR strategy, switching between the throughput rule and BOLA by buffer level.

Source: dash.js 5 ``controllers/AbrController.js`` (``_updateDynamicAbrStrategy``) and
``rules/abr/ABRRulesCollection.js``; facts only. Before each decision, with ``T`` = ``bufferTimeDefault``
(18 s in dash.js 5; dash.js 3/4 used ``stableBufferTime`` = 12 s):

* while the throughput rule is in use, BOLA takes over once the buffer is ``>= T``;
* while BOLA is in use, the throughput rule takes back over once the buffer is ``< T / 2``.

(This hysteresis keeps the rules from oscillating; dash.js 3/4 compared with ``>`` instead of ``>=``.) A
session starts on the throughput rule. The rule in use is :class:`~agents.throughput.ThroughputRule` or
:class:`~agents.bola.BolaE` (without its own cap); BOLA-E keeps its placeholder bookkeeping for the chunks the
throughput rule chose, as dash.js's event handlers do, and on its first call after a switch it starts from the
throughput level (its startup state). The result is capped by the insufficient-buffer rule, which dash.js
runs alongside both (:func:`~agents.throughput.insufficient_buffer_cap`); dash.js keeps the lowest level its
active rules ask for. Its other default rules (dropped frames, switch history, abandonment) have nothing to
act on in the simulator.

Sabre's ``dynamic`` differs (BOLA-BASIC, one 10 s threshold and a comparison of the two rules' choices); it
is not what dash.js does and is not implemented here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agents._checks import check_fraction, check_positive
from agents.bola import BUFFER_TIME_DEFAULT_S, BolaE
from agents.throughput import BANDWIDTH_SAFETY_FACTOR, ThroughputRule, insufficient_buffer_cap
from simulator.context import PlayerContext

SWITCH_OFF_FRACTION = 0.5  # dash.js: back to the throughput rule below half of bufferTimeDefault


@dataclass(slots=True)
class Dynamic:
    """dash.js's DYNAMIC strategy: the throughput rule at low buffer, BOLA-E at high buffer, with hysteresis.

    Args:
        buffer_time_default_s: dash.js's ``bufferTimeDefault`` (18 s): BOLA from this buffer level, back to
            the throughput rule below half of it; also BOLA's buffer target.
        safety_factor: ``bandwidthSafetyFactor`` (0.9) of both rules.
        method: the throughput estimate, ``"ewma"`` (dash.js 5 default) or ``"sliding"``.
        use_insufficient_buffer_rule: cap by dash.js's InsufficientBufferRule.

    >>> from traces.types import Video
    >>> video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=10)
    >>> policy = Dynamic()
    >>> [(b, policy.uses_bola(b)) for b in (10.0, 18.0, 9.5, 8.9)]
    [(10.0, False), (18.0, True), (9.5, True), (8.9, False)]
    """

    buffer_time_default_s: float = BUFFER_TIME_DEFAULT_S
    safety_factor: float = BANDWIDTH_SAFETY_FACTOR
    method: str = "ewma"
    use_insufficient_buffer_rule: bool = True
    name: str = "dynamic"
    _throughput: ThroughputRule = field(init=False, repr=False)
    _bola: BolaE = field(init=False, repr=False)
    _is_bola: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        check_positive("buffer_time_default_s", self.buffer_time_default_s)
        check_fraction("safety_factor", self.safety_factor)
        self._throughput = ThroughputRule(safety_factor=self.safety_factor, method=self.method)
        self._bola = BolaE(buffer_target_s=self.buffer_time_default_s, safety_factor=self.safety_factor,
                           method=self.method, use_insufficient_buffer_rule=False)

    @property
    def is_using_bola(self) -> bool:
        """Whether the last decision (or :meth:`uses_bola` call) used BOLA."""
        return self._is_bola

    def uses_bola(self, buffer_s: float) -> bool:
        """Update the mode for a decision at ``buffer_s`` seconds and return whether BOLA decides."""
        threshold_s = self.buffer_time_default_s * (SWITCH_OFF_FRACTION if self._is_bola else 1.0)
        self._is_bola = buffer_s >= threshold_s
        return self._is_bola

    def reset(self, rng: np.random.Generator | None = None) -> None:
        self._is_bola = False
        self._throughput.reset(rng)
        self._bola.reset(rng)

    def select(self, context: PlayerContext) -> int:
        if self.uses_bola(context.buffer_s):
            quality_idx = self._bola.select(context)
        else:
            quality_idx = self._throughput.select(context)
        if self.use_insufficient_buffer_rule:
            cap = insufficient_buffer_cap(context, self._throughput.estimate_bps(context))
            if cap is not None:
                quality_idx = min(quality_idx, cap)
        return quality_idx
