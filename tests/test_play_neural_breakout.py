"""play_neural_breakout.py and its Game loop, headless (SDL's dummy video driver, set in conftest).

The wiring (keys -> actions, ESC/Q quit, R restart, the window's pixels) is tested with a fake
environment; that held arrows move the *neural* paddle needs trained weights, so that test runs
only when the shipped ones are in checkpoints/pretrained/. A screenshot of the real window under
Xvfb runs only where Xvfb is installed."""
from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import pygame
import pytest

from models.breakout_objects import BALL_PADDLE_RGB, paddle_x
from models.cli import UserError
from models.checkpoint import PRETRAINED_DIR
from models.neural_env import FIRE, LEFT, NOOP, RIGHT, NeuralBreakoutEnv
from models.neural_game import Game, action_for_keys, command_for_event, open_window
import play_neural_breakout
from test_neural_env import write_tiny_checkpoints

H, W = 210, 160
SHIPPED = [PRETRAINED_DIR / "latent_action.pt", PRETRAINED_DIR / "action_to_latent.pt"]


def keys(*held: int) -> dict[int, bool]:
    state = defaultdict(bool)
    state.update({k: True for k in held})
    return state


def key_down(key: int) -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN, key=key)


class FakeEnv:
    """Draws the paddle at a column that moves with the actions, so the window can be read back."""
    temperature = 0.5
    observation_space = gym.spaces.Box(0, 255, (H, W, 3), np.uint8)

    def __init__(self) -> None:
        self.actions: list[int] = []
        self.seeds: list[int | None] = []
        self.x = 80

    def frame(self) -> np.ndarray:
        frame = np.zeros((H, W, 3), np.uint8)
        frame[189:193, self.x - 8:self.x + 8] = BALL_PADDLE_RGB
        return frame

    def reset(self, *, seed=None, options=None):
        self.seeds.append(seed)
        self.x = 80
        return self.frame(), {}

    def step(self, action: int):
        self.actions.append(action)
        self.x += {RIGHT: 4, LEFT: -4}.get(action, 0)
        return self.frame(), 1.0, False, False, {"score": float(len(self.actions)), "lives": 5}


def scripted_game(env, held: list[dict[int, bool]], events: list[list[pygame.event.Event]], scale: int = 2) -> Game:
    """A Game whose ticks see ``held[i]`` and ``events[i]``."""
    held_iter, events_iter = iter(held), iter(events)
    return Game(env, fps=1000, scale=scale, key_state=lambda: next(held_iter), events=lambda: next(events_iter))


def test_keys_map_to_actions() -> None:
    assert action_for_keys(keys()) == NOOP
    assert action_for_keys(keys(pygame.K_PERIOD)) == NOOP
    assert action_for_keys(keys(pygame.K_RIGHT)) == RIGHT
    assert action_for_keys(keys(pygame.K_LEFT)) == LEFT
    assert action_for_keys(keys(pygame.K_SPACE)) == FIRE
    assert action_for_keys(keys(pygame.K_SPACE, pygame.K_LEFT)) == FIRE
    assert action_for_keys(keys(pygame.K_LEFT, pygame.K_RIGHT)) == NOOP
    assert command_for_event(key_down(pygame.K_ESCAPE)) == command_for_event(key_down(pygame.K_q)) == "quit"
    assert command_for_event(pygame.event.Event(pygame.QUIT)) == "quit"
    assert command_for_event(key_down(pygame.K_r)) == "restart"
    assert command_for_event(key_down(pygame.K_a)) is None


def test_game_passes_held_keys_to_the_env_and_draws_its_frames() -> None:
    env = FakeEnv()
    held = [keys(pygame.K_RIGHT)] * 5 + [keys(pygame.K_LEFT)] * 3 + [keys(pygame.K_SPACE), keys(pygame.K_PERIOD), keys()]
    game = scripted_game(env, held, [[]] * len(held))
    game.open()
    assert game.screen.get_size() == (W * 2, H * 2 + game.strip_height)
    xs = [paddle_x(game.screen_frame())]
    for _ in held:
        assert game.tick()
        xs.append(paddle_x(game.screen_frame()))
    game.close()
    assert env.actions == [RIGHT] * 5 + [LEFT] * 3 + [FIRE, NOOP, NOOP]
    assert np.all(np.diff(xs[:6]) > 0) and np.all(np.diff(xs[5:9]) < 0)  # read from the window's pixels
    assert game.total_steps == len(held) and game.step_ms > 0


def test_status_line_is_below_the_frame() -> None:
    env = FakeEnv()
    game = scripted_game(env, [keys(pygame.K_LEFT)], [[]])
    game.open()
    game.tick()
    lines = game.status_lines()
    assert lines[0].startswith("step 1   score 1   lives 5") and "action LEFT" in lines[0]
    assert "temperature 0.5" in lines[0]
    assert "ms/step" in lines[1]
    pixels = pygame.surfarray.array3d(game.screen).swapaxes(0, 1)
    assert pixels[H * 2:].any()  # text in the strip
    assert np.array_equal(game.screen_frame(), env.frame())  # the frame itself is untouched
    game.close()


