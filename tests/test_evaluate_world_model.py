"""evaluate_world_model.py end to end on tiny random checkpoints (from fresh emulator games and from
recorded ones), the pieces of models/world_model_evaluation.py with known answers, and bad input."""
from __future__ import annotations

import json
import math
from pathlib import Path

import imageio
import numpy as np
import pytest

import evaluate_world_model
from models import world_model_evaluation as ev
from models.atari import make_rgb_env
from models.breakout_objects import BALL_PADDLE_RGB, PADDLE_ROWS
from models.cli import UserError
from models.episodes import Episode, EpisodeError, save_episode
from models.neural_env import ACTION_NAMES, FIRE, LEFT, NOOP, RIGHT, real_start


def run(tiny_dir: Path, out: Path, *flags: str) -> dict:
    evaluate_world_model.main(["--checkpoint_dir", str(tiny_dir), "--output_dir", str(out), "--device", "cpu",
                               "--scale", "1", *flags])
    return json.loads((out / "report.json").read_text())


def test_emulator_evaluation_writes_everything(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report = run(tiny_dir, tmp_path / "eval", "--steps", "5", "--num_starts", "2", "--control_steps", "2")
    assert report["source"] == "emulator" and report["starts"] == ["seed 0", "seed 1"]
    assert report["settings"]["steps"] == 5 and report["settings"]["device"] == "cpu"
    assert report["checkpoints"] == {"world_model": str(tiny_dir / "latent_action.pt"),
                                     "mapper": str(tiny_dir / "action_to_latent.pt"),
                                     "frame_cleaner": None, "reward_model": None}
    assert set(report["at_steps"]) == {"1", "5"}
    for name in ("model", "copy_last_frame"):
        row = report["at_steps"]["1"][name]
        assert {"psnr", "pixel_exact", "paddle_error_px", "ball_error_px", "ball_presence", "ball_recall"} <= set(row)
        assert all(len(v) == 5 for v in report["per_step"][name].values())
    assert len(report["per_step"]["copy_previous"]["psnr"]) == 5
    # Step 1: the held context frame is the previous real frame.
    assert report["at_steps"]["1"]["copy_previous"]["psnr"] == report["at_steps"]["1"]["copy_last_frame"]["psnr"]
    summary = report["summary"]
    assert summary["control_trials"] == 4 and 0 <= summary["controllability"] <= 1
    assert summary["model_steps_per_s"] > 0 and summary["delta_psnr_t4"] is not None
    presence = report["per_step"]["model"]["ball_presence"]   # 5 steps: the first 20 are all of them
    assert summary["model_ball_presence_mean_first_20"] == pytest.approx(np.mean(presence))
    for trial in report["controllability_trials"]:  # JSON null: no paddle seen
        real, neural = (ev.direction(math.nan if dx is None else dx) for dx in (trial["real_dx"], trial["neural_dx"]))
        assert trial["passed"] == (real is not None and real == neural)
    for name in ("psnr.png", "paddle_error.png", "ball_recall.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 1000
    with imageio.get_reader(tmp_path / "eval" / "first_start.mp4") as video:
        assert video.count_frames() == 5 and video.get_meta_data()["size"][0] == 3 * 160 + 2 * 4
    out = capsys.readouterr().out
    assert "controllability" in out and "steps/s" in out and "PSNR" in out and "over steps 1-5:" in out
    assert "paddle at step 5: median error" in out and "model serves alone" in out
    assert set(ev.DISAGREEMENTS) <= {k.removeprefix("ball_disagreement_") for k in summary}
    assert not [p for p in (tmp_path / "eval").iterdir() if p.name.startswith(".")]  # no temporary files left


def write_games(directory: Path, count: int, steps: int) -> None:
    """``count`` short recorded games of random moves from real starts."""
    emulator = make_rgb_env()
    rng = np.random.default_rng(0)
    for i in range(count):
        frames = [real_start(emulator, 1, seed=i)[0]]
        actions = rng.integers(0, len(ACTION_NAMES), steps)
        frames += [emulator.step(int(a))[0] for a in actions]
        save_episode(directory / f"game_{i:05d}.npz", Episode(
            frames=np.stack(frames), actions=actions.astype(np.uint8), rewards=np.zeros(steps, np.float32),
            lives=np.full(steps + 1, 5, np.uint8), terminated=np.zeros(steps, bool)))
    emulator.close()


def test_evaluation_from_recorded_games_uses_their_test_split(tiny_dir: Path, tmp_path: Path) -> None:
    write_games(tmp_path / "episodes", count=3, steps=12)
    assert ev.recorded_steps(tmp_path / "episodes" / "game_00000.npz") == 12
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(EpisodeError, match="bad.npz is truncated or not an episode archive"):
        ev.recorded_steps(tmp_path / "bad.npz")
    report = run(tiny_dir, tmp_path / "eval", "--episodes_dir", str(tmp_path / "episodes"), "--steps", "4",
                 "--num_starts", "2", "--control_steps", "1")
    assert report["source"] == "episodes" and len(report["starts"]) == 2
    assert len({s.split()[0] for s in report["starts"]}) == 1  # 3 games: one test game
    oracle = run(tiny_dir, tmp_path / "oracle", "--episodes_dir", str(tmp_path / "episodes"), "--steps", "4",
                 "--num_starts", "2", "--control_steps", "1", "--latents", "encoder")
    assert oracle["starts"] == report["starts"] and oracle["settings"]["latents"] == "encoder"
    assert oracle["at_steps"]["1"]["copy_last_frame"] == report["at_steps"]["1"]["copy_last_frame"]
    with pytest.raises(UserError, match="none of the 1 test games has the 21 steps"):
        run(tiny_dir, tmp_path / "eval2", "--episodes_dir", str(tmp_path / "episodes"), "--steps", "20")


def test_summary_means_over_all_steps_and_the_first_20() -> None:
    steps = np.arange(1.0, 31.0)            # 30 steps: 1, 2, ... 30
    curves = {"model": {"paddle_error_px": steps, "ball_recall": np.r_[np.full(20, np.nan), np.ones(10)]}}
    rollouts = ev.Rollouts(source="emulator", starts=["seed 0"], real=np.zeros((1, 30, 210, 160, 3), np.uint8),
                           neural=np.zeros((1, 30, 210, 160, 3), np.uint8),
                           context=np.zeros((1, 4, 210, 160, 3), np.uint8),
                           actions=np.zeros((1, 30), np.int64))
    summary = ev.Evaluation(rollouts=rollouts, curves=curves, controls=[], delta_psnr_t4=math.nan,
                            model_steps_per_s=1.0).summary
    assert summary["model_paddle_error_px_mean"] == 15.5 and summary["model_paddle_error_px_mean_first_20"] == 10.5
    assert summary["model_ball_recall_mean"] == 1.0 and math.isnan(summary["model_ball_recall_mean_first_20"])
    assert math.isnan(summary["model_paddle_error_px_median_at_20"])   # no paddle in any frame
    assert math.isnan(summary["model_paddle_off_share_at_20"])


def test_paddle_error_at_step_20_game_by_game() -> None:
    """Four games, the real paddle at column 50: the model's exact, 1 px off, 24 px off, and missing."""
    real = np.zeros((4, 20, 210, 160, 3), np.uint8)
    neural = np.zeros_like(real)
    real[:, :, PADDLE_ROWS[0]:PADDLE_ROWS[1], 42:58] = BALL_PADDLE_RGB
    for game, shift in enumerate((0, 1, 24)):
        neural[game, :, PADDLE_ROWS[0]:PADDLE_ROWS[1], 42 + shift:58 + shift] = BALL_PADDLE_RGB
    rollouts = ev.Rollouts(source="emulator", starts=[f"seed {i}" for i in range(4)], real=real, neural=neural,
                           context=real[:, :4], actions=np.zeros((4, 20), np.int64))
    errors = ev.paddle_errors_by_game(rollouts, 20)
    assert errors[:3].tolist() == [0.0, 1.0, 24.0] and math.isnan(errors[3])
    summary = ev.Evaluation(rollouts=rollouts, curves={}, controls=[], delta_psnr_t4=math.nan,
                            model_steps_per_s=1.0).summary
    assert summary["model_paddle_error_px_median_at_20"] == 1.0
    assert summary["model_paddle_off_share_at_20"] == pytest.approx(1 / 3)


def test_ball_presence_disagreements_by_how_they_began() -> None:
    """Four games of 4 steps: the model loses the ball for 2 steps, serves alone for 2, misses the real
    game's serve for 3, keeps a ball the real game lost for 3."""
    shown = {"real": ["o", "....", ".ooo", "o..."], "neural": ["oo..", "..oo", "....", "oooo"]}
    context_ball = [True, False, False, True]

    def frames(rows: list[str]) -> np.ndarray:
        out = np.zeros((4, 4, 210, 160, 3), np.uint8)
        for game, row in enumerate(rows):
            for step, mark in enumerate(row.ljust(4, "o")):
                if mark == "o":
                    out[game, step, 120:124, 60:62] = BALL_PADDLE_RGB
        return out

    context = np.zeros((4, 4, 210, 160, 3), np.uint8)
    context[context_ball, -1, 120:124, 60:62] = BALL_PADDLE_RGB
    rollouts = ev.Rollouts(source="emulator", starts=[f"seed {i}" for i in range(4)], real=frames(shown["real"]),
                           neural=frames(shown["neural"]), context=context, actions=np.zeros((4, 4), np.int64))
    assert ev.presence_disagreements(rollouts) == {"model_loses_ball": 2 / 16, "model_serves_alone": 2 / 16,
                                                   "real_serves_alone": 3 / 16, "model_keeps_lost_ball": 3 / 16}


def test_random_actions_are_seeded_valid_and_mostly_moves() -> None:
    a = ev.random_actions(np.random.default_rng(3), 400)
    assert np.array_equal(a, ev.random_actions(np.random.default_rng(3), 400))
    assert a.shape == (400,) and set(a.tolist()) <= {NOOP, FIRE, RIGHT, LEFT}
    assert np.isin(a, [LEFT, RIGHT]).mean() > 0.6 and (a == FIRE).any()


@pytest.mark.parametrize("real, neural, passed, movable", [
    (-8.0, -3.0, True, True),        # both went left
    (8.0, -3.0, False, True),        # wrong way
    (8.0, 0.5, False, True),         # the model's paddle stayed
    (0.0, 0.4, True, False),         # at a wall: both stayed
    (0.0, 6.0, False, False),        # at a wall, yet the model moved
    (8.0, math.nan, False, True),    # the model lost its paddle
])
def test_control_trial_rules(real: float, neural: float, passed: bool, movable: bool) -> None:
    trial = ev.ControlTrial(start="seed 0", action="LEFT", real_dx=real, neural_dx=neural)
    assert trial.passed is passed and trial.movable is movable


def test_json_safe_and_difference_frames() -> None:
    assert ev.json_safe({"a": [math.nan, np.float32(1.5), np.int64(2)], "b": math.inf}) == {"a": [None, 1.5, 2], "b": None}
    a = np.zeros((2, 3, 4, 3), np.uint8)
    b = a.copy()
    b[1, 2, 3, 0] = 7
    diff = ev.difference_frames(a, b)
    assert diff.shape == a.shape and diff.sum() == 3 * 255 and diff[1, 2, 3].tolist() == [255, 255, 255]


def test_bad_input(script, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    proc = script("evaluate_world_model.py", "--checkpoint_dir", str(tmp_path / "missing"),
                  "--output_dir", str(tmp_path / "out"), check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert f"checkpoint folder {tmp_path / 'missing'} does not exist" in proc.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as exc:
        evaluate_world_model.main(["--steps", "-1"])
    assert exc.value.code == 2 and "--steps must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        evaluate_world_model.main(["--latents", "encoder"])
    assert exc.value.code == 2 and "give --episodes_dir" in capsys.readouterr().err
    with pytest.raises(UserError, match="episode folder .* does not exist"):
        evaluate_world_model.main(["--episodes_dir", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit) as exc:
        evaluate_world_model.main(["--help"])
    assert exc.value.code == 0 and "--num_starts" in capsys.readouterr().out
