"""How far back the action map has to look: two of Breakout's timers that no single frame shows,
measured in the emulator.

- The right wall. RIGHT keeps pushing the emulated paddle controller past the wall while the frames
  stay the same; the LEFT steps that follow stay put before the paddle moves, and how many depends
  on how many pushes came after the paddle reached the wall.
- The serve. After a ball falls past the paddle, FIRE does nothing for some steps, over frames that
  look alike, and then serves.

A map that sees fewer frames than these timers last has to guess, and a wrong guess puts the
paddle about 20 px off, or a ball in play, until the game catches up.

    python -m bench.bench_breakout_timing [--seeds 5]"""
from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from bench.start_args import first_paragraph
from models import breakout_objects as objects
from models.atari import make_rgb_env
from models.cli import UserError, check_positive, run_main
from models.neural_env import FIRE, LEFT, NOOP, RIGHT

WALL_X = 147.0          # the paddle's centre column against the right wall
MAX_STEPS = 40          # give up on a paddle or a ball that never gets there


def paddle_at(frame: np.ndarray) -> float:
    return float(objects.paddle_x(frame))


def wall_release(emulator: gym.Env, extra_pushes: int, seed: int, noops: int = 0, left_steps: int = 6) -> list[float]:
    """The paddle's centre after each of ``left_steps`` LEFT steps, from a paddle pushed RIGHT until it
    reached the right wall, then ``extra_pushes`` more times, then left alone for ``noops`` steps. No
    ball is served, so none hides the paddle."""
    frame, _ = emulator.reset(seed=seed)
    for _ in range(MAX_STEPS):
        if paddle_at(frame) >= WALL_X:
            break
        frame = emulator.step(RIGHT)[0]
    else:
        raise RuntimeError(f"the paddle did not reach the right wall in {MAX_STEPS} RIGHT steps")
    for action in [RIGHT] * extra_pushes + [NOOP] * noops:
        emulator.step(action)
    return [paddle_at(emulator.step(LEFT)[0]) for _ in range(left_steps)]


def steps_before_moving(xs: list[float]) -> int:
    """How many of the LEFT steps left the paddle at the wall."""
    return next((i for i, x in enumerate(xs) if x < WALL_X), len(xs))


def serve_delay(emulator: gym.Env, seed: int, max_wait: int = 16) -> int:
    """Serve, let the ball fall past the paddle (NOOPs), and return for how many steps after the first
    frame without it FIRE does nothing: the fewest NOOPs after which FIRE serves (each try from the same
    emulator state); -1 when none up to ``max_wait`` does."""
    emulator.reset(seed=seed)
    frame = emulator.step(FIRE)[0]
    seen_row, steps = np.nan, 0
    while not (np.isfinite(seen_row) and seen_row >= objects.LOST_ROW and not objects.ball_present(frame)):
        if objects.ball_present(frame):
            seen_row = float(objects.ball_position(frame)[0])
        frame = emulator.step(NOOP)[0]
        steps += 1
        if steps > 10 * MAX_STEPS:
            raise RuntimeError("the served ball never fell past the still paddle")
    ale = emulator.unwrapped.ale
    lost = ale.cloneState()
    for wait in range(max_wait + 1):
        ale.restoreState(lost)
        for _ in range(wait):
            emulator.step(NOOP)
        if objects.ball_present(emulator.step(FIRE)[0]):
            return wait
    return -1


def main() -> None:
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument("--seeds", type=int, default=5, help="emulator seeds each figure is measured from")
    args = parser.parse_args()
    try:
        check_positive(args, "seeds")
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    emulator = make_rgb_env()
    try:
        print("right wall: pushes after reaching it (and NOOPs after them) -> LEFT steps spent at the wall, "
              "then the first move (px)")
        for extra, noops in ((0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (0, 8), (1, 8), (4, 8)):
            runs = [wall_release(emulator, extra, seed, noops) for seed in range(args.seeds)]
            stays = sorted({steps_before_moving(xs) for xs in runs})
            moves = sorted({round(WALL_X + 0.5 - xs[steps_before_moving(xs)]) for xs in runs
                            if steps_before_moving(xs) < len(xs)})
            print(f"  {extra} more, {noops} NOOPs: stays {', '.join(map(str, stays))} step(s), then moves {', '.join(map(str, moves))} px")
        delays = [serve_delay(emulator, seed) for seed in range(args.seeds)]
        print(f"serve: after the ball falls out of sight, FIRE does nothing for {', '.join(map(str, sorted(set(delays))))} "
              f"step(s), then serves ({args.seeds} seeds; -1: it did not serve within 16)")
    finally:
        emulator.close()


if __name__ == "__main__":
    run_main(main)
