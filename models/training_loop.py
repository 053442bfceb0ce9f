"""The loop single-process training scripts share: train a step, log, validate (keeping the best
checkpoint), write latest.pt, with a progress bar. A script gives what is its own as functions."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from models.cli import RunFlags
from models.run_log import MetricsLog

Metrics = dict[str, float]


@dataclass
class Progress:
    """Where a run stands; ``save`` is given it with each checkpoint."""
    step: int = 0
    best_score: float = -math.inf


def run_training(progress: Progress, num_steps: int, flags: RunFlags, out_dir: Path, log: MetricsLog, desc: str,
                 train_step: Callable[[], tuple[float, Metrics]], evaluate: Callable[[], Metrics],
                 score: Callable[[Metrics], float], save: Callable[[Path, Metrics], None], shown: str) -> Metrics:
    """Train from ``progress.step`` to ``num_steps``: ``train_step`` makes one step and returns its loss
    and metrics; every ``flags.eval_every`` steps ``evaluate`` gives the validation metrics, and a
    ``score`` at least as good as any before is saved to best.pt (on a tie the later weights, trained
    longer, win: a small validation set can be right throughout); every ``flags.save_every`` steps ``save`` writes
    latest.pt. Returns the last validation metrics (validating once if the run had no steps left);
    the progress bar shows the loss and the validation metric ``shown``."""
    latest, best = out_dir / "latest.pt", out_dir / "best.pt"

    def validate() -> Metrics:
        result = evaluate()
        log.log(progress.step, result)
        if score(result) >= progress.best_score:
            progress.best_score = score(result)
            save(best, result)
        return result

    metrics: Metrics = {}
    with tqdm(total=num_steps, initial=progress.step, desc=desc) as bar:
        while progress.step < num_steps:
            loss, train_metrics = train_step()
            progress.step += 1
            bar.update(1)
            if progress.step % flags.log_every == 0:
                log.log(progress.step, train_metrics)
                bar.set_postfix(loss=f"{loss:.4f}", **{shown: f"{metrics.get(shown, math.nan):.3f}"})
            if progress.step % flags.eval_every == 0 or progress.step == num_steps:
                metrics = validate()
            if progress.step % flags.save_every == 0 or progress.step == num_steps:
                save(latest, metrics)
    return metrics or validate()
