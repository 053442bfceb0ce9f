"""Tests for models/paddle_prior.py: the paddle rows of a drawn frame, decoded as one whole paddle."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import breakout_objects as objects
from models.atari import make_rgb_env
from models.breakout_damage import Palette, draw_ball, erase_paddle_end, paddle_columns
from models.breakout_objects import FIELD_X, PADDLE_ROWS
from models.frame_dataset import PaletteIndexer, palette_from_frames
from models.paddle_prior import MIN_SHOWN, PaddlePrior, paddle_masks


@pytest.fixture(scope="module")
def game() -> tuple[np.ndarray, PaletteIndexer]:
    """Palette indices of 4 real frames a few steps after the serve, paddle in mid-field, and their indexer."""
    env = make_rgb_env("Breakout")
    env.reset(seed=3)
    frames = [env.step(action)[0] for action in [1, 3, 3] + [0] * 4]
    env.close()
    indexer = PaletteIndexer(palette_from_frames([np.stack(frames)]))
    return indexer.to_indices(np.stack(frames[-4:])), indexer


def logits_of(probs: np.ndarray) -> torch.Tensor:
    """(1, K, H, W) logits of per-pixel colour probabilities (H, W, K)."""
    return torch.from_numpy(np.log(probs * 0.999 + 0.001 / probs.shape[-1])).permute(2, 0, 1)[None].float()


def confident_logits(frame: np.ndarray, num_colours: int) -> torch.Tensor:
    """Logits of a decoder sure of every pixel of ``frame`` (indices)."""
    return logits_of(np.eye(num_colours)[frame])


def decode(prior: PaddlePrior, logits: torch.Tensor, context: np.ndarray) -> np.ndarray:
    indices = logits.argmax(1)
    return prior.apply(indices, logits, torch.from_numpy(context.astype(np.int64))[None])[0].numpy()


def test_a_paddle_whose_move_the_decoder_is_unsure_of_is_drawn_whole(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    prior = PaddlePrior.for_palette(indexer.palette.tolist())
    last = context[-1]
    paddle = paddle_columns(last, palette)
    probs = np.eye(len(indexer.palette))[last]
    rows = slice(*PADDLE_ROWS)
    for cols in (paddle[-4:], paddle[-1] + 1 + np.arange(4)):   # stayed, or moved 4 px right: each end alone
        probs[rows, cols] = 0.0
        probs[rows, cols, palette.red], probs[rows, cols, palette.black] = 0.45, 0.55
    logits = logits_of(probs)
    plain = logits.argmax(1)[0].numpy()
    assert objects.paddle_width(indexer.to_rgb(plain)) == 12              # each pixel alone: a short paddle
    drawn = decode(prior, logits, context)
    assert objects.paddle_well_formed(indexer.to_rgb(drawn))
    assert paddle_columns(drawn, palette)[0] in (paddle[0], paddle[0] + 4)
    outside = np.ones(drawn.shape, dtype=bool)
    outside[rows] = False
    assert (drawn[outside] == plain[outside]).all()                     # the rest of the frame as drawn


def test_a_paddle_cut_short_in_the_last_frame_comes_back_at_the_contexts_width(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    prior = PaddlePrior.for_palette(indexer.palette.tolist())
    damaged = context.copy()
    damaged[-1] = erase_paddle_end(context[-1], palette, 4, right=True)
    drawn = decode(prior, confident_logits(damaged[-1], len(indexer.palette)), damaged)   # the damage copied
    assert objects.paddle_width(indexer.to_rgb(drawn)) == 16
    short = np.stack([erase_paddle_end(f, palette, 4, right=True) for f in context])   # every frame 12 px: kept
    drawn = decode(prior, confident_logits(short[-1], len(indexer.palette)), short)
    assert objects.paddle_width(indexer.to_rgb(drawn)) == 12


def test_a_ball_beside_the_paddle_stays_and_stray_pieces_go(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    prior = PaddlePrior.for_palette(indexer.palette.tolist())
    paddle = paddle_columns(context[-1], palette)
    frame = draw_ball(context[-1], palette, PADDLE_ROWS[0], FIELD_X[0] + 2)       # a ball falling past
    frame[PADDLE_ROWS[0]:PADDLE_ROWS[1], paddle[-1] + 1:paddle[-1] + 4] = palette.red   # a smear at its end
    frame[PADDLE_ROWS[0] + 1, paddle[-1] + 20:paddle[-1] + 25] = palette.red            # a fragment
    drawn = decode(prior, confident_logits(frame, len(indexer.palette)), context)
    red = drawn[PADDLE_ROWS[0]:PADDLE_ROWS[1], FIELD_X[0]:FIELD_X[1]] == palette.red
    assert red[:, 2:4].all()                                             # the ball
    assert np.array_equal(paddle_columns(drawn, palette)[2:], paddle)    # the paddle, without the smear
    assert red.sum() == 4 * 2 + 4 * 16


def test_the_right_wall_may_hide_part_of_the_paddle_the_left_never() -> None:
    masks, widths = paddle_masks((16, 12), 144, MIN_SHOWN)
    shown = masks.sum(1)
    assert set(shown[widths == 16]) == set(shown[widths == 12]) | {13, 14, 15, 16} == set(range(MIN_SHOWN, 17))
    assert masks[shown < widths][:, -1].all()                            # cut ones touch the right edge
    assert not (masks[:, 0] & (shown < widths)).any()


def test_a_palette_without_the_paddle_colour_has_no_prior() -> None:
    assert PaddlePrior.for_palette([[0, 0, 0], [236, 236, 236]]) is None
