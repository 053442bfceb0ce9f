"""The score and the lives on the neural game's screen, drawn from its reward model's counters.

The decoder draws Breakout's digits from the frames before, but it cannot know the score: where a
brick goes it redraws the digits as best it can and they come out garbled, and it rarely draws the
lives digit drop. The env counts the score and the lives with its reward model
(``models.neural_env``), so the screen shows those counts, in Breakout's own digits: each digit's
glyph (10 x 12 px) is read from recorded frames, where the score shown is the sum of the rewards so
far and the lives digit the lives counter (``fit_glyphs``). In the recordings every frame whose
counters had held for two steps shows one glyph for each digit, in each of the four places."""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

import numpy as np
import torch

from models.breakout_objects import WALL_RGB

DIGIT_ROWS = (5, 15)                 # the digits' rows at the top of the screen
DIGIT_WIDTH = 12
SCORE_COLUMNS = (36, 52, 68)         # the score's hundreds, tens and units
LIVES_COLUMN = 100
PLACES = SCORE_COLUMNS + (LIVES_COLUMN,)
STEADY_STEPS = 2                     # a frame is read only where the score had not moved for this many steps
DIGIT_RGB = WALL_RGB


def shown_digits(score: int, lives: int) -> tuple[int, ...]:
    """The digit in each of ``PLACES`` for a score and a lives count."""
    return score // 100 % 10, score // 10 % 10, score % 10, lives % 10


def digit_cells(lit: np.ndarray) -> np.ndarray:
    """(N, H, W) bool lit pixels -> (N, 4, 10, 12) the cells of the four digit places."""
    rows = lit[:, DIGIT_ROWS[0]:DIGIT_ROWS[1]]
    return np.stack([rows[:, :, c:c + DIGIT_WIDTH] for c in PLACES], axis=1)


def to_rows(cell: np.ndarray) -> list[int]:
    """A (10, 12) bool glyph -> one int a row, its leftmost pixel the highest bit."""
    return [int(v) for v in np.packbits(cell, axis=1, bitorder="big").astype(np.int64) @ [256, 1] >> 4]


def from_rows(rows: list[int]) -> np.ndarray:
    """``to_rows`` undone: (10, 12) bool."""
    bits = np.arange(DIGIT_WIDTH - 1, -1, -1)
    return (np.asarray(rows, dtype=np.int64)[:, None] >> bits & 1).astype(bool)


class GlyphReader:
    """Counts, game by game, the cell each digit place shows where its digit is due; ``glyphs`` then
    gives each digit's most common cell. Only the counts are kept, not the frames."""

    def __init__(self) -> None:
        self.seen: dict[int, Counter] = defaultdict(Counter)

    def add(self, frames: np.ndarray, rewards: np.ndarray, lives: np.ndarray) -> None:
        """One recorded game: frames (T + 1, H, W, 3) uint8 (the top ``DIGIT_ROWS[1]`` rows suffice),
        rewards (T,), lives (T + 1,) or (T,)."""
        score = np.concatenate([[0.0], np.cumsum(rewards)]).astype(np.int64)
        n = len(frames)
        steady = np.flatnonzero(score[STEADY_STEPS:n] == score[:n - STEADY_STEPS]) + STEADY_STEPS
        cells = digit_cells(frames[steady].max(-1) > 0)
        for cell, t in zip(cells, steady):
            for place, digit in zip(cell, shown_digits(int(score[t]), int(lives[min(t, len(lives) - 1)]))):
                self.seen[digit][place.tobytes()] += 1

    def glyphs(self) -> list[list[int]]:
        """For each digit 0-9 its most common cell (``to_rows``); empty where some digit was never
        shown steadily (the env then leaves the digits to the decoder)."""
        if set(self.seen) != set(range(10)):
            return []
        shape = (DIGIT_ROWS[1] - DIGIT_ROWS[0], DIGIT_WIDTH)
        return [to_rows(np.frombuffer(self.seen[d].most_common(1)[0][0], dtype=bool).reshape(shape)) for d in range(10)]


def fit_glyphs(games: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[list[int]]:
    """``GlyphReader.glyphs`` of recorded games, each (frames, rewards, lives) as ``GlyphReader.add`` takes."""
    reader = GlyphReader()
    for game in games:
        reader.add(*game)
    return reader.glyphs()


class Scoreboard:
    """Draws the score and lives in ``glyphs`` into palette-index frames, and reads them back."""

    @classmethod
    def for_palette(cls, glyphs: list[list[int]], palette: list[list[int]]) -> Scoreboard | None:
        """The scoreboard of a world model's palette; None without glyphs, or without black or the
        digits' colour in the palette."""
        where = {tuple(rgb): i for i, rgb in enumerate(palette)}
        if not glyphs or DIGIT_RGB not in where or (0, 0, 0) not in where:
            return None
        return cls(glyphs, where[DIGIT_RGB], where[(0, 0, 0)])

    def __init__(self, glyphs: list[list[int]], lit_colour: int, black: int):
        self.glyphs = np.stack([from_rows(g) for g in glyphs])                     # (10, 10, 12) bool
        self._cells = torch.from_numpy(np.where(self.glyphs, lit_colour, black))   # (10, 10, 12) palette indices

    def draw(self, indices: torch.Tensor, score: float, lives: int) -> torch.Tensor:
        """Frames (B, H, W) palette indices with every digit place showing ``score`` and ``lives``."""
        out = indices.clone()
        cells = self._cells.to(device=indices.device, dtype=indices.dtype)
        for column, digit in zip(PLACES, shown_digits(int(score), int(lives))):
            out[:, slice(*DIGIT_ROWS), column:column + DIGIT_WIDTH] = cells[digit]
        return out

    def read(self, frame: np.ndarray) -> tuple[int, int] | None:
        """The score and lives an RGB frame (H, W, 3) shows, or None where a place shows no glyph."""
        cells = digit_cells(frame[None].max(-1) > 0)[0]                              # (4, 10, 12)
        digits = []
        for cell in cells:
            match = np.flatnonzero((self.glyphs == cell).all((1, 2)))
            if not len(match):
                return None
            digits.append(int(match[0]))
        return digits[0] * 100 + digits[1] * 10 + digits[2], digits[3]
