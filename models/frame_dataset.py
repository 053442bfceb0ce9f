"""Frames for the world model: palette indices, splits by game, and windows of consecutive frames.

Atari frames hold a handful of colours (Breakout: 9), so every frame is stored in memory as one
palette index per pixel, uint8 (H, W): a third of the RGB size, and the form the model predicts.
The palette is read from the training games, so nothing here knows which game is played.

A *window* is ``context_frames`` frames followed by ``steps`` next frames, all from one game. At
the start of a game the context is padded by repeating the first frame (as the player sees it when
the world model is started from a reset), so a window never reaches across a game boundary."""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from models.cli import UserError
from models.episodes import load_episode

MAX_PALETTE = 64           # more colours than this means the game is not palette-like enough
UNKNOWN = 255              # marks a lookup-table entry not yet resolved to a palette index
PALETTE_SAMPLE_EVERY = 10  # frames of each game read when building the palette


@dataclass
class GameSplit:
    """Episode files (one game each) for training, validation and testing; no game is in two."""
    train: list[Path]
    val: list[Path]
    test: list[Path]


def split_games(files: Sequence[str | os.PathLike], seed: int = 0, val_fraction: float = 0.1,
                test_fraction: float = 0.1) -> GameSplit:
    """Shuffle whole games with ``seed`` and cut them 80/10/10 (by default).

    Validation and test each get at least one game, training the rest; the order of ``files`` does
    not matter, so every stage that splits the same folder with the same seed gets the same split."""
    files = sorted(Path(f) for f in files)
    if len(files) < 3:
        raise UserError(f"need at least 3 recorded games to split into train/val/test, found {len(files)}")
    order = np.random.default_rng(seed).permutation(len(files))
    n_val = max(1, round(val_fraction * len(files)))
    n_test = max(1, round(test_fraction * len(files)))
    shuffled = [files[i] for i in order]
    return GameSplit(train=sorted(shuffled[n_val + n_test:]), val=sorted(shuffled[:n_val]),
                     test=sorted(shuffled[n_val:n_val + n_test]))


def split_folders(folders: Sequence[Sequence[str | os.PathLike]], seed: int = 0) -> GameSplit:
    """``split_games`` on each folder's files on its own, joined: adding a folder of games never moves
    a game of another folder from one split to another, so held-out games stay held out."""
    parts = [split_games(files, seed=seed) for files in folders]
    return GameSplit(train=sorted(f for p in parts for f in p.train), val=sorted(f for p in parts for f in p.val),
                     test=sorted(f for p in parts for f in p.test))


