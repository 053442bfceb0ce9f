"""One step at a time from real frames: where does the neural paddle go wrong, in the map or in the
world model? From fresh emulator starts, a random player that holds its keys (the evaluation's)
plays on in the emulator; at every step the world model decodes the next frame from the last real
frames twice, with the map's code for the action and with the code the encoder reads from the real
next frame, and each decoded paddle is compared with the real one.

    python -m bench.bench_one_step_paddle [--checkpoint_dir checkpoints/pretrained] [--starts 16] [--steps 60]"""
from __future__ import annotations

import numpy as np

from bench.start_args import parse_start_args
from models import breakout_objects as objects
from models.atari import make_rgb_env
from models.cli import run_main
from models.debug_tools import held_key_steps
from models.neural_env import load_models
from models.runtime import pick_device
from models.world_model_evaluation import start_states

OFF_PX = 1.0          # a decoded paddle further than this from the real one is wrong
NEAR_RIGHT_WALL_X = 135.0  # paddle centres within one move (~12 px) of the furthest right one (147.5)


def main() -> None:
    args = parse_start_args(__doc__, starts=16, steps=60)
    world, mapper = load_models(args.checkpoint_dir, pick_device("cpu"))
    emulator = make_rgb_env()
    rng = np.random.default_rng(0)
    rows = []   # (map error px, encoder error px, same code, real paddle x before)
    try:
        for step in held_key_steps(world, mapper, emulator, start_states(0, args.starts, rng), args.steps, rng):
            x = objects.paddle_x(np.stack([step.real_next, step.from_mapped, step.from_encoder]))
            rows.append((abs(x[1] - x[0]), abs(x[2] - x[0]), step.differing_positions.size == 0,
                         objects.paddle_x(step.context[-1])))
    finally:
        emulator.close()
    map_err, enc_err, same, x_before = (np.array(v, dtype=float) for v in zip(*rows))
    enc_off = enc_err > OFF_PX
    print(f"{args.checkpoint_dir}: {len(rows)} steps from {args.starts} starts, keys held 1-4 steps")
    print(f"decoded paddle more than {OFF_PX:.0f} px off: map's code {np.nanmean(map_err > OFF_PX):.1%} of steps, "
          f"encoder's code {np.nanmean(enc_off):.1%}; mean error {np.nanmean(map_err):.2f} / {np.nanmean(enc_err):.2f} px")
    print(f"the map's code is the encoder's in {same.mean():.1%} of steps; of the encoder-code misses, "
          f"{np.mean(x_before[enc_off] >= NEAR_RIGHT_WALL_X) if enc_off.any() else 0:.0%} start within one move of the "
          "right wall")


if __name__ == "__main__":
    run_main(main)
