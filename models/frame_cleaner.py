"""The frame cleaner: after every step of the neural game, the frame the world model drew is mapped,
with the frames before it, to the nearest frame the real game shows.

Why it exists: the decoder chooses every pixel on its own and starts from a copy of the last frame,
so a paddle it once drew 4 px short stays short, shrinks again at the next contact and is gone; a
per-pixel decoder unsure where the paddle is cannot keep it whole. The cleaner's task is narrower
than the decoder's (no dynamics: the frame to clean is already there), and it sees the frames before,
which show the paddle whole. It learns from real frames damaged the way the model's errors look
(``models.breakout_damage``) and from the world model's own one-step frames, always against the
real frame.

It is the world model's decoder network (``WorldModel``) with its last input frame being the one to
clean, and one learned vector in place of the latent action; training starts from the trained
decoder's features and gives back the frame it is shown until it has learned otherwise. Frames are palette indices, as everywhere in the world model."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.breakout_damage import Palette, erase_paddle_end, random_damage
from models.checkpoint import CheckpointError, load_model
from models.latent_action import LatentActionConfig, LatentActionModel, WorldModel, pixel_loss, unfold_frames

STAGE = "frame_cleaner"


class FrameCleaner(nn.Module):
    """(frames before (B, C - 1, H, W), drawn frame (B, H, W)) -> cleaned frame (B, H, W), palette indices,
    where C is the world model's ``context_frames``."""

    def __init__(self, cfg: LatentActionConfig):
        super().__init__()
        self.config = cfg
        self.net = WorldModel(cfg)
        rows, cols = cfg.latent_grid
        self.latent = nn.Parameter(torch.zeros(1, cfg.code_dim, rows, cols))

    @property
    def history_length(self) -> int:
        return self.config.context_frames - 1

    def logits(self, history: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
        """Folded palette logits (B, K, fold^2, h, w), trained with the decoder's change weight."""
        frames = torch.cat([history, drawn[:, None].to(history.dtype)], dim=1)      # (B, C, H, W)
        return self.net(frames, self.latent.expand(frames.shape[0], -1, -1, -1))

    def loss(self, history: torch.Tensor, drawn: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against the real frame, the pixels that differ from the drawn one weighted up."""
        return pixel_loss(self.config, self.net.table, self.logits(history, drawn), drawn, real)

    def clean(self, history: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
        """The most likely real frame, (B, H, W) int64."""
        prediction = self.net.unweighted(self.logits(history, drawn), drawn)
        return unfold_frames(prediction.max(1).indices, self.config)


def cleaner_from_world_model(model: LatentActionModel) -> FrameCleaner:
    """A cleaner whose network has the world model's decoder's features and an output layer of zeros,
    so that it starts by giving back the frame it is shown: training then only has to learn repairs
    (started as the decoder, it first had to unlearn moving the frame on one step)."""
    cleaner = FrameCleaner(model.config)
    cleaner.net.load_state_dict(model.decoder.state_dict())
    nn.init.zeros_(cleaner.net.head.weight)
    nn.init.zeros_(cleaner.net.head.bias)
    return cleaner.to(model.device)


def load_frame_cleaner(path: str | os.PathLike, world_config: LatentActionConfig,
                       device: str | torch.device = "cpu") -> FrameCleaner:
    """The cleaner in ``path``, in eval mode; one sentence when the file is of another stage or its
    frames (size, palette, context) differ from the world model's."""
    def same_frames(cfg: LatentActionConfig) -> None:
        if any(getattr(cfg, k) != getattr(world_config, k) for k in ("palette", "height", "width", "context_frames")):
            raise CheckpointError(f"frame cleaner {path} was trained for other frames than the world model's "
                                  f"(palette, size or context frames differ)")

    return load_model(path, STAGE, LatentActionConfig, FrameCleaner, device, check=same_frames)


@dataclass
class CleanerBatch:
    """What one training or validation step sees; palette indices."""
    history: torch.Tensor   # (B, C - 1, H, W) real frames before
    drawn: torch.Tensor     # (B, H, W) the frame to clean: the world model's, or the real one damaged
    real: torch.Tensor      # (B, H, W)
    damaged: torch.Tensor   # (B,) bool: the frame to clean is a damaged real frame


@torch.no_grad()
def cleaner_batch(world: LatentActionModel, context: np.ndarray, real: np.ndarray, palette: Palette,
                  damage_share: float, rng: np.random.Generator) -> CleanerBatch:
    """From windows of C real frames (B, C, H, W) and the real frame after each (B, H, W): in a
    ``damage_share`` of them the frame to clean is the real one damaged (``random_damage``), in the
    others the world model's frame drawn from the real context with the encoder's code of the real
    step, as the game draws it when the map is right."""
    device = world.device
    damaged = rng.random(real.shape[0]) < damage_share
    drawn = np.empty_like(real)
    for i in np.flatnonzero(damaged):
        drawn[i] = random_damage(real[i], palette, rng, previous=context[i, -1])
    keep = np.flatnonzero(~damaged)
    if keep.size:
        ctx = torch.from_numpy(context[keep]).to(device)
        nxt = torch.from_numpy(real[keep]).to(device)
        drawn[keep] = world.predict_next(ctx, world.encode_latents(ctx, nxt)).to(torch.uint8).cpu().numpy()
    return CleanerBatch(history=torch.from_numpy(context[:, 1:]).to(device), drawn=torch.from_numpy(drawn).to(device),
                        real=torch.from_numpy(real).to(device), damaged=torch.from_numpy(damaged).to(device))


def train_step(cleaner: FrameCleaner, optimizer: torch.optim.Optimizer, batch: CleanerBatch,
               max_grad_norm: float = 1.0) -> tuple[float, dict[str, float]]:
    loss = cleaner.loss(batch.history, batch.drawn, batch.real)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(cleaner.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item(), {"loss": loss.item(), "grad_norm": float(grad_norm)}


def exact(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) bool: frames (B, H, W) equal in every pixel."""
    return (a == b).flatten(1).all(dim=1)


@torch.no_grad()
def evaluate(cleaner: FrameCleaner, world: LatentActionModel, context: np.ndarray, real: np.ndarray,
             palette: Palette, seed: int = 0, batch_size: int = 32) -> dict[str, float]:
    """On fixed windows: how often the world model's one-step frame is exact before and after
    cleaning, how often a randomly damaged real frame is repaired exactly, how often a real frame
    passes untouched, and how often a paddle with 4 px erased at one end comes back whole."""
    was_training = cleaner.training
    cleaner.eval()
    rng = np.random.default_rng(seed)
    counts = {k: 0.0 for k in ("drawn_exact", "cleaned_exact", "damaged_repaired", "real_untouched", "paddle_4px_repaired")}
    n = real.shape[0]
    for start in range(0, n, batch_size):
        ctx, nxt = context[start:start + batch_size], real[start:start + batch_size]
        drawn = cleaner_batch(world, ctx, nxt, palette, 0.0, rng)
        damaged = cleaner_batch(world, ctx, nxt, palette, 1.0, rng)
        erased = torch.from_numpy(np.stack([erase_paddle_end(f, palette, 4, bool(rng.random() < 0.5)) for f in nxt]))
        truth = drawn.real
        counts["drawn_exact"] += exact(drawn.drawn, truth).sum().item()
        counts["cleaned_exact"] += exact(cleaner.clean(drawn.history, drawn.drawn), truth).sum().item()
        counts["damaged_repaired"] += exact(cleaner.clean(damaged.history, damaged.drawn), truth).sum().item()
        counts["real_untouched"] += exact(cleaner.clean(drawn.history, truth), truth).sum().item()
        counts["paddle_4px_repaired"] += exact(cleaner.clean(drawn.history, erased.to(truth.device)), truth).sum().item()
    cleaner.train(was_training)
    return {k: v / n for k, v in counts.items()}
