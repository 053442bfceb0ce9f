"""The reward-and-end model: what the emulator's score and lives counters would say about a step,
read from frames, so that the neural game can hand out rewards, lives and game over.

From the last ``context_frames`` frames and the next one it predicts the step's reward class (one of
``reward_values``, Breakout: 0, 1, 4, 7 points), whether a life was lost and whether the game ended.
Why several frames: Breakout may redraw its score a step after the brick vanished, so the frames
before must show a reward as already counted. A lost life is counted 2-9 agent steps after the last
frame that shows the ball (later for a slower ball and one last seen higher: it falls on unseen); the
lives digit changes on that step for most lives, a step later for some (236 and 20 of 256 in the
recordings) and never for the last one (63 of 63), whose step only the ball's exit tells: seeing the
slowest ball's last two frames takes ``context_frames`` 10 or more.

Input: frames reduced to "lit or not" (any non-black channel), max-pooled by ``pool`` so the 2x4 px
ball survives, float (B, context_frames + 1, H / pool, W / pool). Colour is left out: the brick's
row, i.e. its position, gives its value. A small strided CNN, small enough to add at most 2 ms to a
game step at batch 1 on one CPU thread."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.checkpoint import load_model
from models.cli import UserError
from models.episodes import Episode

STAGE = "reward_model"


@dataclass
class RewardModelConfig:
    reward_values: list[float] = field(default_factory=lambda: [0.0, 1.0, 4.0, 7.0])  # class i means reward_values[i]
    context_frames: int = 2                 # frames before the step's next frame
    pool: int = 2                           # max-pool of the lit mask (px)
    height: int = 210
    width: int = 160
    channels: list[int] = field(default_factory=lambda: [16, 32, 32])
    hidden: int = 128
    start_lives: int = 5                    # lives at the start of a game (for starts that do not say)
    game: str = "Breakout"

    def __post_init__(self) -> None:
        if not self.reward_values or self.reward_values[0] != 0:
            raise ValueError(f"reward_values must start with 0 (no reward), got {self.reward_values}")
        if self.context_frames < 1 or self.pool < 1 or not self.channels:
            raise ValueError("context_frames, pool and channels must be positive")

    @property
    def input_shape(self) -> tuple[int, int]:
        return -(-self.height // self.pool), -(-self.width // self.pool)


TINY_CONFIG = dict(channels=[4, 4], hidden=8)


def lit_frames(rgb: torch.Tensor, pool: int) -> torch.Tensor:
    """uint8 RGB (..., H, W, 3) -> float (..., ceil(H / pool), ceil(W / pool)), 1 where any pixel of
    the cell is not black."""
    lit = (rgb.amax(-1) > 0).float()                                        # (..., H, W)
    lead = lit.shape[:-2]
    pooled = F.max_pool2d(lit.reshape(-1, 1, *lit.shape[-2:]), pool, ceil_mode=True)
    return pooled.reshape(*lead, *pooled.shape[-2:])


@dataclass
class StepOutcome:
    """What the model says about a batch of steps."""
    reward: torch.Tensor      # (B,) float, the points of the step
    life_lost: torch.Tensor   # (B,) bool
    game_over: torch.Tensor   # (B,) bool


class RewardModel(nn.Module):
    """Lit frames (B, context_frames + 1, h, w), oldest first -> logits (B, K + 2): K reward classes,
    then life lost and game over."""

    def __init__(self, cfg: RewardModelConfig):
        super().__init__()
        self.config = cfg
        layers: list[nn.Module] = []
        channels = cfg.context_frames + 1
        for i, out in enumerate(cfg.channels):
            layers += [nn.Conv2d(channels, out, 4 if i == 0 else 3, stride=2), nn.ReLU()]
            channels = out
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            size = self.features(torch.zeros(1, cfg.context_frames + 1, *cfg.input_shape)).shape[1]
        self.head = nn.Sequential(nn.Linear(size, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, len(cfg.reward_values) + 2))
        self.register_buffer("values", torch.tensor(cfg.reward_values, dtype=torch.float32), persistent=False)

    def forward(self, lit: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(lit))

    @torch.inference_mode()
    def predict(self, lit: torch.Tensor) -> StepOutcome:
        logits = self(lit)
        k = len(self.config.reward_values)
        return StepOutcome(reward=self.values[logits[:, :k].argmax(1)], life_lost=logits[:, k] > 0,
                           game_over=logits[:, k + 1] > 0)

    def loss(self, lit: torch.Tensor, reward_class: torch.Tensor, life_lost: torch.Tensor,
             game_over: torch.Tensor) -> torch.Tensor:
        logits = self(lit)
        k = len(self.config.reward_values)
        return (F.cross_entropy(logits[:, :k], reward_class)
                + F.binary_cross_entropy_with_logits(logits[:, k], life_lost.float())
                + F.binary_cross_entropy_with_logits(logits[:, k + 1], game_over.float()))


def load_reward_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> RewardModel:
    """The model in ``path``, in eval mode; a file of another stage or with a foreign config gets one sentence."""
    return load_model(path, STAGE, RewardModelConfig, RewardModel, device)


# ----------------------------------------------------------------------------- data

@dataclass
class GameSteps:
    """One recorded game as the reward model sees it."""
    lit: np.ndarray           # (T+1, h, w) uint8 lit mask of every frame
    reward_class: np.ndarray  # (T,) int64 index into reward_values
    life_lost: np.ndarray     # (T,) bool
    game_over: np.ndarray     # (T,) bool
    start_lives: int          # lives shown with the first frame

    def windows(self, steps: np.ndarray, context_frames: int) -> np.ndarray:
        """Inputs of ``steps``: uint8 (N, context_frames + 1, h, w), frames t - context + 1 .. t + 1,
        the first frame repeated before the game's start."""
        offsets = np.arange(-context_frames + 1, 2)
        return self.lit[np.clip(steps[:, None] + offsets, 0, None)]