def rgb_keys(frames: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) RGB -> uint32 (...) key 0xRRGGBB, one number per pixel."""
    keys = np.left_shift(frames[..., 0], 16, dtype=np.uint32)   # channel by channel: no (..., 3) uint32 copy
    keys |= np.left_shift(frames[..., 1], 8, dtype=np.uint32)
    keys |= frames[..., 2]
    return keys


def palette_from_frames(frame_sets: Sequence[np.ndarray], max_colours: int = MAX_PALETTE) -> np.ndarray:
    """The colours of some frames, most frequent first: uint8 (K, 3).

    More than ``max_colours`` colours means the frames are not palette images (a lossy video, say)."""
    counts: Counter[int] = Counter()
    for frames in frame_sets:
        keys, n = np.unique(rgb_keys(frames), return_counts=True)
        counts.update(dict(zip(keys.tolist(), n.tolist())))
    if len(counts) > max_colours:
        raise UserError(f"the frames hold {len(counts)} colours, more than the {max_colours} a palette model "
                        "takes; record lossless episodes (.npz), not decoded video")
    keys = sorted(counts, key=lambda k: (-counts[k], k))
    return np.array([[(k >> 16) & 255, (k >> 8) & 255, k & 255] for k in keys], dtype=np.uint8)


def palette_from_games(files: Sequence[str | os.PathLike], every: int = PALETTE_SAMPLE_EVERY) -> np.ndarray:
    """Palette of a set of games, from every ``every``-th frame of each (and its last frame)."""
    def sample(path: str | os.PathLike) -> np.ndarray:
        frames = load_episode(path).frames
        return np.concatenate([frames[::every], frames[-1:]])

    return palette_from_frames([sample(f) for f in files])


class PaletteIndexer:
    """RGB frames <-> palette indices through a 2^24-entry lookup table (16 MB).

    A colour missing from the palette maps to the nearest palette colour (squared RGB distance),
    resolved once and then remembered in the table."""

    def __init__(self, palette: np.ndarray | Sequence[Sequence[int]]):
        self.palette = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)  # (K, 3)
        if not 1 <= len(self.palette) < UNKNOWN:
            raise ValueError(f"a palette needs 1 to {UNKNOWN - 1} colours, got {len(self.palette)}")
        self.lut = np.full(1 << 24, UNKNOWN, dtype=np.uint8)
        self.lut[rgb_keys(self.palette)] = np.arange(len(self.palette), dtype=np.uint8)

    def to_indices(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (..., H, W, 3) RGB -> uint8 (..., H, W) palette indices."""
        keys = rgb_keys(frames)
        indices = self.lut[keys]
        unknown = indices == UNKNOWN
        if unknown.any():
            self._resolve(np.unique(keys[unknown]))
            indices = self.lut[keys]
        return indices

    def to_rgb(self, indices: np.ndarray) -> np.ndarray:
        """uint8 (..., H, W) palette indices -> uint8 (..., H, W, 3) RGB."""
        return self.palette[indices]

    def _resolve(self, keys: np.ndarray) -> None:
        rgb = np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=-1).astype(np.int64)  # (U, 3)
        dist = ((rgb[:, None, :] - self.palette[None].astype(np.int64)) ** 2).sum(-1)                    # (U, K)
        self.lut[keys] = dist.argmin(1).astype(np.uint8)


@dataclass
class Windows:
    """A batch of windows: palette-index frames and the actions between them (never shown to the
    latent action model; kept for the stages and metrics that compare with the real controls)."""
    context: np.ndarray   # (B, C, H, W) uint8, oldest first
    future: np.ndarray    # (B, S, H, W) uint8, the S frames after the context
    actions: np.ndarray   # (B, S) int64, action taken before each future frame


def window_frame_indices(t: int, context_frames: int, steps: int) -> np.ndarray:
    """Frame numbers of the window whose last context frame is ``t``: (C + S,), clipped at frame 0."""
    return np.maximum(np.arange(t - context_frames + 1, t + steps + 1), 0)


