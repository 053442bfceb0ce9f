"""The neural game's Gymnasium environment on tiny, randomly initialised checkpoints: the API
contract (gymnasium's own checker, shapes, dtypes, seeding) and every error case."""
from __future__ import annotations

import dataclasses

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import torch

from models.atari import make_rgb_env
from models.breakout_objects import BALL_PADDLE_RGB, BALL_ROWS, ball_present
from models.checkpoint import CheckpointError
from models.cli import UserError
from tiny_models import tiny_with_rewards, write_ball_reward_model, write_fixed_reward_model, write_tiny_checkpoints
from models.neural_env import (ACTION_MEMORY, ENV_ID, FIRE, LEFT, NOOP, REWARD_FILE, RIGHT, SERVE_WAIT, NeuralBreakoutEnv,
                               NeuralEnvError, held_fire_as_press, paired_rollout, real_opening, real_start)

H, W = 210, 160


@pytest.fixture(scope="module")
def env(tiny_dir: Path):
    env = NeuralBreakoutEnv(tiny_dir, temperature=1.0)
    yield env
    env.close()


def test_gymnasium_checker_passes(tiny_dir: Path) -> None:
    env = gym.make(ENV_ID, checkpoint_dir=tiny_dir, temperature=1.0)
    check_env(env.unwrapped)  # with a spec, so the rgb_array render mode is checked too
    env.close()


def test_reset_and_step_follow_the_contract(tiny_dir: Path, start_frames: np.ndarray) -> None:
    env = NeuralBreakoutEnv(tiny_dir)  # temperature 0
    assert env.context_length == 2
    obs, info = env.reset(seed=0, options={"frames": start_frames})
    assert obs.shape == (H, W, 3) and obs.dtype == np.uint8
    assert np.array_equal(obs, start_frames[-1]) and info == {"step": 0, "start": "frames", "lives": 0, "score": 0.0}
    for t, action in enumerate([0, 1, 2, 3, np.int64(2), np.array(3)], start=1):
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs.shape == (H, W, 3) and obs.dtype == np.uint8
        assert reward == 0.0 and terminated is False and truncated is False
        assert info["step"] == t and info["codes"].shape == (1,) and info["codes"].dtype == np.int64
    assert env.render() is None  # no render mode asked for
    obs, info = env.reset(seed=0)  # no frames: a fresh emulator game
    assert obs.shape == (H, W, 3) and info["start"] == "emulator"
    env.close()


def test_emulator_start_is_the_seeds_real_start(tiny_dir: Path) -> None:
    env = NeuralBreakoutEnv(tiny_dir)
    obs, _ = env.reset(seed=5)
    emulator = make_rgb_env()
    assert np.array_equal(obs, real_start(emulator, env.context_length, seed=5)[-1])
    emulator.close()
    env.close()


def rollout(env: NeuralBreakoutEnv, seed: int, frames: np.ndarray | None, actions: list[int]) -> np.ndarray:
    first, _ = env.reset(seed=seed, options=None if frames is None else {"frames": frames})
    return np.stack([first] + [env.step(a)[0] for a in actions])


def test_same_seed_same_frames(env: NeuralBreakoutEnv, start_frames: np.ndarray) -> None:
    actions = [1, 2, 2, 3, 0]
    a = rollout(env, 3, start_frames, actions)
    b = rollout(env, 3, start_frames, actions)
    c = rollout(env, 4, start_frames, actions)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)  # temperature 1 samples: another seed, another game
    assert np.array_equal(rollout(env, 7, None, actions), rollout(env, 7, None, actions))


def test_gymnasium_make_and_truncation(tiny_dir: Path) -> None:
    env = gym.make(ENV_ID, checkpoint_dir=str(tiny_dir), max_episode_steps=3)
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]
    env.close()


@pytest.mark.parametrize("action", [4, -1, 1.0, "LEFT", True, None, np.array([1, 2])])
def test_a_wrong_action_is_refused(env: NeuralBreakoutEnv, action: object) -> None:
    env.reset(seed=0)
    with pytest.raises(NeuralEnvError, match=r"action must be an integer 0-3 \(0 NOOP, 1 FIRE, 2 RIGHT, 3 LEFT\)"):
        env.step(action)


