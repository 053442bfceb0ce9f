"""models/closed_loop.py: what a game did, counted from pixels on sequences with known answers and on
real follower games; closed-loop play and the repair trials end to end on tiny random models; and
evaluate_world_model.py --closed_loop."""
from __future__ import annotations

import json
import math
from pathlib import Path

import imageio
import numpy as np
import pytest
import torch

import evaluate_world_model
from models import breakout_objects as objects
from models import closed_loop as cl
from models.atari import make_rgb_env
from models.cli import UserError
from models.neural_env import NeuralBreakoutEnv

NAN = math.nan


def test_runs_and_still_balls() -> None:
    assert cl.first_run_end(np.array([1, 1, 0, 1, 1, 1], bool), 3) == 6
    assert cl.first_run_end(np.array([1, 1, 0, 1, 1], bool), 3) is None
    ball = np.array([[100, 50], [100, 50], [100, 50], [100, 50], [104, 52], [NAN, NAN]])
    assert cl.count_still(ball).tolist() == [False, False, False, True, False, False]


def test_lost_balls_hits_and_serves_from_positions() -> None:
    shown = np.array([0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1], bool)
    assert cl.ball_gone_at(shown) == [5]     # the last one comes back a frame later: unseen, not lost
    row = np.array([140, 160, 180, 170, 150])
    col = np.array([50, 52, 54, 56, 58], float)
    assert cl.count_paddle_hits(row, col, np.full(5, 55.0)) == 1
    assert cl.count_paddle_hits(row, col, np.full(5, 100.0)) == 0      # no paddle under it
    assert cl.count_paddle_hits(row - 100, col, np.full(5, 55.0)) == 0  # turned high up: a brick, not the paddle


@pytest.fixture(scope="module")
def emulator():
    env = make_rgb_env("Breakout")
    yield env
    env.close()


def test_a_real_follower_game_counts_as_the_real_game_plays(emulator) -> None:
    start = cl.play_start(emulator, cl.START_SEED, 150, 4)
    assert start.frames.shape == (4, 210, 160, 3) and len(start.actions) == 16
    emulator.unwrapped.ale.restoreState(start.state)
    played = cl.play(cl.emulator_step(emulator), start.frames[-1], start.actions[-1], cl.follower(emulator),
                     np.random.default_rng(0), 400)
    stats = cl.game_stats(played.frames, played.points)
    assert stats.steps == len(played.actions) == 400
    assert stats.counted_points == stats.points > 0          # the bricks seen to go give the emulator's score
    assert stats.paddle_whole == stats.one_ball == stats.steps and stats.ball_still == 0 and stats.collapse is None
    assert stats.paddle_hits > 3 and stats.bricks > 3 and stats.points >= stats.bricks
    assert stats.ball_shown > 0.8 * stats.steps


def test_starts_are_repeatable_and_restore_the_real_game(emulator) -> None:
    a, b = (cl.play_start(emulator, 5, 120, 6) for _ in range(2))
    assert np.array_equal(a.frames, b.frames) and a.actions == b.actions
    emulator.unwrapped.ale.restoreState(a.state)
    after_a = emulator.step(0)[0]
    emulator.unwrapped.ale.restoreState(b.state)
    assert np.array_equal(emulator.step(0)[0], after_a)


