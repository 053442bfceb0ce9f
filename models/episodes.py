"""The on-disk episode format, shared by the recorder and every training stage.

One game per compressed numpy archive (``.npz``):
    frames      uint8  (T+1, 210, 160, 3)  RGB, as the emulator gives them (frame 0 is after reset)
    actions     uint8  (T,)                action taken between frame t and frame t+1
    rewards     float32 (T,)               game reward of that step
    lives       uint8  (T+1,)              lives shown with each frame
    terminated  bool   (T,)                the game ended with this step
    metadata    str    JSON: who played, checkpoint, seed, emulator settings, score
MP4 is for people; training reads only these archives (lossless)."""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.cli import UserError
from models.files import atomic_write, read_json

FRAME_SHAPE = (210, 160, 3)
EPISODE_SUFFIX = ".npz"
_FIELDS = ("frames", "actions", "rewards", "lives", "terminated", "metadata")


class EpisodeError(UserError):
    """An episode file that is missing, truncated, or not in this format."""


@dataclass
class Episode:
    frames: np.ndarray          # (T+1, 210, 160, 3) uint8
    actions: np.ndarray         # (T,) uint8
    rewards: np.ndarray         # (T,) float32
    lives: np.ndarray           # (T+1,) uint8
    terminated: np.ndarray      # (T,) bool
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def score(self) -> float:
        return float(self.rewards.sum())


def validate_episode(ep: Episode, source: str = "episode") -> None:
    """Raise EpisodeError naming ``source`` when shapes or dtypes disagree with the format."""
    t = ep.actions.shape[0] if ep.actions.ndim == 1 else -1
    problems = []
    if ep.frames.dtype != np.uint8 or ep.frames.ndim != 4 or ep.frames.shape[1:] != FRAME_SHAPE[:2] + ep.frames.shape[3:] \
            or ep.frames.shape[-1] != 3:
        problems.append(f"frames must be uint8 (T+1, H, W, 3), got {ep.frames.dtype} {ep.frames.shape}")
    if t < 1:
        problems.append(f"actions must be a non-empty 1-D array, got shape {ep.actions.shape}")
    elif ep.frames.shape[0] != t + 1:
        problems.append(f"{ep.frames.shape[0]} frames for {t} actions (need T+1)")
    for name, expected in (("rewards", t), ("terminated", t), ("lives", t + 1)):
        if getattr(ep, name).shape != (expected,):
            problems.append(f"{name} has shape {getattr(ep, name).shape}, expected ({expected},)")
    if problems:
        raise EpisodeError(f"{source}: " + "; ".join(problems))


def save_episode(path: str | os.PathLike, ep: Episode) -> None:
    """Write one game atomically (temporary file, then rename)."""
    validate_episode(ep, str(path))
    arrays = dict(frames=ep.frames, actions=ep.actions.astype(np.uint8), rewards=ep.rewards.astype(np.float32),
                  lives=ep.lives.astype(np.uint8), terminated=ep.terminated.astype(bool),
                  metadata=np.array(json.dumps(ep.metadata)))

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(path, write)


def load_episode(path: str | os.PathLike) -> Episode:
    """Open and check one episode file; a missing, truncated or foreign file gets one clear sentence."""
    path = Path(path)
    if not path.is_file():
        raise EpisodeError(f"episode file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _FIELDS if k not in data.files]
            if missing:
                raise EpisodeError(f"episode file {path} is not an episode archive (missing {', '.join(missing)})")
            arrays = {k: data[k] for k in _FIELDS}
    except EpisodeError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise EpisodeError(f"episode file {path} is truncated or corrupt ({type(exc).__name__})") from exc
    try:
        metadata = json.loads(str(arrays.pop("metadata")))
    except json.JSONDecodeError as exc:
        raise EpisodeError(f"episode file {path} has unreadable metadata") from exc
    ep = Episode(metadata=metadata, **arrays)
    validate_episode(ep, f"episode file {path}")
    return ep


def list_episode_files(directory: str | os.PathLike) -> list[Path]:
    """Episode archives in ``directory`` (recursively), sorted; a missing or empty folder is an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EpisodeError(f"episode folder {directory} does not exist (record games with record_videos.py)")
    files = sorted(p for p in directory.rglob(f"*{EPISODE_SUFFIX}") if not p.name.startswith("."))
    if not files:
        raise EpisodeError(f"episode folder {directory} holds no {EPISODE_SUFFIX} episode files")
    return files


def read_episode_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of one episode file, without decompressing its frames (fast enough to scan a
    folder of thousands of games); a missing, truncated or foreign file gets one clear sentence."""
    path = Path(path)
    if not path.is_file():
        raise EpisodeError(f"episode file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "metadata" not in data.files or "frames" not in data.files:
                raise EpisodeError(f"episode file {path} is not an episode archive (no frames or metadata)")
            text = str(data["metadata"])
    except EpisodeError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise EpisodeError(f"episode file {path} is truncated or corrupt ({type(exc).__name__})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EpisodeError(f"episode file {path} has unreadable metadata") from exc


def recorded_game(files: list[Path]) -> str | None:
    """The game that episode files were recorded from (their metadata's ``game``; None for files that
    do not say); files of different games get one sentence naming two of them."""
    seen: dict[str, Path] = {}
    for path in files:
        game = read_episode_metadata(path).get("game")
        if game is not None:
            seen.setdefault(game, path)
    if len(seen) > 1:
        (a, first), (b, second) = list(seen.items())[:2]
        raise EpisodeError(f"the recordings hold games of {a} ({first}) and of {b} ({second}): train on one game")
    return next(iter(seen), None)


def write_manifest(path: str | os.PathLike, games: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Write the manifest of a recording folder atomically: ``{"summary": ..., "games": [...]}``,
    one entry per game (file, who played, length, score...)."""
    text = json.dumps({"summary": summary, "games": games}, indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read a manifest written by ``write_manifest``; a missing or foreign file gets one clear sentence."""
    manifest = read_json(path, "manifest", "record games with record_videos.py", EpisodeError)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("games"), list):
        raise EpisodeError(f"manifest {path} is not a recording manifest (no 'games' list)")
    return manifest
