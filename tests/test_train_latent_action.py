"""Tests for the data side of the latent action stage (models/frame_dataset.py) and for
train_latent_action.py run end to end on tiny made-up games, alone and as two torchrun processes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.cli import UserError
from models.episodes import Episode, list_episode_files, save_episode
from models.frame_dataset import (FramePool, PaletteIndexer, fixed_windows, palette_from_games, split_folders,
                                  split_games, window_frame_indices)
from models.latent_action import STAGE, load_latent_action_model

ROOT = Path(__file__).resolve().parents[1]
GREY, RED, BLUE = (142, 142, 142), (200, 72, 72), (66, 72, 200)


def game_frames(game: int, steps: int) -> np.ndarray:
    """(steps+1, 210, 160, 3): a grey wall, and a red block whose row says the game and whose
    column says the frame number, so any frame tells where it came from."""
    frames = np.zeros((steps + 1, 210, 160, 3), dtype=np.uint8)
    frames[:, :8] = GREY
    for t in range(steps + 1):
        frames[t, 20 + 10 * game:24 + 10 * game, 4 * t:4 * t + 2] = RED
    frames[steps // 2:, 200:204, 10:20] = BLUE
    return frames


def make_games(folder: Path, num_games: int = 5, steps: int = 12) -> Path:
    for g in range(num_games):
        frames = game_frames(g, steps)
        save_episode(folder / f"game_{g:05d}.npz", Episode(
            frames=frames, actions=np.arange(steps, dtype=np.uint8) % 4, rewards=np.zeros(steps, np.float32),
            lives=np.full(steps + 1, 5, np.uint8), terminated=np.eye(1, steps, steps - 1, dtype=bool)[0],
            metadata={"player": "test", "game": "Breakout"}))
    return folder


def block_origin(indices: np.ndarray, red: int) -> tuple[int, int]:
    """(game, frame number) shown by one palette-index frame."""
    rows, cols = np.nonzero(indices[8:200] == red)
    return (int(rows.min()) + 8 - 20) // 10, int(cols.min()) // 4


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    return make_games(tmp_path_factory.mktemp("episodes"))


def test_split_is_by_whole_game_and_repeatable(tmp_path):
    files = [tmp_path / f"game_{i:05d}.npz" for i in range(25)]
    split = split_games(files, seed=3)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert set().union(*parts) == set(files)
    assert (len(split.train), len(split.val), len(split.test)) == (21, 2, 2)  # round(10% of 25) each
    assert split_games(list(reversed(files)), seed=3) == split
    assert split_games(files, seed=4) != split
    small = split_games(files[:3])
    assert len(small.train) == len(small.val) == len(small.test) == 1
    with pytest.raises(UserError, match="at least 3"):
        split_games(files[:2])


def test_a_folder_added_to_the_data_moves_no_game_of_another_between_splits(tmp_path):
    recorded = [tmp_path / "recorded" / f"game_{i:05d}.npz" for i in range(30)]
    extra = [tmp_path / "extra" / f"game_{i:05d}.npz" for i in range(20)]
    alone, joined = split_games(recorded, seed=0), split_folders([recorded, extra], seed=0)
    for part in ("train", "val", "test"):
        assert [f for f in getattr(joined, part) if f.parent.name == "recorded"] == getattr(alone, part)
    assert sorted(joined.train + joined.val + joined.test) == sorted(recorded + extra)
    assert len(joined.test) == 3 + 2
    assert split_folders([recorded], seed=0) == alone


def test_palette_indexer_round_trip_and_nearest_colour(games):
    palette = palette_from_games(list_episode_files(games))
    assert palette[0].tolist() == [0, 0, 0]   # most frequent first
    assert {tuple(c) for c in palette.tolist()} == {(0, 0, 0), GREY, RED, BLUE}
    indexer = PaletteIndexer(palette)
    frames = game_frames(1, 4)
    np.testing.assert_array_equal(indexer.to_rgb(indexer.to_indices(frames)), frames)
    odd = np.array([[[[201, 70, 73]]]], dtype=np.uint8)   # not in the palette: nearest is RED
    assert tuple(indexer.to_rgb(indexer.to_indices(odd))[0, 0, 0]) == RED


def test_windows_never_cross_a_game_boundary(games):
    files = list_episode_files(games)
    indexer = PaletteIndexer(palette_from_games(files))
    red = int(np.nonzero((indexer.palette == RED).all(1))[0][0])
    pool = FramePool(files, indexer, context_frames=3, steps=2, rng=np.random.default_rng(0))
    for _ in range(20):
        batch = pool.sample(8)
        assert batch.context.shape == (8, 3, 210, 160) and batch.future.shape == (8, 2, 210, 160)
        for window in np.concatenate([batch.context, batch.future], axis=1):
            origins = [block_origin(frame, red) for frame in window]
            assert len({g for g, _ in origins}) == 1                   # one game
            last = origins[2][1]
            expected = window_frame_indices(last, 3, 2)                # consecutive, first frame repeated at start
            assert [t for _, t in origins] == expected.tolist()


def test_pool_rotates_games_through_a_small_memory_budget(games):
    files = list_episode_files(games)
    indexer = PaletteIndexer(palette_from_games(files))
    pool = FramePool(files, indexer, context_frames=2, memory_mb=0.5, swap_every=2, rng=np.random.default_rng(0))
    assert len(pool.games) < len(files) and pool.rotating   # 13 frames of 33.6 kB per game
    first = list(pool.games)  # kept alive, so a new game can never take an old one's place in memory
    for _ in range(5):
        pool.sample(2)
    assert any(all(g is not f for f in first) for g in pool.games)  # some game was swapped in


def test_pool_passes_over_games_too_short_for_a_window(games, tmp_path):
    short = list_episode_files(make_games(tmp_path / "short", num_games=4, steps=3))
    files = list_episode_files(games) + short
    indexer = PaletteIndexer(palette_from_games(files))
    pool = FramePool(files, indexer, context_frames=2, steps=5, memory_mb=0.5, swap_every=1,
                     rng=np.random.default_rng(0))
    held = len(pool.games)
    for _ in range(30):   # every swap goes round the short games
        assert pool.sample(2).future.shape == (2, 5, 210, 160)
        assert len(pool.games) == held and all(g.actions.shape[0] >= 5 for g in pool.games)
    with pytest.raises(UserError, match="none of the 4 training games has the 5 step"):
        FramePool(short, indexer, context_frames=2, steps=5)


def test_pool_loaded_by_several_threads_holds_the_same_games_in_the_same_order(games):
    files = list_episode_files(games)
    indexer = PaletteIndexer(palette_from_games(files))
    alone = FramePool(files, indexer, context_frames=2, rng=np.random.default_rng(0))
    threaded = FramePool(files, indexer, context_frames=2, rng=np.random.default_rng(0), load_workers=3)
    assert len(threaded.games) == len(alone.games) == len(files)
    for a, b in zip(alone.games, threaded.games):
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.actions, b.actions)


def test_pool_draws_every_window_alike(games):
    files = list_episode_files(games)
    indexer = PaletteIndexer(palette_from_games(files))
    red = int(np.nonzero((indexer.palette == RED).all(1))[0][0])
    marked = [3, 9]   # of the 13 frames of every game: 2 of its 12 one-step windows end in one
    pool = FramePool(files, indexer, context_frames=2, rng=np.random.default_rng(0))
    future = pool.sample(2000).future[:, 0]
    drawn = np.mean([block_origin(frame, red)[1] in marked for frame in future])
    assert drawn == pytest.approx(2 / 12, abs=0.04)


def test_fixed_windows_are_repeatable(games):
    files = list_episode_files(games)
    indexer = PaletteIndexer(palette_from_games(files))
    a = fixed_windows(files[:2], indexer, 2, 4, num_windows=6, seed=1)
    b = fixed_windows(files[:2], indexer, 2, 4, num_windows=6, seed=1)
    assert a.context.shape == (6, 2, 210, 160) and a.future.shape == (6, 4, 210, 160) and a.actions.shape == (6, 4)
    np.testing.assert_array_equal(a.context, b.context)
    np.testing.assert_array_equal(a.future, b.future)


def run_script(*args: str, nproc: int = 1) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] \
        if nproc > 1 else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "MPLBACKEND": "Agg"}
    return subprocess.run([*launcher, str(ROOT / "train_latent_action.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


def test_tiny_run_writes_checkpoints_logs_and_resumes(games, tmp_path):
    out = tmp_path / "run"
    result = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(out), "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("best.pt", "latest.pt", "metrics.csv", "metrics.png", "samples.png"):
        assert (out / name).is_file(), name
    model = load_latent_action_model(out / "best.pt")
    assert model.config.context_frames == 2 and len(model.config.palette) == 4
    assert model.game == "Breakout"                           # the recordings' game, for the neural game's check
    header = (out / "metrics.csv").read_text().splitlines()[0]
    for key in ("psnr", "copy_psnr", "pixel_exact", "changed_accuracy", "paddle_error_px", "ball_error_px",
                "codebook_usage", "codebook_perplexity", "delta_psnr_t4", "ssim"):
        assert key in header, key

    resumed = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(out),
                         "--device", "cpu", "--resume", "--iterations", "8")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    import torch
    assert torch.load(out / "latest.pt", weights_only=True)["step"] == 8

    other_model = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(out),
                             "--device", "cpu", "--resume", "--num_codes", "4", "--iterations", "9")
    assert other_model.returncode == 1 and "different model" in other_model.stderr


def test_a_run_started_from_another_runs_weights_can_grow_its_codebook(games, tmp_path):
    import torch
    source = tmp_path / "source"
    first = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(source), "--device", "cpu")
    assert first.returncode == 0, first.stderr[-2000:]
    out = tmp_path / "grown"
    more = make_games(tmp_path / "more", num_games=3)
    grown = run_script("--preset", "tiny", "--data_dir", str(games), str(more), "--checkpoint_dir", str(out),
                       "--device", "cpu", "--init_from", str(source / "latest.pt"), "--num_codes", "11",
                       "--learning_rate", "1e-9", "--iterations", "4")
    assert grown.returncode == 0, grown.stderr[-2000:]
    before, after = (torch.load(p, weights_only=True) for p in (source / "latest.pt", out / "latest.pt"))
    assert after["step"] == 4 and after["config"]["num_codes"] == 11
    assert after["model"]["quantizer.codebook"].shape[0] == 11
    torch.testing.assert_close(after["model"]["decoder.head.weight"], before["model"]["decoder.head.weight"],
                               atol=1e-6, rtol=0)   # started from the source's weights, barely moved
    shrunk = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(tmp_path / "shrunk"),
                        "--device", "cpu", "--init_from", str(source / "latest.pt"), "--num_codes", "4")
    assert shrunk.returncode == 1 and "can grow, not shrink" in shrunk.stderr and "Traceback" not in shrunk.stderr


def test_a_decoder_only_run_keeps_the_encoder_and_codebook(games, tmp_path):
    import torch
    source = tmp_path / "source"
    first = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(source), "--device", "cpu")
    assert first.returncode == 0, first.stderr[-2000:]
    out = tmp_path / "decoder"
    tuned = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(out), "--device", "cpu",
                       "--init_from", str(source / "latest.pt"), "--decoder_only", "--iterations", "4")
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    before, after = (torch.load(p, weights_only=True)["model"] for p in (source / "latest.pt", out / "latest.pt"))
    kept = [k for k in before if not k.startswith("decoder.")]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)
    assert not torch.equal(before["decoder.head.weight"], after["decoder.head.weight"])
    mixed = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(out), "--device", "cpu",
                       "--resume", "--iterations", "6")
    assert mixed.returncode == 1 and "trained with --decoder_only" in mixed.stderr and "Traceback" not in mixed.stderr
    looped = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(tmp_path / "looped"),
                        "--device", "cpu", "--init_from", str(source / "latest.pt"), "--decoder_only",
                        "--rollout_steps", "3", "--iterations", "4", nproc=2)
    assert looped.returncode == 0, looped.stderr[-3000:]
    after = torch.load(tmp_path / "looped" / "latest.pt", weights_only=True)["model"]
    assert all(torch.equal(before[k], after[k]) for k in kept)
    assert not torch.equal(before["decoder.head.weight"], after["decoder.head.weight"])
    assert "last_step_loss" in (tmp_path / "looped" / "metrics.csv").read_text().splitlines()[0]
    grown = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(tmp_path / "grown"),
                       "--device", "cpu", "--init_from", str(source / "latest.pt"), "--decoder_only", "--num_codes", "11")
    assert grown.returncode == 1 and "different model" in grown.stderr and "Traceback" not in grown.stderr


def test_bad_input_gets_one_clear_line(games, tmp_path):
    missing = run_script("--preset", "tiny", "--data_dir", str(tmp_path / "nowhere"), "--checkpoint_dir", str(tmp_path))
    assert missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    not_started = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(tmp_path), "--resume")
    assert not_started.returncode == 1 and "latest.pt does not exist" in not_started.stderr
    untrained = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(tmp_path), "--decoder_only")
    assert untrained.returncode == 2 and "give --init_from" in untrained.stderr and "Traceback" not in untrained.stderr
    looped = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(tmp_path),
                        "--rollout_steps", "2")
    assert looped.returncode == 2 and "give --decoder_only" in looped.stderr and "Traceback" not in looped.stderr
    damaged = make_games(tmp_path / "damaged", num_games=3)
    broken = damaged / "game_00001.npz"
    broken.write_bytes(broken.read_bytes()[:1000])
    corrupt = run_script("--preset", "tiny", "--data_dir", str(damaged), "--checkpoint_dir", str(tmp_path / "run"))
    assert corrupt.returncode == 1 and corrupt.stderr.strip().splitlines()[-1] == \
        f"error: episode file {broken} is truncated or corrupt (BadZipFile)"
    assert not (tmp_path / "run").exists()                      # refused before anything is written


def test_two_torchrun_processes_train_and_one_writes_checkpoints(games, tmp_path):
    out = tmp_path / "ddp"
    result = run_script("--preset", "tiny", "--data_dir", str(games), "--checkpoint_dir", str(out),
                        "--device", "cpu", nproc=2)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "latest.pt"]
    assert not list(out.glob(".*.tmp"))
    import torch
    payload = torch.load(out / "latest.pt", weights_only=True)
    assert payload["stage"] == STAGE and payload["step"] == 6
    assert result.stdout.count("wrote ") == 1   # only process 0 reports and writes
