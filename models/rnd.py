"""Random network distillation (Burda et al. 2018): an exploration bonus for the DQN.

A fixed, randomly initialised *target* network maps a frame to a feature vector; a *predictor*
network is trained to reproduce those features on the frames the agent has seen. Its error stays
high on frames unlike anything seen before, and that error is the intrinsic reward.

RND looks at the newest frame of the agent's stack only: novelty is a property of a state, and
the older frames would mostly tell the predictor what it has already learned.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

FRAME_SIZE = 84
# Floor under the running standard deviations, so a constant pixel or reward never divides by 0.
STD_EPSILON = 1e-8
TRUNK_FEATURES = 64 * 7 * 7  # flattened (64, 7, 7) output of the conv trunk on an 84x84 frame


@dataclass
class RNDConfig:
    feature_dim: int = 512  # size of the target's random feature vector
    learning_rate: float = 1e-4  # Adam step size of the predictor
    obs_clip: float = 5.0  # whitened pixels are clipped to [-obs_clip, obs_clip]


class RunningMeanStd:
    """Running mean/variance with the parallel (Chan et al.) batch update; works on numpy arrays
    of any trailing shape.

    ``epsilon`` is a tiny prior count for mean 0 and variance 1, so the statistics are defined
    before the first batch and the first batch all but replaces them."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)

    def update(self, x: np.ndarray) -> None:
        """Fold a batch ``x`` of shape (B, *shape) into the statistics."""
        x = np.asarray(x, dtype=np.float64)
        batch_count = x.shape[0]
        if batch_count == 0:
            return
        batch_mean = x.mean(axis=0)
        batch_var = x.var(axis=0)
        total = self.count + batch_count
        delta = batch_mean - self.mean
        summed_squares = (self.var * self.count + batch_var * batch_count
                          + delta ** 2 * self.count * batch_count / total)
        # np.asarray keeps shape () statistics arrays rather than numpy scalars.
        self.mean = np.asarray(self.mean + delta * batch_count / total)
        self.var = np.asarray(summed_squares / total)
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var + STD_EPSILON)

    def state_dict(self) -> dict:
        """Tensors and numbers only, so a checkpoint loads with ``weights_only=True``."""
        return {"mean": torch.tensor(self.mean), "var": torch.tensor(self.var), "count": self.count}

    def load_state_dict(self, d: dict) -> None:
        mean = np.asarray(d["mean"], dtype=np.float64)
        if mean.shape != self.mean.shape:
            raise ValueError(f"running statistics of shape {mean.shape} do not fit shape {self.mean.shape}")
        self.mean = mean
        self.var = np.asarray(d["var"], dtype=np.float64)
        self.count = float(d["count"])


def _conv_trunk() -> nn.Sequential:
    """Nature-DQN-sized convolutions over one 84x84 frame, flattened to 3136 features."""
    return nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=8, stride=4), nn.LeakyReLU(),   # (B, 32, 20, 20)
        nn.Conv2d(32, 64, kernel_size=4, stride=2), nn.LeakyReLU(),  # (B, 64, 9, 9)
        nn.Conv2d(64, 64, kernel_size=3, stride=1), nn.LeakyReLU(),  # (B, 64, 7, 7)
        nn.Flatten(),                                                # (B, 3136)
    )


def _orthogonal_init(net: nn.Module, linear_gain: float) -> None:
    """Orthogonal weights and zero biases: gain sqrt(2) for the convolutions (they feed a ReLU-like
    activation), ``linear_gain`` for the linear layers."""
    for layer in net.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            gain = math.sqrt(2) if isinstance(layer, nn.Conv2d) else linear_gain
            nn.init.orthogonal_(layer.weight, gain=gain)
            nn.init.zeros_(layer.bias)


def _target_net(feature_dim: int) -> nn.Sequential:
    net = nn.Sequential(_conv_trunk(), nn.Linear(TRUNK_FEATURES, feature_dim))
    _orthogonal_init(net, linear_gain=1.0)
    net.requires_grad_(False)
    return net


