"""Figures written the one way every report of abr writes them: matplotlib's Agg canvas, atomically, as PNGs
without timestamps (so the same data gives the same bytes). matplotlib is imported only when a figure is drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from abr.common.atomic import write_atomic

#: The default figure size (inches) and resolution (dots per inch).
DEFAULT_FIGSIZE_IN = (6.4, 4.2)
DEFAULT_DPI = 110


def save_figure(path: Path, draw: Any, *, figsize_in: tuple[float, float] = DEFAULT_FIGSIZE_IN,
                dpi: int = DEFAULT_DPI) -> Path:
    """Draw a figure with ``draw(fig)`` and write it atomically as a PNG without timestamps (byte-reproducible)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize_in, dpi=dpi)
    FigureCanvasAgg(fig)
    draw(fig)
    fig.tight_layout()
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", metadata={"Software": None}))
