"""Compare the mapped latent with the encoder's latent on the first step of a neural game.

    python debug_first_step_difference.py [--checkpoint_dir checkpoints/pretrained] [--actions 0 1 2 3]

From the real start frames of a fresh emulator game, each action is given to the emulator; the
action-to-latent mapper turns the action into a latent, and the encoder reads a latent from the
emulator's real next frame. Both latents are printed with the positions where they differ, both are
decoded by the world model (temperature 0), and the two frames are compared with each other and
with the real one (PSNR, differing pixels, paddle and ball positions). Writes a PNG, one row per
action: context | real next | from encoder latent | from mapped latent | difference."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import debug_tools as dbg
from models.atari import make_rgb_env
from models.cli import arg, check_positive, parse_config, run_main
from models.neural_env import ACTION_NAMES, CHECKPOINT_DIR_HELP, DEFAULT_CHECKPOINT_DIR, NeuralBreakoutEnv, real_opening
from models.runtime import pick_device


@dataclass
class FirstStepConfig:
    checkpoint_dir: str = arg(DEFAULT_CHECKPOINT_DIR, CHECKPOINT_DIR_HELP)
    actions: list[int] = arg([0, 1, 2, 3], "actions to try, each from the same start: "
                                           + ", ".join(f"{i} {n}" for i, n in enumerate(ACTION_NAMES)))
    output: str = arg("data/debug_first_step.png", "the PNG, one row per action")
    seed: int = arg(0, "seed of the real start (the emulator game)")
    moves_after_fire: int = arg(0, "random moves played after FIRE in the real start (paddle elsewhere)")
    device: str = arg("auto", "auto (CUDA, else MPS, else CPU), cpu, cuda or mps")
    game: str = arg("Breakout", "Atari game of the emulator")

    def __post_init__(self) -> None:
        check_positive(self, "seed", "moves_after_fire", allow_zero=True)
        bad = [a for a in self.actions if not 0 <= a < len(ACTION_NAMES)]
        if bad or not self.actions:
            raise ValueError(f"--actions must be numbers 0-{len(ACTION_NAMES) - 1}, got {self.actions}")


def format_comparison(name: str, c: dbg.FrameComparison) -> str:
    def ball(pos: tuple[float, float]) -> str:
        return "none" if np.isnan(pos[0]) else f"({pos[0]:.0f}, {pos[1]:.0f})"

    psnr = "identical" if c.differing_pixels == 0 else f"PSNR {c.psnr:5.1f} dB"
    return (f"  {name:<24} {psnr:>13}, {c.differing_pixels:5d} pixels differ, paddle x "
            f"{c.paddle_x[0]:.1f} / {c.paddle_x[1]:.1f}, ball {ball(c.ball[0])} / {ball(c.ball[1])}")


def format_step(step: dbg.FirstStep) -> list[str]:
    differ = step.differing_positions
    lines = [f"{ACTION_NAMES[step.action]}: mapped latent {step.mapped_codes.tolist()}, encoder latent "
             f"{step.encoder_codes.tolist()}; differ at {len(differ)} of {step.mapped_codes.size} positions "
             f"{differ.tolist() if len(differ) else ''}".rstrip()]
    lines += [format_comparison(name, c) for name, c in step.comparisons().items()]
    same = np.array_equal(step.env_frame, step.from_mapped)
    lines.append(f"  the environment's step {'equals' if same else 'DIFFERS from'} the frame from the mapped latent")
    return lines


def main(argv: list[str] | None = None) -> None:
    config = parse_config(FirstStepConfig, __doc__.splitlines()[0], argv)
    env = NeuralBreakoutEnv(config.checkpoint_dir, device=pick_device(config.device), game=config.game)  # temperature 0
    emulator = make_rgb_env(config.game)
    steps = []
    try:
        for action in config.actions:
            start, before = real_opening(emulator, env.context_length, config.seed, config.moves_after_fire)
            steps.append(dbg.first_step(env, start, emulator.step(action)[0], action, before))
    finally:
        emulator.close()
        env.close()
    print("each comparison gives paddle x and ball (row, column) of its first / second frame")
    for step in steps:
        print("\n".join(format_step(step)))
    agree = sum(not len(s.differing_positions) for s in steps)
    print(f"mapped latent = encoder latent for {agree} of {len(steps)} actions")
    dbg.plot_first_steps(config.output, steps)
    print(f"picture: {config.output}")


if __name__ == "__main__":
    run_main(main)
