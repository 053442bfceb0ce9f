"""Tests for models/breakout_objects.py on real emulator frames and on frames edited by hand."""
from __future__ import annotations

import numpy as np
import pytest

from models import breakout_objects as objects
from models.atari import make_rgb_env
from models.breakout_objects import (BALL_PADDLE_RGB, BRICK_ROWS, FIELD_X, NUM_BRICKS, ball_position,
                                     ball_present, bricks_remaining, paddle_ends, paddle_width, paddle_x)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """The frame after reset, then 20 steps after serving: (21, 210, 160, 3)."""
    env = make_rgb_env("Breakout")
    first, _ = env.reset(seed=0)
    out = [first] + [env.step(1)[0] for _ in range(20)]
    env.close()
    return np.stack(out)


def test_start_of_game(frames: np.ndarray) -> None:
    assert bricks_remaining(frames[0]) == NUM_BRICKS
    assert not ball_present(frames[0])
    assert FIELD_X[0] < paddle_x(frames[0]) < FIELD_X[1]
    left, right = paddle_ends(frames[0])
    assert right - left + 1 == paddle_width(frames[0]) and (left + right) / 2 == paddle_x(frames[0])


def test_served_ball_is_found_and_moves(frames: np.ndarray) -> None:
    rows = ball_position(frames[1:5])[:, 0]
    assert ball_present(frames[1:5]).all()
    assert np.all(np.diff(rows) > 0)  # the serve goes down toward the paddle


def test_batch_agrees_with_single_frames(frames: np.ndarray) -> None:
    np.testing.assert_array_equal(paddle_x(frames), [paddle_x(f) for f in frames])
    np.testing.assert_array_equal(paddle_ends(frames), [paddle_ends(f) for f in frames])
    np.testing.assert_array_equal(ball_position(frames), [ball_position(f) for f in frames])
    np.testing.assert_array_equal(bricks_remaining(frames), [bricks_remaining(f) for f in frames])


def test_hand_edited_frames(frames: np.ndarray) -> None:
    frame = frames[0].copy()
    frame[BRICK_ROWS[0]:BRICK_ROWS[0] + 6, FIELD_X[0]:FIELD_X[0] + 8] = 0   # knock out one brick
    assert bricks_remaining(frame) == NUM_BRICKS - 1
    frame[120:124, 50:52] = BALL_PADDLE_RGB                                 # a 2x4 ball
    np.testing.assert_allclose(ball_position(frame), [121.5, 50.5])
    black = np.zeros_like(frame)
    assert np.isnan(paddle_x(black)) and not ball_present(black) and bricks_remaining(black) == 0
    assert np.isnan(paddle_ends(black)).all()


def test_ball_inside_the_brick_band_is_found_by_its_partly_lit_cell():
    frame = np.zeros((210, 160, 3), np.uint8)
    frame[57:93, 8:152] = (162, 162, 42)       # a full wall of bricks
    frame[75:81, 40:48] = 0                    # one brick gone (rows 75-80, columns 40-47)
    frame[76:80, 42:44] = (162, 162, 42)       # the ball crossing that gap takes the band's colour
    assert np.allclose(ball_position(frame), (77.5, 42.5))
    assert bricks_remaining(frame) == 107


@pytest.fixture(scope="module")
def follower_game() -> tuple[np.ndarray, float]:
    """600 steps of the ball follower in the emulator: frames (n + 1, H, W, 3) and the score it made."""
    from models.players import BreakoutFollower

    env = make_rgb_env("Breakout")
    player, rng = BreakoutFollower(list(env.unwrapped.get_action_meanings())), np.random.default_rng(0)
    frame, _ = env.reset(seed=0)
    frames, score, prev = [frame], 0.0, None
    for _ in range(600):
        prev = player.act(frame, prev, rng)
        frame, reward, terminated, _, _ = env.step(prev)
        frames.append(frame)
        score += reward
        if terminated:
            break
    env.close()
    return np.stack(frames), score


def test_the_real_paddle_is_always_whole_and_one_ball_at_most(follower_game) -> None:
    frames, _ = follower_game
    assert objects.paddle_well_formed(frames).all()
    assert (objects.ball_count(frames) <= 1).all()
    assert objects.ball_count(frames).max() == 1
    assert set(np.unique(objects.paddle_width(frames))) <= {16, 12, 11, 10, 9, 8}


def test_broken_or_short_paddles_are_not_whole(follower_game) -> None:
    frame = follower_game[0][5].copy()
    cols = np.flatnonzero(objects._red_mask(frame[None], objects.PADDLE_ROWS)[0].any(axis=0)) + objects.FIELD_X[0]
    short = frame.copy()
    short[objects.PADDLE_ROWS[0]:objects.PADDLE_ROWS[1], cols[:5]] = 0   # 11 px away from the walls
    gap = frame.copy()
    gap[objects.PADDLE_ROWS[0]:objects.PADDLE_ROWS[1], cols[6:9]] = 0
    thin = frame.copy()
    thin[objects.PADDLE_ROWS[0], cols] = 0
    assert objects.paddle_well_formed(frame)
    assert not objects.paddle_well_formed(np.stack([short, gap, thin])).any()
    assert not objects.paddle_well_formed(np.zeros_like(frame))


def test_points_read_from_the_bricks_are_the_games_score(follower_game) -> None:
    frames, score = follower_game
    broken = objects.bricks_broken(frames)
    assert broken.shape == (len(frames) - 1, 6, 18) and (objects.brick_lit_share(frames[0]) == 1).all()
    assert score > 0 and (broken.sum(axis=2) * np.array(objects.BRICK_POINTS)).sum() == score


def test_a_brick_drawn_with_pixels_missing_is_not_broken(follower_game) -> None:
    whole = follower_game[0][0]
    nicked, halved, gone = whole.copy(), whole.copy(), whole.copy()
    nicked[BRICK_ROWS[0], FIELD_X[0]:FIELD_X[0] + 2] = 0                     # 2 of the top-left brick's 48 px
    halved[BRICK_ROWS[0]:BRICK_ROWS[0] + 3, FIELD_X[0]:FIELD_X[0] + 8] = 0   # its top half
    gone[BRICK_ROWS[0]:BRICK_ROWS[0] + 6, FIELD_X[0]:FIELD_X[0] + 8] = 0
    gone[BRICK_ROWS[0] + 1:BRICK_ROWS[0] + 5, FIELD_X[0] + 3:FIELD_X[0] + 5] = (200, 72, 72)   # the ball inside
    broken = objects.bricks_broken(np.stack([whole, nicked, whole, halved, whole, gone]))
    assert broken.sum(axis=(1, 2)).tolist() == [0, 0, 0, 0, 1] and broken[4, 0, 0]


def test_two_balls_are_counted_apart(follower_game) -> None:
    frame = follower_game[0][0].copy()
    frame[120:124, 40:42] = objects.BALL_PADDLE_RGB
    frame[150:154, 100:102] = objects.BALL_PADDLE_RGB
    assert objects.ball_count(frame) == 2
