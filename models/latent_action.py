"""The latent action model: a VQ-VAE trained on video alone, never on action labels.

- The *encoder* looks at the context frames and the next frame and names what happened between them
  with a few discrete codes from a small codebook: the latent action.
- The *decoder* is the world model: from the context frames and the latent action it predicts the
  next frame. Stage 4 maps the real controls to latent actions; stage 5 plays the game inside it.

Frames enter as palette indices (uint8 (B, T, H, W), see ``models/frame_dataset.py``). Both nets first
fold each ``fold`` x ``fold`` block of pixels into channels (pixel unshuffle), which makes a full
210x160 frame cheap enough for a 2-core CPU. With ``pixels="palette"`` the decoder predicts each
pixel's palette colour (cross-entropy), which keeps the 2x4-pixel ball crisp; ``pixels="rgb"`` is the
original project's mean-squared-error regression of RGB values, kept for comparison.

Several context frames let the decoder see how the ball and the paddle are already moving, so the
latent only needs to carry what the frames cannot predict: mostly the player's move."""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from models import world_model_metrics as wm
from models.checkpoint import CheckpointError, load_checkpoint, load_model
from models.frame_dataset import Windows
from models.object_priors import ObjectPriors

STAGE = "latent_action"
COPY_LOGIT_INIT = 5.0      # start as "copy the last frame": softmax gives it ~95% before training
ENTROPY_TEMPERATURE = 0.1  # softness of the code assignment used only by the entropy term
USAGE_DECAY = 0.99         # EMA of how often each code is chosen, per training batch
ROLLOUT_STEPS = 4          # Genie's controllability figure is read at t = 4


