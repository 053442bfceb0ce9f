"""Training logs: the same scalars to metrics.csv, optionally to Weights & Biases, and a PNG plot."""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from models.figures import pyplot, save_figure
from models.files import atomic_write


class MetricsLog:
    """Rows of scalars keyed by step, kept in a CSV beside the checkpoints.

    Rows may carry different keys (training vs evaluation rows): the header is the union and the file
    is rewritten atomically on every call, which is cheap at the rate scripts log (every few seconds).
    On resume the existing rows are read back and rows past the resumed step are dropped."""

    def __init__(self, path: str | os.PathLike, use_wandb: bool = False, wandb_project: str = "atari-pixels",
                 run_config: dict[str, Any] | None = None, resume_step: int | None = None):
        self.path = Path(path)
        self.rows: list[dict[str, float]] = []
        if resume_step is not None and self.path.is_file():
            with self.path.open(newline="") as fh:
                for row in csv.DictReader(fh):
                    parsed = {k: float(v) for k, v in row.items() if v not in ("", None)}
                    if parsed.get("step", math.inf) <= resume_step:
                        self.rows.append(parsed)
        self.wandb_run = None
        if use_wandb:
            import wandb  # imported only when asked for: it is slow to import

            self.wandb_run = wandb.init(project=wandb_project, config=run_config or {},
                                        dir=str(self.path.parent), resume="allow")

    def log(self, step: int, values: dict[str, float]) -> None:
        row = {"step": float(step), **{k: float(v) for k, v in values.items()}}
        self.rows.append(row)
        if self.wandb_run is not None:
            self.wandb_run.log(values, step=step)
        self._write()

    def _write(self) -> None:
        header: list[str] = []
        for row in self.rows:
            header.extend(k for k in row if k not in header)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header)
        writer.writeheader()
        writer.writerows(self.rows)
        text = buf.getvalue()
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(text))

    def close(self) -> None:
        if self.wandb_run is not None:
            self.wandb_run.finish()


def plot_metrics(csv_path: str | os.PathLike, png_path: str | os.PathLike, keys: list[str],
                 title: str = "", x_key: str = "step") -> None:
    """One panel per key against ``x_key``; keys missing from the CSV are skipped."""
    plt = pyplot()

    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    present = [k for k in keys if any(r.get(k) not in (None, "") for r in rows)]
    if not present:
        return
    cols = min(3, len(present))
    nrows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.2 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, present):
        pts = [(float(r[x_key]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 50 else None)
        ax.set_title(key)
        ax.set_xlabel(x_key)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(present):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, png_path)
