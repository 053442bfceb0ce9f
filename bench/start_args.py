"""Command line shared by the benchmarks: the description --help shows, checked counts, and the flags
of the ones that compare checkpoints on held-out games."""
from __future__ import annotations

import argparse

import torch

from models.cli import UserError, check_positive
from models.episodes import list_episode_files
from models.frame_dataset import split_games


def first_paragraph(doc: str) -> str:
    """A module docstring's first paragraph on one line: the description --help shows."""
    return " ".join(doc.split("\n\n")[0].split())


def parse_checked(parser: argparse.ArgumentParser, positive: tuple[str, ...],
                  non_negative: tuple[str, ...] = ()) -> argparse.Namespace:
    """Parse the command line, refuse bad counts in one sentence, and give torch ``--threads``."""
    args = parser.parse_args()
    try:
        check_positive(args, *positive)
        check_positive(args, *non_negative, allow_zero=True)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    torch.set_num_threads(args.threads)
    return args


def held_out_parser(doc: str) -> argparse.ArgumentParser:
    """Checkpoints to compare, --episodes_dir, --split, --split_seed and --threads; add the rest."""
    parser = argparse.ArgumentParser(description=first_paragraph(doc))
    parser.add_argument("checkpoints", nargs="+", help="latent action checkpoints (best.pt, latest.pt or shipped)")
    parser.add_argument("--episodes_dir", default="data/episodes", help="the recorded games the models trained on")
    parser.add_argument("--split", choices=("test", "val"), default="test")
    parser.add_argument("--split_seed", type=int, default=0, help="the training's --split_seed")
    parser.add_argument("--threads", type=int, default=2)
    return parser


def held_out_games(args: argparse.Namespace) -> list:
    """The episode files of ``--split`` of ``--episodes_dir``, split as the training split them."""
    return getattr(split_games(list_episode_files(args.episodes_dir), seed=args.split_seed), args.split)
