"""Atari environments through gymnasium + ale-py (the ROMs ship in the ale-py wheel).

Two views of the same emulator:
- ``make_rgb_env``: full 210x160 RGB frames, for recording and for the world model;
- ``make_agent_env`` / ``make_agent_vector_env``: 84x84 grey frame stacks for the DQN agent, with
  optional reward shaping, and the true game score always kept apart in ``info``.
Nothing outside this module knows which game is played."""
from __future__ import annotations

from collections import deque
from typing import Any

import cv2
import gymnasium as gym
import numpy as np

from models.cli import UserError

FRAME_SKIP = 4
AGENT_FRAME_SIZE = 84
AGENT_STACK = 8

GAMES = {
    "Breakout": "ALE/Breakout-v5",
    "Pong": "ALE/Pong-v5",
    "MsPacman": "ALE/MsPacman-v5",
    "SpaceInvaders": "ALE/SpaceInvaders-v5",
    "Freeway": "ALE/Freeway-v5",
}


def _register() -> None:
    import ale_py

    gym.register_envs(ale_py)


def env_id(game: str) -> str:
    """The gymnasium id of a game name; unknown names get a one-line error listing the known ones."""
    if game not in GAMES:
        raise UserError(f"unknown game {game!r}; known games: {', '.join(sorted(GAMES))}")
    return GAMES[game]


def make_rgb_env(game: str = "Breakout", frame_skip: int = FRAME_SKIP, repeat_action_probability: float = 0.0,
                 max_episode_steps: int | None = None) -> gym.Env:
    """The emulator with full RGB frames (uint8 (210, 160, 3)) and the minimal action set.

    With repeat_action_probability 0 every action is exactly what moved the game."""
    _register()
    return gym.make(env_id(game), frameskip=frame_skip, repeat_action_probability=repeat_action_probability,
                    full_action_space=False, obs_type="rgb", max_episode_steps=max_episode_steps)


def action_meanings(game: str = "Breakout") -> list[str]:
    env = make_rgb_env(game)
    try:
        return list(env.unwrapped.get_action_meanings())
    finally:
        env.close()


def preprocess_frame(rgb: np.ndarray) -> np.ndarray:
    """RGB (210, 160, 3) uint8 -> grey (84, 84) uint8, the agent's view of one frame."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (AGENT_FRAME_SIZE, AGENT_FRAME_SIZE), interpolation=cv2.INTER_AREA)


class FrameStack:
    """The last ``size`` preprocessed frames, oldest first; a new game fills it with its first frame."""

    def __init__(self, size: int = AGENT_STACK):
        self.frames: deque[np.ndarray] = deque(maxlen=size)

    def reset(self, rgb: np.ndarray) -> np.ndarray:
        first = preprocess_frame(rgb)
        for _ in range(self.frames.maxlen or 0):
            self.frames.append(first)
        return self.observation()

    def push(self, rgb: np.ndarray) -> np.ndarray:
        self.frames.append(preprocess_frame(rgb))
        return self.observation()

    def observation(self) -> np.ndarray:
        return np.stack(self.frames)  # (stack, 84, 84) uint8


class AgentObservation(gym.Wrapper):
    """Frame-stacked grey observations and the reward the learner sees.

    ``info`` always carries ``score`` (the true game score so far), ``raw_reward`` (this step's game
    reward) and ``life_lost``. The returned reward is the game reward, optionally clipped to its
    sign, minus ``living_penalty`` every step and ``life_loss_penalty`` when a life is lost. The
    wrapper never ends the game on a life loss: the learner treats ``life_lost`` as terminal itself,
    so frame stacks stay continuous across lives."""

    def __init__(self, env: gym.Env, stack: int = AGENT_STACK, clip_rewards: bool = False,
                 living_penalty: float = 0.0, life_loss_penalty: float = 0.0):
        super().__init__(env)
        self.stack = FrameStack(stack)
        self.clip_rewards = clip_rewards
        self.living_penalty = living_penalty
        self.life_loss_penalty = life_loss_penalty
        self.observation_space = gym.spaces.Box(0, 255, (stack, AGENT_FRAME_SIZE, AGENT_FRAME_SIZE), np.uint8)
        self.score = 0.0
        self.lives = 0

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        rgb, info = self.env.reset(**kwargs)
        self.score = 0.0
        self.lives = int(info.get("lives", 0))
        return self.stack.reset(rgb), {**info, "score": 0.0, "raw_reward": 0.0, "life_lost": False}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        rgb, reward, terminated, truncated, info = self.env.step(action)
        lives = int(info.get("lives", 0))
        life_lost = lives < self.lives
        self.lives = lives
        self.score += float(reward)
        shaped = float(np.sign(reward)) if self.clip_rewards else float(reward)
        shaped -= self.living_penalty + (self.life_loss_penalty if life_lost else 0.0)
        info = {**info, "score": self.score, "raw_reward": float(reward), "life_lost": life_lost}
        return self.stack.push(rgb), shaped, terminated, truncated, info


def make_agent_env(game: str = "Breakout", stack: int = AGENT_STACK, clip_rewards: bool = False,
                   living_penalty: float = 0.0, life_loss_penalty: float = 0.0,
                   max_episode_steps: int | None = None, repeat_action_probability: float = 0.0) -> AgentObservation:
    return AgentObservation(make_rgb_env(game, max_episode_steps=max_episode_steps,
                                         repeat_action_probability=repeat_action_probability),
                            stack=stack, clip_rewards=clip_rewards, living_penalty=living_penalty,
                            life_loss_penalty=life_loss_penalty)


def make_agent_vector_env(num_envs: int, game: str = "Breakout", **kwargs: Any) -> gym.vector.SyncVectorEnv:
    """``num_envs`` agent environments stepped together, so one network call acts for all of them.

    Games reset in the same step they end (the final observation and info are in
    ``info["final_obs"]`` / ``info["final_info"]``)."""
    env_id(game)  # fail fast on an unknown name, before building anything
    return gym.vector.SyncVectorEnv([lambda: make_agent_env(game, **kwargs) for _ in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
