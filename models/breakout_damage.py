"""Breakout frames damaged the way a world model's own errors look: a paddle cut short, lengthened,
broken or shifted, a ball removed, moved, doubled or left where it was, stray pixels near the objects.

Used to train the frame cleaner (``models.frame_cleaner``) and to measure whether a model repairs
such damage (``models.closed_loop.repair_trials``). Frames are palette indices, uint8 (H, W); the
caller names the palette indices of black and of the ball/paddle colour. Every function returns a
damaged copy and leaves its input as it was."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.breakout_objects import BALL_ROWS, BALL_SIZE, BRICK_ROWS, FIELD_X, PADDLE_ROWS, ball_pixels
from models.cli import UserError

STRAY_ROWS = (BRICK_ROWS[1] + 4, PADDLE_ROWS[0] - 6)   # where a stray ball is drawn: the open field below the bricks
NEAR_PX = 6                 # flipped pixels land within this many pixels of the paddle or the ball


@dataclass(frozen=True)
class Palette:
    """The palette indices a damage needs, and the palette itself (K, 3) RGB, to find the ball."""
    colours: np.ndarray
    black: int
    red: int

    @classmethod
    def of(cls, colours: np.ndarray | list) -> "Palette":
        colours = np.asarray(colours, dtype=np.uint8)
        black = np.flatnonzero((colours == 0).all(axis=1))
        red = np.flatnonzero((colours == (200, 72, 72)).all(axis=1))
        if not black.size or not red.size:
            raise UserError("the palette has no black or no ball/paddle colour (200, 72, 72): the frames are not "
                            "Breakout's, and the damages and the frame cleaner know only Breakout")
        return cls(colours=colours, black=int(black[0]), red=int(red[0]))


def paddle_columns(frame: np.ndarray, palette: Palette) -> np.ndarray:
    """Columns (absolute, sorted) inside the side walls where the paddle rows hold the paddle colour."""
    rows = frame[PADDLE_ROWS[0]:PADDLE_ROWS[1], FIELD_X[0]:FIELD_X[1]]
    return np.flatnonzero((rows == palette.red).any(axis=0)) + FIELD_X[0]


def ball_mask(frame: np.ndarray, palette: Palette) -> np.ndarray:
    """(H, W) bool: the ball's pixels (as ``breakout_objects.ball_position`` finds them)."""
    mask = np.zeros(frame.shape, dtype=bool)
    mask[BALL_ROWS[0]:BALL_ROWS[1], FIELD_X[0]:FIELD_X[1]] = ball_pixels(palette.colours[frame][None])[0]
    return mask


def _set_paddle_columns(frame: np.ndarray, columns: np.ndarray, value: int) -> np.ndarray:
    out = frame.copy()
    columns = columns[(columns >= FIELD_X[0]) & (columns < FIELD_X[1])]
    out[PADDLE_ROWS[0]:PADDLE_ROWS[1], columns] = value
    return out


def erase_paddle_end(frame: np.ndarray, palette: Palette, px: int, right: bool) -> np.ndarray:
    """The paddle with ``px`` columns erased at its right (or left) end."""
    cols = paddle_columns(frame, palette)
    if not cols.size:
        return frame.copy()
    gone = cols[-px:] if right else cols[:px]
    return _set_paddle_columns(frame, gone, palette.black)


def extend_paddle(frame: np.ndarray, palette: Palette, px: int, right: bool) -> np.ndarray:
    """The paddle lengthened by ``px`` columns at its right (or left) end."""
    cols = paddle_columns(frame, palette)
    if not cols.size:
        return frame.copy()
    extra = np.arange(cols[-1] + 1, cols[-1] + 1 + px) if right else np.arange(cols[0] - px, cols[0])
    return _set_paddle_columns(frame, extra, palette.red)


def shift_paddle(frame: np.ndarray, palette: Palette, dx: int) -> np.ndarray:
    """The paddle moved ``dx`` columns (positive: right), clipped at the walls."""
    cols = paddle_columns(frame, palette)
    if not cols.size or dx == 0:
        return frame.copy()
    return _set_paddle_columns(_set_paddle_columns(frame, cols, palette.black), cols + dx, palette.red)


