"""The rare-events benchmark sorts steps by what the real game does and judges the model's frame."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.bench_events import KINDS, REGIONS, judged_right, step_kinds, wrong_regions
from models.atari import make_rgb_env
from models.breakout_objects import BRICK_ROWS, LIVES_BOX, LOST_ROW, PADDLE_ROWS, ball_position, ball_present
from models.episodes import list_episode_files
from test_bench_held_out import tiny_checkpoint
from test_train_latent_action import make_games

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def game() -> np.ndarray:
    """Two ball-less frames, a serve, the ball near the paddle, the ball gone, a wait, a life taken off."""
    env = make_rgb_env("Breakout")
    first, _ = env.reset(seed=0)
    played = [env.step(1)[0]]
    while ball_present(played[-1]):   # the ball falls past the paddle, which stays put
        played.append(env.step(0)[0])
    env.close()
    served, low, gone = played[0], played[-2], played[-1]
    assert ball_position(low)[0] >= LOST_ROW
    top, _, left, _ = LIVES_BOX
    other_digit = first.copy()
    other_digit[top + 2, left + 3] = 255 - other_digit[top + 2, left + 3]
    return np.stack([first, first, served, low, gone, first, other_digit])


def test_steps_are_sorted_by_what_the_real_game_does(game):
    names = [KINDS[k] for k in step_kinds(game, context_frames=2)]   # the steps to frames 2-6
    assert names == ["serve", "ball in play", "ball lost", "ball in play", "life taken off"]


def test_a_frame_is_right_when_it_does_what_the_real_game_does(game):
    kinds = step_kinds(game, context_frames=2)
    real = game[2:]
    assert judged_right(kinds, real, real).all()
    wrong = real[[2, 3, 1, 0, 4]]   # no serve, no ball, ball kept, ball drawn, digit unchanged
    wrong[4] = game[0]
    assert judged_right(kinds, real, wrong).tolist() == [False, False, False, False, False]


def test_wrong_pixels_are_placed_in_their_band_of_rows(game):
    real = np.stack([game[0]] * 3)
    predicted = real.copy()
    predicted[1, BRICK_ROWS[0], 40] = 255 - predicted[1, BRICK_ROWS[0], 40]
    predicted[2, PADDLE_ROWS[1] - 1, 70, 0] ^= 1
    predicted[2, 0, 0] = 255 - predicted[2, 0, 0]
    names = list(REGIONS)
    flags = wrong_regions(real, predicted)
    assert flags.shape == (3, len(REGIONS)) and flags.dtype == bool
    assert [[names[j] for j in np.flatnonzero(row)] for row in flags] == [[], ["bricks"], ["score and lives", "paddle rows"]]
    assert sorted(np.concatenate(list(REGIONS.values())).tolist()) == list(range(game.shape[1]))   # every row, once


def test_the_script_prints_a_line_per_checkpoint(tmp_path):
    episodes = make_games(tmp_path / "games", num_games=6)
    checkpoint = tiny_checkpoint(tmp_path / "a.pt", list_episode_files(episodes), seed=0)
    run = subprocess.run([sys.executable, "-m", "bench.bench_events", str(checkpoint), "--episodes_dir", str(episodes),
                          "--split", "val", "--threads", "1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"{checkpoint}: serve" in run.stdout and "pixel-exact" in run.stdout and "wrong pixels in: score and lives" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "bench.bench_events", str(checkpoint), "--games", "0"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "--games must be positive" in bad.stderr and "Traceback" not in bad.stderr
