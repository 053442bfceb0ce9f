"""Command line shared by the benchmarks: the description --help shows, and the flags of those that
play from fresh emulator starts."""
from __future__ import annotations

import argparse

import torch

from models.cli import UserError, check_positive


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


def parse_start_args(doc: str, starts: int, steps: int) -> argparse.Namespace:
    """--checkpoint_dir, --starts, --steps and --threads (applied to torch), each count checked."""
    parser = argparse.ArgumentParser(description=first_paragraph(doc))
    parser.add_argument("--checkpoint_dir", default="checkpoints/pretrained")
    parser.add_argument("--starts", type=int, default=starts, help="fresh emulator games (seeds 0, 1, ...)")
    parser.add_argument("--steps", type=int, default=steps, help="steps played from each start")
    parser.add_argument("--threads", type=int, default=1)
    return parse_checked(parser, ("starts", "steps", "threads"))
