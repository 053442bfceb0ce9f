"""train_dqn.py end to end with tiny flags, in a subprocess, as a user runs it."""
import csv

import numpy as np
import pytest

from models.checkpoint import load_checkpoint
from models.dqn import load_policy

TINY = ["--total_steps", "160", "--num_envs", "2", "--buffer_size", "400", "--min_buffer", "64", "--batch_size", "4",
        "--train_every", "8", "--eval_every", "160", "--eval_episodes", "1", "--max_steps_per_episode", "60",
        "--save_freq", "80", "--log_every", "40", "--target_update_every", "5", "--threads", "1"]


@pytest.mark.parametrize("mode", ["temperature", "rnd"])
def test_short_run_writes_checkpoints_that_load_and_act(script, tmp_path, mode):
    out = tmp_path / mode
    script("train_dqn.py", "--exploration_mode", mode, "--output_dir", str(out), *TINY)
    assert {"latest.pt", "best.pt", "metrics.csv", "learning_curves.png"} <= {p.name for p in out.iterdir()}
    payload = load_checkpoint(out / "latest.pt", stage="dqn")
    assert payload["step"] == 160 and "eval_mean_score" in payload["metrics"]
    assert payload["metrics"]["eval_distinct_games"] == 1   # one evaluation game
    assert ("explorer" in payload) == (mode == "rnd")
    policy = load_policy(out / "best.pt")
    actions = policy.act(np.zeros((2, 8, 84, 84), dtype=np.uint8))
    assert actions.shape == (2,) and set(actions.tolist()) <= {0, 1, 2, 3}
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["step"]) for r in rows if r.get("loss")] == [80.0, 120.0, 160.0]


def test_resume_continues_from_latest(script, tmp_path):
    out = tmp_path / "run"
    first = [a if a != "160" else "80" for a in TINY]  # stop half way
    script("train_dqn.py", "--output_dir", str(out), *first)
    assert load_checkpoint(out / "latest.pt")["step"] == 80
    script("train_dqn.py", "--output_dir", str(out), *TINY, "--resume")
    assert load_checkpoint(out / "latest.pt")["step"] == 160


def test_bad_input_gets_one_clear_line(script, tmp_path):
    proc = script("train_dqn.py", "--total_steps", "-5", check=False)
    assert proc.returncode == 2 and "--num_steps must be positive" in proc.stderr
    proc = script("train_dqn.py", "--game", "Pacmann", "--output_dir", str(tmp_path), check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("error: unknown game 'Pacmann'")
    (tmp_path / "latest.pt").write_bytes(b"\x00" * 100)
    proc = script("train_dqn.py", "--resume", "--output_dir", str(tmp_path), *TINY, check=False)
    assert proc.returncode == 1 and "could not be read" in proc.stderr and "Traceback" not in proc.stderr
    proc = script("train_dqn.py", "--output_dir", str(tmp_path / "latest.pt" / "run"), *TINY, check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"error: --output_dir {tmp_path / 'latest.pt' / 'run'} cannot be written: {tmp_path / 'latest.pt'} is a file, "
        "not a folder"]


def test_init_from_starts_from_a_saved_network(script, tmp_path):
    out = tmp_path / "first"
    script("train_dqn.py", "--output_dir", str(out), *TINY)
    best = load_checkpoint(out / "best.pt")
    assert set(best) >= {"model", "config", "step"} and "agent" not in best  # the network alone, small
    second = tmp_path / "second"
    args = [a if a != "160" else "240" for a in TINY]
    script("train_dqn.py", "--output_dir", str(second), *args, "--init_from", str(out / "best.pt"))
    assert load_checkpoint(second / "latest.pt")["step"] == 240
