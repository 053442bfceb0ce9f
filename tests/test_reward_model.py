"""The reward-and-end model: its inputs and targets from episodes, its figures on known outcomes, its
checkpoint stage, and train_reward_model.py end to end on games the test records itself."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from models.cli import UserError
from models.episodes import Episode, save_episode
from models.reward_model import (TINY_CONFIG, GameSteps, LifeCounter, RewardModel, RewardModelConfig, count_lives,
                                 end_step, evaluate, event_steps, exit_delays, fit_delay_table, game_steps,
                                 lit_frames, load_reward_model, matched, mirror_places, object_places,
                                 place_features)
from tiny_models import write_fixed_reward_model


def episode(rewards: list[float], lives: list[int], over: bool) -> Episode:
    """A game of black frames with one grey pixel that moves right one px per step, and a red ball
    (2 x 4 px) in every frame but the three up to each lost life's count: the ball leaves three steps
    before it."""
    t = len(rewards)
    frames = np.zeros((t + 1, 210, 160, 3), np.uint8)
    frames[np.arange(t + 1), 100, np.arange(t + 1) % 160] = 142
    hidden = {i - d for i in np.nonzero(np.diff(lives) < 0)[0] for d in (0, 1, 2)}
    for i in set(range(t + 1)) - hidden:
        frames[i, 150:154, 40:42] = (200, 72, 72)
    terminated = np.zeros(t, bool)
    terminated[-1] = over
    return Episode(frames=frames, actions=np.zeros(t, np.uint8), rewards=np.array(rewards, np.float32),
                   lives=np.array(lives, np.uint8), terminated=terminated, metadata={"game": "Breakout"})


def test_lit_frames_keep_a_single_pixel_after_pooling() -> None:
    rgb = torch.zeros(2, 210, 160, 3, dtype=torch.uint8)
    rgb[1, 101, 7, 2] = 1                                        # one dim blue pixel
    lit = lit_frames(rgb, 2)
    assert lit.shape == (2, 105, 80) and lit[0].sum() == 0
    assert lit[1].sum() == 1 and lit[1, 50, 3] == 1


def test_targets_and_windows_from_an_episode() -> None:
    game = game_steps(episode([0, 1, 7, 0, 4, 0, 0, 0, 0], [5, 5, 5, 5, 4, 4, 4, 4, 4, 3], over=True),
                      RewardModelConfig())
    assert game.reward_class.tolist() == [0, 1, 3, 0, 2, 0, 0, 0, 0]
    assert game.life_lost.tolist() == [False, False, False, True, False, False, False, False, True]
    # frames 1-3 and 6-8 lack the ball: each exit told 2 steps after its last frame, a step before the count
    assert game.exit_delay.tolist() == [-1, -1, 1, -1, -1, -1, -1, 1, -1]
    assert game.ball_gone.tolist() == [True, False, False, False, False, True, False, False, False]
    assert game.game_over.tolist() == [False] * 8 + [True] and game.start_lives == 5
    windows, places = game.windows(np.array([0, 4]), context_frames=2)   # frames t-1, t, t+1; the first repeated
    assert windows.shape == (2, 3, 105, 80) and places.shape == (2, 3, 4)
    assert places[1, 1:, :2].tolist() == [[151.5, 40.5]] * 2 and np.isnan(places[1, 0]).all()   # frame 3: no ball
    assert np.isnan(places[..., 2:]).all()                                                      # nor a paddle
    assert [int(np.argmax(w.max(0))) for w in windows[0]] == [0, 0, 0]     # pixel x 0, 0, 1 -> cell 0
    assert [int(np.argmax(w.max(0))) for w in windows[1]] == [1, 2, 2]     # pixel x 3, 4, 5


def test_places_of_a_mirrored_frame_are_the_mirrored_places() -> None:
    frame = np.zeros((1, 210, 160, 3), np.uint8)
    frame[0, 120:124, 30:32] = (200, 72, 72)           # the ball
    frame[0, 189:193, 100:116] = (200, 72, 72)         # the paddle
    places = object_places(frame)
    assert places.tolist() == [[121.5, 30.5, 100, 115]]
    np.testing.assert_array_equal(mirror_places(places, 160), object_places(frame[:, :, ::-1]))
    np.testing.assert_array_equal(mirror_places(mirror_places(places, 160), 160), places)


def test_places_reach_the_model_to_the_pixel() -> None:
    places = torch.tensor([[[121.5, 30.5, float("nan"), float("nan")]]])
    features = place_features(places)
    moved = place_features(places + torch.tensor([0.0, 1.0, 0.0, 0.0]))
    assert features.shape == (1, 8) and features[0, 4:].tolist() == [1, 1, 0, 0]   # shown: the ball, no paddle
    assert (moved - features).abs().sum() > 0 and not torch.isnan(features).any()
    model = RewardModel(RewardModelConfig(objects=True, context_frames=1, **TINY_CONFIG))
    lit = torch.zeros(1, 2, 105, 80)
    with pytest.raises(ValueError, match="pass object_places"):
        model(lit)
    assert model(lit, places.expand(1, 2, 4)).shape == (1, 4 + 12 + 2)


def ball_rows_game(rows: list[float], lost_at: int) -> GameSteps:
    """A game whose ball is at ``rows`` (NaN: not shown) and whose one life is lost on step ``lost_at``."""
    places = np.full((len(rows), 4), np.nan, np.float32)
    places[:, 0], places[:, 1] = rows, 80.0
    life_lost = np.arange(len(rows) - 1) == lost_at
    empty = np.zeros(len(rows) - 1, np.int64)
    return GameSteps(lit=np.zeros((len(rows), 1, 1), np.uint8), places=places, reward_class=empty,
                     exit_delay=empty - 1, ball_gone=life_lost, life_lost=life_lost, game_over=life_lost,
                     start_lives=1)


def test_the_delay_table_holds_each_keys_most_common_delay() -> None:
    nan = float("nan")
    games = [ball_rows_game([160, 170.5, 180.5, nan, nan, nan, nan, nan], lost_at=5),      # 3 steps after row 180.5
             ball_rows_game([150, 170.5, 180.5, nan, nan, nan, nan, nan], lost_at=5),      # the same key
             ball_rows_game([160, 170.5, 180.5, nan, nan, nan, nan, nan], lost_at=4),      # its rare delay, 2
             ball_rows_game([167.5, nan, 180.5, nan, nan, nan, nan, 100], lost_at=6)]    # 2 frames apart; a new serve
    assert fit_delay_table(games, max_delay=12) == [[180.5, 10.0, 1, 3.0], [180.5, 13.0, 2, 4.0]]
    assert fit_delay_table(games, max_delay=3) == [[180.5, 10.0, 1, 3.0]]


def test_the_table_sets_the_delay_of_an_exit_whose_key_it_holds() -> None:
    cfg = RewardModelConfig(context_frames=4, delay_table=[[180.5, 10.0, 1, 3.0]], **TINY_CONFIG)
    model = RewardModel(cfg)
    with torch.no_grad():                           # an exit told at every step, counted at once
        model.head[-1].weight.zero_()
        model.head[-1].bias.fill_(-10.0)
        model.head[-1].bias[len(cfg.reward_values) + 1] = 10.0
    nan = float("nan")
    places = torch.full((3, 5, 4), nan)
    places[0, :, 0] = torch.tensor([160, 170.5, 180.5, nan, nan])    # last seen 1 frame before the step's: 3 - 1
    places[1, :, 0] = torch.tensor([170.5, 180.5, nan, nan, nan])    # a frame earlier: 3 - 2
    places[2, :, 0] = torch.tensor([165, 170, 182.5, nan, nan])    # a key the table lacks: the model's delay
    lit = torch.zeros(3, 5, *cfg.input_shape)
    assert model.predict(lit, places).exit_delay.tolist() == [2, 1, 0]
    assert model.predict(lit).exit_delay.tolist() == [0, 0, 0]


def test_a_reward_outside_the_classes_is_refused() -> None:
    with pytest.raises(UserError, match=r"^game 3 has rewards \[2.0\] that are not among --reward_values"):
        game_steps(episode([0, 2], [5, 5, 5], over=False), RewardModelConfig(), "game 3")


def test_exit_delays_mark_where_the_ball_was_last_shown_before_each_count() -> None:
    lost = np.array([0, 0, 0, 1, 0, 0, 0, 0, 1, 0], bool)
    shown = np.array([1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1], bool)      # frame 10: the next serve, after the count
    assert exit_delays(lost, shown, max_delay=12, lag=0).tolist() == [-1, 2, -1, -1, -1, -1, 2, -1, -1, -1]
    assert exit_delays(lost, shown, max_delay=12, lag=1).tolist() == [-1, -1, 1, -1, -1, -1, -1, 1, -1, -1]
    assert exit_delays(lost, shown, max_delay=12, lag=5).tolist() == [-1, -1, -1, 0, -1, -1, -1, -1, 0, -1]
    assert exit_delays(lost, shown, max_delay=1, lag=0).tolist() == [-1] * 10      # exits too long before
    assert exit_delays(lost, np.zeros(11, bool), max_delay=12, lag=0).tolist() == [-1] * 10


def test_training_looks_closely_where_the_ball_goes_out_of_view_without_a_lost_life() -> None:
    ep = episode([0] * 8, [5] * 9, over=False)
    ep.frames[4, 150:154, 40:42] = 0                                       # the ball dips out of view for a frame
    game = game_steps(ep, RewardModelConfig())
    assert game.ball_gone.tolist() == [False, False, False, True, False, False, False, False]
    assert (game.exit_delay == -1).all() and event_steps(game, exit_lag=2).tolist() == [2, 3, 4, 5, 6]


def test_lives_are_counted_the_delay_after_each_exit() -> None:
    counter = LifeCounter()
    assert [counter.step(d) for d in (-1, 2, 0, -1, 0, -1)] == [False, False, False, True, True, False]
    assert count_lives(np.array([3, -1, -1, -1, 0, -1])).tolist() == [False, False, False, True, True, False]


def test_end_step_and_late_matching() -> None:
    lost = np.array([0, 1, 0, 1, 0], bool)
    assert end_step(lost, start_lives=2) == 3
    assert end_step(lost, start_lives=5) == -1
    true, pred = np.array([0, 1, 0, 0, 1, 0], bool), np.array([0, 0, 1, 0, 0, 0], bool)
    assert matched(true, pred, late=0) == (0, 0)
    assert matched(true, pred, late=1) == (1, 1)


def test_figures_of_a_model_that_always_says_one_point_and_a_lost_life(tmp_path: Path) -> None:
    model = load_reward_model(write_fixed_reward_model(tmp_path / "r.pt", reward_class=1, exit_delay=0))
    games = [game_steps(episode([0, 1, 7, 0], [3, 3, 2, 2, 1], over=False), model.config),
             game_steps(episode([1, 0], [2, 1, 0], over=True), model.config)]
    figures = evaluate(model, games)
    assert figures["reward_recall"] == 1 and figures["reward_precision"] == 3 / 6
    assert figures["reward_class_accuracy"] == 2 / 3                       # the 7 is called a 1
    assert figures["life_recall"] == 1 and figures["life_precision"] == 4 / 6
    # game 1 ends as the env ends it at step 2 (three lives lost), not never; game 2 at step 1, right
    assert figures["game_over_right"] == 1 / 2 and figures["games"] == 2


def test_a_checkpoint_of_another_stage_gets_one_sentence(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "other.pt", stage="frame_cleaner", model={}, config={}, step=0)
    with pytest.raises(CheckpointError, match=f"^checkpoint {tmp_path / 'other.pt'} belongs to stage 'frame_cleaner', "
                                              "not 'reward_model'$"):
        load_reward_model(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_reward_model(tmp_path / "missing.pt")


def test_training_script_end_to_end(tmp_path: Path, script) -> None:
    data = tmp_path / "games"
    data.mkdir()
    for i in range(4):
        save_episode(data / f"game_{i:05d}.npz", episode([0, 1, 0, 4, 0, 0, 7, 0], [5, 5, 5, 5, 4, 4, 4, 3, 3],
                                                         over=i % 2 == 0))
    out = tmp_path / "run"
    proc = script("train_reward_model.py", "--preset", "tiny", "--data_dir", str(data), "--output_dir", str(out),
                  "--seed", "1")
    assert "held-out test games" in proc.stdout
    assert {p.name for p in out.iterdir()} >= {"best.pt", "latest.pt", "metrics.csv", "metrics.png"}
    model = load_reward_model(out / "best.pt")
    assert model.config.channels == [4, 4] and model.config.start_lives == 5
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "test_reward_recall" in header and "loss" in header
    script("train_reward_model.py", "--preset", "tiny", "--data_dir", str(data), "--output_dir", str(out),
           "--resume", "--num_steps", "6")
    assert load_checkpoint(out / "latest.pt")["step"] == 6
    bad = script("train_reward_model.py", "--preset", "tiny", "--data_dir", str(tmp_path / "none"),
                 "--output_dir", str(out), check=False)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "does not exist" in bad.stderr
    assert "--num_steps" in script("train_reward_model.py", "--help").stdout
