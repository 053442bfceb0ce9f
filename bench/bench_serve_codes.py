"""Which latent actions mean both "the ball is served" and "no ball yet"? From the pairs of stage 4a:
every pair whose context frames show no ball either serves (its next frame shows one) or waits. A
latent action (its codes at every latent position, written 2 or 2-5) that the encoder gives to both
leaves the world model to guess from the frames alone whether a ball comes, and where it guesses
wrong the game serves balls nobody fired (``bench_false_serves``).

    python -m bench.bench_serve_codes [--pairs_path data/actions/action_latent_pairs.json ...]"""
from __future__ import annotations

import argparse

import numpy as np

from bench.start_args import first_paragraph
from models import breakout_objects as objects
from models.action_pairs import PairSet, flags_per_frame, read_pairs
from models.cli import run_main

def serve_and_wait_counts(pairs: PairSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The latent actions (M, L) given to pairs from ball-less context frames, each distinct one once,
    and for each (M,) how many of those pairs serve (the next frame shows a ball) and how many wait."""
    ball = flags_per_frame(pairs, objects.ball_present)
    ballless = ~ball[pairs.context_index].any(axis=1)
    served = ball[pairs.next_index][ballless]
    latents, which = np.unique(pairs.codes[ballless].reshape(-1, pairs.num_latents), axis=0, return_inverse=True)
    which = which.ravel()
    serves = np.bincount(which, weights=served, minlength=len(latents)).astype(np.int64)
    waits = np.bincount(which, weights=~served, minlength=len(latents)).astype(np.int64)
    return latents, serves, waits


def main() -> None:
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument("--pairs_path", nargs="+", default=["data/actions/action_latent_pairs.json"],
                        help="pairs JSON files of collect_action_latent_pairs.py (the context archive beside each)")
    args = parser.parse_args()
    for path in args.pairs_path:
        latents, serves, waits = serve_and_wait_counts(read_pairs(path))
        shared = np.flatnonzero((serves > 0) & (waits > 0))
        in_shared = serves[shared].sum() / max(serves.sum(), 1)
        print(f"{path}: from ball-less frames, {serves.sum()} serves and {waits.sum()} waits; "
              f"{in_shared:.0%} of the serves have a latent action that also waits")
        print("  latent actions of both (serves / waits): " + (", ".join(
            f"{'-'.join(map(str, latents[k]))}: {serves[k]} / {waits[k]}" for k in shared[np.argsort(-serves[shared])])
            or "none"))


if __name__ == "__main__":
    run_main(main)
