"""Tests for models/action_pairs.py: earlier actions, the pairs files (the original's schema, files that
disagree)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.action_pairs import action_history, context_path_for, read_pairs, write_pairs
from models.cli import UserError
from synthetic_pairs import synthetic_pairs


def test_action_history_is_oldest_first_and_starts_each_game_from_noop() -> None:
    actions = np.array([1, 2, 3, 0, 2, 3, 3])
    games = np.array([0, 0, 0, 4, 4, 5, 5])
    assert action_history(actions, games, 1)[:, 0].tolist() == [0, 1, 2, 0, 0, 0, 3]
    assert action_history(actions, games, 2).tolist() == [[0, 0], [0, 1], [1, 2], [0, 0], [0, 0], [0, 0], [0, 3]]
    assert action_history(actions, games, 0).shape == (7, 0)


def test_pairs_round_trip_and_schema(tmp_path: Path) -> None:
    pairs = synthetic_pairs(num_games=2, steps=10)
    path = tmp_path / "action_latent_pairs.json"
    write_pairs(path, pairs)
    entries = json.loads(path.read_text())
    assert len(entries) == 20 and all(set(e) == {"action", "latent_code"} for e in entries)
    assert entries[3] == {"action": int(pairs.actions[3]), "latent_code": [int(pairs.codes[3, 0])]}
    back = read_pairs(path)
    for name in ("actions", "codes", "frames", "palette", "context_index", "next_index", "game_index"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pairs, name))
    assert back.metadata == pairs.metadata


def test_pairs_files_that_disagree_or_are_missing_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    with pytest.raises(UserError, match="does not exist"):
        read_pairs(path)
    write_pairs(path, synthetic_pairs(num_games=2, steps=10))
    entries = json.loads(path.read_text())
    entries[0]["action"] = (entries[0]["action"] + 1) % 4
    path.write_text(json.dumps(entries))
    with pytest.raises(UserError, match="disagree"):
        read_pairs(path)
    path.write_text("[{\"action\": 1")
    with pytest.raises(UserError, match="not valid JSON"):
        read_pairs(path)
    path.write_text(json.dumps(entries))
    context_path_for(path).unlink()
    with pytest.raises(UserError, match="context archive"):
        read_pairs(path)
