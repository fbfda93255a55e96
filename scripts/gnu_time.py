"""Fields of a ``/usr/bin/time -v`` report, for the scripts that turn a run's time file into text."""

from __future__ import annotations

import re


def field(text: str, label: str) -> str:
    """The value after ``label:`` (e.g. ``"Percent of CPU this job got"``)."""
    found = re.search(rf"{re.escape(label)}: (\S+)", text)
    if found is None:
        raise SystemExit(f"the time file has no '{label}' line: write it with /usr/bin/time -v")
    return found.group(1)


def wall_s(text: str) -> float:
    """Elapsed wall-clock seconds."""
    parts = field(text, "Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    return sum(float(x) * 60 ** i for i, x in enumerate(reversed(parts)))


def cpu_s(text: str) -> float:
    """User plus system CPU seconds of the command and its children."""
    return float(field(text, "User time (seconds)")) + float(field(text, "System time (seconds)"))


def cpu_percent(text: str) -> int:
    """The share of one core the command got on average, in percent."""
    return int(field(text, "Percent of CPU this job got").rstrip("%"))
