"""Stage 4's data: (real action, latent code) pairs, collected by running the latent action encoder over
games whose actions are known, with the frames around each pair; statistics and plots of which codes
each action meets.

On disk, pairs are ``action_latent_pairs.json`` as in the original, a list of
``{"action": int, "latent_code": [int, ...]}``, one per transition, and beside it
``action_latent_pairs_context.npz``: every frame once, as palette indices, and for each pair the
frame numbers of its context and of its next frame, so the state-aware map, and the end-to-end
check through the world model, can rebuild exactly what the world model saw."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.cli import UserError
from models.figures import pyplot, save_figure
from models.files import atomic_write, read_json
from models.frame_dataset import IndexedGame, window_frame_indices

NOOP = 0            # action 0 is NOOP in every ALE action set: the action "before" a game's first step
CONTEXT_SUFFIX = "_context.npz"
MAX_CONFUSION_PANELS = 4   # latent positions drawn in a plot of codes per action


# ============================================================================ pairs on disk

@dataclass
class PairSet:
    """(action, latent code) pairs and the frames around each one.

    ``frames[context_index[i]]`` are the context frames the encoder saw for pair ``i`` (oldest first)
    and ``frames[next_index[i]]`` the frame that followed its action."""
    actions: np.ndarray        # (N,) int64
    codes: np.ndarray          # (N, L) int64, L latent positions
    frames: np.ndarray         # (F, H, W) uint8 palette indices, each frame once
    palette: np.ndarray        # (K, 3) uint8 RGB of each palette index
    context_index: np.ndarray  # (N, C) int64 frame numbers of each pair's context
    next_index: np.ndarray     # (N,) int64 frame number of each pair's next frame
    game_index: np.ndarray     # (N,) int64 which game each pair comes from
    metadata: dict[str, Any] = field(default_factory=dict)  # num_codes, context_frames, game, action_meanings...

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def num_latents(self) -> int:
        return int(self.codes.shape[1])

    @property
    def num_codes(self) -> int:
        return int(self.metadata["num_codes"])

    @property
    def action_meanings(self) -> list[str]:
        return list(self.metadata["action_meanings"])

    def action_history(self, length: int) -> np.ndarray:
        """(N, length) int64: the ``length`` actions before each pair's, oldest first (NOOP before
        what is known)."""
        return action_history(self.actions, self.game_index, length)

    def state_index(self, length: int) -> np.ndarray:
        """(N, length) int64 frame numbers of the ``length`` frames up to each pair's last context
        frame, oldest first. Beyond its own context come the oldest context frames of the pairs before
        it in its game; before the first frame known, that frame again (a standing start)."""
        c = self.context_index.shape[1]
        if length <= c:
            return self.context_index[:, c - length:]
        extra = length - c
        columns = [self.context_index[:, 0]]          # columns[k]: the frame k steps before the context
        for back in range(1, extra + 1):
            column = columns[-1].copy()
            column[back:] = np.where(same_game_back(self.game_index, back), self.context_index[:-back, 0], column[back:])
            columns.append(column)
        return np.concatenate([np.stack(columns[:0:-1], axis=1), self.context_index], axis=1)


def action_history(actions: np.ndarray, game_index: np.ndarray, length: int) -> np.ndarray:
    """(N, length): the actions before each step, oldest first, for steps stored game after game in
    order; NOOP (a standing start) for steps before a game's first."""
    history = np.full((actions.shape[0], length), NOOP, dtype=np.int64)
    for back in range(1, length + 1):                 # column length - back holds the action `back` steps earlier
        history[back:, length - back] = np.where(same_game_back(game_index, back), actions[:-back], NOOP)
    return history


def same_game_back(game_index: np.ndarray, back: int) -> np.ndarray:
    """(max(N - back, 0),) bool: whether step i + back and step i, stored game after game in order,
    belong to the same game."""
    if back >= game_index.shape[0]:
        return np.zeros(0, bool)
    return game_index[back:] == game_index[:-back]