def test_wrong_frames_are_refused(env: NeuralBreakoutEnv, start_frames: np.ndarray) -> None:
    cases = {
        "must be uint8": start_frames.astype(np.float32),
        r"must have shape \(n, 210, 160, 3\), got \(5, 84, 84, 3\)": np.zeros((5, 84, 84, 3), np.uint8),
        r"must have shape \(n, 210, 160, 3\), got \(210, 160, 3\)": start_frames[0],
        "holds 1 frame.* at least 2": start_frames[:1],
        "must be a numpy array": start_frames.tolist(),
    }
    for message, frames in cases.items():
        with pytest.raises(NeuralEnvError, match=message):
            env.reset(options={"frames": frames})
    with pytest.raises(NeuralEnvError, match="unknown reset option"):
        env.reset(options={"frame": start_frames})


class PreviousActionSpy:
    """Wraps the mapper and records the earlier actions the environment gives it at each step."""

    def __init__(self, mapper, history_length: int = 0, state_frames: int | None = None):
        self.mapper, self.seen, self.contexts = mapper, [], []
        self.config = dataclasses.replace(mapper.config, state_frames=state_frames or mapper.config.state_frames)
        self.history_length = history_length

    def code_logits(self, actions, context, history=None):
        self.seen.append(history[0].tolist())
        self.contexts.append(context[0].cpu().numpy())
        return self.mapper.code_logits(actions, context, history)


def test_the_mapper_is_told_the_actions_before(env: NeuralBreakoutEnv, start_frames: np.ndarray) -> None:
    spy = PreviousActionSpy(env.mapper)
    spied = NeuralBreakoutEnv(models=(env.world_model, spy))
    spied.reset(seed=0, options={"frames": start_frames, "previous_actions": [2, 3]})
    for action in (2, 1, 0):
        spied.step(action)
    spied.reset(seed=0, options={"frames": start_frames})   # a standing start: NOOPs before
    spied.step(3)
    assert [seen[-2:] for seen in spy.seen] == [[2, 3], [3, 2], [2, 1], [0, 0]]
    with pytest.raises(NeuralEnvError, match=r"each of options\['previous_actions'\] must be an integer 0-3"):
        spied.reset(options={"frames": start_frames, "previous_actions": [1, 9]})
    with pytest.raises(NeuralEnvError, match=r"options\['previous_actions'\] must be a list"):
        spied.reset(options={"frames": start_frames, "previous_actions": 3})


def test_an_emulator_start_tells_the_mapper_its_opening(env: NeuralBreakoutEnv) -> None:
    """Without frames, reset plays a real opening; the moves the paddle is still finishing (and a
    push into the right wall, which no frame shows) reach the mapper as the actions before."""
    emulator = make_rgb_env()
    frames, before = real_opening(emulator, env.context_length, seed=4, moves_after_fire=5)
    emulator.close()
    assert 0 < len(before) <= ACTION_MEMORY and before[-(env.context_length - 1):] == [NOOP] * (env.context_length - 1)
    assert any(a != NOOP for a in before)
    spy = PreviousActionSpy(env.mapper)
    spied = NeuralBreakoutEnv(models=(env.world_model, spy))
    spied.reset(seed=4, options={"frames": frames, "previous_actions": before})
    spied.step(2)
    spied.reset(seed=4)
    spied.step(2)
    emulator = make_rgb_env()
    standing = real_opening(emulator, env.context_length, seed=4)[1]
    emulator.close()
    assert spy.seen == [[NOOP] * (ACTION_MEMORY - len(b)) + b for b in (before, standing)]


