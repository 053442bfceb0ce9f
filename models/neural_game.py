"""Playing the neural game: the pygame window and keyboard loop (``Game``), kept apart from the
environment that steps the model, and the pictures (captioned, side by side, GIF, MP4) of a game.

The window shows the frame scaled up, with a status strip below it (never painted over the frame):
step, action, temperature and the model's speed. Keys: SPACE fire, LEFT / RIGHT arrows (held keys
repeat: the held keys are read every tick, and a tap shorter than a tick still counts), PERIOD noop
(also what happens when nothing is held), R restart from a fresh real start, ESC or Q quit."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pygame

from models.cli import UserError
from models.files import atomic_write
from models.neural_env import ACTION_NAMES, FIRE, LEFT, NOOP, RIGHT
from models.recording import annotate

NO_DISPLAY = ("no display to open the game window on ({reason}); to watch the model play without one, "
              "run neural_random_game.py, which saves a GIF")
STATUS_LINES = 3
SPEED_SMOOTHING = 0.9   # weight of the past in the moving average of the model's step time
QUIT, RESTART = "quit", "restart"
HEADLESS_DRIVERS = ("offscreen", "dummy")   # SDL video drivers that show nothing


class SteppableEnv(Protocol):
    """What the Game needs of an environment (NeuralBreakoutEnv, or a fake one in tests)."""
    temperature: float
    observation_space: Any   # a Box whose shape is the frame's, (H, W, 3)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]: ...

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]: ...


# ------------------------------------------------------------------------------- keyboard

TAP_ACTIONS = {pygame.K_SPACE: FIRE, pygame.K_RIGHT: RIGHT, pygame.K_LEFT: LEFT}

def action_for_keys(pressed: Mapping[int, bool] | Sequence[bool]) -> int:
    """The action for the keys held now: SPACE fires; one arrow moves; anything else is NOOP
    (PERIOD, nothing, or both arrows at once)."""
    if pressed[pygame.K_SPACE]:
        return FIRE
    right, left = bool(pressed[pygame.K_RIGHT]), bool(pressed[pygame.K_LEFT])
    if right != left:
        return RIGHT if right else LEFT
    return NOOP


def command_for_event(event: pygame.event.Event) -> str | None:
    """QUIT for the window's close button, ESC and Q; RESTART for R; None for anything else."""
    if event.type == pygame.QUIT:
        return QUIT
    if event.type == pygame.KEYDOWN:
        if event.key in (pygame.K_ESCAPE, pygame.K_q):
            return QUIT
        if event.key == pygame.K_r:
            return RESTART
    return None


# ------------------------------------------------------------------------------- the window

def open_window(size: tuple[int, int], caption: str = "Neural Breakout") -> pygame.Surface:
    """The game window; no display becomes one sentence pointing to neural_random_game.py.

    SDL falls back to an invisible 'offscreen' window when it finds no display: that counts as no
    display unless SDL_VIDEODRIVER asked for it (as the headless tests do with 'dummy')."""
    asked = os.environ.get("SDL_VIDEODRIVER", "")
    if sys.platform.startswith("linux") and not asked and not os.environ.get("DISPLAY") \
            and not os.environ.get("WAYLAND_DISPLAY"):
        raise UserError(NO_DISPLAY.format(reason="neither DISPLAY nor WAYLAND_DISPLAY is set"))
    try:
        pygame.display.init()
        driver = pygame.display.get_driver()
        if driver in HEADLESS_DRIVERS and driver != asked:
            raise pygame.error(f"SDL found only its invisible '{driver}' video driver")
        screen = pygame.display.set_mode(size)
    except pygame.error as exc:
        pygame.display.quit()
        raise UserError(NO_DISPLAY.format(reason=str(exc).strip() or "pygame could not open a window")) from exc
    pygame.display.set_caption(caption)
    return screen


