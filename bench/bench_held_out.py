"""One-step quality of latent action models on held-out recorded games: the figures the training
validates with (PSNR beside the copy-last-frame baseline, pixel-exact frames, changed pixels right,
paddle and ball error, codebook use, ΔPSNR at t=4), on more windows and by default on the test
split, whose games chose no checkpoint, so that checkpoints can be compared fairly.

    python -m bench.bench_held_out checkpoints/pretrained/latent_action.pt [other.pt ...] \\
        [--episodes_dir bulk_videos/episodes] [--split test] [--windows 1536] [--threads 2] [--frame_cleaner C]

With ``--frame_cleaner``, each model's one-step frames are also cleaned by that frame cleaner, as the
neural game does in play, and the share of frames pixel-exact before and after cleaning is printed."""
from __future__ import annotations

import argparse
import os
import time

from bench.start_args import held_out_games, held_out_parser, parse_checked
from models.cli import run_main
from models.breakout_damage import Palette
from models.frame_cleaner import evaluate as evaluate_cleaner
from models.frame_cleaner import load_frame_cleaner
from models.frame_dataset import PaletteIndexer, fixed_windows
from models.latent_action import ROLLOUT_STEPS, evaluate, load_latent_action_model


def held_out_figures(checkpoint: str | os.PathLike, games: list, num_windows: int, seed: int = 0,
                     cleaner_path: str | None = None, object_priors: bool = True) -> dict[str, float]:
    """The validation metrics of one checkpoint on ``num_windows`` fixed windows of ``games``; the
    windows sit at the same steps for every checkpoint (they depend on the seed and the games alone).
    With ``cleaner_path``, also the frame cleaner's figures on the same windows (``cleaned_exact``...)."""
    model = load_latent_action_model(checkpoint)
    if not object_priors:
        model.object_priors = None
    windows = fixed_windows(games, PaletteIndexer(model.config.palette), model.config.context_frames,
                            ROLLOUT_STEPS, num_windows, seed=seed)
    metrics = evaluate(model, windows, seed=seed).metrics
    if cleaner_path:
        cleaner = load_frame_cleaner(cleaner_path, model.config)
        metrics.update(evaluate_cleaner(cleaner, model, windows.context, windows.future[:, 0],
                                        Palette.of(model.config.palette), seed=seed))
    return metrics


def main() -> None:
    parser = held_out_parser(__doc__)
    parser.add_argument("--windows", type=int, default=1536)
    parser.add_argument("--frame_cleaner", default="", help="a frame cleaner checkpoint to clean each frame with")
    parser.add_argument("--object_priors", action=argparse.BooleanOptionalAction, default=True,
                        help="draw Breakout's paddle, bricks and ball whole, as the game does (models/object_priors.py)")
    args = parse_checked(parser, ("windows", "threads"), non_negative=("split_seed",))
    games = held_out_games(args)
    print(f"{args.windows} windows from the {len(games)} {args.split} games of {args.episodes_dir}; "
          "model / copy last frame")
    for path in args.checkpoints:
        start = time.perf_counter()
        m = held_out_figures(path, games, args.windows, cleaner_path=args.frame_cleaner or None,
                             object_priors=args.object_priors)
        print(f"{path}: PSNR {m['psnr']:.2f} / {m['copy_psnr']:.2f} dB, pixel-exact {m['pixel_exact']:.1%} / "
              f"{m['copy_pixel_exact']:.1%}, changed pixels right {m['changed_accuracy']:.1%}, paddle "
              f"{m['paddle_error_px']:.2f} px, ball {m['ball_error_px']:.2f} px, ball recall {m['ball_recall']:.1%}, "
              f"codebook use {m['codebook_usage']:.0%}, ΔPSNR t=4 {m['delta_psnr_t4']:.1f} dB "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        if args.frame_cleaner:
            print(f"  with the frame cleaner: pixel-exact {m['cleaned_exact']:.1%} (drawn {m['drawn_exact']:.1%}); "
                  f"real frames left untouched {m['real_untouched']:.1%}; damaged real frames repaired "
                  f"{m['damaged_repaired']:.1%}; a paddle with 4 px erased repaired {m['paddle_4px_repaired']:.1%}",
                  flush=True)


if __name__ == "__main__":
    run_main(main)
