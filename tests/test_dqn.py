import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError, save_checkpoint
from models.dqn import (DQNAgent, QNetwork, QNetworkConfig, boltzmann_actions, double_dqn_targets,
                        epsilon_greedy_actions, linear_schedule, load_policy)


def test_q_network_shapes_and_dtype():
    net = QNetwork(QNetworkConfig())
    q = net(torch.zeros(5, 8, 84, 84, dtype=torch.uint8))
    assert q.shape == (5, 4) and q.dtype == torch.float32


def test_double_dqn_target_on_a_hand_made_batch():
    online = torch.tensor([[1.0, 3.0], [5.0, 2.0], [0.0, 1.0]])   # picks actions 1, 0, 1
    target = torch.tensor([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]])
    returns = torch.tensor([1.0, 2.0, 3.0])
    dones = torch.tensor([0.0, 0.0, 1.0])
    discounts = torch.tensor([0.9, 0.81, 0.9])
    targets = double_dqn_targets(online, target, returns, dones, discounts)
    # row 0: 1 + 0.9 * target[0, 1]; row 1: 2 + 0.81 * target[1, 0]; row 2 ended: its return alone
    assert torch.allclose(targets, torch.tensor([1 + 0.9 * 20, 2 + 0.81 * 30, 3.0]))


def test_boltzmann_sampling_follows_the_temperature():
    q = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(4000, 1)
    g = torch.Generator().manual_seed(0)
    hot = (boltzmann_actions(q, 1.0, g) == 0).float().mean().item()
    cold = (boltzmann_actions(q, 0.05, g) == 0).float().mean().item()
    expected_hot = np.e / (np.e + 3)
    assert abs(hot - expected_hot) < 0.03 and cold > 0.999


def test_epsilon_greedy_explores_at_the_given_rate():
    q = torch.tensor([[0.0, 1.0, 0.0, 0.0]]).repeat(10000, 1)
    actions = epsilon_greedy_actions(q, 0.2, np.random.default_rng(0))
    assert abs((actions != 1).mean() - 0.2 * 0.75) < 0.02


def test_linear_schedule():
    assert linear_schedule(1.0, 0.05, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.0, 100, 50) == pytest.approx(0.5)
    assert linear_schedule(1.0, 0.05, 100, 1000) == pytest.approx(0.05)


def test_loss_falls_on_a_tiny_fixed_batch():
    torch.manual_seed(0)
    agent = DQNAgent(QNetworkConfig(), torch.device("cpu"), learning_rate=1e-3)
    b = 8
    batch = dict(states=torch.randint(0, 255, (b, 8, 84, 84), dtype=torch.uint8), actions=torch.randint(0, 4, (b,)),
                 returns=torch.rand(b), next_states=torch.randint(0, 255, (b, 8, 84, 84), dtype=torch.uint8),
                 dones=torch.ones(b), discounts=torch.full((b,), 0.99), weights=torch.ones(b))
    losses = [agent.update(**batch)[1]["loss"] for _ in range(30)]
    assert losses[-1] < 0.1 * losses[0]


def test_policy_round_trips_through_a_checkpoint(tmp_path):
    net = QNetwork(QNetworkConfig())
    save_checkpoint(tmp_path / "a.pt", stage="dqn", model=net, config=net.config, step=5)
    policy = load_policy(tmp_path / "a.pt")
    obs = np.random.default_rng(0).integers(0, 255, (3, 8, 84, 84), dtype=np.uint8)
    expected = net(torch.as_tensor(obs)).argmax(-1).numpy()
    assert np.array_equal(policy.act(obs), expected) and policy.stack == 8


def test_policy_refuses_another_stage_and_a_corrupt_file(tmp_path):
    save_checkpoint(tmp_path / "wm.pt", stage="latent_action", model=torch.nn.Linear(2, 2), config={}, step=0)
    with pytest.raises(CheckpointError, match="not 'dqn'"):
        load_policy(tmp_path / "wm.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_policy(tmp_path / "bad.pt")
