"""The reward-and-end model: what the emulator's score and lives counters would say about a step,
read from frames, so that the neural game can hand out rewards, lives and game over.

From the last ``context_frames`` frames and the next one it predicts the step's reward class (one of
``reward_values``, Breakout: 0, 1, 4, 7 points) and whether this is the step that tells the ball has
left the screen (out of view for ``exit_lag`` + 1 frames), and if so how many steps later Breakout
counts the lost life. Why several frames: Breakout may redraw its score a step after the brick
vanished, so the frames before must show a reward as already counted. Why the delay: a lost life is
counted 3-9 frames after the last frame that shows the ball (later for a slower ball and one last
seen higher: it falls on unseen), and for the last life nothing on screen changes then. The ball's
last two sightings fix the delay: in the recordings, its exact last row, its last step and the frames
between the two give one delay for all but 8 of 2,760 lost lives, from some 50 such keys. So the
model's delay is replaced by ``delay_table``, the most common delay of each key in the training games,
where the key is in it: a net that sees the rare delay of an ambiguous key (the emulator's hidden
state decides it) learns to give it to look-alikes. ``LifeCounter`` counts the life that many steps
on. Game over is the last life counted.

Input: frames reduced to "lit or not" (any non-black channel), max-pooled by ``pool`` so the 2x4 px
ball survives, float (B, context_frames + 1, H / pool, W / pool). Colour is left out: the brick's
row, i.e. its position, gives its value. With ``objects``, also the ball's and the paddle's places in
each frame to the pixel (``object_places``), beside the convolutions' features: whether a ball last
seen low beside the paddle's end has passed it, and how long it falls unseen, turn on single pixels
that pooling blurs. A small strided CNN, small enough to add at most 2 ms to a game step at batch 1
on one CPU thread."""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.checkpoint import load_model
from models.cli import UserError
from models.breakout_objects import ball_position, paddle_ends
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
    max_delay: int = 12                     # most steps between the ball's exit and the lost life's count
    exit_lag: int = 2                       # the exit is told this many steps after the ball was last shown
    objects: bool = False                   # the ball's and the paddle's places (object_places) as inputs too
    # (last row, last step, frames between the last two sightings, steps from the last sighting to the
    # count): the most common delay of each key in the training games (fit_delay_table)
    delay_table: list[list[float]] = field(default_factory=list)
    # The score's and the lives' digits as the recordings show them (models/scoreboard.py fit_glyphs):
    # the neural game draws its counts with them. Empty: the digits are left to the world model.
    digit_glyphs: list[list[int]] = field(default_factory=list)
    game: str = "Breakout"

    def __post_init__(self) -> None:
        if not self.reward_values or self.reward_values[0] != 0:
            raise ValueError(f"reward_values must start with 0 (no reward), got {self.reward_values}")
        if self.context_frames < 1 or self.pool < 1 or not self.channels or min(self.max_delay, self.exit_lag) < 0:
            raise ValueError("context_frames, pool and channels must be positive, max_delay and exit_lag not negative")

    @property
    def input_shape(self) -> tuple[int, int]:
        return -(-self.height // self.pool), -(-self.width // self.pool)


TINY_CONFIG = dict(channels=[4, 4], hidden=8)
PLACE_CENTRE = (110.0, 80.0, 80.0, 80.0)    # px: the middle of each place's range
PLACE_SCALE = 8.0                           # px per unit of the model's place inputs


def lit_frames(rgb: torch.Tensor, pool: int) -> torch.Tensor:
    """uint8 RGB (..., H, W, 3) -> float (..., ceil(H / pool), ceil(W / pool)), 1 where any pixel of
    the cell is not black."""
    lit = (rgb.amax(-1) > 0).float()                                        # (..., H, W)
    lead = lit.shape[:-2]
    pooled = F.max_pool2d(lit.reshape(-1, 1, *lit.shape[-2:]), pool, ceil_mode=True)
    return pooled.reshape(*lead, *pooled.shape[-2:])


def object_places(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (N, H, W, 3) -> float32 (N, 4): the ball's row and column (its centre), the paddle's
    first and last column, NaN where not shown."""
    return np.concatenate([ball_position(rgb), paddle_ends(rgb)], axis=-1).astype(np.float32)


def mirror_places(places: np.ndarray, width: int) -> np.ndarray:
    """``object_places`` (..., 4) of the frames flipped left to right: the paddle's ends swap."""
    flipped = places.copy()
    flipped[..., 1] = width - 1 - places[..., 1]
    flipped[..., 2], flipped[..., 3] = width - 1 - places[..., 3], width - 1 - places[..., 2]
    return flipped


def place_features(places: torch.Tensor) -> torch.Tensor:
    """``object_places`` (B, R, 4) -> (B, R * 8): each place centred and scaled, 0 where not shown,
    and whether it is shown."""
    shown = ~torch.isnan(places)
    centre = places.new_tensor(PLACE_CENTRE)
    centred = torch.where(shown, (places - centre) / PLACE_SCALE, torch.zeros_like(places))
    return torch.cat([centred, shown.float()], dim=-1).flatten(1)


def last_sighting(rows: np.ndarray) -> tuple[tuple[float, float, int], int] | None:
    """The ball's rows over frames (NaN: not shown) -> ((its last row, its last step in rows, frames
    between its last two sightings), the index of its last sighting); None where it is shown less than
    twice."""
    shown = np.flatnonzero(~np.isnan(rows))
    if len(shown) < 2:
        return None
    last, before = shown[-1], shown[-2]
    return (float(rows[last]), float(rows[last] - rows[before]), int(last - before)), int(last)


def fit_delay_table(games: list[GameSteps], max_delay: int) -> list[list[float]]:
    """``delay_table`` from recorded games: for each lost life, the key of the ball's last two sightings
    up to its count, and the steps from the last one to the count; each key's most common delay."""
    delays: dict[tuple[float, float, int], Counter] = defaultdict(Counter)
    for game in games:
        for t in np.flatnonzero(game.life_lost):
            sighting = last_sighting(game.places[:t + 1, 0])   # frame t + 1 may already show the next serve
            if sighting is not None and t - sighting[1] <= max_delay:
                delays[sighting[0]][t - sighting[1]] += 1
    return [[*key, float(counts.most_common(1)[0][0])] for key, counts in sorted(delays.items())]


@dataclass
class StepOutcome:
    """What the model says about a batch of steps."""
    reward: torch.Tensor      # (B,) float, the points of the step
    exit_delay: torch.Tensor  # (B,) int64, steps from the ball's exit on this step to its lost life; -1: no exit


class RewardModel(nn.Module):
    """Lit frames (B, context_frames + 1, h, w), oldest first, and with ``objects`` their
    ``object_places`` (B, context_frames + 1, 4) -> logits (B, K + max_delay + 2): K reward classes,
    then "no exit" and the exit delays 0 .. max_delay."""

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
        size += (cfg.context_frames + 1) * 8 if cfg.objects else 0
        outputs = len(cfg.reward_values) + cfg.max_delay + 2
        self.head = nn.Sequential(nn.Linear(size, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, outputs))
        self.register_buffer("values", torch.tensor(cfg.reward_values, dtype=torch.float32), persistent=False)
        self.delays = {(row, step, int(gap)): int(delay) for row, step, gap, delay in cfg.delay_table}

    def forward(self, lit: torch.Tensor, places: torch.Tensor | None = None) -> torch.Tensor:
        features = self.features(lit)
        if self.config.objects:
            if places is None:
                raise ValueError("this reward model reads the objects' places: pass object_places of its frames")
            features = torch.cat([features, place_features(places)], dim=1)
        return self.head(features)

    @torch.inference_mode()
    def predict(self, lit: torch.Tensor, places: torch.Tensor | None = None) -> StepOutcome:
        logits = self(lit, places)
        k = len(self.config.reward_values)
        exit_delay = logits[:, k:].argmax(1) - 1
        if self.delays and places is not None:
            exit_delay = self.table_delays(exit_delay, places)
        return StepOutcome(reward=self.values[logits[:, :k].argmax(1)], exit_delay=exit_delay)

    def table_delays(self, exit_delay: torch.Tensor, places: torch.Tensor) -> torch.Tensor:
        """The exit delays (B,) with each exit's delay taken from ``delay_table`` where the key of the
        ball's last two sightings in its window's places (B, R, 4) is in it."""
        out = exit_delay.clone()
        rows = places[..., 0].cpu().numpy()
        told = rows.shape[1] - 2                      # the step is told at the window's second-last frame
        for b in torch.nonzero(exit_delay >= 0).flatten().tolist():
            sighting = last_sighting(rows[b])
            if sighting is not None and sighting[0] in self.delays:
                out[b] = max(sighting[1] + self.delays[sighting[0]] - told, 0)
        return out

    def loss(self, batch: Batch) -> torch.Tensor:
        logits = self(batch.lit, batch.places)
        k = len(self.config.reward_values)
        return F.cross_entropy(logits[:, :k], batch.reward_class) + F.cross_entropy(logits[:, k:], batch.exit_delay + 1)


class LifeCounter:
    """Counts a lost life the model's delay after the step it saw the ball leave, as Breakout counts it
    once the unseen ball has fallen off the screen; exits seen while a count is pending are ignored."""

    def __init__(self) -> None:
        self.pending = -1       # steps until the pending count; -1: none

    def step(self, exit_delay: int) -> bool:
        """The model's exit delay for this step (-1: no exit) -> whether a life is counted on this step."""
        if self.pending < 0:
            self.pending = exit_delay
        lost = self.pending == 0
        self.pending = max(self.pending - 1, -1)
        return lost


def count_lives(exit_delay: np.ndarray) -> np.ndarray:
    """bool (T,): the steps of a game on which ``LifeCounter`` counts a lost life, from exit delays (T,)."""
    counter = LifeCounter()
    return np.array([counter.step(int(d)) for d in exit_delay], dtype=bool)


def load_reward_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> RewardModel:
    """The model in ``path``, in eval mode; a file of another stage or with a foreign config gets one sentence."""
    return load_model(path, STAGE, RewardModelConfig, RewardModel, device)


# ----------------------------------------------------------------------------- data

@dataclass
class GameSteps:
    """One recorded game as the reward model sees it."""
    lit: np.ndarray           # (T+1, h, w) uint8 lit mask of every frame
    places: np.ndarray        # (T+1, 4) float32 object_places of every frame
    reward_class: np.ndarray  # (T,) int64 index into reward_values
    exit_delay: np.ndarray    # (T,) int64 target: steps from the ball's exit on this step to its lost life; -1 none
    ball_gone: np.ndarray     # (T,) bool: the ball shown before the step and not after (an exit, or a dip out of view)
    life_lost: np.ndarray     # (T,) bool
    game_over: np.ndarray     # (T,) bool
    start_lives: int          # lives shown with the first frame

    def windows(self, steps: np.ndarray, context_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs of ``steps``: lit uint8 (N, context_frames + 1, h, w) and places (N, context_frames + 1,
        4) of frames t - context + 1 .. t + 1, the first frame repeated before the game's start."""
        frames = np.clip(steps[:, None] + np.arange(-context_frames + 1, 2), 0, None)
        return self.lit[frames], self.places[frames]


def exit_delays(life_lost: np.ndarray, ball_shown: np.ndarray, max_delay: int, lag: int) -> np.ndarray:
    """int64 (T,): for each lost life, at the step ``lag`` steps after the frame that last showed its ball
    (step t's next frame is frame t + 1), the steps from there to the count; -1 elsewhere, and for a
    life whose ball was last shown more than ``max_delay`` steps before its count or never.

    Why the lag: the ball is out of view for a frame or two when it dips into the paddle's rows and is
    hit back; only a ball out of view for longer has surely left (in the recordings every ball low on
    the screen that came back had been out of view for at most 2 frames)."""
    delay = np.full(len(life_lost), -1, dtype=np.int64)
    for t in np.nonzero(life_lost)[0]:
        shown = np.nonzero(ball_shown[:t + 1])[0]      # frame t + 1 may already show the next serve
        if len(shown) and t - shown[-1] <= max_delay:
            told = min(shown[-1] + lag, t)
            delay[told] = t - told
    return delay


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
    life_lost = lives[1:] < lives[:-1]
    places = np.concatenate([object_places(ep.frames[i:i + 512]) for i in range(0, len(ep.frames), 512)])
    shown = ~np.isnan(places[:, 0])
    return GameSteps(lit=lit, places=places, reward_class=match.argmax(1),
                     exit_delay=exit_delays(life_lost, shown, cfg.max_delay, cfg.exit_lag),
                     ball_gone=shown[:-1] & ~shown[1:], life_lost=life_lost,
                     game_over=ep.terminated.astype(bool), start_lives=int(lives[0]))


def event_steps(game: GameSteps, exit_lag: int) -> np.ndarray:
    """Steps with a reward or with the ball going out of view (an exit, or a ball that dips into the
    paddle's rows and comes back), from the step before to ``exit_lag`` + 1 steps after (where the
    digits are redrawn, and where an exit is told or not)."""
    events = np.nonzero((game.reward_class > 0) | game.ball_gone)[0]
    near = np.concatenate([events + k for k in range(-1, exit_lag + 2)])
    return np.unique(near[(near >= 0) & (near < len(game.reward_class))])


@dataclass
class Batch:
    lit: torch.Tensor           # (B, context_frames + 1, h, w) float
    places: torch.Tensor        # (B, context_frames + 1, 4) float
    reward_class: torch.Tensor  # (B,) int64
    exit_delay: torch.Tensor    # (B,) int64

    def to(self, device: torch.device) -> Batch:
        return Batch(*(getattr(self, k).to(device) for k in BATCH_FIELDS))


BATCH_FIELDS = ("lit", "places", "reward_class", "exit_delay")


def make_batch(game: GameSteps, steps: np.ndarray, cfg: RewardModelConfig) -> Batch:
    lit, places = game.windows(steps, cfg.context_frames)
    return Batch(lit=torch.from_numpy(lit).float(), places=torch.from_numpy(places),
                 reward_class=torch.from_numpy(game.reward_class[steps]),
                 exit_delay=torch.from_numpy(game.exit_delay[steps]))


def sample_batch(games: list[GameSteps], events: list[np.ndarray], cfg: RewardModelConfig, batch_size: int,
                 event_share: float, rng: np.random.Generator, mirror: bool = False) -> Batch:
    """``event_share`` of the batch from steps at or next to an event (rare: a few % of steps), the rest
    from all steps; games drawn in proportion to their length. With ``mirror``, half the windows are
    flipped left to right: the mirrored game has the same points and the same falls (the digits are
    only flipped in place), and a game holds only some five exits of the ball."""
    lengths = np.array([len(g.reward_class) for g in games], dtype=np.float64)
    parts = []
    for i in range(batch_size):
        g = int(rng.choice(len(games), p=lengths / lengths.sum()))
        near = events[g]
        step = int(rng.choice(near)) if len(near) and rng.random() < event_share else int(rng.integers(lengths[g]))
        parts.append(make_batch(games[g], np.array([step]), cfg))
    batch = Batch(*(torch.cat([getattr(p, k) for p in parts]) for k in BATCH_FIELDS))
    if mirror:
        flip = torch.from_numpy(rng.random(batch_size) < 0.5)
        batch.lit[flip] = batch.lit[flip].flip(-1)
        batch.places[flip] = torch.from_numpy(mirror_places(batch.places[flip].numpy(), cfg.width))
    return batch


def train_step(model: RewardModel, optimizer: torch.optim.Optimizer, batch: Batch) -> tuple[float, dict[str, float]]:
    model.train()
    loss = model.loss(batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), {"loss": loss.item()}


def predict_game(model: RewardModel, game: GameSteps, batch_size: int = 256) -> StepOutcome:
    """The model's outcome for every step of a game, (T,) each."""
    model.eval()
    steps = np.arange(len(game.reward_class))
    device = next(model.parameters()).device
    outs = []
    for i in range(0, len(steps), batch_size):
        lit, places = game.windows(steps[i:i + batch_size], model.config.context_frames)
        outs.append(model.predict(torch.from_numpy(lit).float().to(device), torch.from_numpy(places).to(device)))
    return StepOutcome(*(torch.cat([getattr(o, k) for o in outs]).cpu() for k in ("reward", "exit_delay")))


def end_step(life_lost: np.ndarray, start_lives: int) -> int:
    """The step at which a game ends as ``NeuralBreakoutEnv`` ends it: the lives counted down from
    ``start_lives`` reach 0; -1 when it never ends."""
    lives_left = start_lives - np.cumsum(life_lost)
    ends = np.nonzero(lives_left <= 0)[0]
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
    found, lost lives as ``LifeCounter`` counts them (recall and precision exactly at the step, and at
    most one step late), and the share of games that end as the environment would end them
    (``end_step``, lives counted from the game's first) at exactly the right step, or never for a game
    cut short; and at most one step off."""
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
        lost = count_lives(out.exit_delay.numpy())
        lives_hit += (lost & game.life_lost).sum()
        lives_real += game.life_lost.sum()
        lives_pred += lost.sum()
        a, b = matched(game.life_lost, lost, late=1)
        late_hit, late_pred = late_hit + a, late_pred + b
        true_end = int(np.nonzero(game.game_over)[0][0]) if game.game_over.any() else -1
        end = end_step(lost, game.start_lives)
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
