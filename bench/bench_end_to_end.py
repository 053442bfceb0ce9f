"""Does a world model still fit the map? The end-to-end check of train_action_to_latent.py (from real
context frames, the frame predicted from the mapped latent against the one predicted from the
encoder's latent) for one map and one or more world models, on the same validation pairs: those the
training would validate on, given the same pair files, --val_fraction and --seed. The pairs' codes
come from the encoder they were collected with, so the world models compared must share it, as a
decoder trained with --decoder_only does.

    python -m bench.bench_end_to_end [world_model.pt ...] --pairs_path P [P ...] \\
        [--map checkpoints/pretrained/action_to_latent.pt] [--steps 1000] [--threads 2]"""
from __future__ import annotations

import argparse
import time

from tqdm import tqdm

from bench.start_args import first_paragraph, parse_checked
from models.action_pairs import concat_pairs, read_pairs
from models.action_to_latent import check_latent_shape, end_to_end, end_to_end_steps, load_action_mapper, split_pairs
from models.cli import UserError, run_main
from models.latent_action import load_latent_action_model


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument("world_models", nargs="*", default=["checkpoints/pretrained/latent_action.pt"],
                        help="latent action checkpoints whose decoders are compared (default: the shipped one)")
    parser.add_argument("--pairs_path", nargs="+", default=["data/actions/action_latent_pairs.json"],
                        help="pair files, as given to train_action_to_latent.py")
    parser.add_argument("--map", default="checkpoints/pretrained/action_to_latent.pt", help="the action map")
    parser.add_argument("--steps", type=int, default=1000, help="validation pairs checked (the training's --num_e2e)")
    parser.add_argument("--val_fraction", type=float, default=0.2, help="the training's --val_fraction")
    parser.add_argument("--seed", type=int, default=0, help="the training's --seed")
    parser.add_argument("--threads", type=int, default=2)
    args = parse_checked(parser, ("steps", "threads"), non_negative=("seed",))
    if not 0 < args.val_fraction < 1:
        raise UserError(f"--val_fraction must lie in (0, 1), got {args.val_fraction}")
    return args


def main() -> None:
    args = parse_args()
    pairs = concat_pairs([read_pairs(path) for path in args.pairs_path], args.pairs_path)
    steps = end_to_end_steps(split_pairs(pairs.game_index, args.val_fraction, args.seed).val, args.steps, args.seed)
    mapper = load_action_mapper(args.map)
    worlds = [load_latent_action_model(path) for path in args.world_models]   # a bad file fails before any work
    for world in worlds:
        check_latent_shape(mapper.config, world.config, args.map)
    print(f"{steps.size} validation pairs of {' '.join(args.pairs_path)}; map {args.map}")
    for path, world in zip(args.world_models, worlds):
        start = time.perf_counter()
        with tqdm(total=steps.size, desc="end to end", unit="step", dynamic_ncols=True, leave=False) as bar:
            m = end_to_end(mapper, world, pairs, steps, progress=bar)
        print(f"{path}: same frame from the mapped and the encoder's code {m['e2e_same_frame']:.1%}, same code "
              f"{m['e2e_same_code']:.1%}; real next frame drawn exactly from the encoder's code "
              f"{m['e2e_exact_encoder']:.1%}, from the mapped {m['e2e_exact_mapped']:.1%} "
              f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    run_main(main)
