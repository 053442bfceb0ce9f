"""How good is a predicted frame? Pure functions: uint8 RGB frames (N, H, W, 3) in, numbers out.

Breakout changes ~0.2% of its pixels per step, so copying the last frame already scores ~34 dB PSNR:
report every frame metric beside that baseline, and look at the objects (paddle, ball) that the
game is about. Used by train_latent_action.py and by the world-model evaluation."""
from __future__ import annotations

import math

import cv2
import numpy as np

from models import breakout_objects as objects

MAX_PSNR = 100.0          # PSNR of identical frames would be infinite; report this instead
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5


def _check(pred: np.ndarray, truth: np.ndarray) -> None:
    if pred.shape != truth.shape or pred.ndim != 4 or pred.shape[-1] != 3:
        raise ValueError(f"expected two (N, H, W, 3) frame batches of one shape, got {pred.shape} and {truth.shape}")


def _psnr_from_mse(mse: np.ndarray | float) -> np.ndarray | float:
    with np.errstate(divide="ignore"):
        return np.minimum(10 * np.log10(255.0 ** 2 / np.asarray(mse, dtype=np.float64)), MAX_PSNR)


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB of the squared error pooled over all frames (capped at MAX_PSNR): one exact frame
    does not make the average infinite."""
    _check(pred, truth)
    mse = np.mean((pred.astype(np.float64) - truth.astype(np.float64)) ** 2)
    return float(_psnr_from_mse(mse))


def psnr_per_frame(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N,) PSNR of each frame in dB, capped at MAX_PSNR."""
    _check(pred, truth)
    mse = ((pred.astype(np.float64) - truth.astype(np.float64)) ** 2).mean(axis=(1, 2, 3))
    return _psnr_from_mse(mse)


def _blur(x: np.ndarray) -> np.ndarray:
    """Gaussian filter of one float32 (H, W, 3) image, valid positions only (the border is cropped)."""
    half = SSIM_WINDOW // 2
    return cv2.GaussianBlur(x, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA)[half:-half, half:-half]


def ssim(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5, range 255)
    over frames and RGB channels, computed on the window positions that fit inside the frame."""
    _check(pred, truth)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for a, b in zip(pred.astype(np.float32), truth.astype(np.float32)):
        mu_a, mu_b = _blur(a), _blur(b)
        var_a = _blur(a * a) - mu_a ** 2
        var_b = _blur(b * b) - mu_b ** 2
        cov = _blur(a * b) - mu_a * mu_b
        s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
        scores.append(float(s.mean()))
    return float(np.mean(scores))


def pixel_exact_share(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of frames in which every pixel is right."""
    _check(pred, truth)
    return float(np.all(pred == truth, axis=(1, 2, 3)).mean())


def changed_pixel_accuracy(pred: np.ndarray, truth: np.ndarray, previous: np.ndarray) -> float:
    """Share of the pixels that changed from ``previous`` to ``truth`` that the prediction got exactly
    right (copying the previous frame scores 0); NaN when nothing changed."""
    _check(pred, truth)
    changed = np.any(truth != previous, axis=-1)  # (N, H, W)
    if not changed.any():
        return math.nan
    right = np.all(pred == truth, axis=-1)
    return float(right[changed].mean())


def paddle_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean |x| error of the paddle centre in pixels, over frames where both show a paddle (NaN if none)."""
    a, b = objects.paddle_x(pred), objects.paddle_x(truth)
    both = ~np.isnan(a) & ~np.isnan(b)
    return float(np.abs(a - b)[both].mean()) if both.any() else math.nan


def ball_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean distance in pixels between ball centres, over frames where both show a ball (NaN if none)."""
    a, b = objects.ball_position(pred), objects.ball_position(truth)
    both = ~np.isnan(a[:, 0]) & ~np.isnan(b[:, 0])
    return float(np.linalg.norm(a - b, axis=1)[both].mean()) if both.any() else math.nan


def ball_presence_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of frames where the prediction shows a ball exactly when the truth does."""
    return float((objects.ball_present(pred) == objects.ball_present(truth)).mean())


def ball_recall(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of the frames showing a ball in ``truth`` whose prediction shows one too (NaN if none does):
    a world model that loses the ball is unplayable, one that shows it a frame early much less so."""
    shown = objects.ball_present(truth)
    return float(objects.ball_present(pred)[shown].mean()) if shown.any() else math.nan


def frame_metrics(pred: np.ndarray, truth: np.ndarray, previous: np.ndarray) -> dict[str, float]:
    """Every one-step frame metric of ``pred`` against ``truth``; ``previous`` is the frame before."""
    return {
        "psnr": psnr(pred, truth),
        "ssim": ssim(pred, truth),
        "pixel_exact": pixel_exact_share(pred, truth),
        "changed_accuracy": changed_pixel_accuracy(pred, truth, previous),
        "paddle_error_px": paddle_error(pred, truth),
        "ball_error_px": ball_error(pred, truth),
        "ball_presence": ball_presence_accuracy(pred, truth),
        "ball_recall": ball_recall(pred, truth),
    }


def codebook_usage(codes: np.ndarray, num_codes: int) -> float:
    """Share of the codebook's entries that occur in ``codes`` (any shape)."""
    return float(np.unique(np.asarray(codes)).size / num_codes)


def codebook_perplexity(codes: np.ndarray, num_codes: int) -> float:
    """exp(entropy) of the code histogram: the number of equally used codes it is worth."""
    counts = np.bincount(np.asarray(codes).ravel(), minlength=num_codes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def delta_psnr(truth: np.ndarray, pred_inferred: np.ndarray, pred_random: np.ndarray) -> float:
    """Genie's controllability: PSNR of frames predicted with the latents inferred from the real video,
    minus PSNR of frames predicted with random latents (both at the same step, e.g. t = 4). A world
    model that ignores its latent action scores 0."""
    return psnr(pred_inferred, truth) - psnr(pred_random, truth)


def comparison_sheet(context: np.ndarray, truth: np.ndarray, pred: np.ndarray, rows: int = 4) -> np.ndarray:
    """An image of ``rows`` examples, one per row: last context frame | truth | prediction | difference.

    The difference is white where prediction and truth disagree. Returns uint8 (rows*(H+2), 4*(W+2), 3)."""
    rows = min(rows, len(truth))
    diff = np.where(np.any(pred != truth, axis=-1, keepdims=True), 255, 0).astype(np.uint8).repeat(3, axis=-1)
    lines = []
    for i in range(rows):
        tiles = [np.pad(img[i], ((1, 1), (1, 1), (0, 0)), constant_values=64) for img in (context, truth, pred, diff)]
        lines.append(np.concatenate(tiles, axis=1))
    return np.concatenate(lines, axis=0)