def test_a_map_that_looks_further_back_gets_the_older_frames(env: NeuralBreakoutEnv) -> None:
    c = env.context_length
    emulator = make_rgb_env()
    frames = real_start(emulator, c + 5, seed=3)
    emulator.close()
    spy = PreviousActionSpy(env.mapper, state_frames=c + 3)
    spied = NeuralBreakoutEnv(models=(env.world_model, spy))
    assert spied.state_length == c + 3
    spied.reset(seed=0, options={"frames": frames})
    first = spied.step(2)[0]
    spied.step(2)
    spied.reset(seed=0, options={"frames": frames[-c:]})   # only the world model's context: the oldest stands in
    spied.step(2)
    seen = spy.contexts
    assert seen[0].shape == (c + 3, H, W, 3) and np.array_equal(seen[0][-1], frames[-1])
    assert np.array_equal(seen[1][:-1], seen[0][1:]) and np.array_equal(seen[1][-1], first)
    assert all(np.array_equal(f, seen[0][-c]) for f in seen[2][:4]) and np.array_equal(seen[2][3:], seen[0][-c:])


def test_a_mapper_reading_more_actions_than_kept_is_refused(env: NeuralBreakoutEnv) -> None:
    with pytest.raises(UserError, match=f"reads the {ACTION_MEMORY + 1} actions before each one"):
        NeuralBreakoutEnv(models=(env.world_model, PreviousActionSpy(env.mapper, ACTION_MEMORY + 1)))


def test_step_latents_draws_the_frame_of_the_codes_given(tiny_dir: Path, start_frames: np.ndarray) -> None:
    import torch
    env = NeuralBreakoutEnv(tiny_dir)  # temperature 0
    model = env.world_model
    env.reset(seed=0, options={"frames": start_frames})
    context = model.to_indices(torch.from_numpy(start_frames[-env.context_length:]))[None].to(torch.uint8)
    codes = np.full(model.config.num_latents, model.config.num_codes - 1)
    expected = model.to_rgb(model.predict_next(context, torch.from_numpy(codes)[None]))[0].numpy()
    obs, _, _, _, info = env.step_latents(codes, 2)
    assert np.array_equal(obs, expected) and np.array_equal(info["codes"], codes) and info["step"] == 1
    assert env._history[-1] == 2   # the real action, for the map's next step
    with pytest.raises(NeuralEnvError, match="codes must be"):
        env.step_latents(codes + 1, NOOP)      # one past the codebook
    with pytest.raises(NeuralEnvError, match="codes must be"):
        env.step_latents(np.zeros(model.config.num_latents + 1, dtype=np.int64), NOOP)
    with pytest.raises(NeuralEnvError, match="codes must be"):
        env.step_latents(codes + 0.5, NOOP)    # not whole numbers
    with pytest.raises(NeuralEnvError, match=r"call reset\(\) before step_latents\(\)"):
        NeuralBreakoutEnv(tiny_dir).step_latents(codes, NOOP)
    env.close()


def test_step_before_reset_is_refused(tiny_dir: Path) -> None:
    with pytest.raises(NeuralEnvError, match=r"call reset\(\) before step\(\)"):
        NeuralBreakoutEnv(tiny_dir).step(0)


def test_missing_checkpoints_name_the_file(tmp_path: Path, tiny_dir: Path) -> None:
    with pytest.raises(UserError, match=f"checkpoint folder {tmp_path / 'nothing'} does not exist.*latent_action.pt"):
        NeuralBreakoutEnv(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "latent_action.pt").write_bytes((tiny_dir / "latent_action.pt").read_bytes())
    with pytest.raises(UserError, match=r"action_to_latent.pt \(the action-to-latent mapper\) is missing; "
                                        r"train it with train_action_to_latent.py"):
        NeuralBreakoutEnv(tmp_path / "half")


def test_a_mapper_for_another_world_model_is_refused(tmp_path: Path) -> None:
    write_tiny_checkpoints(tmp_path, num_codes=5)
    with pytest.raises(CheckpointError, match="codebook of 5"):
        NeuralBreakoutEnv(tmp_path)


def test_models_trained_on_another_game_are_refused(tmp_path: Path, tiny_dir: Path) -> None:
    import torch
    payload = torch.load(tiny_dir / "latent_action.pt", weights_only=True)
    torch.save({**payload, "game": "Breakout"}, tmp_path / "latent_action.pt")
    (tmp_path / "action_to_latent.pt").write_bytes((tiny_dir / "action_to_latent.pt").read_bytes())
    assert NeuralBreakoutEnv(tmp_path, game="Breakout").game == "Breakout"
    with pytest.raises(UserError, match=f"^{tmp_path / 'latent_action.pt'} was trained on Breakout, not Pong "):
        NeuralBreakoutEnv(tmp_path, game="Pong")
    torch.save(payload, tmp_path / "latent_action.pt")                    # a world model that does not say
    with pytest.raises(UserError, match="action_to_latent.pt was trained on Breakout, not Pong"):
        NeuralBreakoutEnv(tmp_path, game="Pong")


