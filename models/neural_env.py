"""The learned game as a Gymnasium environment: the emulator replaced by the two trained models.

    from models.neural_env import NeuralBreakoutEnv
    env = NeuralBreakoutEnv(checkpoint_dir="checkpoints/pretrained", device="cpu")
    obs, info = env.reset(seed=0, options={"frames": frames})  # uint8 (n, 210, 160, 3), n >= env.context_length
    obs, reward, terminated, truncated, info = env.step(action)   # 0 NOOP, 1 FIRE, 2 RIGHT, 3 LEFT

One step: the action-to-latent mapper (stage 4) turns the player's action into a latent action,
and the world model (stage 2's decoder) predicts the next frame from the last ``context_length``
frames and that latent. The predicted frame becomes part of the context of the next step.

Also registered as ``NeuralBreakout-v0`` for ``gymnasium.make`` (once this module is imported, or
as ``gymnasium.make("models.neural_env:NeuralBreakout-v0")``).

Comparing with the emulator: ``real_opening`` plays the first moves of a real game and returns its
frames and last actions with the emulator positioned just after them, so the same actions can be
given to both."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from models.action_to_latent import frames_kept, load_action_mapper, oldest_repeated, sample_from_logits
from models.atari import make_rgb_env
from models.breakout_objects import ball_present
from models.checkpoint import PRETRAINED_DIR
from models.cli import UserError
from models.frame_cleaner import FrameCleaner, load_frame_cleaner
from models.latent_action import LatentActionModel, load_latent_action_model
from models.object_priors import SPEED_MEMORY
from models.reward_model import LifeCounter, RewardModel, lit_frames, load_reward_model, object_places
from models.runtime import pick_device
from models.scoreboard import Scoreboard

ENV_ID = "NeuralBreakout-v0"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT_DIR = "checkpoints/pretrained"
# File names looked for in a checkpoint folder, shipped name first, then the training scripts' names.
WORLD_MODEL_FILES = ("latent_action.pt", "best.pt")
MAPPER_FILES = ("action_to_latent.pt", "action_to_latent_best.pt")
CLEANER_FILE = "frame_cleaner.pt"   # optional: when present, it cleans every frame the world model draws
REWARD_FILE = "reward_model.pt"     # optional: when present, it gives rewards, lives and game over
CHECKPOINT_DIR_HELP = ("folder holding latent_action.pt (world model) and action_to_latent.pt (action mapper), "
                       "or the training folder's best.pt and action_to_latent_best.pt")
ACTION_NAMES = ("NOOP", "FIRE", "RIGHT", "LEFT")
NOOP, FIRE, RIGHT, LEFT = range(4)
DEFAULT_MAX_EPISODE_STEPS = 10_000
MAX_START_TAPS = 6     # a real start taps random moves up to this many times before FIRE (one tap: ~22 px)
RENDER_FPS = 15        # the original game's pace: 60 Hz with frame skip 4
ACTION_MEMORY = 16     # earlier actions kept and offered to the mapper (it reads the last few it was trained on)
SERVE_WAIT = 8         # ball-less steps after which FIRE serves (the real game can serve 7 steps after the ball left)


class NeuralEnvError(UserError, ValueError):
    """Bad input to the neural environment (action, start frames, options): one clear sentence."""


class ActionMapper(Protocol):
    """What the environment needs of stage 4's mapper (``models.action_to_latent``)."""

    def code_logits(self, actions: torch.Tensor, context: torch.Tensor | None,
                    history: torch.Tensor | None = None) -> torch.Tensor: ...


# ------------------------------------------------------------------------------- loading

def find_checkpoint(directory: Path, names: tuple[str, ...], what: str, how: str) -> Path:
    """The first of ``names`` present in ``directory``; otherwise one sentence saying how to get it."""
    for name in names:
        if (directory / name).is_file():
            return directory / name
    if not directory.is_dir():
        raise UserError(f"checkpoint folder {directory} does not exist: it should hold {names[0]} ({what}); {how}")
    raise UserError(f"{directory / names[0]} ({what}) is missing; {how}")


def checkpoint_folder(checkpoint_dir: str | os.PathLike | None) -> Path:
    """The folder to load from: ``None`` is the shipped one; a relative path missing from the working
    directory is looked up in the repository, so the default works from anywhere."""
    if checkpoint_dir is None:
        return PRETRAINED_DIR
    path = Path(checkpoint_dir)
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    return path


