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
def start_frames() -> np.ndarray:
    """The first 5 frames of a real game (seed 1): (5, H, W, 3)."""
    from models.atari import make_rgb_env
    from models.neural_env import real_start

    emulator = make_rgb_env()
    frames = real_start(emulator, 5, seed=1)
    emulator.close()
    return frames
