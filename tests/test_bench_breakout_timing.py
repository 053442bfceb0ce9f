"""bench_breakout_timing measures the emulator's two hidden timers that the action map has to see."""
from __future__ import annotations

from bench import bench_breakout_timing as timing
from models.atari import make_rgb_env


def test_the_right_wall_and_the_serve_timers() -> None:
    emulator = make_rgb_env()
    try:
        just_arrived, pushed = (timing.wall_release(emulator, extra, seed=0) for extra in (0, 2))
        assert timing.steps_before_moving(just_arrived) == 1 and timing.steps_before_moving(pushed) == 2
        assert all(x < timing.WALL_X for x in pushed[2:])       # once it moves it keeps moving left
        assert timing.wall_release(emulator, 2, seed=0, noops=8) == pushed      # waiting changes nothing
        assert timing.serve_delay(emulator, seed=0) == 7
    finally:
        emulator.close()


def test_steps_before_moving() -> None:
    assert timing.steps_before_moving([147.5, 140.5, 118.5]) == 1
    assert timing.steps_before_moving([147.5, 147.5]) == 2
