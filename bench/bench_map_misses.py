"""Where the action map's code differs from the encoder's, and what that costs the frame. One step at a
time from real frames: from fresh emulator starts the random player that holds its keys (the
evaluation's) plays on in the emulator, and at every step the world model decodes the next frame
from the last real frames twice, with the map's code for the action and with the code the encoder
reads from the real next frame.

Of the steps where the codes differ it tells how many still decode to the same frame (two codes that
mean the same there), and of those whose frames differ, which bands of rows differ
(``ROW_REGIONS`` of ``models.breakout_objects``: the paddle's rows are the player's move, the open
field and the bricks the ball), which of the two frames is the real one, and what kind of step it was
(``STEP_KINDS``: a serve, a lost ball, a life taken off, a wait without a ball, the ball in play).
Last, of the steps whose paddle rows differ and that take no life off, how many press LEFT with the
paddle within one move of the right wall, where the game keeps a count that no frame shows
(``bench_breakout_timing``).

    python -m bench.bench_map_misses [--checkpoint_dir checkpoints/pretrained] [--starts 16] [--steps 60]"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from bench.bench_one_step_paddle import NEAR_RIGHT_WALL_X
from bench.start_args import parse_start_args
from models import breakout_objects as objects
from models.atari import make_rgb_env
from models.cli import run_main
from models.debug_tools import FirstStep, held_key_steps
from models.neural_env import LEFT, load_models
from models.runtime import pick_device
from models.world_model_evaluation import start_states


@dataclass
class MapMisses:
    steps: int                  # steps looked at
    other_code: int             # of them, steps where the map's code is not the encoder's
    other_frame: int            # of those, steps whose two decoded frames differ
    regions: np.ndarray         # (len(ROW_REGIONS),) of those, steps that differ in each band of rows
    encoder_real: int           # of those, steps where the encoder's frame is the real one
    mapped_real: int            # ... and where the map's is
    kind_steps: np.ndarray      # (len(STEP_KINDS),) steps of each kind
    kind_other_frame: np.ndarray  # (len(STEP_KINDS),) of them, steps whose two decoded frames differ
    paddle_misses: int          # steps whose paddle rows differ and that take no life off
    left_at_right_wall: int     # of those, steps that press LEFT within one move of the right wall


def count_misses(steps: Iterable[FirstStep], context_frames: int) -> MapMisses:
    """Tally the map's misses over ``steps`` (``decode_step`` results); ``context_frames`` of each
    step's context and its real next frame tell the step's kind."""
    rows = []    # (other code, other frame, regions, encoder real, mapped real, kind, LEFT at the right wall)
    for step in steps:
        kind = objects.step_kinds(np.concatenate([step.context[-context_frames:], step.real_next[None]]),
                                  context_frames)[0]
        regions = objects.wrong_regions(step.from_encoder[None], step.from_mapped[None])[0]
        rows.append((step.differing_positions.size > 0, regions.any(), regions,
                     np.array_equal(step.from_encoder, step.real_next), np.array_equal(step.from_mapped, step.real_next),
                     kind, step.action == LEFT and objects.paddle_x(step.context[-1]) >= NEAR_RIGHT_WALL_X))
    if not rows:
        raise ValueError("no steps to count")
    other_code, other_frame, regions, encoder_real, mapped_real, kinds, at_wall = (np.array(v) for v in zip(*rows))
    kinds_all = np.arange(len(objects.STEP_KINDS))
    paddle = regions[:, list(objects.ROW_REGIONS).index("paddle rows")] & (kinds != objects.STEP_KINDS.index("life taken off"))
    return MapMisses(steps=len(rows), other_code=int(other_code.sum()), other_frame=int(other_frame.sum()),
                     regions=regions[other_frame].sum(axis=0).astype(np.int64),
                     encoder_real=int(encoder_real[other_frame].sum()), mapped_real=int(mapped_real[other_frame].sum()),
                     kind_steps=(kinds[:, None] == kinds_all).sum(axis=0),
                     kind_other_frame=(kinds[other_frame][:, None] == kinds_all).sum(axis=0),
                     paddle_misses=int(paddle.sum()), left_at_right_wall=int((paddle & at_wall).sum()))


def report(m: MapMisses) -> str:
    """The tally in a few lines, each share with its count."""
    def share(part: int, whole: int) -> str:
        return f"{part / max(whole, 1):.1%} ({part} of {whole})"

    regions = ", ".join(f"{name} {share(int(n), m.other_frame)}" for name, n in zip(objects.ROW_REGIONS, m.regions))
    kinds = ", ".join(f"{name} {share(int(d), int(n))}" for name, n, d in zip(objects.STEP_KINDS, m.kind_steps,
                                                                              m.kind_other_frame) if n)
    return "\n".join([
        f"the map's code is not the encoder's in {share(m.other_code, m.steps)} of the steps; "
        f"the two codes still decode to the same frame in {share(m.other_code - m.other_frame, m.other_code)} of those",
        f"the decoded frames differ in {share(m.other_frame, m.steps)} of the steps; of those, they differ in: {regions}",
        f"of those, the encoder's frame is the real one in {share(m.encoder_real, m.other_frame)}, "
        f"the map's in {share(m.mapped_real, m.other_frame)}",
        f"steps whose decoded frames differ, by what the real game does: {kinds}",
        f"of the steps whose paddle rows differ and that take no life off, {share(m.left_at_right_wall, m.paddle_misses)} "
        "press LEFT within one move of the right wall",
    ])


def main() -> None:
    args = parse_start_args(__doc__, starts=16, steps=60)
    world, mapper = load_models(args.checkpoint_dir, pick_device("cpu"))
    emulator = make_rgb_env()
    rng = np.random.default_rng(0)
    try:
        steps = held_key_steps(world, mapper, emulator, start_states(0, args.starts, rng), args.steps, rng)
        misses = count_misses(steps, world.config.context_frames)
    finally:
        emulator.close()
    print(f"{args.checkpoint_dir}: {misses.steps} steps from {args.starts} starts, keys held 1-4 steps")
    print(report(misses))


if __name__ == "__main__":
    run_main(main)
