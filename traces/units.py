"""Unit conversions, used only at I/O edges. Inside the project: seconds, bits, bits per second.

>>> mbps_to_bps(1.5)
1500000.0
>>> bytes_to_bits(10)
80
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

BITS_PER_BYTE = 8
MS_PER_S = 1000.0
BPS_PER_KBPS = 1e3
BPS_PER_MBPS = 1e6  # 1 Mbit/s = 10^6 bit/s, as in the cooked trace format

T = TypeVar("T", float, np.ndarray)


def ms_to_s(value_ms: T) -> T:
    """Milliseconds to seconds."""
    return value_ms / MS_PER_S


def s_to_ms(value_s: T) -> T:
    """Seconds to milliseconds."""
    return value_s * MS_PER_S


def kbps_to_bps(value_kbps: T) -> T:
    """kbit/s to bit/s."""
    return value_kbps * BPS_PER_KBPS


def bps_to_kbps(value_bps: T) -> T:
    """bit/s to kbit/s."""
    return value_bps / BPS_PER_KBPS


def mbps_to_bps(value_mbps: T) -> T:
    """Mbit/s (10^6 bit/s) to bit/s."""
    return value_mbps * BPS_PER_MBPS


def bps_to_mbps(value_bps: T) -> T:
    """bit/s to Mbit/s."""
    return value_bps / BPS_PER_MBPS


def bytes_to_bits(value_bytes: T) -> T:
    """Bytes to bits."""
    return value_bytes * BITS_PER_BYTE


def bits_to_bytes(value_bits: T) -> T:
    """Bits to bytes."""
    return value_bits / BITS_PER_BYTE