def test_a_map_whose_actions_begin_with_breakouts_four_is_played_with_them(env: NeuralBreakoutEnv) -> None:
    from models.action_to_latent import ActionToLatent
    pong = ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]
    config = dataclasses.replace(env.mapper.config, num_actions=6, action_meanings=pong, game="Pong")
    assert NeuralBreakoutEnv(models=(env.world_model, ActionToLatent(config).eval())).action_space.n == 4
    other = dataclasses.replace(config, action_meanings=["NOOP", "FIRE", "UP", "DOWN", "UPFIRE", "DOWNFIRE"])
    with pytest.raises(UserError, match="knows the actions NOOP, FIRE, UP, DOWN, UPFIRE, DOWNFIRE, but this "
                                        "environment plays NOOP, FIRE, RIGHT, LEFT"):
        NeuralBreakoutEnv(models=(env.world_model, ActionToLatent(other).eval()))


def test_bad_settings_are_refused(tiny_dir: Path) -> None:
    with pytest.raises(NeuralEnvError, match="temperature"):
        NeuralBreakoutEnv(tiny_dir, temperature=-1)
    with pytest.raises(NeuralEnvError, match="max_episode_steps"):
        NeuralBreakoutEnv(tiny_dir, max_episode_steps=0)


def test_paired_rollout_starts_both_from_the_same_frames(env: NeuralBreakoutEnv) -> None:
    emulator = make_rgb_env()
    pair = paired_rollout(env, emulator, seed=2, actions=np.array([2, 2, 3]))
    emulator.close()
    assert pair.real.shape == pair.neural.shape == (3, H, W, 3) and pair.start.shape == (2, H, W, 3)
    emulator = make_rgb_env()
    start = real_start(emulator, 2, seed=2)
    assert np.array_equal(start, pair.start)
    assert np.array_equal(emulator.step(2)[0], pair.real[0])
    emulator.close()


def test_rewards_lives_and_game_over_come_from_the_reward_model(tmp_path: Path, tiny_dir: Path,
                                                                start_frames: np.ndarray) -> None:
    env = NeuralBreakoutEnv(tiny_with_rewards(tmp_path / "seven", tiny_dir, reward_class=3, exit_delay=0))
    _, info = env.reset(seed=0, options={"frames": start_frames, "lives": 3, "score": 10})
    assert (info["lives"], info["score"]) == (3, 10.0)
    steps = [env.step(NOOP) for _ in range(3)]
    assert [s[1] for s in steps] == [7.0, 7.0, 7.0]
    assert [(s[4]["lives"], s[4]["score"]) for s in steps] == [(2, 17.0), (1, 24.0), (0, 31.0)]
    assert [s[2] for s in steps] == [False, False, True]  # terminated when the last life is lost
    _, info = env.reset(seed=0)                            # an emulator start: its lives, score 0
    assert (info["lives"], info["score"]) == (5, 0.0)
    env.close()
    quiet = NeuralBreakoutEnv(tiny_with_rewards(tmp_path / "none", tiny_dir, reward_class=0, exit_delay=-1))
    quiet.reset(seed=0, options={"frames": start_frames})
    _, reward, terminated, _, info = quiet.step(NOOP)
    assert (reward, terminated, info["lives"], info["score"]) == (0.0, False, 5, 0.0)  # a new game's lives


