"""Tests for models/agent_evaluation.py: full games with the true score, and games that differ."""
from __future__ import annotations

import numpy as np

from models.agent_evaluation import evaluate_agent


def always_fire(obs: np.ndarray) -> np.ndarray:
    return np.ones(obs.shape[0], dtype=np.int64)


def test_a_greedy_player_plays_one_game_over_and_epsilon_makes_each_game_its_own() -> None:
    greedy = evaluate_agent(always_fire, num_games=4, max_steps=300, seed=0)
    assert greedy.distinct_games == 1 and len(set(greedy.scores)) == 1 and len(set(greedy.lengths)) == 1
    noisy = evaluate_agent(always_fire, num_games=4, max_steps=300, seed=0, epsilon=0.05)
    assert noisy.distinct_games == 4 and noisy.scores.shape == noisy.lengths.shape == (4,)
    assert (noisy.lengths <= 300).all() and noisy.mean == noisy.scores.mean()
