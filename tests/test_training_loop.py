"""The shared training loop: which validation's weights become best.pt."""
from __future__ import annotations

from pathlib import Path

from models.cli import RunFlags
from models.run_log import MetricsLog
from models.training_loop import Progress, run_training


def best_steps(tmp_path: Path, scores: list[float]) -> list[int]:
    """The steps saved to best.pt over a run of one validation per step with these scores."""
    saved: list[int] = []
    progress = Progress()
    results = iter(scores)

    def save(path: Path, metrics: dict[str, float]) -> None:
        if path.name == "best.pt":
            saved.append(progress.step)

    run_training(progress, len(scores), RunFlags(eval_every=1, save_every=1, log_every=1), tmp_path,
                 MetricsLog(tmp_path / "metrics.csv"), "test", lambda: (0.0, {}),
                 evaluate=lambda: {"score": next(results)}, score=lambda m: m["score"], save=save, shown="score")
    return saved


def test_best_is_the_latest_of_the_best_validations(tmp_path: Path) -> None:
    assert best_steps(tmp_path, [0.5, 0.9, 0.7, 0.9, 0.8]) == [1, 2, 4]    # a tie: the longer trained weights
    assert best_steps(tmp_path, [1.0, 1.0, 1.0]) == [1, 2, 3]
