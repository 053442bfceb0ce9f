"""The DQN agent: Q-network, action selection (Boltzmann or epsilon-greedy), Double DQN update."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.checkpoint import config_from_checkpoint, load_checkpoint, load_state

STAGE = "dqn"


@dataclass
class QNetworkConfig:
    in_frames: int = 8          # frames per observation (the original stacked 8)
    num_actions: int = 4
    channels: tuple[int, int, int] = (32, 64, 64)
    hidden: int = 512

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)  # a checkpoint stores it as a list


class QNetwork(nn.Module):
    """Three convolutions and two linear layers over (B, in_frames, 84, 84) uint8 frames."""

    def __init__(self, config: QNetworkConfig = QNetworkConfig()):
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(config.in_frames, c1, 8, stride=4), nn.ReLU(),   # (B, c1, 20, 20)
            nn.Conv2d(c1, c2, 4, stride=2), nn.ReLU(),                 # (B, c2, 9, 9)
            nn.Conv2d(c2, c3, 3, stride=1), nn.ReLU(),                 # (B, c3, 7, 7)
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(c3 * 7 * 7, config.hidden), nn.ReLU(),
                                  nn.Linear(config.hidden, config.num_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(obs.float() / 255.0))  # (B, num_actions)


def boltzmann_actions(q: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample from softmax(q / temperature), one action per row of q (B, A)."""
    probs = F.softmax(q / max(temperature, 1e-6), dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def epsilon_greedy_actions(q: torch.Tensor, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Greedy actions, each replaced by a uniform random one with probability epsilon."""
    actions = q.argmax(dim=-1).cpu().numpy()
    explore = rng.random(actions.shape[0]) < epsilon
    actions[explore] = rng.integers(0, q.shape[-1], int(explore.sum()))
    return actions


def double_dqn_targets(next_q_online: torch.Tensor, next_q_target: torch.Tensor, returns: torch.Tensor,
                       dones: torch.Tensor, discounts: torch.Tensor) -> torch.Tensor:
    """n-step Double DQN target: the online network picks the next action, the target network values it.

    returns (B,) discounted reward sums, dones (B,) 1.0 where the game (or life) ended within the n
    steps, discounts (B,) gamma**k for the k steps summed."""
    best = next_q_online.argmax(dim=-1, keepdim=True)                 # (B, 1)
    next_value = next_q_target.gather(-1, best).squeeze(-1)           # (B,)
    return returns + discounts * (1.0 - dones) * next_value


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """Linear interpolation from start to end over ``duration`` steps, then constant."""
    if duration <= 0:
        return end
    return start + (end - start) * min(1.0, step / duration)


class DQNAgent:
    """Online and target networks with their optimiser; ``update`` is one Double DQN step."""

    def __init__(self, config: QNetworkConfig, device: torch.device, learning_rate: float = 1e-4,
                 grad_clip: float = 1.0):
        self.config = config
        self.device = device
        self.online = QNetwork(config).to(device)
        self.target = QNetwork(config).to(device)
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=learning_rate, eps=1.5e-4)
        self.grad_clip = grad_clip

    def q_values(self, obs: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return self.online(torch.as_tensor(obs, device=self.device))

    def update(self, states: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor, next_states: torch.Tensor,
               dones: torch.Tensor, discounts: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """One gradient step on the importance-weighted Huber loss; returns (|TD errors| (B,), metrics)."""
        q = self.online(states).gather(-1, actions.unsqueeze(-1)).squeeze(-1)      # (B,)
        with torch.no_grad():
            both = self.online(next_states), self.target(next_states)
            targets = double_dqn_targets(both[0], both[1], returns, dones, discounts)
        td = targets - q
        loss = (weights * F.smooth_l1_loss(q, targets, reduction="none")).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.online.parameters(), self.grad_clip)
        self.optimizer.step()
        metrics = {"loss": loss.item(), "q_mean": q.mean().item(), "grad_norm": float(grad_norm)}
        return td.detach().abs(), metrics

    def sync_target(self) -> None:
        self.target.load_state_dict(self.online.state_dict())

    def state(self) -> dict:
        return {"online": self.online.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load(self, state: dict, path: str | Path = "checkpoint") -> None:
        load_state(self.online, state["online"], path)
        load_state(self.target, state["target"], path)
        self.optimizer.load_state_dict(state["optimizer"])


class Policy:
    """A trained Q-network that acts greedily on stacks of agent frames (for recording and evaluation)."""

    def __init__(self, net: QNetwork, device: torch.device):
        self.net = net.eval()
        self.device = device
        self.stack = net.config.in_frames

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None, epsilon: float = 0.0) -> np.ndarray:
        """obs uint8 (N, stack, 84, 84) -> (N,) int64 actions (greedy, or epsilon-greedy with ``rng``)."""
        with torch.no_grad():
            q = self.net(torch.as_tensor(obs, device=self.device))
        if epsilon > 0.0:
            return epsilon_greedy_actions(q, epsilon, rng or np.random.default_rng()).astype(np.int64)
        return q.argmax(dim=-1).cpu().numpy().astype(np.int64)


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> Policy:
    """Rebuild the agent saved in a stage-1 checkpoint; a wrong or mismatched file gets CheckpointError."""
    payload = load_checkpoint(path, stage=STAGE)
    config = config_from_checkpoint(payload, QNetworkConfig, path)
    net = QNetwork(config)
    load_state(net, payload["model"], path)
    return Policy(net.to(device), torch.device(device))