@dataclass
class LatentActionConfig:
    """Everything needed to rebuild the model; stored in its checkpoint."""
    palette: list[list[int]] = field(default_factory=list)  # the game's RGB colours, from the training data
    height: int = 210
    width: int = 160
    context_frames: int = 4          # frames the decoder (and the encoder) see before the predicted one
    pixels: Literal["palette", "rgb"] = "palette"  # palette: colour class per pixel, cross-entropy; rgb: MSE
    fold: int = 4                    # pixel-unshuffle factor applied before the first convolution
    channels: list[int] = field(default_factory=lambda: [48, 96, 128])          # decoder width per level
    encoder_channels: list[int] = field(default_factory=lambda: [32, 64, 128])  # encoder width per level
    num_codes: int = 16              # codebook size
    code_dim: int = 32               # size of one code vector
    latent_grid: list[int] = field(default_factory=lambda: [1, 1])  # rows, columns of latent codes
    commitment_weight: float = 0.25
    # Pushes each batch to use the whole codebook. Kept small: natural classes of moves are uneven
    # (no move is most common), and a strong push splits them over codes by irrelevant detail;
    # 0.01 trained to twice the exact frames of 0.1 in a 1,500-step comparison.
    entropy_weight: float = 0.01
    dead_code_share: float = 0.05    # a code chosen less than this share of 1/num_codes is reset
    copy_last_frame: bool = True     # the decoder's output starts from the last context frame
    changed_pixel_weight: float = 5.0   # loss weight of pixels that differ from the last context frame
    # Read the palette logits as if every pixel had weighed the same in the loss (see unweighted()).
    undo_change_weight: bool = True

    def __post_init__(self) -> None:
        for name in ("height", "width", "context_frames", "fold", "num_codes", "code_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if len(self.latent_grid) != 2 or min(self.latent_grid) < 1:
            raise ValueError(f"latent_grid must be two positive numbers (rows, columns), got {self.latent_grid}")
        if not self.channels or not self.encoder_channels:
            raise ValueError("channels and encoder_channels need at least one level")
        if self.pixels not in ("palette", "rgb"):
            raise ValueError(f"pixels must be 'palette' or 'rgb', got {self.pixels!r}")

    @property
    def num_latents(self) -> int:
        """Codes per latent action (rows x columns of the latent grid)."""
        return self.latent_grid[0] * self.latent_grid[1]

    @property
    def num_colours(self) -> int:
        return len(self.palette)


MODEL_PRESETS: dict[str, dict] = {
    # The default: four context frames, palette classes, a handful of codes.
    "default": {},
    # The original project's shape: 256 codes of size 128 on a 5x7 grid (7 rows by 5 columns, as the
    # frame is taller than wide), one context frame, RGB regressed with MSE, no copy structure.
    "original": dict(context_frames=1, pixels="rgb", num_codes=256, code_dim=128, latent_grid=[7, 5],
                     copy_last_frame=False, changed_pixel_weight=1.0),
    # Small enough to train in a couple of minutes on a CPU.
    "quick": dict(channels=[32, 64, 96], encoder_channels=[16, 32, 64], code_dim=16),
    # For tests: a few thousand parameters.
    "tiny": dict(context_frames=2, channels=[8, 16], encoder_channels=[8, 16], num_codes=8, code_dim=8),
}


def model_config(preset: str, palette: np.ndarray | list, **overrides) -> LatentActionConfig:
    """A preset's config with the game's palette and any non-None overrides."""
    values = {**MODEL_PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return LatentActionConfig(palette=np.asarray(palette, dtype=np.int64).tolist(), **values)


def padded_size(cfg: LatentActionConfig) -> tuple[int, int]:
    """Frame size padded so every level of both nets halves evenly: (rows, columns)."""
    levels = max(len(cfg.channels), len(cfg.encoder_channels)) - 1
    step = cfg.fold * 2 ** levels
    return math.ceil(cfg.height / step) * step, math.ceil(cfg.width / step) * step


# --------------------------------------------------------------------------------------- layers
#
# Both nets work on *folded* frames: each fold x fold block of pixels becomes one position, so a
# frame of palette indices (B, H, W) is held as (B, fold^2, h, w) with h = Hp / fold, w = Wp / fold
# (Hp, Wp: the padded size). Padding pixels hold the index K (one past the palette) and count for
# nothing. The decoder's output stays folded, (B, K or 3, fold^2, h, w), through the loss.

def fold_frames(frames: torch.Tensor, cfg: LatentActionConfig) -> torch.Tensor:
    """Palette indices (B, T, H, W) -> (B, T, fold^2, h, w) int64, padded with the index K.

    The shuffle runs on uint8 (an eighth of the memory traffic of int64)."""
    rows, cols = padded_size(cfg)
    f = cfg.fold
    x = F.pad(frames.to(torch.uint8), (0, cols - cfg.width, 0, rows - cfg.height), value=cfg.num_colours)
    b, t = x.shape[:2]
    x = x.reshape(b, t, rows // f, f, cols // f, f).permute(0, 1, 3, 5, 2, 4)  # (B, T, f, f, h, w)
    return x.reshape(b, t, f * f, rows // f, cols // f).long()


def unfold_frames(folded: torch.Tensor, cfg: LatentActionConfig) -> torch.Tensor:
    """(B, fold^2, h, w) -> (B, H, W), dropping the padding: the inverse of ``fold_frames`` for one frame."""
    b, _, h, w = folded.shape
    f = cfg.fold
    x = folded.reshape(b, f, f, h, w).permute(0, 3, 1, 4, 2).reshape(b, h * f, w * f)
    return x[:, :cfg.height, :cfg.width]


def unfold_channels(folded: torch.Tensor, cfg: LatentActionConfig) -> torch.Tensor:
    """(B, K, fold^2, h, w) -> (B, K, H, W): ``unfold_frames`` of each channel."""
    b, k = folded.shape[:2]
    return unfold_frames(folded.flatten(0, 1), cfg).unflatten(0, (b, k))


def palette_table(cfg: LatentActionConfig) -> torch.Tensor:
    """(K + 1, 3) RGB in [0, 1] of each palette index; the padding index K is black."""
    return torch.cat([torch.tensor(cfg.palette, dtype=torch.float32) / 255.0, torch.zeros(1, 3)])


def folded_rgb(folded: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, T, fold^2, h, w) indices -> (B, T, 3, fold^2, h, w) RGB in [0, 1]."""
    return F.embedding(folded, table).permute(0, 1, 5, 2, 3, 4)


class FrameInput(nn.Module):
    """Palette-index frames (B, T, H, W) -> folded RGB features (B, T * 3 * fold^2, h, w).

    The input representation is fixed (each pixel's palette RGB): a learned per-pixel embedding
    computes the same thing after the first 1x1 convolution but its backward pass cost a CPU
    training step ~15%."""

    def __init__(self, cfg: LatentActionConfig, num_frames: int):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("table", palette_table(cfg), persistent=False)
        self.out_channels = num_frames * 3 * cfg.fold ** 2

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = folded_rgb(fold_frames(frames, self.cfg), self.table)  # (B, T, 3, f^2, h, w)
        return x.reshape(x.shape[0], -1, *x.shape[-2:])            # (B, T * 3 * f^2, h, w)


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1)


def down_block(cin: int, cout: int) -> nn.Sequential:
    """Halve the resolution, then one more convolution."""
    return nn.Sequential(conv3x3(cin, cout, stride=2), nn.ReLU(inplace=True), conv3x3(cout, cout), nn.ReLU(inplace=True))


def stem(cin: int, cout: int) -> nn.Sequential:
    """1x1 mixing of the folded pixels (cheap on hundreds of input channels), then a 3x3 convolution."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True), conv3x3(cout, cout), nn.ReLU(inplace=True))


# ------------------------------------------------------------------------------------ quantizer

@dataclass
class Quantized:
    latent: torch.Tensor        # (B, D, rows, cols) code vectors, straight-through to the encoder
    codes: torch.Tensor         # (B, rows * cols) int64
    vectors: torch.Tensor       # (B * rows * cols, D) normalised encoder outputs, detached
    vq_loss: torch.Tensor       # codebook + commitment
    entropy_loss: torch.Tensor  # mean per-vector entropy + (log K - batch entropy) of the soft assignment, >= 0


class VectorQuantizer(nn.Module):
    """Nearest-code quantizer on unit vectors (cosine distance), with a straight-through gradient.

    Losses: the codebook term pulls chosen codes to the encoder outputs, the commitment term
    (weight ``commitment_weight``) the outputs to their codes. The entropy term is computed from a
    soft assignment, so unlike an argmin histogram it has a gradient: it rewards a confident choice
    per vector and an even use of the codebook over the batch. Codes that fall out of use are reset
    onto recent encoder outputs by ``reset_dead_codes``."""

    def __init__(self, num_codes: int, code_dim: int, commitment_weight: float = 0.25):
        super().__init__()
        self.commitment_weight = commitment_weight
        self.codebook = nn.Parameter(F.normalize(torch.randn(num_codes, code_dim), dim=1))
        self.register_buffer("usage", torch.zeros(num_codes))  # codes unused by the first reset are reset

    @property
    def num_codes(self) -> int:
        return self.codebook.shape[0]

    def book(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=1)  # (K, D)

    def forward(self, z: torch.Tensor) -> Quantized:
        b, d, rows, cols = z.shape
        flat = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, d), dim=1)   # (N, D), N = B * rows * cols
        book = self.book()                                                 # (K, D)
        similarity = flat @ book.t()                                       # (N, K)
        codes = similarity.argmax(dim=1)                                   # (N,)
        chosen = book[codes]                                               # (N, D)
        vq_loss = F.mse_loss(chosen, flat.detach()) + self.commitment_weight * F.mse_loss(flat, chosen.detach())
        soft = F.softmax(similarity / ENTROPY_TEMPERATURE, dim=1)          # (N, K)
        per_vector = -(soft * torch.log(soft + 1e-9)).sum(1).mean()
        mean_soft = soft.mean(0)
        batch = -(mean_soft * torch.log(mean_soft + 1e-9)).sum()
        unused = math.log(self.num_codes) - batch                          # 0 when the batch uses every code evenly
        if self.training:
            with torch.no_grad():
                share = torch.bincount(codes, minlength=self.num_codes).float() / codes.numel()
                self.usage.mul_(USAGE_DECAY).add_(share, alpha=1 - USAGE_DECAY)
        straight = flat + (chosen - flat).detach()                         # value of the code, gradient to z
        latent = straight.reshape(b, rows, cols, d).permute(0, 3, 1, 2)    # (B, D, rows, cols)
        return Quantized(latent=latent, codes=codes.reshape(b, rows * cols), vectors=flat.detach(),
                         vq_loss=vq_loss, entropy_loss=per_vector + unused)

    def lookup(self, codes: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        """(B, rows * cols) codes -> (B, D, rows, cols) code vectors."""
        return self.book()[codes].reshape(codes.shape[0], rows, cols, -1).permute(0, 3, 1, 2)

    @torch.no_grad()
    def reset_dead_codes(self, vectors: torch.Tensor, dead_share: float, generator: torch.Generator | None = None) -> int:
        """Move every code used less than ``dead_share / num_codes`` of the time onto one of the
        given encoder outputs (N, D), slightly jittered; return how many were moved."""
        dead = torch.nonzero(self.usage < dead_share / self.num_codes).flatten()
        if dead.numel() == 0:
            return 0
        pick = torch.randint(vectors.shape[0], (dead.numel(),), generator=generator).to(vectors.device)
        noise = 0.01 * torch.randn(dead.numel(), vectors.shape[1], generator=generator).to(vectors.device)
        self.codebook[dead] = F.normalize(vectors[pick] + noise, dim=1)
        self.usage[dead] = 1.0 / self.num_codes
        return int(dead.numel())


def grow_codebook(state: dict[str, torch.Tensor], num_codes: int) -> dict[str, torch.Tensor]:
    """A model's weights with its codebook grown to ``num_codes``. The new codes start unused, so the
    next reset of unused codes puts them on encoder outputs, where training can give them a meaning
    the old codes lack; the old codes keep theirs."""
    book, usage = state["quantizer.codebook"], state["quantizer.usage"]
    extra = num_codes - book.shape[0]
    if extra < 0:
        raise CheckpointError(f"a codebook of {book.shape[0]} codes can grow, not shrink to {num_codes} codes")
    new_codes = F.normalize(torch.randn(extra, book.shape[1], dtype=book.dtype), dim=1)
    return {**state, "quantizer.codebook": torch.cat([book, new_codes]),
            "quantizer.usage": torch.cat([usage, usage.new_zeros(extra)])}


# ----------------------------------------------------------------------------------- the nets

class LatentEncoder(nn.Module):
    """(context, next frame) -> continuous latent (B, D, rows, cols), before quantization.

    The features are max-pooled over the places where the next frame differs from the last context
    frame (and their neighbours) only. Pooled over the whole frame, the bricks, walls and score,
    the same in every frame, swamp the few pixels where the move shows, every input gets the same
    latent and the codebook collapses to one code."""

    def __init__(self, cfg: LatentActionConfig):
        super().__init__()
        c = cfg.encoder_channels
        self.cfg = cfg
        self.input = FrameInput(cfg, cfg.context_frames + 1)
        self.stem = stem(self.input.out_channels, c[0])
        self.down = nn.Sequential(*[down_block(c[i], c[i + 1]) for i in range(len(c) - 1)])
        self.grid = tuple(cfg.latent_grid)
        # Batch normalisation centres the pooled features: max-pooled ReLU features share a large
        # positive part, which made every latent point the same way (cosine ~0.998 at initialisation).
        self.norm = nn.BatchNorm2d(c[-1])
        self.out = nn.Conv2d(c[-1], cfg.code_dim, 1, bias=False)

    def forward(self, context: torch.Tensor, next_frame: torch.Tensor) -> torch.Tensor:
        x = self.input(torch.cat([context, next_frame[:, None]], dim=1))  # (B, (C+1) 3 f^2, h, w)
        x = self.down(self.stem(x))                                        # (B, c[-1], h', w')
        x = x * self.change_mask(context[:, -1], next_frame, x.shape[-2:])  # ReLU features: >= 0
        return self.out(self.norm(F.adaptive_max_pool2d(x, self.grid)))    # (B, D, rows, cols)

    def change_mask(self, last: torch.Tensor, next_frame: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """(B, 1, h', w') float: 1 at feature cells where some pixel changed, grown by one cell."""
        folded = fold_frames(torch.stack([last, next_frame], dim=1), self.cfg)      # (B, 2, f^2, h, w)
        changed = (folded[:, 0] != folded[:, 1]).any(dim=1, keepdim=True).float()   # (B, 1, h, w)
        return F.max_pool2d(F.adaptive_max_pool2d(changed, size), 3, stride=1, padding=1)


class WorldModel(nn.Module):
    """The decoder: (context frames, latent action) -> next frame, folded: palette logits
    (B, K, fold^2, h, w) or RGB in [0, 1] (B, 3, fold^2, h, w).

    A small U-Net on the folded frames; the latent action scales and shifts the features at every
    level of the upward path (FiLM: a multiplicative path lets one code switch features on and off),
    and skip connections are added (not concatenated) to keep it cheap. With
    ``copy_last_frame`` the output starts as the last context frame and the net learns the change."""

    def __init__(self, cfg: LatentActionConfig):
        super().__init__()
        c = cfg.channels
        self.cfg = cfg
        self.input = FrameInput(cfg, cfg.context_frames)
        self.stem = stem(self.input.out_channels, c[0])
        self.down = nn.ModuleList(down_block(c[i], c[i + 1]) for i in range(len(c) - 1))
        self.latent_in = nn.ModuleList(nn.Conv2d(cfg.code_dim, 2 * ci, 1) for ci in c)  # scale and shift
        # Upward: a 3x3 convolution at the coarse level, then nearest upsampling (cheaper than the other order).
        self.up = nn.ModuleList(conv3x3(c[i + 1], c[i]) for i in range(len(c) - 1))
        self.merge = nn.ModuleList(conv3x3(ci, ci) for ci in c)
        self.out_channels = cfg.num_colours if cfg.pixels == "palette" else 3
        self.head = nn.Conv2d(c[0], self.out_channels * cfg.fold ** 2, 1)
        if cfg.copy_last_frame and cfg.pixels == "palette":
            self.copy_logit = nn.Parameter(torch.tensor(COPY_LOGIT_INIT))
        self.register_buffer("table", palette_table(cfg), persistent=False)
        self.register_buffer("colours", torch.arange(cfg.num_colours).view(1, -1, 1, 1, 1), persistent=False)

    def forward(self, context: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) indices, (B, D, rows, cols) latent -> (B, K or 3, fold^2, h, w)."""
        cfg = self.cfg
        skips = [self.stem(self.input(context))]              # level 0: (B, c0, h, w)
        for down in self.down:
            skips.append(down(skips[-1]))                     # level i: (B, c_i, h / 2^i, w / 2^i)
        x = skips[-1]
        for level in range(len(skips) - 1, -1, -1):
            if level < len(skips) - 1:
                x = F.interpolate(F.relu(self.up[level](x)), scale_factor=2.0, mode="nearest") + skips[level]
            action = F.interpolate(self.latent_in[level](latent), size=x.shape[-2:], mode="nearest")
            scale, shift = action.chunk(2, dim=1)             # (B, c_level, h_level, w_level) each
            x = x * (1 + scale) + shift
            x = F.relu(self.merge[level](x))
        b, _, h, w = x.shape
        out = self.head(x).reshape(b, self.out_channels, cfg.fold ** 2, h, w)   # (B, K or 3, f^2, h, w)
        if not cfg.copy_last_frame:
            return torch.sigmoid(out) if cfg.pixels == "rgb" else out
        last = fold_frames(context[:, -1:], cfg)              # (B, 1, f^2, h, w), padding = K
        if cfg.pixels == "palette":
            return out + self.copy_logit * (last == self.colours).float()
        return folded_rgb(last, self.table)[:, 0] + out

    def unweighted(self, prediction: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Palette logits (B, K, fold^2, h, w) with the loss's weight on changed pixels taken out,
        given the last context frame's indices (B, H, W).

        Weighing a change w times more in the cross-entropy teaches the decoder w times the odds of a
        change: it draws one (a ball served from a code that serves only now and then) once it is
        more than 1 / (1 + w) likely. Adding log w to the logit of the last frame's colour restores the
        odds, so the most likely colour is drawn. RGB outputs and unweighted losses pass unchanged."""
        cfg = self.cfg
        if cfg.pixels != "palette" or not cfg.undo_change_weight or cfg.changed_pixel_weight == 1.0:
            return prediction
        unchanged = fold_frames(last[:, None], cfg) == self.colours   # (B, K, fold^2, h, w)
        return prediction + math.log(cfg.changed_pixel_weight) * unchanged.float()


def pixel_loss(cfg: LatentActionConfig, table: torch.Tensor, prediction: torch.Tensor, last: torch.Tensor,
               target: torch.Tensor) -> torch.Tensor:
    """Per-pixel cross-entropy (palette) or squared error (rgb) of the folded prediction, weighted
    towards the pixels that change: ~0.2% of a Breakout frame changes per step, and those pixels
    are the whole game. Padding pixels weigh nothing."""
    target_f = fold_frames(torch.stack([target, last], dim=1), cfg)  # (B, 2, f^2, h, w)
    target_f, last_f = target_f[:, 0], target_f[:, 1]                # (B, f^2, h, w) each
    if cfg.pixels == "palette":
        per_pixel = F.cross_entropy(prediction, target_f, reduction="none", ignore_index=cfg.num_colours)
    else:
        truth = folded_rgb(target_f[:, None], table)[:, 0]  # (B, 3, f^2, h, w)
        per_pixel = (prediction - truth).pow(2).mean(1)                   # (B, f^2, h, w)
    weight = 1.0 + (cfg.changed_pixel_weight - 1.0) * (target_f != last_f).float()
    weight = weight * (target_f != cfg.num_colours).float()
    return (weight * per_pixel).sum() / weight.sum()


# ------------------------------------------------------------------------------------- the model

@dataclass
class Forward:
    """One pass of encoder, quantizer and decoder on (context, next frame)."""
    prediction: torch.Tensor    # folded: (B, K, fold^2, h, w) logits, or (B, 3, fold^2, h, w) RGB in [0, 1]
    codes: torch.Tensor         # (B, num_latents)
    quantized: Quantized
    recon_loss: torch.Tensor
    loss: torch.Tensor          # recon + vq + entropy_weight * entropy


class LatentActionModel(nn.Module):
    def __init__(self, cfg: LatentActionConfig):
        super().__init__()
        if cfg.num_colours < 1:
            raise ValueError("the config needs the game's palette (at least one colour)")
        self.config = cfg
        self.encoder = LatentEncoder(cfg)
        self.quantizer = VectorQuantizer(cfg.num_codes, cfg.code_dim, cfg.commitment_weight)
        self.decoder = WorldModel(cfg)
        self.register_buffer("palette", torch.tensor(cfg.palette, dtype=torch.uint8), persistent=False)
        self.latents_frozen = False
        self.object_priors: ObjectPriors | None = None   # set for Breakout by load_latent_action_model
        self.game: str | None = None                       # the game its checkpoint names, if any
        self.play_decoder: torch.jit.ScriptModule | None = None   # set by freeze_for_play

    def freeze_latent_actions(self) -> None:
        """Keep the encoder and codebook as they are and leave only the decoder to train, so the codes
        stage 4 already collected keep their meaning. Both stay in eval mode from now on: in training
        mode the encoder's batch norm would read codes from batch statistics and the quantizer would
        count their use."""
        self.latents_frozen = True
        self.encoder.requires_grad_(False)
        self.quantizer.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> LatentActionModel:
        super().train(mode)
        if self.latents_frozen:
            self.encoder.eval()
            self.quantizer.eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.quantizer.codebook.device

    def forward(self, context: torch.Tensor, next_frame: torch.Tensor) -> Forward:
        """The training objective on (B, C, H, W) context and (B, H, W) next frame, palette indices."""
        quantized = self.quantizer(self.encoder(context, next_frame))
        prediction = self.decoder(context, quantized.latent)
        recon = self.reconstruction_loss(prediction, context[:, -1], next_frame)
        loss = recon + quantized.vq_loss + self.config.entropy_weight * quantized.entropy_loss
        return Forward(prediction=prediction, codes=quantized.codes, quantized=quantized, recon_loss=recon, loss=loss)

    def reconstruction_loss(self, prediction: torch.Tensor, last: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``pixel_loss`` of the decoder's folded prediction against the next frame."""
        return pixel_loss(self.config, self.decoder.table, prediction, last, target)

    # ----- the interface later stages use

    def encode_latents(self, context: torch.Tensor, next_frame: torch.Tensor) -> torch.Tensor:
        """Latent action codes (B, num_latents) of the step from ``context`` (B, C, H, W) to ``next_frame`` (B, H, W)."""
        return self.quantizer(self.encoder(context, next_frame)).codes

    def decode(self, context: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The decoder's folded output for context (B, C, H, W) and codes (B, num_latents)."""
        rows, cols = self.config.latent_grid
        latent = self.quantizer.lookup(codes.long(), rows, cols)
        if self.play_decoder is not None and not torch.is_grad_enabled():
            return self.play_decoder(context, latent)
        return self.decoder(context, latent)

    def freeze_for_play(self) -> None:
        """Trace the decoder once, with its weights frozen in as constants, for ``decode`` to use
        wherever no gradient is taken. The outputs are the same; a game step is a few ms faster on
        2 CPU cores, as Python's per-layer overhead is gone. For a model that is done training: a
        later change to its weights does not reach the traced copy."""
        self.eval()
        cfg = self.config
        context = torch.zeros(1, cfg.context_frames, cfg.height, cfg.width, dtype=torch.uint8, device=self.device)
        codes = torch.zeros(1, cfg.num_latents, dtype=torch.long, device=self.device)
        with torch.no_grad():
            latent = self.quantizer.lookup(codes, *cfg.latent_grid)
            decoder = copy.deepcopy(self.decoder)     # frozen constants may share the weights' storage
            self.play_decoder = torch.jit.freeze(torch.jit.trace(decoder, (context, latent), check_trace=False))

    def predict_next(self, context: torch.Tensor, codes: torch.Tensor, temperature: float = 0.0,
                     generator: torch.Generator | None = None, whole_objects: bool = True) -> torch.Tensor:
        """Next frame's palette indices (B, H, W) int64 from context indices (B, C, H, W) and codes.

        Temperature 0 takes the most likely colour of each pixel; above 0, samples from the softmax
        (palette models). An RGB model's output is snapped to the nearest palette colour. With
        ``object_priors`` and ``whole_objects`` the paddle, the bricks and the ball are then drawn
        whole (``models/object_priors.py``)."""
        seen = context[:, -self.config.context_frames:]
        return self.draw(self.unweighted(self.decode(seen, codes), context[:, -1]), context, temperature,
                         generator, whole_objects)

    def draw(self, prediction: torch.Tensor, context: torch.Tensor, temperature: float = 0.0,
             generator: torch.Generator | None = None, whole_objects: bool = True) -> torch.Tensor:
        """Palette indices (B, H, W) of the frame the decoder's unweighted output (B, K, fold^2, h, w)
        shows after ``context`` (B, C, H, W), as ``predict_next`` draws it."""
        indices = self.prediction_indices(prediction, temperature, generator)
        if self.object_priors is None or not whole_objects or self.config.pixels != "palette":
            return indices
        return self.object_priors.apply(indices, unfold_channels(prediction, self.config), context)

    def unweighted(self, prediction: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """The decoder's ``WorldModel.unweighted``."""
        return self.decoder.unweighted(prediction, last)

    def prediction_indices(self, prediction: torch.Tensor, temperature: float = 0.0,
                           generator: torch.Generator | None = None) -> torch.Tensor:
        """Folded decoder output -> palette indices (B, H, W) int64."""
        if self.config.pixels == "rgb":
            return self.to_indices(self.prediction_rgb(prediction))
        if temperature <= 0:
            return unfold_frames(prediction.max(1).indices, self.config)  # max is ~4x faster than argmax here
        b, k, ff, h, w = prediction.shape
        probs = F.softmax(prediction / temperature, dim=1).permute(0, 2, 3, 4, 1).reshape(-1, k)
        sample = torch.multinomial(probs, 1, generator=generator).reshape(b, ff, h, w)
        return unfold_frames(sample, self.config)

    def prediction_rgb(self, prediction: torch.Tensor) -> torch.Tensor:
        """Folded decoder output -> uint8 RGB (B, H, W, 3): the most likely colours, or rounded RGB values."""
        if self.config.pixels == "palette":
            return self.to_rgb(self.prediction_indices(prediction))
        rgb = (prediction.clamp(0, 1) * 255).round().to(torch.uint8)          # (B, 3, f^2, h, w)
        return torch.stack([unfold_frames(rgb[:, c], self.config) for c in range(3)], dim=-1)

    def to_rgb(self, indices: torch.Tensor) -> torch.Tensor:
        """Palette indices (...) -> uint8 RGB (..., 3)."""
        return self.palette[indices.long()]

    def to_indices(self, rgb: torch.Tensor) -> torch.Tensor:
        """uint8 RGB (..., 3) -> nearest palette indices (...) int64."""
        dist = (rgb.float()[..., None, :] - self.palette.float()).pow(2).sum(-1)  # (..., K)
        return dist.argmin(-1)

    def random_codes(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniformly random latent actions (B, num_latents)."""
        return torch.randint(self.config.num_codes, (batch, self.config.num_latents), generator=generator).to(self.device)


def rollout(model: LatentActionModel, context: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Open loop: feed the model's own frames back. (B, C, H, W), codes (B, S, num_latents) -> (B, S, H, W)."""
    frames = []
    for step in range(codes.shape[1]):
        nxt = model.predict_next(context, codes[:, step])                 # (B, H, W)
        frames.append(nxt)
        context = torch.cat([context[:, 1:], nxt[:, None].to(context.dtype)], dim=1)
    return torch.stack(frames, dim=1)


def inferred_codes(model: LatentActionModel, context: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
    """Codes the encoder reads from real frames for each step: (B, C, H, W), (B, S, H, W) -> (B, S, num_latents)."""
    window = torch.cat([context, future], dim=1)
    c = context.shape[1]
    return torch.stack([model.encode_latents(window[:, s:s + c], window[:, s + c]) for s in range(future.shape[1])], dim=1)


# ----------------------------------------------------------------------------- training and checks

def check_train_batch(batch_size: int) -> None:
    """A training batch needs two windows or more: the encoder normalises its features over the batch."""
    if batch_size < 2:
        raise ValueError("--batch_size must be at least 2: the encoder normalises its features over the batch")


def train_step(net: nn.Module, optimizer: torch.optim.Optimizer, context: torch.Tensor, next_frame: torch.Tensor,
               reset_codes: bool = False, max_grad_norm: float = 1.0,
               generator: torch.Generator | None = None) -> tuple[float, dict[str, float]]:
    """One Adam step on (B, C, H, W) context and (B, H, W) next frames; ``net`` is the model or its
    DistributedDataParallel wrapper. With ``reset_codes``, unused codes are then reset."""
    out: Forward = net(context, next_frame)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), max_grad_norm)
    optimizer.step()
    model = unwrap(net)
    loss = out.loss.item()
    metrics = {
        "loss": loss,
        "recon_loss": out.recon_loss.item(),
        "vq_loss": out.quantized.vq_loss.item(),
        "entropy_loss": out.quantized.entropy_loss.item(),
        "grad_norm": float(grad_norm),
        "batch_perplexity": wm.codebook_perplexity(out.codes.flatten().cpu().numpy(), model.config.num_codes),
    }
    if reset_codes:
        metrics["codes_reset"] = float(reset_dead_codes(model, out.quantized.vectors, generator))
    return loss, metrics


def open_loop_step(net: nn.Module, optimizer: torch.optim.Optimizer, context: torch.Tensor, future: torch.Tensor,
                   max_grad_norm: float = 1.0) -> tuple[float, dict[str, float]]:
    """One Adam step on the decoder alone over the S steps of ``future`` (B, S, H, W), run open loop as
    in play: after the first step the context holds the frames the decoder drew itself, while each
    step's codes are the encoder's, read from the real frames, and its target is the real frame.

    One-step training only ever shows the decoder real context, so in play its own small mistakes
    (a paddle a pixel off, a faint ball) are inputs it has never seen, and they grow. Here it sees
    them and is asked to steer back (on the shipped model it did not help: results log). No gradient
    flows through a drawn frame (it is an argmax). The loss is the mean of the S steps'
    reconstruction losses; under torch.distributed the processes average their gradients."""
    model = unwrap(net)
    if not model.latents_frozen:
        raise ValueError("open-loop training trains the decoder alone: freeze the latent actions first")
    with torch.no_grad():
        codes = inferred_codes(model, context, future)                    # (B, S, num_latents)
    optimizer.zero_grad(set_to_none=True)
    steps = future.shape[1]
    losses = []
    for s in range(steps):
        prediction = model.decode(context, codes[:, s])
        loss = model.reconstruction_loss(prediction, context[:, -1], future[:, s])
        (loss / steps).backward()
        losses.append(loss.item())
        with torch.no_grad():
            drawn = model.prediction_indices(model.unweighted(prediction, context[:, -1]))
        context = torch.cat([context[:, 1:], drawn[:, None].to(context.dtype)], dim=1)
    params = [p for p in model.parameters() if p.grad is not None]
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for p in params:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    loss = sum(losses) / steps
    return loss, {"loss": loss, "recon_loss": loss, "first_step_loss": losses[0], "last_step_loss": losses[-1],
                  "grad_norm": float(grad_norm)}


def unwrap(net: nn.Module) -> LatentActionModel:
    """The model inside a DistributedDataParallel (or torch.compile) wrapper."""
    net = getattr(net, "module", net)
    return getattr(net, "_orig_mod", net)


def reset_dead_codes(model: LatentActionModel, vectors: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """Reset unused codes onto a batch's encoder outputs (N, D); under torch.distributed every process
    then takes process 0's codebook, so all copies stay identical."""
    count = model.quantizer.reset_dead_codes(vectors, model.config.dead_code_share, generator)
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(model.quantizer.codebook.data, src=0)
        dist.broadcast(model.quantizer.usage, src=0)
    return count


@dataclass
class Evaluation:
    metrics: dict[str, float]
    context: np.ndarray      # (N, H, W, 3) uint8 last context frame of each window
    truth: np.ndarray        # (N, H, W, 3) uint8 next frame
    prediction: np.ndarray   # (N, H, W, 3) uint8 the model's next frame with the encoder's latent


@torch.no_grad()
def evaluate(model: LatentActionModel, windows: Windows, batch_size: int = 32, rollout_windows: int = 64,
             seed: int = 0) -> Evaluation:
    """Reconstruction loss (val_loss) and world-model metrics on fixed windows, each beside the
    copy-last-frame baseline.

    One step uses the encoder's latent from the true next frame. When the windows hold at least 4
    future frames, the first ``rollout_windows`` of them also give Genie's controllability: PSNR at
    t = 4 of a rollout driven by the latents the encoder reads from the real frames, minus that of
    one driven by random latents."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    device = model.device
    loss_sum, codes, preds, inferred_t4, random_t4 = 0.0, [], [], [], []
    n = windows.context.shape[0]
    for start in range(0, n, batch_size):
        context = torch.from_numpy(windows.context[start:start + batch_size]).to(device)  # (b, C, H, W)
        future = torch.from_numpy(windows.future[start:start + batch_size]).to(device)    # (b, S, H, W)
        out = model(context, future[:, 0])
        loss_sum += out.recon_loss.item() * context.shape[0]
        codes.append(out.codes.cpu().numpy())
        drawn = model.unweighted(out.prediction, context[:, -1])
        preds.append((model.to_rgb(model.draw(drawn, context)) if model.config.pixels == "palette"
                      else model.prediction_rgb(drawn)).cpu().numpy())
        if future.shape[1] >= ROLLOUT_STEPS and start < rollout_windows:
            keep = min(context.shape[0], rollout_windows - start)
            context, future = context[:keep], future[:keep, :ROLLOUT_STEPS]
            inferred_t4.append(rollout(model, context, inferred_codes(model, context, future))[:, -1].cpu())
            random = torch.stack([model.random_codes(keep, generator) for _ in range(ROLLOUT_STEPS)], dim=1)
            random_t4.append(rollout(model, context, random)[:, -1].cpu())
    model.train(was_training)

    def rgb(indices: np.ndarray | torch.Tensor) -> np.ndarray:
        return model.to_rgb(torch.as_tensor(indices, device=device)).cpu().numpy()

    last = rgb(windows.context[:, -1])     # (N, H, W, 3)
    truth = rgb(windows.future[:, 0])      # (N, H, W, 3)
    pred = np.concatenate(preds)
    all_codes = np.concatenate(codes)
    metrics = {"val_loss": loss_sum / n}  # the world model's reconstruction loss
    metrics.update(wm.frame_metrics(pred, truth, last))
    metrics.update({f"copy_{k}": v for k, v in wm.frame_metrics(last, truth, last).items() if k != "changed_accuracy"})
    metrics["codebook_usage"] = wm.codebook_usage(all_codes, model.config.num_codes)
    metrics["codebook_perplexity"] = wm.codebook_perplexity(all_codes, model.config.num_codes)
    if inferred_t4:
        inferred, random = torch.cat(inferred_t4), torch.cat(random_t4)
        truth_t4 = rgb(windows.future[:len(inferred), ROLLOUT_STEPS - 1])
        metrics["delta_psnr_t4"] = wm.delta_psnr(truth_t4, rgb(inferred), rgb(random))
    return Evaluation(metrics=metrics, context=last, truth=truth, prediction=pred)


def load_latent_action_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LatentActionModel:
    """Rebuild the model from its checkpoint alone, in eval mode; a checkpoint of another stage or
    one that does not match its own config raises CheckpointError naming the file. A Breakout model
    (or one that names no game, with Breakout's paddle colour) draws its paddle, bricks and ball with
    the ``ObjectPriors``; set ``object_priors`` to None for the decoder alone."""
    payload = load_checkpoint(path, stage=STAGE, map_location="cpu")
    model = load_model(path, STAGE, LatentActionConfig, LatentActionModel, device, payload=payload)
    model.game = payload.get("game")
    if model.game in ("Breakout", None):
        model.object_priors = ObjectPriors.for_frames(model.config.palette, (model.config.height, model.config.width),
                                                      model.config.context_frames)
    return model
