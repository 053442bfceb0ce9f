"""Why does the neural game's ball go missing? Open loop from fresh emulator starts, with the
evaluation's random player (keys held 1-4 steps), as ``evaluate_world_model.py`` plays it; every step
where one game shows a ball and the other does not is put down to what happened last to the ball of
the game that lacks it: it fell past the paddle (a life lost), it vanished in mid-field, or it was
never served. It also counts the serves of each game (a ball where the step before had none) and
the steps where its lives digit changes (Breakout takes the life off about 9 steps after the ball was
last seen, over frames that all look alike).

    python -m bench.bench_ball_presence [--checkpoint_dir checkpoints/pretrained] [--starts 64] [--steps 40]"""
from __future__ import annotations

from collections import Counter

import numpy as np

from bench.start_args import parse_start_args
from models import breakout_objects as objects
from models.atari import make_rgb_env
from models.cli import run_main
from models.neural_env import NeuralBreakoutEnv
from models.world_model_evaluation import StepClock, emulator_rollouts, start_states

def last_exit(present: np.ndarray, rows: np.ndarray, t: int) -> str:
    """Why a ball absent at step ``t`` is absent: where it was last seen before, if ever."""
    seen = np.flatnonzero(present[:t])
    if seen.size == 0:
        return "never served"
    return "fell past the paddle" if rows[seen[-1]] >= objects.LOST_ROW else "vanished in mid-field"


def missing_causes(real: np.ndarray, neural: np.ndarray) -> tuple[Counter, Counter, np.ndarray, np.ndarray]:
    """real, neural (N, S, H, W, 3) -> causes of the model's missing balls, causes of the real game's
    missing balls where the model shows one, and the two presence masks (N, S)."""
    n, s = real.shape[:2]
    flat = lambda frames: frames.reshape(-1, *frames.shape[2:])
    real_on = objects.ball_present(flat(real)).reshape(n, s)
    model_on = objects.ball_present(flat(neural)).reshape(n, s)
    real_rows = objects.ball_position(flat(real))[:, 0].reshape(n, s)
    model_rows = objects.ball_position(flat(neural))[:, 0].reshape(n, s)
    model_missing, real_missing = Counter(), Counter()
    for g in range(n):
        for t in np.flatnonzero(real_on[g] & ~model_on[g]):
            model_missing[last_exit(model_on[g], model_rows[g], t)] += 1
        for t in np.flatnonzero(model_on[g] & ~real_on[g]):
            real_missing[last_exit(real_on[g], real_rows[g], t)] += 1
    return model_missing, real_missing, real_on, model_on


def serves(present: np.ndarray) -> int:
    """Balls that appear where the step before showed none, over (N, S) presence masks."""
    return int((present[:, 1:] & ~present[:, :-1]).sum())


def lives_changes(frames: np.ndarray) -> int:
    """Steps where the lives digit differs from the step before, over frames (N, S, H, W, 3)."""
    return int(objects.lives_digit_changed(frames).sum())


def main() -> None:
    args = parse_start_args(__doc__, starts=64, steps=40)
    env = NeuralBreakoutEnv(checkpoint_dir=args.checkpoint_dir, device="cpu")
    emulator = make_rgb_env()
    rng = np.random.default_rng(0)
    try:
        rollouts = emulator_rollouts(StepClock(env), emulator, start_states(0, args.starts, rng), args.steps, rng)
    finally:
        emulator.close()
    model_missing, real_missing, real_on, model_on = missing_causes(rollouts.real, rollouts.neural)
    print(f"{args.checkpoint_dir}: {real_on.size} steps from {args.starts} starts; ball recall "
          f"{model_on[real_on].mean():.1%}, presence agreement {(real_on == model_on).mean():.1%}")
    for who, causes in (("model lacks the real game's ball", model_missing),
                        ("model shows a ball the real game lacks", real_missing)):
        total = sum(causes.values())
        parts = ", ".join(f"{why} {k} ({k / max(total, 1):.0%})" for why, k in causes.most_common())
        print(f"{who}: {total} steps; the lacking game's ball last: {parts or 'none'}")
    print(f"serves: model {serves(model_on)}, real game {serves(real_on)}")
    print(f"lives digit changes: model {lives_changes(rollouts.neural)}, real game {lives_changes(rollouts.real)}")


if __name__ == "__main__":
    run_main(main)