def take_window(frames: np.ndarray, actions: np.ndarray, t: int, context_frames: int,
                steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(C + S, H, W) frames and (S,) actions of one window of one game."""
    return frames[window_frame_indices(t, context_frames, steps)], actions[t:t + steps].astype(np.int64)


def stack_windows(parts: list[tuple[np.ndarray, np.ndarray]], context_frames: int) -> Windows:
    frames = np.stack([p[0] for p in parts])  # (B, C + S, H, W)
    return Windows(context=frames[:, :context_frames], future=frames[:, context_frames:],
                   actions=np.stack([p[1] for p in parts]))


@dataclass
class IndexedGame:
    frames: np.ndarray                # (T+1, H, W) uint8 palette indices
    actions: np.ndarray               # (T,)

    @property
    def nbytes(self) -> int:
        return self.frames.nbytes


def load_indexed_game(path: str | os.PathLike, indexer: PaletteIndexer) -> IndexedGame:
    ep = load_episode(path)
    return IndexedGame(frames=indexer.to_indices(ep.frames), actions=ep.actions)


def default_load_workers(processes: int = 1) -> int:
    """Threads each of ``processes`` processes reads games with: the cores shared out, at most 8."""
    return max(1, min(8, (os.cpu_count() or 1) // processes))


class FramePool:
    """Training games held in memory as palette indices; ``sample`` draws random windows with numpy.

    When the games do not all fit in ``memory_mb``, the pool holds as many as fit and, every
    ``swap_every`` batches, replaces its oldest game with the next one (games cycle in a shuffled
    order), so a long run still sees every game while memory stays bounded. ``load_workers`` threads
    read the first games side by side (numpy and zlib let go of the GIL), a chunk of that many at a
    time, so the pool can overshoot ``memory_mb`` by up to ``load_workers - 1`` games."""

    def __init__(self, files: Sequence[str | os.PathLike], indexer: PaletteIndexer, context_frames: int,
                 steps: int = 1, memory_mb: float = 1024.0, swap_every: int = 50,
                 rng: np.random.Generator | None = None, load_workers: int = 1):
        if not files:
            raise UserError("no training games to sample from")
        self.indexer = indexer
        self.context_frames = context_frames
        self.steps = steps
        self.swap_every = swap_every
        self.rng = rng or np.random.default_rng()
        self.windows: list[int] = []   # per game, how many windows it holds
        self.queue = [Path(files[i]) for i in self.rng.permutation(len(files))]
        self.next_file = 0
        self.games: list[IndexedGame] = []
        budget = memory_mb * 2 ** 20
        with ThreadPoolExecutor(load_workers) as pool:
            while self.next_file < len(self.queue) and (not self.games or sum(g.nbytes for g in self.games) < budget):
                chunk = self.queue[self.next_file:self.next_file + load_workers]
                self.next_file += len(chunk)
                for game in pool.map(self._load, chunk):
                    self._add(game)
        if not self.games:
            raise UserError(f"none of the {len(files)} training games has the {steps} step(s) a window needs")
        self.rotating = self.next_file < len(self.queue)
        self.batches = 0

    def _load(self, path: Path) -> IndexedGame:
        return load_indexed_game(path, self.indexer)

    def _load_next(self) -> bool:
        added = self._add(self._load(self.queue[self.next_file % len(self.queue)]))
        self.next_file += 1
        return added

    def _add(self, game: IndexedGame) -> bool:
        """Keep ``game`` if it holds a window; say whether it did."""
        if game.actions.shape[0] < self.steps:
            return False
        self.games.append(game)
        self.windows.append(game.actions.shape[0] - self.steps + 1)
        return True

    @property
    def num_frames(self) -> int:
        return sum(g.frames.shape[0] for g in self.games)

    def sample(self, batch_size: int) -> Windows:
        """``batch_size`` windows drawn uniformly from all the windows in memory."""
        if self.rotating and self.batches and self.batches % self.swap_every == 0:
            self.games.pop(0)
            self.windows.pop(0)
            while not self._load_next():   # a game too short for a window is passed over; one long enough exists
                pass
        self.batches += 1
        totals = np.array(self.windows, dtype=np.float64)
        which = self.rng.choice(len(self.games), size=batch_size, p=totals / totals.sum())
        parts = []
        for g in which:
            game = self.games[g]
            t = int(self.rng.random() * totals[g])
            parts.append(take_window(game.frames, game.actions, t, self.context_frames, self.steps))
        return stack_windows(parts, self.context_frames)


def fixed_windows(files: Sequence[str | os.PathLike], indexer: PaletteIndexer, context_frames: int, steps: int,
                  num_windows: int, seed: int = 0) -> Windows:
    """``num_windows`` windows spread evenly over the given games, the same for the same seed:
    the validation and test sets. Only the windows are kept, never whole games."""
    rng = np.random.default_rng(seed)
    per_game = np.bincount(np.arange(num_windows) % len(files), minlength=len(files))
    parts = []
    for path, n in zip(files, per_game):
        if n == 0:
            continue
        game = load_indexed_game(path, indexer)
        valid = game.actions.shape[0] - steps + 1
        if valid < 1:
            continue
        for t in rng.choice(valid, size=n, replace=n > valid):
            parts.append(take_window(game.frames, game.actions, int(t), context_frames, steps))
    if not parts:
        raise UserError(f"no game among {len(files)} is long enough for a window of {steps} steps")
    return stack_windows(parts, context_frames)