def load_models(checkpoint_dir: str | os.PathLike | None, device: torch.device,
                game: str | None = None) -> tuple[LatentActionModel, ActionMapper]:
    """The world model and the action mapper from one folder; a missing file, or (given ``game``) a
    model trained on another game, gets one sentence."""
    directory = checkpoint_folder(checkpoint_dir)
    world_path = find_checkpoint(directory, WORLD_MODEL_FILES, "the world model",
                                 "train it with train_latent_action.py (stage 2) and copy its best.pt there, "
                                 "or point --checkpoint_dir at a folder that holds it")
    mapper_path = find_checkpoint(directory, MAPPER_FILES, "the action-to-latent mapper",
                                  "train it with train_action_to_latent.py (stage 4) and copy it there, "
                                  "or point --checkpoint_dir at a folder that holds it")
    world_model = load_latent_action_model(world_path, device)
    if device.type == "cpu":       # where Python's per-layer overhead costs most; tried on CPU only
        world_model.freeze_for_play()
    mapper = load_action_mapper(mapper_path, device, latent_config=world_model.config)
    for path, trained_on in ((world_path, world_model.game), (mapper_path, mapper.config.game)):
        if game and trained_on and trained_on != game:
            raise UserError(f"{path} was trained on {trained_on}, not {game} (see --game)")
    return world_model, mapper


def load_cleaner(checkpoint_dir: str | os.PathLike | None, world_model: LatentActionModel,
                 device: torch.device) -> FrameCleaner | None:
    """The frame cleaner beside the world model (``CLEANER_FILE``), or None when the folder has none."""
    path = checkpoint_folder(checkpoint_dir) / CLEANER_FILE
    return load_frame_cleaner(path, world_model.config, device) if path.is_file() else None


def load_rewards(checkpoint_dir: str | os.PathLike | None, device: torch.device) -> RewardModel | None:
    """The reward-and-end model in the folder (``REWARD_FILE``), or None, with a warning, when it has none."""
    path = checkpoint_folder(checkpoint_dir) / REWARD_FILE
    if path.is_file():
        return load_reward_model(path, device)
    warnings.warn(f"{path} is missing: the neural game's rewards are off (always 0, never terminated); "
                  "train it with train_reward_model.py", stacklevel=3)
    return None


# ----------------------------------------------------------------------------- real starts

def real_opening(emulator: gym.Env, num_frames: int, seed: int,
                 moves_after_fire: int = 0) -> tuple[np.ndarray, list[int]]:
    """Play the opening of a real game and return all its frames, uint8 (n >= num_frames, H, W, 3),
    oldest first (a map may look further back than the world model), and the last ACTION_MEMORY
    actions played, oldest first (the paddle is still finishing them, and one pushed into the right
    wall stays there for a while); the emulator is left just after the last frame, ready for the next
    action.

    The seed picks 0 to MAX_START_TAPS taps of random moves (each followed by a NOOP) before FIRE,
    so the paddle starts in different places; ``moves_after_fire`` random actions (never FIRE)
    follow the FIRE, and the frames end with NOOPs, so the ball is in play."""
    names = emulator.unwrapped.get_action_meanings()
    noop = names.index("NOOP") if "NOOP" in names else 0
    quiet = [i for i, name in enumerate(names) if "FIRE" not in name]   # every action but FIRE
    moves = [i for i in quiet if i != noop] or quiet
    fire = names.index("FIRE") if "FIRE" in names else noop
    rng = np.random.default_rng(seed)
    plan: list[int] = []
    for tap in rng.choice(moves, size=int(rng.integers(0, MAX_START_TAPS + 1))):
        plan += [int(tap), noop]
    plan += [fire] + [int(a) for a in rng.choice(quiet, size=moves_after_fire)] + [noop] * (num_frames - 1)
    frame, _ = emulator.reset(seed=seed)
    frames = [frame]
    for action in plan:
        frame, _, terminated, truncated, _ = emulator.step(action)
        frames.append(frame)
        if terminated or truncated:
            raise UserError(f"the emulator's game ended during the {len(plan)}-step opening of a real start")
    return np.stack(frames), plan[-ACTION_MEMORY:]  # (n, H, W, 3), (<= ACTION_MEMORY,)


