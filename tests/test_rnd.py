"""Tests for models/rnd.py: running statistics, network roles, novelty, checkpoint state."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.rnd import RND, RNDConfig, RunningMeanStd

STACK = 8
BLOCK = 12


def block_obs(corners: list[tuple[int, int]]) -> torch.Tensor:
    """One (8, 84, 84) uint8 stack per corner: black frames, with a bright 12x12 block at
    (row, col) in the newest frame only. Returns (B, 8, 84, 84)."""
    obs = torch.zeros(len(corners), STACK, 84, 84, dtype=torch.uint8)
    for i, (row, col) in enumerate(corners):
        obs[i, -1, row:row + BLOCK, col:col + BLOCK] = 255
    return obs


@pytest.fixture
def rnd() -> RND:
    torch.manual_seed(0)
    return RND(RNDConfig())


def test_running_mean_std_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 2, 3)) for n in (5, 1, 17, 40)]
    rms = RunningMeanStd(shape=(2, 3), epsilon=1e-12)
    for batch in batches:
        rms.update(batch)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean, everything.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(rms.var, everything.var(axis=0), rtol=1e-9)
    assert rms.count == pytest.approx(len(everything))


def test_running_mean_std_starts_as_standard_and_round_trips():
    rms = RunningMeanStd(shape=(3,))
    np.testing.assert_array_equal(rms.mean, np.zeros(3))
    np.testing.assert_array_equal(rms.var, np.ones(3))
    rms.update(np.arange(12.0).reshape(4, 3))
    copy = RunningMeanStd(shape=(3,))
    copy.load_state_dict(rms.state_dict())
    np.testing.assert_array_equal(copy.mean, rms.mean)
    np.testing.assert_array_equal(copy.var, rms.var)
    assert copy.count == rms.count


def test_running_mean_std_refuses_other_shape():
    with pytest.raises(ValueError, match="shape"):
        RunningMeanStd(shape=(2,)).load_state_dict(RunningMeanStd(shape=(3,)).state_dict())


def test_intrinsic_reward_shape_dtype_and_no_grad(rnd):
    reward = rnd.intrinsic_reward(block_obs([(0, 0), (30, 40), (70, 70)]))
    assert reward.shape == (3,)
    assert reward.dtype == torch.float32
    assert not reward.requires_grad
    assert torch.all(reward >= 0)
    assert rnd.reward_rms.count == pytest.approx(3, abs=1e-3)


def test_only_the_newest_frame_matters(rnd):
    obs = block_obs([(10, 10), (50, 20)])
    noisy = obs.clone()
    noisy[:, :-1] = torch.randint(0, 256, noisy[:, :-1].shape, dtype=torch.uint8)
    rnd.obs_rms.update(np.random.default_rng(0).uniform(0, 255, size=(4, 1, 84, 84)))
    with torch.no_grad():
        torch.testing.assert_close(rnd._prediction_error(noisy), rnd._prediction_error(obs))


def test_update_trains_predictor_only(rnd):
    target_before = [p.clone() for p in rnd.target.parameters()]
    predictor_before = [p.clone() for p in rnd.predictor.parameters()]
    loss, metrics = rnd.update(block_obs([(0, 0), (40, 40)]))
    assert isinstance(loss, float) and np.isfinite(loss)
    assert metrics["rnd_loss"] == loss
    assert {"intrinsic_mean", "intrinsic_raw_std"} <= metrics.keys()
    assert all(not p.requires_grad for p in rnd.target.parameters())
    assert all(torch.equal(a, b) for a, b in zip(target_before, rnd.target.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(predictor_before, rnd.predictor.parameters()))
    assert rnd.obs_rms.count == pytest.approx(2, abs=1e-3)


def test_novel_observation_earns_more_than_trained_ones(rnd):
    """The point of RND: after distilling the target on some frames, a frame unlike them is
    predicted worse, so it earns a larger bonus."""
    seen = block_obs([(row, col) for row in (4, 24, 44, 64) for col in (4, 24)])  # left half
    novel = block_obs([(10, 60), (50, 66), (68, 48)])  # right half: never lit in training
    losses = [rnd.update(seen)[0] for _ in range(150)]
    assert losses[-1] < 0.1 * losses[0]
    reward = rnd.intrinsic_reward(torch.cat([seen, novel]))
    seen_reward, novel_reward = reward[:len(seen)], reward[len(seen):]
    assert novel_reward.min() > 2 * seen_reward.max()


def test_extra_state_round_trips_through_safe_load(rnd, tmp_path):
    obs = block_obs([(0, 0), (20, 50), (60, 10)])
    for _ in range(3):
        rnd.update(obs)
    rnd.intrinsic_reward(obs)
    path = tmp_path / "rnd.pt"
    torch.save({"model": rnd.state_dict(), "rnd": rnd.extra_state()}, path)
    loaded = torch.load(path, weights_only=True)

    torch.manual_seed(1)  # different initial weights: everything must come from the file
    copy = RND(rnd.config)
    copy.load_state_dict(loaded["model"])
    copy.load_extra_state(loaded["rnd"])
    np.testing.assert_array_equal(copy.obs_rms.mean, rnd.obs_rms.mean)
    np.testing.assert_array_equal(copy.obs_rms.var, rnd.obs_rms.var)
    assert copy.reward_rms.count == rnd.reward_rms.count
    torch.testing.assert_close(copy.intrinsic_reward(obs), rnd.intrinsic_reward(obs))
    # Same optimizer moments too: the next training step is identical.
    assert copy.update(obs)[0] == pytest.approx(rnd.update(obs)[0])
    for a, b in zip(copy.predictor.parameters(), rnd.predictor.parameters()):
        torch.testing.assert_close(a, b)
