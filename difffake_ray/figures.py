"""Figures written as PNG to any fsspec URI: the one way every stage and bench saves a plot."""

from __future__ import annotations

import io

from . import storage


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display on workers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig, dpi: int = 110, tight: bool = True) -> bytes:
    """The figure as PNG bytes; the figure is closed (a long run plots many)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    pyplot().close(fig)
    return buf.getvalue()


def write_figure(uri: str, fig, dpi: int = 110, tight: bool = True) -> str:
    """Write the figure to ``uri`` atomically and close it; -> ``uri``."""
    storage.write_bytes_atomic(uri, png_bytes(fig, dpi, tight))
    return uri
