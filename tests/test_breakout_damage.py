"""models/breakout_damage.py on real emulator frames: each damage does what it says and nothing more."""
from __future__ import annotations

import numpy as np
import pytest

from models import breakout_damage as dmg
from models import breakout_objects as objects
from models.atari import make_rgb_env
from models.cli import UserError
from models.frame_dataset import PaletteIndexer, palette_from_frames


@pytest.fixture(scope="module")
def mid_game() -> tuple[np.ndarray, dmg.Palette]:
    """A real frame, as palette indices, with the ball in the open field and the paddle away from the walls."""
    env = make_rgb_env("Breakout")
    frame, _ = env.reset(seed=3)
    frame = env.step(1)[0]
    while not (objects.ball_present(frame) and objects.ball_position(frame)[0] > 110):
        frame = env.step(0)[0]
    env.close()
    colours = palette_from_frames([frame[None]])
    return PaletteIndexer(colours).to_indices(frame), dmg.Palette.of(colours)


def rgb(frame: np.ndarray, palette: dmg.Palette) -> np.ndarray:
    return palette.colours[frame]


def test_paddle_damages_change_its_width(mid_game) -> None:
    frame, palette = mid_game
    width = objects.paddle_width(rgb(frame, palette))
    assert width == 16 and objects.paddle_well_formed(rgb(frame, palette))
    for right in (True, False):
        erased = dmg.erase_paddle_end(frame, palette, 4, right)
        assert objects.paddle_width(rgb(erased, palette)) == 12
        cols = dmg.paddle_columns(erased, palette)
        kept = dmg.paddle_columns(frame, palette)
        assert (cols == (kept[:-4] if right else kept[4:])).all()
        assert objects.paddle_width(rgb(dmg.extend_paddle(frame, palette, 3, right), palette)) == 19
    shifted = dmg.shift_paddle(frame, palette, 3)
    assert (dmg.paddle_columns(shifted, palette) == dmg.paddle_columns(frame, palette) + 3).all()
    assert objects.paddle_well_formed(rgb(shifted, palette))
    broken = dmg.break_paddle(frame, palette, np.random.default_rng(0))
    assert not objects.paddle_well_formed(rgb(broken, palette))


def test_ball_damages(mid_game) -> None:
    frame, palette = mid_game
    rng = np.random.default_rng(0)
    assert objects.ball_count(rgb(frame, palette)) == 1
    assert not objects.ball_present(rgb(dmg.remove_ball(frame, palette), palette))
    assert objects.ball_count(rgb(dmg.stray_ball(frame, palette, rng), palette)) == 2
    moved = rgb(dmg.move_ball(frame, palette, np.random.default_rng(1)), palette)
    assert objects.ball_count(moved) == 1


def test_damage_leaves_its_input_and_the_rest_of_the_frame(mid_game) -> None:
    frame, palette = mid_game
    before = frame.copy()
    rng = np.random.default_rng(0)
    changed = [not np.array_equal(dmg.random_damage(frame, palette, rng), frame) for _ in range(40)]
    assert np.mean(changed) > 0.8
    assert np.array_equal(frame, before)
    flipped = dmg.flip_pixels(frame, palette, rng)
    assert np.array_equal(flipped[:dmg.BALL_ROWS[0]], frame[:dmg.BALL_ROWS[0]])   # the score is untouched


def test_palette_must_be_breakouts() -> None:
    with pytest.raises(UserError, match="not Breakout's"):
        dmg.Palette.of([[0, 0, 0], [1, 2, 3]])


def test_a_frozen_ball_stays_where_it_was(mid_game) -> None:
    frame, palette = mid_game
    before = dmg.move_ball(frame, palette, np.random.default_rng(2))
    frozen = rgb(dmg.freeze_ball(frame, before, palette), palette)
    assert np.array_equal(objects.ball_position(frozen), objects.ball_position(rgb(before, palette)))
    assert objects.ball_count(frozen) == 1
