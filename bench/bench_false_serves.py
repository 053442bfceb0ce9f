"""Does the world model serve balls nobody fired? One step at a time from real frames, as
``bench_one_step_paddle`` plays it (fresh emulator starts, the evaluation's random player that holds
its keys): at every step that starts from real screens without a ball (all the world model's context
frames, so a ball that just dropped below the paddle's rows does not count), with an action other
than FIRE, after which the real game shows no ball either, the world model decodes the next frame with
the map's code and with the code the encoder reads from the real next frame; a ball in the decoded
frame is a false serve. It also decodes every code from some of those screens, to show which codes
serve whatever the player pressed.

    python -m bench.bench_false_serves [--checkpoint_dir checkpoints/pretrained] [--starts 64] [--steps 60]"""
from __future__ import annotations

import numpy as np
import torch

from bench.start_args import parse_start_args
from models import breakout_objects as objects
from models.atari import make_rgb_env
from models.cli import run_main
from models.debug_tools import held_key_steps
from models.neural_env import ACTION_NAMES, FIRE, load_models
from models.runtime import pick_device
from models.world_model_evaluation import start_states

SCREENS_PER_CODE = 64   # ball-less screens every code is decoded from


@torch.inference_mode()
def ball_share_per_code(world, screens: list[np.ndarray]) -> np.ndarray:
    """(K,) share of the screens (each (C, H, W, 3), the world model's context) from which each code,
    at every latent position, decodes a frame with a ball."""
    context = world.to_indices(torch.from_numpy(np.stack(screens)).to(world.device)).to(torch.uint8)  # (N, C, H, W)
    shares = []
    for code in range(world.config.num_codes):
        codes = torch.full((len(screens), world.config.num_latents), code, dtype=torch.long, device=world.device)
        frames = world.to_rgb(world.predict_next(context, codes)).cpu().numpy()
        shares.append(objects.ball_present(frames).mean())
    return np.array(shares)


def main() -> None:
    args = parse_start_args(__doc__, starts=64, steps=60)
    world, mapper = load_models(args.checkpoint_dir, pick_device("cpu"))
    c = world.config.context_frames
    emulator = make_rgb_env()
    rng = np.random.default_rng(0)
    rows, screens = [], []   # (action, ball from the map's code, ball from the encoder's code); contexts
    try:
        for step in held_key_steps(world, mapper, emulator, start_states(0, args.starts, rng), args.steps, rng):
            real = np.concatenate([step.context[-c:], step.real_next[None]])    # (C + 1, H, W, 3)
            if step.action == FIRE or objects.ball_present(real).any():
                continue
            drawn = objects.ball_present(np.stack([step.from_mapped, step.from_encoder]))
            rows.append((step.action, drawn[0], drawn[1]))
            if len(screens) < SCREENS_PER_CODE:
                screens.append(step.context[-c:])
    finally:
        emulator.close()
    if not rows:
        print(f"{args.checkpoint_dir}: no step from {c} ball-less frames without FIRE in {args.starts} starts")
        return
    actions, from_map, from_encoder = (np.array(v) for v in zip(*rows))
    print(f"{args.checkpoint_dir}: {len(rows)} steps from {c} ball-less frames, not FIRE, real next frame ball-less "
          f"({args.starts} starts x {args.steps} steps, keys held 1-4 steps)")
    print(f"false serves: map's code {from_map.sum()} ({from_map.mean():.1%}), encoder's code "
          f"{from_encoder.sum()} ({from_encoder.mean():.1%})")
    print("by action (map / encoder): " + ", ".join(
        f"{ACTION_NAMES[a]} {from_map[actions == a].sum()} / {from_encoder[actions == a].sum()} of {(actions == a).sum()}"
        for a in np.unique(actions)))
    shares = ball_share_per_code(world, screens)
    print(f"codes that draw a ball from the first {len(screens)} of those screens (share of screens): " + ", ".join(
        f"{k}: {s:.0%}" for k, s in enumerate(shares) if s > 0))


if __name__ == "__main__":
    run_main(main)
