"""Tests for models/motion_prior.py and the decoder's use of it (models/latent_action.py)."""
from __future__ import annotations

import torch

from models.latent_action import MOVE_GATE_INIT, LatentActionModel, fold_frames, model_config, with_motion_prior
from models.motion_prior import extrapolate, extrapolated_frames

PALETTE = [[0, 0, 0], [200, 72, 72], [142, 142, 142]]
BALL, WALL = 1, 2


def frame(*blocks: tuple[int, int, int, int, int]) -> torch.Tensor:
    """(210, 160) indices: black with (row, col, height, width, colour) blocks."""
    x = torch.zeros(210, 160, dtype=torch.long)
    for r, c, h, w, colour in blocks:
        x[r:r + h, c:c + w] = colour
    return x


def test_a_moving_ball_is_moved_on_by_its_last_move():
    wall = (0, 0, 20, 160, WALL)
    before, last = frame(wall, (100, 50, 4, 2, BALL)), frame(wall, (104, 54, 4, 2, BALL))
    torch.testing.assert_close(extrapolate(before, last), frame(wall, (108, 58, 4, 2, BALL)))


def test_each_moving_object_gets_its_own_move_and_still_ones_stay():
    before = frame((60, 30, 4, 2, BALL), (190, 60, 4, 16, BALL), (10, 100, 6, 8, WALL))
    last = frame((56, 36, 4, 2, BALL), (190, 66, 4, 16, BALL), (10, 100, 6, 8, WALL))
    expected = frame((52, 42, 4, 2, BALL), (190, 66, 4, 10, BALL), (190, 82, 4, 6, BALL), (10, 100, 6, 8, WALL))
    # the paddle moved less than its width: only its 6 newly drawn columns move on
    torch.testing.assert_close(extrapolate(before, last), expected)


def test_nothing_moved_or_a_whole_new_screen_gives_the_last_frame():
    still = frame((100, 50, 4, 2, BALL))
    torch.testing.assert_close(extrapolate(still, still), still)
    new_screen = frame((30, 0, 40, 160, WALL))
    torch.testing.assert_close(extrapolate(still, new_screen), new_screen)


def test_a_decoder_given_the_prior_starts_as_the_trained_one_plus_the_gate_where_pixels_move():
    torch.manual_seed(0)
    plain = LatentActionModel(model_config("tiny", PALETTE)).eval()
    cfg = model_config("tiny", PALETTE, motion_prior=True)
    prior = LatentActionModel(cfg).eval()
    prior.load_state_dict(with_motion_prior(plain.state_dict(), cfg))
    context = torch.stack([frame((100, 50, 4, 2, BALL)), frame((104, 54, 4, 2, BALL))])[None]
    codes = plain.random_codes(1)
    with torch.no_grad():
        added = prior.decode(context, codes) - plain.decode(context, codes)     # (1, K, f^2, h, w)
    moved = fold_frames(extrapolated_frames(context)[:, None], cfg)[:, 0]       # (1, f^2, h, w)
    last = fold_frames(context[:, -1:], cfg)[:, 0]
    gate = (moved != last)[:, None] & (moved[:, None] == torch.arange(len(PALETTE)).view(1, -1, 1, 1, 1))
    torch.testing.assert_close(added, MOVE_GATE_INIT * gate.float())
    assert gate.sum() == 16   # the ball's 8 pixels drawn two steps on, its 8 pixels now erased
