"""Control inside the world model itself, with no action map: from fresh emulator starts, step LEFT
and RIGHT in the emulator, let the encoder read each real step's latent action, decode it, and check
that the decoded paddle moves the way the real one did. The map can do no better than this.

    python -m bench.bench_encoder_control [--checkpoint checkpoints/pretrained/latent_action.pt] [--starts 40]"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from models import breakout_objects as objects
from models.atari import make_rgb_env
from models.cli import UserError, run_main
from models.latent_action import load_latent_action_model
from models.neural_env import LEFT, RIGHT, real_start
from models.world_model_evaluation import direction, start_states


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/pretrained/latent_action.pt")
    parser.add_argument("--starts", type=int, default=40, help="fresh emulator games (seeds 0, 1, ...)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    for name in ("starts", "threads"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be positive, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    model = load_latent_action_model(args.checkpoint)
    emulator = make_rgb_env()
    ale = emulator.unwrapped.ale
    agree = movable = differ = 0
    real_moves, decoded_moves = [], []
    for start in start_states(0, args.starts, np.random.default_rng(0)):
        context = real_start(emulator, model.config.context_frames, start.seed, start.moves_after_fire)
        state, x0 = ale.cloneState(), objects.paddle_x(context[-1])
        with torch.inference_mode():
            indices = model.to_indices(torch.from_numpy(context)[None]).to(torch.uint8)    # (1, C, H, W)
            codes = []
            for action in (LEFT, RIGHT):
                ale.restoreState(state)
                real = emulator.step(action)[0]
                code = model.encode_latents(indices, model.to_indices(torch.from_numpy(real)[None]))
                decoded = model.to_rgb(model.predict_next(indices, code))[0].numpy()
                codes.append(code.tolist())
                real_dx, decoded_dx = objects.paddle_x(real) - x0, objects.paddle_x(decoded) - x0
                if direction(real_dx) in (None, 0):
                    continue  # against a wall, or no paddle
                movable += 1
                agree += int(direction(decoded_dx) == direction(real_dx))
                real_moves.append(abs(real_dx))
                decoded_moves.append(abs(decoded_dx) if direction(decoded_dx) == direction(real_dx) else 0.0)
        differ += int(codes[0] != codes[1])
    emulator.close()
    print(f"{args.checkpoint}: the decoded paddle moves the real way in {agree}/{movable} one-step LEFT/RIGHT moves "
          f"({agree / max(1, movable):.0%}); LEFT and RIGHT get different codes in {differ}/{args.starts} starts; "
          f"median real move {np.median(real_moves):.1f} px, decoded (the right way) {np.median(decoded_moves):.1f} px")


if __name__ == "__main__":
    run_main(main)