def real_start(emulator: gym.Env, num_frames: int, seed: int, moves_after_fire: int = 0) -> np.ndarray:
    """The last ``num_frames`` frames of ``real_opening``, uint8 (num_frames, H, W, 3), oldest first."""
    return real_opening(emulator, num_frames, seed, moves_after_fire)[0][-num_frames:]


def held_fire_as_press(history: list[int], action: int) -> list[int]:
    """The actions before ``action`` as the map is given them: when ``action`` is FIRE, the FIREs held
    just before it are shown as NOOPs, so a held FIRE reaches the map as a fresh press.

    Why: the recorded players hold FIRE only while the real game cannot serve yet (after a lost ball
    its lives counter drops a few steps later, and FIRE serves from then on), so the map learned a long
    run of FIRE in a ball-less frame as "still waiting" and a first press as a serve. The neural game
    has no such clock: after its ball was lost, a held FIRE kept it waiting for good. In the emulator a
    held FIRE serves as a fresh press does. FIRE does not move the paddle, so the paddle's moves read
    the same either way."""
    if action != FIRE:
        return history
    shown = list(history)
    i = len(shown)
    while i > 0 and shown[i - 1] == FIRE:
        i -= 1
        shown[i] = NOOP
    return shown


def steps_without_ball(frames: np.ndarray) -> int:
    """How many of the last frames (n, H, W, 3), newest last, show no ball."""
    shown = np.atleast_1d(ball_present(frames))
    return len(shown) if not shown.any() else len(shown) - 1 - int(np.flatnonzero(shown)[-1])


# ----------------------------------------------------------------------------- the environment

