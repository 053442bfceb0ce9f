"""Tests for models/world_model_metrics.py: known values on hand-made frames."""
from __future__ import annotations

import math

import numpy as np
import pytest

from models import world_model_metrics as wm
from models.breakout_objects import BALL_PADDLE_RGB, PADDLE_ROWS

H, W = 210, 160


def black(n: int = 2) -> np.ndarray:
    return np.zeros((n, H, W, 3), dtype=np.uint8)


def with_objects(paddle_x: list[float | None], ball: list[tuple[int, int] | None]) -> np.ndarray:
    """Frames with a 16-pixel paddle centred on paddle_x and a 2x4 ball with top-left corner (row, col)."""
    frames = black(len(paddle_x))
    for i, (px, b) in enumerate(zip(paddle_x, ball)):
        if px is not None:
            left = int(px - 7.5)
            frames[i, PADDLE_ROWS[0]:PADDLE_ROWS[1], left:left + 16] = BALL_PADDLE_RGB
        if b is not None:
            frames[i, b[0]:b[0] + 4, b[1]:b[1] + 2] = BALL_PADDLE_RGB
    return frames


def test_psnr_of_one_wrong_value_and_of_identical_frames():
    truth = black(2)
    pred = truth.copy()
    pred[0, 5, 5, 0] = 255  # squared error 255^2 in one of N*H*W*3 values
    assert wm.psnr(pred, truth) == pytest.approx(10 * math.log10(2 * H * W * 3))
    assert wm.psnr(truth, truth) == wm.MAX_PSNR
    per_frame = wm.psnr_per_frame(pred, truth)
    assert per_frame[0] == pytest.approx(10 * math.log10(H * W * 3)) and per_frame[1] == wm.MAX_PSNR


def test_ssim_is_one_for_identical_frames_and_matches_the_formula_on_flat_frames():
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (2, H, W, 3), dtype=np.uint8)
    assert wm.ssim(noisy, noisy) == pytest.approx(1.0)
    # Flat frames have no variance: SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1).
    a, b = np.full((1, H, W, 3), 100, np.uint8), np.full((1, H, W, 3), 150, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert wm.ssim(a, b) == pytest.approx((2 * 100 * 150 + c1) / (100 ** 2 + 150 ** 2 + c1), rel=1e-4)
    assert wm.ssim(a, b) == pytest.approx(wm.ssim(b, a))


def test_pixel_exact_share_and_changed_pixel_accuracy():
    previous = black(2)
    truth = previous.copy()
    truth[:, 10:12, 10:14] = 200           # 8 changed pixels per frame
    pred = truth.copy()
    pred[1, 10, 10] = 0                    # one changed pixel wrong in frame 1
    pred[1, 100, 100] = 7                  # and one unchanged pixel wrong
    assert wm.pixel_exact_share(pred, truth) == 0.5
    assert wm.changed_pixel_accuracy(pred, truth, previous) == pytest.approx(15 / 16)
    assert wm.changed_pixel_accuracy(previous, truth, previous) == 0.0  # copying scores nothing
    assert math.isnan(wm.changed_pixel_accuracy(previous, previous, previous))


def test_paddle_and_ball_errors_in_pixels():
    truth = with_objects([50.0, 80.0, 100.0], [(100, 60), (120, 30), None])
    pred = with_objects([53.0, 80.0, None], [(100, 63), (124, 30), (90, 90)])
    assert wm.paddle_error(pred, truth) == pytest.approx(1.5)  # frames 0 and 1; frame 2 has no predicted paddle
    assert wm.ball_error(pred, truth) == pytest.approx(3.5)    # 3 px across, 4 px down
    assert wm.ball_presence_accuracy(pred, truth) == pytest.approx(2 / 3)
    assert wm.ball_recall(pred, truth) == 1.0  # the extra ball in frame 2 is not a missed one
    assert wm.ball_recall(truth, pred) == pytest.approx(2 / 3)
    assert math.isnan(wm.ball_recall(pred, black(1)))
    assert math.isnan(wm.ball_error(black(1), black(1)))


def test_frame_metrics_of_a_perfect_prediction():
    truth = with_objects([50.0], [(100, 60)])
    m = wm.frame_metrics(truth, truth, black(1))
    assert m["pixel_exact"] == 1.0 and m["changed_accuracy"] == 1.0 and m["psnr"] == wm.MAX_PSNR
    assert m["paddle_error_px"] == 0.0 and m["ball_error_px"] == 0.0 and m["ball_presence"] == 1.0
    assert m["ball_recall"] == 1.0


def test_codebook_usage_and_perplexity():
    assert wm.codebook_usage(np.array([[0, 1], [1, 3]]), 8) == 3 / 8
    assert wm.codebook_perplexity(np.array([2, 2, 2]), 8) == pytest.approx(1.0)
    assert wm.codebook_perplexity(np.arange(8).repeat(5), 8) == pytest.approx(8.0)


def test_delta_psnr_rewards_the_inferred_latents():
    truth = with_objects([50.0], [(100, 60)])
    wrong = with_objects([90.0], [(100, 60)])
    assert wm.delta_psnr(truth, truth, wrong) > 0
    assert wm.delta_psnr(truth, wrong, wrong) == 0.0


def test_comparison_sheet_layout_marks_differences():
    truth = with_objects([50.0, 60.0], [(100, 60), None])
    pred = truth.copy()
    pred[0, 0, 0] = 255
    sheet = wm.comparison_sheet(black(2), truth, pred, rows=4)
    assert sheet.shape == (2 * (H + 2), 4 * (W + 2), 3) and sheet.dtype == np.uint8
    diff_tile = sheet[1:H + 1, 3 * (W + 2) + 1:4 * (W + 2) - 1]
    assert diff_tile[0, 0].tolist() == [255, 255, 255] and diff_tile.sum() == 3 * 255
