"""Stage 4: from the real controls (NOOP, FIRE, RIGHT, LEFT...) to the world model's latent actions.

The latent action model names each step with codes it invented (stage 2-3). Here the encoder is run
over games whose real actions are known, giving (action, latent code) pairs, and a small map is
trained from a pair's action, and optionally the frames before it, to its codes:

- ``variant="action"``: one table of logits per action, the best any map from the action alone can
  do (the original project's one-hot MLP computes the same thing);
- ``variant="action_state"``: a small convolutional net over the last ``state_frames`` frames,
  average-pooled to a coarse grid, and the last ``action_history`` actions pressed before, gives
  logits for every action at once and the pressed action's are read out. The state tells apart
  moves that look alike (a RIGHT with the paddle against the right wall moves nothing, like a NOOP).
  The earlier actions are part of the state because Breakout's paddle answers late, and a frame
  shows where the paddle is, not what it has still to do: about half of a step's move comes from
  the action before it (RIGHT after RIGHT moves ~22 px, RIGHT after NOOP ~11, NOOP after RIGHT ~10),
  and a paddle held against the right wall stays put for two LEFT steps before it moves, however many
  NOOPs came between. The state frames may also reach further back than the world model's context
  (``state_frames`` > ``context_frames``; the environment keeps them): Breakout takes a life off the
  display about 9 steps after the ball was last seen, over frames that all look alike, and the world
  model has one code for that step, whatever the action; only a map that still sees the ball fall
  can time it.

Labelled pairs are scarce where unlabelled video is not: the encoder gives a code for every step of
any recording, actions or not. Most of what decides a code is the state (the action alone tells about
a quarter of them), so with ``marginal`` the state net has one more output, the code's distribution
when the action and the actions before it are unknown, trained on unlabelled pairs; every action's
logits are offsets from it, so a few labelled pairs only have to teach what the action changes.

The pairs it learns from, and how they are collected, are in ``models.action_pairs``."""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.action_pairs import MAX_CONFUSION_PANELS, NOOP, PairSet, code_counts, code_heatmap
from models.checkpoint import CheckpointError, config_from_checkpoint, load_checkpoint, load_state
from models.cli import UserError
from models.figures import pyplot, save_figure
from models.files import atomic_write

STAGE = "action_to_latent"
VARIANTS = ("action", "action_state")


MAX_STATE_FRAMES = 32   # a map looks at most this many frames back (the game keeps them for it)
RETIRED_FIELDS = {"recent_frames": 0, "ball_clock": 0}   # config fields of removed experiments, and their "off"


# ============================================================================ the map

