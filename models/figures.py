"""PNG figures for every stage: matplotlib without a display, written so no reader sees half a file."""
from __future__ import annotations

import os
from typing import Any

from models.files import atomic_write


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike) -> None:
    """Write ``fig`` to ``path`` as a PNG atomically, then free it."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    pyplot().close(fig)
