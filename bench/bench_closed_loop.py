"""Closed-loop play of one or more neural games side by side: the ball follower plays each on its own
frames and the emulator from the same real mid-game starts (``models.closed_loop``); prints, per
checkpoint folder, what happens per 1,000 steps beside the emulator, the paddle's survival, how often
a damaged frame comes back whole, and the game's speed in play. evaluate_world_model.py --closed_loop
gives the full report (16 games x 1,000 steps, the oracle map, plots and a video).

    python -m bench.bench_closed_loop [checkpoints/pretrained other/folder ...] [--games 4] [--steps 500] [--threads 2]"""
from __future__ import annotations

import argparse
import time

import torch

from models import closed_loop as cl
from models.atari import make_rgb_env
from models.cli import UserError, run_main
from models.neural_env import DEFAULT_CHECKPOINT_DIR, NeuralBreakoutEnv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint_dirs", nargs="*", default=[DEFAULT_CHECKPOINT_DIR])
    parser.add_argument("--games", type=int, default=4, help="real mid-game starts")
    parser.add_argument("--steps", type=int, default=500, help="game steps per game")
    parser.add_argument("--repair_steps", type=int, default=100, help="real steps tried with each damage (0: none)")
    parser.add_argument("--oracle", action=argparse.BooleanOptionalAction, default=False,
                        help="also play on the encoder's codes of a lockstep emulator")
    parser.add_argument("--clean_frames", action=argparse.BooleanOptionalAction, default=True,
                        help="apply a folder's frame_cleaner.pt when it has one")
    parser.add_argument("--object_priors", action=argparse.BooleanOptionalAction, default=True,
                        help="draw the paddle, bricks and ball as whole objects (models/object_priors.py)")
    parser.add_argument("--seed", type=int, default=0, help="added to the starts' seeds")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    if min(args.games, args.steps, args.threads) < 1 or args.repair_steps < 0:
        raise UserError("--games, --steps and --threads must be positive and --repair_steps zero or more")
    torch.set_num_threads(args.threads)
    settings = cl.ClosedLoopSettings(num_games=args.games, steps=args.steps, seed=cl.START_SEED + args.seed,
                                     oracle=args.oracle, repair_steps=args.repair_steps)
    emulator = make_rgb_env("Breakout")
    try:
        for folder in args.checkpoint_dirs:
            env = NeuralBreakoutEnv(folder, clean_frames=args.clean_frames, object_priors=args.object_priors)
            began = time.perf_counter()
            result = cl.run_closed_loop(env, emulator, settings)
            cleaner = "with its frame cleaner" if env.cleaner is not None else "no frame cleaner"
            print(f"\n{folder} ({cleaner}; {args.games} games x {args.steps} steps, "
                  f"{time.perf_counter() - began:.0f} s in all)")
            print(cl.format_summary(result.summary()), flush=True)
            env.close()
    finally:
        emulator.close()


if __name__ == "__main__":
    run_main(main)