def game_steps(ep: Episode, cfg: RewardModelConfig, source: str = "episode") -> GameSteps:
    """Targets and lit frames of one episode; a reward that is not one of ``reward_values`` gets one sentence."""
    values = np.asarray(cfg.reward_values, dtype=np.float32)
    match = ep.rewards[:, None] == values[None]                                  # (T, K)
    if not match.any(1).all():
        odd = sorted(set(ep.rewards[~match.any(1)].tolist()))
        raise UserError(f"{source} has rewards {odd} that are not among --reward_values {cfg.reward_values}")
    lit = np.concatenate([lit_frames(torch.from_numpy(ep.frames[i:i + 512]), cfg.pool).to(torch.uint8).numpy()
                          for i in range(0, len(ep.frames), 512)])
    lives = ep.lives.astype(np.int64)
    return GameSteps(lit=lit, reward_class=match.argmax(1), life_lost=lives[1:] < lives[:-1],
                     game_over=ep.terminated.astype(bool), start_lives=int(lives[0]))


def event_steps(game: GameSteps) -> np.ndarray:
    """Steps with an event, and the steps just before and after (where the digits are redrawn)."""
    events = np.nonzero((game.reward_class > 0) | game.life_lost | game.game_over)[0]
    near = np.concatenate([events - 1, events, events + 1])
    return np.unique(near[(near >= 0) & (near < len(game.reward_class))])


@dataclass
class Batch:
    lit: torch.Tensor           # (B, context_frames + 1, h, w) float
    reward_class: torch.Tensor  # (B,) int64
    life_lost: torch.Tensor     # (B,) bool
    game_over: torch.Tensor     # (B,) bool

    def to(self, device: torch.device) -> Batch:
        return Batch(self.lit.to(device), self.reward_class.to(device), self.life_lost.to(device),
                     self.game_over.to(device))


def make_batch(game: GameSteps, steps: np.ndarray, cfg: RewardModelConfig) -> Batch:
    return Batch(lit=torch.from_numpy(game.windows(steps, cfg.context_frames)).float(),
                 reward_class=torch.from_numpy(game.reward_class[steps]),
                 life_lost=torch.from_numpy(game.life_lost[steps]), game_over=torch.from_numpy(game.game_over[steps]))


def sample_batch(games: list[GameSteps], events: list[np.ndarray], cfg: RewardModelConfig, batch_size: int,
                 event_share: float, rng: np.random.Generator) -> Batch:
    """``event_share`` of the batch from steps at or next to an event (rare: a few % of steps), the rest
    from all steps; games drawn in proportion to their length."""
    lengths = np.array([len(g.reward_class) for g in games], dtype=np.float64)
    parts = []
    for i in range(batch_size):
        g = int(rng.choice(len(games), p=lengths / lengths.sum()))
        near = events[g]
        step = int(rng.choice(near)) if len(near) and rng.random() < event_share else int(rng.integers(lengths[g]))
        parts.append(make_batch(games[g], np.array([step]), cfg))
    return Batch(*(torch.cat([getattr(p, k) for p in parts]) for k in ("lit", "reward_class", "life_lost", "game_over")))


