"""The rare-events benchmark sorts steps by what the real game does and judges the model's frame."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


from bench.bench_events import judged_right
from models.breakout_objects import step_kinds
from models.episodes import list_episode_files
from test_bench_held_out import tiny_checkpoint
from test_train_latent_action import make_games

ROOT = Path(__file__).resolve().parents[1]


def test_a_frame_is_right_when_it_does_what_the_real_game_does(game):
    kinds = step_kinds(game, context_frames=2)
    real = game[2:]
    assert judged_right(kinds, real, real).all()
    wrong = real[[2, 3, 1, 0, 4]]   # no serve, no ball, ball kept, ball drawn, digit unchanged
    wrong[4] = game[0]
    assert judged_right(kinds, real, wrong).tolist() == [False, False, False, False, False]


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
