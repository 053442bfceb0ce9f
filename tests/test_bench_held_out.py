"""The held-out benchmark compares checkpoints on the same windows of the chosen split."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.bench_held_out import held_out_figures
from models.checkpoint import save_checkpoint
from models.episodes import list_episode_files
from models.frame_dataset import palette_from_games, split_games
from models.latent_action import LatentActionModel, model_config
from test_train_latent_action import make_games

ROOT = Path(__file__).resolve().parents[1]


def tiny_checkpoint(path: Path, games: list, seed: int) -> Path:
    torch.manual_seed(seed)
    model = LatentActionModel(model_config("tiny", palette_from_games(games)))
    save_checkpoint(path, stage="latent_action", model=model, config=model.config, step=seed)
    return path


@pytest.fixture(scope="module")
def episodes(tmp_path_factory) -> Path:
    return make_games(tmp_path_factory.mktemp("held_out_games"), num_games=6)


def test_checkpoints_are_measured_on_the_same_windows(episodes, tmp_path):
    files = list_episode_files(episodes)
    test_games = split_games(files).test
    first = tiny_checkpoint(tmp_path / "a.pt", files, seed=0)
    second = tiny_checkpoint(tmp_path / "b.pt", files, seed=1)
    a = held_out_figures(first, test_games, num_windows=6)
    b = held_out_figures(second, test_games, num_windows=6)
    assert a == held_out_figures(first, test_games, num_windows=6)
    assert a["copy_psnr"] == b["copy_psnr"] and a["copy_pixel_exact"] == b["copy_pixel_exact"]
    for m in (a, b):
        assert 0.0 <= m["pixel_exact"] <= 1.0 and 0.0 < m["codebook_usage"] <= 1.0 and "delta_psnr_t4" in m


def test_the_script_prints_a_line_per_checkpoint_and_one_line_errors(episodes, tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "a.pt", list_episode_files(episodes), seed=0)
    run = lambda *args: subprocess.run([sys.executable, "-m", "bench.bench_held_out", *args], cwd=ROOT,
                                       capture_output=True, text=True, timeout=120)
    ok = run(str(checkpoint), "--episodes_dir", str(episodes), "--windows", "4", "--split", "val", "--threads", "1")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert f"{checkpoint}: PSNR" in ok.stdout and "pixel-exact" in ok.stdout
    missing = run(str(tmp_path / "none.pt"), "--episodes_dir", str(episodes), "--windows", "4")
    assert missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    no_windows = run(str(checkpoint), "--episodes_dir", str(episodes), "--windows", "0")
    assert no_windows.returncode == 1 and "--windows must be positive" in no_windows.stderr
    assert "Traceback" not in no_windows.stderr


def test_a_frame_cleaner_is_measured_on_the_same_frames(episodes, tmp_path):
    from models.checkpoint import save_checkpoint
    from models.frame_cleaner import STAGE, cleaner_from_world_model
    from models.latent_action import load_latent_action_model

    files = list_episode_files(episodes)
    checkpoint = tiny_checkpoint(tmp_path / "a.pt", files, seed=0)
    world = load_latent_action_model(checkpoint)
    cleaner_path = tmp_path / "frame_cleaner.pt"
    save_checkpoint(cleaner_path, stage=STAGE, model=cleaner_from_world_model(world), config=world.config, step=0)
    m = held_out_figures(checkpoint, split_games(files).test, num_windows=6, cleaner_path=str(cleaner_path))
    assert m["cleaned_exact"] == m["drawn_exact"] == m["pixel_exact"]   # a new cleaner gives back what it is shown
    assert m["real_untouched"] == 1.0
