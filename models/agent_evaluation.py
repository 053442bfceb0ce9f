"""Evaluating an agent over full games (all lives), with the true game score."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from models.atari import make_agent_vector_env


@dataclass
class EvaluationResult:
    scores: np.ndarray   # (num_games,) true game scores
    lengths: np.ndarray  # (num_games,) agent steps per game
    distinct_games: int  # how many of the games differ in their actions (the others repeat one of them)

    @property
    def mean(self) -> float:
        return float(self.scores.mean())

    @property
    def max(self) -> float:
        return float(self.scores.max())


def evaluate_agent(act: Callable[[np.ndarray], np.ndarray], game: str = "Breakout", num_games: int = 10,
                   max_steps: int = 10_000, seed: int = 0, stack: int = 8, epsilon: float = 0.0) -> EvaluationResult:
    """Play ``num_games`` full games side by side, one network call per step for all of them.

    ``act`` maps observations uint8 (N, stack, 84, 84) to actions (N,); each is replaced by a uniform
    random one with probability ``epsilon`` (drawn from ``seed``). The emulator has no sticky actions,
    so a greedy ``act`` with epsilon 0 plays the same game ``num_games`` times. A game still running
    after ``max_steps`` agent steps is cut there and scored as it stands."""
    envs = make_agent_vector_env(num_games, game, stack=stack, max_episode_steps=max_steps)
    rng = np.random.default_rng(seed)
    try:
        obs, _ = envs.reset(seed=[seed + i for i in range(num_games)])
        scores = np.zeros(num_games)
        lengths = np.zeros(num_games, dtype=np.int64)
        running = np.ones(num_games, dtype=bool)
        played = [hashlib.sha1() for _ in range(num_games)]   # each game's actions, as a fingerprint
        while running.any():
            actions = np.asarray(act(obs)).copy()
            explore = rng.random(num_games) < epsilon
            actions[explore] = rng.integers(0, envs.single_action_space.n, int(explore.sum()))
            for g in np.flatnonzero(running):
                played[g].update(bytes([int(actions[g])]))
            obs, _, terminated, truncated, info = envs.step(actions)
            lengths += running
            ended = (terminated | truncated) & running
            if ended.any():
                scores[ended] = info["final_info"]["score"][ended]
                running &= ~ended
        return EvaluationResult(scores, lengths, distinct_games=len({h.hexdigest() for h in played}))
    finally:
        envs.close()
