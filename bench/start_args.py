"""Command line shared by the benchmarks: the description --help shows, and the flags of those that
play from fresh emulator starts."""
from __future__ import annotations

import argparse

import torch

from models.cli import UserError


def first_paragraph(doc: str) -> str:
    """A module docstring's first paragraph on one line: the description --help shows."""
    return " ".join(doc.split("\n\n")[0].split())


def parse_start_args(doc: str, starts: int, steps: int) -> argparse.Namespace:
    """--checkpoint_dir, --starts, --steps and --threads (applied to torch), each count checked."""
    parser = argparse.ArgumentParser(description=first_paragraph(doc))
    parser.add_argument("--checkpoint_dir", default="checkpoints/pretrained")
    parser.add_argument("--starts", type=int, default=starts, help="fresh emulator games (seeds 0, 1, ...)")
    parser.add_argument("--steps", type=int, default=steps, help="steps played from each start")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    for name in ("starts", "steps", "threads"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be positive, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    return args
