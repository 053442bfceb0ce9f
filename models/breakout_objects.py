"""Breakout's objects read from RGB pixels (uint8 (..., 210, 160, 3)): paddle, ball and bricks.

Used by the scripted player and by every world-model metric. The paddle and the ball share the
colour (200, 72, 72) with the lowest row of bricks, so each is searched for in its own rows."""
from __future__ import annotations

import cv2
import numpy as np

FRAME_SHAPE = (210, 160)      # rows, columns of a frame
BALL_PADDLE_RGB = (200, 72, 72)
WALL_RGB = (142, 142, 142)     # the walls, the score, and the ball above the bricks
FIELD_X = (8, 152)            # columns inside the side walls
PADDLE_ROWS = (189, 193)      # the paddle is 4 rows tall
BALL_ROWS = (32, 189)         # between the score area and the paddle
BRICK_ROWS = (57, 93)         # six rows of bricks, each 6 pixels tall
LOST_ROW = 180.0              # a ball last seen at or below this row fell past the paddle
BRICK_PIXELS = 6 * 8
BRICK_SIZE = (6, 8)           # rows, columns of one brick
NUM_BRICKS = 6 * 18
BRICK_POINTS = (7, 7, 4, 4, 1, 1)   # points of a brick in each of the six rows, top first
BRICK_ROW_RGB = ((200, 72, 72), (198, 108, 58), (180, 122, 48), (162, 162, 42), (72, 160, 72), (66, 72, 200))  # top first
BRICK_STANDING_SHARE = 0.75   # a brick cell at least this lit holds a brick (bricks_broken)
BRICK_GONE_SHARE = 0.25       # ... and at most this lit, none
PADDLE_WIDTHS = (16, 12)      # the paddle's widths: 12 px after the ball has reached the top wall (measured)
BALL_SIZE = (4, 2)            # rows, columns of the ball
BALL_WIDTH = BALL_SIZE[1]


def _red_mask(frames: np.ndarray, rows: tuple[int, int]) -> np.ndarray:
    """Boolean (B, rows, field width) mask of the ball/paddle colour."""
    region = frames[..., rows[0]:rows[1], FIELD_X[0]:FIELD_X[1], :]
    r, g, b = BALL_PADDLE_RGB
    return (region[..., 0] == r) & (region[..., 1] == g) & (region[..., 2] == b)


def _as_batch(frames: np.ndarray) -> tuple[np.ndarray, bool]:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        return frames[None], True
    return frames, False


def paddle_x(frames: np.ndarray) -> np.ndarray:
    """Centre column of the paddle in pixels, NaN where no paddle is visible. (B,) or scalar."""
    batch, single = _as_batch(frames)
    mask = _red_mask(batch, PADDLE_ROWS).any(axis=1)  # (B, W)
    cols = np.arange(FIELD_X[0], FIELD_X[1], dtype=np.float64)
    count = mask.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(count > 0, (mask * cols).sum(axis=1) / count, np.nan)
    return x[0] if single else x


