"""The memory a run may use, and refusing a size up front when its estimate would not fit.

A run whose size comes from the command line (``--users``, ``--synthetic``) estimates its memory before any
work and calls :func:`check_fits`, so a size that cannot fit is refused in one line naming the estimate, the
memory available and the option to change, instead of failing minutes later with ``MemoryError`` (or being
killed). The limit is what the machine can give now, not a fixed cap:

* ``MemAvailable`` from ``/proc/meminfo`` (else ``os.sysconf`` available pages, else physical pages);
* a cgroup limit when smaller (``/sys/fs/cgroup/memory.max`` less ``memory.current`` on cgroup v2,
  ``memory.limit_in_bytes`` less ``memory.usage_in_bytes`` on cgroup v1);
* ``$ABR_MEMORY_LIMIT_BYTES`` (:data:`MEMORY_LIMIT_ENV`), when set, replaces both: a whole number of bytes,
  for tests and for sharing a machine with other jobs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from abr.errors import ConfigError

logger = logging.getLogger(__name__)

#: Environment variable overriding the available memory, in bytes (e.g. ``ABR_MEMORY_LIMIT_BYTES=4000000000``).
MEMORY_LIMIT_ENV = "ABR_MEMORY_LIMIT_BYTES"
GIB = 1024**3
_MEMINFO = Path("/proc/meminfo")
_CGROUP_V2 = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current"))
_CGROUP_V1 = (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"), Path("/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def available_memory_bytes() -> int:
    """The memory a run can use now, in bytes (see the module docstring for the sources).

    Raises:
        ConfigError: ``$ABR_MEMORY_LIMIT_BYTES`` is set but is not a whole number of bytes > 0.

    >>> available_memory_bytes() > 0
    True
    """
    override = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ConfigError(f"{MEMORY_LIMIT_ENV}={override!r} must be a whole number of bytes > 0 "
                              "(or unset, to use the memory the machine has available)",
                              field=MEMORY_LIMIT_ENV, value=override)
        return int(override)
    machine = _meminfo_available()
    candidates = [machine if machine is not None else _sysconf_available()]
    candidates += [n for n in (_cgroup_headroom(*_CGROUP_V2), _cgroup_headroom(*_CGROUP_V1)) if n is not None]
    return max(0, min(candidates))


def format_gib(n_bytes: float) -> str:
    """A byte count in GiB, readable for huge and small sizes (plain bytes below 0.0001 GiB).

    >>> format_gib(27.2 * 1024**3), format_gib(3 * 1024**2), format_gib(5e15), format_gib(4000)
    ('27.2 GiB', '0.0029 GiB', '4,656,612.9 GiB', '4,000 bytes')
    """
    gib = n_bytes / GIB
    if gib >= 0.1:
        return f"{gib:,.1f} GiB"
    return f"{gib:.4f} GiB" if gib >= 1e-4 else f"{int(n_bytes):,} bytes"


def check_fits(what: str, estimate_bytes: int, fix: str) -> None:
    """Refuse ``what`` when its estimated memory exceeds :func:`available_memory_bytes`.

    Args:
        what: the thing refused, as the user gave it (e.g. ``"--users 100000000"``).
        estimate_bytes: its estimated peak memory, in bytes.
        fix: what to change (e.g. ``"use fewer --users (at most about 90,000 fit)"``).

    Raises:
        ConfigError: the estimate does not fit; the message gives the estimate, the memory available and
            ``fix``.

    >>> check_fits("a tiny run", 1024, "use less")  # fits: no error
    """
    available = available_memory_bytes()
    logger.debug("%s: estimated %d bytes, %d available", what, estimate_bytes, available)
    if estimate_bytes > available:
        raise ConfigError(f"{what} needs an estimated {format_gib(estimate_bytes)} of memory, more than the "
                          f"{format_gib(available)} available; {fix}")


def _meminfo_available() -> int | None:
    try:
        with _MEMINFO.open(encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom(limit_file: Path, usage_file: Path) -> int | None:
    """The limit less the current usage, or ``None`` without a limit (``max``, or v1's near-2**63 value)."""
    try:
        text = limit_file.read_text(encoding="ascii").strip()
    except OSError:
        return None
    if not text.isdigit() or int(text) >= 2**60:
        return None
    try:
        usage = int(usage_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        usage = 0
    return int(text) - usage


def _sysconf_available() -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    for name in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            pages = os.sysconf(name)
        except (ValueError, OSError):
            continue
        if pages > 0:
            return int(pages) * int(page)
    return 0
