"""Shared test set-up: scripts run from the repository root, plots without a display, no network."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def run_script(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python <script> args...`` from the repository root with one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture
def script():
    return run_script


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A folder with a tiny random world model and mapper saved as the shipped files."""
    from tiny_models import write_tiny_checkpoints

    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def game() -> np.ndarray:
    """Two ball-less frames, a serve, the ball near the paddle, the ball gone, a wait, a life taken off."""
    from models.atari import make_rgb_env
    from models.breakout_objects import LIVES_BOX, LOST_ROW, ball_position, ball_present

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