def ball_pixels(batch: np.ndarray) -> np.ndarray:
    """(B, H, W) mask of ball pixels between the score and the paddle.

    Below and above the wall the ball is the only thing drawn, in red. Inside the brick band it takes
    the colour of the band it crosses, so there it is any lit pixel of a brick cell (6 x 8 pixels)
    that is not lit whole: a whole lit cell is a brick."""
    region = batch[:, BALL_ROWS[0]:BALL_ROWS[1], FIELD_X[0]:FIELD_X[1], :]
    lit = (region[..., 0] | region[..., 1] | region[..., 2]) != 0  # (B, H, W)
    mask = _red_mask(batch, BALL_ROWS)
    lo, hi = BRICK_ROWS[0] - BALL_ROWS[0], BRICK_ROWS[1] - BALL_ROWS[0]
    band = lit[:, lo:hi, :]
    b, h, w = band.shape
    cells = band.reshape(b, h // 6, 6, w // 8, 8)               # (B, 6 rows, 6, 18 columns, 8)
    whole = cells.all(axis=(2, 4), keepdims=True)
    mask[:, lo:hi, :] = (cells & ~whole).reshape(b, h, w)
    return mask


def ball_position(frames: np.ndarray) -> np.ndarray:
    """(row, column) of the ball's centre in pixels, NaN where no ball is visible. (B, 2) or (2,)."""
    batch, single = _as_batch(frames)
    mask = ball_pixels(batch)
    rows = np.arange(BALL_ROWS[0], BALL_ROWS[1], dtype=np.float64)
    cols = np.arange(FIELD_X[0], FIELD_X[1], dtype=np.float64)
    count = mask.sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(count > 0, (mask.sum(axis=2) * rows).sum(axis=1) / count, np.nan)
        c = np.where(count > 0, (mask.sum(axis=1) * cols).sum(axis=1) / count, np.nan)
    pos = np.stack([r, c], axis=-1)
    return pos[0] if single else pos


def paddle_ends(frames: np.ndarray) -> np.ndarray:
    """(left, right): the first and last column holding red in the paddle's rows, NaN where none.
    (B, 2) or (2,)."""
    batch, single = _as_batch(frames)
    red = _red_mask(batch, PADDLE_ROWS).any(axis=1)           # (B, W)
    shown = red.any(axis=1)
    left = FIELD_X[0] + red.argmax(axis=1)
    right = FIELD_X[1] - 1 - red[:, ::-1].argmax(axis=1)
    ends = np.where(shown[:, None], np.stack([left, right], axis=-1), np.nan)
    return ends[0] if single else ends


def paddle_well_formed(frames: np.ndarray) -> np.ndarray:
    """True where the paddle is whole: its longest solid run of columns red in all its rows is as wide
    as the game draws it (``PADDLE_WIDTHS``), or narrower where it runs into a side wall, and no other
    column of its rows holds red but a passing ball's width. (B,) or scalar."""
    batch, single = _as_batch(frames)
    mask = _red_mask(batch, PADDLE_ROWS)                      # (B, rows, W)
    full, any_red = mask.all(axis=1), mask.any(axis=1)        # (B, W) each
    ok = np.zeros(len(batch), dtype=bool)
    width = full.shape[1]
    for i in range(len(batch)):
        edges = np.diff(np.r_[0, full[i].astype(np.int8), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if not len(starts):
            continue
        longest = int(np.argmax(ends - starts))
        run = ends[longest] - starts[longest]
        at_wall = starts[longest] == 0 or ends[longest] == width
        stray = any_red[i].sum() - run
        ok[i] = (run in PADDLE_WIDTHS or (at_wall and run < max(PADDLE_WIDTHS))) and stray <= BALL_WIDTH
    return ok[0] if single else ok


def paddle_width(frames: np.ndarray) -> np.ndarray:
    """Columns red in every paddle row. (B,) or scalar."""
    batch, single = _as_batch(frames)
    width = _red_mask(batch, PADDLE_ROWS).all(axis=1).sum(axis=1)
    return width[0] if single else width


def ball_count(frames: np.ndarray) -> np.ndarray:
    """Number of separate balls shown (blobs of ball pixels; pixels within 2 px count as one). (B,) or scalar."""
    batch, single = _as_batch(frames)
    kernel = np.ones((5, 5), np.uint8)
    counts = np.array([cv2.connectedComponents(cv2.dilate(m.astype(np.uint8), kernel))[0] - 1
                       for m in ball_pixels(batch)])
    return counts[0] if single else counts


def brick_lit_share(frames: np.ndarray) -> np.ndarray:
    """(B, 6, 18) float: the share of each brick cell's pixels that are lit. (B, 6, 18) or (6, 18)."""
    batch, single = _as_batch(frames)
    region = batch[:, BRICK_ROWS[0]:BRICK_ROWS[1], FIELD_X[0]:FIELD_X[1], :]
    lit = (region[..., 0] | region[..., 1] | region[..., 2]) != 0
    b, h, w = lit.shape
    shares = lit.reshape(b, h // BRICK_SIZE[0], BRICK_SIZE[0], w // BRICK_SIZE[1], BRICK_SIZE[1]).mean(axis=(2, 4))
    return shares[0] if single else shares


def bricks_broken(frames: np.ndarray) -> np.ndarray:
    """(n, 6, 18) bool over the n steps of frames (n + 1, H, W, 3): the bricks that went.

    A brick goes when its cell, at least three-quarters lit, is at most a quarter lit a step later
    (a ball inside the emptied cell lights a sixth of it). A drawn frame that only loses a few of a
    brick's pixels, or half of it, has not broken it: a player still sees the brick there."""
    shares = brick_lit_share(frames)
    return (shares[:-1] >= BRICK_STANDING_SHARE) & (shares[1:] <= BRICK_GONE_SHARE)


def ball_present(frames: np.ndarray) -> np.ndarray:
    """True where a ball is visible. (B,) or scalar."""
    return ~np.isnan(ball_position(frames)[..., 0])


def bricks_remaining(frames: np.ndarray) -> np.ndarray:
    """Number of bricks left (0-108), from the non-black pixels of the brick band. (B,) or scalar."""
    lit_pixels = np.rint(brick_lit_share(frames) * BRICK_PIXELS).sum(axis=(-2, -1))
    return np.minimum(np.rint(lit_pixels / BRICK_PIXELS), NUM_BRICKS).astype(np.int64)
