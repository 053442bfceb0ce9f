"""Tests for models/scoreboard.py and the neural game's counters on screen: Breakout's digits read
from real frames, drawn from the env's score and lives, and read back from a start frame."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models import closed_loop
from models.atari import make_rgb_env
from models.checkpoint import load_checkpoint, save_checkpoint
from models.neural_env import NOOP, REWARD_FILE, NeuralBreakoutEnv
from models.scoreboard import DIGIT_ROWS, PLACES, Scoreboard, fit_glyphs, from_rows, shown_digits, to_rows

from tiny_models import tiny_with_rewards


@pytest.fixture(scope="module")
def real_game() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An emulator game the ball follower plays for 700 steps: frames, rewards, lives."""
    emulator = make_rgb_env("Breakout")
    frame, info = emulator.reset(seed=5)
    player, rng = closed_loop.follower(emulator), np.random.default_rng(5)
    frames, rewards, lives, action = [frame], [], [info["lives"]], None
    for _ in range(700):
        action = player.act(frame, action, rng)
        frame, reward, terminated, truncated, info = emulator.step(action)
        frames.append(frame), rewards.append(reward), lives.append(info["lives"])
        if terminated or truncated:
            break
    emulator.close()
    return np.stack(frames), np.array(rewards), np.array(lives)


def test_glyph_rows_round_trip() -> None:
    cell = np.random.default_rng(0).random((10, 12)) < 0.5
    assert np.array_equal(from_rows(to_rows(cell)), cell)
    assert to_rows(np.eye(10, 12, dtype=bool))[0] == 1 << 11            # the leftmost pixel is the top bit


def test_the_digits_read_from_a_real_game_read_its_score_and_lives_back(real_game) -> None:
    frames, rewards, lives = real_game
    score = np.concatenate([[0], np.cumsum(rewards)]).astype(int)
    assert len(set(score % 10)) == 10                                    # every digit was shown
    glyphs = fit_glyphs([(frames, rewards, lives)])
    assert len(glyphs) == 10 and len({tuple(g) for g in glyphs}) == 10
    board = Scoreboard(glyphs, lit_colour=1, black=0)
    read = [board.read(f) for f in frames]
    right = [r == (s, l) for r, s, l in zip(read, score, lives)]
    assert np.mean(right) > 0.97                                          # the rest: the score redrawn a step late
    assert fit_glyphs([(frames[:30], rewards[:29], lives[:30])]) == []    # a game too short to show every digit


def test_the_scoreboard_draws_the_counts_and_reads_them_back(real_game) -> None:
    frames, rewards, lives = real_game
    board = Scoreboard(fit_glyphs([(frames, rewards, lives)]), lit_colour=1, black=0)
    indices = torch.zeros(2, 210, 160, dtype=torch.uint8)
    indices[:, DIGIT_ROWS[0]:DIGIT_ROWS[1], PLACES[0]:PLACES[-1] + 12] = 1   # a garbled score area
    drawn = board.draw(indices, 374.0, 3)
    rgb = np.where(drawn[..., None].numpy() == 1, 142, 0).astype(np.uint8).repeat(3, -1)
    assert [board.read(f) for f in rgb] == [(374, 3), (374, 3)]
    assert shown_digits(374, 3) == (3, 7, 4, 3)
    assert (drawn[:, DIGIT_ROWS[1]:] == indices[:, DIGIT_ROWS[1]:]).all()      # the rest of the frame as it was


def with_glyphs(folder: Path, glyphs: list[list[int]]) -> Path:
    checkpoint = load_checkpoint(folder / REWARD_FILE)
    save_checkpoint(folder / REWARD_FILE, stage=checkpoint["stage"], model=checkpoint["model"],
                    config=dict(checkpoint["config"], digit_glyphs=glyphs), step=0)
    return folder


def test_the_neural_game_shows_its_score_and_lives_and_reads_them_from_its_start(
        tmp_path: Path, tiny_dir: Path, start_frames: np.ndarray, real_game) -> None:
    glyphs = fit_glyphs([real_game])
    env = NeuralBreakoutEnv(with_glyphs(tiny_with_rewards(tmp_path / "seven", tiny_dir, 3, 0), glyphs))
    _, info = env.reset(seed=0, options={"frames": start_frames})
    assert (info["score"], info["lives"]) == (0.0, 5)                    # a new game's frames: 000 and 5
    frame, *_, info = env.step(NOOP)
    assert (info["score"], info["lives"]) == (7.0, 4)
    assert env.scoreboard.read(frame) == (7, 4)
    later = start_frames.copy()
    later[-1] = frame
    _, info = env.reset(seed=0, options={"frames": later})               # read from the start's last frame
    assert (info["score"], info["lives"]) == (7.0, 4)
    env.close()
    plain = NeuralBreakoutEnv(tiny_with_rewards(tmp_path / "plain", tiny_dir, 3, 0))
    assert plain.scoreboard is None                                       # no glyphs: the decoder's digits
    plain.close()
