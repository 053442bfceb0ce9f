import numpy as np
import pytest

from models.atari import AGENT_STACK, make_agent_env, make_agent_vector_env, make_rgb_env, preprocess_frame
from models.cli import UserError


def play(env, actions, seed=3):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return np.stack(out)


def test_rgb_env_frames_and_minimal_actions():
    env = make_rgb_env()
    obs, info = env.reset(seed=0)
    assert obs.shape == (210, 160, 3) and obs.dtype == np.uint8 and info["lives"] == 5
    assert env.unwrapped.get_action_meanings() == ["NOOP", "FIRE", "RIGHT", "LEFT"]


def test_seeded_games_repeat_exactly():
    actions = np.random.default_rng(0).integers(0, 4, 60)
    assert np.array_equal(play(make_rgb_env(), actions), play(make_rgb_env(), actions))


def test_agent_observation_is_a_stack_of_grey_84x84_frames_oldest_first():
    env = make_agent_env()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (AGENT_STACK, 84, 84) and obs.dtype == np.uint8
    assert all(np.array_equal(obs[0], f) for f in obs)  # a new game fills the stack with its first frame
    before = obs
    obs, *_ = env.step(1)
    assert np.array_equal(obs[-1], preprocess_frame(env.unwrapped.ale.getScreenRGB()))
    assert np.array_equal(obs[:-1], before[1:])  # the stack shifts by one frame per step


def test_reward_shaping_is_applied_but_true_score_kept_apart():
    env = make_agent_env(living_penalty=0.001, life_loss_penalty=1.0, clip_rewards=True)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    total_shaped, lives_lost, score, game_reward = 0.0, 0, 0.0, 0.0
    for _ in range(2000):
        _, r, term, trunc, info = env.step(int(rng.integers(0, 4)))
        total_shaped += r
        lives_lost += info["life_lost"]
        game_reward += info["raw_reward"]
        score = info["score"]
        expected = np.sign(info["raw_reward"]) - 0.001 - (1.0 if info["life_lost"] else 0.0)
        assert r == pytest.approx(expected)
        if term or trunc:
            break
    assert lives_lost >= 1 and score == game_reward


def test_vector_env_steps_games_together_and_resets_in_the_same_step():
    envs = make_agent_vector_env(3, max_episode_steps=20)
    obs, _ = envs.reset(seed=[0, 1, 2])
    assert obs.shape == (3, AGENT_STACK, 84, 84)
    for _ in range(20):
        obs, _, term, trunc, info = envs.step(np.zeros(3, dtype=np.int64))
    assert trunc.all() and "final_obs" in info and info["score"].tolist() == [0, 0, 0]


def test_unknown_game_gets_a_clear_error():
    with pytest.raises(UserError, match="unknown game 'Brekout'"):
        make_rgb_env("Brekout")