def test_a_reward_model_that_reads_places_reads_those_of_the_drawn_frame(tmp_path: Path, tiny_dir: Path,
                                                                          start_frames: np.ndarray) -> None:
    folder = tiny_with_rewards(tmp_path, tiny_dir, reward_class=0, exit_delay=-1)
    write_ball_reward_model(folder / REWARD_FILE)
    steps = []
    # the tiny model draws stray red pixels, read as a ball, when it samples; from black at temperature 0, none
    for temperature, frames in ((1.0, start_frames), (0.0, np.zeros_like(start_frames))):
        env = NeuralBreakoutEnv(folder, temperature=temperature)
        env.reset(seed=0, options={"frames": frames})
        steps += [env.step(action) for action in (FIRE, LEFT, RIGHT, NOOP)]
        env.close()
    shown = [bool(ball_present(obs)) for obs, *_ in steps]
    assert [reward for _, reward, *_ in steps] == [float(s) for s in shown] and 0 < sum(shown) < len(shown)


def test_a_life_is_counted_the_models_delay_after_the_ball_leaves(tmp_path: Path, tiny_dir: Path,
                                                                start_frames: np.ndarray) -> None:
    # the model sees the ball leave on every step, 2 steps before its count; exits seen while a count
    # is pending are ignored, so a life goes every third step
    env = NeuralBreakoutEnv(tiny_with_rewards(tmp_path, tiny_dir, reward_class=0, exit_delay=2))
    env.reset(seed=0, options={"frames": start_frames, "lives": 2})
    steps = [env.step(NOOP) for _ in range(6)]
    assert [s[4]["lives"] for s in steps] == [2, 2, 1, 1, 1, 0]
    assert [s[2] for s in steps] == [False] * 5 + [True]
    env.reset(seed=0, options={"frames": start_frames, "lives": 2})
    env.step(NOOP)                                                     # a count pending 1 step on
    env.reset(seed=0, options={"frames": start_frames, "lives": 2})   # and forgotten
    assert [env.step(NOOP)[4]["lives"] for _ in range(3)] == [2, 2, 1]


def test_terminal_on_life_loss_ends_at_the_first_lost_life(tmp_path: Path, tiny_dir: Path,
                                                           start_frames: np.ndarray) -> None:
    folder = tiny_with_rewards(tmp_path, tiny_dir, reward_class=1, exit_delay=0)
    env = NeuralBreakoutEnv(folder, terminal_on_life_loss=True)
    env.reset(seed=0, options={"frames": start_frames})
    _, reward, terminated, _, info = env.step(NOOP)
    assert (reward, terminated, info["lives"]) == (1.0, True, 4)


def test_without_a_reward_model_rewards_are_off_and_said_so(tmp_path: Path, tiny_dir: Path,
                                                            start_frames: np.ndarray) -> None:
    for name in ("latent_action.pt", "action_to_latent.pt"):
        (tmp_path / name).write_bytes((tiny_dir / name).read_bytes())
    with pytest.warns(UserWarning, match=f"{tmp_path / REWARD_FILE} is missing: the neural game's rewards are off"):
        env = NeuralBreakoutEnv(tmp_path)
    env.reset(seed=0, options={"frames": start_frames})
    assert env.step(NOOP)[1:3] == (0.0, False)


def test_a_reward_file_of_another_stage_is_refused(tmp_path: Path, tiny_dir: Path) -> None:
    for name in ("latent_action.pt", "action_to_latent.pt"):
        (tmp_path / name).write_bytes((tiny_dir / name).read_bytes())
    (tmp_path / REWARD_FILE).write_bytes((tiny_dir / "latent_action.pt").read_bytes())
    with pytest.raises(CheckpointError, match=f"^checkpoint {tmp_path / REWARD_FILE} belongs to stage "
                                              "'latent_action', not 'reward_model'$"):
        NeuralBreakoutEnv(tmp_path)


def test_bad_lives_or_score_are_refused(env: NeuralBreakoutEnv, start_frames: np.ndarray) -> None:
    for option, value in (("lives", -1), ("score", 1.5), ("lives", "five")):
        with pytest.raises(NeuralEnvError, match=f"options\\['{option}'\\] must be a whole number"):
            env.reset(options={"frames": start_frames, option: value})


