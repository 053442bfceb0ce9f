"""Tests for models/action_pairs.py: earlier actions, the pairs files (the original's schema, files that
disagree), event pairs and the codes the world model draws them with, and pairs on drawn frames."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from models.action_pairs import (action_history, concat_pairs, context_path_for, decoded_targets, drawn_pairs,
                                 event_pairs, flags_per_frame, read_pairs, rollout_starts, write_pairs)
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


# ----------------------------------------------------------------------------- events and drawn frames

class CodeInCorner:
    """A stand-in world model: the next frame is the last context frame with the code's value, capped
    at colour 2, in the top-left pixel; codes above 2 draw it in the pixel beside as well."""
    config = SimpleNamespace(num_codes=4, num_latents=1)
    device = torch.device("cpu")

    def predict_next(self, context: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        frame = context[:, -1].long().clone()
        frame[:, 0, 0] = codes[:, 0].clamp(max=2)
        frame[:, 0, 1] = torch.where(codes[:, 0] > 2, 2, frame[:, 0, 1])
        return frame


def test_event_pairs_and_their_targets_are_the_codes_the_world_model_draws_right() -> None:
    pairs = synthetic_pairs(num_games=2, steps=10)
    pairs.frames[:, 0, :2] = 0
    pairs.codes[:] = 0
    pairs.frames[5, 0, 0] = 2                 # game 0: into frame 5, an event that code 0 does not draw
    pairs.frames[11, 0, 0] = 1                # game 1's first frame differs from game 0's last: no pair's event
    pairs.frames[11 + 3, 0, :2] = 2           # game 1: into frame 14, an event that its code 2 draws, one pixel
    pairs.codes[pairs.next_index == 14] = 2   # wrong beside it (code 3 would draw both)
    flag_corner = lambda rgb: np.concatenate([[False], (rgb[1:, 0, 0] != rgb[:-1, 0, 0]).any(-1)])  # noqa: E731
    events = event_pairs(pairs, flag_corner)
    whole = flags_per_frame(pairs, flag_corner, overlap=1, chunk=len(pairs.frames))
    assert (flags_per_frame(pairs, flag_corner, overlap=1, chunk=4) == whole).all()   # chunks see their predecessor
    assert sorted(pairs.next_index[events].tolist()) == [5, 6, 12, 14, 15]
    codes, changed = decoded_targets(CodeInCorner(), pairs, events, flag_corner, batch_size=3)
    by_next = {int(pairs.next_index[i]): int(codes[i, 0]) for i in events}
    assert by_next == {5: 2, 6: 0, 12: 0, 14: 2, 15: 0} and changed == 1
    untouched = np.setdiff1d(np.arange(len(pairs)), events)
    assert (codes[untouched] == pairs.codes[untouched]).all() and pairs.codes[events[0], 0] == 0
    with pytest.raises(UserError, match="one latent per step"):
        decoded_targets(SimpleNamespace(config=SimpleNamespace(num_latents=2)), pairs, events, flag_corner)


def test_rollout_starts_leave_room_in_their_game() -> None:
    pairs = synthetic_pairs(num_games=3, steps=10)
    starts = rollout_starts(pairs, np.arange(len(pairs)), steps=4, count=100, seed=0)
    assert starts.size == 3 * 6 and (pairs.game_index[starts + 4] == pairs.game_index[starts]).all()
    some = rollout_starts(pairs, np.arange(10, 20), steps=4, count=3, seed=0)
    assert some.size == 3 and (np.diff(some) > 0).all() and set(some) <= set(range(10, 16))


def test_drawn_pairs_see_the_world_models_own_frames() -> None:
    """With a stand-in world model that writes the code into a corner, each drawn context is the real
    start's context followed by the frames it drew; action, code and earlier actions stay the real ones."""
    pairs = synthetic_pairs(num_games=2, steps=10)
    pairs.codes %= 3
    world, starts = CodeInCorner(), np.array([2, 12])
    drawn = drawn_pairs(world, pairs, starts, steps=3, history_length=4, batch_size=1)
    assert len(drawn) == 6 and np.unique(drawn.game_index).size == 2
    taken = np.array([3, 4, 5, 13, 14, 15])
    assert np.array_equal(drawn.actions, pairs.actions[taken]) and np.array_equal(drawn.codes, pairs.codes[taken])
    assert np.array_equal(drawn.action_history(4), pairs.action_history(4)[taken])
    assert np.array_equal(drawn.action_history(6)[:, 2:], pairs.action_history(4)[taken])   # NOOP before what is known
    expected = torch.from_numpy(pairs.frames[pairs.context_index[starts]])                 # (2, C, H, W)
    for t in range(4):
        frame = world.predict_next(expected, torch.from_numpy(pairs.codes[starts + t])).to(torch.uint8)
        expected = torch.cat([expected[:, 1:], frame[:, None]], dim=1)
        if t < 3:
            assert np.array_equal(drawn.frames[drawn.context_index[[t, 3 + t]]], expected.numpy()), t
    assert np.array_equal(drawn.frames[drawn.next_index[[2, 5]]], expected[:, -1].numpy())
    assert drawn.frames[drawn.context_index[0, -1], 0, 0] == min(pairs.codes[2, 0], 2)   # drawn, not real
    assert np.array_equal(drawn.frames[drawn.context_index[0, 0]], pairs.frames[pairs.context_index[2, -1]])
    both = concat_pairs([pairs, drawn])
    assert np.array_equal(both.action_history(4), np.concatenate([pairs.action_history(4), drawn.action_history(4)]))


def test_drawn_pairs_keep_the_real_frames_before_for_a_map_that_sees_more() -> None:
    """A map that sees more frames than the world model's context gets, before the drawn frames, the
    real frames its start had, as the game keeps them for it in play."""
    pairs = synthetic_pairs(num_games=2, steps=10)
    pairs.codes %= 3
    starts, c = np.array([2, 12]), pairs.context_index.shape[1]
    seen = c + 3
    drawn = drawn_pairs(CodeInCorner(), pairs, starts, steps=3, history_length=4, state_frames=seen, batch_size=1)
    short = drawn_pairs(CodeInCorner(), pairs, starts, steps=3, history_length=4, batch_size=1)
    assert short.earlier_frames is None and drawn.earlier_frames.shape == (6, seen - c)
    assert np.array_equal(drawn.frames[drawn.context_index], short.frames[short.context_index])
    assert np.array_equal(drawn.frames[drawn.next_index], short.frames[short.next_index])
    state = drawn.frames[drawn.state_index(seen)]                          # (6, seen, H, W)
    real = pairs.frames[pairs.state_index(seen)[starts]]                   # (2, seen, H, W)
    for start in range(2):
        for t in range(1, 4):                                              # t frames drawn so far
            pair = 3 * start + t - 1
            assert np.array_equal(state[pair, :seen - t], real[start, t:]), (start, t)
            assert np.array_equal(state[pair, -c:], short.frames[short.context_index[pair]])
    both = concat_pairs([pairs, drawn])
    assert np.array_equal(both.frames[both.state_index(seen)],
                          np.concatenate([pairs.frames[pairs.state_index(seen)], state]))