def train_step(model: RewardModel, optimizer: torch.optim.Optimizer, batch: Batch) -> tuple[float, dict[str, float]]:
    model.train()
    loss = model.loss(batch.lit, batch.reward_class, batch.life_lost, batch.game_over)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), {"loss": loss.item()}


def predict_game(model: RewardModel, game: GameSteps, batch_size: int = 256) -> StepOutcome:
    """The model's outcome for every step of a game, (T,) each."""
    model.eval()
    steps = np.arange(len(game.reward_class))
    device = next(model.parameters()).device
    outs = [model.predict(torch.from_numpy(game.windows(steps[i:i + batch_size], model.config.context_frames))
                          .float().to(device)) for i in range(0, len(steps), batch_size)]
    return StepOutcome(*(torch.cat([getattr(o, k) for o in outs]).cpu() for k in ("reward", "life_lost", "game_over")))


def end_step(life_lost: np.ndarray, game_over: np.ndarray, start_lives: int) -> int:
    """The step at which a game ends as ``NeuralBreakoutEnv`` ends it: the model says game over, or the
    lives counted down from ``start_lives`` reach 0; -1 when it never ends."""
    lives_left = start_lives - np.cumsum(life_lost)
    ends = np.nonzero(game_over | (lives_left <= 0))[0]
    return int(ends[0]) if len(ends) else -1


def matched(true: np.ndarray, pred: np.ndarray, late: int) -> tuple[int, int]:
    """(true events with a predicted one at most ``late`` steps after, predicted events with a true one
    at most ``late`` steps before), for bool (T,) arrays."""
    near_pred = np.zeros_like(pred)
    near_true = np.zeros_like(true)
    for k in range(late + 1):
        near_pred[:len(pred) - k] |= pred[k:]
        near_true[k:] |= true[:len(true) - k]
    return int((true & near_pred).sum()), int((pred & near_true).sum())


def evaluate(model: RewardModel, games: list[GameSteps]) -> dict[str, float]:
    """Per step over whole games: reward events' recall and precision, the right class among the events
    found, lost lives' recall and precision (exactly at the step, and at most one step late, as when the
    lives digit is redrawn a step after the count), and the share of games that end as the environment
    would end them (``end_step``, lives counted from the game's first) at exactly the
    right step, or never for a game cut short; and at most one step off."""
    found = real = predicted = right_class = lives_hit = lives_real = lives_pred = late_hit = late_pred = 0
    ends_right = ends_near = 0
    values = np.asarray(model.config.reward_values, dtype=np.float32)
    for game in games:
        out = predict_game(model, game)
        true_reward = values[game.reward_class]
        pred_reward = out.reward.numpy()
        hit = (true_reward > 0) & (pred_reward > 0)
        found += hit.sum()
        real += (true_reward > 0).sum()
        predicted += (pred_reward > 0).sum()
        right_class += (hit & (pred_reward == true_reward)).sum()
        lost = out.life_lost.numpy()
        lives_hit += (lost & game.life_lost).sum()
        lives_real += game.life_lost.sum()
        lives_pred += lost.sum()
        a, b = matched(game.life_lost, lost, late=1)
        late_hit, late_pred = late_hit + a, late_pred + b
        true_end = int(np.nonzero(game.game_over)[0][0]) if game.game_over.any() else -1
        end = end_step(lost, out.game_over.numpy(), game.start_lives)
        ends_right += end == true_end
        ends_near += (end == -1) == (true_end == -1) and abs(end - true_end) <= 1

    def share(a: float, b: float) -> float:
        return float(a / b) if b else 1.0

    return {"reward_recall": share(found, real), "reward_precision": share(found, predicted),
            "reward_class_accuracy": share(right_class, found), "life_recall": share(lives_hit, lives_real),
            "life_precision": share(lives_hit, lives_pred), "game_over_right": share(ends_right, len(games)),
            "life_recall_1_late": share(late_hit, lives_real), "life_precision_1_late": share(late_pred, lives_pred),
            "game_over_1_off": share(ends_near, len(games)), "reward_events": float(real),
            "lives_lost": float(lives_real), "games": float(len(games))}