def test_a_vector_env_steps_a_batch(tmp_path: Path, tiny_dir: Path) -> None:
    folder = tiny_with_rewards(tmp_path, tiny_dir, reward_class=2, exit_delay=-1)
    envs = gym.vector.SyncVectorEnv([lambda: NeuralBreakoutEnv(folder) for _ in range(2)])
    obs, info = envs.reset(seed=[0, 1])
    assert obs.shape == (2, H, W, 3) and info["lives"].tolist() == [5, 5]
    obs, reward, terminated, truncated, info = envs.step(np.array([FIRE, LEFT]))
    assert obs.shape == (2, H, W, 3) and reward.tolist() == [4.0, 4.0] and not terminated.any()
    assert info["score"].tolist() == [4.0, 4.0]
    envs.close()


def test_a_held_fire_reaches_the_map_as_a_fresh_press(env: NeuralBreakoutEnv, start_frames: np.ndarray) -> None:
    """The map learned a long run of FIRE as "the real game is not ready to serve yet"; the neural game
    has no such clock, so the FIREs held before a FIRE are shown to it as NOOPs. Other actions, and
    the env's own history, keep them."""
    assert held_fire_as_press([2, 1, 1], FIRE) == [2, 0, 0]
    assert held_fire_as_press([1, 2, 1], FIRE) == [1, 2, 0]
    assert held_fire_as_press([2, 1, 1], RIGHT) == [2, 1, 1]
    spy = PreviousActionSpy(env.mapper)
    spied = NeuralBreakoutEnv(models=(env.world_model, spy))
    spied.reset(seed=0, options={"frames": start_frames, "previous_actions": [3]})
    for action in (FIRE, FIRE, FIRE, RIGHT):
        spied.step(action)
    assert [seen[-3:] for seen in spy.seen] == [[0, 0, 3], [0, 3, 0], [3, 0, 0], [1, 1, 1]]


class PrefersCodeZero:
    """A mapper that always picks code 0 and likes code 3 least, whatever the action."""

    def __init__(self, mapper):
        self.mapper, self.config, self.history_length = mapper, mapper.config, mapper.history_length

    def code_logits(self, actions, context, history=None):
        logits = torch.zeros(1, 1, self.config.num_codes)
        logits[..., 0], logits[..., 3] = 5.0, -5.0
        return logits


def serving_env(tiny_dir: Path, fire_serves: bool) -> NeuralBreakoutEnv:
    """A tiny game whose world model draws the last frame again, with a ball only for code 3."""
    loaded = NeuralBreakoutEnv(tiny_dir)
    world = loaded.world_model
    red = int(np.flatnonzero((world.palette.numpy() == BALL_PADDLE_RGB).all(1))[0])

    def predict_next(context, codes, temperature=0.0, generator=None, whole_objects=True):
        world.batches.append(len(codes))
        out = context[:, -1].long().clone()
        out[codes[:, 0] == 3, 120:124, 80:82] = red
        return out

    world.predict_next, world.batches = predict_next, []
    return NeuralBreakoutEnv(models=(world, PrefersCodeZero(loaded.mapper)), fire_serves=fire_serves)


def test_fire_serves_after_a_while_without_a_ball(tiny_dir: Path, start_frames: np.ndarray) -> None:
    frames = start_frames.copy()
    frames[:, BALL_ROWS[0]:BALL_ROWS[1]] = 0                         # no ball
    env = serving_env(tiny_dir, fire_serves=True)
    env.reset(seed=0, options={"frames": frames})
    assert env.step(FIRE)[-1]["codes"].tolist() == [0]                # too soon: the map's code
    for _ in range(SERVE_WAIT):
        assert env.step(NOOP)[-1]["codes"].tolist() == [0]
    obs, *_, info = env.step(FIRE)
    assert info["codes"].tolist() == [3] and ball_present(obs)        # the only code that serves
    assert env.step(FIRE)[-1]["codes"].tolist() == [0]                # the ball is there: the map again
    env.reset(seed=0, options={"frames": frames})
    for _ in range(SERVE_WAIT):
        env.step(NOOP)
    env.world_model.batches.clear()
    assert env.step(FIRE)[-1]["codes"].tolist() == [3]
    assert env.world_model.batches == [1, 1]                            # the code that served before, then the step
    off = serving_env(tiny_dir, fire_serves=False)
    off.reset(seed=0, options={"frames": frames})
    for _ in range(SERVE_WAIT):
        off.step(NOOP)
    assert off.step(FIRE)[-1]["codes"].tolist() == [0]
