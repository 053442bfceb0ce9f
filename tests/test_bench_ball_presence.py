"""The ball-presence benchmark puts each missing ball down to what last happened to it."""
from __future__ import annotations

import numpy as np

from bench.bench_ball_presence import lives_changes, missing_causes, serves
from models.breakout_objects import BALL_PADDLE_RGB, LIVES_BOX


def with_ball(frames: np.ndarray, step: int, row: int, col: int = 60) -> None:
    frames[0, step, row:row + 2, col:col + 2] = BALL_PADDLE_RGB


def test_missing_balls_are_put_down_to_where_they_were_last_seen() -> None:
    real = np.zeros((1, 6, 210, 160, 3), np.uint8)
    neural = np.zeros_like(real)
    for t in range(6):
        with_ball(real, t, 120 + t)          # the real ball stays in play throughout
    with_ball(neural, 0, 186)                # the model's falls past the paddle after step 0...
    with_ball(neural, 3, 140)                # ...is served again, then vanishes in mid-field
    model_missing, real_missing, real_on, model_on = missing_causes(real, neural)
    assert real_on.all() and model_on[0].tolist() == [True, False, False, True, False, False]
    assert model_missing == {"fell past the paddle": 2, "vanished in mid-field": 2}
    assert sum(real_missing.values()) == 0
    swapped_model_missing, swapped_real_missing, _, _ = missing_causes(neural, real)
    assert swapped_real_missing == model_missing and sum(swapped_model_missing.values()) == 0
    assert serves(model_on) == 1 and serves(real_on) == 0   # the model's second ball; a ball from the start is no serve


def test_a_ball_shown_before_any_serve_counts_as_never_served() -> None:
    real = np.zeros((1, 3, 210, 160, 3), np.uint8)
    neural = np.zeros_like(real)
    with_ball(neural, 1, 150)
    _, real_missing, _, _ = missing_causes(real, neural)
    assert real_missing == {"never served": 1}


def test_lives_changes_count_steps_where_the_lives_digit_changes() -> None:
    frames = np.zeros((2, 5, 210, 160, 3), np.uint8)
    top, bottom, left, right = LIVES_BOX
    frames[0, :3, top:bottom, left + 2:left + 4] = 142      # game 0: the digit changes once, at step 3
    frames[1, :, 30:40, 60:70] = 200                        # game 1: something else changes, not the digit
    frames[1, 2, 100, 50] = 7
    assert lives_changes(frames) == 1
