"""Tests for models/episodes.py: the episode file format, its clear errors, and the manifest."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.episodes import (Episode, EpisodeError, list_episode_files, load_episode, read_episode_metadata,
                             read_manifest, recorded_game, save_episode, validate_episode, write_manifest)


def make_episode(steps: int = 5) -> Episode:
    rng = np.random.default_rng(0)
    return Episode(frames=rng.integers(0, 256, (steps + 1, 210, 160, 3), dtype=np.uint8),
                   actions=rng.integers(0, 4, steps).astype(np.uint8), rewards=np.arange(steps, dtype=np.float32),
                   lives=np.full(steps + 1, 5, np.uint8), terminated=np.eye(1, steps, steps - 1, dtype=bool)[0],
                   metadata={"player": "random", "seed": 3})


def test_round_trip_is_lossless(tmp_path: Path) -> None:
    ep = make_episode()
    save_episode(tmp_path / "a.npz", ep)
    back = load_episode(tmp_path / "a.npz")
    for name in ("frames", "actions", "rewards", "lives", "terminated"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ep, name))
        assert getattr(back, name).dtype == getattr(ep, name).dtype
    assert back.metadata == ep.metadata and back.num_steps == 5 and back.score == 10.0
    assert read_episode_metadata(tmp_path / "a.npz") == ep.metadata
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temporary file left behind


def test_the_recordings_game_is_read_from_their_metadata(tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.npz" for name in ("old", "breakout", "pong")]
    for path, game in zip(paths, (None, "Breakout", "Pong")):
        ep = make_episode()
        if game:
            ep.metadata["game"] = game
        save_episode(path, ep)
    assert recorded_game(paths[:1]) is None and recorded_game(paths[:2]) == "Breakout"
    with pytest.raises(EpisodeError, match=f"games of Breakout \\({paths[1]}\\) and of Pong \\({paths[2]}\\)"):
        recorded_game(paths)


def test_inconsistent_shapes_are_refused() -> None:
    ep = make_episode()
    ep.frames = ep.frames[:-1]
    with pytest.raises(EpisodeError, match="5 frames for 5 actions"):
        validate_episode(ep, "game")
    ep = make_episode()
    ep.lives = ep.lives[:-1]
    with pytest.raises(EpisodeError, match=r"lives has shape \(5,\), expected \(6,\)"):
        validate_episode(ep, "game")


@pytest.mark.parametrize("cut", [lambda n: 0, lambda n: 100, lambda n: n // 2, lambda n: n - 10],
                         ids=["empty", "first 100 bytes", "half", "all but 10 bytes"])
def test_truncated_file_gets_a_clear_error(tmp_path: Path, cut) -> None:
    save_episode(tmp_path / "a.npz", make_episode())
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "a.npz").write_bytes(data[:cut(len(data))])
    for read in (load_episode, read_episode_metadata):
        with pytest.raises(EpisodeError, match=r"a\.npz is truncated or corrupt"):
            read(tmp_path / "a.npz")


def test_foreign_and_missing_files_get_clear_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    for read in (load_episode, read_episode_metadata):
        with pytest.raises(EpisodeError, match="is not an episode archive"):
            read(tmp_path / "other.npz")
        with pytest.raises(EpisodeError, match="does not exist"):
            read(tmp_path / "none.npz")


def test_listing_skips_temporary_files_and_refuses_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(EpisodeError, match="does not exist"):
        list_episode_files(tmp_path / "missing")
    with pytest.raises(EpisodeError, match="holds no .npz"):
        list_episode_files(tmp_path)
    save_episode(tmp_path / "sub" / "b.npz", make_episode())
    (tmp_path / ".a.npz.123.tmp").write_bytes(b"")
    (tmp_path / ".c.npz").write_bytes(b"")
    assert list_episode_files(tmp_path) == [tmp_path / "sub" / "b.npz"]


def test_manifest_round_trip_and_errors(tmp_path: Path) -> None:
    games = [{"file": "game_00000.npz", "score": 3.0}]
    write_manifest(tmp_path / "manifest.json", games, {"num_games": 1})
    assert read_manifest(tmp_path / "manifest.json") == {"summary": {"num_games": 1}, "games": games}
    with pytest.raises(EpisodeError, match="does not exist"):
        read_manifest(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(EpisodeError, match="not valid JSON"):
        read_manifest(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(EpisodeError, match="not a recording manifest"):
        read_manifest(tmp_path / "other.json")
