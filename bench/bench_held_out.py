"""One-step quality of latent action models on held-out recorded games: the figures the training
validates with (PSNR beside the copy-last-frame baseline, pixel-exact frames, changed pixels right,
paddle and ball error, codebook use, ΔPSNR at t=4), on more windows and by default on the test
split, whose games chose no checkpoint, so that checkpoints can be compared fairly.

    python -m bench.bench_held_out checkpoints/pretrained/latent_action.pt [other.pt ...] \\
        [--episodes_dir bulk_videos/episodes] [--split test] [--windows 1536] [--threads 2]"""
from __future__ import annotations

import os
import time

from bench.start_args import held_out_games, held_out_parser, parse_checked
from models.cli import run_main
from models.frame_dataset import PaletteIndexer, fixed_windows
from models.latent_action import ROLLOUT_STEPS, evaluate, load_latent_action_model


def held_out_figures(checkpoint: str | os.PathLike, games: list, num_windows: int, seed: int = 0) -> dict[str, float]:
    """The validation metrics of one checkpoint on ``num_windows`` fixed windows of ``games``; the
    windows sit at the same steps for every checkpoint (they depend on the seed and the games alone)."""
    model = load_latent_action_model(checkpoint)
    windows = fixed_windows(games, PaletteIndexer(model.config.palette), model.config.context_frames,
                            ROLLOUT_STEPS, num_windows, seed=seed)
    return evaluate(model, windows, seed=seed).metrics


def main() -> None:
    parser = held_out_parser(__doc__)
    parser.add_argument("--windows", type=int, default=1536)
    args = parse_checked(parser, ("windows", "threads"), non_negative=("split_seed",))
    games = held_out_games(args)
    print(f"{args.windows} windows from the {len(games)} {args.split} games of {args.episodes_dir}; "
          "model / copy last frame")
    for path in args.checkpoints:
        start = time.perf_counter()
        m = held_out_figures(path, games, args.windows)
        print(f"{path}: PSNR {m['psnr']:.2f} / {m['copy_psnr']:.2f} dB, pixel-exact {m['pixel_exact']:.1%} / "
              f"{m['copy_pixel_exact']:.1%}, changed pixels right {m['changed_accuracy']:.1%}, paddle "
              f"{m['paddle_error_px']:.2f} px, ball {m['ball_error_px']:.2f} px, ball recall {m['ball_recall']:.1%}, "
              f"codebook use {m['codebook_usage']:.0%}, ΔPSNR t=4 {m['delta_psnr_t4']:.1f} dB "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    run_main(main)