class StubModel:
    """Draws the real next frame (the 'code' it is given is that frame) or copies the last one."""

    def __init__(self, copy_last: bool, frames: np.ndarray):
        self.copy_last = copy_last
        colours = np.unique(frames.reshape(-1, 3), axis=0).tolist()                     # the frames' own palette
        self.config = type("Config", (), {"context_frames": 4, "palette": colours})()
        self.device = torch.device("cpu")

    def encode_latents(self, context: torch.Tensor, next_frame: torch.Tensor) -> torch.Tensor:
        return next_frame

    def predict_next(self, context: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return context[:, -1] if self.copy_last else codes


def test_one_step_figures_count_exact_and_lost_balls(emulator) -> None:
    start = cl.play_start(emulator, cl.START_SEED, 150, 4)
    emulator.unwrapped.ale.restoreState(start.state)
    played = cl.play(cl.emulator_step(emulator), start.frames[-1], start.actions[-1], cl.follower(emulator),
                     np.random.default_rng(0), 60)
    frames = np.concatenate([start.frames[:-1], played.frames])
    perfect = cl.one_step_stats(StubModel(copy_last=False, frames=frames), frames, batch_size=7)
    assert perfect.steps == 60 and perfect.frames_exact == 60 and perfect.ball_exact == perfect.ball_steps > 40
    assert perfect.ball_lost == 0 and perfect.paddle_right == 60
    copied = cl.one_step_stats(StubModel(copy_last=True, frames=frames), frames)
    assert copied.ball_exact < 0.1 * copied.ball_steps             # the real ball never stands still
    shown = objects.ball_present(frames)
    assert copied.ball_lost == int((shown[4:] & ~shown[3:-1]).sum())
    total = perfect.add(copied)
    assert total.steps == 120 and total.shares()["frames_exact_share"] == (60 + copied.frames_exact) / 120


def stats(steps: int, bricks: int, hits: int) -> cl.GameStats:
    return cl.GameStats(steps=steps, bricks=bricks, points=bricks, counted_points=0.0, paddle_hits=hits, balls_lost=0,
                        serves=0, ball_shown=steps, paddle_whole=steps, one_ball=steps, ball_still=0, collapse=None)


def test_ratio_intervals_show_how_far_the_starts_leave_a_ratio_free() -> None:
    real = [stats(1000, b, 30) for b in (20, 40, 60, 80)]
    same_share = [stats(1000, b // 2, 30) for b in (20, 40, 60, 80)]       # half the bricks at every start
    spread = cl.ratio_intervals(same_share, real)
    assert spread["bricks"] == pytest.approx([0.5, 0.5]) and spread["paddle_hits"] == pytest.approx([1.0, 1.0])
    uneven = [stats(1000, b, 30) for b in (80, 60, 40, 0)]                # the same total, start by start unlike
    low, high = cl.ratio_intervals(uneven, real)["bricks"]
    assert low < 0.8 and high > 1.2                                        # pooled ratio 1.0, far from certain
    low4, high4 = cl.ratio_intervals(uneven * 4, real * 4)["bricks"]
    assert low < low4 < 1.0 < high4 < high                                 # more starts, a narrower interval
    assert all(math.isnan(v) for v in cl.ratio_intervals(real, [stats(1000, 0, 0)] * 4)["bricks"])


def test_rate_whiskers_span_the_ratio_interval_in_events() -> None:
    summary = {"sides": {"emulator": {f"{e}_per_1000": 10.0 for e in cl.EVENTS}},
               "ratio_intervals_90": {"neural": {e: [0.5, 1.5] for e in cl.EVENTS}}}
    summary["ratio_intervals_90"]["neural"]["serves"] = [math.nan, math.nan]
    whiskers = cl.rate_whiskers(summary, "neural", np.full(len(cl.EVENTS), 8.0))
    serves = cl.EVENTS.index("serves")
    assert whiskers.shape == (2, len(cl.EVENTS)) and whiskers[:, serves].tolist() == [0, 0]
    assert np.delete(whiskers, serves, axis=1).T.tolist() == [[3.0, 7.0]] * (len(cl.EVENTS) - 1)  # 5 to 15 around 8
    assert cl.rate_whiskers(summary, "emulator", np.zeros(len(cl.EVENTS))) is None


def test_closed_loop_on_tiny_models(tiny_dir: Path, emulator) -> None:
    env = NeuralBreakoutEnv(tiny_dir)
    result = cl.run_closed_loop(env, emulator, cl.ClosedLoopSettings(num_games=2, steps=6, repair_steps=2))
    summary = result.summary()
    assert set(summary["sides"]) == set(cl.SIDES)
    assert all(len(result.games[side]) == 2 for side in cl.SIDES)
    assert set(summary["ratios_to_emulator"]) == set(summary["ratio_intervals_90"]) == {"neural", "oracle"}
    assert set(summary["repair_whole_share"]) == set(cl.REPAIRS)
    assert summary["sides"]["emulator"]["paddle_whole_share"] == 1.0
    assert len(result.first_games["neural"].frames) == 7 and summary["neural_steps_per_s"] > 0
    text = cl.format_summary(summary)
    assert "paddle collapses" in text and "oracle / emulator" in text


def test_evaluate_closed_loop_writes_everything(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cl"
    evaluate_world_model.main(["--closed_loop", "--checkpoint_dir", str(tiny_dir), "--output_dir", str(out),
                               "--device", "cpu", "--scale", "1", "--steps", "5", "--num_starts", "1",
                               "--repair_steps", "0", "--no-oracle"])
    report = json.loads((out / "report.json").read_text())
    assert set(report["summary"]["sides"]) == {"emulator", "neural"}
    assert report["settings"]["frame_cleaner"] is False and len(report["games"]) == 2
    assert (out / "closed_loop.png").stat().st_size > 1000
    with imageio.get_reader(out / "closed_loop.mp4") as video:
        assert video.count_frames() == 5 and video.get_meta_data()["size"][0] == 2 * 160 + 4
    assert (out / "closed_loop.gif").stat().st_size > 1000
    assert "paddle collapses" in capsys.readouterr().out


def test_closed_loop_needs_a_follower_for_the_game(tiny_dir: Path, tmp_path: Path) -> None:
    config = evaluate_world_model.EvaluateConfig(closed_loop=True, game="Pong", output_dir=str(tmp_path / "cl"))
    with pytest.raises(UserError, match="knows only Breakout, not Pong"):
        evaluate_world_model.closed_loop(config, NeuralBreakoutEnv(tiny_dir))


def test_closed_loop_flags(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        evaluate_world_model.main(["--closed_loop", "--latents", "encoder", "--episodes_dir", str(tmp_path)])
    config = evaluate_world_model.EvaluateConfig(closed_loop=True)
    assert (config.steps, config.num_starts) == (1000, 16)
    assert (evaluate_world_model.EvaluateConfig().steps, evaluate_world_model.EvaluateConfig().num_starts) == (100, 8)
