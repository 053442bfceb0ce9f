"""The map-miss benchmark tallies where the map's code differs from the encoder's and what that does to
the decoded frame."""
from __future__ import annotations

import numpy as np
import pytest

from bench.bench_map_misses import count_misses, report
from bench.bench_one_step_paddle import NEAR_RIGHT_WALL_X
from models import breakout_objects as objects
from models.breakout_objects import LIVES_BOX, PADDLE_ROWS, ROW_REGIONS, STEP_KINDS
from models.debug_tools import FirstStep
from models.neural_env import LEFT


def step(context: np.ndarray, real: np.ndarray, mapped: np.ndarray, encoder: np.ndarray,
         codes: tuple[int, int]) -> FirstStep:
    return FirstStep(action=0, context=context, real_next=real, mapped_codes=np.array([codes[0]]),
                     encoder_codes=np.array([codes[1]]), from_mapped=mapped, from_encoder=encoder)


def test_misses_are_counted_by_band_of_rows_by_which_frame_is_real_and_by_kind(game):
    """Four steps with the context of two ball-less frames: a ball-less wait decoded alike from the same
    code; one from two codes that mean the same there; a serve where the map's frame moves the paddle;
    and a life taken off that only the encoder's frame draws."""
    context, wait, served, other_digit = game[:2], game[0], game[2], game[6]
    moved = served.copy()
    moved[PADDLE_ROWS[0]:PADDLE_ROWS[1]] = np.roll(moved[PADDLE_ROWS[0]:PADDLE_ROWS[1]], 8, axis=1)
    steps = [step(context, wait, wait, wait, (3, 3)),
             step(context, wait, wait, wait, (3, 4)),
             step(context, served, moved, served, (1, 2)),
             step(context, other_digit, wait, other_digit, (5, 6))]
    top, bottom, left, right = LIVES_BOX
    assert not np.array_equal(wait[top:bottom, left:right], other_digit[top:bottom, left:right])
    m = count_misses(steps, context_frames=2)
    names = list(ROW_REGIONS)
    assert (m.steps, m.other_code, m.other_frame, m.encoder_real, m.mapped_real) == (4, 3, 2, 2, 0)
    assert {names[i]: int(n) for i, n in enumerate(m.regions) if n} == {"paddle rows": 1, "score and lives": 1}
    kinds = list(STEP_KINDS)
    assert m.kind_steps[kinds.index("ball-less wait")] == 2 and m.kind_other_frame[kinds.index("ball-less wait")] == 0
    assert m.kind_other_frame[kinds.index("serve")] == 1 and m.kind_other_frame[kinds.index("life taken off")] == 1
    assert (m.paddle_misses, m.left_at_right_wall) == (1, 0)   # the serve's paddle, pressed with NOOP mid-field
    text = report(m)
    assert "75.0% (3 of 4)" in text and "33.3% (1 of 3)" in text and "life taken off 100.0% (1 of 1)" in text
    assert "take no life off, 0.0% (0 of 1) press LEFT" in text


def test_a_left_press_at_the_right_wall_is_counted_apart(game):
    at_wall = game[:2].copy()
    rows = slice(PADDLE_ROWS[0], PADDLE_ROWS[1])
    at_wall[:, rows, objects.FIELD_X[0]:objects.FIELD_X[1]] = 0
    at_wall[:, rows, objects.FIELD_X[1] - 16:objects.FIELD_X[1]] = objects.BALL_PADDLE_RGB   # 16 columns, at the wall
    assert objects.paddle_x(at_wall[-1]) >= NEAR_RIGHT_WALL_X
    moved = at_wall[-1].copy()
    moved[rows] = np.roll(moved[rows], -4, axis=1)
    miss = FirstStep(action=LEFT, context=at_wall, real_next=moved, mapped_codes=np.array([1]),
                     encoder_codes=np.array([2]), from_mapped=at_wall[-1], from_encoder=moved)
    m = count_misses([miss], context_frames=2)
    assert (m.paddle_misses, m.left_at_right_wall, m.encoder_real) == (1, 1, 1)


def test_no_steps_is_refused():
    with pytest.raises(ValueError, match="no steps"):
        count_misses([], context_frames=2)


def test_the_script_prints_its_tally(tiny_dir, script):
    run = script("-m", "bench.bench_map_misses", "--checkpoint_dir", str(tiny_dir), "--starts", "1", "--steps", "4")
    assert "4 steps from 1 starts" in run.stdout and "the decoded frames differ in" in run.stdout
    bad = script("-m", "bench.bench_map_misses", "--starts", "0", check=False)
    assert bad.returncode == 1 and "--starts must be positive" in bad.stderr and "Traceback" not in bad.stderr
