"""Property tests: unit conversions and the cooked writer/reader round-trip."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from traces import units
from traces.readers import read_cooked_trace, read_trace, write_cooked_trace
from traces.types import Trace

# normal floats only: dividing a subnormal by 1000 loses its last digits, which no real value needs
finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False).filter(
    lambda v: v == 0 or abs(v) > 1e-290
)
Convert = Callable[[float], float]
PAIRS: list[tuple[Convert, Convert]] = [
    (units.ms_to_s, units.s_to_ms),
    (units.kbps_to_bps, units.bps_to_kbps),
    (units.mbps_to_bps, units.bps_to_mbps),
    (units.bytes_to_bits, units.bits_to_bytes),
]


@settings(database=None, max_examples=200)
@given(value=finite, pair=st.sampled_from(PAIRS))
def test_unit_conversions_round_trip(value: float, pair: tuple[Convert, Convert]) -> None:
    forward, backward = pair
    assert np.isclose(backward(forward(value)), value, rtol=1e-12, atol=0.0)


@settings(database=None, max_examples=50)
@given(st.integers(min_value=0, max_value=10**9))
def test_bytes_to_bits_is_exact_on_integers(n_bytes: int) -> None:
    assert units.bits_to_bytes(units.bytes_to_bits(n_bytes)) == n_bytes


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    n = draw(st.integers(min_value=2, max_value=40))
    steps = draw(st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=n - 1, max_size=n - 1))
    start = draw(st.floats(min_value=0.0, max_value=1e4))
    times = start + np.concatenate(([0.0], np.cumsum(steps)))
    rate = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1e10))  # bits/s
    rates = np.array(draw(st.lists(rate, min_size=n, max_size=n)))
    rates[-1] = max(rates[-1], 1.0)  # the last step delivers some data ...
    times[-1] = max(times[-1], times[-2] + 0.5)  # ... over a non-empty interval
    return Trace(times, rates, name="prop")


@settings(database=None, max_examples=100, deadline=None)
@given(trace=traces())
def test_cooked_write_read_round_trip(trace: Trace) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = write_cooked_trace(trace, Path(d) / "t")
        back = read_cooked_trace(path)
        auto = read_trace(path)
    np.testing.assert_array_equal(back.times_s, trace.times_s)
    np.testing.assert_allclose(back.throughput_bps, trace.throughput_bps, rtol=1e-14, atol=0.0)
    np.testing.assert_array_equal(auto.throughput_bps, back.throughput_bps)