def context_path_for(json_path: str | os.PathLike) -> Path:
    """``x/action_latent_pairs.json`` -> ``x/action_latent_pairs_context.npz``."""
    path = Path(json_path)
    return path.with_name(path.stem + CONTEXT_SUFFIX)


def pairs_json_text(actions: np.ndarray, codes: np.ndarray) -> str:
    """The original's schema, one transition per line: ``[{"action": 3, "latent_code": [5]}, ...]``."""
    lines = [json.dumps({"action": int(a), "latent_code": [int(c) for c in row]}) for a, row in zip(actions, codes)]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def write_pairs(json_path: str | os.PathLike, pairs: PairSet) -> None:
    """Write the context archive, then the JSON, each atomically: a reader never sees half a file, and
    a JSON that disagrees with its archive (an interrupted rerun) is caught by ``read_pairs``."""
    arrays = dict(frames=pairs.frames, palette=pairs.palette.astype(np.uint8),
                  context_index=pairs.context_index.astype(np.int32), next_index=pairs.next_index.astype(np.int32),
                  game_index=pairs.game_index.astype(np.int32), actions=pairs.actions.astype(np.int16),
                  codes=pairs.codes.astype(np.int16), metadata=np.array(json.dumps(pairs.metadata)))

    def write_npz(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(context_path_for(json_path), write_npz)
    text = pairs_json_text(pairs.actions, pairs.codes)
    atomic_write(json_path, lambda tmp: Path(tmp).write_text(text))


def parse_pairs_json(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Actions (N,) and codes (N, L) from a pairs JSON; anything off gets one sentence."""
    entries = read_json(path, "pairs file", "run collect_action_latent_pairs.py first")
    if not isinstance(entries, list) or not entries:
        raise UserError(f"pairs file {path} holds no pairs (expected a non-empty list)")
    try:
        actions = np.array([int(e["action"]) for e in entries], dtype=np.int64)
        codes = np.array([[int(c) for c in e["latent_code"]] for e in entries], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"pairs file {path} has entries that are not {{'action': int, 'latent_code': [int, ...]}}"
                        ) from exc
    if codes.ndim != 2 or codes.shape[1] < 1:
        raise UserError(f"pairs file {path} has latent codes of different lengths")
    return actions, codes


def read_pairs(json_path: str | os.PathLike) -> PairSet:
    """Read a pairs JSON and its context archive, checking that they belong together."""
    actions, codes = parse_pairs_json(json_path)
    npz_path = context_path_for(json_path)
    if not npz_path.is_file():
        raise UserError(f"context archive {npz_path} for {json_path} does not exist "
                        "(rerun collect_action_latent_pairs.py)")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        metadata = json.loads(str(arrays.pop("metadata")))
    except Exception as exc:  # zip, value and key errors alike mean the file is not ours or is truncated
        raise UserError(f"context archive {npz_path} is truncated or not a pairs archive ({type(exc).__name__})") from exc
    if arrays.get("actions") is None or not np.array_equal(arrays["actions"], actions) \
            or not np.array_equal(arrays.get("codes"), codes):
        raise UserError(f"{json_path} and {npz_path} disagree (different runs?); rerun collect_action_latent_pairs.py")
    return PairSet(actions=actions, codes=codes, frames=arrays["frames"], palette=arrays["palette"],
                   context_index=arrays["context_index"].astype(np.int64),
                   next_index=arrays["next_index"].astype(np.int64),
                   game_index=arrays["game_index"].astype(np.int64), metadata=metadata)


MUST_AGREE = ("num_codes", "num_latents", "context_frames", "game", "action_meanings", "latent_checkpoint")


def concat_pairs(sets: Sequence[PairSet], names: Sequence[str] | None = None) -> PairSet:
    """Several collections of pairs as one (their games kept apart), when they were collected from
    the same world model; otherwise one sentence naming what differs."""
    names = list(names or [f"set {i}" for i in range(len(sets))])
    first = sets[0]
    for other, name in zip(sets[1:], names[1:]):
        for key in MUST_AGREE:
            if first.metadata.get(key) != other.metadata.get(key):
                raise UserError(f"pairs {name} and {names[0]} differ in {key} ({other.metadata.get(key)!r} against "
                                f"{first.metadata.get(key)!r}): collect them with the same world model")
        if not np.array_equal(first.palette, other.palette):
            raise UserError(f"pairs {name} and {names[0]} have different palettes: collect them with the same world model")
    if len(sets) == 1:
        return first
    frame_offsets = np.cumsum([0] + [p.frames.shape[0] for p in sets[:-1]])
    game_offsets = np.cumsum([0] + [int(p.game_index.max()) + 1 for p in sets[:-1]])
    sources = [s for p in sets for s in p.metadata.get("sources", [])]
    return PairSet(actions=np.concatenate([p.actions for p in sets]), codes=np.concatenate([p.codes for p in sets]),
                   frames=np.concatenate([p.frames for p in sets]), palette=first.palette,
                   context_index=np.concatenate([p.context_index + o for p, o in zip(sets, frame_offsets)]),
                   next_index=np.concatenate([p.next_index + o for p, o in zip(sets, frame_offsets)]),
                   game_index=np.concatenate([p.game_index + o for p, o in zip(sets, game_offsets)]),
                   metadata=dict(first.metadata, sources=sources))


# ============================================================================ collecting pairs

@torch.no_grad()
def encode_game(model: Any, frames: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Run the latent action encoder over every step of one game.

    ``frames`` (T+1, H, W) palette indices -> codes (T, L) int64 and window frame numbers (T, C+1)
    (context, then next frame), padded at the start of the game as in training."""
    c = model.config.context_frames
    steps = frames.shape[0] - 1
    windows = np.stack([window_frame_indices(t, c, 1) for t in range(steps)])  # (T, C+1)
    codes = []
    for start in range(0, steps, batch_size):
        w = torch.from_numpy(frames[windows[start:start + batch_size]]).to(model.device)  # (b, C+1, H, W)
        codes.append(model.encode_latents(w[:, :c], w[:, c]).cpu().numpy())
    return np.concatenate(codes).astype(np.int64), windows


class PairCollector:
    """Accumulates games: their frames once each, and one pair per step."""

    def __init__(self, model: Any, batch_size: int = 64):
        self.model = model
        self.batch_size = batch_size
        self.frames: list[np.ndarray] = []
        self.parts: list[dict[str, np.ndarray]] = []
        self.num_frames = 0
        self.sources: list[str] = []

    @property
    def num_pairs(self) -> int:
        return sum(p["actions"].shape[0] for p in self.parts)

    def add_game(self, game: IndexedGame, source: str, max_pairs: int | None = None) -> int:
        """Encode one game (at most ``max_pairs`` of its first steps); return the number of pairs added."""
        frames, actions = game.frames, game.actions.astype(np.int64)
        if max_pairs is not None:
            frames, actions = frames[:max_pairs + 1], actions[:max_pairs]
        if actions.shape[0] < 1:
            return 0
        codes, windows = encode_game(self.model, frames, self.batch_size)
        offset, c = self.num_frames, self.model.config.context_frames
        self.parts.append(dict(actions=actions, codes=codes, context_index=windows[:, :c] + offset,
                               next_index=windows[:, c] + offset,
                               game_index=np.full(actions.shape[0], len(self.sources), np.int64)))
        self.frames.append(frames)
        self.num_frames += frames.shape[0]
        self.sources.append(source)
        return int(actions.shape[0])

    def result(self, metadata: dict[str, Any]) -> PairSet:
        if not self.parts:
            raise UserError("no transitions were collected (every game was empty)")
        cat = {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        cfg = self.model.config
        meta = {"num_codes": cfg.num_codes, "num_latents": cfg.num_latents, "context_frames": cfg.context_frames,
                "sources": self.sources, **metadata}
        return PairSet(frames=np.concatenate(self.frames), palette=np.asarray(cfg.palette, np.uint8),
                       metadata=meta, **cat)


# ============================================================================ pair statistics

def action_counts(actions: np.ndarray, num_actions: int) -> np.ndarray:
    return np.bincount(actions, minlength=num_actions)  # (A,)


def code_counts(actions: np.ndarray, codes: np.ndarray, num_actions: int, num_codes: int) -> np.ndarray:
    """How often each action met each code at each latent position: (A, L, K)."""
    positions = codes.shape[1]
    counts = np.zeros((num_actions, positions, num_codes), np.int64)
    for pos in range(positions):
        np.add.at(counts[:, pos], (actions, codes[:, pos]), 1)
    return counts


def format_pair_stats(actions: np.ndarray, codes: np.ndarray, names: Sequence[str], num_codes: int,
                      top: int = 4) -> str:
    """A table: each action's share of the pairs and its most frequent codes at each latent position."""
    counts = code_counts(actions, codes, len(names), num_codes)
    freq = action_counts(actions, len(names))
    ceiling = (counts.argmax(-1)[actions] == codes).mean()  # each action's most frequent code, per position
    header = (f"{len(actions)} pairs, {codes.shape[1]} latent position(s), codebook of {num_codes}; the action alone "
              f"can tell at most {ceiling:.1%} of the codes (its most frequent code, on these pairs)")
    lines = [header]
    for a, name in enumerate(names):
        share = freq[a] / max(1, len(actions))
        parts = []
        for pos in range(codes.shape[1]):
            row = counts[a, pos]
            best = np.argsort(-row, kind="stable")[:top]
            parts.append(" ".join(f"{k}:{row[k] / max(1, row.sum()):.0%}" for k in best if row[k] > 0))
        lines.append(f"  {a} {name:<10} {freq[a]:>8} ({share:6.1%})  codes " + " | ".join(parts))
    return "\n".join(lines)


def code_heatmap(ax: Any, counts: np.ndarray, names: Sequence[str], title: str) -> None:
    """counts (A, K): each row (action) as shares of its pairs."""
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    ax.imshow(shares, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(range(len(names)), names)
    if shares.shape[1] <= 32:
        ax.set_xticks(range(shares.shape[1]))
    ax.set_xlabel("latent code")
    ax.set_title(title, fontsize=9)
    for a in range(shares.shape[0]):
        for k in range(shares.shape[1]):
            if shares[a, k] >= 0.05:
                ax.text(k, a, f"{shares[a, k]:.0%}", ha="center", va="center", fontsize=6,
                        color="black" if shares[a, k] > 0.5 else "white")


def plot_pair_stats(path: str | os.PathLike, actions: np.ndarray, codes: np.ndarray, names: Sequence[str],
                    num_codes: int) -> None:
    """Bar chart of action frequencies, and per latent position a heatmap of action against code."""
    plt = pyplot()
    counts = code_counts(actions, codes, len(names), num_codes)
    panels = min(codes.shape[1], MAX_CONFUSION_PANELS)
    fig, axes = plt.subplots(1, 1 + panels, figsize=(4 + 0.35 * num_codes * panels, 3.2), squeeze=False)
    axes = axes[0]
    axes[0].bar(range(len(names)), action_counts(actions, len(names)))
    axes[0].set_xticks(range(len(names)), names, rotation=30)
    axes[0].set_title(f"action frequency ({len(actions)} pairs)", fontsize=9)
    for pos in range(panels):
        code_heatmap(axes[1 + pos], counts[:, pos], names, f"code share per action, position {pos}")
    fig.tight_layout()
    save_figure(fig, path)
