"""neural_random_game.py end to end on tiny random checkpoints: the GIF, and with --compare the
side-by-side GIF and MP4; bad input gets one line and a non-zero exit."""
from __future__ import annotations

from pathlib import Path

import imageio
import imageio.v3 as iio
import numpy as np
import pytest

from models.cli import UserError
from models.neural_game import output_path
import neural_random_game


def test_random_game_with_compare(script, tiny_dir: Path, tmp_path: Path) -> None:
    gif = tmp_path / "out" / "neural_random_game.gif"
    proc = script("neural_random_game.py", "--checkpoint_dir", str(tiny_dir), "--steps", "6", "--compare",
                  "--output", str(gif), "--device", "cpu", "--scale", "1")
    frames = iio.imread(gif, index=None)                            # (S, H', W, 3 or 4)
    assert frames.shape[0] == 6 and frames.shape[2] == 160 and frames.shape[1] > 210
    side = iio.imread(output_path(gif, "_compare.gif"), index=None)
    assert side.shape[0] == 6 and side.shape[2] == 2 * 160 + 4
    with imageio.get_reader(output_path(gif, "_compare.mp4")) as video:
        assert video.count_frames() == 6
        assert tuple(video.get_meta_data()["size"]) == (2 * 160 + 4, side.shape[1])
    assert "paddle error" in proc.stdout
    assert not [p for p in gif.parent.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_same_seed_same_gif(tiny_dir: Path, tmp_path: Path) -> None:
    outputs = []
    for name in ("a.gif", "b.gif"):
        neural_random_game.main(["--checkpoint_dir", str(tiny_dir), "--steps", "3", "--temperature", "1",
                                 "--output", str(tmp_path / name), "--device", "cpu", "--scale", "1"])
        outputs.append(iio.imread(tmp_path / name, index=None))
    assert np.array_equal(*outputs)


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(UserError, match=f"checkpoint folder {tmp_path / 'missing'} does not exist"):
        neural_random_game.main(["--checkpoint_dir", str(tmp_path / "missing"), "--output", str(tmp_path / "x.gif")])
    assert not (tmp_path / "x.gif").exists()
    with pytest.raises(SystemExit) as exc:
        neural_random_game.main(["--steps", "-3"])
    assert exc.value.code == 2 and "--steps must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        neural_random_game.main(["--help"])
    assert exc.value.code == 0 and "--compare" in capsys.readouterr().out