def _predictor_net(feature_dim: int) -> nn.Sequential:
    """Deeper head than the target's, so it has the capacity to fit the random features."""
    net = nn.Sequential(
        _conv_trunk(),
        nn.Linear(TRUNK_FEATURES, 512), nn.ReLU(),
        nn.Linear(512, 512), nn.ReLU(),
        nn.Linear(512, feature_dim),
    )
    _orthogonal_init(net, linear_gain=math.sqrt(2))
    return net


class RND(nn.Module):
    """Target and predictor networks, the running statistics that whiten their input and scale
    their output, and the predictor's optimizer.

    ``state_dict()`` holds the two networks; ``extra_state()`` the rest, for checkpoints."""

    def __init__(self, config: RNDConfig = RNDConfig()):
        super().__init__()
        self.config = config
        self.target = _target_net(config.feature_dim)
        self.predictor = _predictor_net(config.feature_dim)
        self.obs_rms = RunningMeanStd(shape=(1, FRAME_SIZE, FRAME_SIZE))
        self.reward_rms = RunningMeanStd(shape=())
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=config.learning_rate)

    @property
    def device(self) -> torch.device:
        return next(self.predictor.parameters()).device

    def _whiten(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 8, 84, 84) uint8 stack -> (B, 1, 84, 84) float newest frame, whitened and clipped."""
        frame = obs[:, -1:].to(self.device, torch.float32)  # (B, 1, 84, 84)
        mean = torch.as_tensor(self.obs_rms.mean, dtype=torch.float32, device=self.device)  # (1, 84, 84)
        std = torch.as_tensor(self.obs_rms.std, dtype=torch.float32, device=self.device)    # (1, 84, 84)
        clip = self.config.obs_clip
        return ((frame - mean) / std).clamp(-clip, clip)

    def _prediction_error(self, obs: torch.Tensor) -> torch.Tensor:
        """Mean squared feature error per observation: (B, 8, 84, 84) uint8 -> (B,) float."""
        x = self._whiten(obs)                   # (B, 1, 84, 84)
        with torch.no_grad():
            target = self.target(x)             # (B, feature_dim)
        prediction = self.predictor(x)          # (B, feature_dim)
        return (prediction - target).pow(2).mean(dim=1)

    @torch.no_grad()
    def intrinsic_reward(self, obs: torch.Tensor) -> torch.Tensor:
        """Novelty of each observation, (B, 8, 84, 84) uint8 -> (B,) float on the model's device.

        The raw error is divided by its running standard deviation (not shifted by its mean, so the
        bonus stays positive), which keeps its scale steady while the predictor learns. Each call
        folds its errors into that running statistic: pass batches rather than single frames, or
        the first few rewards are scaled by a variance estimated from almost nothing."""
        error = self._prediction_error(obs)     # (B,)
        self.reward_rms.update(error.cpu().numpy())
        return error / float(self.reward_rms.std)

    def update(self, obs: torch.Tensor) -> tuple[float, dict[str, float]]:
        """One Adam step of the predictor towards the target on obs (B, 8, 84, 84) uint8.

        The observation statistics are updated first, so the frames are whitened with statistics
        that already include them."""
        self.obs_rms.update(obs[:, -1:].cpu().numpy())
        error = self._prediction_error(obs)     # (B,)
        loss = error.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        loss_value = loss.item()
        return loss_value, {
            "rnd_loss": loss_value,
            "intrinsic_mean": loss_value / float(self.reward_rms.std),
            "intrinsic_raw_std": float(self.reward_rms.std),
        }

    def extra_state(self) -> dict:
        """Running statistics and optimizer state: tensors, numbers and dicts only."""
        return {"obs_rms": self.obs_rms.state_dict(), "reward_rms": self.reward_rms.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_extra_state(self, d: dict) -> None:
        self.obs_rms.load_state_dict(d["obs_rms"])
        self.reward_rms.load_state_dict(d["reward_rms"])
        self.optimizer.load_state_dict(d["optimizer"])