def break_paddle(frame: np.ndarray, palette: Palette, rng: np.random.Generator) -> np.ndarray:
    """1-3 columns erased inside the paddle, or 1-2 of its rows cut along part of its width."""
    cols = paddle_columns(frame, palette)
    if cols.size < 5:
        return frame.copy()
    if rng.random() < 0.5:
        start = int(rng.integers(1, cols.size - 3))
        return _set_paddle_columns(frame, cols[start:start + int(rng.integers(1, 4))], palette.black)
    out = frame.copy()
    rows = rng.choice(np.arange(*PADDLE_ROWS), size=int(rng.integers(1, 3)), replace=False)
    lo = int(rng.integers(0, cols.size // 2))
    out[np.ix_(rows, cols[lo:lo + int(rng.integers(2, cols.size - lo + 1))])] = palette.black
    return out


def remove_ball(frame: np.ndarray, palette: Palette) -> np.ndarray:
    """The frame without its ball (its pixels black)."""
    out = frame.copy()
    out[ball_mask(frame, palette)] = palette.black
    return out


def draw_ball(frame: np.ndarray, palette: Palette, row: int, col: int) -> np.ndarray:
    """A ball (4 x 2 pixels) added with its top-left pixel at (row, col)."""
    out = frame.copy()
    out[row:row + BALL_SIZE[0], col:col + BALL_SIZE[1]] = palette.red
    return out


def stray_ball(frame: np.ndarray, palette: Palette, rng: np.random.Generator) -> np.ndarray:
    """A second ball drawn somewhere in the open field below the bricks."""
    row = int(rng.integers(STRAY_ROWS[0], STRAY_ROWS[1] - BALL_SIZE[0]))
    col = int(rng.integers(FIELD_X[0], FIELD_X[1] - BALL_SIZE[1]))
    return draw_ball(frame, palette, row, col)


def move_ball(frame: np.ndarray, palette: Palette, rng: np.random.Generator, max_px: int = 4) -> np.ndarray:
    """The ball moved by up to ``max_px`` pixels each way (when it is outside the bricks)."""
    rows, cols = np.nonzero(ball_mask(frame, palette))
    if not rows.size or rows.min() < BRICK_ROWS[1]:
        return frame.copy()
    dy, dx = (int(v) for v in rng.integers(-max_px, max_px + 1, size=2))
    row = int(np.clip(rows.min() + dy, BRICK_ROWS[1], PADDLE_ROWS[0] - BALL_SIZE[0]))
    col = int(np.clip(cols.min() + dx, FIELD_X[0], FIELD_X[1] - BALL_SIZE[1]))
    return draw_ball(remove_ball(frame, palette), palette, row, col)


def freeze_ball(frame: np.ndarray, previous: np.ndarray, palette: Palette) -> np.ndarray:
    """The frame with its ball where it was in ``previous`` (a ball that stood still)."""
    out = remove_ball(frame, palette)
    before = ball_mask(previous, palette)
    before[BRICK_ROWS[0]:BRICK_ROWS[1]] = False      # inside the bricks the ball takes the brick colours
    out[before] = palette.red
    return out


def flip_pixels(frame: np.ndarray, palette: Palette, rng: np.random.Generator, max_pixels: int = 8) -> np.ndarray:
    """1 to ``max_pixels`` pixels near the paddle or the ball set to random palette colours."""
    rows, cols = np.nonzero(ball_mask(frame, palette))
    paddle = paddle_columns(frame, palette)
    centres = [(int(rows.mean()), int(cols.mean()))] if rows.size else []
    if paddle.size:
        centres.append(((PADDLE_ROWS[0] + PADDLE_ROWS[1]) // 2, int(paddle.mean())))
    if not centres:
        return frame.copy()
    out = frame.copy()
    for _ in range(int(rng.integers(1, max_pixels + 1))):
        r, c = centres[int(rng.integers(len(centres)))]
        r = int(np.clip(r + rng.integers(-NEAR_PX, NEAR_PX + 1), BALL_ROWS[0], PADDLE_ROWS[1] - 1))
        c = int(np.clip(c + rng.integers(-NEAR_PX, NEAR_PX + 1), FIELD_X[0], FIELD_X[1] - 1))
        out[r, c] = rng.integers(len(palette.colours))
    return out


def random_damage(frame: np.ndarray, palette: Palette, rng: np.random.Generator,
                  previous: np.ndarray | None = None) -> np.ndarray:
    """One or two damages drawn at random from all of the above (``freeze_ball`` needs the frame
    before, ``previous``)."""
    damages = (
        lambda f: erase_paddle_end(f, palette, int(rng.integers(1, 9)), bool(rng.random() < 0.5)),
        lambda f: extend_paddle(f, palette, int(rng.integers(1, 5)), bool(rng.random() < 0.5)),
        lambda f: break_paddle(f, palette, rng),
        lambda f: remove_ball(f, palette),
        lambda f: stray_ball(f, palette, rng),
        lambda f: move_ball(f, palette, rng),
        lambda f: flip_pixels(f, palette, rng),
    ) + (() if previous is None else (lambda f: freeze_ball(f, previous, palette),))
    out = frame
    for i in rng.choice(len(damages), size=int(rng.integers(1, 3)), replace=False):
        out = damages[int(i)](out)
    return out