def test_a_tap_between_two_ticks_is_not_lost() -> None:
    env = FakeEnv()
    game = scripted_game(env, [keys()] * 3, [[key_down(pygame.K_LEFT)], [], [key_down(pygame.K_SPACE)]])
    game.open()
    for _ in range(3):
        game.tick()
    assert env.actions == [LEFT, NOOP, FIRE]
    game.close()


@pytest.mark.parametrize("key", [pygame.K_ESCAPE, pygame.K_q])
def test_escape_and_q_quit(key: int) -> None:
    env = FakeEnv()
    game = scripted_game(env, [keys()] * 2, [[], [key_down(key)]])
    game.open()
    assert game.tick() and not game.tick()
    assert env.actions == [NOOP]
    game.close()


def test_r_restarts_from_a_new_real_start() -> None:
    env = FakeEnv()
    game = scripted_game(env, [keys(pygame.K_RIGHT)] * 3, [[], [], [key_down(pygame.K_r)]], scale=1)
    game.open()
    for _ in range(3):
        game.tick()
    assert env.seeds == [0, 1]  # each restart takes the next seed
    assert game.step == 1 and game.total_steps == 3
    game.close()


def test_no_display_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise pygame.error("x11 not available")

    monkeypatch.setattr(pygame.display, "set_mode", fail)
    with pytest.raises(UserError, match="no display to open the game window on.*run neural_random_game.py"):
        Game(FakeEnv()).open()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny"))


def test_script_runs_headless(script, tiny_dir: Path) -> None:
    proc = script("play_neural_breakout.py", "--checkpoint_dir", str(tiny_dir), "--max_steps", "5", "--fps", "100",
                  "--device", "cpu")
    assert "played 5 steps" in proc.stdout


def test_script_without_display_says_so(script, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No DISPLAY, SDL left to choose its driver (it would fall back to an invisible window)."""
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("PYTHONWARNINGS", "ignore::UserWarning")  # the tiny folder's "rewards are off" notice
    proc = script("play_neural_breakout.py", "--checkpoint_dir", str(tiny_dir), check=False, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "neural_random_game.py" in lines[0]


@pytest.mark.parametrize("driver", ["x11", ""])
def test_an_unusable_display_is_no_display(monkeypatch: pytest.MonkeyPatch, driver: str) -> None:
    """A DISPLAY nobody serves: X11 asked for by name fails to start; left to itself, SDL falls back to
    its invisible 'offscreen' window, which is refused too."""
    monkeypatch.setenv("DISPLAY", ":987")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("SDL_VIDEODRIVER", driver)
    with pytest.raises(UserError, match="no display to open the game window on"):
        open_window((160, 210))


def test_script_flags(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        play_neural_breakout.main(["--help"])
    assert exc.value.code == 0 and "--temperature" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        play_neural_breakout.main(["--fps", "0"])
    assert exc.value.code == 2 and "--fps must be positive" in capsys.readouterr().err
    with pytest.raises(UserError) as err:
        play_neural_breakout.main(["--checkpoint_dir", str(tmp_path)])
    assert str(err.value) == (f"{tmp_path / 'latent_action.pt'} (the world model) is missing; train it with "
                              "train_latent_action.py (stage 2) and copy its best.pt there, or point "
                              "--checkpoint_dir at a folder that holds it")


@pytest.mark.skipif(not all(p.is_file() for p in SHIPPED),
                    reason="needs the shipped weights checkpoints/pretrained/latent_action.pt and action_to_latent.pt")
@pytest.mark.parametrize("key, direction", [(pygame.K_RIGHT, 1), (pygame.K_LEFT, -1)])
def test_held_arrow_moves_the_neural_paddle(key: int, direction: int) -> None:
    env = NeuralBreakoutEnv(device="cpu")
    seed = next(s for s in range(100) if 50 < paddle_x(env.reset(seed=s)[0]) < 110)  # a start away from the walls
    game = Game(env, fps=1000, scale=2, seed=seed, key_state=lambda: keys(key), events=lambda: [])
    game.open()
    start = paddle_x(game.screen_frame())
    for _ in range(3):
        game.tick()
    moved = paddle_x(game.screen_frame()) - start
    game.close()
    env.close()
    assert direction * moved > 10, f"paddle moved {moved:+.1f} px while {pygame.key.name(key)} was held"


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (apt-get install xvfb)")
def test_screenshot_of_the_real_window_under_xvfb(tiny_dir: Path, tmp_path: Path) -> None:
    from bench.bench_neural_game import screenshot_window

    path = tmp_path / "window.png"
    screenshot_window(path, ["--checkpoint_dir", str(tiny_dir), "--device", "cpu"])
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] > 3 * H and image.shape[1] >= 3 * W
    assert (np.all(image == BALL_PADDLE_RGB, axis=-1)).sum() > 100  # the game's red is on the screen