class NeuralBreakoutEnv(gym.Env):
    """Breakout played inside the learned world model.

    Observation: the predicted frame, uint8 (210, 160, 3), like the emulator's. Actions: Discrete(4),
    0 NOOP, 1 FIRE, 2 RIGHT, 3 LEFT.

    Rewards come from the reward-and-end model (``models.reward_model``, the folder's ``REWARD_FILE``),
    which reads the drawn frames: ``reward`` is the step's points, ``info["lives"]`` and
    ``info["score"]`` are kept like ALE's (a life is lost the model's delay after it saw the ball leave,
    ``LifeCounter``), and ``terminated`` is True when the last life is lost, or at every lost life with
    ``terminal_on_life_loss``. Where the reward model carries Breakout's digits (``models.scoreboard``),
    each drawn frame shows the score and the lives it counted, before the frame is fed back. Without
    that file ``reward`` is always 0.0 and ``terminated`` always False (a warning says so once). An
    episode is ``truncated`` after ``max_episode_steps`` steps. ``info`` also holds ``step`` (steps
    since reset) and ``codes`` (the latent action used, int64 (num_latents,)). With a frame cleaner
    (``models.frame_cleaner``), each drawn frame is cleaned before it is shown and fed back.

    ``reset(seed, options={"frames": frames})`` starts from given real frames, uint8
    (n, 210, 160, 3) with n >= ``context_length``, oldest first (only the last ``context_length``
    are used). Without frames it starts from a fresh emulator game, chosen by the seed, after the
    actions of its opening (``real_opening``). The option ``previous_actions`` (default: none, a
    standing start) lists the actions that led to given frames, oldest first: Breakout's paddle is
    still finishing the last moves, so they shape the first steps. A FIRE held over several steps
    reaches the map as a fresh press (``held_fire_as_press``). The options ``lives`` and ``score`` give
    the counters of given frames (default: those the last frame shows where the scoreboard reads
    them, else a new game's lives and score 0); a start from the emulator takes its lives, and the
    score its frame shows.

    With ``fire_serves`` (on by default), FIRE pressed after ``SERVE_WAIT`` steps without a ball
    serves: the map's likeliest code among those the world model draws a ball with. Why: after the
    neural game loses its ball it does not draw the lost life, a frame the real game never shows, and
    the map's FIRE there kept the game waiting for good (12 of 16 closed-loop games showed the ball in
    under a fifth of their frames). Only for one code per step (a 1 x 1 latent grid).

    ``temperature`` 0 takes the most likely latent and the most likely colour of each pixel; above
    0 both are sampled, from a generator seeded by ``reset``'s seed, so a seed repeats a game."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": RENDER_FPS}

    def __init__(self, checkpoint_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 temperature: float = 0.0, max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
                 game: str = "Breakout", render_mode: str | None = None,
                 models: tuple[LatentActionModel, ActionMapper] | None = None, clean_frames: bool = True,
                 cleaner: FrameCleaner | None = None, reward_model: RewardModel | None = None,
                 terminal_on_life_loss: bool = False, fire_serves: bool = True, object_priors: bool = True):
        """``models``: an already loaded (world model, mapper) pair, used instead of ``checkpoint_dir``;
        ``cleaner`` and ``reward_model`` go with them. From ``checkpoint_dir``, the folder's
        ``CLEANER_FILE`` is used when it has one and ``clean_frames`` is on, and its ``REWARD_FILE``.
        ``object_priors`` off draws each frame as the decoder alone does (it switches them off on the
        world model)."""
        if temperature < 0:
            raise NeuralEnvError(f"temperature must be zero or more, got {temperature}")
        if max_episode_steps < 1:
            raise NeuralEnvError(f"max_episode_steps must be positive, got {max_episode_steps}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise NeuralEnvError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.device = pick_device(device) if isinstance(device, str) else device
        self.world_model, self.mapper = models if models is not None else load_models(checkpoint_dir, self.device, game)
        if models is None and clean_frames:
            cleaner = load_cleaner(checkpoint_dir, self.world_model, self.device)
        self.cleaner = cleaner if clean_frames else None
        self.reward_model = reward_model if models is not None else load_rewards(checkpoint_dir, self.device)
        self.scoreboard = None if self.reward_model is None else Scoreboard.for_palette(
            self.reward_model.config.digit_glyphs, self.world_model.config.palette)
        if not object_priors:
            self.world_model.object_priors = None
        self.terminal_on_life_loss = terminal_on_life_loss
        cfg = self.world_model.config
        self.fire_serves = fire_serves and cfg.num_latents == 1 and game == "Breakout"
        mapper_config = getattr(self.mapper, "config", None)
        mapper_actions = getattr(mapper_config, "num_actions", len(ACTION_NAMES))
        meanings = list(getattr(mapper_config, "action_meanings", None) or ACTION_NAMES)
        if mapper_actions < len(ACTION_NAMES) or meanings[:len(ACTION_NAMES)] != list(ACTION_NAMES):
            # Breakout's four; a game whose actions begin with the same four (Pong) is played with those
            raise UserError(f"the action mapper knows the actions {', '.join(meanings)}, but this environment plays "
                            f"{', '.join(ACTION_NAMES)}")
        history_length = getattr(self.mapper, "history_length", 0)
        if history_length > ACTION_MEMORY:
            raise UserError(f"the action mapper reads the {history_length} actions before each one, but this "
                            f"environment keeps {ACTION_MEMORY}; train it with --action_history {ACTION_MEMORY} or fewer")
        self.context_length = cfg.context_frames
        # The map may look further back than the world model: the env keeps that many frames for it.
        self.state_length = frames_kept(self.mapper, self.context_length)
        # Breakout's ball prior reads the ball's speed over more frames than the decoder sees.
        priors = self.world_model.object_priors is not None
        self.memory_length = max(self.context_length, SPEED_MEMORY) if priors else self.context_length
        self.frame_shape = (cfg.height, cfg.width, 3)
        self.temperature = float(temperature)
        self.max_episode_steps = max_episode_steps
        self.game = game
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, self.frame_shape, np.uint8)
        self.action_space = gym.spaces.Discrete(len(ACTION_NAMES))
        self._emulator: gym.Env | None = None
        self._generator = torch.Generator(device=self.device)
        self._indices: torch.Tensor | None = None   # (1, memory_length, H, W) uint8 palette indices, oldest first
        self._rgb: torch.Tensor | None = None       # (1, M, H, W, 3) uint8, the last state_length frames in RGB
        self._frame: np.ndarray | None = None       # (H, W, 3) uint8, the latest frame
        self._history = [NOOP] * ACTION_MEMORY      # the actions that led to the latest frame, oldest first
        self._step = 0
        self._lit: torch.Tensor | None = None      # (1, R, h, w) the last frames as the reward model reads them
        self._places: torch.Tensor | None = None   # (1, R, 4) their object_places
        self.lives, self.score = 0, 0.0
        self._life_counter = LifeCounter()
        self._without_ball = 0                      # steps since a frame last showed the ball
        self._serve_codes: set[int] = set()         # codes that drew a served ball before (_serving)

    # ----- gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"frames", "previous_actions", "lives", "score"}
        if unknown:
            raise NeuralEnvError(f"unknown reset option(s) {sorted(unknown)}; the options are 'frames', "
                                 "'previous_actions', 'lives' and 'score'")
        before = options.get("previous_actions", ())
        if not isinstance(before, (list, tuple, np.ndarray)):
            raise NeuralEnvError(f"options['previous_actions'] must be a list of actions, got {type(before).__name__}")
        history = [self._check_action(a, "each of options['previous_actions']") for a in before]
        self._generator.manual_seed(int(self.np_random.integers(2 ** 62)))
        if "frames" in options:
            frames, start = self._check_frames(options["frames"]), "frames"
        else:
            # The same seed as real_opening(emulator, n, seed), so a seeded start can be replayed in the emulator.
            emulator_seed = seed if seed is not None else int(self.np_random.integers(2 ** 31))
            (frames, history), start = self._emulator_opening(emulator_seed), "emulator"
            options.setdefault("lives", self._emulator.unwrapped.ale.lives())
        shown = self.scoreboard.read(np.asarray(frames[-1])) if self.scoreboard is not None else None
        if shown is not None:                           # the counters the start frame shows
            options.setdefault("score", shown[0])
            options.setdefault("lives", shown[1])
        self.lives = self._check_count(options.get("lives", self.reward_model.config.start_lives
                                                   if self.reward_model else 0), "lives")
        self.score = float(self._check_count(options.get("score", 0), "score"))
        self._life_counter = LifeCounter()
        if self.reward_model is not None:
            with torch.inference_mode():
                rgb = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)     # (n, H, W, 3)
                lit = lit_frames(rgb, self.reward_model.config.pool)                       # (n, h, w)
                self._lit = oldest_repeated(lit[None], self.reward_model.config.context_frames)  # (1, R, h, w)
                places = torch.from_numpy(object_places(np.asarray(frames)))                     # (n, 4)
                self._places = oldest_repeated(places[None], self.reward_model.config.context_frames)
        frames = frames[-max(self.state_length, self.memory_length):]
        with torch.inference_mode():
            rgb = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)[None]  # (1, n, H, W, 3)
            indices = self.world_model.to_indices(rgb).to(torch.uint8)                 # (1, n, H, W)
            self._indices = oldest_repeated(indices, self.memory_length)
            # The frames as the model sees them: colours off the palette snapped to the nearest one.
            self._rgb = oldest_repeated(self.world_model.to_rgb(indices), self.state_length)
        self._frame = self._rgb[0, -1].cpu().numpy()
        self._history = ([NOOP] * ACTION_MEMORY + history)[-ACTION_MEMORY:]
        self._step = 0
        self._without_ball = steps_without_ball(frames)
        return self._frame.copy(), {"step": 0, "start": start, "lives": self.lives, "score": self.score}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._indices is None:
            raise NeuralEnvError("call reset() before step()")
        action = self._check_action(action)
        with torch.inference_mode():
            actions = torch.tensor([action], dtype=torch.long, device=self.device)                  # (1,)
            shown = held_fire_as_press(self._history, action)
            history = torch.tensor([shown], dtype=torch.long, device=self.device)                   # (1, M)
            logits = self.mapper.code_logits(actions, self._rgb, history)                          # (1, L, K)
            if action == FIRE and self.fire_serves and self._without_ball >= SERVE_WAIT:
                logits = self._serving(logits)
            codes = sample_from_logits(logits, self.temperature, self._generator)                   # (1, L)
        return self._advance(codes, action)

    def _serving(self, logits: torch.Tensor) -> torch.Tensor:
        """The map's logits (1, 1, K) with the codes whose next frame shows no ball ruled out; as they
        are where no code draws one. The codes that served before are tried first, alone, then every
        code (one batched pass of the decoder, 0.2-0.4 s on 2 cores). Each code's frame is the
        decoder's likeliest without the object priors: they leave a ball served after ball-less frames
        as the decoder draws it."""
        k = self.world_model.config.num_codes
        serves = torch.zeros(k, dtype=torch.bool)
        for tried in (sorted(self._serve_codes), range(k)):
            codes = torch.tensor(list(tried), dtype=torch.long)
            if len(codes):
                serves[codes] = self._draws_a_ball(codes)
            if serves.any():
                break
        self._serve_codes.update(serves.nonzero().flatten().tolist())
        if not serves.any():
            return logits
        return logits.masked_fill(~serves.to(logits.device).view(1, 1, k), -torch.inf)

    def _draws_a_ball(self, codes: torch.Tensor) -> torch.Tensor:
        """(n,) bool: the decoder's likeliest next frame for each code (n,) shows a ball."""
        model = self.world_model
        drawn = model.predict_next(self._indices.expand(len(codes), -1, -1, -1), codes.to(self.device)[:, None],
                                   whole_objects=False)                                          # (n, H, W)
        return torch.from_numpy(np.atleast_1d(ball_present(model.to_rgb(drawn).cpu().numpy())))

    def step_latents(self, codes: Any, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """A step drawn from latent codes given here (num_latents,) instead of the mapper's. ``action`` is
        the step's real action, kept in the history the mapper reads. This is how the evaluation tells
        the map's errors from the world model's: it plays the encoder's codes of the real frames."""
        if self._indices is None:
            raise NeuralEnvError("call reset() before step_latents()")
        action = self._check_action(action)
        given = np.asarray(codes).reshape(-1)
        config = self.world_model.config
        if not np.issubdtype(given.dtype, np.integer) or given.size != config.num_latents \
                or not ((given >= 0) & (given < config.num_codes)).all():
            raise NeuralEnvError(f"codes must be {config.num_latents} integer(s) 0-{config.num_codes - 1}, "
                                 f"got {given.tolist()}")
        return self._advance(torch.as_tensor(given, dtype=torch.long, device=self.device)[None], action)

    def _advance(self, codes: torch.Tensor, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Draw the next frame from codes (1, L) and move the context and the action history on."""
        with torch.inference_mode():
            nxt = self.world_model.predict_next(self._indices, codes, self.temperature, self._generator)  # (1, H, W)
            if self.cleaner is not None:
                nxt = self.cleaner.clean(self._indices[:, -self.context_length:][:, 1:], nxt)
            nxt = nxt.to(torch.uint8)
            nxt_rgb = self.world_model.to_rgb(nxt)                                                  # (1, H, W, 3)
        drawn = nxt_rgb[0].cpu().numpy()
        places = object_places(drawn[None]) if self.fire_serves or self.reward_model is not None else None
        if self.fire_serves:                        # the count only the FIRE rule reads
            self._without_ball = self._without_ball + 1 if np.isnan(places[0, 0]) else 0
        self._history = self._history[1:] + [action]
        self._step += 1
        reward, terminated = self._outcome(nxt_rgb, places)
        with torch.inference_mode():
            if self.scoreboard is not None:         # the counts on screen, as the reward model reads them next
                nxt = self.scoreboard.draw(nxt, self.score, self.lives)
                nxt_rgb = self.world_model.to_rgb(nxt)
                self._lit[:, -1] = lit_frames(nxt_rgb, self.reward_model.config.pool)[0]
            self._indices = torch.cat([self._indices[:, 1:], nxt[:, None]], dim=1)
            self._rgb = torch.cat([self._rgb[:, 1:], nxt_rgb[:, None]], dim=1)
        self._frame = drawn if self.scoreboard is None else nxt_rgb[0].cpu().numpy()
        truncated = self._step >= self.max_episode_steps
        info = {"step": self._step, "codes": codes[0].cpu().numpy().astype(np.int64), "lives": self.lives,
                "score": self.score}
        return self._frame.copy(), reward, terminated, truncated, info

    def _outcome(self, nxt_rgb: torch.Tensor, places: np.ndarray | None) -> tuple[float, bool]:
        """The reward model's reading of the step to the drawn frame (1, H, W, 3), whose object_places
        are ``places`` (1, 4): reward and terminated; the lives and the score move on."""
        if self.reward_model is None:
            return 0.0, False
        with torch.inference_mode():
            lit = torch.cat([self._lit, lit_frames(nxt_rgb, self.reward_model.config.pool)[:, None]], dim=1)
            window = torch.cat([self._places, torch.from_numpy(places)[None]], dim=1)              # (1, R, 4)
            outcome = self.reward_model.predict(lit, window.to(self.device))                       # (1,) each
            self._lit, self._places = lit[:, 1:], window[:, 1:]
        reward, life_lost = float(outcome.reward[0]), self._life_counter.step(int(outcome.exit_delay[0]))
        self.score += reward
        self.lives = max(0, self.lives - life_lost)
        return reward, life_lost and (self.lives == 0 or self.terminal_on_life_loss)

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array" and self._frame is not None:
            return self._frame.copy()
        return None

    def close(self) -> None:
        if self._emulator is not None:
            self._emulator.close()
            self._emulator = None

    # ----- helpers

    @property
    def frame(self) -> np.ndarray | None:
        """The latest frame, uint8 (H, W, 3) (not a copy)."""
        return self._frame

    def _emulator_opening(self, seed: int) -> tuple[np.ndarray, list[int]]:
        if self._emulator is None:
            self._emulator = make_rgb_env(self.game)
        return real_opening(self._emulator, self.context_length, seed)

    def _check_frames(self, frames: Any) -> np.ndarray:
        if not isinstance(frames, np.ndarray):
            raise NeuralEnvError(f"options['frames'] must be a numpy array, got {type(frames).__name__}")
        if frames.dtype != np.uint8:
            raise NeuralEnvError(f"options['frames'] must be uint8 RGB frames, got dtype {frames.dtype}")
        if frames.ndim != 4 or frames.shape[1:] != self.frame_shape:
            expected = "(n, " + ", ".join(map(str, self.frame_shape)) + ")"
            raise NeuralEnvError(f"options['frames'] must have shape {expected}, got {frames.shape}")
        if frames.shape[0] < self.context_length:
            raise NeuralEnvError(f"options['frames'] holds {frames.shape[0]} frame(s) but the model needs at least "
                                 f"{self.context_length} (env.context_length)")
        return frames

    @staticmethod
    def _check_count(value: Any, what: str) -> int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)) \
                or value < 0 or value != int(value):
            raise NeuralEnvError(f"options['{what}'] must be a whole number, zero or more, got {value!r}")
        return int(value)

    def _check_action(self, action: Any, what: str = "action") -> int:
        if isinstance(action, np.ndarray) and action.shape == ():
            action = action.item()
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) \
                or not 0 <= int(action) < len(ACTION_NAMES):
            choices = ", ".join(f"{i} {name}" for i, name in enumerate(ACTION_NAMES))
            raise NeuralEnvError(f"{what} must be an integer 0-{len(ACTION_NAMES) - 1} ({choices}), got {action!r}")
        return int(action)


# ----------------------------------------------------------------------------- side by side

@dataclass
class PairedRollout:
    """The same actions played in the emulator and in the model from the same real start."""
    start: np.ndarray    # (C, H, W, 3) uint8, the real frames both started from
    actions: np.ndarray  # (S,) int64
    real: np.ndarray     # (S, H, W, 3) uint8, the emulator's frames (the last one repeated after a game over)
    neural: np.ndarray   # (S, H, W, 3) uint8, the model's frames


def paired_rollout(env: NeuralBreakoutEnv, emulator: gym.Env, seed: int, actions: np.ndarray,
                   moves_after_fire: int = 0) -> PairedRollout:
    """Start ``env`` from a real opening of ``emulator`` (``real_opening`` with ``seed``), then give both
    the same ``actions``; the model runs open loop on its own frames."""
    opening, before = real_opening(emulator, env.context_length, seed, moves_after_fire)
    env.reset(seed=seed, options={"frames": opening, "previous_actions": before})
    start = opening[-env.context_length:]
    real, neural = [], []
    over = False
    for action in actions:
        if not over:
            frame, _, terminated, truncated, _ = emulator.step(int(action))
            over = terminated or truncated
        real.append(frame)
        neural.append(env.step(int(action))[0])
    return PairedRollout(start=start, actions=np.asarray(actions, dtype=np.int64),
                         real=np.stack(real), neural=np.stack(neural))


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=f"{__name__}:NeuralBreakoutEnv")
