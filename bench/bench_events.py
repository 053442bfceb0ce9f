"""How latent action models handle Breakout's rare events: every step of held-out recorded games,
one step at a time from the real frames with the code the encoder reads from the real next frame,
sorted by what the real game does in it:

- serve: no ball in the context frames, a ball in the next frame (right: the model draws a ball);
- ball lost: a ball in the last frame, near the paddle's rows, none in the next (right: the model
  draws none);
- life taken off: the lives digit changes (right: the model's digit equals the real one);
- ball-less wait: no ball in the context or the next frame (right: the model draws none);
- ball in play: every other step (right: the model draws a ball where the real game does; a ball
  that crosses the wall of bricks can go unseen there for a step, in the real frame or the model's).

For the frames that are not pixel-exact it also tells which bands of rows hold their wrong pixels
(``ROW_REGIONS`` of ``models.breakout_objects``): the score and lives bar, the open field where the
ball flies, the bricks, the paddle's rows, or below them.

Uniform training draws the first three in about 4% of its windows (``train_latent_action.py
--event_weight`` draws them more often); an open-loop game goes wrong after any of them.

    python -m bench.bench_events checkpoints/pretrained/latent_action.pt [other.pt ...] \\
        [--episodes_dir bulk_videos/episodes] [--split test] [--games 10] [--threads 2]"""
from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from tqdm import tqdm

from bench.start_args import held_out_games, held_out_parser, parse_checked
from models import breakout_objects as objects
from models.cli import run_main
from models.episodes import load_episode
from models.latent_action import LatentActionModel, load_latent_action_model

BATCH = 64



def judged_right(kinds: np.ndarray, real: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(B,) whether each predicted frame gets its step's kind right (see the module's list)."""
    top, bottom, left, right = objects.LIVES_BOX
    digit_right = (predicted[:, top:bottom, left:right] == real[:, top:bottom, left:right]).all(axis=(1, 2, 3))
    ball_right = objects.ball_present(predicted) == objects.ball_present(real)
    return np.where(kinds == 2, digit_right, ball_right)


@torch.inference_mode()
def one_step_from_encoder(model: LatentActionModel, frames: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """RGB frames predicted for every target index t >= C of ``frames`` (T+1, H, W, 3)."""
    c = model.config.context_frames
    context = np.stack([frames[t - c:t] for t in targets])
    context_ix = model.to_indices(torch.from_numpy(context)).to(torch.uint8)
    next_ix = model.to_indices(torch.from_numpy(frames[targets])).to(torch.uint8)
    codes = model.encode_latents(context_ix, next_ix)
    return model.to_rgb(model.predict_next(context_ix, codes)).numpy()


def event_figures(model: LatentActionModel, games: list) -> tuple[Counter, Counter, float, np.ndarray]:
    """Steps and right steps per kind, the share of frames predicted pixel-exact, and for the other
    frames the share with wrong pixels in each of ``objects.ROW_REGIONS``."""
    c = model.config.context_frames
    steps, right = Counter(), Counter()
    exact = total = 0
    region_counts = np.zeros(len(objects.ROW_REGIONS))
    for path in tqdm(games, desc="games", unit="game", leave=False):
        frames = load_episode(path).frames
        kinds = objects.step_kinds(frames, c)
        for start in range(0, kinds.size, BATCH):
            targets = np.arange(c + start, c + min(start + BATCH, kinds.size))
            batch_kinds = kinds[targets - c]
            predicted = one_step_from_encoder(model, frames, targets)
            ok = judged_right(batch_kinds, frames[targets], predicted)
            for k in range(len(objects.STEP_KINDS)):
                steps[k] += int((batch_kinds == k).sum())
                right[k] += int(ok[batch_kinds == k].sum())
            regions = objects.wrong_regions(frames[targets], predicted)
            exact += int((~regions.any(axis=1)).sum())
            region_counts += regions.sum(axis=0)
            total += targets.size
    return steps, right, exact / max(total, 1), region_counts / max(total - exact, 1)


def main() -> None:
    parser = held_out_parser(__doc__)
    parser.add_argument("--games", type=int, default=10, help="held-out games to go through (the first of the split)")
    args = parse_checked(parser, ("games", "threads"), non_negative=("split_seed",))
    games = held_out_games(args)[:args.games]
    print(f"every step of {len(games)} {args.split} games of {args.episodes_dir}, with the encoder's code")
    for path in args.checkpoints:
        steps, right, exact, regions = event_figures(load_latent_action_model(path), games)
        cells = ", ".join(f"{kind} {right[k] / max(steps[k], 1):.1%} of {steps[k]}"
                          for k, kind in enumerate(objects.STEP_KINDS))
        where = ", ".join(f"{name} {share:.1%}" for name, share in zip(objects.ROW_REGIONS, regions))
        print(f"{path}: {cells}; pixel-exact {exact:.1%}; the other frames have wrong pixels in: {where}", flush=True)


if __name__ == "__main__":
    run_main(main)
