"""record_videos.py end to end on tiny games, plus the planning and player logic it relies on."""
from __future__ import annotations

from pathlib import Path

import imageio
import numpy as np
import pytest

from models.atari import action_meanings, make_rgb_env
from models.checkpoint import save_checkpoint
from models.cli import UserError
from models.dqn import QNetwork, QNetworkConfig
from models.episodes import load_episode, read_manifest, save_episode
from models.players import BreakoutFollower, held_actions, holding_odds, reflect
from models.recording import Layout, actions_sha1, parse_shard, plan_games, scan_folder, shard_games
import record_videos

TINY = ["--max_steps", "20", "--no-save_videos"]


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "dqn.pt"
    config = QNetworkConfig()
    save_checkpoint(path, stage="dqn", model=QNetwork(config), config=config, step=0)
    return path


def check_game(out: Path, game: dict) -> None:
    """The episode file and MP4 of one manifest row agree with each other and with the format."""
    ep = load_episode(out / "episodes" / game["file"])
    t = ep.num_steps
    assert t == game["num_steps"] <= 60
    assert ep.frames.shape == (t + 1, 210, 160, 3) and ep.frames.dtype == np.uint8
    assert ep.actions.shape == ep.rewards.shape == ep.terminated.shape == (t,)
    assert ep.lives.shape == (t + 1,)
    assert ep.metadata["player"] == game["player"] and ep.metadata["score"] == ep.score
    assert ep.metadata["frame_skip"] == 4 and ep.metadata["repeat_action_probability"] == 0.0
    with imageio.get_reader(out / "videos" / game["file"].replace(".npz", ".mp4")) as video:
        assert video.count_frames() == t + 1
        width, height = video.get_meta_data()["size"]
        assert width == 320 and height > 420  # the game at 2x, and the caption strip below it
        first = video.get_data(0)
    # the caption is not painted over the game: the game area still looks like the frame
    assert np.abs(first[:420:2, ::2].astype(int) - ep.frames[0]).mean() < 12


def test_tiny_bulk_run_then_rerun_adds_nothing(script, tmp_path: Path, tiny_checkpoint: Path) -> None:
    args = ["record_videos.py", "--bulk", "--total_videos", "3", "--percent_random", "34", "--percent_scripted", "33",
            "--checkpoint_path", str(tiny_checkpoint), "--max_steps", "60", "--action_noise", "0.1",
            "--output_dir", str(tmp_path)]
    script(*args)
    manifest = read_manifest(tmp_path / "manifest.json")
    assert sorted(g["player"] for g in manifest["games"]) == ["agent", "random", "scripted"]
    assert manifest["summary"]["num_games"] == 3
    assert 0.0 <= manifest["summary"]["late_game_frame_share"] <= 1.0
    assert (tmp_path / "scores.png").stat().st_size > 0
    for game in manifest["games"]:
        check_game(tmp_path, game)

    files = sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".npz", ".mp4"))
    before = {p: p.stat().st_mtime_ns for p in files}
    assert "3 of this shard's 3 games are already" in script(*args).stdout
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.suffix in (".npz", ".mp4")} == before


def test_bulk_mode_uses_the_shipped_agent(tmp_path: Path, tiny_checkpoint: Path, monkeypatch) -> None:
    monkeypatch.setattr("models.checkpoint.PRETRAINED_DIR", tiny_checkpoint.parent)
    tiny_checkpoint.rename(tiny_checkpoint.parent / "dqn_breakout.pt")
    record_videos.main(["--bulk", "--total_videos", "2", "--percent_random", "50", *TINY,
                        "--output_dir", str(tmp_path / "out")])
    games = read_manifest(tmp_path / "out" / "manifest.json")["games"]
    assert sorted((g["player"], Path(g["checkpoint"] or "").name) for g in games) == \
        [("agent", "dqn_breakout.pt"), ("random", "")]


