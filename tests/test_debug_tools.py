"""The two debugging scripts and models/debug_tools.py: the colour checker on doctored frames (BGR,
scaled to 0-1, lossy), both scripts end to end on tiny random checkpoints, and bad input."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

import debug_color_channels
import debug_first_step_difference
from models import debug_tools as dbg
from models import world_model_metrics as wm
from models.atari import make_rgb_env
from models.cli import UserError
from models.episodes import Episode, save_episode
from models.neural_env import real_start


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    emulator = make_rgb_env()
    frames = real_start(emulator, 6, seed=2)
    emulator.close()
    return frames  # (6, 210, 160, 3) uint8


# ------------------------------------------------------------------------------- colour checks

def test_colour_verdicts_on_doctored_frames(frames: np.ndarray) -> None:
    reference = dbg.palette_of(frames)
    assert len(reference) == 9  # Breakout's colours
    assert dbg.check_colours("same", frames, reference).verdict == "RGB order matches"
    bgr = dbg.check_colours("bgr", frames[..., ::-1], reference)
    assert bgr.verdict.startswith("looks BGR") and bgr.on_palette < 0.99 <= bgr.on_palette_swapped
    scaled = dbg.check_colours("scaled", frames.astype(np.float32) / 255, reference)
    assert scaled.scaled_0_1 and scaled.verdict.startswith("values look scaled to 0-1")
    assert scaled.verdict.endswith("RGB order matches")
    both = dbg.check_colours("both", frames[..., ::-1].astype(np.float64) / 255, reference)
    assert "scaled to 0-1" in both.verdict and "looks BGR" in both.verdict
    noisy = np.clip(frames.astype(np.int16) + np.random.default_rng(0).integers(-3, 4, frames.shape), 0, 255)
    assert dbg.check_colours("lossy", noisy.astype(np.uint8), reference).verdict.startswith("colours differ")
    wide = dbg.check_colours("float 0-255", frames.astype(np.float32), reference)
    assert not wide.scaled_0_1 and wide.verdict.startswith("float32, not uint8")


def test_colour_check_numbers() -> None:
    frame = np.zeros((2, 2, 3), np.uint8)
    frame[0, 0] = (200, 72, 72)
    reference = np.array([[0, 0, 0], [66, 72, 200]], np.uint8)
    check = dbg.check_colours("x", frame, reference)
    assert check.channel_mean == [50.0, 18.0, 18.0] and check.channel_max == [200.0, 72.0, 72.0]
    assert check.extra.tolist() == [[200, 72, 72]] and check.missing.tolist() == [[66, 72, 200]]
    assert check.on_palette == 0.75 and check.on_palette_swapped == 0.75  # (72, 72, 200) is not on it either
    assert dbg.to_uint8(np.array([[[0.0, 0.5, 1.0]]]))[0].tolist() == [[[0, 128, 255]]]
    with pytest.raises(ValueError, match="expected frames"):
        dbg.check_colours("grey", np.zeros((4, 4), np.uint8), reference)


def test_color_script_flags_bgr_pngs(tiny_dir: Path, frames: np.ndarray, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    episode = tmp_path / "data" / "episodes" / "game_00000.npz"
    steps = len(frames) - 1
    save_episode(episode, Episode(frames=frames, actions=np.zeros(steps, np.uint8), rewards=np.zeros(steps, np.float32),
                                  lives=np.full(steps + 1, 5, np.uint8), terminated=np.zeros(steps, bool)))
    pngs = tmp_path / "data" / "frames" / "game_00000"  # found beside the episode, as record_videos.py writes it
    pngs.mkdir(parents=True)
    for t, frame in enumerate(frames):
        iio.imwrite(pngs / f"{t:06d}.png", frame[..., ::-1])  # the original's mistake: BGR saved as RGB
    output = tmp_path / "panel.png"
    debug_color_channels.main(["--episode", str(episode), "--checkpoint_dir", str(tiny_dir), "--output", str(output),
                               "--device", "cpu", "--num_frames", "4"])
    verdicts = capsys.readouterr().out.split("verdicts:")[1]
    assert "emulator: RGB order matches" in verdicts and "episode: RGB order matches" in verdicts
    assert "model: RGB order matches" in verdicts and "png: looks BGR" in verdicts
    assert iio.imread(output).shape[1] > 500


def test_color_script_skips_what_it_cannot_find(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)  # no data/episodes here
    debug_color_channels.main(["--output", str(tmp_path / "p.png"), "--device", "cpu", "--num_frames", "2"])
    out = capsys.readouterr().out
    assert "emulator: RGB order matches" in out and "skipped episode" in out and "skipped png" in out


def test_color_script_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="episode file .*missing.npz does not exist"):
        debug_color_channels.main(["--episode", str(tmp_path / "missing.npz"), "--output", str(tmp_path / "p.png")])
    with pytest.raises(UserError, match="frames folder .* does not exist"):
        debug_color_channels.main(["--frames_dir", str(tmp_path / "nothing"), "--output", str(tmp_path / "p.png"),
                                   "--checkpoint_dir", str(tmp_path / "none")])
    assert not (tmp_path / "p.png").exists()


# ------------------------------------------------------------------------------- first step

def test_compare_frames(frames: np.ndarray) -> None:
    same = dbg.compare_frames(frames[0], frames[0])
    assert same.psnr == wm.MAX_PSNR and same.differing_pixels == 0 and same.paddle_x[0] == same.paddle_x[1]
    moved = dbg.compare_frames(frames[-1], frames[0])
    assert moved.differing_pixels > 0 and moved.psnr < wm.MAX_PSNR


def test_first_step_script(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    output = tmp_path / "first.png"
    debug_first_step_difference.main(["--checkpoint_dir", str(tiny_dir), "--output", str(output), "--device", "cpu",
                                      "--moves_after_fire", "2"])
    out = capsys.readouterr().out
    for name in ("NOOP:", "FIRE:", "RIGHT:", "LEFT:"):
        assert name in out and "mapped latent [" in out
    assert out.count("the environment's step equals the frame from the mapped latent") == 4
    assert out.count("copy last frame vs real") == 4 and "of 4 actions" in out
    assert iio.imread(output).shape[0] > 4 * 200  # one row per action


def test_first_step_bad_input(script, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        debug_first_step_difference.main(["--actions", "7"])
    assert exc.value.code == 2 and "--actions must be numbers 0-3" in capsys.readouterr().err
    proc = script("debug_first_step_difference.py", "--checkpoint_dir", str(tmp_path / "missing"),
                  "--output", str(tmp_path / "x.png"), check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "does not exist" in proc.stderr and not (tmp_path / "x.png").exists()