@dataclass
class ActionToLatentConfig:
    """Everything needed to rebuild the map; stored in its checkpoint."""
    variant: Literal["action", "action_state"] = "action_state"
    num_actions: int = 4
    num_latents: int = 1             # latent positions per step (the world model's latent grid, flattened)
    num_codes: int = 16              # the world model's codebook size
    context_frames: int = 4          # frames of context the world model takes (and sample_codes is given)
    state_frames: int = 4            # the last frames the state net looks at (more than context_frames: the env keeps them)
    action_history: int = 8          # earlier actions the state net also sees (see the module doc)
    marginal: bool = False           # action_state: an extra output for an unknown action, learnt from unlabelled pairs
    height: int = 210
    width: int = 160
    state_pool: list[int] = field(default_factory=lambda: [5, 4])  # rows, columns averaged into one cell
    state_channels: list[int] = field(default_factory=lambda: [16, 32, 64])  # conv widths; each halves the grid
    hidden: int = 128
    action_meanings: list[str] = field(default_factory=list)
    game: str = ""

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        for name in ("num_actions", "num_latents", "num_codes", "context_frames", "state_frames", "height",
                     "width", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.state_frames > MAX_STATE_FRAMES:
            raise ValueError(f"state_frames must be at most {MAX_STATE_FRAMES}, got {self.state_frames}")
        if self.action_history < 0:
            raise ValueError(f"action_history must be zero or more, got {self.action_history}")
        if len(self.state_pool) != 2 or min(self.state_pool) < 1:
            raise ValueError(f"state_pool must be two positive numbers (rows, columns), got {self.state_pool}")
        if not self.state_channels:
            raise ValueError("state_channels needs at least one layer")
        if self.marginal and self.variant != "action_state":
            raise ValueError("marginal needs the action_state variant (the action alone has no state to learn)")

    @property
    def state_size(self) -> tuple[int, int]:
        """Rows, columns of the pooled frames the state net sees."""
        return self.height // self.state_pool[0], self.width // self.state_pool[1]


def pool_frames(rgb: torch.Tensor, pool: Sequence[int]) -> torch.Tensor:
    """uint8 RGB (..., H, W, 3) -> uint8 (..., 3, h, w): each pool[0] x pool[1] block averaged and rounded.

    The one preprocessing of the state, used both for training (once per stored frame) and for
    sampling, so the two see identical numbers. A 2x4-pixel ball still shows in a 5x4 cell."""
    lead = rgb.shape[:-3]
    x = rgb.reshape(-1, *rgb.shape[-3:]).permute(0, 3, 1, 2).float()     # (N, 3, H, W)
    x = F.avg_pool2d(x, kernel_size=tuple(pool), stride=tuple(pool))       # (N, 3, h, w)
    return x.round().to(torch.uint8).reshape(*lead, *x.shape[1:])


def conv_stack(channels_in: int, widths: Sequence[int]) -> nn.Sequential:
    """3x3 convolutions with ReLU, each halving the grid (overlapping, so no pixel is skipped)."""
    layers = []
    for width in widths:
        layers += [nn.Conv2d(channels_in, width, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        channels_in = width
    return nn.Sequential(*layers)


class StateNet(nn.Module):
    """Pooled frames (B, S, 3, h, w) uint8 and the earlier actions (B, action_history) -> logits for every
    action (B, A, L, K); with ``marginal``, (B, A + 1, L, K), the last for the unknown action ``A``,
    which may also stand for any earlier action."""

    def __init__(self, cfg: ActionToLatentConfig):
        super().__init__()
        self.cfg = cfg
        self.convs = conv_stack(3 * cfg.state_frames, cfg.state_channels)
        h, w = cfg.state_size
        for _ in cfg.state_channels:
            h, w = (h + 1) // 2, (w + 1) // 2
        self.tokens = cfg.num_actions + int(cfg.marginal)   # the actions, and the unknown one
        inputs = cfg.state_channels[-1] * h * w + cfg.action_history * self.tokens
        self.head = nn.Sequential(nn.Linear(inputs, cfg.hidden), nn.ReLU(inplace=True),
                                  nn.Linear(cfg.hidden, self.tokens * cfg.num_latents * cfg.num_codes))

    def forward(self, pooled: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        x = pooled.float() / 255.0                                   # (B, S, 3, h, w)
        features = self.convs(x.flatten(1, 2)).flatten(1)            # (B, F)
        if cfg.action_history and (history is None or history.shape[1:] != (cfg.action_history,)):
            raise ValueError(f"this map needs the {cfg.action_history} earlier actions, (B, {cfg.action_history})")
        out = self._head(features, history)
        if cfg.marginal:
            # The unknown action's logits are the state's alone (earlier actions unknown too), as the
            # unlabelled pairs taught them; each action's logits are offsets from them.
            blind = None if history is None else torch.full_like(history, cfg.num_actions)
            unknown = self._head(features, blind)[:, cfg.num_actions:]
            out = torch.cat([out[:, :cfg.num_actions] + unknown, unknown], dim=1)
        return out

    def _head(self, features: torch.Tensor, history: torch.Tensor | None) -> torch.Tensor:
        """(B, F) state features and (B, action_history) earlier actions -> (B, tokens, L, K) logits."""
        if self.cfg.action_history:
            features = torch.cat([features, F.one_hot(history, self.tokens).flatten(1).float()], dim=1)
        return self.head(features).view(-1, self.tokens, self.cfg.num_latents, self.cfg.num_codes)


class ActionToLatent(nn.Module):
    """Real action (and the frames before it) -> logits over the world model's codes at each latent position."""

    def __init__(self, cfg: ActionToLatentConfig):
        super().__init__()
        self.config = cfg
        if cfg.variant == "action":
            # One-hot action through a linear layer = one learned row of logits per action.
            self.table = nn.Linear(cfg.num_actions, cfg.num_latents * cfg.num_codes)
            nn.init.zeros_(self.table.weight)  # start from uniform logits: no code favoured before any data
            nn.init.zeros_(self.table.bias)
        else:
            self.state_net = StateNet(cfg)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, actions: torch.Tensor, pooled: torch.Tensor | None = None,
                history: torch.Tensor | None = None) -> torch.Tensor:
        """actions (B,) int64; for action_state, the pooled state (B, S, 3, h, w) uint8 and the earlier
        actions (B, action_history) int64, oldest first -> logits (B, L, K). With ``marginal``, the
        action ``num_actions`` stands for an unknown one (``unknown_action``)."""
        return self.logits_and_offsets(actions, pooled, history)[0]

    def logits_and_offsets(self, actions: torch.Tensor, pooled: torch.Tensor | None = None,
                           history: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logits of ``forward`` and, for a marginal map, how far they lie from the unknown
        action's (B, L, K); None for any other map."""
        cfg = self.config
        if cfg.variant == "action":
            one_hot = F.one_hot(actions, cfg.num_actions).float()                 # (B, A)
            return self.table(one_hot).view(-1, cfg.num_latents, cfg.num_codes), None
        if pooled is None:
            raise ValueError("the action_state map needs the context frames")
        every = self.state_net(pooled, history)                                   # (B, A, L, K)
        logits = every[torch.arange(actions.shape[0], device=every.device), actions]  # (B, L, K)
        return logits, (logits - every[:, cfg.num_actions] if cfg.marginal else None)

    def state_from_context(self, context: torch.Tensor) -> torch.Tensor:
        """RGB frames uint8 (B, n, H, W, 3), oldest first -> pooled state of the last S (B, S, 3, h, w);
        with fewer than S frames the oldest stands in for the missing ones (a standing start)."""
        cfg = self.config
        if context.dtype != torch.uint8 or context.dim() != 5 or context.shape[1] < 1 \
                or tuple(context.shape[2:]) != (cfg.height, cfg.width, 3):
            raise ValueError(f"context must be uint8 RGB (B, n, {cfg.height}, {cfg.width}, 3), "
                             f"got {context.dtype} {tuple(context.shape)}")
        return pool_frames(oldest_repeated(context, cfg.state_frames), cfg.state_pool)

    @property
    def unknown_action(self) -> int:
        """The token for an unknown action, of a map trained with unlabelled pairs (``marginal``)."""
        if not self.config.marginal:
            raise ValueError("only a map with marginal=True learns from unlabelled pairs")
        return self.config.num_actions

    @property
    def history_length(self) -> int:
        """How many earlier actions ``sample_codes`` wants (0 for the action-only map)."""
        return self.config.action_history if self.config.variant == "action_state" else 0

    def _check_actions(self, actions: torch.Tensor, what: str) -> torch.Tensor:
        actions = actions.to(self.device).long()
        if actions.min() < 0 or actions.max() >= self.config.num_actions:
            raise ValueError(f"{what} must lie in [0, {self.config.num_actions}), got {actions.tolist()}")
        return actions

    def _recent(self, history: torch.Tensor | None, batch: int) -> torch.Tensor:
        """The last ``history_length`` of ``history`` (B, n), padded in front with NOOP."""
        k = self.history_length
        recent = torch.full((batch, k), NOOP, dtype=torch.long, device=self.device)
        if history is not None and k and history.numel():
            history = self._check_actions(history.reshape(batch, -1), "earlier actions")[:, -k:]
            recent[:, k - history.shape[1]:] = history
        return recent

    @torch.no_grad()
    def code_logits(self, actions: torch.Tensor, context: torch.Tensor | None = None,
                    history: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, num_latents, num_codes) for actions (B,) and, for action_state, the RGB context
        (B, C, H, W, 3) uint8 and the actions played before (B, n) int64, oldest first: the last
        ``history_length`` are used, and missing ones (or None) count as NOOP, a standing start."""
        actions = self._check_actions(actions, "actions")
        pooled = None
        if self.config.variant == "action_state":
            if context is None:
                raise ValueError("the action_state map needs the context frames")
            pooled = self.state_from_context(context.to(self.device))
        return self(actions, pooled, self._recent(history, actions.shape[0]))   # (B, L, K)

    def sample_codes(self, actions: torch.Tensor, context: torch.Tensor | None = None, temperature: float = 0.0,
                     generator: torch.Generator | None = None,
                     history: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (B, num_latents) int64 from ``code_logits``: temperature 0 takes the most likely
        code; above 0, samples softmax(logits / T)."""
        return sample_from_logits(self.code_logits(actions, context, history), temperature, generator)


def frames_kept(mapper: Any, context_frames: int) -> int:
    """How many of the latest frames a game keeps for a world model of ``context_frames`` and this
    map, which may look further back."""
    return max(context_frames, getattr(getattr(mapper, "config", None), "state_frames", 0))


def oldest_repeated(frames: torch.Tensor, length: int) -> torch.Tensor:
    """The last ``length`` of frames (B, n, ...), oldest first; with n < length the oldest is repeated
    in front."""
    missing = length - frames.shape[1]
    if missing <= 0:
        return frames[:, frames.shape[1] - length:]
    return torch.cat([frames[:, :1].expand(-1, missing, *frames.shape[2:]), frames], dim=1)


def sample_from_logits(logits: torch.Tensor, temperature: float = 0.0,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, L, K) logits -> (B, L) codes: argmax at temperature 0, else a draw from softmax(logits / T)."""
    if temperature <= 0:
        return logits.argmax(-1)
    b, positions, k = logits.shape
    probs = F.softmax(logits.float() / temperature, dim=-1).reshape(-1, k)
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)
    return torch.multinomial(probs, 1, generator=generator).reshape(b, positions).to(logits.device)


def mapper_config(variant: str, pairs: PairSet, **overrides: Any) -> ActionToLatentConfig:
    """The map's config for a set of pairs: latent shape, actions and context from the pairs' metadata."""
    meta = pairs.metadata
    values = dict(variant=variant, num_actions=len(meta["action_meanings"]), num_latents=pairs.num_latents,
                  num_codes=pairs.num_codes, context_frames=int(meta["context_frames"]),
                  height=int(pairs.frames.shape[1]), width=int(pairs.frames.shape[2]),
                  action_meanings=list(meta["action_meanings"]), game=str(meta.get("game", "")))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ActionToLatentConfig(**values)


def check_latent_shape(cfg: ActionToLatentConfig, latent_config: Any, path: str | os.PathLike = "the map") -> None:
    """Raise CheckpointError when the map was trained for a world model of another latent shape."""
    want = (latent_config.num_latents, latent_config.num_codes)
    have = (cfg.num_latents, cfg.num_codes)
    if want != have:
        raise CheckpointError(f"action map {path} was trained for {have[0]} latent position(s) with a codebook of "
                              f"{have[1]}, but the world model has {want[0]} with a codebook of {want[1]}; "
                              "collect pairs and train the map for this world model")


def load_action_mapper(path: str | os.PathLike, device: str | torch.device = "cpu",
                       latent_config: Any = None) -> ActionToLatent:
    """Rebuild the map from its checkpoint alone, in eval mode. A missing or wrong-stage file, or (given
    the world model's ``latent_config``) a map for another latent shape, raises CheckpointError."""
    payload = load_checkpoint(path, stage=STAGE, map_location="cpu")
    try:
        cfg = config_from_checkpoint(payload, ActionToLatentConfig, path, retired=RETIRED_FIELDS)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has an invalid action map config: {exc}") from exc
    if latent_config is not None:
        check_latent_shape(cfg, latent_config, path)
    mapper = ActionToLatent(cfg)
    load_state(mapper, payload["model"], path)
    return mapper.to(device).eval()


# ============================================================================ training data

class PairTensors:
    """Pairs as tensors ready for batches: actions, the actions before them, codes, and the pooled state
    frames (each stored frame pooled once; a pair's state is gathered by frame number). Several sets
    are numbered on from set to set, without copying their frames into one array first."""

    def __init__(self, pairs: PairSet | Sequence[PairSet], cfg: ActionToLatentConfig, chunk: int = 512):
        sets = [pairs] if isinstance(pairs, PairSet) else list(pairs)
        offsets = np.cumsum([0] + [p.frames.shape[0] for p in sets[:-1]])
        self.actions = torch.from_numpy(np.concatenate([p.actions for p in sets]))                    # (N,)
        self.history = torch.from_numpy(np.concatenate([p.action_history(cfg.action_history) for p in sets]))
        self.codes = torch.from_numpy(np.concatenate([p.codes for p in sets]))                        # (N, L)
        self.state_index = torch.from_numpy(np.concatenate([p.state_index(cfg.state_frames) + o
                                                            for p, o in zip(sets, offsets)]))        # (N, S)
        self.pooled = None
        if cfg.variant == "action_state":
            palette = torch.from_numpy(sets[0].palette)
            chunks = (palette[torch.from_numpy(p.frames[i:i + chunk]).long()]
                      for p in sets for i in range(0, p.frames.shape[0], chunk))                    # RGB, made one at a time
            self.pooled = torch.cat([pool_frames(rgb, cfg.state_pool) for rgb in chunks])           # (F, 3, h, w) uint8

    def batch(self, idx: torch.Tensor, device: torch.device | str = "cpu",
              unknown_action: int | None = None) -> tuple[MapperInputs, torch.Tensor]:
        """The map's inputs for the pairs ``idx`` and their codes (B, L), on ``device``. Given
        ``unknown_action``, it replaces the pair's action and the ones before: unlabelled pairs."""
        pooled = None if self.pooled is None else self.pooled[self.state_index[idx]].to(device)
        actions, history = self.actions[idx], self.history[idx]
        if unknown_action is not None:
            actions, history = torch.full_like(actions, unknown_action), torch.full_like(history, unknown_action)
        return MapperInputs(actions.to(device), pooled, history.to(device)), self.codes[idx].to(device)


class MapperInputs(NamedTuple):
    """What ``ActionToLatent.forward`` takes: ``mapper(*inputs)``."""
    actions: torch.Tensor               # (B,) int64
    pooled: torch.Tensor | None         # (B, S, 3, h, w) uint8, action_state only
    history: torch.Tensor               # (B, action_history) int64, the actions before, oldest first


@dataclass
class PairSplit:
    train: np.ndarray  # pair numbers
    val: np.ndarray


def split_pairs(game_index: np.ndarray, val_fraction: float = 0.2, seed: int = 0) -> PairSplit:
    """80/20 by whole games (consecutive steps of one game are near copies, so a random cut of pairs
    would flatter the map). With a single game, its last ``val_fraction`` of steps are held out."""
    games = np.unique(game_index)
    n = game_index.shape[0]
    if games.size < 2:
        cut = n - max(1, round(val_fraction * n))
        if cut < 1:
            raise UserError(f"{n} pair(s) are too few to hold some out for validation")
        return PairSplit(train=np.arange(cut), val=np.arange(cut, n))
    order = np.random.default_rng(seed).permutation(games)
    n_val = min(games.size - 1, max(1, round(val_fraction * games.size)))
    val = np.isin(game_index, order[:n_val])
    return PairSplit(train=np.flatnonzero(~val), val=np.flatnonzero(val))


def labelled_subset(train: np.ndarray, max_pairs: int | None, seed: int = 0) -> np.ndarray:
    """At most ``max_pairs`` training pairs drawn at random (all of them for None or more than there are)."""
    if max_pairs is None or max_pairs >= train.shape[0]:
        return train
    return np.sort(np.random.default_rng(seed).choice(train, size=max_pairs, replace=False))


# ============================================================================ training and evaluation

def train_step(mapper: ActionToLatent, optimizer: torch.optim.Optimizer, inputs: MapperInputs,
               codes: torch.Tensor, unlabelled: tuple[MapperInputs, torch.Tensor] | None = None,
               offset_penalty: float = 0.0) -> tuple[float, dict[str, float]]:
    """One Adam step of cross-entropy over every latent position, plus that of the ``unlabelled``
    batch (inputs with the unknown action, and codes) when given.

    A marginal map's action offsets also pay ``offset_penalty`` times their mean square: of the ways
    to explain a few labelled pairs, the one where the action changes least what the state predicts
    (a handful of NOOPs that all met one code must not make that code NOOP's everywhere)."""
    logits, offsets = mapper.logits_and_offsets(*inputs)                     # (B, L, K)
    loss = F.cross_entropy(logits.flatten(0, 1), codes.flatten())
    if offsets is not None and offset_penalty > 0:
        loss = loss + offset_penalty * offsets.pow(2).mean()
    if unlabelled is not None:
        loss = loss + F.cross_entropy(mapper(*unlabelled[0]).flatten(0, 1), unlabelled[1].flatten())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        right = logits.argmax(-1) == codes                                   # (B, L)
    return loss.item(), {"loss": loss.item(), "train_accuracy": right.float().mean().item(),
                         "train_step_accuracy": right.all(1).float().mean().item()}


@torch.no_grad()
def predict(mapper: ActionToLatent, data: PairTensors, idx: np.ndarray, batch_size: int = 1024,
            temperature: float = 0.0, generator: torch.Generator | None = None) -> tuple[np.ndarray, float]:
    """Codes the map gives for pairs ``idx`` (N, L), and the mean cross-entropy."""
    was_training = mapper.training
    mapper.eval()
    preds, loss_sum = [], 0.0
    for start in range(0, idx.shape[0], batch_size):
        inputs, codes = data.batch(torch.from_numpy(idx[start:start + batch_size]), mapper.device)
        logits, codes = mapper(*inputs).cpu(), codes.cpu()
        loss_sum += F.cross_entropy(logits.flatten(0, 1), codes.flatten(), reduction="sum").item() / codes.shape[1]
        preds.append(sample_from_logits(logits, temperature, generator).numpy())
    mapper.train(was_training)
    return np.concatenate(preds), loss_sum / max(1, idx.shape[0])


@dataclass
class MapperEvaluation:
    metrics: dict[str, float]   # accuracy (per latent position, as the original), step_accuracy (all positions), per action
    predicted: np.ndarray       # (N, L) the map's codes
    truth: np.ndarray           # (N, L) the encoder's codes
    actions: np.ndarray         # (N,)


def accuracy_metrics(pred: np.ndarray, truth: np.ndarray, actions: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Share of latent positions right (the original's figure), of steps with every position right, and
    both per action (NaN for an action absent from the set)."""
    right = pred == truth                                                    # (N, L)
    metrics = {"accuracy": float(right.mean()), "step_accuracy": float(right.all(1).mean())}
    for a, name in enumerate(names):
        mask = actions == a
        metrics[f"accuracy_{name}"] = float(right[mask].mean()) if mask.any() else math.nan
    return metrics


def action_only_ceiling(train_actions: np.ndarray, train_codes: np.ndarray, actions: np.ndarray, codes: np.ndarray,
                        num_actions: int, num_codes: int) -> float:
    """Per-position accuracy of the most frequent training code of each action, on (actions, codes):
    the figure any map from the action alone is bounded by, up to what the training pairs show."""
    counts = code_counts(train_actions, train_codes, num_actions, num_codes)  # (A, L, K)
    best = counts.argmax(-1)                                                  # (A, L)
    return float((best[actions] == codes).mean())


def evaluate_mapper(mapper: ActionToLatent, data: PairTensors, idx: np.ndarray, temperature: float = 0.0,
                    seed: int = 0) -> MapperEvaluation:
    generator = torch.Generator().manual_seed(seed) if temperature > 0 else None
    pred, loss = predict(mapper, data, idx, temperature=temperature, generator=generator)
    truth, actions = data.codes[idx].numpy(), data.actions[idx].numpy()
    names = mapper.config.action_meanings or [str(a) for a in range(mapper.config.num_actions)]
    metrics = {"val_loss": loss, **accuracy_metrics(pred, truth, actions, names)}
    return MapperEvaluation(metrics=metrics, predicted=pred, truth=truth, actions=actions)


@dataclass
class TrainSettings:
    num_steps: int = 3000
    batch_size: int = 256
    learning_rate: float = 1e-3
    eval_every: int = 250
    num_val: int = 5000       # validation pairs scored during training (all of them at the end)
    offset_penalty: float = 0.0   # a marginal map's action offsets pay this times their mean square
    seed: int = 0


@dataclass
class TrainResult:
    mapper: ActionToLatent    # with the weights that scored best on validation
    best_step: int
    best_accuracy: float
    history: list[dict[str, float]]


def train_mapper(cfg: ActionToLatentConfig, data: PairTensors, train_idx: np.ndarray, val_idx: np.ndarray,
                 settings: TrainSettings, device: torch.device | str = "cpu",
                 on_eval: Any = None, progress: Any = None, unlabelled_idx: np.ndarray | None = None) -> TrainResult:
    """Adam on random batches of ``train_idx`` for ``settings.num_steps`` steps; every ``eval_every`` steps
    the map is scored on (up to ``num_val`` of) ``val_idx`` and the best weights are kept. A marginal
    map also learns each step from as many of ``unlabelled_idx``, their actions unused.

    ``on_eval(step, metrics)`` is called with each evaluation; ``progress`` is a tqdm-like bar."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    mapper = ActionToLatent(cfg).to(device).train()
    unknown = mapper.unknown_action if cfg.marginal else None
    if cfg.marginal and (unlabelled_idx is None or unlabelled_idx.size == 0):
        raise ValueError("a marginal map needs unlabelled pairs")
    optimizer = torch.optim.Adam(mapper.parameters(), lr=settings.learning_rate)
    val_probe = val_idx if val_idx.shape[0] <= settings.num_val else \
        np.sort(rng.choice(val_idx, settings.num_val, replace=False))
    best = (-1.0, 0, {k: v.clone() for k, v in mapper.state_dict().items()})
    history = []
    for step in range(1, settings.num_steps + 1):
        idx = torch.from_numpy(train_idx[rng.integers(train_idx.shape[0], size=settings.batch_size)])
        unlabelled = None
        if unknown is not None:
            u = torch.from_numpy(unlabelled_idx[rng.integers(unlabelled_idx.shape[0], size=settings.batch_size)])
            unlabelled = data.batch(u, device, unknown_action=unknown)
        _, metrics = train_step(mapper, optimizer, *data.batch(idx, device), unlabelled=unlabelled,
                                offset_penalty=settings.offset_penalty)
        if step % settings.eval_every == 0 or step == settings.num_steps:
            metrics.update(evaluate_mapper(mapper, data, val_probe).metrics)
            history.append({"step": float(step), **metrics})
            if metrics["accuracy"] > best[0]:
                best = (metrics["accuracy"], step, {k: v.clone() for k, v in mapper.state_dict().items()})
            if on_eval is not None:
                on_eval(step, metrics)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{metrics['loss']:.3f}", best_acc=f"{max(best[0], 0):.3f}", refresh=False)
    mapper.load_state_dict(best[2])
    return TrainResult(mapper=mapper.eval(), best_step=best[1], best_accuracy=best[0], history=history)


# ============================================================================ reports

def plot_confusion(path: str | os.PathLike, evaluation: MapperEvaluation, names: Sequence[str], num_codes: int,
                   title: str = "") -> None:
    """Per latent position: action against the encoder's code, and action against the map's code."""
    plt = pyplot()
    panels = min(evaluation.truth.shape[1], MAX_CONFUSION_PANELS)
    truth = code_counts(evaluation.actions, evaluation.truth, len(names), num_codes)
    pred = code_counts(evaluation.actions, evaluation.predicted, len(names), num_codes)
    fig, axes = plt.subplots(panels, 2, figsize=(2 + 0.7 * num_codes, 0.5 + 2.2 * panels), squeeze=False)
    for pos in range(panels):
        code_heatmap(axes[pos, 0], truth[:, pos], names, f"encoder's code, position {pos}")
        code_heatmap(axes[pos, 1], pred[:, pos], names, f"map's code, position {pos}")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def write_sweep(csv_path: str | os.PathLike, png_path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """Accuracy against the number of labelled pairs: a CSV and a log-x plot, one line per variant."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    text = buf.getvalue()
    atomic_write(csv_path, lambda tmp: Path(tmp).write_text(text))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for variant in dict.fromkeys(r["variant"] for r in rows):
        pts = [(r["labelled_pairs"], r["accuracy"], r["step_accuracy"]) for r in rows if r["variant"] == variant]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{variant}: per position")
        if any(p[1] != p[2] for p in pts):
            ax.plot([p[0] for p in pts], [p[2] for p in pts], marker="x", ls="--", label=f"{variant}: whole step")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training pairs")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, png_path)


# ============================================================================ end to end through the world model

def end_to_end_steps(val_idx: np.ndarray, count: int, seed: int) -> np.ndarray:
    """The validation pairs the end-to-end check runs on: ``count`` of ``val_idx`` (all, if fewer) drawn
    with ``seed``, in order; the same ones for every map and world model given the same pairs."""
    return np.sort(np.random.default_rng(seed).choice(val_idx, min(count, val_idx.size), replace=False))


@torch.no_grad()
def end_to_end(mapper: ActionToLatent, world_model: Any, pairs: PairSet, idx: np.ndarray, batch_size: int = 16,
               progress: Any = None) -> dict[str, float]:
    """From real context frames, does the frame the world model predicts from the mapped latent equal,
    pixel for pixel, the one it predicts from the encoder's latent? Both at temperature 0.

    Returns ``same_frame`` (that share), ``same_code`` (share of steps whose codes agree), and how often
    each prediction equals the real next frame (``exact_encoder``, ``exact_mapped``)."""
    check_latent_shape(mapper.config, world_model.config)
    if pairs.context_index.shape[1] != world_model.config.context_frames:
        raise UserError(f"the pairs hold {pairs.context_index.shape[1]} context frames per step, but the world model "
                        f"takes {world_model.config.context_frames}")
    if (pairs.codes.shape[1], pairs.num_codes) != (world_model.config.num_latents, world_model.config.num_codes):
        raise UserError(f"the pairs' codes ({pairs.codes.shape[1]} per step, of {pairs.num_codes}) come from another "
                        f"world model than this one ({world_model.config.num_latents} of {world_model.config.num_codes})")
    palette = torch.from_numpy(pairs.palette)
    history = pairs.action_history(mapper.history_length)
    state = pairs.state_index(frames_kept(mapper, pairs.context_index.shape[1]))   # (N, >= C)
    same_frame = same_code = exact_enc = exact_map = 0
    for start in range(0, idx.shape[0], batch_size):
        b = idx[start:start + batch_size]
        context = torch.from_numpy(pairs.frames[pairs.context_index[b]])                      # (b, C, H, W) indices
        truth = torch.from_numpy(pairs.frames[pairs.next_index[b]]).long()                    # (b, H, W)
        actions = torch.from_numpy(pairs.actions[b])
        encoder_codes = torch.from_numpy(pairs.codes[b])                                      # (b, L)
        mapped = mapper.sample_codes(actions, palette[torch.from_numpy(pairs.frames[state[b]]).long()],
                                     history=torch.from_numpy(history[b])).cpu()              # (b, L)
        device = world_model.device
        from_encoder = world_model.predict_next(context.to(device), encoder_codes.to(device)).cpu()  # (b, H, W)
        agree = (mapped == encoder_codes).all(1)
        from_map = from_encoder.clone()
        if (~agree).any():  # equal codes give equal frames: decode only where they differ
            from_map[~agree] = world_model.predict_next(context[~agree].to(device), mapped[~agree].to(device)).cpu()
        same = (from_map == from_encoder).flatten(1).all(1)
        same_frame += int(same.sum())
        same_code += int(agree.sum())
        exact_enc += int((from_encoder == truth).flatten(1).all(1).sum())
        exact_map += int((from_map == truth).flatten(1).all(1).sum())
        if progress is not None:
            progress.update(len(b))
    n = max(1, idx.shape[0])
    return {"e2e_same_frame": same_frame / n, "e2e_same_code": same_code / n,
            "e2e_exact_encoder": exact_enc / n, "e2e_exact_mapped": exact_map / n, "e2e_steps": float(idx.shape[0])}