def test_a_default_bulk_recording_of_agent_games_holds_distinct_games(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """The emulator and a greedy agent are deterministic: without action noise every agent game is the
    same game, which the manifest says; the default noise makes each one its own."""
    common = ["--bulk", "--total_videos", "4", "--percent_random", "0", "--checkpoint_path", str(tiny_checkpoint),
              "--max_steps", "300", "--no-save_videos"]
    record_videos.main([*common, "--action_noise", "0", "--output_dir", str(tmp_path / "greedy")])
    assert read_manifest(tmp_path / "greedy" / "manifest.json")["summary"]["num_distinct_games"] == 1
    record_videos.main([*common, "--output_dir", str(tmp_path / "default")])
    summary = read_manifest(tmp_path / "default" / "manifest.json")["summary"]
    assert summary["num_distinct_games"] == summary["by_player"]["agent"]["num_distinct_games"] == 4
    first = tmp_path / "default" / "episodes" / "game_00000.npz"       # a game recorded before the hash was kept
    ep = load_episode(first)
    del ep.metadata["actions_sha1"]
    save_episode(first, ep)
    assert [g.actions_sha1 for g in scan_folder(Layout(tmp_path / "default"))][0] == actions_sha1(ep.actions)


def test_the_random_share_can_hold_its_keys(tmp_path: Path) -> None:
    record_videos.main(["--bulk", "--total_videos", "2", "--percent_random", "100", "--random_player", "random_hold",
                        "--action_noise", "0.5", *TINY, "--output_dir", str(tmp_path)])
    episodes = [load_episode(tmp_path / "episodes" / g["file"]) for g in read_manifest(tmp_path / "manifest.json")["games"]]
    assert [(ep.metadata["player"], ep.metadata["action_noise"]) for ep in episodes] == [("random_hold", 0.0)] * 2
    actions = np.concatenate([ep.actions for ep in episodes])
    assert np.mean(actions[1:] != actions[:-1]) < 0.5    # a uniform player changes its action 75% of the time


def test_rerun_with_other_settings_is_refused(tmp_path: Path) -> None:
    args = ["--bulk", "--total_videos", "1", "--percent_random", "100", *TINY, "--output_dir", str(tmp_path)]
    record_videos.main(args)
    with pytest.raises(UserError, match="recorded with seed"):
        record_videos.main([*args, "--seed", "5"])


def test_shards_split_without_overlap(tmp_path: Path) -> None:
    common = ["--bulk", "--total_videos", "3", "--percent_random", "100", *TINY, "--output_dir", str(tmp_path)]
    record_videos.main([*common, "--shard", "1/2"])
    assert [p.name for p in (tmp_path / "episodes").iterdir()] == ["game_00001.npz"]
    record_videos.main([*common, "--shard", "0/2", "--workers", "2"])
    manifest = read_manifest(tmp_path / "manifest.json")
    assert [g["index"] for g in manifest["games"]] == [0, 1, 2]
    assert [g["seed"] for g in manifest["games"]] == [0, 1, 2]


def test_plan_is_deterministic_and_shards_partition_it() -> None:
    jobs = plan_games(200, 15, 20, base_seed=3)
    assert jobs == plan_games(200, 15, 20, base_seed=3)
    kinds = [job.player for job in jobs]
    assert (kinds.count("random"), kinds.count("scripted"), kinds.count("agent")) == (30, 40, 130)
    shards = [shard_games(jobs, (i, 3)) for i in range(3)]
    indices = sorted(job.index for shard in shards for job in shard)
    assert indices == list(range(200))
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "1", "a/b", "0/0"):
        with pytest.raises(UserError):
            parse_shard(bad)


def test_truncated_episode_in_output_dir_gets_one_line(script, tmp_path: Path) -> None:
    args = ["record_videos.py", *TINY, "--output_dir", str(tmp_path)]
    script(*args)
    path = tmp_path / "episodes" / "game_00000.npz"
    path.write_bytes(path.read_bytes()[:1000])
    result = script(*args, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: episode file {path} is truncated or corrupt (BadZipFile)"


def test_a_game_without_a_scripted_player_gives_its_share_to_the_agent(tmp_path: Path, capsys) -> None:
    path = tmp_path / "pong.pt"
    config = QNetworkConfig(num_actions=len(action_meanings("Pong")))
    save_checkpoint(path, stage="dqn", model=QNetwork(config), config=config, step=0)
    record_videos.main(["--bulk", "--game", "Pong", "--total_videos", "2", "--percent_random", "50",
                        "--percent_scripted", "50", "--checkpoint_path", str(path), *TINY, "--output_dir", str(tmp_path / "out")])
    assert "note: no scripted player for Pong: its 50% of the games go to the agent\n" in capsys.readouterr().out
    assert sorted(g["player"] for g in read_manifest(tmp_path / "out" / "manifest.json")["games"]) == ["agent", "random"]


@pytest.mark.parametrize("flags, message", [
    (["--bulk", "--percent_random", "60", "--percent_scripted", "20", "--checkpoint_path", "missing.pt"],
     "checkpoint missing.pt does not exist"),
    (["--shard", "2/2"], "--shard 2/2"),
])
def test_bad_input_is_refused_in_one_line(flags: list[str], message: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=message):
        record_videos.main([*flags, "--output_dir", str(tmp_path)])
    assert not (tmp_path / "episodes").exists()


def test_bad_numbers_are_refused() -> None:
    for flags in (["--percent_random", "80", "--percent_scripted", "30"], ["--action_noise", "1.5"],
                  ["--max_steps", "0"]):
        with pytest.raises(SystemExit) as exc:
            record_videos.main(flags)
        assert exc.value.code == 2


def test_the_holding_random_player_holds_its_keys_with_the_set_odds() -> None:
    names = ["NOOP", "FIRE", "RIGHT", "LEFT"]
    assert holding_odds(names).tolist() == pytest.approx([0.15, 0.10, 0.375, 0.375])
    assert holding_odds(["UP", "DOWN"]).tolist() == [0.5, 0.5]
    actions = held_actions(names, 8000, np.random.default_rng(0))
    assert np.array_equal(actions, held_actions(names, 8000, np.random.default_rng(0)))
    share = np.bincount(actions, minlength=4) / actions.size
    assert share == pytest.approx(holding_odds(names), abs=0.03)
    # keys held 1-4 steps (2.5 on average) change far less often than a uniform random player's (75%)
    assert 0.2 < np.mean(actions[1:] != actions[:-1]) < 0.35


def test_reflect_mirrors_at_the_walls() -> None:
    assert reflect(50, 9, 151) == 50
    assert reflect(160, 9, 151) == 142
    assert reflect(-1, 9, 151) == 19
    assert reflect(151 + 142 + 10, 9, 151) == 19


def test_scripted_player_serves_then_chases_the_ball() -> None:
    names = action_meanings("Breakout")
    player = BreakoutFollower(names)
    rng = np.random.default_rng(0)
    env = make_rgb_env("Breakout")
    frame, _ = env.reset(seed=0)
    assert names[player.act(frame, None, rng)] == "FIRE"  # no ball in play yet
    score, action = 0.0, None
    for _ in range(400):
        action = player.act(frame, action, rng)
        frame, reward, done, _, _ = env.step(action)
        score += reward
        if done:
            break
    env.close()
    assert score >= 10  # a random player scores about 1 in that time
