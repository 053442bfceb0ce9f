"""Tests for collect_action_latent_pairs.py: the original's JSON schema with one entry per transition,
a context archive that rebuilds exactly what the encoder saw, live games, and clear refusals."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.action_pairs import PairCollector, context_path_for, read_pairs
from models.atari import action_meanings, make_rgb_env
from models.checkpoint import save_checkpoint
from models.cli import UserError
from models.episodes import save_episode
from models.frame_dataset import IndexedGame, PaletteIndexer, palette_from_frames
from models.latent_action import LatentActionModel, load_latent_action_model, model_config
from models.players import make_player
from models.recording import play_game

torch.set_num_threads(1)
STEPS = (25, 14, 1)  # steps of the recorded games, including a one-step game


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """Three short random games of Breakout and a tiny, untrained latent action model."""
    root = tmp_path_factory.mktemp("stage4")
    names = action_meanings("Breakout")
    env = make_rgb_env("Breakout")
    frames = []
    for i, steps in enumerate(STEPS):
        ep = play_game(env, make_player("random", "Breakout", names), seed=i, max_steps=steps, action_noise=0.0,
                       num_actions=len(names))
        ep.metadata = {"game": "Breakout", "player": "random", "seed": i}
        save_episode(root / "episodes" / f"game_{i}.npz", ep)
        frames.append(ep.frames)
    env.close()
    torch.manual_seed(0)
    cfg = model_config("tiny", palette_from_frames(frames))
    save_checkpoint(root / "latent.pt", stage="latent_action", model=LatentActionModel(cfg), config=cfg, step=0)
    return root


def collect_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["collect_action_latent_pairs.py", "--checkpoint_path", str(root / "latent.pt"), "--episodes_dir",
            str(root / "episodes"), "--output_path", str(out), "--threads", "1", *extra]


def test_json_has_the_original_schema_and_one_entry_per_transition(recorded: Path, tmp_path: Path, script) -> None:
    out = tmp_path / "actions" / "action_latent_pairs.json"
    proc = script(*collect_args(recorded, out))
    entries = json.loads(out.read_text())
    assert len(entries) == sum(STEPS)
    assert all(set(e) == {"action", "latent_code"} and isinstance(e["action"], int) for e in entries)
    assert all(len(e["latent_code"]) == 1 and all(isinstance(c, int) for c in e["latent_code"]) for e in entries)
    assert context_path_for(out).is_file() and out.with_suffix(".png").is_file()
    assert "NOOP" in proc.stdout and f"{sum(STEPS)} pairs" in proc.stdout

    # The archive rebuilds the encoder's input exactly: same actions, same frames, same codes.
    pairs = read_pairs(out)
    model = load_latent_action_model(recorded / "latent.pt")
    game = np.load(recorded / "episodes" / "game_0.npz")
    indices = PaletteIndexer(model.config.palette).to_indices(game["frames"])      # (T+1, H, W)
    first = pairs.game_index == 0
    np.testing.assert_array_equal(pairs.actions[first], game["actions"])
    t = 5
    np.testing.assert_array_equal(pairs.frames[pairs.context_index[t]], indices[t - 1:t + 1])
    np.testing.assert_array_equal(pairs.frames[pairs.next_index[t]], indices[t + 1])
    np.testing.assert_array_equal(pairs.frames[pairs.context_index[0]], indices[[0, 0]])  # padded at the start
    with torch.no_grad():
        codes = model.encode_latents(torch.from_numpy(pairs.frames[pairs.context_index[:8]]),
                                     torch.from_numpy(pairs.frames[pairs.next_index[:8]]))
    np.testing.assert_array_equal(pairs.codes[:8], codes.numpy())
    assert pairs.metadata["num_codes"] == 8 and pairs.metadata["action_meanings"] == action_meanings("Breakout")


def test_live_games_and_pair_limit(recorded: Path, tmp_path: Path, monkeypatch) -> None:
    import collect_action_latent_pairs as collect

    out = tmp_path / "live.json"
    monkeypatch.setattr(sys, "argv", collect_args(recorded, out, "--live", "--no-recorded", "--num_live_games", "2",
                                                  "--max_steps", "12"))
    collect.main()
    assert len(json.loads(out.read_text())) == 24
    assert read_pairs(out).metadata["sources"] == ["live:random:seed=0", "live:random:seed=1"]
    monkeypatch.setattr(sys, "argv", collect_args(recorded, out, "--max_pairs", "30"))
    collect.main()
    pairs = read_pairs(out)
    assert len(pairs) == 30 and len(pairs.metadata["sources"]) == 2  # 25 from the first game, 5 from the second


def test_collector_skips_empty_games(recorded: Path) -> None:
    model = load_latent_action_model(recorded / "latent.pt")
    collector = PairCollector(model)
    empty = IndexedGame(frames=np.zeros((1, 210, 160), np.uint8), actions=np.zeros(0, np.uint8))
    assert collector.add_game(empty, "empty") == 0
    with pytest.raises(UserError, match="no transitions"):
        collector.result({})


def test_bad_input_gets_one_line_and_leaves_outputs_alone(recorded: Path, tmp_path: Path, script, monkeypatch) -> None:
    import collect_action_latent_pairs as collect

    out = tmp_path / "pairs.json"
    out.write_text("keep me")
    proc = script(*collect_args(recorded, out, "--checkpoint_path", str(tmp_path / "missing.pt")), check=False)
    last = proc.stderr.strip().splitlines()[-1]  # ale-py may print its banner first
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert last.startswith("error: checkpoint") and last.endswith("does not exist")
    for extra, message in ((["--episodes_dir", str(tmp_path / "nothing")], "does not exist"),
                           (["--game", "Pong"], "is a game of Breakout, not Pong"),
                           (["--checkpoint_path", str(recorded / "episodes" / "game_0.npz")], "could not be read")):
        monkeypatch.setattr(sys, "argv", collect_args(recorded, out, *extra))
        with pytest.raises(UserError, match=message):
            collect.main()
    assert out.read_text() == "keep me"