class Game:
    """The window/keyboard loop around an environment: each tick reads events and held keys, steps
    the environment once, and draws the frame with the status strip.

    ``key_state`` and ``events`` default to pygame's own; tests pass scripted ones."""

    def __init__(self, env: SteppableEnv, fps: float = 15.0, scale: int = 3, seed: int = 0,
                 key_state: Callable[[], Mapping[int, bool] | Sequence[bool]] | None = None,
                 events: Callable[[], Iterable[pygame.event.Event]] | None = None):
        self.env = env
        self.fps = fps
        self.scale = scale
        self.seed = seed
        self.key_state = key_state or pygame.key.get_pressed
        self.events = events or pygame.event.get
        self.restarts = 0
        self.step = 0                 # steps since the last (re)start
        self.total_steps = 0
        self.action = NOOP
        self.step_ms = 0.0            # moving average of one env.step, milliseconds
        self.frame: np.ndarray | None = None   # (H, W, 3) uint8, the frame shown
        self.info: dict = {}                   # the env's last info (its score and lives, when it keeps them)
        self.screen: pygame.Surface | None = None
        self.font: pygame.font.Font | None = None
        self.clock = pygame.time.Clock()

    # ----- set-up

    def open(self) -> None:
        """Open the window sized for the environment's frames, then start a game from a real start."""
        h, w = self.env.observation_space.shape[:2]
        self.screen = open_window((w * self.scale, h * self.scale + self.strip_height))
        pygame.font.init()
        self.font = pygame.font.Font(None, self.line_height)
        self.restart()
        self.draw()

    @property
    def line_height(self) -> int:
        return 6 * self.scale + 2

    @property
    def strip_height(self) -> int:
        return self.line_height * STATUS_LINES + 2 * self.scale

    def restart(self) -> None:
        """A fresh real start: a new seed each time, so R gives a different opening."""
        self.frame, self.info = self.env.reset(seed=self.seed + self.restarts)
        self.restarts += 1
        self.step = 0
        self.action = NOOP

    # ----- the loop

    def run(self, max_steps: int = 0) -> None:
        """Play until ESC/Q or the window closes (or ``max_steps`` steps, when positive)."""
        if self.screen is None:
            self.open()
        while self.tick():
            if max_steps and self.total_steps >= max_steps:
                break

    def tick(self) -> bool:
        """One step of the game; False once the player quits."""
        tapped = NOOP   # a key pressed and released between two ticks still counts
        for event in self.events():
            command = command_for_event(event)
            if command == QUIT:
                return False
            if command == RESTART:
                self.restart()
            if event.type == pygame.KEYDOWN and event.key in TAP_ACTIONS:
                tapped = TAP_ACTIONS[event.key]
        self.action = action_for_keys(self.key_state())
        if self.action == NOOP:
            self.action = tapped
        start = time.perf_counter()
        self.frame, _, terminated, truncated, self.info = self.env.step(self.action)
        ms = (time.perf_counter() - start) * 1e3
        self.step_ms = ms if self.total_steps == 0 else SPEED_SMOOTHING * self.step_ms + (1 - SPEED_SMOOTHING) * ms
        self.step += 1
        self.total_steps += 1
        if terminated or truncated:
            self.restart()
        self.draw()
        self.clock.tick(self.fps)
        return True

    # ----- drawing

    def status_lines(self) -> list[str]:
        speed = f"{1e3 / self.step_ms:.0f} steps/s" if self.step_ms > 0 else "-"
        counters = "".join(f"   {k} {self.info[k]:g}" for k in ("score", "lives") if k in self.info)
        return [f"step {self.step}{counters}   action {ACTION_NAMES[self.action]}   temperature {self.env.temperature:g}",
                f"model {self.step_ms:.1f} ms/step ({speed})   shown at {self.clock.get_fps():.0f} fps",
                "SPACE fire  LEFT/RIGHT move  . noop  R restart  ESC/Q quit"]

    def draw(self) -> None:
        if self.screen is None:
            return
        h, w = self.frame.shape[:2]
        picture = pygame.surfarray.make_surface(np.ascontiguousarray(self.frame.swapaxes(0, 1)))  # (W, H) surface
        self.screen.blit(pygame.transform.scale(picture, (w * self.scale, h * self.scale)), (0, 0))
        top = h * self.scale
        self.screen.fill((0, 0, 0), pygame.Rect(0, top, w * self.scale, self.strip_height))
        for i, line in enumerate(self.status_lines()):
            text = self.font.render(line, True, (255, 255, 255))
            self.screen.blit(text, (2 * self.scale, top + self.scale + i * self.line_height))
        pygame.display.flip()

    def screen_frame(self) -> np.ndarray:
        """The game area of the window scaled back down: uint8 (H, W, 3), what the player sees."""
        pixels = pygame.surfarray.array3d(self.screen).swapaxes(0, 1)  # (rows, cols, 3)
        h, w = self.frame.shape[:2]
        return pixels[:h * self.scale:self.scale, :w * self.scale:self.scale]

    def close(self) -> None:
        pygame.display.quit()


# ------------------------------------------------------------------------------- pictures

def captioned(frames: np.ndarray, actions: Sequence[int], scale: int, title: str = "") -> np.ndarray:
    """Frames (S, H, W, 3) enlarged, each above a caption with its step and the action that led to
    it: uint8 (S, H', W', 3)."""
    return np.stack([annotate(frame, [f"{title}step {t + 1}", f"action {ACTION_NAMES[a]}"], scale)
                     for t, (frame, a) in enumerate(zip(frames, actions))])


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4) -> np.ndarray:
    """(S, H, W, 3) and (S, H, W', 3) -> (S, H, W + gap + W', 3), a grey bar between them."""
    bar = np.full(left.shape[:2] + (gap, 3), 96, np.uint8)
    return np.concatenate([left, bar, right], axis=2)


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: float) -> None:
    """An endlessly looping GIF of uint8 (S, H, W, 3) frames, written atomically."""
    atomic_write(path, lambda tmp: iio.imwrite(tmp, frames, extension=".gif", duration=1000.0 / fps, loop=0))


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float) -> None:
    """An H.264 MP4 of uint8 (S, H, W, 3) frames (no padding of odd sizes), written atomically."""
    def write(tmp: str) -> None:
        writer = imageio_ffmpeg.write_frames(tmp, (frames.shape[2], frames.shape[1]), fps=fps, macro_block_size=1,
                                             output_params=["-f", "mp4", "-preset", "veryfast"],
                                             ffmpeg_log_level="error")
        writer.send(None)
        try:
            for frame in frames:
                writer.send(np.ascontiguousarray(frame))
        finally:
            writer.close()

    atomic_write(path, write)


def output_path(path: str | os.PathLike, suffix: str) -> Path:
    """``data/x.gif`` -> ``data/x_compare.mp4`` style names: the stem with ``suffix`` (e.g. "_compare.mp4")."""
    path = Path(path)
    return path.with_name(path.stem + suffix)
